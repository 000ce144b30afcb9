// Allowlist, peer records, liveness with suspicion, and peer scores.
#include "node/gossip/membership.h"

#include <algorithm>
#include <cstdio>

#include "protocol/peer_record.h"

namespace dpnode::gossip {

const char* LivenessName(Liveness l) {
  switch (l) {
    case Liveness::kUnknown:
      return "unknown";
    case Liveness::kAlive:
      return "alive";
    case Liveness::kSuspect:
      return "suspect";
    case Liveness::kDead:
      return "dead";
  }
  return "?";
}

Membership::Membership(const crypto::PeerList& allowlist, const PeerId& self,
                       const MembershipOptions& options)
    : self_(self), options_(options) {
  for (const crypto::PeerEntry& e : allowlist.entries()) {
    PeerState st;
    st.name = e.name;
    if (e.address) st.pinned_address = NetAddress{e.address->host, e.address->port};
    peers_[e.key] = std::move(st);
  }
  // Our own record lives here too, even when peers.txt does not list us.
  PeerState& me = peers_[self_];
  if (me.name.empty()) me.name = "self";
}

Membership::PeerState* Membership::Find(const PeerId& peer) {
  auto it = peers_.find(peer);
  return it == peers_.end() || peer == self_ ? nullptr : &it->second;
}

const Membership::PeerState* Membership::Find(const PeerId& peer) const {
  auto it = peers_.find(peer);
  return it == peers_.end() || peer == self_ ? nullptr : &it->second;
}

std::vector<PeerId> Membership::Members() const {
  std::vector<PeerId> out;
  for (const auto& [id, st] : peers_) {
    if (id != self_) out.push_back(id);
  }
  return out;
}

std::string Membership::NameOf(const PeerId& peer) const {
  auto it = peers_.find(peer);
  if (it != peers_.end()) return it->second.name;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02x%02x%02x%02x", peer[0], peer[1], peer[2], peer[3]);
  return std::string("key:") + buf;
}

Result<RecordOutcome> Membership::OfferRecord(const protocol::PeerRecord& record) {
  Status valid = protocol::Validate(record);
  if (!valid.ok()) return Status::InvalidArgument("peer record: " + valid.message());
  auto it = peers_.find(record.site_key);
  if (it == peers_.end()) {
    return Status::FailedPrecondition("peer record for " + NameOf(record.site_key) +
                                      ": key is not pinned in peers.txt");
  }
  Status sig = protocol::VerifyPeerRecord(record);
  if (!sig.ok()) return Status::Corruption("peer record for " + it->second.name + ": " +
                                           sig.message());
  if (it->second.record && it->second.record->sequence >= record.sequence) {
    return RecordOutcome::kStale;
  }
  it->second.record = record;
  return RecordOutcome::kNew;
}

std::vector<protocol::PeerRecord> Membership::Records() const {
  std::vector<protocol::PeerRecord> out;
  for (const auto& [id, st] : peers_) {
    if (st.record) out.push_back(*st.record);
  }
  return out;
}

std::optional<NetAddress> Membership::AddressOf(const PeerId& peer) const {
  const PeerState* st = Find(peer);
  if (!st) return std::nullopt;
  if (st->record && !st->record->addresses.empty()) {
    const protocol::Address& a = st->record->addresses.front();
    return NetAddress{a.host, a.port};
  }
  return st->pinned_address;
}

void Membership::OnLinkUp(const PeerId& peer) {
  if (PeerState* st = Find(peer)) {
    ++st->links;
    st->dialing = false;
  }
}

void Membership::OnSessionUp(const PeerId& peer, TimePoint) {
  PeerState* st = Find(peer);
  if (!st) return;
  st->session = true;
  st->liveness = Liveness::kAlive;
  st->failures = 0;
  st->probe_outstanding = false;
}

void Membership::ScheduleRedial(PeerState& st, TimePoint now, Rng& rng) {
  Duration delay = options_.retry_base;
  for (int i = 0; i < st.failures && delay < options_.retry_max; ++i) delay *= 2;
  delay = std::min(delay, options_.retry_max);
  // Jitter in [0.5, 1) keeps two sites from redialing each other in lockstep.
  const double f = 0.5 + 0.5 * rng.Uniform();
  st.next_dial = now + std::chrono::duration_cast<Duration>(delay * f);
  if (st.failures < 30) ++st.failures;
}

void Membership::OnLinkDown(const PeerId& peer, TimePoint now, Rng& rng) {
  PeerState* st = Find(peer);
  if (!st) return;
  if (st->links > 0) --st->links;
  if (st->links > 0) return;
  st->session = false;
  st->probe_outstanding = false;
  if (st->liveness != Liveness::kDead) st->liveness = Liveness::kUnknown;
  if (st->next_dial <= now) ScheduleRedial(*st, now, rng);
}

void Membership::OnHeardFrom(const PeerId& peer, TimePoint) {
  PeerState* st = Find(peer);
  if (!st || !st->session) return;
  // Any message is evidence of life, as good as the ack itself (otherwise
  // the stale probe would make it suspect again on the next tick).
  st->probe_outstanding = false;
  if (st->liveness == Liveness::kSuspect) st->liveness = Liveness::kAlive;
}

bool Membership::HasSession(const PeerId& peer) const {
  const PeerState* st = Find(peer);
  return st && st->session;
}

std::vector<PeerId> Membership::DueForDial(TimePoint now) const {
  std::vector<PeerId> out;
  for (const auto& [id, st] : peers_) {
    if (id == self_ || st.links > 0 || st.dialing || now < st.next_dial) continue;
    if (st.banned && now < st.banned_until) continue;
    if (AddressOf(id)) out.push_back(id);
  }
  return out;
}

void Membership::OnDialStarted(const PeerId& peer) {
  if (PeerState* st = Find(peer)) st->dialing = true;
}

void Membership::OnDialFailed(const PeerId& peer, TimePoint now, Rng& rng) {
  PeerState* st = Find(peer);
  if (!st) return;
  st->dialing = false;
  ScheduleRedial(*st, now, rng);
}

std::optional<PeerId> Membership::NextProbeTarget() {
  // Round robin over greeted peers, starting after the cursor.
  auto pick = [&](auto begin, auto end) -> std::optional<PeerId> {
    for (auto it = begin; it != end; ++it) {
      if (it->second.session && !it->second.probe_outstanding &&
          it->second.liveness != Liveness::kDead) {
        return it->first;
      }
    }
    return std::nullopt;
  };
  auto start = peers_.upper_bound(probe_cursor_);
  auto found = pick(start, peers_.end());
  if (!found) found = pick(peers_.begin(), start);
  if (found) probe_cursor_ = *found;
  return found;
}

void Membership::OnProbeSent(const PeerId& peer, uint64_t nonce, TimePoint now) {
  PeerState* st = Find(peer);
  if (!st) return;
  st->probe_outstanding = true;
  st->probe_nonce = nonce;
  st->probe_sent = now;
}

bool Membership::OnProbeAck(const PeerId& peer, uint64_t nonce, TimePoint now) {
  PeerState* st = Find(peer);
  if (!st || !st->probe_outstanding || st->probe_nonce != nonce) return false;
  st->probe_outstanding = false;
  OnHeardFrom(peer, now);
  return true;
}

std::vector<PeerId> Membership::Tick(TimePoint now, Rng& rng) {
  std::vector<PeerId> dead;
  for (auto& [id, st] : peers_) {
    if (id == self_) continue;
    if (st.banned && now >= st.banned_until) {
      st.banned = false;
      st.score = kInitialScore;
    }
    if (!st.session) continue;
    if (st.liveness == Liveness::kAlive && st.probe_outstanding &&
        now - st.probe_sent >= options_.probe_timeout) {
      st.liveness = Liveness::kSuspect;
      st.suspect_since = now;
    }
    if (st.liveness == Liveness::kSuspect && now - st.suspect_since >= options_.suspicion_period) {
      st.liveness = Liveness::kDead;
      st.session = false;
      st.probe_outstanding = false;
      ScheduleRedial(st, now, rng);
      dead.push_back(id);
    }
  }
  return dead;
}

std::vector<PeerId> Membership::Partners() const {
  std::vector<PeerId> out;
  for (const auto& [id, st] : peers_) {
    if (id != self_ && st.session && st.liveness == Liveness::kAlive) out.push_back(id);
  }
  return out;
}

Liveness Membership::liveness(const PeerId& peer) const {
  const PeerState* st = Find(peer);
  return st ? st->liveness : Liveness::kUnknown;
}

double Membership::score(const PeerId& peer) const {
  const PeerState* st = Find(peer);
  return st ? st->score : 0;
}

bool Membership::Penalize(const PeerId& peer, double amount, TimePoint now) {
  PeerState* st = Find(peer);
  if (!st) return true;
  st->score -= amount;
  if (st->score >= kScoreFloor) return false;
  st->banned = true;
  st->banned_until = now + options_.ban_period;
  return true;
}

void Membership::Reward(const PeerId& peer, double amount) {
  if (PeerState* st = Find(peer)) st->score = std::min(kInitialScore, st->score + amount);
}

bool Membership::IsBanned(const PeerId& peer, TimePoint now) const {
  const PeerState* st = Find(peer);
  return st && st->banned && now < st->banned_until;
}

}  // namespace dpnode::gossip
