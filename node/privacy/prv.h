// PRV accountant (Gopi, Lee, Wutschitz 2021, "Numerical Composition of
// Differential Privacy"), matching Opacus's PRVAccountant: the privacy loss
// random variable of each Poisson-subsampled Gaussian step is discretised on
// a common grid, self-composed by FFT, and ε is read off with rigorous error
// bounds.
#ifndef DPNODE_NODE_PRIVACY_PRV_H_
#define DPNODE_NODE_PRIVACY_PRV_H_

#include <cstdint>

#include "base/status.h"
#include "node/privacy/accountant.h"

namespace dpnode::privacy {

struct PrvOptions {
  double eps_error = 0.01;   // allowed error in ε (Opacus's default)
  double delta_error = 0;    // allowed error in δ; 0 means Opacus's default rule
  // Largest FFT grid (points) we will allocate. The grid size follows from
  // the domain/mesh rule, ~2·(L/mesh) rounded up to a power of two, where L
  // is an RDP tail bound and mesh = eps_error/sqrt(T·log(12/delta_error)/2);
  // memory is ~12 bytes per point (~20 with several blocks), so 2^24 points
  // is at most ~0.35 GB. Larger requests fail with kOutOfRange.
  int64_t max_grid_size = int64_t{1} << 24;
};

struct PrvEpsilon {
  double lower = 0;     // ε is at least this
  double estimate = 0;  // point estimate
  double upper = 0;     // ε is at most this (what Opacus's get_epsilon returns)
  // Points of the discretisation domain (Opacus's Domain.size, before our
  // zero-padding to a power of two); 0 for an empty history. Diagnostic.
  int64_t grid_size = 0;
};

// ε after `history` at δ, with Opacus's guarantee that ε ∈ [lower, upper]
// (upper − lower ≈ 2·eps_error). An empty history (or only zero-step blocks)
// costs {0, 0, 0}. Errors: kInvalidArgument for a bad δ, block or option,
// or a δ so small that rounding in the tail sums would dominate (as Opacus
// refuses); kOutOfRange when the grid would exceed options.max_grid_size;
// kInternal if the numerics fail a self-check. Deterministic; takes ~0.25 s
// of CPU and ~100 MB for 10^5 steps at q = 0.01, σ = 1, δ = 1e-5.
Result<PrvEpsilon> PrvEpsilonFor(const History& history, double delta,
                                 const PrvOptions& options = {});

}  // namespace dpnode::privacy

#endif  // DPNODE_NODE_PRIVACY_PRV_H_
