// Who is in the consortium, where they listen, and who is alive.
//
// Three things, all driven by the Node's loop (no I/O, no clock: times come
// in as arguments, randomness as an Rng):
//
//   The allowlist: peers.txt's pinned keys. Nothing else is ever a member.
//
//   Peer records: signed, sequence-numbered statements of where a site
//     listens (protocol/peer_record.h). A record is accepted only if it is
//     well-formed, its key is pinned and its signature verifies under that
//     key; for each key the highest sequence wins, so an old address replayed
//     by anyone is ignored. The Node floods each newly accepted record to its
//     other peers (peer exchange), so a site that reaches one live peer
//     learns every address that peer knows.
//
//   Liveness, SWIM-like but direct only: every probe interval the Node probes
//     one greeted peer (round robin). No ProbeAck within probe_timeout makes
//     it suspect; any message from it refutes the suspicion; still silent
//     after suspicion_period, it is declared dead: the Node closes its link,
//     it leaves partner choice, and dialing it is retried with exponential
//     backoff (with jitter) until it answers again.
//
// Peer scores: each peer starts at kInitialScore; bad input lowers it, good
// shares raise it slowly up to the initial value. Below kScoreFloor the Node
// says goodbye and the peer is banned for ban_period (its links are refused
// and it is not dialed); afterwards it starts over at the initial score.
#ifndef DPNODE_NODE_GOSSIP_MEMBERSHIP_H_
#define DPNODE_NODE_GOSSIP_MEMBERSHIP_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "base/status.h"
#include "crypto/peers.h"
#include "node/env.h"
#include "protocol/messages.h"

namespace dpnode::gossip {

struct MembershipOptions {
  Duration probe_interval = std::chrono::seconds(1);
  Duration probe_timeout = std::chrono::milliseconds(500);
  Duration suspicion_period = std::chrono::seconds(3);
  Duration retry_base = std::chrono::seconds(1);    // first redial delay
  Duration retry_max = std::chrono::seconds(60);    // backoff cap
  Duration ban_period = std::chrono::minutes(10);
};

enum class Liveness {
  kUnknown,  // never greeted (or link down without suspicion)
  kAlive,
  kSuspect,
  kDead,
};
const char* LivenessName(Liveness l);

enum class RecordOutcome { kNew, kStale };

inline constexpr double kInitialScore = 100;
inline constexpr double kScoreFloor = 0;

class Membership {
 public:
  // `allowlist` is copied. `self` is our own key (never a partner).
  Membership(const crypto::PeerList& allowlist, const PeerId& self,
             const MembershipOptions& options = {});

  // In peers.txt, or our own key (always known, so our record can be held
  // and sent even when our peers.txt omits us).
  bool IsPinned(const PeerId& peer) const { return peers_.count(peer) != 0; }
  const PeerId& self() const { return self_; }
  // The pinned keys other than ours, sorted.
  std::vector<PeerId> Members() const;
  // peers.txt's name for `peer`, or a short hex form for unknown keys.
  std::string NameOf(const PeerId& peer) const;

  // --- Peer records --------------------------------------------------------
  // kNew when the record is accepted and replaces an older one; kStale when
  // it is genuine but not newer than what we hold. Errors (nothing changes):
  //   InvalidArgument     malformed (protocol::Validate)
  //   FailedPrecondition  the key is not pinned
  //   Corruption          the signature does not verify
  Result<RecordOutcome> OfferRecord(const protocol::PeerRecord& record);
  // Every accepted record (ours included), by key.
  std::vector<protocol::PeerRecord> Records() const;
  // Where to dial `peer`: its newest record's first address, else peers.txt's.
  std::optional<NetAddress> AddressOf(const PeerId& peer) const;

  // --- Links and sessions --------------------------------------------------
  void OnLinkUp(const PeerId& peer);
  // A greeted session (Hello accepted both ways as far as we know).
  void OnSessionUp(const PeerId& peer, TimePoint now);
  // The last link to `peer` went away; dial again after a backoff.
  void OnLinkDown(const PeerId& peer, TimePoint now, Rng& rng);
  // Any valid message from `peer`: refutes suspicion and settles the
  // outstanding probe.
  void OnHeardFrom(const PeerId& peer, TimePoint now);
  bool HasSession(const PeerId& peer) const;

  // --- Dialing -------------------------------------------------------------
  // Pinned peers with a known address, no link, not banned, not being
  // dialed, whose retry time has come; sorted.
  std::vector<PeerId> DueForDial(TimePoint now) const;
  void OnDialStarted(const PeerId& peer);
  void OnDialFailed(const PeerId& peer, TimePoint now, Rng& rng);

  // --- Probing -------------------------------------------------------------
  // The next greeted peer to probe without a probe outstanding (round robin),
  // or nullopt.
  std::optional<PeerId> NextProbeTarget();
  void OnProbeSent(const PeerId& peer, uint64_t nonce, TimePoint now);
  // True when the ack matches the outstanding probe.
  bool OnProbeAck(const PeerId& peer, uint64_t nonce, TimePoint now);
  // Applies timeouts; returns the peers declared dead just now (the Node
  // closes their links).
  std::vector<PeerId> Tick(TimePoint now, Rng& rng);

  // --- Partner choice ------------------------------------------------------
  // Greeted, alive peers, sorted (suspects and the dead are left out).
  std::vector<PeerId> Partners() const;
  Liveness liveness(const PeerId& peer) const;

  // --- Scores --------------------------------------------------------------
  double score(const PeerId& peer) const;
  // Lowers the score by `amount`; true when it is now below the floor (the
  // peer is banned from now until now + ban_period).
  bool Penalize(const PeerId& peer, double amount, TimePoint now);
  void Reward(const PeerId& peer, double amount);
  bool IsBanned(const PeerId& peer, TimePoint now) const;

 private:
  struct PeerState {
    std::string name;
    std::optional<NetAddress> pinned_address;  // from peers.txt
    std::optional<protocol::PeerRecord> record;
    int links = 0;
    bool session = false;
    bool dialing = false;
    Liveness liveness = Liveness::kUnknown;
    bool probe_outstanding = false;
    uint64_t probe_nonce = 0;
    TimePoint probe_sent{};
    TimePoint suspect_since{};
    int failures = 0;
    TimePoint next_dial{};
    double score = kInitialScore;
    TimePoint banned_until{};
    bool banned = false;
  };
  PeerState* Find(const PeerId& peer);
  const PeerState* Find(const PeerId& peer) const;
  void ScheduleRedial(PeerState& st, TimePoint now, Rng& rng);

  PeerId self_;
  MembershipOptions options_;
  std::map<PeerId, PeerState> peers_;  // every pinned key, ours included
  PeerId probe_cursor_{};              // round robin position
};

}  // namespace dpnode::gossip

#endif  // DPNODE_NODE_GOSSIP_MEMBERSHIP_H_
