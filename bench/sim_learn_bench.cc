// A 1,000-site learning simulation (docs/simulator.md, docs/benchmarks.md):
// real Nodes (node/node.h) with the LibTorch learner (a small MLP, DP-SGD on)
// and a ledger each, push-sum gossip on a random 4-regular graph, over the
// simulated World. The GBSG + Rotterdam training rows (examples/gbsg/) are
// split IID across the sites: at 1,000 sites that is 2-3 rows per site, so
// the sites are tiny; the figure is about speed, not accuracy.
//
// A "round" is one gossip interval of virtual time (0.1 s by default). In it
// every node's gossip timer fires once on average (the interval is jittered
// ±25 %) and sends one push-sum share, and every node runs one local DP-SGD
// step on average (the modelled compute time of a step equals the interval).
// Per round the program reports wall and CPU seconds, events and local steps;
// the mean is over --rounds rounds after --warmup rounds (handshakes, first
// ledger blocks). No test-set evaluation runs inside the timed rounds; one
// full evaluation of every node's estimate runs at the end and is timed
// separately.
//
// Baseline in the same run, before the learning run: the same sites, graph,
// model layout and gossip, with training off (NodeOptions::train = false:
// pure push-sum averaging, no ledger, no DP-SGD), so the split between
// networking and learning cost is visible.
//
//   ./build/bench/sim_learn_bench [--sites N] [--rounds R] [--warmup W] [--hidden H]
//       [--degree K] [--step-time S] [--skip-baseline] [--ledger-dir DIR] [--data DIR]
// A plain program: it reads the wall clock, which sim/ itself never does.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "crypto/identity.h"
#include "crypto/peers.h"
#include "node/learn/data/schema.h"
#include "node/learn/network.h"
#include "node/node.h"
#include "node/privacy/calibrate.h"
#include "node/privacy/ledger.h"
#include "sim/experiment/experiment.h"
#include "sim/learn/learner_backend.h"
#include "sim/seeds.h"
#include "sim/sim_network.h"
#include "sim/topology.h"

namespace dpnode::sim {
namespace {

namespace fs = std::filesystem;
using WallClock = std::chrono::steady_clock;

struct Options {
  size_t sites = 1000;
  int rounds = 30;
  int warmup = 5;
  int64_t hidden = 32;
  uint32_t degree = 4;
  double interval_s = 0.1;
  double step_time_s = 0.1;  // modelled compute per local step
  double epsilon = 3;
  double delta = 1e-5;
  int64_t batch = 1;  // expected batch: q = min(1, batch / site rows)
  bool baseline = true;
  // Where the 1,000 ledgers live. Each real site fsyncs its own disk; here
  // they would share one, so by default they go to tmpfs (same code, the
  // fsyncs return at once). --ledger-dir on a disk shows that cost.
  std::string ledger_dir = fs::exists("/dev/shm") ? "/dev/shm" : fs::temp_directory_path().string();
  std::string data_dir = DPNODE_SOURCE_DIR "/examples/gbsg";
};

double SecondsSince(WallClock::time_point t0) {
  return std::chrono::duration<double>(WallClock::now() - t0).count();
}
double CpuSeconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }
Duration Seconds(double s) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

// Peak and current resident set size of this process, MiB (Linux).
double StatusMiB(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(f, line)) {
    if (line.compare(0, k.size(), k) == 0)
      return std::strtod(line.c_str() + k.size(), nullptr) / 1024.0;
  }
  return -1;
}

struct Setup {
  ExperimentSpec spec;
  learn::Dataset data;
  int classes = 2;
  std::vector<std::vector<int64_t>> site_rows;
  Graph graph;
  std::vector<crypto::SiteIdentity> ids;
  std::vector<crypto::PeerList> peers;
  ModelBackend backend;
};

std::string Host(size_t i) { return "host" + std::to_string(i); }

