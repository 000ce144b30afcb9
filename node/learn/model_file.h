// The trained-model file `dpnode train` writes (a provisional format; the
// daemon issue defines the final export). docs/learner.md describes it.
//
//   bytes 0..7     "DPNMODL1"
//   bytes 8..11    header length H, little-endian uint32
//   H bytes        header: UTF-8 JSON (format, model_fingerprint,
//                  schema_fingerprint, architecture, parameter layout,
//                  feature and class names, parameter_count)
//   4·P bytes      the P parameters, float32 little-endian, flat layout of
//                  model_spec.h
//   32 bytes       BLAKE2b-256 of everything before (integrity, not secrecy)
//
// Beside it, PATH.json holds the same header plus the caller's metadata
// (metrics, ε spent, training settings) for humans and scripts.
#ifndef DPNODE_NODE_LEARN_MODEL_FILE_H_
#define DPNODE_NODE_LEARN_MODEL_FILE_H_

#include <string>
#include <vector>

#include "base/status.h"
#include "node/learn/model_spec.h"

namespace dpnode::learn {

struct ModelFile {
  ModelSpec spec;
  SchemaFingerprint schema_fingerprint{};
  ModelFingerprint fingerprint{};
  std::vector<std::string> feature_names;
  std::vector<std::string> class_names;
  std::vector<float> parameters;
};

// Writes PATH (via a temporary file and rename) and PATH.json. `metadata_json`
// is a JSON object text merged into the sidecar under "training" (may be
// empty). Errors: InvalidArgument (sizes inconsistent, bad metadata), IoError.
Status WriteModelFile(const std::string& path, const ModelFile& model,
                      const std::string& metadata_json);

// Reads and verifies PATH (magic, sizes, checksum, fingerprint recomputed
// from the architecture and schema fingerprint). Errors: NotFound, IoError,
// Corruption.
Result<ModelFile> ReadModelFile(const std::string& path);

}  // namespace dpnode::learn

#endif  // DPNODE_NODE_LEARN_MODEL_FILE_H_
