#include "node/privacy/calibrate.h"

#include <cmath>
#include <cstdio>
#include <string>

namespace dpnode::privacy {
namespace {

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

Result<double> EpsilonAtSigma(AccountantKind kind, double delta, double q, int64_t steps,
                              double sigma) {
  return ComputeEpsilon(kind, {{q, sigma, steps}}, delta);
}

Result<double> EpsilonAfter(AccountantKind kind, double delta, const History& prefix, double q,
                            double sigma, int64_t steps) {
  History h = prefix;
  h.push_back({q, sigma, steps});
  return ComputeEpsilon(kind, h, delta);
}

}  // namespace

Status ValidateTargetEpsilon(double target_epsilon) {
  if (!(target_epsilon > 0) || !std::isfinite(target_epsilon)) {
    return Status::InvalidArgument("target epsilon must be a finite number > 0, got " +
                                   Num(target_epsilon));
  }
  return Status::Ok();
}

Result<NoiseCalibration> SmallestNoiseMultiplier(AccountantKind kind, double target_epsilon,
                                                 double delta, double sample_rate,
                                                 int64_t steps) {
  DPNODE_RETURN_IF_ERROR(ValidateTargetEpsilon(target_epsilon));
  DPNODE_RETURN_IF_ERROR(ValidateDelta(delta));
  DPNODE_RETURN_IF_ERROR(ValidateSampleRate(sample_rate));
  if (steps < 1) {
    return Status::InvalidArgument("steps must be >= 1 to calibrate noise, got " +
                                   std::to_string(steps));
  }
  if (steps > kMaxSteps) {
    return Status::InvalidArgument("steps must be <= 2^40, got " + std::to_string(steps));
  }

  // PRV is never above RDP, so RDP's answer brackets PRV's from above; the
  // RDP search itself starts from σ = 1 and doubles.
  double hi = 1.0;
  double eps_hi = 0;
  if (kind == AccountantKind::kPrv) {
    Result<NoiseCalibration> rdp =
        SmallestNoiseMultiplier(AccountantKind::kRdp, target_epsilon, delta, sample_rate, steps);
    if (!rdp.ok()) return rdp.status();
    hi = rdp->noise_multiplier;
  }
  for (;;) {
    Result<double> eps = EpsilonAtSigma(kind, delta, sample_rate, steps, hi);
    if (!eps.ok()) return eps.status();
    if (*eps <= target_epsilon) {
      eps_hi = *eps;
      break;
    }
    hi *= 2;
    if (hi > kMaxNoiseMultiplier) {
      return Status::OutOfRange("target epsilon " + Num(target_epsilon) + " at delta " +
                                Num(delta) + " is unreachable: it would need a noise multiplier"
                                " above " + Num(kMaxNoiseMultiplier));
    }
  }
  // Find lo with ε(lo) > target (ε → ∞ as σ → 0 whenever q > 0).
  double lo = hi / 2;
  for (;;) {
    Result<double> eps = EpsilonAtSigma(kind, delta, sample_rate, steps, lo);
    if (!eps.ok()) return eps.status();
    if (*eps > target_epsilon) break;
    hi = lo;
    eps_hi = *eps;
    lo /= 2;
    if (lo < 1e-6) {
      // Practically no noise is needed; refuse rather than plan a σ ≈ 0 run.
      return Status::OutOfRange("target epsilon " + Num(target_epsilon) +
                                " is met even with noise multiplier " + Num(hi) +
                                "; check the target");
    }
  }
  const double tolerance = kind == AccountantKind::kRdp ? 1e-6 : 1e-4;
  while ((hi - lo) > tolerance * hi) {
    const double mid = 0.5 * (lo + hi);
    Result<double> eps = EpsilonAtSigma(kind, delta, sample_rate, steps, mid);
    if (!eps.ok()) return eps.status();
    if (*eps <= target_epsilon) {
      hi = mid;
      eps_hi = *eps;
    } else {
      lo = mid;
    }
  }
  return NoiseCalibration{hi, eps_hi};
}

Result<StepsCalibration> LargestSteps(AccountantKind kind, double target_epsilon, double delta,
                                      double sample_rate, double noise_multiplier,
                                      const History& prefix) {
  DPNODE_RETURN_IF_ERROR(ValidateTargetEpsilon(target_epsilon));
  DPNODE_RETURN_IF_ERROR(ValidateStepBlock({sample_rate, noise_multiplier, 0}));
  DPNODE_RETURN_IF_ERROR(ValidateDelta(delta));

  Result<double> one = EpsilonAfter(kind, delta, prefix, sample_rate, noise_multiplier, 1);
  if (!one.ok()) return one.status();
  if (*one > target_epsilon) {
    return Status::BudgetExhausted("not even one more step fits: it would bring epsilon to " +
                                   Num(*one) + " > target " + Num(target_epsilon));
  }
  // Invariant: ε(lo) ≤ target, and ε(hi) > target unless hi is the cap.
  int64_t lo = 1;
  double eps_lo = *one;
  if (kind == AccountantKind::kPrv) {
    // PRV ≤ RDP: RDP's largest T is a valid starting point.
    Result<StepsCalibration> rdp = LargestSteps(AccountantKind::kRdp, target_epsilon, delta,
                                                sample_rate, noise_multiplier, prefix);
    if (!rdp.ok()) return rdp.status();
    if (rdp->capped) return rdp;
    Result<double> eps =
        EpsilonAfter(kind, delta, prefix, sample_rate, noise_multiplier, rdp->steps);
    if (!eps.ok()) return eps.status();
    if (*eps <= target_epsilon && rdp->steps > lo) {
      lo = rdp->steps;
      eps_lo = *eps;
    }
  }
  int64_t hi = lo;
  for (;;) {
    if (hi >= kMaxSteps) return StepsCalibration{lo, eps_lo, true};
    hi = std::min(kMaxSteps, hi * 2);
    Result<double> eps = EpsilonAfter(kind, delta, prefix, sample_rate, noise_multiplier, hi);
    if (!eps.ok()) return eps.status();
    if (*eps > target_epsilon) break;
    lo = hi;
    eps_lo = *eps;
  }
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    Result<double> eps = EpsilonAfter(kind, delta, prefix, sample_rate, noise_multiplier, mid);
    if (!eps.ok()) return eps.status();
    if (*eps <= target_epsilon) {
      lo = mid;
      eps_lo = *eps;
    } else {
      hi = mid;
    }
  }
  return StepsCalibration{lo, eps_lo, false};
}

}  // namespace dpnode::privacy
