// Randomized pairwise gossip (averaging.h). Both sides apply half the
// difference of the values actually sent, so the sum over sites is conserved
// even when exchanges overlap; offers are numbered so that an answer can only
// complete the offer it answers.
#include <algorithm>

#include "base/check.h"
#include "node/gossip/averaging.h"

namespace dpnode::gossip {

PairwisePolicy::PairwisePolicy(std::vector<double> initial, const PolicyOptions& options)
    : AveragingPolicy(initial.size()), x_(std::move(initial)) {
  options_ = options;
}

void PairwisePolicy::ApplyLocalDelta(const std::vector<double>& delta) {
  DPNODE_CHECK(delta.size() == x_.size(), "delta %zu vs %zu", delta.size(), x_.size());
  for (size_t i = 0; i < x_.size(); ++i) x_[i] += delta[i];
}

void PairwisePolicy::OnTick(TimePoint now, const std::vector<PeerId>& partners, Rng& rng,
                            std::vector<Outgoing>* out) {
  if (pending_) {
    const bool partner_gone =
        std::find(partners.begin(), partners.end(), pending_peer_) == partners.end();
    if (!partner_gone && now - pending_since_ < options_.round_timeout) return;
    // The answer is lost, very late, or its sender was declared dead: give
    // up on it (a late answer no longer matches and is refused).
    pending_ = false;
  }
  if (partners.empty()) return;
  Outgoing o;
  o.to = partners[rng.Below(partners.size())];
  o.share.round = offers_++;
  o.share.weight = kOfferWeight;
  o.share.values = RoundForWire(x_);
  pending_ = true;
  pending_peer_ = o.to;
  pending_offer_ = o.share.round;
  pending_sent_ = o.share.values;
  pending_since_ = now;
  out->push_back(std::move(o));
}

Status PairwisePolicy::OnShare(TimePoint, const PeerId& from, const Share& share,
                               std::vector<Outgoing>* out) {
  DPNODE_CHECK(share.values.size() == x_.size(), "share %zu vs %zu", share.values.size(),
               x_.size());
  const bool ours = pending_ && pending_peer_ == from && share.round == pending_offer_;
  if (share.weight == kAnswerWeight) {
    if (!ours) return Status::OutOfRange("pairwise answer to no pending offer of ours");
    for (size_t i = 0; i < x_.size(); ++i) x_[i] += (share.values[i] - pending_sent_[i]) / 2;
    pending_ = false;
    ++round_;
    return Status::Ok();
  }
  if (share.weight == kBusyWeight) {
    if (!ours) return Status::OutOfRange("pairwise decline of no pending offer of ours");
    pending_ = false;  // declined: nothing changed on either side
    return Status::OutOfRange("pairwise offer declined");  // no mixing happened
  }
  if (share.weight != kOfferWeight) {
    return Status::InvalidArgument("pairwise share weight is not offer, answer or decline");
  }
  Outgoing o;
  o.to = from;
  o.share.round = share.round;
  o.share.values = RoundForWire(x_);
  if (pending_ && pending_peer_ == from) {
    // We are waiting on this peer: our offers crossed, or it has already
    // dealt with ours. Decline; it will try again.
    o.share.weight = kBusyWeight;
    out->push_back(std::move(o));
    return Status::OutOfRange("pairwise offer declined: waiting on this peer");
  }
  o.share.weight = kAnswerWeight;
  last_answer_delta_.assign(x_.size(), 0.0);
  for (size_t i = 0; i < x_.size(); ++i) {
    last_answer_delta_[i] = (share.values[i] - o.share.values[i]) / 2;
    x_[i] += last_answer_delta_[i];
  }
  last_answer_peer_ = from;
  out->push_back(std::move(o));
  return Status::Ok();
}

void PairwisePolicy::Undeliverable(const Outgoing& o) {
  if (o.share.weight == kOfferWeight) {
    if (pending_ && pending_peer_ == o.to && pending_offer_ == o.share.round) pending_ = false;
    return;
  }
  if (o.share.weight != kAnswerWeight) return;
  // Our answer never left: undo the half step we took for it. The Node calls
  // this right after the OnShare that produced the answer.
  if (o.to == last_answer_peer_ && last_answer_delta_.size() == x_.size()) {
    for (size_t i = 0; i < x_.size(); ++i) x_[i] -= last_answer_delta_[i];
    last_answer_delta_.clear();
  }
}

}  // namespace dpnode::gossip
