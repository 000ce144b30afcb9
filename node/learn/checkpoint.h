// A node's training checkpoint: what a restarted site (a simulated crash, or
// kill -9 of the daemon) resumes from. Torch-free, in dpnode_learn_core.
//
// Contents: the model fingerprint, the local step count, the flat
// parameters, the optimiser state (momentum / Adam moments) and pass-through
// values the caller supplies (e.g. "push_sum_weight", "round"), covered by a
// BLAKE2b-256 checksum. docs/learner.md describes the byte format.
//
// The privacy ledger, not the checkpoint, is the source of truth for the
// budget. A checkpoint may lag the ledger: steps charged (and perhaps run)
// after the last checkpoint are lost work on restart, never refunded budget;
// the restarted node's ledger still counts them. Nothing here reads or writes
// the ledger.
//
// No clock reads; no randomness (the temporary file has a fixed name, so
// one writer per path).
#ifndef DPNODE_NODE_LEARN_CHECKPOINT_H_
#define DPNODE_NODE_LEARN_CHECKPOINT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "node/learn/model_spec.h"
#include "node/learn/optimizer.h"

namespace dpnode::learn {

struct Checkpoint {
  ModelFingerprint fingerprint{};
  int64_t steps = 0;              // local DP-SGD steps run when it was taken
  std::vector<float> parameters;  // model_spec.h's flat layout
  OptimizerState optimizer;
  // Caller-owned values, returned unchanged (keys: UTF-8, at most 256 bytes;
  // values: any double, NaN included, bit-exact).
  std::map<std::string, double> extras;
};

// Limits on what ReadCheckpoint accepts (and WriteCheckpoint writes), so a
// corrupt length cannot make the reader allocate without bound.
inline constexpr int64_t kMaxCheckpointFloats = int64_t{1} << 31;  // per vector
inline constexpr size_t kMaxCheckpointExtras = 1024;
inline constexpr size_t kMaxCheckpointKeyBytes = 256;

// Writes `checkpoint` to `path` atomically: the bytes go to PATH.tmp, which is
// fsync'd and renamed over PATH, then the directory is fsync'd. A crash at any
// point leaves either the old PATH or the new one, plus possibly a torn
// PATH.tmp that readers never look at and the next write replaces.
// Errors: InvalidArgument (over the limits above), IoError.
Status WriteCheckpoint(const std::string& path, const Checkpoint& checkpoint);

// Reads and verifies PATH: magic, lengths, checksum, then the fingerprint
// against `expected` (a checkpoint of another model is refused, not loaded).
// Errors: NotFound (no PATH), IoError, Corruption (bad magic, truncated,
// checksum mismatch, inconsistent lengths), FailedPrecondition (intact but
// for a different model fingerprint).
Result<Checkpoint> ReadCheckpoint(const std::string& path, const ModelFingerprint& expected);

}  // namespace dpnode::learn

#endif  // DPNODE_NODE_LEARN_CHECKPOINT_H_
