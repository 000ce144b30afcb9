// What the Node needs from local training, without knowing how it is done.
//
// The learner (node/learn/, LibTorch) adapts its DP-SGD loop to this
// interface; tests use a small arithmetic trainer. Keeping it torch-free keeps
// dpnode_core (Node + gossip) buildable and testable without LibTorch.
//
// Protocol, as the Node drives it (all on the node's loop except Step):
//   1. ParameterLayout() and Parameters() once, at construction: the model's
//      named tensors and initial values (the flat vector is their row-major
//      values concatenated in layout order).
//   2. Per local step: the Node charges the step to the privacy ledger, calls
//      SetParameters(current estimate), then Step() inside Env::RunCompute
//      (possibly on another thread), then Parameters() back on the loop. While
//      Step() runs the Node calls nothing else on the trainer.
//   3. StepCost() tells the Node what one step costs: sampling rate q and
//      noise multiplier σ (steps is ignored). It must not change between
//      steps: the ledger charges blocks at one (q, σ).
#ifndef DPNODE_NODE_TRAINER_H_
#define DPNODE_NODE_TRAINER_H_

#include <vector>

#include "base/status.h"
#include "node/gossip/share_codec.h"
#include "node/privacy/accountant.h"

namespace dpnode::node {

class Trainer {
 public:
  virtual ~Trainer() = default;

  // Names and shapes, fixed for the Trainer's lifetime.
  virtual gossip::Layout ParameterLayout() const = 0;
  // The current parameters, LayoutSize(ParameterLayout()) values.
  virtual std::vector<float> Parameters() const = 0;
  // InvalidArgument when `params` has the wrong length or non-finite values.
  virtual Status SetParameters(const std::vector<float>& params) = 0;
  // q and σ of one DP-SGD step.
  virtual privacy::StepBlock StepCost() const = 0;
  // One DP-SGD step (sample a batch, clip, noise, update). Runs in
  // RunCompute's `work`: it must touch only the trainer. Any failure is a
  // Status (the Node stops training; the step stays charged).
  virtual Status Step() = 0;
  // Loss on the site's held-out data, for progress reports. Heavy: callers
  // run it through RunCompute too.
  virtual Result<double> Evaluate() = 0;
};

}  // namespace dpnode::node

#endif  // DPNODE_NODE_TRAINER_H_
