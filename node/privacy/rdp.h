// Rényi-DP accountant for the Poisson-subsampled Gaussian mechanism
// (Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the Sampled
// Gaussian Mechanism"), matching Opacus's RDPAccountant: the same default
// orders and the same RDP→(ε, δ) conversion (Balle et al. 2020, Thm. 21).
#ifndef DPNODE_NODE_PRIVACY_RDP_H_
#define DPNODE_NODE_PRIVACY_RDP_H_

#include <vector>

#include "base/status.h"
#include "node/privacy/accountant.h"

namespace dpnode::privacy {

// Opacus's default orders: 1.1, 1.2, ..., 10.9, then 12, 13, ..., 63.
const std::vector<double>& DefaultRdpOrders();

// RDP of ONE step of the subsampled Gaussian at order α > 1, in nats.
// Preconditions (checked by callers): q ∈ (0, 1], σ > 0.
// Integer α: exact binomial expansion, O(α) terms. Fractional α: the two
// alternating erfc series of Mironov et al. 2019 §3.3, truncated where Opacus
// truncates them. Returns NaN in the rare case where rounding makes a partial
// sum of that series negative (Opacus raises there); callers skip NaN orders.
double SubsampledGaussianRdp(double sample_rate, double noise_multiplier, double order);

struct RdpEpsilon {
  double epsilon = 0;
  double order = 0;  // the order α at which ε was smallest
};

// ε at δ after `history`, composing RDP over blocks then converting once.
// Blocks are validated (ValidateStepBlock), δ by ValidateDelta; every order
// must be finite and > 1. An empty history (or only zero-step blocks) costs
// {0, 0}. Orders whose RDP is NaN are ignored, as Opacus does; if no order
// gives a finite ε the answer is ε = +inf (no guarantee), not an error.
// Cost: O(orders × distinct (q, σ)) series evaluations, independent of T.
Result<RdpEpsilon> RdpEpsilonFor(const History& history, double delta,
                                 const std::vector<double>& orders = DefaultRdpOrders());

// RdpEpsilonFor over DefaultRdpOrders() that keeps the per-step RDP curve
// (SubsampledGaussianRdp at every order) of each (q, σ) it has seen, so that
// re-evaluating a history that grows by blocks of the same few (q, σ) — the
// ledger, before every charge — sums the series once per pair instead of once
// per call. That matters at large σ, where each fractional-order series runs
// to thousands of terms (a few ms per call; with 1,000 simulated sites
// charging blocks at once it was seconds of CPU). EpsilonFor returns exactly,
// bit for bit, what RdpEpsilonFor(history, delta) returns: the same doubles
// are added in the same order. Per object (no global state), not
// thread-safe; keeps at most kMaxCurves pairs (later ones are computed each
// time, not kept), 8 × |orders| bytes each.
class RdpCurveCache {
 public:
  static constexpr size_t kMaxCurves = 64;
  Result<RdpEpsilon> EpsilonFor(const History& history, double delta);
  size_t curves() const { return curves_.size(); }

 private:
  struct Curve {
    double sample_rate;
    double noise_multiplier;
    std::vector<double> rdp;  // per step, one per DefaultRdpOrders() entry
  };
  std::vector<Curve> curves_;
  std::vector<double> scratch_;  // a curve not kept
};

// The RDP → (ε, δ) step alone (Balle et al. 2020, Thm. 21, as in Opacus):
// ε(α) = rdp(α) − (log δ + log α)/(α − 1) + log((α − 1)/α), minimised over α.
// `rdp[k]` is the total RDP at `orders[k]` (same length, orders finite > 1).
// Differs from Opacus only where Opacus would report ε < 0 (possible for
// large δ): ε is clamped to 0, which is still a true statement.
Result<RdpEpsilon> EpsilonFromRdp(const std::vector<double>& orders,
                                  const std::vector<double>& rdp, double delta);

}  // namespace dpnode::privacy

#endif  // DPNODE_NODE_PRIVACY_RDP_H_