Status Prepare(const Options& o, Setup& s) {
  s.spec.seed = 1;
  s.spec.split = SplitKind::kIid;
  s.spec.sites = static_cast<uint32_t>(o.sites);
  s.spec.model = "mlp";
  s.spec.hidden = {o.hidden};
  s.spec.clip = 1.0;
  s.spec.learning_rate = 0.5;
  s.spec.delta = o.delta;
  Result<learn::Schema> schema = learn::LoadSchemaFile(o.data_dir + "/schema.toml");
  if (!schema.ok()) return schema.status();
  Result<learn::Dataset> data = learn::LoadDataset(*schema, o.data_dir + "/gbsg_rotterdam.csv");
  if (!data.ok()) return data.status();
  s.data = std::move(*data);
  s.classes = static_cast<int>(s.data.class_names.size());
  std::vector<std::string> names;
  Result<std::vector<std::vector<int64_t>>> split = SplitSites(s.spec, s.data, &names);
  if (!split.ok()) return split.status();
  s.site_rows = std::move(*split);
  Xoshiro256 rng(SeedTree(s.spec.seed).Named("topology"));
  Result<Graph> g = RandomRegular(o.sites, o.degree, rng);
  if (!g.ok()) return g.status();
  s.graph = std::move(*g);
  SeedTree seeds(s.spec.seed);
  for (size_t i = 0; i < o.sites; ++i) {
    std::array<uint8_t, 32> seed_bytes{};
    Xoshiro256 r(seeds.Named("identity", {i}));
    for (size_t b = 0; b < 32; b += 8) {
      const uint64_t v = r.Next();
      for (size_t j = 0; j < 8; ++j) seed_bytes[b + j] = static_cast<uint8_t>(v >> (8 * j));
    }
    s.ids.push_back(
        crypto::SiteIdentity::FromSeed(crypto::Ed25519Seed(crypto::ByteView(seed_bytes))));
  }
  auto line = [&](size_t i) {
    return crypto::FormatPeerLine("s" + std::to_string(i), s.ids[i].public_key(),
                                  crypto::HostPort{Host(i), 7400, false}) +
           "\n";
  };
  for (size_t i = 0; i < o.sites; ++i) {
    std::string text = line(i);
    for (uint32_t j : s.graph.neighbors(static_cast<uint32_t>(i))) text += line(j);
    Result<crypto::PeerList> p = crypto::ParsePeers(text, "peers-" + std::to_string(i));
    if (!p.ok()) return p.status();
    s.peers.push_back(std::move(*p));
  }
  s.backend = LearnerBackend();
  return Status::Ok();
}

struct Box {
  std::unique_ptr<privacy::Ledger> ledger;
  std::unique_ptr<node::Node> node;
  ~Box() {
    if (node) node->Stop();
  }
};

struct ArmFigures {
  double trainers_wall = 0;  // calibration and trainer construction
  double setup_wall = 0;
  std::vector<double> wall, cpu;
  std::vector<uint64_t> events, steps, shares;
  double sigma = 0, q_mean = 0;
  double eval_wall = 0, accuracy = 0;
  double peak_rss_mib = 0, rss_mib = 0;
  bool ok = true;
};

double Mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}
template <typename T>
double MeanU(const std::vector<T>& v) {
  double s = 0;
  for (T x : v) s += static_cast<double>(x);
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}
double Quantile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5)];
}

