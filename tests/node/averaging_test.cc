// Averaging policies: exact mean on connected graphs, push-sum mass
// conservation (with shares in flight) and convergence under loss, and the
// policies' own bookkeeping in isolation.
#include <doctest/doctest.h>

#include <cmath>

#include "node/gossip/averaging.h"
#include "node/gossip/share_codec.h"
#include "tests/node/cluster.h"

namespace dpnode::testing {
namespace {

using gossip::PolicyKind;

PeerId Key(uint8_t b) {
  PeerId p{};
  p.fill(b);
  return p;
}

// Pure averaging on `edges`; returns the worst relative error to the mean
// of the initial vectors once every site reports done (or after the limit).
double AverageOn(PolicyKind kind, int n, const std::vector<std::pair<int, int>>& edges,
                 protocol::DType dtype, uint64_t seed, double refusal = 0) {
  Cluster c(n, seed);
  c.world.share_refusal = refusal;
  c.RandomTrainers(9);
  for (auto& o : c.options) {
    o.train = false;
    o.policy = kind;
    o.wire_dtype = dtype;
    o.settle_tolerance = dtype == protocol::DType::kFloat64 ? 1e-12 : 1e-7;
    o.settle_window = 20;
  }
  c.Build();
  c.Start();
  c.Wire(edges);
  const std::vector<double> mean = MeanOfInitial(c);
  const bool settled = c.world.RunUntil(
      [&] {
        for (auto& node : c.nodes) {
          if (!node->done()) return false;
        }
        return true;
      },
      600s);
  CHECK(settled);
  for (auto& node : c.nodes) {
    CHECK(node->metrics().shares_rejected == 0);
    CHECK(node->metrics().shares_accepted > 0);
  }
  if (refusal > 0) {
    uint64_t unsent = 0;
    for (auto& node : c.nodes) unsent += node->metrics().shares_unsent;
    CHECK(unsent == c.world.shares_refused);
    CHECK(unsent > 10);
  }
  return MaxRelError(c, mean);
}

TEST_CASE("every policy averages random vectors to the exact mean (float64 wire)") {
  for (PolicyKind kind : {PolicyKind::kPushSum, PolicyKind::kPairwise, PolicyKind::kDpsgd}) {
    const std::string policy = gossip::PolicyKindName(kind);
    CAPTURE(policy);
    SUBCASE("ring of 6") {
      CHECK(AverageOn(kind, 6, RingEdges(6), protocol::DType::kFloat64, 11) < 1e-9);
    }
    SUBCASE("complete graph of 5") {
      CHECK(AverageOn(kind, 5, CompleteEdges(5), protocol::DType::kFloat64, 12) < 1e-9);
    }
    SUBCASE("path of 4 (irregular degrees)") {
      CHECK(AverageOn(kind, 4, {{0, 1}, {1, 2}, {2, 3}}, protocol::DType::kFloat64, 13) < 1e-9);
    }
  }
}

TEST_CASE("float32 on the wire still converges to the mean within float precision") {
  for (PolicyKind kind : {PolicyKind::kPushSum, PolicyKind::kPairwise, PolicyKind::kDpsgd}) {
    const std::string policy = gossip::PolicyKindName(kind);
    CAPTURE(policy);
    CHECK(AverageOn(kind, 6, RingEdges(6), protocol::DType::kFloat32, 21) < 1e-5);
  }
}

TEST_CASE("a share the link refuses is taken back: the exact mean survives backpressure") {
  // D-PSGD is left out: a refused round value makes that round asymmetric.
  for (PolicyKind kind : {PolicyKind::kPushSum, PolicyKind::kPairwise}) {
    const std::string policy = gossip::PolicyKindName(kind);
    CAPTURE(policy);
    CHECK(AverageOn(kind, 6, RingEdges(6), protocol::DType::kFloat64, 31, 0.2) < 1e-9);
  }
}

// Σ z over sites plus Σ weight·x over shares in flight, and Σ w likewise.
struct Mass {
  std::vector<double> z;
  double w = 0;
};
Mass TotalMass(const Cluster& c) {
  Mass m;
  m.z.assign(c.nodes[0]->policy().dimension(), 0.0);
  for (const auto& n : c.nodes) {
    std::vector<double> z = n->policy().Numerator();
    for (size_t k = 0; k < z.size(); ++k) m.z[k] += z[k];
    m.w += n->policy().Weight();
  }
  for (const protocol::GossipShare& s : c.world.SharesInFlight()) {
    Result<gossip::Share> share =
        gossip::FromWire(c.nodes[0]->layout(), s, gossip::ShareChecks{protocol::DType::kFloat32},
                         std::vector<double>(m.z.size(), 1e6));
    REQUIRE(share.ok());
    for (size_t k = 0; k < m.z.size(); ++k) m.z[k] += share->weight * share->values[k];
    m.w += share->weight;
  }
  return m;
}

TEST_CASE("push-sum conserves total mass without loss, shares in flight included") {
  const int n = 7;
  Cluster c(n, 5);
  c.RandomTrainers(6);
  for (auto& o : c.options) o.train = false;  // float32 wire: rounding is charged to the sender
  c.Build();
  c.Start();
  c.world.latency = 40ms;  // long enough that checks often find shares in flight
  c.Wire(RingEdges(n));
  const std::vector<double> mean = MeanOfInitial(c);
  int checks_with_flight = 0;
  for (int t = 0; t < 100; ++t) {
    c.world.RunFor(37ms);  // not a multiple of the tick: catch shares mid-flight
    if (!c.world.SharesInFlight().empty()) ++checks_with_flight;
    Mass m = TotalMass(c);
    CHECK(m.w == doctest::Approx(n).epsilon(1e-12));
    for (size_t k = 0; k < mean.size(); ++k) {
      CHECK(m.z[k] == doctest::Approx(n * mean[k]).epsilon(1e-10));
    }
  }
  CHECK(checks_with_flight > 10);  // the check really covered in-flight mass
  CHECK(c.nodes[0]->metrics().shares_accepted > 20);
}

TEST_CASE("push-sum reaches consensus with 10% of shares dropped") {
  const int n = 8;
  Cluster c(n, 9);
  c.RandomTrainers(5);
  for (auto& o : c.options) {
    o.train = false;
    o.wire_dtype = protocol::DType::kFloat64;
  }
  c.Build();
  c.Start();
  c.Wire(RingEdges(n));
  c.world.share_loss = 0.10;
  std::vector<double> lo(5, 1e9), hi(5, -1e9);
  for (auto& t : c.trainers) {
    std::vector<float> p = t->Parameters();
    for (size_t k = 0; k < p.size(); ++k) {
      lo[k] = std::min(lo[k], double{p[k]});
      hi[k] = std::max(hi[k], double{p[k]});
    }
  }
  c.world.RunFor(120s);
  CHECK(c.world.shares_dropped > 50);
  // Consensus: every estimate agrees with site 0's, inside the initial hull.
  const std::vector<double> ref = c.nodes[0]->Estimate();
  CHECK(MaxRelError(c, ref) < 1e-6);
  for (size_t k = 0; k < ref.size(); ++k) {
    CHECK(ref[k] >= lo[k]);
    CHECK(ref[k] <= hi[k]);
  }
}

TEST_CASE("push-sum: an undeliverable share returns its mass") {
  gossip::PushSumPolicy p({1.0, 2.0, 3.0}, {});
  SplitMixRng rng(1);
  std::vector<gossip::Outgoing> out;
  p.OnTick(TimePoint{}, {Key(1), Key(2)}, rng, &out);
  REQUIRE(out.size() == 1);
  CHECK(p.Weight() == doctest::Approx(0.5));
  CHECK(p.Estimate()[1] == doctest::Approx(2.0));
  p.Undeliverable(out[0]);
  CHECK(p.Weight() == doctest::Approx(1.0));
  CHECK(p.Numerator()[2] == doctest::Approx(3.0));
  // A local step moves the estimate by exactly the delta, whatever w is
  // (the numerator by w·delta).
  p.OnTick(TimePoint{}, {Key(1)}, rng, &out);
  const double z0 = p.Numerator()[0];
  p.ApplyLocalDelta({0.5, 0.5, 0.5});
  CHECK(p.Numerator()[0] == doctest::Approx(z0 + 0.5 * 0.5));
  CHECK(p.Estimate()[0] == doctest::Approx(1.0 + 0.5));
}

TEST_CASE("pairwise: crossed offers are declined, overlapping exchanges conserve the sum") {
  gossip::PolicyOptions o;
  o.float32_wire = false;
  gossip::PairwisePolicy a({0.0}, o), b({10.0}, o), c({4.0}, o);
  SplitMixRng rng(3);
  std::vector<gossip::Outgoing> out_a, out_b, out_c, to_a, to_b;
  a.OnTick(TimePoint{}, {Key(2)}, rng, &out_a);  // a offers to b
  b.OnTick(TimePoint{}, {Key(1)}, rng, &out_b);  // b offers to a: they cross
  REQUIRE(out_a.size() == 1);
  REQUIRE(out_b.size() == 1);
  // Each declines the other's (kOutOfRange: nothing mixed, nobody blamed).
  CHECK(b.OnShare(TimePoint{}, Key(1), out_a[0].share, &to_a).code() == StatusCode::kOutOfRange);
  CHECK(a.OnShare(TimePoint{}, Key(2), out_b[0].share, &to_b).code() == StatusCode::kOutOfRange);
  REQUIRE(to_a.size() == 1);
  REQUIRE(to_b.size() == 1);
  CHECK(to_a[0].share.weight == gossip::PairwisePolicy::kBusyWeight);
  CHECK(a.OnShare(TimePoint{}, Key(2), to_a[0].share, &to_b).code() == StatusCode::kOutOfRange);
  CHECK(b.OnShare(TimePoint{}, Key(1), to_b[0].share, &to_a).code() == StatusCode::kOutOfRange);
  CHECK(a.Estimate()[0] == 0.0);  // nothing moved
  CHECK(b.Estimate()[0] == 10.0);

  // Both may offer again at once: a to b, answered normally.
  out_a.clear();
  a.OnTick(TimePoint{}, {Key(2)}, rng, &out_a);
  REQUIRE(out_a.size() == 1);
  // Meanwhile c offers to a, which is waiting on b: a answers c anyway.
  c.OnTick(TimePoint{}, {Key(1)}, rng, &out_c);
  REQUIRE(out_c.size() == 1);
  std::vector<gossip::Outgoing> replies;
  CHECK(a.OnShare(TimePoint{}, Key(3), out_c[0].share, &replies).ok());
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].share.weight == gossip::PairwisePolicy::kAnswerWeight);
  CHECK(c.OnShare(TimePoint{}, Key(1), replies[0].share, &replies).ok());
  std::vector<gossip::Outgoing> b_answer;
  CHECK(b.OnShare(TimePoint{}, Key(1), out_a[0].share, &b_answer).ok());
  REQUIRE(b_answer.size() == 1);
  CHECK(a.OnShare(TimePoint{}, Key(2), b_answer[0].share, &replies).ok());
  CHECK(a.Estimate()[0] + b.Estimate()[0] + c.Estimate()[0] == doctest::Approx(14.0));
  CHECK(a.round() == 1);
  CHECK(c.round() == 1);

