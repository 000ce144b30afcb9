// The DP-SGD training loop of one site: Poisson sampling, per-example
// clipping, Gaussian noise, the optimiser step, and the ledger charge that
// must precede every step.
//
// One private step, with N training records, sample rate q, clip norm C and
// noise multiplier σ:
//   1. the step is already paid for: the ledger (node/privacy/ledger.h) holds
//      a durable charge covering it (reserved in blocks of
//      ledger_block_steps; a crash can waste reserved steps, never under-count);
//   2. every record joins the batch independently with probability q (the
//      batch may be empty: still a step, still charged, still noised);
//   3. the per-example gradients are clipped to C and summed (network.h);
//   4. N(0, σ²C²) is added to every coordinate of the sum, from the noise
//      RandomStream (a CSPRNG unless a seed is explicitly given);
//   5. the sum is divided by the expected batch size qN (not the realised
//      one: the realised size is private, as in Opacus's Poisson mode);
//   6. the optimiser updates the parameters.
// When the next block would exceed the budget the ledger refuses
// (BudgetExhausted); the trainer then charges only the steps that still fit,
// and stops cleanly when none does.
//
// Non-private training (private_training = false) runs the same loop with no
// clipping, no noise and no ledger, for baselines.
//
// No clock, no threads: the caller decides when steps run (the daemon between
// gossip rounds, `dpnode train` in a loop).
#ifndef DPNODE_NODE_LEARN_DPSGD_H_
#define DPNODE_NODE_LEARN_DPSGD_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "node/learn/examples.h"
#include "node/learn/metrics.h"
#include "node/learn/network.h"
#include "node/learn/noise.h"
#include "node/learn/optimizer.h"
#include "node/privacy/ledger.h"

namespace dpnode::learn {

struct DpSgdConfig {
  bool private_training = true;
  double sample_rate = 0;       // q ∈ (0, 1]
  double noise_multiplier = 0;  // σ > 0 when private
  double clip_norm = 1.0;       // C > 0 when private
  int64_t max_steps = 0;        // the plan's T; Run() stops there
  int64_t ledger_block_steps = 16;  // steps charged per ledger record (one fsync each)
  // kGhost (fast) or kMicrobatch (reference); private training only.
  ClipMode clip_mode = ClipMode::kGhost;
  // Set only for tests and simulation: sampling and noise then come from
  // seeded streams and outputs say "seeded (NOT private)".
  std::optional<uint64_t> noise_seed;
  uint64_t dropout_seed = 0;  // not secret
  // Who charges the ledger. The Node (node/trainer.h) charges each step
  // itself before it asks for it; it then creates the trainer with
  // caller_charges = true and no ledger, and may only call
  // RunChargedStep(). Everyone else lets the trainer charge (TryStep/Run).
  bool caller_charges = false;
};

struct StepReport {
  int64_t batch_size = 0;  // realised |batch|
  GradientStats gradient;
};

enum class StopReason { kCompleted, kBudgetExhausted };
const char* StopReasonName(StopReason reason);  // "completed" | "budget_exhausted"

struct TrainReport {
  int64_t steps_planned = 0;
  int64_t steps_run = 0;
  int64_t examples = 0;       // Σ realised batch sizes
  int64_t clipped = 0;        // examples whose gradient norm exceeded C
  double loss_sum = 0;        // Σ cross-entropy over all sampled examples
  StopReason stop = StopReason::kCompleted;
  std::string stop_message;   // the ledger's reason when the budget stopped us
  int64_t ledger_steps = 0;   // steps the ledger holds after the run (all runs)
  double epsilon_spent = 0;   // by the ledger's accountant, after the run
  std::string noise;          // NoiseDescription, "none" when non-private
};

class DpSgdTrainer {
 public:
  // `network` and `ledger` are not owned and must outlive the trainer.
  // `ledger` is required (and its budget pays) when config.private_training
  // and not config.caller_charges; it must be null with caller_charges and
  // is ignored for non-private training.
  static Result<std::unique_ptr<DpSgdTrainer>> Create(Network& network,
                                                      const OptimizerConfig& optimizer,
                                                      const DpSgdConfig& config,
                                                      privacy::Ledger* ledger);

  // Runs one step, charging the ledger first when no reserved step is left.
  // Returns false (and runs nothing) when the budget cannot pay for one more
  // step; other ledger or compute failures are errors.
  Result<bool> TryStep(const Examples& data, StepReport* report = nullptr);

  // TryStep until max_steps have run or the budget is exhausted.
  Result<TrainReport> Run(const Examples& data);

  // One step that the caller has already charged to its ledger (only with
  // caller_charges; TryStep and Run refuse then). Precondition, which this
  // class cannot check: the charge record for this step is durable.
  Status RunChargedStep(const Examples& data, StepReport* report = nullptr);

  int64_t steps_run() const { return steps_run_; }
  int64_t reserved_steps() const { return reserved_; }  // charged, not yet run
  const RandomStream& noise_stream() const { return noise_; }
  // The optimiser's state, for checkpoints (node/learn/checkpoint.h).
  const Optimizer& optimizer() const { return optimizer_; }
  Optimizer& mutable_optimizer() { return optimizer_; }

 private:
  DpSgdTrainer(Network& network, const OptimizerConfig& optimizer, const DpSgdConfig& config,
               privacy::Ledger* ledger, RandomStream sampling, RandomStream noise);
  // Makes reserved_ > 0; false when the budget cannot pay for one step.
  Result<bool> Charge();
  // Sample, clip, noise, update: the step itself, already paid for.
  Status StepPaid(const Examples& data, StepReport* report);

  Network& network_;
  Optimizer optimizer_;
  DpSgdConfig config_;
  privacy::Ledger* ledger_;
  RandomStream sampling_;
  RandomStream noise_;
  int64_t reserved_ = 0;
  int64_t steps_run_ = 0;
  std::string exhausted_message_;
  std::vector<float> batch_features_;
  std::vector<int32_t> batch_labels_;
  std::vector<float> gradient_;
};

// Scores `network` (no dropout) on `data` with ComputeMetrics (metrics.h).
Result<Metrics> Evaluate(Network& network, const Examples& data);

}  // namespace dpnode::learn

#endif  // DPNODE_NODE_LEARN_DPSGD_H_
