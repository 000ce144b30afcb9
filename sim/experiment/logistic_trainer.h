// A torch-free softmax-regression trainer for simulated experiments.
//
// It implements node::Trainer with DP-SGD (Poisson sampling at rate q,
// per-example L2 clipping to `clip`, Gaussian noise σ·clip per coordinate,
// sum divided by the expected batch q·n) or, with private = false, plain
// minibatch SGD on the same Poisson batches (no clipping, no noise, mean over
// the drawn batch). All randomness, the DP noise included, comes from one
// seeded xoshiro256** stream: runs are reproducible, and therefore NOT
// private. The experiment runner reports this as "noise": "seeded (NOT
// private)". Real deployments use the LibTorch learner with OS-entropy noise.
//
// Layout: "w" (classes × dim, row-major) and "b" (classes).
//
// Checkpoints (node/learn/checkpoint.h) have learn::LearnerTrainer's shape,
// so a simulated restart goes through the same file format as a real node:
// parameters, step count and a fingerprint of this model; the optimiser state
// is empty (plain SGD keeps none). The sampling/noise stream is not in a
// checkpoint: a restarted site builds its trainer with a new seed.
#ifndef DPNODE_SIM_EXPERIMENT_LOGISTIC_TRAINER_H_
#define DPNODE_SIM_EXPERIMENT_LOGISTIC_TRAINER_H_

#include <cstdint>
#include <vector>

#include "node/learn/checkpoint.h"
#include "node/learn/data/dataset.h"
#include "node/learn/model_spec.h"
#include "node/trainer.h"
#include "sim/seeds.h"

namespace dpnode::sim {

struct TrainPlan {
  bool is_private = true;
  double sample_rate = 0.1;       // q in (0, 1]
  double noise_multiplier = 1.0;  // σ; reported to the ledger (also when not private)
  double clip = 1.0;              // per-example L2 bound (private only)
  double learning_rate = 0.5;
};

// Test-set quality of a parameter vector.
struct EvalResult {
  double accuracy = 0;
  double auroc = 0;  // NaN unless two classes with both present
  double loss = 0;   // mean cross-entropy (nats)
};

// `data` holds the feature matrix; `rows` are this trainer's training rows.
// `data` must outlive the trainer.
class LogisticTrainer final : public node::Trainer {
 public:
  LogisticTrainer(const learn::Dataset& data, std::vector<int64_t> rows, int num_classes,
                  TrainPlan plan, uint64_t seed);

  gossip::Layout ParameterLayout() const override;
  std::vector<float> Parameters() const override { return params_; }
  Status SetParameters(const std::vector<float>& params) override;
  privacy::StepBlock StepCost() const override;
  Status Step() override;
  Result<double> Evaluate() override;

  // The current parameters and step count, with model_fingerprint().
  learn::Checkpoint MakeCheckpoint() const;
  // Restores parameters and step count. FailedPrecondition for another
  // model's fingerprint; InvalidArgument (nothing changed) for the wrong
  // length, a non-finite parameter or a non-empty optimiser state.
  Status RestoreCheckpoint(const learn::Checkpoint& checkpoint);
  // Identifies the layout (classes, dim) of this trainer's parameters;
  // hashed under its own domain tag, so distinct from LibTorch models'.
  const learn::ModelFingerprint& model_fingerprint() const { return fingerprint_; }

  int64_t steps_taken() const { return steps_taken_; }
  size_t num_rows() const { return rows_.size(); }

 private:
  const learn::Dataset& data_;
  std::vector<int64_t> rows_;
  int classes_;
  int64_t dim_;
  TrainPlan plan_;
  Xoshiro256 rng_;
  std::vector<float> params_;
  int64_t steps_taken_ = 0;
  learn::ModelFingerprint fingerprint_{};
};

// Accuracy, AUROC and loss of `params` (LogisticTrainer layout) on `rows`.
EvalResult EvaluateParams(const learn::Dataset& data, const std::vector<int64_t>& rows,
                          int num_classes, const std::vector<float>& params);

}  // namespace dpnode::sim

#endif  // DPNODE_SIM_EXPERIMENT_LOGISTIC_TRAINER_H_
