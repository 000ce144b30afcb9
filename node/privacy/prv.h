// PRV accountant (Gopi, Lee, Wutschitz 2021, "Numerical Composition of
// Differential Privacy"), matching Opacus's PRVAccountant: the privacy loss
// random variable of each Poisson-subsampled Gaussian step is discretised on
// a common grid, self-composed by FFT, and ε is read off with rigorous error
// bounds.
#ifndef DPNODE_NODE_PRIVACY_PRV_H_
#define DPNODE_NODE_PRIVACY_PRV_H_

#include "base/status.h"
#include "node/privacy/accountant.h"

namespace dpnode::privacy {

struct PrvOptions {
  double eps_error = 0.01;   // allowed error in ε (Opacus's default)
  double delta_error = 0;    // allowed error in δ; 0 means Opacus's default rule
};

struct PrvEpsilon {
  double lower = 0;     // ε is at least this
  double estimate = 0;  // point estimate
  double upper = 0;     // ε is at most this (what Opacus's get_epsilon returns)
};

Result<PrvEpsilon> PrvEpsilonFor(const History& history, double delta,
                                 const PrvOptions& options = {});

}  // namespace dpnode::privacy

#endif  // DPNODE_NODE_PRIVACY_PRV_H_
