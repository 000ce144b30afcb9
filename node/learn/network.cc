// LibTorch (ATen) implementation of Network: the only translation unit of
// the learner that includes torch headers.
#include "node/learn/network.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <string>

namespace dpnode::learn {
namespace {

// Weight and bias tensors of one layer, viewing a flat float buffer.
struct LayerView {
  at::Tensor weight;  // out × in
  at::Tensor bias;    // out
};

std::vector<LayerView> Views(const ModelSpec& spec, float* flat) {
  std::vector<LayerView> out;
  const std::vector<int64_t> w = LayerWidths(spec);
  int64_t offset = 0;
  for (size_t l = 0; l + 1 < w.size(); ++l) {
    LayerView v;
    v.weight = at::from_blob(flat + offset, {w[l + 1], w[l]}, at::kFloat);
    offset += w[l + 1] * w[l];
    v.bias = at::from_blob(flat + offset, {w[l + 1]}, at::kFloat);
    offset += w[l + 1];
    out.push_back(v);
  }
  return out;
}

Status FromException(const char* what, const std::exception& e) {
  std::string msg = e.what();
  // c10::Error messages carry a multi-line backtrace; keep the first line.
  msg = msg.substr(0, msg.find('\n'));
  return Status::Internal(std::string(what) + ": libtorch: " + msg);
}

}  // namespace

void SetComputeThreads(int threads) {
  threads = std::max(1, threads);
  at::set_num_threads(threads);
  // Debian's libtorch calls the system BLAS, whose own pool ignores
  // at::set_num_threads; OpenBLAS exports a setter.
  using SetFn = void (*)(int);
  if (void* fn = dlsym(RTLD_DEFAULT, "openblas_set_num_threads")) {
    reinterpret_cast<SetFn>(fn)(threads);
  }
}

struct Network::Impl {
  ModelSpec spec;
  std::vector<float> params;

  // Dropout masks (already divided by the keep probability) for the hidden
  // layers of an n-example batch; empty when no dropout applies.
  std::vector<at::Tensor> Masks(int64_t n, const GradientOptions& options) const {
    std::vector<at::Tensor> masks;
    if (!options.training || spec.dropout <= 0) return masks;
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(options.dropout_seed);
    const double keep = 1.0 - spec.dropout;
    for (int64_t h : spec.hidden) {
      masks.push_back(at::empty({n, h}, at::kFloat).bernoulli_(keep, gen).div_(keep));
    }
    return masks;
  }

  at::Tensor Activate(const at::Tensor& z) const {
    return spec.activation == Activation::kRelu ? at::relu(z) : at::tanh(z);
  }

  Status Fast(const float* features, const int32_t* labels, int64_t n,
              const GradientOptions& options, std::vector<float>& gradient_sum,
              GradientStats& stats) {
    c10::InferenceMode guard;
    std::vector<LayerView> layers = Views(spec, params.data());
    std::vector<LayerView> grads = Views(spec, gradient_sum.data());
    const size_t num_layers = layers.size();
    at::Tensor x = at::from_blob(const_cast<float*>(features), {n, spec.input_dim}, at::kFloat);
    at::Tensor y = at::from_blob(const_cast<int32_t*>(labels), {n}, at::kInt).to(at::kLong);
    std::vector<at::Tensor> masks = Masks(n, options);

    // Forward, keeping each layer's input and each hidden layer's local
    // derivative (activation' ⊙ dropout mask).
    std::vector<at::Tensor> inputs{x};
    std::vector<at::Tensor> derivs;
    at::Tensor z;
    for (size_t l = 0; l < num_layers; ++l) {
      z = at::addmm(layers[l].bias, inputs.back(), layers[l].weight.t());
      if (l + 1 == num_layers) break;
      at::Tensor h = Activate(z);
      at::Tensor d = spec.activation == Activation::kRelu ? (z > 0).to(at::kFloat)
                                                         : 1 - h * h;
      if (!masks.empty()) {
        h = h * masks[l];
        d = d * masks[l];
      }
      inputs.push_back(h);
      derivs.push_back(d);
    }
    at::Tensor log_probs = at::log_softmax(z, 1);
    stats.loss_sum = -log_probs.gather(1, y.unsqueeze(1)).sum().item<double>();

    // Backward: g = ∂(loss_i)/∂z per example, layer by layer.
    std::vector<at::Tensor> g(num_layers);
    g[num_layers - 1] = at::exp(log_probs) - at::one_hot(y, spec.num_classes).to(at::kFloat);
    for (size_t l = num_layers - 1; l > 0; --l) {
      g[l - 1] = at::mm(g[l], layers[l].weight) * derivs[l - 1];
    }

    if (options.mode == ClipMode::kGhost) {
      at::Tensor norm2 = at::zeros({n}, at::kFloat);
      for (size_t l = 0; l < num_layers; ++l) {
        norm2 += (inputs[l].pow(2).sum(1) + 1) * g[l].pow(2).sum(1);
      }
      at::Tensor norm = norm2.sqrt();
      // C / 0 = inf clamps to 1: a zero gradient stays zero.
      at::Tensor scale = at::clamp_max(options.clip_norm / norm, 1.0).unsqueeze(1);
      stats.clipped = (norm > options.clip_norm).sum().item<int64_t>();
      stats.norm_sum = norm.sum().item<double>();
      for (size_t l = 0; l < num_layers; ++l) g[l] = g[l] * scale;
    }
    for (size_t l = 0; l < num_layers; ++l) {
      at::mm_out(grads[l].weight, g[l].t(), inputs[l]);
      at::sum_out(grads[l].bias, g[l], {0});
    }
    return Status::Ok();
  }

