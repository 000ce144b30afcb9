// Simulator speed (docs/simulator.md):
//  1. Events per second of the scheduler at 10^5 and 10^6 pending events
//     (the "hold" model: each event schedules one successor at a uniform
//     random later time, so the queue size stays constant), against a
//     baseline std::priority_queue of (key, std::function) pairs in the same
//     run. Target: >= 2 million events/s at 10^6 pending.
//  2. Synchronous Metropolis-Hastings averaging of one scalar per node on a
//     random 4-regular graph of 100,000 nodes, run through the full simulator
//     (SimEnv, World, handshakes, links, one shared payload per broadcast),
//     until the disagreement ||x - mean|| is below 1e-6 of its start.
//     Target: under one minute of wall time.
//
//   ./build/bench/sim_bench [--steps N] [--nodes N] [--degree K] [--skip-averaging]
// A plain program: it reads the wall clock, which sim/ itself never does.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sim/scheduler.h"
#include "sim/seeds.h"
#include "sim/sim_env.h"
#include "sim/sim_network.h"
#include "sim/topology.h"

namespace dpnode::sim {
namespace {

using WallClock = std::chrono::steady_clock;

double SecondsSince(WallClock::time_point t0) {
  return std::chrono::duration<double>(WallClock::now() - t0).count();
}

// Process CPU seconds: on a shared machine the wall figure also counts time
// the process waited for a core.
double CpuSecondsSince(std::clock_t c0) { return static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC; }

struct Rate {
  double wall;  // events per wall second
  double cpu;   // events per CPU second
};

// ---- 1. Hold model.

struct HoldContext {
  Scheduler* scheduler;
  Xoshiro256 rng;
  uint64_t horizon_ns;
  void Reschedule() {
    const auto delta = Duration(static_cast<int64_t>(rng.Below(horizon_ns)));
    scheduler->ScheduleAfter(delta, static_cast<NodeIndex>(rng.Next() & 1023), [this] { Reschedule(); });
  }
};

Rate SchedulerEventsPerSecond(size_t pending, uint64_t steps) {
  Scheduler s;
  HoldContext ctx{&s, Xoshiro256(42), static_cast<uint64_t>(2 * pending) * 1000};
  for (size_t i = 0; i < pending; ++i) ctx.Reschedule();
  const auto t0 = WallClock::now();
  const std::clock_t c0 = std::clock();
  for (uint64_t i = 0; i < steps; ++i) s.Step();
  const Rate r{static_cast<double>(steps) / SecondsSince(t0), static_cast<double>(steps) / CpuSecondsSince(c0)};
  if (s.pending() != pending) std::fprintf(stderr, "hold model broke: %zu pending\n", s.pending());
  return r;
}

struct BaselineEvent {
  std::pair<int64_t, uint64_t> key;
  std::function<void()> fn;
};
struct BaselineLater {
  bool operator()(const BaselineEvent& a, const BaselineEvent& b) const { return a.key > b.key; }
};

// The textbook design: a binary heap of (key, std::function) pairs.
Rate BaselineEventsPerSecond(size_t pending, uint64_t steps) {
  std::priority_queue<BaselineEvent, std::vector<BaselineEvent>, BaselineLater> q;
  int64_t now = 0;
  uint64_t seq = 0;
  Xoshiro256 rng(42);
  const uint64_t horizon = static_cast<uint64_t>(2 * pending) * 1000;
  std::function<void()> reschedule = [&] {
    const auto delta = static_cast<int64_t>(rng.Below(horizon));
    q.push(BaselineEvent{{now + delta, seq++}, [&reschedule] { reschedule(); }});
  };
  for (size_t i = 0; i < pending; ++i) reschedule();
  const auto t0 = WallClock::now();
  const std::clock_t c0 = std::clock();
  for (uint64_t i = 0; i < steps; ++i) {
    BaselineEvent e = q.top();  // priority_queue::top is const: copy, as users must
    q.pop();
    now = e.key.first;
    e.fn();
  }
  return Rate{static_cast<double>(steps) / SecondsSince(t0), static_cast<double>(steps) / CpuSecondsSince(c0)};
}

// ---- 2. Averaging through the simulator.

struct PeerHash {
  size_t operator()(const PeerId& p) const {
    uint64_t h;
    std::memcpy(&h, p.data(), sizeof h);
    return static_cast<size_t>(h);
  }
};
using PeerIndex = std::unordered_map<PeerId, uint32_t, PeerHash>;

// What the harness sees of the run: per round, the squared distance of all
// nodes' values from the exact mean, so it can stop at the first round whose
// relative error is at most the target (rounds are exact whatever the timing).
struct RoundStats {
  RoundStats(size_t nodes, int rounds, double mean_value, double target)
      : n(nodes), mean(mean_value), target_sq(target * target), err2(static_cast<size_t>(rounds) + 1, 0.0),
        done(static_cast<size_t>(rounds) + 1, 0) {}
  void Record(int round, double x) {
    const auto r = static_cast<size_t>(round);
    err2[r] += (x - mean) * (x - mean);
    if (++done[r] == n && reached < 0 && err2[r] <= target_sq * err2[0]) reached = round;
  }
  size_t n;
  double mean;
  double target_sq;
  std::vector<double> err2;
  std::vector<size_t> done;
  int reached = -1;
};

// One scalar, synchronous rounds: send x_t to every neighbour, wait for all
// their x_t, then x_{t+1} = W_ii x_t + sum_j W_ij x_j(t). A neighbour's next
// round can arrive early (it may be one round ahead, never two), hence two
// buffers by round parity.
class Averager final : public LinkHandler {
 public:
  static constexpr size_t kMaxDegree = 8;
  Averager(SimEnv& env, World& world, const MixingMatrix& w, const PeerIndex& ids, double x0, int rounds,
           RoundStats* stats)
      : ids_(ids), stats_(stats), self_(env.node()), x_(x0), rounds_(rounds) {
    stats_->Record(0, x_);
    const Graph& g = w.graph();
    degree_ = g.degree(self_);
    if (degree_ > kMaxDegree) std::abort();
    self_weight_ = w.self_weight(self_);
    for (size_t k = 0; k < degree_; ++k) {
      nbrs_[k] = g.neighbors_begin(self_)[k];
      weight_[k] = w.edge_weight(self_, k);
    }
    env.network().SetHandler(this);
    (void)env.network().Listen(world.address(self_));
    for (size_t k = 0; k < degree_; ++k) {
      if (nbrs_[k] > self_) {
        env.network().Connect(world.peer_id(nbrs_[k]), world.address(nbrs_[k]), [this](const Status&) { failed_ = true; });
      }
    }
  }
  void OnLinkUp(const std::shared_ptr<Link>& link) override {
    const uint32_t v = ids_.at(link->peer());
    size_t k = 0;
    while (k < degree_ && nbrs_[k] != v) ++k;
    links_[k] = link;
    raw_[k] = link.get();
    if (++links_up_ == degree_) Broadcast();
  }
  void OnMessage(const std::shared_ptr<Link>& link, const SharedBytes& message) override {
    uint64_t round;
    double value;
    std::memcpy(&round, message->data(), 8);
    std::memcpy(&value, message->data() + 8, 8);
    size_t k = 0;
    while (k < degree_ && raw_[k] != link.get()) ++k;
    values_[round & 1][k] = value;
    ++have_[round & 1];
    TryAdvance();
  }
  void OnLinkDown(const std::shared_ptr<Link>&, const Status&) override { failed_ = true; }
  double x() const { return x_; }
  int round() const { return round_; }
  bool failed() const { return failed_; }

