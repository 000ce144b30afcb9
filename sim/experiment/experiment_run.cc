// Runs an experiment's arms and writes metrics.csv, summary.json and plots.
//
// Gossip arms run real Nodes (node/node.h) on a simulated World. A site's
// state lives on disk as a real node's does: its ledger (OUT/ledgers/<arm>/
// site<i>), charged by the Node before every step, and its checkpoint
// (OUT/state/<arm>/site<i>/checkpoint.ckpt, node/learn/checkpoint.h), written
// every faults.checkpoint_interval_s of virtual time between two steps. A
// crash destroys the Node, its trainer and the ledger handle; a restart
// builds a fresh trainer (new noise seed), restores the last checkpoint (none
// yet: the initial parameters), reopens the ledger and is granted the planned
// steps minus those the ledger has charged, as the daemon is: work since the
// checkpoint is lost, its budget stays spent. Local and pooled arms step
// their trainers directly and are accounted with the same accountant.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/check.h"
#include "crypto/identity.h"
#include "crypto/peers.h"
#include "node/learn/checkpoint.h"
#include "node/learn/data/schema.h"
#include "node/node.h"
#include "node/privacy/calibrate.h"
#include "node/privacy/ledger.h"
#include "sim/experiment/experiment.h"
#include "sim/experiment/logistic_trainer.h"
#include "sim/experiment/svg_plot.h"
#include "sim/sim_network.h"
#include "sim/topology.h"

namespace dpnode::sim {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

constexpr uint16_t kPort = 7400;
constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

struct Row {
  std::string arm;
  double time_s = 0;
  int64_t round = 0;
  std::string node;
  EvalResult eval;
  double consensus = kNan;
  uint64_t bytes_sent = 0;
  double epsilon = kNan;
};

// Final state of one node of one arm.
struct NodeFinal {
  std::string node;
  EvalResult eval;
  // On the site's own test rows (site-column splits only): the figure a
  // hospital would see on its own patients.
  std::optional<EvalResult> site_eval;
  size_t site_test_rows = 0;
  // Pooled arm only: the pooled model on each site's own test rows.
  std::vector<std::pair<std::string, EvalResult>> per_site;
  double epsilon = kNan;         // as the arm tracked it
  double ledger_epsilon = kNan;  // recomputed from the ledger file (gossip arms)
  int64_t steps = 0;
  uint64_t bytes_sent = 0;
  bool alive = true;
};

struct ArmOutcome {
  std::vector<NodeFinal> nodes;
  uint64_t events = 0;
  double virtual_time_s = 0;
};

// One site's DP-SGD plan.
struct SitePlan {
  TrainPlan train;
  int64_t steps = 0;
};

Duration Seconds(double s) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}
double ToSeconds(TimePoint t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

std::string Fmt(double v, const char* f = "%.6g") {
  if (!std::isfinite(v)) return "";
  char buf[40];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

Result<SitePlan> PlanFor(const ExperimentSpec& spec, const ArmSpec& arm, size_t rows) {
  SitePlan p;
  const double n = static_cast<double>(std::max<size_t>(rows, 1));
  p.train.sample_rate = std::min(1.0, static_cast<double>(spec.batch) / n);
  p.steps = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(spec.epochs / p.train.sample_rate)));
  p.train.is_private = arm.is_private;
  p.train.clip = spec.clip;
  p.train.learning_rate = spec.learning_rate;
  p.train.noise_multiplier = 1.0;  // a placeholder the non-private ledger charges
  if (arm.is_private) {
    Result<privacy::NoiseCalibration> c = privacy::SmallestNoiseMultiplier(
        spec.accountant, arm.epsilon, spec.delta, p.train.sample_rate, p.steps);
    if (!c.ok()) {
      return Status::InvalidArgument("arm '" + arm.name + "': cannot calibrate noise: " +
                                     c.status().ToString());
    }
    p.train.noise_multiplier = c->noise_multiplier;
  }
  return p;
}

// PlanFor per row count: a plan depends on the site's row count only, and
// calibrating σ costs tens of ms, so sites of one size (most of them at
// 1,000 sites) share one.
class PlanCache {
 public:
  PlanCache(const ExperimentSpec& spec, const ArmSpec& arm) : spec_(spec), arm_(arm) {}
  Result<SitePlan> For(size_t rows) {
    auto known = plans_.find(rows);
    if (known != plans_.end()) return known->second;
    Result<SitePlan> p = PlanFor(spec_, arm_, rows);
    if (p.ok()) plans_.emplace(rows, *p);
    return p;
  }

 private:
  const ExperimentSpec& spec_;
  const ArmSpec& arm_;
  std::map<size_t, SitePlan> plans_;
};

double AccountedEpsilon(const ExperimentSpec& spec, const SitePlan& plan, int64_t steps) {
  if (!plan.train.is_private) return kNan;
  Result<double> e = privacy::ComputeEpsilon(
      spec.accountant, {{plan.train.sample_rate, plan.train.noise_multiplier, steps}}, spec.delta);
  return e.ok() ? *e : kNan;
}

Result<learn::Dataset> LoadAll(const ExperimentSpec& spec) {
  Result<learn::Schema> schema = learn::LoadSchemaFile(spec.schema_path);
  if (!schema.ok()) return Status::InvalidArgument("experiment key 'data.schema': " + schema.status().ToString());
  learn::Dataset all;
  for (const std::string& path : spec.csv_paths) {
    Result<learn::Dataset> d = learn::LoadDataset(*schema, path);
    if (!d.ok()) return Status::InvalidArgument("experiment key 'data.csv': " + d.status().ToString());
    const int64_t off = all.rows;
    if (all.rows == 0) {
      all = std::move(*d);
      continue;
    }
    all.features.insert(all.features.end(), d->features.begin(), d->features.end());
    all.labels.insert(all.labels.end(), d->labels.begin(), d->labels.end());
    all.sites.insert(all.sites.end(), d->sites.begin(), d->sites.end());
    all.lines.insert(all.lines.end(), d->lines.begin(), d->lines.end());
    for (int64_t r : d->train_rows) all.train_rows.push_back(r + off);
    for (int64_t r : d->test_rows) all.test_rows.push_back(r + off);
    all.rows += d->rows;
  }
  if (all.test_rows.empty()) {
    return Status::InvalidArgument("experiment key 'data.schema': no test rows; give the schema a [split]");
  }
  return all;
}