  Status Microbatch(const float* features, const int32_t* labels, int64_t n,
                    const GradientOptions& options, std::vector<float>& gradient_sum,
                    GradientStats& stats) {
    std::vector<LayerView> layers = Views(spec, params.data());
    std::vector<LayerView> sums = Views(spec, gradient_sum.data());
    const size_t num_layers = layers.size();
    std::vector<at::Tensor> leaves;
    for (const LayerView& v : layers) {
      leaves.push_back(v.weight.detach().clone().requires_grad_(true));
      leaves.push_back(v.bias.detach().clone().requires_grad_(true));
    }
    at::Tensor x = at::from_blob(const_cast<float*>(features), {n, spec.input_dim}, at::kFloat);
    at::Tensor y = at::from_blob(const_cast<int32_t*>(labels), {n}, at::kInt).to(at::kLong);
    std::vector<at::Tensor> masks = Masks(n, options);
    for (int64_t i = 0; i < n; ++i) {
      at::Tensor a = x.narrow(0, i, 1);
      for (size_t l = 0; l < num_layers; ++l) {
        a = at::addmm(leaves[2 * l + 1], a, leaves[2 * l].t());
        if (l + 1 == num_layers) break;
        a = Activate(a);
        if (!masks.empty()) a = a * masks[l].narrow(0, i, 1);
      }
      at::Tensor loss = at::nll_loss(at::log_softmax(a, 1), y.narrow(0, i, 1), {},
                                     at::Reduction::Sum);
      stats.loss_sum += loss.item<double>();
      loss.backward();
      double norm2 = 0;
      for (at::Tensor& leaf : leaves) norm2 += leaf.grad().pow(2).sum().item<double>();
      const double norm = std::sqrt(norm2);
      double scale = 1;
      if (options.mode == ClipMode::kMicrobatch && norm > options.clip_norm) {
        scale = options.clip_norm / norm;
        ++stats.clipped;
      }
      stats.norm_sum += norm;
      for (size_t l = 0; l < num_layers; ++l) {
        sums[l].weight.add_(leaves[2 * l].grad(), scale);
        sums[l].bias.add_(leaves[2 * l + 1].grad(), scale);
      }
      for (at::Tensor& leaf : leaves) leaf.mutable_grad().zero_();
    }
    return Status::Ok();
  }
};

Network::Network(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Network::~Network() = default;

Result<std::unique_ptr<Network>> Network::Create(const ModelSpec& spec,
                                                 std::vector<float> parameters) {
  DPNODE_RETURN_IF_ERROR(ValidateModelSpec(spec));
  if (static_cast<int64_t>(parameters.size()) != ParameterCount(spec)) {
    return Status::InvalidArgument("model expects " + std::to_string(ParameterCount(spec)) +
                                   " parameters, got " + std::to_string(parameters.size()));
  }
  auto impl = std::make_unique<Impl>();
  impl->spec = spec;
  impl->params = std::move(parameters);
  return std::unique_ptr<Network>(new Network(std::move(impl)));
}

const ModelSpec& Network::spec() const { return impl_->spec; }
const std::vector<float>& Network::parameters() const { return impl_->params; }
std::vector<float>& Network::mutable_parameters() { return impl_->params; }

Status Network::ClippedGradientSum(const float* features, const int32_t* labels, int64_t n,
                                   const GradientOptions& options,
                                   std::vector<float>& gradient_sum, GradientStats* stats) {
  const ModelSpec& spec = impl_->spec;
  if (static_cast<int64_t>(impl_->params.size()) != ParameterCount(spec)) {
    return Status::FailedPrecondition("the parameter vector changed size");
  }
  if (options.mode != ClipMode::kNone &&
      (!(options.clip_norm > 0) || !std::isfinite(options.clip_norm))) {
    return Status::InvalidArgument("clip norm must be a finite number > 0");
  }
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || labels[i] >= spec.num_classes) {
      return Status::InvalidArgument("label " + std::to_string(labels[i]) + " out of range");
    }
  }
  gradient_sum.assign(impl_->params.size(), 0.0f);
  GradientStats local;
  local.examples = n;
  if (n > 0) {
    try {
      Status s = options.mode == ClipMode::kMicrobatch
                     ? impl_->Microbatch(features, labels, n, options, gradient_sum, local)
                     : impl_->Fast(features, labels, n, options, gradient_sum, local);
      if (!s.ok()) return s;
    } catch (const std::exception& e) {
      return FromException("gradient", e);
    }
  }
  if (stats) *stats = local;
  return Status::Ok();
}

Status Network::Predict(const float* features, int64_t n, std::vector<float>& probabilities) {
  const ModelSpec& spec = impl_->spec;
  probabilities.assign(static_cast<size_t>(n * spec.num_classes), 0.0f);
  if (n == 0) return Status::Ok();
  try {
    c10::InferenceMode guard;
    std::vector<LayerView> layers = Views(spec, impl_->params.data());
    at::Tensor a = at::from_blob(const_cast<float*>(features), {n, spec.input_dim}, at::kFloat);
    for (size_t l = 0; l < layers.size(); ++l) {
      a = at::addmm(layers[l].bias, a, layers[l].weight.t());
      if (l + 1 < layers.size()) a = impl_->Activate(a);
    }
    at::Tensor out = at::from_blob(probabilities.data(), {n, spec.num_classes}, at::kFloat);
    at::softmax_out(out, a, 1);
  } catch (const std::exception& e) {
    return FromException("predict", e);
  }
  return Status::Ok();
}

}  // namespace dpnode::learn
