// Pure averaging through the whole simulator: a tiny synchronous
// Metropolis-Hastings averaging node (written here, not in sim/) exchanges
// one scalar per round over simulated links with random latency. It must
// converge to the exact mean on connected graphs, with per-round contraction
// of the disagreement bounded by, and for the ring and torus equal to, the
// second largest eigenvalue modulus computed by sim/topology.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sim/seeds.h"
#include "sim/sim_env.h"
#include "sim/sim_network.h"
#include "sim/topology.h"

namespace dpnode::sim {
namespace {

using std::chrono::milliseconds;

// Round t: send x_t to every neighbour; once all neighbours' x_t are in,
// x_{t+1} = W_ii x_t + sum_j W_ij x_j(t). Keeps its whole history.
class SyncAverager final : public LinkHandler {
 public:
  SyncAverager(SimEnv& env, World& world, const MixingMatrix& w, double x0, int rounds)
      : w_(w), self_(env.node()), rounds_(rounds), history_{x0} {
    env.network().SetHandler(this);
    REQUIRE(env.network().Listen(world.address(self_)).ok());
    for (uint32_t v : w.graph().neighbors(self_)) {
      peers_[world.peer_id(v)] = v;
      if (v > self_) env.network().Connect(world.peer_id(v), world.address(v), [](const Status& st) {
        FAIL("connect failed: " << st.ToString());
      });
    }
  }
  void OnLinkUp(const std::shared_ptr<Link>& link) override {
    links_.push_back(link);
    if (links_.size() == w_.graph().degree(self_)) Send();
  }
  void OnMessage(const std::shared_ptr<Link>& link, const SharedBytes& m) override {
    if (m->size() != 16) FAIL("bad message size " << m->size());
    uint64_t round;
    double value;
    std::memcpy(&round, m->data(), 8);
    std::memcpy(&value, m->data() + 8, 8);
    inbox_[round][peers_.at(link->peer())] = value;
    Advance();
  }
  void OnLinkDown(const std::shared_ptr<Link>&, const Status& why) override { FAIL("link down: " << why.ToString()); }
  const std::vector<double>& history() const { return history_; }

 private:
  int round() const { return static_cast<int>(history_.size()) - 1; }
  void Send() {
    auto bytes = std::make_shared<std::vector<uint8_t>>(16);
    const auto r = static_cast<uint64_t>(round());
    std::memcpy(bytes->data(), &r, 8);
    std::memcpy(bytes->data() + 8, &history_.back(), 8);
    const SharedBytes shared = std::move(bytes);
    for (auto& l : links_) {
      if (!l->Send(shared).ok()) FAIL("send failed");
    }
  }
  void Advance() {
    const Graph& g = w_.graph();
    while (round() < rounds_ && links_.size() == g.degree(self_)) {
      auto it = inbox_.find(static_cast<uint64_t>(round()));
      if (it == inbox_.end() || it->second.size() < g.degree(self_)) return;
      double next = w_.self_weight(self_) * history_.back();
      size_t k = 0;
      for (const uint32_t* p = g.neighbors_begin(self_); p != g.neighbors_end(self_); ++p, ++k) {
        next += w_.edge_weight(self_, k) * it->second.at(*p);
      }
      inbox_.erase(it);
      history_.push_back(next);
      if (round() < rounds_) Send();
    }
  }