Result<Graph> BuildGraph(const ExperimentSpec& spec, size_t n) {
  Xoshiro256 rng(SeedTree(spec.seed).Named("topology"));
  const std::string& k = spec.topology;
  if (k == "complete") return CompleteGraph(n);
  if (k == "ring") return RingGraph(n);
  if (k == "star") return StarGraph(n);
  if (k == "torus") {
    size_t rows = spec.rows;
    if (rows == 0) {
      rows = static_cast<size_t>(std::sqrt(static_cast<double>(n)));
      while (rows > 1 && n % rows != 0) --rows;
    }
    if (rows == 0 || n % rows != 0) {
      return Status::InvalidArgument("experiment key 'topology.rows': must divide the " +
                                     std::to_string(n) + " sites");
    }
    return TorusGraph(rows, n / rows);
  }
  if (k == "erdos_renyi") return ErdosRenyi(n, spec.p, rng);
  Result<Graph> g = Status::InvalidArgument("unknown topology");
  if (k == "regular") g = RandomRegular(n, spec.k, rng);
  if (k == "watts_strogatz") g = WattsStrogatz(n, spec.k, spec.beta, rng);
  if (k == "barabasi_albert") g = BarabasiAlbert(n, spec.m, rng);
  if (k == "edge_list") {
    g = LoadEdgeList(spec.edge_file);
    if (g.ok() && g->num_nodes() != n) {
      return Status::InvalidArgument("experiment key 'topology.file': the graph has " +
                                     std::to_string(g->num_nodes()) + " nodes, the split " +
                                     std::to_string(n) + " sites");
    }
  }
  if (!g.ok()) return Status::InvalidArgument("experiment key 'topology': " + g.status().ToString());
  return g;
}

// Wraps an arm's trainer: adds completed steps to `*steps_run` (the arm's
// count, which outlives the trainer across a site's incarnations; may be
// null) and, for a non-private arm, reports a placeholder σ = 1 that the
// arm's never-binding ledger accepts (a non-private trainer's own σ is 0,
// which a ledger refuses).
class CountingTrainer final : public node::Trainer {
 public:
  CountingTrainer(std::unique_ptr<node::Trainer> inner, bool is_private, int64_t* steps_run)
      : inner_(std::move(inner)), private_(is_private), steps_run_(steps_run) {}
  gossip::Layout ParameterLayout() const override { return inner_->ParameterLayout(); }
  std::vector<float> Parameters() const override { return inner_->Parameters(); }
  Status SetParameters(const std::vector<float>& p) override { return inner_->SetParameters(p); }
  privacy::StepBlock StepCost() const override {
    privacy::StepBlock b = inner_->StepCost();
    if (!private_) b.noise_multiplier = 1.0;
    return b;
  }
  Status Step() override {
    Status s = inner_->Step();
    if (s.ok() && steps_run_) ++*steps_run_;
    return s;
  }
  Result<double> Evaluate() override { return inner_->Evaluate(); }
  node::Trainer& inner() { return *inner_; }
  const node::Trainer& inner() const { return *inner_; }

 private:
  std::unique_ptr<node::Trainer> inner_;
  bool private_;
  int64_t* steps_run_;
};

// Everything an arm needs.
struct Context {
  const ExperimentSpec* spec;
  uint64_t seed;
  const learn::Dataset* data;
  int classes;
  std::vector<std::vector<int64_t>> site_rows;
  std::vector<std::string> site_names;
  // Per site, its own test rows (data.split = "site_column" only; else empty).
  std::vector<std::vector<int64_t>> site_test_rows;
  Graph graph;
  std::string out_dir;
  std::vector<Row>* rows;
  const RunOptions* options;

  Result<std::unique_ptr<CountingTrainer>> MakeTrainer(const std::vector<int64_t>& train_rows,
                                                       const TrainPlan& plan, uint64_t s,
                                                       int64_t* steps_run = nullptr) const {
    std::unique_ptr<node::Trainer> t;
    if (spec->model == "logistic") {
      t = std::make_unique<LogisticTrainer>(*data, train_rows, classes, plan, s);
    } else {
      Result<std::unique_ptr<node::Trainer>> r =
          options->backend.make_trainer(*spec, *data, train_rows, classes, plan, s);
      if (!r.ok()) return r.status();
      t = std::move(*r);
    }
    return std::make_unique<CountingTrainer>(std::move(t), plan.is_private, steps_run);
  }
  // The trainer's checkpoint (its parameters, not yet the Node's estimate).
  Result<learn::Checkpoint> MakeCheckpoint(const CountingTrainer& t) const {
    if (spec->model == "logistic") {
      return static_cast<const LogisticTrainer&>(t.inner()).MakeCheckpoint();
    }
    return options->backend.make_checkpoint(t.inner());
  }
  Status RestoreCheckpoint(CountingTrainer& t, const learn::Checkpoint& checkpoint) const {
    if (spec->model == "logistic") {
      return static_cast<LogisticTrainer&>(t.inner()).RestoreCheckpoint(checkpoint);
    }
    return options->backend.restore_checkpoint(t.inner(), checkpoint);
  }
  // Test metrics of `params` on `test` (default: every test row, pooled).
  EvalResult Eval(const std::vector<float>& params,
                  const std::vector<int64_t>* test = nullptr) const {
    const std::vector<int64_t>& on = test ? *test : data->test_rows;
    if (spec->model == "logistic") return EvaluateParams(*data, on, classes, params);
    Result<EvalResult> r = options->backend.evaluate(*spec, *data, on, classes, params);
    if (r.ok()) return *r;
    EvalResult bad;
    bad.accuracy = bad.auroc = bad.loss = kNan;
    return bad;
  }
};