 private:
  void Broadcast() {
    auto bytes = std::make_shared<std::vector<uint8_t>>(16);
    const auto r = static_cast<uint64_t>(round_);
    std::memcpy(bytes->data(), &r, 8);
    std::memcpy(bytes->data() + 8, &x_, 8);
    SharedBytes shared = std::move(bytes);
    for (size_t k = 0; k < degree_; ++k) {
      if (!links_[k]->Send(shared).ok()) failed_ = true;
    }
  }
  void TryAdvance() {
    const int p = round_ & 1;
    if (round_ >= rounds_ || links_up_ < degree_ || have_[p] < degree_) return;
    double next = self_weight_ * x_;
    for (size_t k = 0; k < degree_; ++k) next += weight_[k] * values_[p][k];
    x_ = next;
    have_[p] = 0;
    ++round_;
    stats_->Record(round_, x_);
    if (round_ < rounds_) Broadcast();
    TryAdvance();
  }

  const PeerIndex& ids_;
  RoundStats* stats_;
  uint32_t self_;
  size_t degree_ = 0;
  size_t links_up_ = 0;
  size_t have_[2] = {0, 0};
  double x_;
  double self_weight_ = 1;
  int round_ = 0;
  int rounds_;
  bool failed_ = false;
  const Link* raw_[kMaxDegree] = {};
  double values_[2][kMaxDegree] = {};
  double weight_[kMaxDegree] = {};
  uint32_t nbrs_[kMaxDegree] = {};
  std::shared_ptr<Link> links_[kMaxDegree];
};

int RunAveraging(size_t n, size_t degree) {
  const auto t0 = WallClock::now();
  World world(7);
  Xoshiro256 graph_rng(world.seeds().Named("topology"));
  Result<Graph> g = RandomRegular(n, degree, graph_rng);
  if (!g.ok()) {
    std::fprintf(stderr, "%s\n", g.status().ToString().c_str());
    return 1;
  }
  const MixingMatrix w(*g);
  const SpectralGap gap = SpectralGapLanczos(w, 1, 3000, 1e-8);
  // At most the rounds for which slem^t <= 1e-6, plus one; the run stops at
  // the first round whose measured error is at most 1e-6.
  const int rounds = static_cast<int>(std::ceil(std::log(1e-6) / std::log(gap.slem))) + 1;
  const double t_graph = SecondsSince(t0);

  Xoshiro256 init(world.seeds().Named("init"));
  std::vector<double> x0(n);
  double mean = 0;
  for (double& v : x0) {
    v = init.Uniform();
    mean += v;
  }
  mean /= static_cast<double>(n);
  double e0 = 0;
  for (double v : x0) e0 += (v - mean) * (v - mean);
  e0 = std::sqrt(e0);
  RoundStats stats(n, rounds, mean, 1e-6);

  // Nodes are built at Start(), after every id is known.
  World& sim = world;
  PeerIndex ids;
  std::vector<Averager*> nodes(n);
  for (uint32_t i = 0; i < n; ++i) {
    sim.AddNode("n" + std::to_string(i), [&, i](SimEnv& env) {
      auto a = std::make_shared<Averager>(env, sim, w, ids, x0[i], rounds, &stats);
      nodes[i] = a.get();
      return std::static_pointer_cast<void>(a);
    });
  }
  for (uint32_t i = 0; i < n; ++i) ids.emplace(sim.peer_id(i), i);
  LinkModel link;
  link.latency = LatencyModel::Uniform(std::chrono::milliseconds(1), std::chrono::milliseconds(20));
  sim.SetDefaultLink(link);
  sim.Start();
  const auto t_run = WallClock::now();
  const std::clock_t cpu0 = std::clock();
  sim.scheduler().RunUntil([&stats] { return stats.reached >= 0; }, TimePoint::max());
  const double run_secs = SecondsSince(t_run);
  const double run_cpu = CpuSecondsSince(cpu0);

  bool failed = false;
  for (uint32_t i = 0; i < n; ++i) failed = failed || nodes[i]->failed();
  const double rel = stats.reached >= 0 ? std::sqrt(stats.err2[static_cast<size_t>(stats.reached)]) / e0 : 1.0;
  const double total = SecondsSince(t0);
  std::printf("averaging: n=%zu random %zu-regular, MH weights, spectral gap %.6f (slem %.6f, Lanczos %d it%s)\n", n,
              degree, gap.gap, gap.slem, gap.iterations, gap.converged ? "" : ", residual above tolerance");
  std::printf("  relative error ||x_t-mean||/||x_0-mean|| = %.3e at round t=%d, the first <= 1e-6 (slem^t = %.3e)%s\n",
              rel, stats.reached, std::pow(gap.slem, stats.reached), failed ? "  LINK FAILURES" : "");
  std::printf("  events %llu, virtual time %.3f s\n", static_cast<unsigned long long>(sim.scheduler().events_run()),
              std::chrono::duration<double>(sim.Now().time_since_epoch()).count());
  std::printf("  wall: graph+gap %.2f s, simulation %.2f s (%.2f M events/s; CPU %.2f s), total %.2f s\n", t_graph,
              run_secs, static_cast<double>(sim.scheduler().events_run()) / run_secs / 1e6, run_cpu, total);
  return (stats.reached >= 0 && rel <= 1e-6 && !failed) ? 0 : 1;
}
}  // namespace
}  // namespace dpnode::sim

