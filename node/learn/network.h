// The model's arithmetic on LibTorch, behind a torch-free interface: forward
// passes, per-example clipped gradient sums for DP-SGD, and predictions.
//
// Fast path (ClipMode::kGhost). One forward and one manual backward over the
// whole batch keep, for every linear layer l, its input activations a_l (n × in)
// and the gradients of each example's own loss with respect to its outputs,
// g_l (n × out). Example i's gradient for that layer is the outer product
// g_l,i ⊗ a_l,i plus the bias gradient g_l,i, so its squared norm is
// ||a_l,i||²·||g_l,i||² + ||g_l,i||² (the "ghost norm": no per-example gradient
// is ever materialised). Summing over layers gives each example's full norm;
// with s_i = min(1, C / norm_i) the clipped sum is Σ_i s_i g_l,i ⊗ a_l,i =
// (s ⊙ g_l)ᵀ a_l, one matrix product per layer. Backpropagation is linear in
// the output gradient for a fixed forward pass, so re-weighting the kept g_l
// equals a second, re-weighted backward pass without running it.
//
// Reference path (ClipMode::kMicrobatch): for each example separately, a
// LibTorch autograd backward, the flat gradient's norm, clipping, summing.
// Slow; for tests and the benchmark.
//
// ClipMode::kNone sums unclipped per-example gradients through the fast
// path's forward/backward (non-private baselines).
//
// Loss: softmax cross-entropy per example (summed, never averaged here).
// Dropout masks come from a seeded generator (dropout is not a privacy
// mechanism) and are identical for the fast and the reference path given the
// same seed.
//
// Threading: a Network is used by one thread at a time. LibTorch exceptions
// are caught inside and returned as kInternal.
#ifndef DPNODE_NODE_LEARN_NETWORK_H_
#define DPNODE_NODE_LEARN_NETWORK_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "base/status.h"
#include "node/learn/model_spec.h"

namespace dpnode::learn {

enum class ClipMode { kNone, kGhost, kMicrobatch };

struct GradientOptions {
  ClipMode mode = ClipMode::kGhost;
  double clip_norm = 1.0;      // C > 0; ignored for kNone
  bool training = true;        // apply dropout (when the spec has any)
  uint64_t dropout_seed = 0;   // masks for this batch
};

struct GradientStats {
  int64_t examples = 0;
  int64_t clipped = 0;       // examples whose gradient norm exceeded C
  double loss_sum = 0;       // summed cross-entropy over the batch (nats)
  double norm_sum = 0;       // Σ_i unclipped per-example norm (0 for kNone)
};

// Sets LibTorch's intra-op threads and, when present, OpenBLAS's. These are
// process-wide; main() (or the harness) calls this once. Many nodes share a
// machine, so the default elsewhere is 1.
void SetComputeThreads(int threads);

class Network {
 public:
  // Takes the initial parameters (ParameterCount(spec) floats).
  static Result<std::unique_ptr<Network>> Create(const ModelSpec& spec,
                                                 std::vector<float> parameters);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  const ModelSpec& spec() const;
  // The flat parameters (model_spec.h layout). Writing through the mutable
  // reference is how optimisers and gossip update the model; the size must
  // not change.
  const std::vector<float>& parameters() const;
  std::vector<float>& mutable_parameters();

  // Writes into `gradient_sum` (resized to the parameter count) the sum over
  // the n examples (features: n × input_dim row-major; labels in
  // [0, num_classes)) of each example's loss gradient, clipped per
  // `options`. n == 0 gives zeros.
  Status ClippedGradientSum(const float* features, const int32_t* labels, int64_t n,
                            const GradientOptions& options, std::vector<float>& gradient_sum,
                            GradientStats* stats = nullptr);

  // Class probabilities (n × num_classes, row-major), no dropout.
  Status Predict(const float* features, int64_t n, std::vector<float>& probabilities);

 private:
  struct Impl;
  explicit Network(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dpnode::learn

#endif  // DPNODE_NODE_LEARN_NETWORK_H_
