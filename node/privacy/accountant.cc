#include "node/privacy/accountant.h"

#include <algorithm>
#include <cmath>

#include "node/privacy/prv.h"
#include "node/privacy/rdp.h"

namespace dpnode::privacy {
namespace {

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

const char* AccountantName(AccountantKind kind) {
  switch (kind) {
    case AccountantKind::kRdp: return "rdp";
    case AccountantKind::kPrv: return "prv";
  }
  return "?";
}

Result<AccountantKind> ParseAccountant(std::string_view name) {
  if (name == "rdp") return AccountantKind::kRdp;
  if (name == "prv") return AccountantKind::kPrv;
  return Status::InvalidArgument("unknown accountant '" + std::string(name) +
                                 "' (expected rdp or prv)");
}

Status ValidateDelta(double delta) {
  if (!(delta > 0 && delta < 1)) {
    return Status::InvalidArgument("delta must be in (0, 1), got " + Num(delta));
  }
  return Status::Ok();
}

Status ValidateSampleRate(double sample_rate) {
  if (!(sample_rate > 0 && sample_rate <= 1)) {
    return Status::InvalidArgument("sample rate must be in (0, 1], got " + Num(sample_rate));
  }
  return Status::Ok();
}

Status ValidateNoiseMultiplier(double sigma) {
  if (!(sigma > 0) || !std::isfinite(sigma)) {
    return Status::InvalidArgument("noise multiplier must be a finite number > 0, got " + Num(sigma));
  }
  return Status::Ok();
}

Status ValidateStepBlock(const StepBlock& block) {
  DPNODE_RETURN_IF_ERROR(ValidateSampleRate(block.sample_rate));
  DPNODE_RETURN_IF_ERROR(ValidateNoiseMultiplier(block.noise_multiplier));
  if (block.steps < 0) {
    return Status::InvalidArgument("steps must be >= 0, got " + std::to_string(block.steps));
  }
  return Status::Ok();
}

History Compact(const History& history) {
  History out;
  for (const StepBlock& b : history) {
    if (b.steps == 0) continue;
    if (!out.empty() && out.back().sample_rate == b.sample_rate &&
        out.back().noise_multiplier == b.noise_multiplier) {
      out.back().steps += b.steps;
    } else {
      out.push_back(b);
    }
  }
  return out;
}

Result<double> ComputeEpsilon(AccountantKind kind, const History& history, double delta,
                              RdpCurveCache* rdp_cache) {
  DPNODE_RETURN_IF_ERROR(ValidateDelta(delta));
  for (const StepBlock& b : history) DPNODE_RETURN_IF_ERROR(ValidateStepBlock(b));
  const History compact = Compact(history);
  if (compact.empty()) return 0.0;

  Result<RdpEpsilon> rdp =
      rdp_cache ? rdp_cache->EpsilonFor(compact, delta) : RdpEpsilonFor(compact, delta);
  if (!rdp.ok()) return rdp.status();
  if (kind == AccountantKind::kRdp) return rdp->epsilon;

  Result<PrvEpsilon> prv = PrvEpsilonFor(compact, delta);
  if (!prv.ok()) return prv.status();
  return std::min(prv->upper, rdp->epsilon);
}

}  // namespace dpnode::privacy