// The site-column test rows of each site name, in `names` order; empty when
// the split is not by the data's own site column.
std::vector<std::vector<int64_t>> SiteTestRows(const ExperimentSpec& spec, const learn::Dataset& data,
                                               const std::vector<std::string>& names) {
  std::vector<std::vector<int64_t>> out;
  if (spec.split != SplitKind::kSiteColumn || data.sites.empty()) return out;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < names.size(); ++i) index[names[i]] = i;
  out.resize(names.size());
  for (int64_t r : data.test_rows) {
    auto it = index.find(data.sites[static_cast<size_t>(r)]);
    if (it != index.end()) out[it->second].push_back(r);
  }
  return out;
}

// Fills f.site_eval for site `i` when it has test rows of its own.
void SiteEval(const Context& c, size_t i, const std::vector<float>& params, NodeFinal& f) {
  if (i >= c.site_test_rows.size() || c.site_test_rows[i].empty()) return;
  f.site_test_rows = c.site_test_rows[i].size();
  f.site_eval = c.Eval(params, &c.site_test_rows[i]);
}

void Progress(const Context& c, const std::string& line) {
  if (c.options->progress) c.options->progress(line);
}

double SpeedFactor(const ExperimentSpec& spec, size_t site) {
  double f = 1;
  for (const auto& s : spec.stragglers) {
    if (s.site == site) f *= s.factor;
  }
  return f;
}

// Local-only and pooled arms: trainers stepped directly, evaluated 20 times.
Result<ArmOutcome> RunDirect(const Context& c, size_t arm_index, const ArmSpec& arm) {
  const ExperimentSpec& spec = *c.spec;
  std::vector<std::vector<int64_t>> groups;
  std::vector<std::string> names;
  std::vector<double> speed;
  if (arm.kind == ArmKind::kPooled) {
    std::vector<int64_t> all;
    for (const auto& r : c.site_rows) all.insert(all.end(), r.begin(), r.end());
    std::sort(all.begin(), all.end());
    groups.push_back(std::move(all));
    names.push_back("pooled");
    speed.push_back(1);
  } else {
    groups = c.site_rows;
    names = c.site_names;
    for (size_t i = 0; i < groups.size(); ++i) speed.push_back(SpeedFactor(spec, i));
  }
  ArmOutcome out;
  SeedTree seeds(c.seed);
  PlanCache plans(spec, arm);
  for (size_t g = 0; g < groups.size(); ++g) {
    Result<SitePlan> plan = plans.For(groups[g].size());
    if (!plan.ok()) return plan.status();
    Result<std::unique_ptr<CountingTrainer>> made =
        c.MakeTrainer(groups[g], plan->train, seeds.Named("trainer", {arm_index, g}));
    if (!made.ok()) return made.status();
    CountingTrainer& trainer = **made;
    const int64_t every = std::max<int64_t>(1, plan->steps / 20);
    auto record = [&](int64_t step) {
      Row r;
      r.arm = arm.name;
      r.time_s = static_cast<double>(step) * spec.step_time_s * speed[g];
      r.round = step;
      r.node = names[g];
      r.eval = c.Eval(trainer.Parameters());
      r.epsilon = AccountedEpsilon(spec, *plan, step);
      c.rows->push_back(r);
      return r;
    };
    record(0);
    for (int64_t s = 1; s <= plan->steps; ++s) {
      Status st = trainer.Step();
      if (!st.ok()) return st;
      if (s % every == 0 || s == plan->steps) {
        Row r = record(s);
        if (s == plan->steps) {
          NodeFinal f;
          f.node = names[g];
          f.eval = r.eval;
          f.epsilon = r.epsilon;
          f.steps = s;
          if (arm.kind == ArmKind::kPooled) {
            for (size_t k = 0; k < c.site_test_rows.size(); ++k) {
              if (c.site_test_rows[k].empty()) continue;
              f.per_site.emplace_back(c.site_names[k],
                                      c.Eval(trainer.Parameters(), &c.site_test_rows[k]));
            }
          } else {
            SiteEval(c, g, trainer.Parameters(), f);
          }
          out.nodes.push_back(f);
          out.virtual_time_s = std::max(out.virtual_time_s, r.time_s);
        }
      }
    }
    Progress(c, arm.name + ": " + names[g] + " done, " + std::to_string(plan->steps) + " steps");
  }
  return out;
}

// One incarnation of a site: its Node, trainer and ledger handle, all
// destroyed at a crash (the Node first; the ledger is closed last, so the
// restart can reopen it). What survives is on disk: ledger and checkpoint.
struct NodeBox {
  std::unique_ptr<privacy::Ledger> ledger;
  std::unique_ptr<CountingTrainer> trainer;
  std::unique_ptr<node::Node> node;
  Timer checkpoint_timer;
  int64_t restored_steps = 0;  // local steps of the checkpoint this incarnation resumed from
  ~NodeBox() {
    checkpoint_timer.Cancel();
    if (node) node->Stop();
    node.reset();
  }
};

// From now on, every `interval`, runs `write` at the box's Node's next moment
// between steps. `env` outlives the box (World destroys a node before its
// env), and the Node drops a pending `write` when it is destroyed.
void ScheduleCheckpoints(NodeBox* box, Env& env, Duration interval,
                         const std::function<void()>& write) {
  box->checkpoint_timer = env.RunAfter(interval, [box, &env, interval, write] {
    box->node->WhenIdle(write);
    ScheduleCheckpoints(box, env, interval, write);
  });
}

