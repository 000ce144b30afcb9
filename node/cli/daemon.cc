// The daemon's [network]/[run] configuration, the .npz export and atomic
// file writes (daemon.h).
#include "node/cli/daemon.h"

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <toml++/toml.h>

#include "node/cli/toml_fields.h"

namespace dpnode::cli {
namespace {

namespace fs = std::filesystem;

std::string Resolve(const fs::path& dir, const std::string& p) {
  if (p.empty()) return p;
  return (dir / p).lexically_normal().string();
}

// Little-endian appenders for the zip structures.
void Put16(std::string& s, uint32_t v) {
  s += static_cast<char>(v & 0xff);
  s += static_cast<char>((v >> 8) & 0xff);
}
void Put32(std::string& s, uint32_t v) {
  Put16(s, v & 0xffff);
  Put16(s, v >> 16);
}

std::string NpyBytes(const NpyArray& a) {
  std::string shape = "(";
  for (size_t i = 0; i < a.shape.size(); ++i) {
    shape += std::to_string(a.shape[i]) + (a.shape.size() == 1 || i + 1 < a.shape.size() ? "," : "");
    if (i + 1 < a.shape.size()) shape += " ";
  }
  shape += ")";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  // magic(6) + version(2) + header_len(2) + header + '\n' is a multiple of 64.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  Put16(out, static_cast<uint32_t>(header.size()));
  out += header;
  for (float f : a.values) {
    uint32_t bits;
    static_assert(sizeof(bits) == sizeof(f), "float is 32 bits");
    std::memcpy(&bits, &f, sizeof(bits));
    Put32(out, bits);
  }
  return out;
}

}  // namespace

uint32_t Crc32(const uint8_t* data, size_t size) {
  uint32_t table[256];
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IoError("cannot write " + tmp);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) {
      ::close(fd);
      return Status::IoError("cannot write " + tmp);
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::IoError("cannot replace " + path);
  }
  return Status::Ok();
}