  const MixingMatrix& w_;
  const uint32_t self_;
  const int rounds_;
  std::map<PeerId, uint32_t> peers_;
  std::vector<std::shared_ptr<Link>> links_;
  std::map<uint64_t, std::map<uint32_t, double>> inbox_;
  std::vector<double> history_;
};

struct AveragingRun {
  double mean = 0;
  std::vector<double> error;  // ||x_t - mean||_2 per round
  double max_final_deviation = 0;
};

AveragingRun Run(const Graph& g, int rounds, uint64_t seed) {
  const MixingMatrix w(g);
  World world(seed);
  LinkModel link;
  link.latency = LatencyModel::Uniform(milliseconds(1), milliseconds(30));
  world.SetDefaultLink(link);
  Xoshiro256 init(world.seeds().Named("init"));
  std::vector<double> x0(g.num_nodes());
  AveragingRun out;
  for (double& v : x0) {
    v = init.Normal() * 10 + 3;
    out.mean += v;
  }
  out.mean /= static_cast<double>(g.num_nodes());
  for (size_t i = 0; i < g.num_nodes(); ++i) {
    world.AddNode("n" + std::to_string(i), [&, i](SimEnv& env) {
      return std::static_pointer_cast<void>(std::make_shared<SyncAverager>(env, world, w, x0[i], rounds));
    });
  }
  world.Start();
  world.scheduler().RunAll();
  out.error.assign(static_cast<size_t>(rounds) + 1, 0.0);
  for (NodeIndex i = 0; i < g.num_nodes(); ++i) {
    const auto& h = world.node<SyncAverager>(i)->history();
    REQUIRE(h.size() == static_cast<size_t>(rounds) + 1);
    for (size_t t = 0; t < h.size(); ++t) out.error[t] += (h[t] - out.mean) * (h[t] - out.mean);
    out.max_final_deviation = std::max(out.max_final_deviation, std::fabs(h.back() - out.mean));
  }
  for (double& e : out.error) e = std::sqrt(e);
  return out;
}

// First round at which the error is below `fraction` of the start.
size_t RoundBelow(const AveragingRun& r, double fraction) {
  for (size_t t = 0; t < r.error.size(); ++t) {
    if (r.error[t] < fraction * r.error[0]) return t;
  }
  return r.error.size();
}

TEST_CASE("ring and torus: exact mean, contraction per round equal to the SLEM") {
  struct Case {
    const char* name;
    Graph g;
    int rounds;
  };
  std::vector<Case> cases;
  cases.push_back({"ring16", RingGraph(16), 500});
  cases.push_back({"torus5x6", TorusGraph(5, 6), 300});
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const double slem = SpectralGapDense(MixingMatrix(c.g)).slem;
    const AveragingRun r = Run(c.g, c.rounds, 5);
    CHECK(r.max_final_deviation < 1e-9 * (1 + std::fabs(r.mean)));
    // ||x_t - mean|| <= slem^t ||x_0 - mean|| for symmetric W, every round.
    bool bounded = true;
    for (size_t t = 0; t < r.error.size(); ++t) {
      bounded = bounded && r.error[t] <= std::pow(slem, static_cast<double>(t)) * r.error[0] * (1 + 1e-9) + 1e-12;
    }
    CHECK(bounded);
    // Once the slowest mode dominates, the ratio per round is the SLEM.
    const size_t t = RoundBelow(r, 1e-5);
    REQUIRE(t + 1 < r.error.size());
    CHECK(r.error[t + 1] / r.error[t] == doctest::Approx(slem).epsilon(2e-3));
  }
}

TEST_CASE("random graphs: exact mean, average contraction within the spectral bound") {
  Xoshiro256 rng(9);
  std::vector<Graph> graphs;
  graphs.push_back(*RandomRegular(60, 4, rng));
  graphs.push_back(ErdosRenyi(50, 0.1, rng));
  graphs.push_back(*BarabasiAlbert(50, 2, rng));
  for (const Graph& g : graphs) {
    const SpectralGap gap = SpectralGapLanczos(MixingMatrix(g));
    REQUIRE(gap.converged);
    const int rounds = static_cast<int>(std::ceil(std::log(1e-12) / std::log(gap.slem)));
    const AveragingRun r = Run(g, rounds, 6);
    CHECK(r.max_final_deviation < 1e-8 * (1 + std::fabs(r.mean)));
    CHECK(r.error.back() <= std::pow(gap.slem, rounds) * r.error[0] * (1 + 1e-6) + 1e-12);
    // Geometric-mean contraction over the second half of the run: at most
    // the SLEM, and close to it (other modes have died out).
    const size_t t0 = r.error.size() / 4, t1 = RoundBelow(r, 1e-9);
    REQUIRE(t1 > t0 + 5);
    const double rate = std::pow(r.error[t1] / r.error[t0], 1.0 / static_cast<double>(t1 - t0));
    CHECK(rate <= gap.slem * (1 + 1e-9));
    CHECK(rate >= gap.slem * 0.85);
  }
}

}  // namespace
}  // namespace dpnode::sim