Result<ArmOutcome> RunGossip(const Context& c, size_t arm_index, const ArmSpec& arm) {
  const ExperimentSpec& spec = *c.spec;
  const size_t n = c.site_rows.size();
  SeedTree seeds(c.seed);
  for (size_t k = 0; k < spec.crashes.size(); ++k) {
    if (spec.crashes[k].site >= n) {
      return Status::InvalidArgument("experiment key 'faults.crash[" + std::to_string(k) +
                                     "].site': no site " + std::to_string(spec.crashes[k].site));
    }
  }
  for (size_t k = 0; k < spec.partitions.size(); ++k) {
    for (uint32_t s : spec.partitions[k].sites) {
      if (s >= n) {
        return Status::InvalidArgument("experiment key 'faults.partition[" + std::to_string(k) +
                                       "].sites': no site " + std::to_string(s));
      }
    }
  }
  for (size_t k = 0; k < spec.stragglers.size(); ++k) {
    if (spec.stragglers[k].site >= n) {
      return Status::InvalidArgument("experiment key 'faults.straggler[" + std::to_string(k) +
                                     "].site': no site " + std::to_string(spec.stragglers[k].site));
    }
  }

  // Identities, per-site allowlists (self + topology neighbours), plans.
  std::vector<crypto::SiteIdentity> ids;
  for (size_t i = 0; i < n; ++i) {
    std::array<uint8_t, 32> seed_bytes{};
    Xoshiro256 r(seeds.Named("identity", {i}));
    for (size_t b = 0; b < 32; b += 8) {
      const uint64_t v = r.Next();
      for (size_t j = 0; j < 8; ++j) seed_bytes[b + j] = static_cast<uint8_t>(v >> (8 * j));
    }
    ids.push_back(crypto::SiteIdentity::FromSeed(crypto::Ed25519Seed(crypto::ByteView(seed_bytes))));
  }
  auto host = [](size_t i) { return "host" + std::to_string(i); };
  auto line = [&](size_t i) {
    return crypto::FormatPeerLine("s" + std::to_string(i), ids[i].public_key(),
                                  crypto::HostPort{host(i), kPort, false}) + "\n";
  };
  std::vector<crypto::PeerList> peers;
  for (size_t i = 0; i < n; ++i) {
    std::string text = line(i);
    for (uint32_t j : c.graph.neighbors(static_cast<uint32_t>(i))) text += line(j);
    Result<crypto::PeerList> p = crypto::ParsePeers(text, "peers-" + std::to_string(i));
    if (!p.ok()) return p.status();
    peers.push_back(std::move(*p));
  }
  std::vector<SitePlan> plans;
  PlanCache plan_cache(spec, arm);
  for (size_t i = 0; i < n; ++i) {
    Result<SitePlan> p = plan_cache.For(c.site_rows[i].size());
    if (!p.ok()) return p.status();
    plans.push_back(*p);
  }
  // The arm's own bookkeeping, outside the trainers (which die at a crash):
  // steps run by all of a site's incarnations, lost ones included; its
  // initial parameters and model fingerprint (from the first incarnation).
  std::vector<int64_t> steps_run(n, 0);
  std::vector<std::vector<float>> initial_params(n);
  std::vector<learn::ModelFingerprint> fingerprints(n);
  const std::string ledger_root = (fs::path(c.out_dir) / "ledgers" / arm.name).string();
  std::error_code ec;
  fs::remove_all(ledger_root, ec);
  std::vector<std::string> ledger_dirs;
  for (size_t i = 0; i < n; ++i) {
    ledger_dirs.push_back((fs::path(ledger_root) / ("site" + std::to_string(i))).string());
    fs::create_directories(ledger_dirs.back(), ec);
    if (ec) return Status::IoError("cannot create " + ledger_dirs.back() + ": " + ec.message());
  }
  const std::string state_root = (fs::path(c.out_dir) / "state" / arm.name).string();
  fs::remove_all(state_root, ec);
  std::vector<std::string> checkpoint_paths;
  for (size_t i = 0; i < n; ++i) {
    const fs::path dir = fs::path(state_root) / ("site" + std::to_string(i));
    fs::create_directories(dir, ec);
    if (ec) return Status::IoError("cannot create " + dir.string() + ": " + ec.message());
    checkpoint_paths.push_back((dir / "checkpoint.ckpt").string());
  }

  // The first error of a site's start or checkpoint; it ends the run.
  Status factory_error;
  World world(seeds.Named("world", {arm_index}));
  LinkModel link;
  if (spec.latency == "constant") {
    link.latency = LatencyModel::Constant(Seconds(spec.latency_ms / 1e3));
  } else if (spec.latency == "uniform") {
    link.latency = LatencyModel::Uniform(Seconds(spec.latency_ms / 1e3), Seconds(spec.latency_hi_ms / 1e3));
  } else {
    link.latency = LatencyModel::LogNormal(Seconds(spec.latency_ms / 1e3), spec.latency_sigma);
  }
  link.bandwidth_bytes_per_second = spec.bandwidth_mbps * 1e6 / 8;
  link.loss = spec.loss;
  world.SetDefaultLink(link);
  world.SetCrypto(spec.crypto);  // [crypto], else the measured defaults

  Result<gossip::PolicyKind> policy = gossip::ParsePolicyKind(spec.policy);
  if (!policy.ok()) return Status::InvalidArgument("experiment key 'gossip.policy': " + policy.status().ToString());

  for (size_t i = 0; i < n; ++i) {
    world.AddNode(host(i), ids[i].public_key(), [&, i](SimEnv& env) -> std::shared_ptr<void> {
      auto box = std::make_shared<NodeBox>();
      const uint32_t incarnation = env.incarnation();
      auto fail = [&](const Status& s) {
        if (factory_error.ok()) factory_error = s.WithContext("site " + std::to_string(i));
        return box;
      };
      // A fresh trainer each start; a restart's seed is new, so a seeded
      // trainer does not replay the noise of the steps it lost.
      const uint64_t trainer_seed = incarnation == 0
                                        ? seeds.Named("trainer", {arm_index, i})
                                        : seeds.Named("trainer", {arm_index, i, incarnation});
      Result<std::unique_ptr<CountingTrainer>> made =
          c.MakeTrainer(c.site_rows[i], plans[i].train, trainer_seed, &steps_run[i]);
      if (!made.ok()) return fail(made.status());
      box->trainer = std::move(*made);
      Result<learn::Checkpoint> fresh = c.MakeCheckpoint(*box->trainer);
      if (!fresh.ok()) return fail(fresh.status());
      if (incarnation == 0) {
        initial_params[i] = box->trainer->Parameters();
        fingerprints[i] = fresh->fingerprint;
      }
      // Resume from the last checkpoint, as the daemon does; before the
      // first one the site starts over from the initial parameters.
      std::optional<learn::Checkpoint> resumed;
      if (fs::exists(checkpoint_paths[i])) {
        Result<learn::Checkpoint> ck =
            learn::ReadCheckpoint(checkpoint_paths[i], fresh->fingerprint);
        if (!ck.ok()) return fail(ck.status());
        Status restored = c.RestoreCheckpoint(*box->trainer, *ck);
        if (!restored.ok()) return fail(restored);
        box->restored_steps = ck->steps;
        resumed = std::move(*ck);
      }
      privacy::Budget b;
      b.epsilon = arm.is_private ? arm.epsilon : 1e9;  // non-private: a budget that never binds
      b.delta = spec.delta;
      b.accountant = spec.accountant;
      b.label = "site" + std::to_string(i);
      // First start creates the ledger; a restart reopens it, as a real node does.
      Result<std::unique_ptr<privacy::Ledger>> ledger =
          env.incarnation() == 0 ? privacy::Ledger::Create(ledger_dirs[i], b)
                                 : privacy::Ledger::Open(ledger_dirs[i]);
      if (!ledger.ok()) return fail(ledger.status());
      box->ledger = std::move(*ledger);
      node::NodeOptions o;
      o.site_name = "s" + std::to_string(i);
      o.consortium_id = "sim";
      o.listen = NetAddress{host(i), kPort};
      o.announce = {NetAddress{host(i), kPort}};
      o.record_sequence = env.incarnation() + 1;
      o.policy = *policy;
      o.gossip_interval = Seconds(spec.gossip_interval_s);
      // Steps the ledger has charged are never granted again, run or lost.
      const int64_t ledger_steps = box->ledger->total_steps();
      o.max_steps = std::max<int64_t>(0, plans[i].steps - ledger_steps);
      box->node = std::make_unique<node::Node>(env, ids[i], peers[i], box->ledger.get(),
                                               *box->trainer, o);
      Status s = box->node->Start();
      if (!s.ok()) return fail(s);
      NodeBox* raw = box.get();
      const std::string& path = checkpoint_paths[i];
      auto write = [&c, &factory_error, raw, &path, i] {
        // Between steps: the estimate holds every step run, and the
        // trainer's optimiser state matches it.
        Result<learn::Checkpoint> ck = c.MakeCheckpoint(*raw->trainer);
        Status w = ck.status();
        if (ck.ok()) {
          const std::vector<double> estimate = raw->node->Estimate();
          ck->parameters.assign(estimate.begin(), estimate.end());
          for (float v : ck->parameters) {
            if (!std::isfinite(v)) return;  // skipped, as the daemon does: the last good one stays
          }
          ck->steps = raw->restored_steps + raw->node->metrics().steps;
          w = learn::WriteCheckpoint(path, *ck);
        }
        if (!w.ok() && factory_error.ok()) {
          factory_error = w.WithContext("site " + std::to_string(i));
        }
      };
      ScheduleCheckpoints(raw, env, Seconds(spec.checkpoint_interval_s), write);
      if (incarnation > 0 && c.options->on_restart) {
        RestartReport r;
        r.arm = arm.name;
        r.site = static_cast<uint32_t>(i);
        r.incarnation = incarnation;
        r.time_s = ToSeconds(env.Now());
        r.from_checkpoint = resumed.has_value();
        r.checkpoint_steps = box->restored_steps;
        r.steps_run = steps_run[i];
        r.ledger_steps = ledger_steps;
        r.max_steps = o.max_steps;
        if (resumed) r.checkpoint_parameters = resumed->parameters;
        r.estimate = box->node->Estimate();
        c.options->on_restart(r);
      }
      return box;
    });
    const Duration step = Seconds(spec.step_time_s);
    world.SetComputeModel(static_cast<NodeIndex>(i), [step] { return step; });
    world.SetSpeedFactor(static_cast<NodeIndex>(i), SpeedFactor(spec, i));
  }
  double last_fault_s = 0;
  for (const auto& p : spec.partitions) {
    std::vector<NodeIndex> side(p.sites.begin(), p.sites.end());
    world.AddPartition(side, TimePoint(Seconds(p.start_s)), TimePoint(Seconds(p.heal_s)));
    last_fault_s = std::max(last_fault_s, p.heal_s);
  }
  for (const auto& cr : spec.crashes) {
    world.CrashAt(cr.site, TimePoint(Seconds(cr.at_s)));
    last_fault_s = std::max(last_fault_s, cr.at_s);
    if (cr.restart_s >= 0) {
      world.RestartAt(cr.site, TimePoint(Seconds(cr.restart_s)));
      last_fault_s = std::max(last_fault_s, cr.restart_s);
    }
  }
  world.Start();
  if (!factory_error.ok()) return factory_error;

  auto box_of = [&](size_t i) -> NodeBox* {
    return world.alive(static_cast<NodeIndex>(i)) ? world.node<NodeBox>(static_cast<NodeIndex>(i)).get()
                                                  : nullptr;
  };
  auto epsilon_of = [&](NodeBox* b) {
    if (!arm.is_private || !b || !b->ledger) return kNan;
    Result<double> e = b->ledger->EpsilonSpent();
    return e.ok() ? *e : kNan;
  };
  auto sample = [&]() {
    std::vector<std::vector<double>> est(n);
    std::vector<double> mean;
    size_t live = 0;
    for (size_t i = 0; i < n; ++i) {
      NodeBox* b = box_of(i);
      if (!b || !b->node) continue;
      est[i] = b->node->Estimate();
      if (mean.empty()) mean.assign(est[i].size(), 0.0);
      for (size_t k = 0; k < mean.size(); ++k) mean[k] += est[i][k];
      ++live;
    }
    for (double& v : mean) v /= static_cast<double>(std::max<size_t>(live, 1));
    const double t = ToSeconds(world.Now());
    double acc = 0;
    for (size_t i = 0; i < n; ++i) {
      if (est[i].empty()) continue;
      NodeBox* b = box_of(i);
      Row r;
      r.arm = arm.name;
      r.time_s = t;
      r.round = static_cast<int64_t>(b->node->metrics().rounds);
      r.node = c.site_names[i];
      std::vector<float> p(est[i].begin(), est[i].end());
      r.eval = c.Eval(p);
      double d2 = 0;
      for (size_t k = 0; k < mean.size(); ++k) d2 += (est[i][k] - mean[k]) * (est[i][k] - mean[k]);
      r.consensus = std::sqrt(d2);
      r.bytes_sent = world.counters(static_cast<NodeIndex>(i)).bytes_sent;
      r.epsilon = epsilon_of(b);
      acc += r.eval.accuracy;
      c.rows->push_back(r);
    }
    std::ostringstream s;
    s << arm.name << ": t=" << Fmt(t, "%.1f") << "/" << Fmt(spec.horizon_s, "%.0f") << " s, "
      << live << "/" << n << " alive, mean accuracy " << Fmt(acc / static_cast<double>(std::max<size_t>(live, 1)), "%.3f")
      << ", events " << world.scheduler().events_run();
    Progress(c, s.str());
  };
  std::function<void()> tick;
  tick = [&] {
    sample();
    world.scheduler().ScheduleAfter(Seconds(spec.eval_interval_s), kWorldNode, tick);
  };
  world.scheduler().Schedule(TimePoint{}, kWorldNode, tick);

  auto all_done = [&] {
    if (!factory_error.ok()) return true;
    if (ToSeconds(world.Now()) < last_fault_s) return false;
    for (size_t i = 0; i < n; ++i) {
      NodeBox* b = box_of(i);
      if (!b || !b->node || !b->node->done()) return false;
    }
    return true;
  };
  world.RunUntil(all_done, TimePoint(Seconds(spec.horizon_s)));
  if (!factory_error.ok()) return factory_error;
  sample();

  ArmOutcome out;
  out.events = world.scheduler().events_run();
  out.virtual_time_s = ToSeconds(world.Now());
  for (size_t i = 0; i < n; ++i) {
    NodeFinal f;
    f.node = c.site_names[i];
    f.steps = steps_run[i];
    f.bytes_sent = world.counters(static_cast<NodeIndex>(i)).bytes_sent;
    NodeBox* b = box_of(i);
    f.alive = b && b->node;
    // A dead site's model is what its disk holds: the last checkpoint, else
    // the initial parameters.
    std::vector<float> p = initial_params[i];
    if (f.alive) {
      std::vector<double> e = b->node->Estimate();
      p.assign(e.begin(), e.end());
    } else if (fs::exists(checkpoint_paths[i])) {
      Result<learn::Checkpoint> ck = learn::ReadCheckpoint(checkpoint_paths[i], fingerprints[i]);
      if (!ck.ok()) return ck.status();
      p = std::move(ck->parameters);
    }
    f.eval = c.Eval(p);
    SiteEval(c, i, p, f);
    f.epsilon = epsilon_of(b);
    if (arm.is_private) {
      Result<privacy::LedgerSnapshot> snap = privacy::Ledger::Inspect(ledger_dirs[i]);
      if (!snap.ok()) return snap.status();
      Result<double> e = privacy::ComputeEpsilon(spec.accountant, snap->history, spec.delta);
      if (!e.ok()) return e.status();
      f.ledger_epsilon = *e;
      if (!f.alive) f.epsilon = *e;
    }
    out.nodes.push_back(f);
  }
  return out;
}

