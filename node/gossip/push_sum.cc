// Push-sum / stochastic gradient push (averaging.h).
#include "base/check.h"
#include "node/gossip/averaging.h"

namespace dpnode::gossip {

PushSumPolicy::PushSumPolicy(std::vector<double> initial, const PolicyOptions& options)
    : AveragingPolicy(initial.size()), z_(std::move(initial)) {
  options_ = options;
}

std::vector<double> PushSumPolicy::Estimate() const {
  std::vector<double> x(z_.size());
  for (size_t i = 0; i < z_.size(); ++i) x[i] = z_[i] / w_;
  return x;
}

void PushSumPolicy::ApplyLocalDelta(const std::vector<double>& delta) {
  DPNODE_CHECK(delta.size() == z_.size(), "delta %zu vs %zu", delta.size(), z_.size());
  // The step was taken on the de-biased estimate x = z / w, so z moves by
  // w·Δ and x by exactly Δ (as the reference SGP implementation does: unbias,
  // step, re-bias). Adding Δ to z unscaled would move x by Δ / w, which blows
  // up when shares to a peer not yet known dead have drained w.
  for (size_t i = 0; i < z_.size(); ++i) z_[i] += w_ * delta[i];
}

void PushSumPolicy::OnTick(TimePoint, const std::vector<PeerId>& partners, Rng& rng,
                           std::vector<Outgoing>* out) {
  if (partners.empty()) return;
  Outgoing o;
  o.to = partners[rng.Below(partners.size())];
  o.share.round = round_;
  o.share.weight = w_ / 2;
  o.share.values = RoundForWire(Estimate());
  // Subtract exactly what the receiver will add, so wire rounding moves mass
  // between sites but never creates or destroys it.
  for (size_t i = 0; i < z_.size(); ++i) z_[i] -= o.share.weight * o.share.values[i];
  w_ -= o.share.weight;
  ++round_;
  out->push_back(std::move(o));
}

Status PushSumPolicy::OnShare(TimePoint, const PeerId&, const Share& share,
                              std::vector<Outgoing>*) {
  DPNODE_CHECK(share.values.size() == z_.size(), "share %zu vs %zu", share.values.size(),
               z_.size());
  for (size_t i = 0; i < z_.size(); ++i) z_[i] += share.weight * share.values[i];
  w_ += share.weight;
  return Status::Ok();
}

void PushSumPolicy::Undeliverable(const Outgoing& o) {
  for (size_t i = 0; i < z_.size(); ++i) z_[i] += o.share.weight * o.share.values[i];
  w_ += o.share.weight;
}

}  // namespace dpnode::gossip
