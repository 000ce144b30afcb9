// The policy-independent parts of averaging.h: names, the factory, rounding.
#include "node/gossip/averaging.h"

namespace dpnode::gossip {

const char* PolicyKindName(PolicyKind kind) {
  switch (kind) {
    case PolicyKind::kPushSum:
      return "push-sum";
    case PolicyKind::kPairwise:
      return "pairwise";
    case PolicyKind::kDpsgd:
      return "d-psgd";
  }
  return "unknown";
}

Result<PolicyKind> ParsePolicyKind(const std::string& name) {
  for (PolicyKind k : {PolicyKind::kPushSum, PolicyKind::kPairwise, PolicyKind::kDpsgd}) {
    if (name == PolicyKindName(k)) return k;
  }
  return Status::InvalidArgument("unknown averaging policy \"" + name +
                                 "\" (expected push-sum, pairwise or d-psgd)");
}

std::vector<double> AveragingPolicy::RoundForWire(const std::vector<double>& v) const {
  if (!options_.float32_wire) return v;
  std::vector<double> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = static_cast<double>(static_cast<float>(v[i]));
  return r;
}

std::unique_ptr<AveragingPolicy> MakePolicy(PolicyKind kind, std::vector<double> initial,
                                            const PolicyOptions& options) {
  switch (kind) {
    case PolicyKind::kPairwise:
      return std::make_unique<PairwisePolicy>(std::move(initial), options);
    case PolicyKind::kDpsgd:
      return std::make_unique<DpsgdPolicy>(std::move(initial), options);
    case PolicyKind::kPushSum:
      break;
  }
  return std::make_unique<PushSumPolicy>(std::move(initial), options);
}

}  // namespace dpnode::gossip
