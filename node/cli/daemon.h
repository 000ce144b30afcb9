// The daemon's own configuration tables ([network], [run]) and the pieces of
// `dpnode run` that are plain functions: the numpy .npz export and atomic
// small-file writes. The run loop itself is in run_cmd.cc.
//
// [network] and [run] are read from the same site configuration file as
// [site]/[data]/[privacy]/[model]/[train] (site_config.h); every key and its
// default is in docs/config.md. Unknown keys in [network] and [run], and
// unknown top-level tables or keys, are refused with the file, line and key.
#ifndef DPNODE_NODE_CLI_DAEMON_H_
#define DPNODE_NODE_CLI_DAEMON_H_

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace dpnode::cli {

struct NetworkConfig {
  std::string listen = "127.0.0.1:7400";  // host:port to accept peers on
  std::string announce;       // host:port in our peer record; "" = listen (unless 0.0.0.0 / ::)
  std::string identity_dir;   // resolved; default CONFIG_DIR/identity
  std::string peers;          // resolved; "" = must be given with --peers
  std::string consortium_id = "dpnode";
  std::string policy = "push-sum";  // push-sum | pairwise | d-psgd
  int64_t gossip_interval_ms = 200;
  int64_t step_interval_ms = 0;     // pause between local steps
  int64_t wait_for_peers = 0;       // train once this many peers are connected (0: at once)
  double wait_for_peers_timeout_s = 60;  // ... or after this long anyway
};

struct RunConfig {
  std::string export_path;           // resolved; "" = STATE_DIR/model.npz
  double progress_interval_s = 5;    // progress line and status.json rewrite
  double checkpoint_interval_s = 10; // periodic checkpoint (kill -9 safety)
  bool exit_when_done = true;        // false: keep serving the model until signalled
  double linger_s = 3;               // after settling, keep answering peers this long
  double mixing_timeout_s = 60;      // after training, give up waiting to settle
  double settle_tolerance = 1e-4;
  int64_t settle_window = 10;
  int64_t max_steps = -1;            // -1 = the privacy plan's steps
  std::string log_file;              // resolved; "" = stderr only
  int64_t log_max_bytes = 10 << 20;  // per file, then rotated
  int64_t log_files = 3;             // rotated files kept besides the current one
  std::string stderr_level;          // "" = --log-level; e.g. "warn" with log_file set
  std::string metrics_listen;        // "127.0.0.1:PORT": Prometheus text endpoint; "" = off
};

struct DaemonConfig {
  NetworkConfig network;
  RunConfig run;
};

// Reads [network] and [run] from `file` (paths resolved against its
// directory) and checks the whole file's top level. InvalidArgument naming
// "file:line: key" for unknown keys, wrong types and out-of-range values.
Result<DaemonConfig> LoadDaemonConfig(const std::string& file);

// One named float32 array for WriteNpz.
struct NpyArray {
  std::string name;             // becomes NAME.npy in the archive
  std::vector<int64_t> shape;   // row-major; product == values.size()
  std::vector<float> values;
};

// Writes an uncompressed .npz (a zip of .npy v1.0 files, method 'stored',
// CRC-32 computed here) that numpy.load reads. Atomic (temp + rename).
Status WriteNpz(const std::string& path, const std::vector<NpyArray>& arrays);

// Writes `text` to `path` atomically: PATH.tmp, fsync, rename.
Status WriteFileAtomically(const std::string& path, const std::string& text);

// CRC-32 (IEEE 802.3, as zip uses), exposed for tests.
uint32_t Crc32(const uint8_t* data, size_t size);

}  // namespace dpnode::cli

#endif  // DPNODE_NODE_CLI_DAEMON_H_
