// Architecture validation, parameter layout, initialisation and fingerprint.
#include "node/learn/model_spec.h"

#include <sodium.h>

#include <cmath>
#include <limits>

namespace dpnode::learn {
namespace {

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

const char* ModelKindName(ModelKind kind) {
  return kind == ModelKind::kLogistic ? "logistic" : "mlp";
}

Result<ModelKind> ParseModelKind(std::string_view name) {
  if (name == "logistic") return ModelKind::kLogistic;
  if (name == "mlp") return ModelKind::kMlp;
  return Status::InvalidArgument("unknown model kind '" + std::string(name) +
                                 "' (expected logistic or mlp)");
}

const char* ActivationName(Activation activation) {
  return activation == Activation::kRelu ? "relu" : "tanh";
}

Result<Activation> ParseActivation(std::string_view name) {
  if (name == "relu") return Activation::kRelu;
  if (name == "tanh") return Activation::kTanh;
  return Status::InvalidArgument("unknown activation '" + std::string(name) +
                                 "' (expected relu or tanh)");
}

Status ValidateModelSpec(const ModelSpec& spec) {
  if (spec.input_dim < 1) return Status::InvalidArgument("model input_dim must be >= 1");
  if (spec.num_classes < 2) return Status::InvalidArgument("model needs at least 2 classes");
  if (spec.kind == ModelKind::kLogistic && !spec.hidden.empty()) {
    return Status::InvalidArgument("a logistic model has no hidden layers (use kind = \"mlp\")");
  }
  if (spec.kind == ModelKind::kMlp && spec.hidden.empty()) {
    return Status::InvalidArgument("an mlp needs at least one hidden layer size");
  }
  for (int64_t h : spec.hidden) {
    if (h < 1 || h > (int64_t{1} << 20)) {
      return Status::InvalidArgument("hidden layer sizes must be in [1, 2^20]");
    }
  }
  if (!(spec.dropout >= 0 && spec.dropout < 1)) {
    return Status::InvalidArgument("dropout must be in [0, 1)");
  }
  double count = 0;
  std::vector<int64_t> w = LayerWidths(spec);
  for (size_t l = 0; l + 1 < w.size(); ++l) {
    count += static_cast<double>(w[l] + 1) * static_cast<double>(w[l + 1]);
  }
  if (count > static_cast<double>(std::numeric_limits<int32_t>::max())) {
    return Status::InvalidArgument("model has more than 2^31 parameters");
  }
  return Status::Ok();
}

std::vector<int64_t> LayerWidths(const ModelSpec& spec) {
  std::vector<int64_t> w;
  w.push_back(spec.input_dim);
  w.insert(w.end(), spec.hidden.begin(), spec.hidden.end());
  w.push_back(spec.num_classes);
  return w;
}

std::vector<ParameterInfo> ParameterLayout(const ModelSpec& spec) {
  std::vector<ParameterInfo> out;
  std::vector<int64_t> w = LayerWidths(spec);
  int64_t offset = 0;
  for (size_t l = 0; l + 1 < w.size(); ++l) {
    const std::string prefix = "layer" + std::to_string(l);
    out.push_back({prefix + ".weight", {w[l + 1], w[l]}, offset, w[l + 1] * w[l]});
    offset += w[l + 1] * w[l];
    out.push_back({prefix + ".bias", {w[l + 1]}, offset, w[l + 1]});
    offset += w[l + 1];
  }
  return out;
}

int64_t ParameterCount(const ModelSpec& spec) {
  int64_t n = 0;
  for (const ParameterInfo& p : ParameterLayout(spec)) n += p.size;
  return n;
}

std::vector<float> InitialParameters(const ModelSpec& spec, uint64_t seed) {
  std::vector<float> params(static_cast<size_t>(ParameterCount(spec)));
  uint64_t state = seed;
  int64_t fan_in = 1;
  for (const ParameterInfo& p : ParameterLayout(spec)) {
    // A bias uses its layer's fan-in, like nn.Linear; the layout puts the
    // weight (which knows it) just before.
    if (p.shape.size() == 2) fan_in = p.shape[1];
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    for (int64_t i = 0; i < p.size; ++i) {
      const double u = static_cast<double>(SplitMix64(state) >> 11) * 0x1.0p-53;  // [0, 1)
      params[static_cast<size_t>(p.offset + i)] = static_cast<float>((2 * u - 1) * bound);
    }
  }
  return params;
}

std::string CanonicalArchitecture(const ModelSpec& spec) {
  std::string s = "dpnode-architecture-v1;kind=";
  s += ModelKindName(spec.kind);
  s += ";widths=";
  std::vector<int64_t> w = LayerWidths(spec);
  for (size_t i = 0; i < w.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(w[i]);
  }
  s += ";activation=";
  s += spec.hidden.empty() ? "none" : ActivationName(spec.activation);
  s += ";output=softmax;layout=layerwise-weight-out-in-then-bias;dtype=float32";
  return s;
}

ModelFingerprint ComputeModelFingerprint(const SchemaFingerprint& schema, const ModelSpec& spec) {
  static constexpr char kTag[] = "dpnode-model-fingerprint-v1";
  const std::string arch = CanonicalArchitecture(spec);
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(kTag), sizeof(kTag));
  crypto_generichash_update(&st, schema.data(), schema.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(arch.data()), arch.size());
  ModelFingerprint out{};
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}

std::string ModelFingerprintHex(const ModelFingerprint& fingerprint) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : fingerprint) {
    s += kHex[b >> 4];
    s += kHex[b & 15];
  }
  return s;
}

}  // namespace dpnode::learn