Result<ArmFigures> RunArm(const Options& o, Setup& s, bool train, const std::string& ledger_root) {
  ArmFigures f;
  const auto t_setup = WallClock::now();
  const size_t n = o.sites;
  SeedTree seeds(s.spec.seed);
  // Steps each node may take: the warm-up and measured rounds, with room to
  // spare so that no node stops training inside the measured window.
  const int64_t max_steps =
      static_cast<int64_t>(std::ceil((o.warmup + o.rounds + 10) * o.interval_s / o.step_time_s));
  std::vector<std::unique_ptr<node::Trainer>> trainers;
  std::map<double, double> sigma_for_q;
  for (size_t i = 0; i < n; ++i) {
    TrainPlan plan;
    plan.is_private = true;
    plan.sample_rate =
        std::min(1.0, static_cast<double>(o.batch) / static_cast<double>(s.site_rows[i].size()));
    plan.clip = s.spec.clip;
    plan.learning_rate = s.spec.learning_rate;
    // Sites differ only in their row counts, so a few calibrations serve all
    // (each is tens of ms of RDP evaluations).
    auto known = sigma_for_q.find(plan.sample_rate);
    if (known == sigma_for_q.end()) {
      Result<privacy::NoiseCalibration> c = privacy::SmallestNoiseMultiplier(
          privacy::AccountantKind::kRdp, o.epsilon, o.delta, plan.sample_rate, max_steps);
      if (!c.ok()) return c.status();
      known = sigma_for_q.emplace(plan.sample_rate, c->noise_multiplier).first;
    }
    plan.noise_multiplier = known->second;
    f.sigma = std::max(f.sigma, plan.noise_multiplier);
    f.q_mean += plan.sample_rate / static_cast<double>(n);
    Result<std::unique_ptr<node::Trainer>> t = s.backend.make_trainer(
        s.spec, s.data, s.site_rows[i], s.classes, plan, seeds.Named("trainer", {0, i}));
    if (!t.ok()) return t.status();
    trainers.push_back(std::move(*t));
  }
  f.trainers_wall = SecondsSince(t_setup);
  std::error_code ec;
  fs::remove_all(ledger_root, ec);
  std::vector<std::string> ledger_dirs;
  if (train) {
    for (size_t i = 0; i < n; ++i) {
      ledger_dirs.push_back((fs::path(ledger_root) / ("site" + std::to_string(i))).string());
      fs::create_directories(ledger_dirs.back(), ec);
      if (ec) return Status::IoError("cannot create " + ledger_dirs.back());
    }
  }

  World world(seeds.Named("world", {0}));
  LinkModel link;
  link.latency = LatencyModel::Uniform(std::chrono::milliseconds(5), std::chrono::milliseconds(50));
  link.bandwidth_bytes_per_second = 100e6 / 8;
  world.SetDefaultLink(link);
  Status factory_error;
  for (size_t i = 0; i < n; ++i) {
    world.AddNode(Host(i), s.ids[i].public_key(), [&, i](SimEnv& env) -> std::shared_ptr<void> {
      auto box = std::make_shared<Box>();
      if (train) {
        privacy::Budget b;
        b.epsilon = o.epsilon;
        b.delta = o.delta;
        b.label = "site" + std::to_string(i);
        Result<std::unique_ptr<privacy::Ledger>> ledger =
            privacy::Ledger::Create(ledger_dirs[i], b);
        if (!ledger.ok()) {
          if (factory_error.ok()) factory_error = ledger.status();
          return box;
        }
        box->ledger = std::move(*ledger);
      }
      node::NodeOptions no;
      no.site_name = "s" + std::to_string(i);
      no.consortium_id = "sim";
      no.listen = NetAddress{Host(i), 7400};
      no.announce = {NetAddress{Host(i), 7400}};
      no.policy = gossip::PolicyKind::kPushSum;
      no.gossip_interval = Seconds(o.interval_s);
      no.train = train;
      no.max_steps = max_steps;
      box->node = std::make_unique<node::Node>(env, s.ids[i], s.peers[i], box->ledger.get(),
                                               *trainers[i], no);
      Status st = box->node->Start();
      if (!st.ok() && factory_error.ok()) factory_error = st;
      return box;
    });
    const Duration step = Seconds(o.step_time_s);
    world.SetComputeModel(static_cast<NodeIndex>(i), [step] { return step; });
  }
  world.Start();
  if (!factory_error.ok()) return factory_error;
  auto node_of = [&](size_t i) -> node::Node& {
    return *world.node<Box>(static_cast<NodeIndex>(i))->node;
  };
  auto total_steps = [&] {
    uint64_t t = 0;
    for (size_t i = 0; i < n; ++i) t += static_cast<uint64_t>(node_of(i).metrics().steps);
    return t;
  };
  auto total_shares = [&] {
    uint64_t t = 0;
    for (size_t i = 0; i < n; ++i) t += node_of(i).metrics().shares_accepted;
    return t;
  };
  const Duration round = Seconds(o.interval_s);
  world.RunFor(round * o.warmup);
  f.setup_wall = SecondsSince(t_setup);
  uint64_t ev0 = world.scheduler().events_run(), st0 = total_steps(), sh0 = total_shares();
  for (int r = 0; r < o.rounds; ++r) {
    const auto w0 = WallClock::now();
    const double c0 = CpuSeconds();
    world.RunFor(round);
    f.wall.push_back(SecondsSince(w0));
    f.cpu.push_back(CpuSeconds() - c0);
    const uint64_t ev = world.scheduler().events_run(), st = total_steps(), sh = total_shares();
    f.events.push_back(ev - ev0);
    f.steps.push_back(st - st0);
    f.shares.push_back(sh - sh0);
    ev0 = ev;
    st0 = st;
    sh0 = sh;
  }
  for (size_t i = 0; i < n; ++i) {
    const node::Node& nd = node_of(i);
    if (train && (nd.phase() != node::Phase::kTraining || !nd.training_stop_reason().ok())) {
      std::fprintf(stderr, "site %zu left training early: %s\n", i,
                   nd.training_stop_reason().ToString().c_str());
      f.ok = false;
    }
  }
  // One evaluation of every node's estimate on the test rows (not timed in
  // the rounds: an experiment runs it every eval_interval_s).
  const auto e0 = WallClock::now();
  double acc = 0;
  for (size_t i = 0; i < n; ++i) {
    std::vector<double> e = node_of(i).Estimate();
    Result<EvalResult> r = s.backend.evaluate(s.spec, s.data, s.data.test_rows, s.classes,
                                              std::vector<float>(e.begin(), e.end()));
    if (!r.ok()) return r.status();
    acc += r->accuracy;
  }
  f.eval_wall = SecondsSince(e0);
  f.accuracy = acc / static_cast<double>(n);
  f.peak_rss_mib = StatusMiB("VmHWM");
  f.rss_mib = StatusMiB("VmRSS");
  return f;
}