  // A repeated (late) answer matches no pending offer: refused, model untouched.
  const double before = a.Estimate()[0];
  CHECK(a.OnShare(TimePoint{}, Key(2), b_answer[0].share, &replies).code() ==
        StatusCode::kOutOfRange);
  CHECK(a.Estimate()[0] == before);

  // An answer that cannot be sent is undone.
  out_c.clear();
  c.OnTick(TimePoint{}, {Key(2)}, rng, &out_c);
  std::vector<gossip::Outgoing> answer;
  const double b_before = b.Estimate()[0];
  CHECK(b.OnShare(TimePoint{}, Key(3), out_c[0].share, &answer).ok());
  REQUIRE(answer.size() == 1);
  CHECK(b.Estimate()[0] != b_before);
  b.Undeliverable(answer[0]);
  CHECK(b.Estimate()[0] == doctest::Approx(b_before));
}

TEST_CASE("d-psgd: Metropolis–Hastings step, and a silent neighbour only costs a timeout") {
  gossip::PolicyOptions o;
  o.float32_wire = false;
  o.round_timeout = 2s;
  gossip::DpsgdPolicy p({0.0}, o);
  SplitMixRng rng(4);
  std::vector<gossip::Outgoing> out;
  p.OnTick(TimePoint{}, {Key(1), Key(2)}, rng, &out);
  CHECK(out.size() == 2);
  CHECK(out[0].share.weight == 2.0);  // our degree travels in the weight
  // Neighbour 1 (degree 3) answers; neighbour 2 stays silent.
  gossip::Share s{0, 3.0, {8.0}};
  CHECK(p.OnShare(TimePoint{}, Key(1), s, &out).ok());
  CHECK(p.round() == 0);
  CHECK(p.Estimate()[0] == 0.0);
  p.OnTick(TimePoint{} + 1s, {Key(1), Key(2)}, rng, &out);
  CHECK(p.round() == 0);  // still waiting
  out.clear();
  p.OnTick(TimePoint{} + 2s, {Key(1), Key(2)}, rng, &out);
  CHECK(p.round() == 1);
  // w = 1 / (1 + max(2, 3)) = 1/4 of the difference; the silent one adds nothing.
  CHECK(p.Estimate()[0] == doctest::Approx(2.0));
  CHECK(out.size() == 2);  // and the next round started
  // A share for a finished round is refused.
  CHECK(p.OnShare(TimePoint{} + 2s, Key(2), gossip::Share{0, 2.0, {100.0}}, &out).code() ==
        StatusCode::kOutOfRange);
  CHECK(p.Estimate()[0] == doctest::Approx(2.0));
}

}  // namespace
}  // namespace dpnode::testing
