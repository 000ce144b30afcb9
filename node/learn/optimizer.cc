// SGD with momentum and Adam on flat float vectors.
#include "node/learn/optimizer.h"

#include <cmath>
#include <string>

#include "base/check.h"

namespace dpnode::learn {

const char* OptimizerName(OptimizerKind kind) {
  return kind == OptimizerKind::kSgd ? "sgd" : "adam";
}

Result<OptimizerKind> ParseOptimizer(std::string_view name) {
  if (name == "sgd") return OptimizerKind::kSgd;
  if (name == "adam") return OptimizerKind::kAdam;
  return Status::InvalidArgument("unknown optimizer '" + std::string(name) +
                                 "' (expected sgd or adam)");
}

Status ValidateOptimizerConfig(const OptimizerConfig& c) {
  if (!(c.learning_rate > 0) || !std::isfinite(c.learning_rate)) {
    return Status::InvalidArgument("learning_rate must be a finite number > 0");
  }
  if (!(c.momentum >= 0 && c.momentum < 1)) {
    return Status::InvalidArgument("momentum must be in [0, 1)");
  }
  if (!(c.beta1 >= 0 && c.beta1 < 1) || !(c.beta2 >= 0 && c.beta2 < 1) || !(c.epsilon > 0)) {
    return Status::InvalidArgument("adam needs beta1, beta2 in [0, 1) and epsilon > 0");
  }
  return Status::Ok();
}

Optimizer::Optimizer(const OptimizerConfig& config, int64_t parameter_count)
    : config_(config), m_(static_cast<size_t>(parameter_count), 0.0f) {
  if (config.kind == OptimizerKind::kAdam) v_.assign(static_cast<size_t>(parameter_count), 0.0f);
}

Status Optimizer::RestoreState(const OptimizerState& state) {
  if (state.steps < 0 || state.m.size() != m_.size() || state.v.size() != v_.size()) {
    return Status::InvalidArgument("optimizer state does not fit this " +
                                   std::string(OptimizerName(config_.kind)) + " optimizer over " +
                                   std::to_string(m_.size()) + " parameters");
  }
  steps_ = state.steps;
  m_ = state.m;
  v_ = state.v;
  return Status::Ok();
}

void Optimizer::Step(std::vector<float>& params, const std::vector<float>& gradient) {
  DPNODE_CHECK(params.size() == m_.size() && gradient.size() == m_.size(),
               "optimizer state has %zu floats, params %zu, gradient %zu", m_.size(),
               params.size(), gradient.size());
  ++steps_;
  const float lr = static_cast<float>(config_.learning_rate);
  const size_t n = params.size();
  if (config_.kind == OptimizerKind::kSgd) {
    const float mu = static_cast<float>(config_.momentum);
    for (size_t i = 0; i < n; ++i) {
      m_[i] = mu * m_[i] + gradient[i];
      params[i] -= lr * m_[i];
    }
    return;
  }
  const float b1 = static_cast<float>(config_.beta1);
  const float b2 = static_cast<float>(config_.beta2);
  const double t = static_cast<double>(steps_);
  const float c1 = static_cast<float>(1.0 / (1.0 - std::pow(config_.beta1, t)));
  const float c2 = static_cast<float>(1.0 / (1.0 - std::pow(config_.beta2, t)));
  const float eps = static_cast<float>(config_.epsilon);
  for (size_t i = 0; i < n; ++i) {
    m_[i] = b1 * m_[i] + (1 - b1) * gradient[i];
    v_[i] = b2 * v_[i] + (1 - b2) * gradient[i] * gradient[i];
    params[i] -= lr * (m_[i] * c1) / (std::sqrt(v_[i] * c2) + eps);
  }
}

}  // namespace dpnode::learn