Status WriteNpz(const std::string& path, const std::vector<NpyArray>& arrays) {
  std::string zip;
  std::string central;
  for (const NpyArray& a : arrays) {
    int64_t n = 1;
    for (int64_t d : a.shape) n *= d;
    if (n != static_cast<int64_t>(a.values.size())) {
      return Status::InvalidArgument("npz array " + a.name + ": shape does not match its values");
    }
    const std::string name = a.name + ".npy";
    const std::string data = NpyBytes(a);
    if (data.size() >= 0xFFFFFFFFu || zip.size() >= 0xFFFFFFFFu - data.size() - 1024) {
      return Status::InvalidArgument("npz archive over 4 GiB (no zip64 support)");
    }
    const uint32_t crc = Crc32(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    const uint32_t offset = static_cast<uint32_t>(zip.size());
    // Local file header: stored, no data descriptor, fixed DOS time 1980-01-01.
    Put32(zip, 0x04034b50);
    Put16(zip, 20);  // version needed
    Put16(zip, 0);   // flags
    Put16(zip, 0);   // method: stored
    Put16(zip, 0);   // time
    Put16(zip, 0x21);  // date 1980-01-01
    Put32(zip, crc);
    Put32(zip, static_cast<uint32_t>(data.size()));
    Put32(zip, static_cast<uint32_t>(data.size()));
    Put16(zip, static_cast<uint32_t>(name.size()));
    Put16(zip, 0);
    zip += name;
    zip += data;
    Put32(central, 0x02014b50);
    Put16(central, 20);  // version made by
    Put16(central, 20);
    Put16(central, 0);
    Put16(central, 0);
    Put16(central, 0);
    Put16(central, 0x21);
    Put32(central, crc);
    Put32(central, static_cast<uint32_t>(data.size()));
    Put32(central, static_cast<uint32_t>(data.size()));
    Put16(central, static_cast<uint32_t>(name.size()));
    Put16(central, 0);  // extra
    Put16(central, 0);  // comment
    Put16(central, 0);  // disk
    Put16(central, 0);  // internal attributes
    Put32(central, 0);  // external attributes
    Put32(central, offset);
    central += name;
  }
  const uint32_t central_offset = static_cast<uint32_t>(zip.size());
  zip += central;
  Put32(zip, 0x06054b50);
  Put16(zip, 0);
  Put16(zip, 0);
  Put16(zip, static_cast<uint32_t>(arrays.size()));
  Put16(zip, static_cast<uint32_t>(arrays.size()));
  Put32(zip, static_cast<uint32_t>(central.size()));
  Put32(zip, central_offset);
  Put16(zip, 0);
  return WriteFileAtomically(path, zip);
}

Result<DaemonConfig> LoadDaemonConfig(const std::string& file) {
  Result<toml::table> parsed = ParseTomlFile(file);
  if (!parsed.ok()) return parsed.status();
  const toml::table& root = *parsed;
  DPNODE_RETURN_IF_ERROR(OnlyKeys(file, "", root,
                                  {"site", "data", "privacy", "model", "train", "network", "run"}));
  // site_config.cc reads [site] without checking its keys; the daemon does.
  if (const toml::table* site = root["site"].as_table()) {
    DPNODE_RETURN_IF_ERROR(OnlyKeys(file, "site", *site, {"name"}));
  }
  const fs::path dir = fs::path(file).parent_path();
  DaemonConfig c;
  c.network.identity_dir = Resolve(dir, "identity");
  if (const toml::node* n = root.get("network")) {
    if (!n->is_table()) return Status::InvalidArgument(Where(file, *n) + ": network must be a table");
    const toml::table& t = *n->as_table();
    DPNODE_RETURN_IF_ERROR(OnlyKeys(file, "network", t,
                                    {"listen", "announce", "identity_dir", "peers", "consortium_id",
                                     "policy", "gossip_interval_ms", "step_interval_ms",
                                     "wait_for_peers", "wait_for_peers_timeout_s"}));
    NetworkConfig& nc = c.network;
    DPNODE_RETURN_IF_ERROR(GetString(file, t, "network", "listen", nc.listen));
    DPNODE_RETURN_IF_ERROR(GetString(file, t, "network", "announce", nc.announce));
    std::string id_dir, peers;
    DPNODE_RETURN_IF_ERROR(GetString(file, t, "network", "identity_dir", id_dir));
    DPNODE_RETURN_IF_ERROR(GetString(file, t, "network", "peers", peers));
    if (!id_dir.empty()) nc.identity_dir = Resolve(dir, id_dir);
    nc.peers = Resolve(dir, peers);
    DPNODE_RETURN_IF_ERROR(GetString(file, t, "network", "consortium_id", nc.consortium_id));
    if (nc.consortium_id.empty() || nc.consortium_id.size() > 255) {
      return Status::InvalidArgument(file + ": network.consortium_id must be 1-255 bytes");
    }
    DPNODE_RETURN_IF_ERROR(GetString(file, t, "network", "policy", nc.policy));
    if (nc.policy != "push-sum" && nc.policy != "pairwise" && nc.policy != "d-psgd") {
      return Status::InvalidArgument(Where(file, *t.get("policy")) + ": network.policy '" +
                                     nc.policy + "' is not push-sum, pairwise or d-psgd");
    }
    DPNODE_RETURN_IF_ERROR(
        GetInt(file, t, "network", "gossip_interval_ms", 1, 600000, nc.gossip_interval_ms));
    DPNODE_RETURN_IF_ERROR(
        GetInt(file, t, "network", "step_interval_ms", 0, 600000, nc.step_interval_ms));
    DPNODE_RETURN_IF_ERROR(
        GetInt(file, t, "network", "wait_for_peers", 0, 100000, nc.wait_for_peers));
    DPNODE_RETURN_IF_ERROR(GetDouble(file, t, "network", "wait_for_peers_timeout_s", 0, 86400 * 7,
                                     nc.wait_for_peers_timeout_s));
  }
  if (const toml::node* n = root.get("run")) {
    if (!n->is_table()) return Status::InvalidArgument(Where(file, *n) + ": run must be a table");
    const toml::table& t = *n->as_table();
    DPNODE_RETURN_IF_ERROR(OnlyKeys(file, "run", t,
                                    {"export", "progress_interval_s", "checkpoint_interval_s",
                                     "exit_when_done", "linger_s", "mixing_timeout_s",
                                     "settle_tolerance", "settle_window", "max_steps", "log_file",
                                     "log_max_bytes", "log_files", "stderr_level",
                                     "metrics_listen"}));
    RunConfig& rc = c.run;
    std::string exp;
    DPNODE_RETURN_IF_ERROR(GetString(file, t, "run", "export", exp));
    rc.export_path = Resolve(dir, exp);
    DPNODE_RETURN_IF_ERROR(
        GetDouble(file, t, "run", "progress_interval_s", 0.1, 3600, rc.progress_interval_s));
    DPNODE_RETURN_IF_ERROR(
        GetDouble(file, t, "run", "checkpoint_interval_s", 0.1, 86400, rc.checkpoint_interval_s));
    DPNODE_RETURN_IF_ERROR(GetBool(file, t, "run", "exit_when_done", rc.exit_when_done));
    DPNODE_RETURN_IF_ERROR(GetDouble(file, t, "run", "linger_s", 0, 3600, rc.linger_s));
    DPNODE_RETURN_IF_ERROR(
        GetDouble(file, t, "run", "mixing_timeout_s", 0, 86400, rc.mixing_timeout_s));
    DPNODE_RETURN_IF_ERROR(
        GetDouble(file, t, "run", "settle_tolerance", 1e-12, 1, rc.settle_tolerance));
    DPNODE_RETURN_IF_ERROR(GetInt(file, t, "run", "settle_window", 1, 100000, rc.settle_window));
    DPNODE_RETURN_IF_ERROR(GetInt(file, t, "run", "max_steps", -1, int64_t{1} << 40, rc.max_steps));
    std::string log_file;
    DPNODE_RETURN_IF_ERROR(GetString(file, t, "run", "log_file", log_file));
    rc.log_file = Resolve(dir, log_file);
    DPNODE_RETURN_IF_ERROR(
        GetInt(file, t, "run", "log_max_bytes", 4096, int64_t{1} << 40, rc.log_max_bytes));
    DPNODE_RETURN_IF_ERROR(GetInt(file, t, "run", "log_files", 1, 100, rc.log_files));
    DPNODE_RETURN_IF_ERROR(GetString(file, t, "run", "stderr_level", rc.stderr_level));
    {
      static const std::set<std::string> kLevels = {"trace", "debug", "info",
                                                     "warn",  "error", "off"};
      if (!rc.stderr_level.empty() && !kLevels.count(rc.stderr_level)) {
        return Status::InvalidArgument(Where(file, *t.get("stderr_level")) +
                                       ": run.stderr_level must be trace, debug, info, warn, "
                                       "error or off");
      }
    }
    DPNODE_RETURN_IF_ERROR(GetString(file, t, "run", "metrics_listen", rc.metrics_listen));
    if (!rc.metrics_listen.empty() && rc.metrics_listen.rfind("127.0.0.1:", 0) != 0 &&
        rc.metrics_listen.rfind("[::1]:", 0) != 0) {
      return Status::InvalidArgument(Where(file, *t.get("metrics_listen")) +
                                     ": run.metrics_listen must be on localhost (127.0.0.1:PORT "
                                     "or [::1]:PORT)");
    }
  }
  return c;
}

}  // namespace dpnode::cli