int main(int argc, char** argv) {
  uint64_t steps = 5'000'000;
  size_t nodes = 100'000;
  size_t degree = 4;
  bool averaging = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--steps" && i + 1 < argc) {
      steps = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--nodes" && i + 1 < argc) {
      nodes = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--degree" && i + 1 < argc) {
      degree = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--skip-averaging") {
      averaging = false;
    } else {
      std::fprintf(stderr, "usage: %s [--steps N] [--nodes N] [--degree K] [--skip-averaging]\n", argv[0]);
      return 2;
    }
  }
  for (size_t pending : {size_t{100'000}, size_t{1'000'000}}) {
    const auto ours = dpnode::sim::SchedulerEventsPerSecond(pending, steps);
    const auto base = dpnode::sim::BaselineEventsPerSecond(pending, steps);
    std::printf(
        "scheduler: %7zu pending: %6.2f M events/s wall, %6.2f M/CPU-s | baseline priority_queue+std::function "
        "%6.2f M/s wall, %6.2f M/CPU-s | x%.2f (CPU)\n",
        pending, ours.wall / 1e6, ours.cpu / 1e6, base.wall / 1e6, base.cpu / 1e6, ours.cpu / base.cpu);
    std::fflush(stdout);
  }
  return averaging ? dpnode::sim::RunAveraging(nodes, degree) : 0;
}
