// LearnerTrainer: the LibTorch DP-SGD learner behind the Node's Trainer
// interface (node/trainer.h), one per site, for the simulator and the daemon.
//
// The Node charges every step to its ledger before calling Step(), so a
// private LearnerTrainer runs DpSgdTrainer in caller_charges mode
// (RunChargedStep) and holds no ledger. A non-private one (baselines, tests
// driving it by hand) runs the same loop with no clipping or noise; its
// StepCost has σ = 0, which a training Node's ledger refuses, so drive it
// without a Node.
//
// Optimiser state across SetParameters: gossip replaces the parameters
// between steps, and the momentum / Adam moments are kept (local optimiser
// state, as in decentralised SGD with Opacus-style local optimisers): the
// state is a post-processing of this site's own noised gradients, so keeping
// it costs no privacy, and resetting it every step would turn momentum off.
//
// Threading: as node/trainer.h. Step() and Evaluate()/metrics touch only
// this object; the caller never runs two calls at once.
#ifndef DPNODE_NODE_LEARN_NODE_TRAINER_H_
#define DPNODE_NODE_LEARN_NODE_TRAINER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "node/learn/checkpoint.h"
#include "node/learn/data/dataset.h"
#include "node/learn/dpsgd.h"
#include "node/learn/examples.h"
#include "node/learn/metrics.h"
#include "node/learn/model_spec.h"
#include "node/learn/network.h"
#include "node/learn/optimizer.h"
#include "node/trainer.h"

namespace dpnode::learn {

struct LearnerOptions {
  ModelSpec spec;
  // Identifies the data's meaning in the model fingerprint (Fingerprint(schema)).
  SchemaFingerprint schema_fingerprint{};
  OptimizerConfig optimizer;
  // sample_rate (q), noise_multiplier (σ), clip_norm (C), clip_mode,
  // noise_seed (set only for tests and simulation: NOT private),
  // dropout_seed and private_training are used. caller_charges is forced on
  // for private training; max_steps and ledger_block_steps are ignored (the
  // Node decides how many steps run and charges them).
  DpSgdConfig dpsgd;
  // Starting parameters; empty means InitialParameters(spec, init_seed).
  std::vector<float> initial_parameters;
  uint64_t init_seed = 0;
};

class LearnerTrainer : public node::Trainer {
 public:
  // Copies `train` and `test` (either may be rebuilt from a Dataset with
  // FromDataset). Errors: InvalidArgument for an unusable spec, optimiser or
  // DP-SGD setting, no training rows, rows whose width is not spec.input_dim
  // or whose labels are outside [0, num_classes), or bad initial parameters.
  // `test` may be empty (Evaluate and TestMetrics then fail).
  static Result<std::unique_ptr<LearnerTrainer>> Create(ExampleTable train, ExampleTable test,
                                                        const LearnerOptions& options);
  // A site's data set: its train_rows train, its test_rows evaluate.
  static Result<std::unique_ptr<LearnerTrainer>> FromDataset(const Dataset& data,
                                                             const LearnerOptions& options);

  ~LearnerTrainer() override;

  // node::Trainer. Layout: model_spec.h's named tensors ("layer<l>.weight"
  // {out, in}, "layer<l>.bias" {out}).
  gossip::Layout ParameterLayout() const override;
  std::vector<float> Parameters() const override;
  // InvalidArgument (parameters unchanged) on the wrong length or a NaN/Inf.
  Status SetParameters(const std::vector<float>& params) override;
  // {q, σ, 1}; σ = 0 for a non-private trainer.
  privacy::StepBlock StepCost() const override;
  // One DP-SGD step on the training rows. Private: the caller has already
  // charged it (precondition this class cannot check).
  Status Step() override;
  // Mean cross-entropy (nats per row) of the current parameters on the test
  // rows, no dropout. FailedPrecondition without test rows.
  Result<double> Evaluate() override;

  // Accuracy, AUROC, AUPRC, Brier, ECE (metrics.h) of the current parameters
  // on the site's test rows (FailedPrecondition without any), or on rows the
  // caller gives (e.g. a pooled test set; width must be spec.input_dim).
  Result<Metrics> TestMetrics();
  Result<Metrics> MetricsOn(const Examples& data);
  // Mean cross-entropy on any rows.
  Result<double> LossOn(const Examples& data);

  // The checkpoint of the current state: parameters, optimiser state, the
  // number of steps run, the fingerprint and the caller's `extras`
  // (e.g. push-sum weight and round, which the Node owns).
  Checkpoint MakeCheckpoint(std::map<std::string, double> extras = {}) const;
  // Restores parameters, optimiser state and step count from `checkpoint`.
  // FailedPrecondition for another model's fingerprint; InvalidArgument
  // (nothing changed) when sizes do not fit or parameters are not finite.
  // The noise and sampling streams are not part of a checkpoint: a CSPRNG
  // trainer draws a fresh key anyway; a seeded one (simulation only)
  // restarts its streams from the seed, so give a restarted node a new seed
  // if repeated noise matters to the experiment. Dropout masks (not a
  // privacy mechanism) are keyed by the inner trainer's own step counter,
  // which restarts at 0, so a restored MLP with dropout repeats its masks.
  Status RestoreCheckpoint(const Checkpoint& checkpoint);

  const ModelSpec& spec() const { return options_.spec; }
  const ModelFingerprint& model_fingerprint() const { return fingerprint_; }
  int64_t steps() const { return steps_; }  // local steps run (restored ones included)
  int64_t train_rows() const { return train_.rows; }
  int64_t test_rows() const { return test_.rows; }
  bool private_training() const { return options_.dpsgd.private_training; }
  // "csprng", "seeded (NOT private)" or "none" (non-private).
  std::string noise_description() const;
  // The sum of the last step's realised batch and clipping figures.
  const StepReport& last_step() const { return last_step_; }

 private:
  LearnerTrainer(ExampleTable train, ExampleTable test, const LearnerOptions& options);
  Status CheckParameters(const std::vector<float>& params) const;

  LearnerOptions options_;
  ModelFingerprint fingerprint_{};
  ExampleTable train_;
  ExampleTable test_;
  std::unique_ptr<Network> network_;
  std::unique_ptr<DpSgdTrainer> dpsgd_;
  int64_t steps_ = 0;
  StepReport last_step_;
};

}  // namespace dpnode::learn

#endif  // DPNODE_NODE_LEARN_NODE_TRAINER_H_
