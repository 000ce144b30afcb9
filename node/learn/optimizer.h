// Optimisers over the flat parameter vector (model_spec.h's layout): SGD with
// momentum and Adam. They see only the already clipped, noised and averaged
// gradient, so anything they do is post-processing and costs no privacy.
#ifndef DPNODE_NODE_LEARN_OPTIMIZER_H_
#define DPNODE_NODE_LEARN_OPTIMIZER_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace dpnode::learn {

enum class OptimizerKind { kSgd, kAdam };
const char* OptimizerName(OptimizerKind kind);  // "sgd" | "adam"
Result<OptimizerKind> ParseOptimizer(std::string_view name);

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::kSgd;
  double learning_rate = 0.1;
  double momentum = 0;  // SGD: v = momentum·v + g; p -= lr·v (PyTorch's form)
  double beta1 = 0.9;   // Adam
  double beta2 = 0.999;
  double epsilon = 1e-8;
};

Status ValidateOptimizerConfig(const OptimizerConfig& config);

// Everything an Optimizer remembers between steps, for checkpoints
// (node/learn/checkpoint.h): restoring it resumes the exact update sequence.
struct OptimizerState {
  int64_t steps = 0;
  std::vector<float> m;  // SGD velocity or Adam first moment (parameter_count)
  std::vector<float> v;  // Adam second moment (parameter_count); empty for SGD
};

class Optimizer {
 public:
  // `parameter_count` fixes the size of the state (momentum, Adam moments).
  Optimizer(const OptimizerConfig& config, int64_t parameter_count);

  // params -= update(gradient). Precondition: both have parameter_count floats.
  void Step(std::vector<float>& params, const std::vector<float>& gradient);

  int64_t steps() const { return steps_; }

  OptimizerState state() const { return {steps_, m_, v_}; }
  // InvalidArgument (state unchanged) when the vectors' sizes do not match
  // this optimizer's kind and parameter count, or steps < 0.
  Status RestoreState(const OptimizerState& state);

 private:
  OptimizerConfig config_;
  std::vector<float> m_;  // SGD velocity or Adam first moment
  std::vector<float> v_;  // Adam second moment
  int64_t steps_ = 0;
};

}  // namespace dpnode::learn

#endif  // DPNODE_NODE_LEARN_OPTIMIZER_H_