// Means of each metric over the finite values given (a site whose test rows
// hold one class has no AUROC; it must not turn the mean into NaN).
class MeanEval {
 public:
  void Add(const EvalResult& e) {
    ++count_;
    for (int k = 0; k < 3; ++k) {
      const double v = k == 0 ? e.accuracy : k == 1 ? e.auroc : e.loss;
      if (std::isfinite(v)) {
        sum_[k] += v;
        ++n_[k];
      }
    }
  }
  int count() const { return count_; }
  EvalResult Get() const {
    auto mean = [&](int k) { return n_[k] ? sum_[k] / n_[k] : kNan; };
    return EvalResult{mean(0), mean(1), mean(2)};
  }

 private:
  double sum_[3] = {0, 0, 0};
  int n_[3] = {0, 0, 0};
  int count_ = 0;
};

json Num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json EvalJson(const EvalResult& e) {
  return json{{"accuracy", Num(e.accuracy)}, {"auroc", Num(e.auroc)}, {"loss", Num(e.loss)}};
}

void WritePlots(const std::string& dir, const std::vector<Row>& rows, const std::vector<ArmSpec>& arms) {
  struct Agg {
    double acc = 0, cons = 0, bytes = 0, eps = kNan, rounds = 0;
    int count = 0, cons_count = 0;
  };
  std::vector<std::map<double, Agg>> by_arm(arms.size());
  std::map<std::string, size_t> index;
  for (size_t a = 0; a < arms.size(); ++a) index[arms[a].name] = a;
  for (const Row& r : rows) {
    Agg& g = by_arm[index[r.arm]][r.time_s];
    if (std::isfinite(r.eval.accuracy)) {
      g.acc += r.eval.accuracy;
      ++g.count;
    }
    if (std::isfinite(r.consensus)) {
      g.cons += r.consensus;
      ++g.cons_count;
    }
    g.bytes += static_cast<double>(r.bytes_sent);
    g.rounds += static_cast<double>(r.round);
    if (std::isfinite(r.epsilon)) g.eps = std::isfinite(g.eps) ? std::max(g.eps, r.epsilon) : r.epsilon;
  }
  LinePlot acc_t{"Mean test accuracy vs virtual time", "virtual time (s)", "accuracy", {}};
  LinePlot acc_r{"Mean test accuracy vs rounds (gossip arms)", "mean gossip round", "accuracy", {}};
  LinePlot acc_b{"Mean test accuracy vs bytes sent (gossip arms)", "total bytes sent (MB)", "accuracy", {}};
  LinePlot cons{"Consensus distance (mean over nodes)", "virtual time (s)", "||x_i - mean||", {}};
  LinePlot eps{"Privacy spent (max over nodes)", "virtual time (s)", "epsilon", {}};
  for (size_t a = 0; a < arms.size(); ++a) {
    PlotSeries st{arms[a].name, {}}, sb{arms[a].name, {}}, sc{arms[a].name, {}}, se{arms[a].name, {}},
        sr{arms[a].name, {}};
    for (const auto& [t, g] : by_arm[a]) {
      if (g.count) st.points.push_back({t, g.acc / g.count});
      if (arms[a].kind == ArmKind::kGossip && g.count) {
        sb.points.push_back({g.bytes / 1e6, g.acc / g.count});
        sr.points.push_back({g.rounds / g.count, g.acc / g.count});
      }
      if (g.cons_count) sc.points.push_back({t, g.cons / g.cons_count});
      if (std::isfinite(g.eps)) se.points.push_back({t, g.eps});
    }
    acc_t.series.push_back(st);
    if (!sb.points.empty()) acc_b.series.push_back(sb);
    if (!sr.points.empty()) acc_r.series.push_back(sr);
    if (!sc.points.empty()) cons.series.push_back(sc);
    if (!se.points.empty()) eps.series.push_back(se);
  }
  const std::pair<const char*, const LinePlot*> files[] = {{"accuracy_vs_time.svg", &acc_t},
                                                           {"accuracy_vs_rounds.svg", &acc_r},
                                                           {"accuracy_vs_bytes.svg", &acc_b},
                                                           {"consensus_distance.svg", &cons},
                                                           {"epsilon_spent.svg", &eps}};
  for (const auto& [name, plot] : files) {
    std::ofstream(fs::path(dir) / name, std::ios::binary) << RenderSvg(*plot);
  }
}

}  // namespace