void Print(const char* name, const ArmFigures& f) {
  std::printf("%s:\n", name);
  std::printf("  setup + warm-up wall %.2f s (of which trainers %.2f s)\n", f.setup_wall,
              f.trainers_wall);
  std::printf(
      "  per round (%zu rounds): wall mean %.3f s (median %.3f, max %.3f), CPU mean %.3f s\n",
      f.wall.size(), Mean(f.wall), Quantile(f.wall, 0.5), Quantile(f.wall, 1.0), Mean(f.cpu));
  std::printf("  per round: %.0f events, %.0f local steps, %.0f shares accepted\n", MeanU(f.events),
              MeanU(f.steps), MeanU(f.shares));
  if (MeanU(f.steps) > 0) {
    std::printf("  per local step (whole round / steps): %.1f us wall\n",
                1e6 * Mean(f.wall) / MeanU(f.steps));
  }
  std::printf("  one evaluation of all estimates: %.2f s wall, mean test accuracy %.3f\n",
              f.eval_wall, f.accuracy);
  std::printf("  RSS now %.0f MiB, peak so far %.0f MiB\n", f.rss_mib, f.peak_rss_mib);
  std::fflush(stdout);
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--sites") {
      o.sites = std::strtoull(next(), nullptr, 10);
    } else if (a == "--rounds") {
      o.rounds = std::atoi(next());
    } else if (a == "--warmup") {
      o.warmup = std::atoi(next());
    } else if (a == "--hidden") {
      o.hidden = std::atoll(next());
    } else if (a == "--degree") {
      o.degree = static_cast<uint32_t>(std::atoi(next()));
    } else if (a == "--step-time") {
      o.step_time_s = std::atof(next());
    } else if (a == "--data") {
      o.data_dir = next();
    } else if (a == "--ledger-dir") {
      o.ledger_dir = next();
    } else if (a == "--skip-baseline") {
      o.baseline = false;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--sites N] [--rounds R] [--warmup W] [--hidden H] [--degree K] "
                   "[--step-time S] "
                   "[--skip-baseline] [--ledger-dir DIR] [--data DIR]\n",
                   argv[0]);
      return 2;
    }
  }
  if (o.sites < o.degree + 1 || o.rounds < 1 || o.warmup < 0 || o.hidden < 1 ||
      o.step_time_s <= 0) {
    std::fprintf(stderr, "bad options\n");
    return 2;
  }
  // One thread: the simulator is single-threaded and the tensors are tiny.
  learn::SetComputeThreads(1);
  const auto t0 = WallClock::now();
  Setup s;
  Status st = Prepare(o, s);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return 1;
  }
  size_t min_rows = SIZE_MAX, max_rows = 0, rows = 0;
  for (const auto& r : s.site_rows) {
    min_rows = std::min(min_rows, r.size());
    max_rows = std::max(max_rows, r.size());
    rows += r.size();
  }
  const int64_t params = (s.data.dim + 1) * o.hidden + (o.hidden + 1) * s.classes;
  std::printf(
      "sim_learn_bench: %zu sites (IID split of %zu GBSG+Rotterdam training rows: %zu-%zu per "
      "site), random "
      "%u-regular graph, push-sum every %.3f s (virtual), MLP %lld-%lld-%d (%lld parameters), "
      "DP-SGD eps=%g "
      "delta=%g, one local step per %.3f s; a round = %.3f s of virtual time\n",
      o.sites, rows, min_rows, max_rows, o.degree, o.interval_s, static_cast<long long>(s.data.dim),
      static_cast<long long>(o.hidden), s.classes, static_cast<long long>(params), o.epsilon,
      o.delta, o.step_time_s, o.interval_s);
  std::printf("  data, graph, identities: %.2f s wall\n", SecondsSince(t0));
  std::fflush(stdout);
  std::printf("  ledgers under %s\n", o.ledger_dir.c_str());
  const std::string root =
      (fs::path(o.ledger_dir) / ("sim_learn_bench." + std::to_string(::getpid()))).string();
  int rc = 0;
  if (o.baseline) {
    Result<ArmFigures> b = RunArm(o, s, /*train=*/false, root + "/baseline");
    if (!b.ok()) {
      std::fprintf(stderr, "baseline: %s\n", b.status().ToString().c_str());
      return 1;
    }
    Print("baseline: pure push-sum averaging (train = false: no ledger, no DP-SGD)", *b);
  }
  Result<ArmFigures> l = RunArm(o, s, /*train=*/true, root + "/learn");
  if (!l.ok()) {
    std::fprintf(stderr, "learning: %s\n", l.status().ToString().c_str());
    rc = 1;
  } else {
    std::printf("learning: q mean %.3f, sigma max %.3f\n", l->q_mean, l->sigma);
    Print("learning: MLP DP-SGD + push-sum, one ledger per site", *l);
    std::printf("target: < 1 s wall per round: %s\n", Mean(l->wall) < 1.0 ? "met" : "NOT met");
    if (!l->ok) rc = 1;
  }
  std::error_code ec;
  fs::remove_all(root, ec);
  return rc;
}

}  // namespace
}  // namespace dpnode::sim

int main(int argc, char** argv) { return dpnode::sim::Main(argc, argv); }
