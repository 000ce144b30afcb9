// What a DP-SGD run has spent, in (ε, δ), by either accountant.
//
// The mechanism is the Poisson-subsampled Gaussian: each step samples every
// record independently with probability q (the sample rate), clips each
// example's gradient to norm C and adds N(0, σ²C²) noise, σ being the noise
// multiplier. Adjacency is add/remove-one record. A run is a History: blocks
// of identical steps, possibly with different (q, σ) over time.
#ifndef DPNODE_NODE_PRIVACY_ACCOUNTANT_H_
#define DPNODE_NODE_PRIVACY_ACCOUNTANT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace dpnode::privacy {

// `steps` consecutive DP-SGD steps at sample rate q ∈ (0, 1] and noise
// multiplier σ > 0.
struct StepBlock {
  double sample_rate = 0;       // q
  double noise_multiplier = 0;  // σ
  int64_t steps = 0;            // T ≥ 0
};

using History = std::vector<StepBlock>;

enum class AccountantKind {
  kRdp,  // Rényi DP (Mironov, Talwar, Zhang 2019), Opacus's conversion
  kPrv,  // privacy loss random variables (Gopi, Lee, Wutschitz 2021)
};

const char* AccountantName(AccountantKind kind);  // "rdp" or "prv"
Result<AccountantKind> ParseAccountant(std::string_view name);

// One-line reasons for nonsense parameters; OK when usable.
Status ValidateDelta(double delta);                // δ ∈ (0, 1)
Status ValidateSampleRate(double sample_rate);     // q ∈ (0, 1]
Status ValidateNoiseMultiplier(double sigma);      // σ > 0, finite
Status ValidateStepBlock(const StepBlock& block);  // all of the above, steps ≥ 0

// Merges adjacent blocks with identical (q, σ) and drops empty ones; ε is a
// function of the multiset of steps, so this never changes the answer.
History Compact(const History& history);

// ε spent after `history` at δ. For kPrv this is the PRV upper bound (the
// figure Opacus's PRVAccountant reports), capped by the RDP figure, since the
// minimum of two valid upper bounds is itself a valid upper bound.
// An empty history costs ε = 0. With `rdp_cache` (rdp.h) the RDP part reuses
// the per-step curves of (q, σ) pairs seen before: same result, bit for bit.
class RdpCurveCache;
Result<double> ComputeEpsilon(AccountantKind kind, const History& history, double delta,
                              RdpCurveCache* rdp_cache = nullptr);

}  // namespace dpnode::privacy

#endif  // DPNODE_NODE_PRIVACY_ACCOUNTANT_H_