Result<RunResult> RunExperiment(const ExperimentSpec& spec_in, const RunOptions& options) {
  ExperimentSpec spec = spec_in;
  if (options.seed) spec.seed = *options.seed;
  if (spec.model != "logistic" &&
      (!options.backend.make_trainer || !options.backend.evaluate ||
       !options.backend.make_checkpoint || !options.backend.restore_checkpoint)) {
    return Status::InvalidArgument("experiment key 'model.kind': \"" + spec.model +
                                   "\" needs the LibTorch learner, which this program was built without");
  }
  Result<learn::Dataset> data = LoadAll(spec);
  if (!data.ok()) return data.status();
  Context c;
  c.spec = &spec;
  c.seed = spec.seed;
  c.data = &*data;
  c.classes = static_cast<int>(data->class_names.size());
  Result<std::vector<std::vector<int64_t>>> split = SplitSites(spec, *data, &c.site_names);
  if (!split.ok()) return split.status();
  c.site_rows = std::move(*split);
  c.site_test_rows = SiteTestRows(spec, *data, c.site_names);
  const size_t n = c.site_rows.size();
  Result<Graph> graph = BuildGraph(spec, n);
  if (!graph.ok()) return graph.status();
  c.graph = std::move(*graph);
  const MixingMatrix w(c.graph);
  const SpectralGap gap = n <= 200 ? SpectralGapDense(w) : SpectralGapLanczos(w, spec.seed);
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (ec) return Status::IoError("cannot create " + options.out_dir + ": " + ec.message());
  c.out_dir = options.out_dir;
  std::vector<Row> rows;
  c.rows = &rows;
  std::vector<std::unique_ptr<ExperimentSpec>> arm_specs;
  c.options = &options;

  bool any_private = false;
  uint64_t events = 0;
  double max_ratio = 0;
  json arms = json::array();
  for (size_t a = 0; a < spec.arms.size(); ++a) {
    const ArmSpec& arm = spec.arms[a];
    any_private = any_private || arm.is_private;
    // An arm that overrides the topology or the number of sites gets its own
    // split, graph and gap.
    Context arm_context = c;
    double arm_gap = gap.gap;
    if (!arm.topology.empty() || arm.sites != 0) {
      auto owned = std::make_unique<ExperimentSpec>(spec);
      ExperimentSpec* arm_spec = owned.get();
      if (!arm.topology.empty()) arm_spec->topology = arm.topology;
      if (arm.sites != 0) arm_spec->sites = arm.sites;
      Result<std::vector<std::vector<int64_t>>> s2 = SplitSites(*arm_spec, *data, &arm_context.site_names);
      if (!s2.ok()) return s2.status().WithContext("arm '" + arm.name + "'");
      arm_context.site_rows = std::move(*s2);
      arm_context.site_test_rows = SiteTestRows(*arm_spec, *data, arm_context.site_names);
      Result<Graph> g2 = BuildGraph(*arm_spec, arm_context.site_rows.size());
      if (!g2.ok()) return g2.status().WithContext("arm '" + arm.name + "'");
      arm_context.graph = std::move(*g2);
      const MixingMatrix w2(arm_context.graph);
      arm_gap = arm_context.graph.num_nodes() <= 200 ? SpectralGapDense(w2).gap
                                                     : SpectralGapLanczos(w2, spec.seed).gap;
      arm_specs.push_back(std::move(owned));
      arm_context.spec = arm_specs.back().get();
    }
    Result<ArmOutcome> r = arm.kind == ArmKind::kGossip ? RunGossip(arm_context, a, arm) : RunDirect(arm_context, a, arm);
    if (!r.ok()) return r.status();
    events += r->events;
    json nodes = json::array();
    EvalResult mean;
    MeanEval site_mean;
    double max_eps = kNan;
    int counted = 0;
    for (const NodeFinal& f : r->nodes) {
      json j{{"node", f.node}};
      j.update(EvalJson(f.eval));
      j["epsilon_spent"] = Num(f.epsilon);
      if (arm.kind == ArmKind::kGossip) {
        j["ledger_epsilon"] = Num(f.ledger_epsilon);
        j["bytes_sent"] = f.bytes_sent;
        j["alive"] = f.alive;
      }
      j["steps"] = f.steps;
      if (f.site_eval) {
        json st{{"rows", f.site_test_rows}};
        st.update(EvalJson(*f.site_eval));
        j["site_test"] = st;
        site_mean.Add(*f.site_eval);
      }
      if (!f.per_site.empty()) {
        json per = json::array();
        for (const auto& [site, e] : f.per_site) {
          json one{{"site", site}};
          one.update(EvalJson(e));
          per.push_back(one);
          site_mean.Add(e);
        }
        j["per_site_test"] = per;
      }
      nodes.push_back(j);
      mean.accuracy += f.eval.accuracy;
      mean.auroc += f.eval.auroc;
      mean.loss += f.eval.loss;
      ++counted;
      for (double e : {f.epsilon, f.ledger_epsilon}) {
        if (std::isfinite(e)) {
          max_eps = std::isfinite(max_eps) ? std::max(max_eps, e) : e;
          max_ratio = std::max(max_ratio, e / arm.epsilon);
        }
      }
    }
    mean.accuracy /= counted;
    mean.auroc /= counted;
    mean.loss /= counted;
    json aj{{"name", arm.name},
            {"kind", arm.kind == ArmKind::kGossip ? "gossip" : arm.kind == ArmKind::kLocal ? "local" : "pooled"},
            {"private", arm.is_private},
            {"target_epsilon", arm.is_private ? json(arm.epsilon) : json(nullptr)},
            {"delta", arm.is_private ? json(spec.delta) : json(nullptr)},
            {"sites", arm_context.site_rows.size()},
            {"topology", arm_context.spec->topology},
            {"spectral_gap", arm_gap},
            {"max_epsilon_spent", Num(max_eps)},
            {"budget_held", !arm.is_private || !(max_eps > arm.epsilon)},
            {"virtual_time_s", r->virtual_time_s},
            {"events_processed", r->events},
            {"mean", EvalJson(mean)}};
    // Mean over sites of each site's own test metrics (site-column splits):
    // the per-hospital comparison, which the pooled test set weighs by the
    // sites' test-row counts instead.
    if (site_mean.count() > 0) aj["mean_site_test"] = EvalJson(site_mean.Get());
    aj["nodes"] = nodes;
    arms.push_back(aj);
  }

  // metrics.csv
  RunResult result;
  result.metrics_path = (fs::path(options.out_dir) / "metrics.csv").string();
  {
    std::ofstream f(result.metrics_path, std::ios::binary);
    f << "arm,virtual_time_s,round,node,accuracy,auroc,loss,consensus_distance,bytes_sent,epsilon_spent\n";
    for (const Row& r : rows) {
      f << r.arm << ',' << Fmt(r.time_s, "%.3f") << ',' << r.round << ',' << r.node << ','
        << Fmt(r.eval.accuracy) << ',' << Fmt(r.eval.auroc) << ',' << Fmt(r.eval.loss) << ','
        << Fmt(r.consensus) << ',' << r.bytes_sent << ',' << Fmt(r.epsilon) << '\n';
    }
    if (!f) return Status::IoError("cannot write " + result.metrics_path);
  }
  json sites = json::array();
  for (size_t i = 0; i < n; ++i) {
    sites.push_back({{"name", c.site_names[i]}, {"train_rows", c.site_rows[i].size()}});
  }
  json summary{{"experiment", spec.name},
               {"seed", spec.seed},
               {"noise", any_private ? "seeded (NOT private)" : "none (no private arm)"},
               {"model", spec.model},
               {"accountant", privacy::AccountantName(spec.accountant)},
               {"test_rows", data->test_rows.size()},
               {"sites", sites},
               {"topology",
                {{"kind", spec.topology},
                 {"nodes", c.graph.num_nodes()},
                 {"edges", c.graph.num_edges()},
                 {"spectral_gap", gap.gap},
                 {"slem", gap.slem}}},
               {"events_processed", events},
               {"wall_time_s", options.wall_seconds ? json(options.wall_seconds()) : json(nullptr)},
               {"arms", arms}};
  result.summary_path = (fs::path(options.out_dir) / "summary.json").string();
  {
    std::ofstream f(result.summary_path, std::ios::binary);
    f << summary.dump(2) << "\n";
    if (!f) return Status::IoError("cannot write " + result.summary_path);
  }
  WritePlots(options.out_dir, rows, spec.arms);
  result.events = events;
  result.spectral_gap = gap.gap;
  result.max_budget_ratio = max_ratio;
  return result;
}

}  // namespace dpnode::sim
