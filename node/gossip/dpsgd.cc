// Synchronous D-PSGD with Metropolis–Hastings weights (averaging.h).
#include <algorithm>

#include "base/check.h"
#include "node/gossip/averaging.h"

namespace dpnode::gossip {
namespace {
// How far ahead of us a neighbour's round may be before we skip forward to
// it (we missed rounds while we were away) rather than buffer its value.
constexpr uint64_t kMaxRoundsAhead = 1;
// Beyond this jump a round number is not a site that was away but a peer
// trying to drag us to round 2^48: refused (and the peer blamed).
constexpr uint64_t kMaxRoundSkip = uint64_t{1} << 20;
}  // namespace

DpsgdPolicy::DpsgdPolicy(std::vector<double> initial, const PolicyOptions& options)
    : AveragingPolicy(initial.size()), x_(std::move(initial)) {
  options_ = options;
}

void DpsgdPolicy::ApplyLocalDelta(const std::vector<double>& delta) {
  DPNODE_CHECK(delta.size() == x_.size(), "delta %zu vs %zu", delta.size(), x_.size());
  for (size_t i = 0; i < x_.size(); ++i) x_[i] += delta[i];
}

void DpsgdPolicy::StartRound(TimePoint now, const std::vector<PeerId>& neighbours,
                             std::vector<Outgoing>* out) {
  neighbours_ = neighbours;
  sent_ = RoundForWire(x_);
  round_started_ = now;
  undeliverable_.clear();
  in_round_ = true;
  for (const PeerId& n : neighbours_) {
    Outgoing o;
    o.to = n;
    o.share.round = round_;
    o.share.weight = static_cast<double>(neighbours_.size());  // our degree
    o.share.values = sent_;
    out->push_back(std::move(o));
  }
  MaybeFinishRound(false);
}

void DpsgdPolicy::MaybeFinishRound(bool force) {
  if (!in_round_) return;
  auto& box = inbox_[round_];
  if (!force) {
    for (const PeerId& n : neighbours_) {
      if (box.count(n) == 0 && undeliverable_.count(n) == 0) return;
    }
  }
  const double my_degree = static_cast<double>(neighbours_.size());
  for (const PeerId& n : neighbours_) {
    auto it = box.find(n);
    if (it == box.end()) continue;  // silent this round: its weight stays with us
    const double w = 1.0 / (1.0 + std::max(my_degree, it->second.degree));
    for (size_t i = 0; i < x_.size(); ++i) x_[i] += w * (it->second.values[i] - sent_[i]);
  }
  inbox_.erase(inbox_.begin(), inbox_.upper_bound(round_));
  ++round_;
  in_round_ = false;
}

void DpsgdPolicy::OnTick(TimePoint now, const std::vector<PeerId>& partners, Rng&,
                         std::vector<Outgoing>* out) {
  latest_partners_ = partners;
  if (in_round_) {
    // A neighbour that left partner choice (declared dead) will not answer.
    for (const PeerId& n : neighbours_) {
      if (std::find(partners.begin(), partners.end(), n) == partners.end()) {
        undeliverable_.insert(n);
      }
    }
    MaybeFinishRound(now - round_started_ >= options_.round_timeout);
  }
  if (!in_round_ && !partners.empty()) StartRound(now, partners, out);
}

Status DpsgdPolicy::OnShare(TimePoint now, const PeerId& from, const Share& share,
                            std::vector<Outgoing>* out) {
  DPNODE_CHECK(share.values.size() == x_.size(), "share %zu vs %zu", share.values.size(),
               x_.size());
  if (share.round < round_) {
    return Status::OutOfRange("d-psgd share for finished round " + std::to_string(share.round));
  }
  if (share.round - round_ > kMaxRoundSkip) {
    return Status::InvalidArgument("d-psgd round " + std::to_string(share.round) +
                                   " is implausibly far ahead of ours (" +
                                   std::to_string(round_) + ")");
  }
  inbox_[share.round][from] = Received{share.weight, share.values};
  if (share.round > round_ + kMaxRoundsAhead) {
    // The neighbour went on without us (we were away): close our round with
    // what we have and join the neighbour's.
    MaybeFinishRound(true);
    inbox_.erase(inbox_.begin(), inbox_.lower_bound(share.round));
    round_ = share.round;
    if (!latest_partners_.empty()) StartRound(now, latest_partners_, out);
    return Status::Ok();
  }
  MaybeFinishRound(false);
  return Status::Ok();
}

void DpsgdPolicy::Undeliverable(const Outgoing& o) {
  if (!in_round_ || o.share.round != round_) return;
  undeliverable_.insert(o.to);
  MaybeFinishRound(false);
}

}  // namespace dpnode::gossip
