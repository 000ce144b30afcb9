// What a model is, independent of LibTorch: the architecture every site of a
// consortium must share, the layout of its parameters as one flat vector of
// floats (what gossip averages and what the model file stores), a
// deterministic initialisation, and the model fingerprint.
//
// A model is a stack of fully connected layers: input_dim -> hidden[0] -> ...
// -> num_classes logits, with `activation` (and, in training, inverted
// dropout) after each hidden layer. Logistic regression is the stack with no
// hidden layer. The output is always a softmax over num_classes >= 2 logits:
// a binary label is a 2-class softmax (one code path for binary and
// multi-class; the extra logit is redundant but harmless).
#ifndef DPNODE_NODE_LEARN_MODEL_SPEC_H_
#define DPNODE_NODE_LEARN_MODEL_SPEC_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "node/learn/data/schema.h"

namespace dpnode::learn {

enum class ModelKind { kLogistic, kMlp };
enum class Activation { kRelu, kTanh };

const char* ModelKindName(ModelKind kind);         // "logistic" | "mlp"
Result<ModelKind> ParseModelKind(std::string_view name);
const char* ActivationName(Activation activation);  // "relu" | "tanh"
Result<Activation> ParseActivation(std::string_view name);

struct ModelSpec {
  ModelKind kind = ModelKind::kLogistic;
  int64_t input_dim = 0;            // features per row (Dataset::dim)
  int64_t num_classes = 2;          // softmax outputs, >= 2
  std::vector<int64_t> hidden;      // empty for kLogistic, non-empty for kMlp
  Activation activation = Activation::kRelu;
  double dropout = 0;               // drop probability in [0, 1) after each hidden layer
};

// One-line reason when the spec is unusable (sizes < 1, hidden layers on a
// logistic model, none on an MLP, dropout outside [0, 1), more than 2^31
// parameters).
Status ValidateModelSpec(const ModelSpec& spec);

// One named tensor inside the flat parameter vector. Layer l (0-based) has
// "layer<l>.weight" of shape {out, in} (row-major) then "layer<l>.bias" of
// shape {out}; layers in order from the input.
struct ParameterInfo {
  std::string name;
  std::vector<int64_t> shape;
  int64_t offset = 0;  // first float in the flat vector
  int64_t size = 0;    // product of shape
};

// Precondition: ValidateModelSpec(spec).ok().
std::vector<ParameterInfo> ParameterLayout(const ModelSpec& spec);
int64_t ParameterCount(const ModelSpec& spec);
// Layer widths from input to output: {input_dim, hidden..., num_classes}.
std::vector<int64_t> LayerWidths(const ModelSpec& spec);

// Weights and biases uniform in ±1/sqrt(fan_in) (PyTorch's nn.Linear
// default), from SplitMix64(seed): the same on every platform, so sites that
// agree on a seed start from the same model. Not secret.
std::vector<float> InitialParameters(const ModelSpec& spec, uint64_t seed);

// A canonical text of what the parameters mean: kind, sizes, activation and
// output. Dropout is left out on purpose: it changes training, not the
// meaning of the parameters, so models trained with and without it can be
// averaged.
std::string CanonicalArchitecture(const ModelSpec& spec);

using ModelFingerprint = std::array<uint8_t, 32>;
// BLAKE2b-256 over a domain tag, the schema fingerprint and
// CanonicalArchitecture(spec): two sites may average parameters only when
// their fingerprints are equal.
ModelFingerprint ComputeModelFingerprint(const SchemaFingerprint& schema, const ModelSpec& spec);
std::string ModelFingerprintHex(const ModelFingerprint& fingerprint);

}  // namespace dpnode::learn

#endif  // DPNODE_NODE_LEARN_MODEL_SPEC_H_
