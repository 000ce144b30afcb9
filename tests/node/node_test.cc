// The Node: share validation and peer scores, Hello mismatches, the privacy
// budget (never exceeded; training stops, mixing goes on, done is reported),
// and a dead peer that stalls nobody.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "node/privacy/calibrate.h"
#include "protocol/codec.h"
#include "protocol/peer_record.h"
#include "tests/node/cluster.h"

namespace dpnode::testing {
namespace {

using gossip::PolicyKind;
using node::Phase;

// A scripted peer: records what it receives, sends what the test says.
struct RawPeer : LinkHandler {
  void OnLinkUp(const std::shared_ptr<Link>& l) override { link = l; }
  void OnMessage(const std::shared_ptr<Link>&, const SharedBytes& m) override {
    Result<protocol::Message> d = protocol::Decode(protocol::ByteView(*m));
    if (d.ok()) got.push_back(*d);
  }
  void OnLinkDown(const std::shared_ptr<Link>&, const Status&) override { closed = true; }
  void Send(const protocol::Bytes& frame) {
    REQUIRE(link);
    Status s = link->Send(std::make_shared<const std::vector<uint8_t>>(frame));
    CHECK(s.ok());
  }
  template <typename M>
  void SendMessage(const M& m) {
    Result<protocol::Bytes> f = protocol::Encode(m);
    REQUIRE(f.ok());
    Send(*f);
  }
  template <typename M>
  const M* Last() const {
    for (auto it = got.rbegin(); it != got.rend(); ++it) {
      if (const M* m = std::get_if<M>(&*it)) return m;
    }
    return nullptr;
  }
  std::shared_ptr<Link> link;
  std::vector<protocol::Message> got;
  bool closed = false;
};

protocol::Hello MatchingHello() {
  protocol::Hello h;
  h.consortium_id = node::NodeOptions{}.consortium_id;
  h.model_fingerprint = node::NodeOptions{}.model_fingerprint;
  h.site_name = "raw";
  return h;
}

// Site 0 is a Node (no training, float64 wire); site 1 is a RawPeer.
struct NodeAndRaw {
  NodeAndRaw() : c(2, 17) {
    c.RandomTrainers(4);
    c.options[0].train = false;
    c.options[0].wire_dtype = protocol::DType::kFloat64;
    c.nodes.push_back(std::make_unique<node::Node>(c.world.env(c.sites[0]), c.ids[0], c.peers,
                                                   nullptr, *c.trainers[0], c.options[0]));
    c.world.env(c.sites[1]).network().SetHandler(&raw);
    REQUIRE(c.nodes[0]->Start().ok());
    c.world.Connect(c.sites[0], c.sites[1]);
    c.world.RunFor(20ms);
  }
  node::Node& node() { return *c.nodes[0]; }
  protocol::GossipShare Share(const std::vector<double>& values) {
    gossip::Share s{0, 1.0, values};
    return gossip::ToWire(node().layout(), s, protocol::DType::kFloat64, 0, 0);
  }
  Cluster c;
  RawPeer raw;
};

void CheckSame(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(std::isfinite(b[i]));
    CHECK(b[i] == doctest::Approx(a[i]).epsilon(1e-12));
  }
}

TEST_CASE("bad shares are dropped before they touch the model, the peer is cut off") {
  NodeAndRaw t;
  REQUIRE(t.raw.Last<protocol::Hello>() != nullptr);
  t.raw.SendMessage(MatchingHello());
  t.c.world.RunFor(20ms);
  const PeerId raw_id = t.c.ids[1].public_key();
  REQUIRE(t.node().membership().HasSession(raw_id));

  // A good share is accepted and moves the model.
  const std::vector<double> x0 = t.node().Estimate();
  t.raw.SendMessage(t.Share({1, 2, 3, 4}));
  t.c.world.RunFor(20ms);
  CHECK(t.node().metrics().shares_accepted == 1);
  std::vector<double> before = t.node().Estimate();
  CHECK(before != x0);

  SUBCASE("NaN, wrong shape, huge norm, wrong dtype") {
    protocol::GossipShare nan_share = t.Share({1, 2, 3, 4});
    const double nan = std::numeric_limits<double>::quiet_NaN();
    std::memcpy(nan_share.tensors[0].data.data(), &nan, sizeof nan);
    Result<protocol::Bytes> nan_frame =
        protocol::EncodeUncheckedForTesting(protocol::Message(nan_share));
    REQUIRE(nan_frame.ok());
    t.raw.Send(*nan_frame);
    t.c.world.RunFor(20ms);
    CHECK(t.node().metrics().undecodable_messages == 1);
    CheckSame(before, t.node().Estimate());

    protocol::GossipShare wrong_shape = t.Share({1, 2, 3, 4});
    wrong_shape.tensors[0].shape = {1, 3};
    t.raw.SendMessage(wrong_shape);
    t.c.world.RunFor(20ms);
    CHECK(t.node().metrics().shares_rejected == 1);
    CheckSame(before, t.node().Estimate());

    t.raw.SendMessage(t.Share({1e9, 0, 0, 0}));
    t.c.world.RunFor(20ms);
    CHECK(t.node().metrics().shares_rejected == 2);
    CheckSame(before, t.node().Estimate());
    CHECK(t.node().membership().score(raw_id) < gossip::kInitialScore);
    CHECK_FALSE(t.raw.closed);

    gossip::Share s{0, 1.0, {1, 2, 3, 4}};
    t.raw.SendMessage(gossip::ToWire(t.node().layout(), s, protocol::DType::kFloat32, 0, 0));
    t.c.world.RunFor(20ms);
    CHECK(t.node().metrics().shares_rejected == 3);
    CheckSame(before, t.node().Estimate());
    CHECK(t.node().metrics().shares_accepted == 1);

    // Four strikes: below the score floor, goodbye and disconnect.
    const protocol::Goodbye* bye = t.raw.Last<protocol::Goodbye>();
    REQUIRE(bye != nullptr);
    CHECK(bye->reason == protocol::GoodbyeReason::kProtocolViolation);
    CHECK(t.raw.closed);
    CHECK_FALSE(t.node().membership().HasSession(raw_id));
    CHECK(t.node().membership().IsBanned(raw_id, t.c.world.now()));
  }
  SUBCASE("a non-positive or infinite push-sum weight") {
    protocol::GossipShare zero = t.Share({1, 2, 3, 4});
    zero.weight = 0;
    Result<protocol::Bytes> f = protocol::EncodeUncheckedForTesting(protocol::Message(zero));
    REQUIRE(f.ok());
    t.raw.Send(*f);
    t.c.world.RunFor(20ms);
    CHECK(t.node().metrics().shares_accepted == 1);
    CHECK(t.node().metrics().undecodable_messages + t.node().metrics().shares_rejected == 1);
    CheckSame(before, t.node().Estimate());
  }
}

TEST_CASE("peer records from a peer: unpinned ignored, forged blamed, new ones forwarded") {
  NodeAndRaw t;
  t.raw.SendMessage(MatchingHello());
  t.c.world.RunFor(20ms);
  const PeerId raw_id = t.c.ids[1].public_key();
  REQUIRE(t.node().membership().HasSession(raw_id));
  // Peer exchange: the Node sent us its own signed record on session start.
  const protocol::PeerRecord* own = t.raw.Last<protocol::PeerRecord>();
  REQUIRE(own != nullptr);
  CHECK(own->site_key == t.c.ids[0].public_key());
  CHECK(protocol::VerifyPeerRecord(*own).ok());

  protocol::PeerRecord unpinned;
  unpinned.addresses = {{"x.example.org", 1}};
  unpinned.sequence = 1;
  REQUIRE(protocol::SignPeerRecord(TestIdentity(9), &unpinned).ok());
  t.raw.SendMessage(unpinned);
  t.c.world.RunFor(20ms);
  CHECK(t.node().metrics().records_refused == 1);
  CHECK(t.node().membership().score(raw_id) == gossip::kInitialScore);

  protocol::PeerRecord forged;
  forged.addresses = {{"evil.example.org", 1}};
  forged.sequence = 7;
  REQUIRE(protocol::SignPeerRecord(t.c.ids[1], &forged).ok());
  forged.addresses[0].port = 2;  // changed after signing
  t.raw.SendMessage(forged);
  t.c.world.RunFor(20ms);
  CHECK(t.node().metrics().records_refused == 2);
  CHECK(t.node().membership().score(raw_id) < gossip::kInitialScore);
  CHECK_FALSE(t.node().membership().AddressOf(raw_id).has_value());

  protocol::PeerRecord genuine;
  genuine.addresses = {{"raw.example.org", 7400}};
  genuine.sequence = 3;
  REQUIRE(protocol::SignPeerRecord(t.c.ids[1], &genuine).ok());
  t.raw.SendMessage(genuine);
  t.c.world.RunFor(20ms);
  CHECK(t.node().metrics().records_accepted == 1);
  REQUIRE(t.node().membership().AddressOf(raw_id).has_value());
  CHECK(t.node().membership().AddressOf(raw_id)->host == "raw.example.org");
}

TEST_CASE("Stop says goodbye to every peer") {
  Cluster c(3, 41);
  c.RandomTrainers(3);
  for (auto& o : c.options) o.train = false;
  c.Build();
  c.Start();
  c.Wire(CompleteEdges(3));
  REQUIRE(c.world.RunUntil([&] { return c.AllSessionsUp(CompleteEdges(3)); }, 5s));
  c.nodes[0]->Stop();
  c.world.RunFor(1s);
  CHECK(c.nodes[0]->metrics().goodbyes_sent == 2);
  for (int i = 1; i < 3; ++i) {
    CHECK(c.nodes[i]->metrics().goodbyes_received == 1);
    CHECK(c.LogContains(i, "goodbye from site0 (shutdown)"));
    CHECK_FALSE(c.nodes[i]->membership().HasSession(c.ids[0].public_key()));
    CHECK(c.nodes[i]->membership().HasSession(c.ids[3 - i].public_key()));
  }
}

TEST_CASE("Start refuses options that would make an invalid Hello or record") {
  Cluster c(1, 43);
  c.RandomTrainers(3);
  c.options[0].train = false;
  SUBCASE("fingerprint of the wrong size") {
    c.options[0].model_fingerprint = protocol::Bytes(5, 1);
  }
  SUBCASE("consortium id with a space") { c.options[0].consortium_id = "a b"; }
  SUBCASE("announced address without a port") { c.options[0].announce = {{"host0", 0}}; }
  c.Build();
  CHECK(c.nodes[0]->Start().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("a share before Hello is not used") {
  NodeAndRaw t;
  const std::vector<double> before = t.node().Estimate();
  t.raw.SendMessage(t.Share({1, 2, 3, 4}));
  t.c.world.RunFor(20ms);
  CHECK(t.node().metrics().shares_accepted == 0);
  CheckSame(before, t.node().Estimate());
}

TEST_CASE("hello mismatch: goodbye with the reason, link closed, logged on both sides") {
  SUBCASE("model fingerprint, between two Nodes") {
    Cluster c(2, 8);
    c.RandomTrainers(3);
    for (auto& o : c.options) o.train = false;
    c.options[1].model_fingerprint = protocol::Bytes(protocol::kModelFingerprintSize, 7);
    c.Build();
    c.Start();
    c.Wire({{0, 1}});
    c.world.RunFor(1s);
    for (int i = 0; i < 2; ++i) {
      CHECK(c.nodes[i]->metrics().hello_mismatches == 1);
      CHECK(c.nodes[i]->metrics().goodbyes_sent == 1);
      CHECK(c.nodes[i]->membership().Partners().empty());
      CHECK(c.LogContains(i, "fingerprint"));
      CHECK(c.nodes[i]->metrics().shares_accepted == 0);
    }
  }
  SUBCASE("protocol version, from a scripted peer") {
    NodeAndRaw t;
    protocol::Hello h = MatchingHello();
    h.protocol_version = protocol::kProtocolVersion + 1;
    t.raw.SendMessage(h);
    t.c.world.RunFor(20ms);
    const protocol::Goodbye* bye = t.raw.Last<protocol::Goodbye>();
    REQUIRE(bye != nullptr);
    CHECK(bye->reason == protocol::GoodbyeReason::kVersionMismatch);
    CHECK(t.raw.closed);
    CHECK(t.node().metrics().hello_mismatches == 1);
    CHECK(t.c.LogContains(0, "version"));
  }
}

// The number of steps at the fake trainer's (q, σ) that fit in ε at δ = 1e-5.
int64_t StepsThatFit(double epsilon) {
  Result<privacy::StepsCalibration> s =
      privacy::LargestSteps(privacy::AccountantKind::kRdp, epsilon, 1e-5, 0.05, 2.0);
  REQUIRE(s.ok());
  return s->steps;
}

bool AllDone(const Cluster& c, int count) {
  for (int i = 0; i < count; ++i) {
    if (!c.nodes[i]->done()) return false;
  }
  return true;
}

void TrainingCluster(Cluster& c, PolicyKind kind, double epsilon) {
  for (int i = 0; i < c.size(); ++i) {
    std::vector<float> x = RandomVector(c.rng, 5);
    std::vector<float> target = RandomVector(c.rng, 5);
    c.trainers.push_back(std::make_unique<FakeTrainer>(x, target));
  }
  c.TinyLedgers(epsilon);
  for (auto& o : c.options) {
    o.policy = kind;
    o.reserve_block_steps = 4;
    o.step_interval = 40ms;
    o.settle_tolerance = 1e-5;
  }
  c.Build();
  c.Start();
  c.Wire(CompleteEdges(c.size()));
}

TEST_CASE("the budget: never exceeded, training stops, mixing goes on, done is reported") {
  const double epsilon = 0.8;
  const int64_t fit = StepsThatFit(epsilon);
  REQUIRE(fit > 4);     // more than one block, so the last block is cut to fit
  REQUIRE(fit < 2000);  // keeps the test fast
  for (PolicyKind kind : {PolicyKind::kPushSum, PolicyKind::kPairwise, PolicyKind::kDpsgd}) {
    const std::string policy = gossip::PolicyKindName(kind);
    CAPTURE(policy);
    Cluster c(4, 23);
    TrainingCluster(c, kind, epsilon);
    const bool stopped = c.world.RunUntil(
        [&] {
          for (auto& n : c.nodes) {
            if (n->phase() == Phase::kTraining) return false;
          }
          return true;
        },
        600s);
    REQUIRE(stopped);
    std::vector<uint64_t> accepted_at_stop;
    for (auto& n : c.nodes) accepted_at_stop.push_back(n->metrics().shares_accepted);
    REQUIRE(c.world.RunUntil([&] { return AllDone(c, c.size()); }, 600s));
    for (int i = 0; i < c.size(); ++i) {
      const node::Node& n = *c.nodes[i];
      const privacy::Ledger& ledger = *c.ledgers[i];
      CHECK(n.training_stop_reason().code() == StatusCode::kBudgetExhausted);
      // Every step that ran was charged first, and nothing beyond the budget.
      CHECK(c.trainers[i]->steps_taken == n.metrics().steps);
      CHECK(n.metrics().steps <= ledger.total_steps());
      CHECK(ledger.total_steps() == fit);
      Result<double> spent = ledger.EpsilonSpent();
      REQUIRE(spent.ok());
      CHECK(*spent <= epsilon);
      CHECK(n.metrics().epsilon_spent == doctest::Approx(*spent));
      // Mixing went on after the last step.
      CHECK(n.metrics().shares_accepted > accepted_at_stop[i]);
      // The file agrees with the open ledger.
      Result<privacy::LedgerSnapshot> snap = privacy::Ledger::Inspect(c.dirs[i]->path());
      REQUIRE(snap.ok());
      CHECK(snap->total_steps == ledger.total_steps());
    }
    // Settled to a common model.
    CHECK(MaxRelError(c, c.nodes[0]->Estimate()) < 1e-3);
    // And training really changed the models (steps ran through the trainer).
    CHECK(c.trainers[0]->steps_taken > 0);
  }
}

TEST_CASE("a training step's change survives shares that arrive while it runs") {
  // Pairwise and D-PSGD conserve Σx, so the settled model is exactly the mean
  // of what the steps did: site 0 steps 0 -> 5, site 1 stays at 0.
  for (PolicyKind kind : {PolicyKind::kPairwise, PolicyKind::kDpsgd, PolicyKind::kPushSum}) {
    const std::string policy = gossip::PolicyKindName(kind);
    CAPTURE(policy);
    Cluster c(2, 31);
    c.trainers.push_back(std::make_unique<FakeTrainer>(std::vector<float>{0, 0, 0},
                                                       std::vector<float>{10, 10, 10}, 0.5));
    c.trainers.push_back(std::make_unique<FakeTrainer>(std::vector<float>{0, 0, 0},
                                                       std::vector<float>{0, 0, 0}, 0.5));
    c.TinyLedgers(5.0);
    for (auto& o : c.options) {
      o.max_steps = 1;
      o.policy = kind;
      o.wire_dtype = protocol::DType::kFloat64;
      o.settle_tolerance = 1e-9;
    }
    // Several gossip ticks (and shares) overlap the step.
    c.world.env(c.sites[0]).compute_time = 300ms;
    c.world.env(c.sites[1]).compute_time = 300ms;
    c.Build();
    c.Start();
    c.Wire({{0, 1}});
    REQUIRE(c.world.RunUntil([&] { return AllDone(c, 2); }, 120s));
    CHECK(c.nodes[0]->metrics().shares_accepted > 2);
    CHECK(c.nodes[0]->training_stop_reason().ok());  // stopped by max_steps
    CHECK(c.ledgers[0]->total_steps() >= 1);
    if (kind == PolicyKind::kPushSum) {
      // Push-sum weighs the step by the site's weight at the time: the
      // consensus lies strictly inside (0, 5) and the two sites agree.
      const double x = c.nodes[0]->Estimate()[0];
      CHECK(x > 0.5);
      CHECK(x < 4.5);
      CHECK(MaxRelError(c, c.nodes[0]->Estimate()) < 1e-6);
    } else {
      CHECK(MaxRelError(c, {2.5, 2.5, 2.5}) < 1e-6);
    }
  }
}

TEST_CASE("a dead peer does not stall the others") {
  const double epsilon = 0.8;
  const int64_t fit = StepsThatFit(epsilon);
  for (PolicyKind kind : {PolicyKind::kPushSum, PolicyKind::kPairwise, PolicyKind::kDpsgd}) {
    const std::string policy = gossip::PolicyKindName(kind);
    CAPTURE(policy);
    Cluster c(4, 29);
    TrainingCluster(c, kind, epsilon);
    REQUIRE(c.world.RunUntil([&] { return c.AllSessionsUp(CompleteEdges(4)); }, 10s));
    c.world.RunFor(300ms);
    c.world.SetDown(c.sites[3], true);  // dies mid-training, silently
    const TimePoint died = c.world.now();
    REQUIRE(c.world.RunUntil([&] { return AllDone(c, 3); }, 600s));
    // Bounded by the work, not by the dead peer: budgeted steps at 40 ms
    // pacing plus compute, plus suspicion and settling, with slack.
    const Duration took = c.world.now() - died;
    CHECK(took < fit * 60ms + 60s);
    for (int i = 0; i < 3; ++i) {
      CHECK(c.nodes[i]->metrics().steps == fit);
    }
    CHECK(c.nodes[3]->phase() == Phase::kTraining);  // it really was stopped
  }
}

}  // namespace
}  // namespace dpnode::testing

namespace dpnode::testing {
namespace {

// A single training site whose steps take 300 ms of virtual time.
struct SlowSite {
  SlowSite() : c(1, 41) {
    c.trainers.push_back(std::make_unique<FakeTrainer>(std::vector<float>{0, 0, 0},
                                                       std::vector<float>{8, 8, 8}, 0.25));
    c.TinyLedgers(50.0);
    c.options[0].wire_dtype = protocol::DType::kFloat64;
    c.world.env(c.sites[0]).compute_time = 300ms;
    c.Build();
    c.Start();
    // Into the middle of a step.
    REQUIRE(c.world.RunUntil([&] { return node().metrics().steps >= 2 && node().step_running(); },
                             60s));
  }
  node::Node& node() { return *c.nodes[0]; }
  FakeTrainer& trainer() { return static_cast<FakeTrainer&>(*c.trainers[0]); }
  Cluster c;
};

TEST_CASE("WhenIdle runs between steps: at once when idle, else after the running step is applied") {
  SlowSite s;
  const int64_t steps_before = s.node().metrics().steps;
  int calls = 0;
  int64_t steps_seen = -1;
  bool running_inside = true;
  std::vector<double> estimate_inside;
  s.node().WhenIdle([&] {
    ++calls;
    steps_seen = s.node().metrics().steps;
    running_inside = s.node().step_running();
    estimate_inside = s.node().Estimate();
  });
  CHECK(calls == 0);  // a step is running: deferred
  REQUIRE(s.c.world.RunUntil([&] { return calls > 0; }, 5s));
  CHECK(calls == 1);
  CHECK_FALSE(running_inside);
  // The running step was applied before the callback, and no later one.
  CHECK(steps_seen == steps_before + 1);
  CHECK(s.trainer().steps_taken == steps_seen);
  const std::vector<float> params = s.trainer().Parameters();
  REQUIRE(estimate_inside.size() == params.size());
  for (size_t i = 0; i < params.size(); ++i) CHECK(estimate_inside[i] == doctest::Approx(params[i]));
  // Training goes on afterwards.
  s.c.world.RunFor(2s);
  CHECK(s.node().metrics().steps > steps_seen);
  CHECK(s.node().phase() == Phase::kTraining);
}

TEST_CASE("HoldTraining finishes the running step, applies it and starts no other") {
  SlowSite s;
  const int64_t steps_before = s.node().metrics().steps;
  int idle_calls = 0;
  s.node().HoldTraining([&] { ++idle_calls; });
  CHECK(idle_calls == 0);
  s.c.world.RunFor(5s);  // many step lengths
  CHECK(idle_calls == 1);
  CHECK(s.node().metrics().steps == steps_before + 1);
  CHECK(s.trainer().steps_taken == steps_before + 1);
  CHECK_FALSE(s.node().step_running());
  // Not the end of training: no stop reason, the phase is unchanged.
  CHECK(s.node().phase() == Phase::kTraining);
  CHECK(s.node().training_stop_reason().ok());
  // Every step that ran was charged first.
  CHECK(s.c.ledgers[0]->total_steps() >= s.node().metrics().steps);
  // The estimate is the trained parameters (a single site: nothing to mix).
  const std::vector<double> x = s.node().Estimate();
  const std::vector<float> p = s.trainer().Parameters();
  for (size_t i = 0; i < p.size(); ++i) CHECK(x[i] == doctest::Approx(p[i]));
  // A WhenIdle after the hold runs at once.
  bool ran = false;
  s.node().WhenIdle([&] { ran = true; });
  CHECK(ran);
}

}  // namespace
}  // namespace dpnode::testing

namespace dpnode::testing {
namespace {

TEST_CASE("wait_for_peers: no step before a peer is connected, or until the timeout") {
  Cluster c(2, 43);
  c.trainers.push_back(std::make_unique<FakeTrainer>(std::vector<float>{0, 0, 0},
                                                     std::vector<float>{8, 8, 8}, 0.25));
  c.trainers.push_back(std::make_unique<FakeTrainer>(std::vector<float>{0, 0, 0},
                                                     std::vector<float>{4, 4, 4}, 0.25));
  c.TinyLedgers(50.0);
  for (auto& o : c.options) {
    o.wire_dtype = protocol::DType::kFloat64;
    o.max_steps = 20;
  }
  c.options[0].wait_for_peers = 1;
  c.options[0].wait_for_peers_timeout = 30s;
  c.options[1].wait_for_peers = 1;
  c.options[1].wait_for_peers_timeout = 3s;
  c.Build();
  c.Start();
  // Nobody is wired: nothing trains, nothing is charged.
  c.world.RunFor(2s);
  for (int i = 0; i < 2; ++i) {
    CHECK(c.nodes[i]->waiting_for_peers());
    CHECK(c.nodes[i]->metrics().steps == 0);
    CHECK(c.ledgers[i]->total_steps() == 0);
  }
  // Site 1's shorter timeout passes: it trains alone, and says so.
  c.world.RunFor(2s);
  CHECK_FALSE(c.nodes[1]->waiting_for_peers());
  CHECK(c.nodes[1]->metrics().steps > 0);
  CHECK(c.LogContains(1, "training starts anyway"));
  CHECK(c.nodes[0]->waiting_for_peers());
  CHECK(c.nodes[0]->metrics().steps == 0);
  // A session comes up: site 0 starts at once.
  c.Wire({{0, 1}});
  REQUIRE(c.world.RunUntil([&] { return c.nodes[0]->metrics().steps > 0; }, 5s));
  CHECK_FALSE(c.nodes[0]->waiting_for_peers());
  CHECK(c.LogContains(0, "1 peer(s) connected: training starts"));
  REQUIRE(c.world.RunUntil([&] { return c.nodes[0]->metrics().steps == 20; }, 60s));
  CHECK(c.ledgers[0]->total_steps() >= 20);
}

}  // namespace
}  // namespace dpnode::testing
