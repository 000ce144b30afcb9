// Calibration: turning a privacy target into a training plan.
//
// Both directions search over ComputeEpsilon, which is monotone in the
// searched quantity (ε falls as σ grows, rises with T). Every answer is
// verified against the target before it is returned: the σ returned always
// spends at most the target ε, the T returned always fits.
#ifndef DPNODE_NODE_PRIVACY_CALIBRATE_H_
#define DPNODE_NODE_PRIVACY_CALIBRATE_H_

#include <cstdint>

#include "base/status.h"
#include "node/privacy/accountant.h"

namespace dpnode::privacy {

// Noise multipliers beyond this are treated as "the target is unreachable":
// with σ = 10^4 each step adds noise ten thousand times the clipping norm.
inline constexpr double kMaxNoiseMultiplier = 1e4;
// Plans longer than this are refused as nonsense (and cap the search).
inline constexpr int64_t kMaxSteps = int64_t{1} << 40;

struct NoiseCalibration {
  double noise_multiplier = 0;  // smallest σ found with ε(σ) ≤ target
  double epsilon = 0;           // ε actually spent at that σ
};

// The smallest σ (to a relative tolerance of 1e-6 for RDP, 1e-4 for PRV)
// such that `steps` steps at sample rate q spend at most `target_epsilon`
// at δ. Errors: invalid inputs, steps < 1, or a target that would need
// σ > kMaxNoiseMultiplier.
Result<NoiseCalibration> SmallestNoiseMultiplier(AccountantKind kind, double target_epsilon,
                                                 double delta, double sample_rate,
                                                 int64_t steps);

struct StepsCalibration {
  int64_t steps = 0;    // largest T with ε(T) ≤ target
  double epsilon = 0;   // ε actually spent after those T steps
  bool capped = false;  // true when T hit kMaxSteps (the budget is practically unbounded)
};

// The largest T such that T steps at (q, σ) spend at most `target_epsilon`
// at δ, after an optional `prefix` already spent (the ledger's history).
// Errors: invalid inputs, or not even one more step fits.
Result<StepsCalibration> LargestSteps(AccountantKind kind, double target_epsilon, double delta,
                                      double sample_rate, double noise_multiplier,
                                      const History& prefix = {});

Status ValidateTargetEpsilon(double target_epsilon);

}  // namespace dpnode::privacy

#endif  // DPNODE_NODE_PRIVACY_CALIBRATE_H_
