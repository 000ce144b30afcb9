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
double SubsampledGaussianRdp(double sample_rate, double noise_multiplier, double order);

struct RdpEpsilon {
  double epsilon = 0;
  double order = 0;  // the order α at which ε was smallest
};

// ε at δ after `history`, composing RDP over blocks then converting once.
Result<RdpEpsilon> RdpEpsilonFor(const History& history, double delta,
                                 const std::vector<double>& orders = DefaultRdpOrders());

}  // namespace dpnode::privacy

#endif  // DPNODE_NODE_PRIVACY_RDP_H_
