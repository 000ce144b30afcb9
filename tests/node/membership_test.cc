// Membership: which peer records are accepted, peer exchange (knowing one
// live peer is enough), and liveness (suspect, dead, dropped, readmitted).
#include <doctest/doctest.h>

#include <algorithm>

#include "node/gossip/membership.h"
#include "protocol/peer_record.h"
#include "tests/node/cluster.h"

namespace dpnode::testing {
namespace {

using gossip::Liveness;
using gossip::RecordOutcome;

protocol::PeerRecord SignedRecord(const crypto::SiteIdentity& id, uint64_t seq,
                                  const std::string& host = "example.org") {
  protocol::PeerRecord r;
  r.addresses = {{host, 7400}};
  r.sequence = seq;
  Status s = protocol::SignPeerRecord(id, &r);
  REQUIRE(s.ok());
  return r;
}

TEST_CASE("peer records: only signed, pinned, newer records are accepted") {
  std::vector<crypto::SiteIdentity> ids = {TestIdentity(0), TestIdentity(1)};
  gossip::Membership m(MakePeers(ids), ids[0].public_key());

  protocol::PeerRecord good = SignedRecord(ids[1], 5, "a.example.org");
  Result<RecordOutcome> r = m.OfferRecord(good);
  REQUIRE(r.ok());
  CHECK(*r == RecordOutcome::kNew);
  REQUIRE(m.AddressOf(ids[1].public_key()).has_value());
  CHECK(m.AddressOf(ids[1].public_key())->host == "a.example.org");

  SUBCASE("stale or repeated sequence is ignored") {
    protocol::PeerRecord old = SignedRecord(ids[1], 4, "old.example.org");
    Result<RecordOutcome> o = m.OfferRecord(old);
    REQUIRE(o.ok());
    CHECK(*o == RecordOutcome::kStale);
    Result<RecordOutcome> again = m.OfferRecord(good);
    REQUIRE(again.ok());
    CHECK(*again == RecordOutcome::kStale);
    CHECK(m.AddressOf(ids[1].public_key())->host == "a.example.org");
  }
  SUBCASE("a higher sequence replaces the address") {
    Result<RecordOutcome> n = m.OfferRecord(SignedRecord(ids[1], 6, "b.example.org"));
    REQUIRE(n.ok());
    CHECK(*n == RecordOutcome::kNew);
    CHECK(m.AddressOf(ids[1].public_key())->host == "b.example.org");
  }
  SUBCASE("forged: fields changed after signing") {
    protocol::PeerRecord forged = good;
    forged.sequence = 99;
    forged.addresses[0].host = "evil.example.org";
    CHECK(m.OfferRecord(forged).status().code() == StatusCode::kCorruption);
    CHECK(m.AddressOf(ids[1].public_key())->host == "a.example.org");
  }
  SUBCASE("unsigned") {
    protocol::PeerRecord unsigned_record = good;
    unsigned_record.sequence = 99;
    unsigned_record.signature.fill(0);
    CHECK(m.OfferRecord(unsigned_record).status().code() == StatusCode::kCorruption);
  }
  SUBCASE("signed by someone else in the name of a pinned key") {
    protocol::PeerRecord r2 = SignedRecord(TestIdentity(7), 99, "evil.example.org");
    r2.site_key = ids[1].public_key();
    CHECK(m.OfferRecord(r2).status().code() == StatusCode::kCorruption);
  }
  SUBCASE("validly signed by an unpinned key") {
    CHECK(m.OfferRecord(SignedRecord(TestIdentity(7), 1)).status().code() ==
          StatusCode::kFailedPrecondition);
    CHECK_FALSE(m.AddressOf(TestIdentity(7).public_key()).has_value());
  }
}

TEST_CASE("liveness state machine: suspect, dead with backoff, readmitted") {
  std::vector<crypto::SiteIdentity> ids = {TestIdentity(0), TestIdentity(1)};
  gossip::MembershipOptions o;
  gossip::Membership m(MakePeers(ids, {true, true}), ids[0].public_key(), o);
  SplitMixRng rng(2);
  const PeerId b = ids[1].public_key();
  const TimePoint t0{};
  m.OnLinkUp(b);
  m.OnSessionUp(b, t0);
  CHECK(m.Partners() == std::vector<PeerId>{b});
  REQUIRE(m.NextProbeTarget() == b);
  m.OnProbeSent(b, 42, t0);
  CHECK(m.Tick(t0 + o.probe_timeout / 2, rng).empty());
  CHECK(m.liveness(b) == Liveness::kAlive);
  m.Tick(t0 + o.probe_timeout, rng);
  CHECK(m.liveness(b) == Liveness::kSuspect);
  CHECK(m.Partners().empty());  // suspects are not chosen
  SUBCASE("any word from it refutes the suspicion") {
    CHECK_FALSE(m.OnProbeAck(b, 41, t0 + 1s));  // wrong nonce
    CHECK(m.liveness(b) == Liveness::kSuspect);
    CHECK(m.OnProbeAck(b, 42, t0 + 1s));
    CHECK(m.liveness(b) == Liveness::kAlive);
  }
  SUBCASE("a share (any message) refutes it as well, for good") {
    m.OnHeardFrom(b, t0 + 1s);
    CHECK(m.liveness(b) == Liveness::kAlive);
    CHECK(m.Tick(t0 + 2s, rng).empty());
    CHECK(m.liveness(b) == Liveness::kAlive);  // the stale probe is settled
  }
  SUBCASE("silence through the suspicion period: dead, redial later") {
    const TimePoint t_dead = t0 + o.probe_timeout + o.suspicion_period;
    CHECK(m.Tick(t_dead, rng) == std::vector<PeerId>{b});
    CHECK(m.liveness(b) == Liveness::kDead);
    m.OnLinkDown(b, t_dead, rng);
    CHECK(m.DueForDial(t_dead).empty());               // backing off
    CHECK(m.DueForDial(t_dead + o.retry_base) == std::vector<PeerId>{b});
    m.OnDialStarted(b);
    m.OnDialFailed(b, t_dead + o.retry_base, rng);
    // The second wait is longer than the first could have been.
    CHECK(m.DueForDial(t_dead + o.retry_base + o.retry_base / 2).empty());
    m.OnLinkUp(b);
    m.OnSessionUp(b, t_dead + 10s);
    CHECK(m.liveness(b) == Liveness::kAlive);
    CHECK(m.Partners() == std::vector<PeerId>{b});
  }
}

TEST_CASE("a site that knows one live peer learns all of them") {
  const int n = 5;
  Cluster c(n, 3);
  c.RandomTrainers(3);
  // Sites 1..4 know each other's addresses; site 0 knows only site 1's.
  std::vector<crypto::PeerList> lists;
  lists.push_back(MakePeers(c.ids, {false, true, false, false, false}));
  for (int i = 1; i < n; ++i) lists.push_back(MakePeers(c.ids, {false, true, true, true, true}));
  for (int i = 0; i < n; ++i) {
    c.options[i].train = false;
    c.options[i].listen = SiteAddress(i);
    c.options[i].announce = {SiteAddress(i)};
  }
  c.Build(lists);
  c.Start();
  const bool learned = c.world.RunUntil(
      [&] {
        for (int j = 1; j < n; ++j) {
          if (!c.nodes[0]->membership().HasSession(c.ids[j].public_key())) return false;
        }
        return true;
      },
      60s);
  CHECK(learned);
  CHECK(c.nodes[0]->metrics().records_accepted >= n - 1);
  CHECK(c.nodes[0]->membership().Partners().size() == static_cast<size_t>(n - 1));
  for (int j = 2; j < n; ++j) {
    auto addr = c.nodes[0]->membership().AddressOf(c.ids[j].public_key());
    REQUIRE(addr.has_value());
    CHECK(addr->host == SiteAddress(j).host);
  }
}

TEST_CASE("a dead peer is suspected, declared dead, dropped, and readmitted when it returns") {
  const int n = 3;
  Cluster c(n, 4);
  c.RandomTrainers(3);
  for (int i = 0; i < n; ++i) {
    c.options[i].train = false;
    c.options[i].listen = SiteAddress(i);
    c.options[i].announce = {SiteAddress(i)};
  }
  c.Build(std::vector<crypto::PeerList>(n, MakePeers(c.ids, {true, true, true})));
  c.Start();
  const PeerId two = c.ids[2].public_key();
  auto& m0 = c.nodes[0]->membership();
  REQUIRE(c.world.RunUntil([&] { return c.AllSessionsUp(CompleteEdges(n)); }, 30s));

  c.world.SetDown(c.sites[2], true);
  bool saw_suspect = false;
  const bool declared = c.world.RunUntil(
      [&] {
        saw_suspect = saw_suspect || m0.liveness(two) == Liveness::kSuspect;
        return m0.liveness(two) == Liveness::kDead;
      },
      30s);
  CHECK(saw_suspect);
  REQUIRE(declared);
  CHECK(c.nodes[0]->metrics().peers_declared_dead >= 1);
  const auto partners = m0.Partners();
  CHECK(std::find(partners.begin(), partners.end(), two) == partners.end());
  CHECK(partners.size() == 1);
  // While it is away, site 0 keeps gossiping with site 1 only.
  const uint64_t accepted = c.nodes[0]->metrics().shares_accepted;
  c.world.RunFor(10s);
  CHECK(c.nodes[0]->metrics().shares_accepted > accepted);
  CHECK(m0.liveness(two) != Liveness::kAlive);

  c.world.SetDown(c.sites[2], false);
  const bool back = c.world.RunUntil(
      [&] {
        const auto p = m0.Partners();
        return std::find(p.begin(), p.end(), two) != p.end();
      },
      120s);
  CHECK(back);
  CHECK(m0.liveness(two) == Liveness::kAlive);
}

}  // namespace
}  // namespace dpnode::testing
