// Tests of `dpnode sim` experiments (sim/experiment/): determinism, errors
// naming the key, privacy budgets held (summary and ledgers, across
// crash/restart), restarts resuming from checkpoints (never from state a
// crash destroyed), and that dead or partitioned nodes stall nobody.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>

#include "node/learn/checkpoint.h"
#include "node/learn/data/schema.h"
#include "node/privacy/accountant.h"
#include "node/privacy/ledger.h"
#include "sim/experiment/experiment.h"
#include "sim/experiment/logistic_trainer.h"
#include "sim/experiment/svg_plot.h"
#include "sim/learn/learner_backend.h"
#include "sim/seeds.h"
#include "tests/temp_dir.h"

namespace dpnode::sim {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;


std::string ReadFile(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A small synthetic binary task: y = [a + 0.5 b + noise > 0], 320 rows.
void WriteData(const TempDir& dir) {
  std::ofstream schema(dir / "schema.toml");
  schema << "schema_version = 1\n[label]\ncolumn = \"y\"\nnegative = 0\npositive = 1\n"
            "[split]\ntest_fraction = 0.25\nseed = 7\n"
            "[[column]]\nname = \"a\"\ntype = \"numeric\"\nmin = -4\nmax = 4\n"
            "[[column]]\nname = \"b\"\ntype = \"numeric\"\nmin = -4\nmax = 4\n";
  std::ofstream csv(dir / "data.csv");
  csv << "a,b,y\n";
  Xoshiro256 rng(42);
  for (int i = 0; i < 320; ++i) {
    const double a = rng.Normal(), b = rng.Normal(), e = 0.3 * rng.Normal();
    csv << a << "," << b << "," << (a + 0.5 * b + e > 0 ? 1 : 0) << "\n";
  }
}

// The base experiment; `extra` is appended (faults, arms).
std::string Experiment(const std::string& extra, const std::string& arms) {
  return "name = \"t\"\nseed = 3\n"
         "[data]\nschema = \"schema.toml\"\ncsv = \"data.csv\"\nsplit = \"iid\"\nsites = 4\n"
         "[topology]\nkind = \"ring\"\n"
         "[gossip]\ninterval_s = 0.1\nstep_time_s = 0.05\nhorizon_s = 30\neval_interval_s = 2\n"
         "[link]\nlatency = \"uniform\"\nlatency_ms = 2\nlatency_hi_ms = 20\n"
         "[privacy]\ndelta = 1e-5\nbatch = 10\nepochs = 8\nclip = 1.0\nlearning_rate = 2.0\n" +
         extra + arms;
}

const char* kGossipArms =
    "[[arm]]\nkind = \"gossip\"\nepsilon = 2\n"
    "[[arm]]\nkind = \"gossip\"\nprivate = false\n";

Result<RunResult> Run(const TempDir& dir, const std::string& text, const std::string& out,
                      std::optional<uint64_t> seed = std::nullopt, bool torch = false,
                      std::function<void(const RestartReport&)> on_restart = nullptr) {
  Result<ExperimentSpec> spec = ParseExperiment(text, "test.toml", dir.path());
  if (!spec.ok()) return spec.status();
  RunOptions o;
  o.out_dir = dir / out;
  o.seed = seed;
  o.on_restart = std::move(on_restart);
  if (torch) o.backend = LearnerBackend();
  return RunExperiment(*spec, o);
}

nlohmann::json Summary(const TempDir& dir, const std::string& out) {
  return nlohmann::json::parse(ReadFile(dir / (out + "/summary.json")));
}

TEST_CASE("same experiment and seed give byte-identical outputs, another seed differs") {
  TempDir dir;
  WriteData(dir);
  const std::string text =
      Experiment("", std::string(kGossipArms) + "[[arm]]\nkind = \"local\"\nepsilon = 2\n"
                                                "[[arm]]\nkind = \"pooled\"\nepsilon = 2\n");
  REQUIRE(Run(dir, text, "a").ok());
  REQUIRE(Run(dir, text, "b").ok());
  REQUIRE(Run(dir, text, "c", 4).ok());
  const std::string ma = ReadFile(dir / "a/metrics.csv");
  CHECK(ma.size() > 1000);
  CHECK(ma == ReadFile(dir / "b/metrics.csv"));
  CHECK(ReadFile(dir / "a/summary.json") == ReadFile(dir / "b/summary.json"));
  CHECK(ReadFile(dir / "a/accuracy_vs_time.svg") == ReadFile(dir / "b/accuracy_vs_time.svg"));
  CHECK(ma != ReadFile(dir / "c/metrics.csv"));
  CHECK(ReadFile(dir / "a/summary.json") != ReadFile(dir / "c/summary.json"));
  const nlohmann::json s = Summary(dir, "a");
  CHECK(s["noise"] == "seeded (NOT private)");
  CHECK(s["events_processed"].get<uint64_t>() > 1000);
  CHECK(s["arms"].size() == 4);
  // Learning happened: the task is easy, so the non-private gossip arm must
  // beat a coin clearly on the held-out rows.
  CHECK(s["arms"][1]["mean"]["accuracy"].get<double>() > 0.8);
  for (const char* plot : {"accuracy_vs_time.svg", "accuracy_vs_bytes.svg",
                           "consensus_distance.svg", "epsilon_spent.svg"}) {
    const std::string svg = ReadFile(dir / (std::string("a/") + plot));
    CHECK(svg.rfind("<svg", 0) == 0);
    CHECK(svg.find("<polyline") != std::string::npos);
  }
}

TEST_CASE("invalid experiment files name the key and the reason") {
  TempDir dir;
  WriteData(dir);
  struct Case {
    std::string text;
    std::string key;
    std::string reason;
  };
  const std::string arms = kGossipArms;
  std::string typo = Experiment("", arms);
  typo.replace(typo.find("split ="), 7, "splitt =");
  std::string kind = Experiment("", arms);
  kind.replace(kind.find("\"ring\""), 6, "\"moebius\"");
  std::string loss = Experiment("", arms);
  loss.replace(loss.find("latency_ms = 2"), 14, "loss = 1.5");
  const Case cases[] = {
      {typo, "data.splitt", "unknown key"},
      {kind, "topology.kind", "moebius"},
      {loss, "link.loss", "must lie in"},
      {Experiment("", "[[arm]]\nkind = \"gossip\"\n"), "arm[0].epsilon", "required"},
      {Experiment("", "[[arm]]\nkind = \"swarm\"\nprivate = false\n"), "arm[0].kind", "swarm"},
      {Experiment("", ""), "'arm'", "required"},
      {Experiment("[[faults.partition]]\nsites = [0]\nstart_s = 5\nheal_s = 2\n", arms),
       "faults.partition[0].heal_s", "after start_s"},
      {Experiment("[privacy]\n", arms), "", "TOML syntax error"},
      {Experiment("[model]\nkind = \"mlp\"\n", arms), "model.hidden", "required"},
      {Experiment("[faults]\ncheckpoint_interval_s = 0\n", arms), "faults.checkpoint_interval_s",
       "must lie in"},
  };
  for (const Case& c : cases) {
    Result<ExperimentSpec> spec = ParseExperiment(c.text, "test.toml", dir.path());
    CAPTURE(c.key);
    REQUIRE_FALSE(spec.ok());
    CHECK(spec.status().message().find(c.key) != std::string::npos);
    CHECK(spec.status().message().find(c.reason) != std::string::npos);
  }
  // Checked once the sites are known: a crash of a site that does not exist.
  Result<RunResult> r = Run(dir, Experiment("[[faults.crash]]\nsite = 9\nat_s = 1\n", arms), "x");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("faults.crash[0].site") != std::string::npos);
}

TEST_CASE("no node exceeds its budget, across crash and restart, in summary and ledgers") {
  TempDir dir;
  WriteData(dir);
  const std::string text = Experiment(
      "[[faults.crash]]\nsite = 1\nat_s = 1.2\nrestart_s = 4\n"
      "[[faults.crash]]\nsite = 2\nat_s = 2.5\nrestart_s = 3\n",
      "[[arm]]\nname = \"g1\"\nkind = \"gossip\"\nepsilon = 1\n"
      "[[arm]]\nname = \"g4\"\nkind = \"gossip\"\nepsilon = 4\n"
      "[[arm]]\nname = \"l1\"\nkind = \"local\"\nepsilon = 1\n"
      "[[arm]]\nname = \"p1\"\nkind = \"pooled\"\nepsilon = 1\n");
  Result<RunResult> r = Run(dir, text, "out");
  REQUIRE(r.ok());
  CHECK(r->max_budget_ratio <= 1.0);
  CHECK(r->max_budget_ratio > 0.5);  // the budget was actually used
  const nlohmann::json s = Summary(dir, "out");
  for (const auto& arm : s["arms"]) {
    const double target = arm["target_epsilon"].get<double>();
    CHECK(arm["budget_held"].get<bool>());
    for (const auto& n : arm["nodes"]) {
      CAPTURE(arm["name"].get<std::string>());
      CHECK(n["steps"].get<int64_t>() > 0);
      CHECK(n["epsilon_spent"].get<double>() <= target);
      if (arm["kind"] == "gossip") CHECK(n["ledger_epsilon"].get<double>() <= target);
    }
  }
  // The ledgers on disk, read independently of the runner.
  for (const char* arm : {"g1", "g4"}) {
    for (int i = 0; i < 4; ++i) {
      Result<privacy::LedgerSnapshot> snap =
          privacy::Ledger::Inspect(dir / ("out/ledgers/" + std::string(arm) + "/site" + std::to_string(i)));
      REQUIRE(snap.ok());
      Result<double> e = privacy::ComputeEpsilon(privacy::AccountantKind::kRdp, snap->history, 1e-5);
      REQUIRE(e.ok());
      CHECK(*e <= snap->budget.epsilon);
      CHECK(snap->total_steps > 0);
    }
  }
}

// The checkpoint file format needs the model's fingerprint to be read back.
learn::ModelFingerprint LogisticFingerprint(const TempDir& dir) {
  Result<learn::Schema> schema = learn::LoadSchemaFile(dir / "schema.toml");
  REQUIRE(schema.ok());
  Result<learn::Dataset> data = learn::LoadDataset(*schema, dir / "data.csv");
  REQUIRE(data.ok());
  return LogisticTrainer(*data, {}, 2, TrainPlan{}, 1).model_fingerprint();
}

TEST_CASE("a restart resumes from the last checkpoint: later work lost, its budget spent") {
  TempDir dir;
  WriteData(dir);
  // 60 training rows a site, batch 10, 8 epochs: 48 planned steps of 0.05 s.
  // Checkpoints every second of each incarnation. Site 1 crashes at 1.8 s,
  // long after its checkpoint at 1.0 s; site 2 crashes at 0.5 s, before its
  // first checkpoint.
  const std::string text = Experiment(
      "[faults]\ncheckpoint_interval_s = 1\n"
      "[[faults.crash]]\nsite = 1\nat_s = 1.8\nrestart_s = 3\n"
      "[[faults.crash]]\nsite = 2\nat_s = 0.5\nrestart_s = 1.5\n",
      "[[arm]]\nname = \"g\"\nkind = \"gossip\"\nepsilon = 2\n");
  constexpr int64_t kPlanned = 48;
  std::vector<RestartReport> restarts;
  Result<RunResult> r = Run(dir, text, "out", std::nullopt, false,
                            [&](const RestartReport& rep) { restarts.push_back(rep); });
  REQUIRE(r.ok());
  REQUIRE(restarts.size() == 2);
  std::sort(restarts.begin(), restarts.end(),
            [](const RestartReport& a, const RestartReport& b) { return a.site < b.site; });
  const nlohmann::json s = Summary(dir, "out");
  const auto& nodes = s["arms"][0]["nodes"];

  {  // (a) site 1 resumes from the checkpoint it took at 1.0 s
    const RestartReport& a = restarts[0];
    REQUIRE(a.site == 1);
    CHECK(a.incarnation == 1);
    CHECK(a.time_s == doctest::Approx(3.0));
    REQUIRE(a.from_checkpoint);
    // About 20 steps by 1.0 s, about 36 by the crash: the ones in between are lost.
    CHECK(a.checkpoint_steps >= 15);
    CHECK(a.checkpoint_steps <= 22);
    CHECK(a.steps_run >= a.checkpoint_steps + 10);
    // Charged before they ran, in blocks: the ledger holds every step run.
    CHECK(a.ledger_steps >= a.steps_run);
    CHECK(a.max_steps == kPlanned - a.ledger_steps);
    // The new Node starts from exactly the checkpoint's parameters.
    REQUIRE(a.estimate.size() == a.checkpoint_parameters.size());
    REQUIRE_FALSE(a.estimate.empty());
    bool all_zero = true;
    for (size_t k = 0; k < a.estimate.size(); ++k) {
      CHECK(a.estimate[k] == static_cast<double>(a.checkpoint_parameters[k]));
      all_zero = all_zero && a.checkpoint_parameters[k] == 0.0f;
    }
    CHECK_FALSE(all_zero);  // trained, not the initial parameters
    // Steps run across both incarnations: the first one's and the
    // remaining grant; fewer than the ledger charged (the lost work).
    const int64_t steps = nodes[1]["steps"].get<int64_t>();
    CHECK(steps == a.steps_run + a.max_steps);
    Result<privacy::LedgerSnapshot> snap = privacy::Ledger::Inspect(dir / "out/ledgers/g/site1");
    REQUIRE(snap.ok());
    CHECK(snap->total_steps == kPlanned);
    CHECK(steps < snap->total_steps);
    // The last checkpoint counts only kept work: the checkpoint resumed
    // from plus what the second incarnation ran.
    Result<learn::Checkpoint> last =
        learn::ReadCheckpoint(dir / "out/state/g/site1/checkpoint.ckpt", LogisticFingerprint(dir));
    REQUIRE(last.ok());
    CHECK(last->steps == a.checkpoint_steps + a.max_steps);
  }
  {  // (c) site 2 crashed before its first checkpoint and starts over
    const RestartReport& c = restarts[1];
    REQUIRE(c.site == 2);
    CHECK_FALSE(c.from_checkpoint);
    CHECK(c.checkpoint_steps == 0);
    CHECK(c.checkpoint_parameters.empty());
    CHECK(c.steps_run > 0);  // all lost
    CHECK(c.ledger_steps >= c.steps_run);
    CHECK(c.max_steps == kPlanned - c.ledger_steps);
    REQUIRE_FALSE(c.estimate.empty());
    for (double v : c.estimate) CHECK(v == 0.0);  // the logistic trainer's initial parameters
  }
  {  // (b) no node exceeds its budget across crash and restart
    CHECK(r->max_budget_ratio <= 1.0);
    CHECK(s["arms"][0]["budget_held"].get<bool>());
    for (int i = 0; i < 4; ++i) {
      CAPTURE(i);
      Result<privacy::LedgerSnapshot> snap =
          privacy::Ledger::Inspect(dir / ("out/ledgers/g/site" + std::to_string(i)));
      REQUIRE(snap.ok());
      Result<double> e =
          privacy::ComputeEpsilon(privacy::AccountantKind::kRdp, snap->history, 1e-5);
      REQUIRE(e.ok());
      CHECK(*e <= 2.0);
      CHECK(nodes[i]["ledger_epsilon"].get<double>() <= 2.0);
      CHECK(snap->total_steps <= kPlanned);
      CHECK(snap->total_steps >= nodes[i]["steps"].get<int64_t>());
      CHECK(fs::exists(dir / ("out/state/g/site" + std::to_string(i) + "/checkpoint.ckpt")));
    }
  }
  {  // checkpoints and restarts are deterministic
    REQUIRE(Run(dir, text, "again").ok());
    CHECK(ReadFile(dir / "out/metrics.csv") == ReadFile(dir / "again/metrics.csv"));
    CHECK(ReadFile(dir / "out/summary.json") == ReadFile(dir / "again/summary.json"));
    CHECK(ReadFile(dir / "out/state/g/site1/checkpoint.ckpt") ==
          ReadFile(dir / "again/state/g/site1/checkpoint.ckpt"));
  }
}

TEST_CASE("a dead or partitioned node does not stall the others") {
  TempDir dir;
  WriteData(dir);
  // Complete graph of 4: site 0 dies for good at once, site 1 is cut off for
  // the whole horizon. Sites 2 and 3 must still train to their planned steps
  // and keep exchanging shares.
  std::string text = Experiment(
      "[[faults.crash]]\nsite = 0\nat_s = 0.01\n"
      "[[faults.partition]]\nsites = [1]\nstart_s = 0\nheal_s = 1000\n",
      "[[arm]]\nname = \"g\"\nkind = \"gossip\"\nprivate = false\n");
  text.replace(text.find("\"ring\""), 6, "\"complete\"");
  REQUIRE(Run(dir, text, "out").ok());
  const nlohmann::json s = Summary(dir, "out");
  const auto& nodes = s["arms"][0]["nodes"];
  CHECK_FALSE(nodes[0]["alive"].get<bool>());
  for (int i = 2; i < 4; ++i) {
    const double rows = s["sites"][i]["train_rows"].get<double>();
    const int64_t planned = static_cast<int64_t>(std::ceil(8 / std::min(1.0, 10 / rows)));
    CHECK(nodes[i]["steps"].get<int64_t>() == planned);
    CHECK(nodes[i]["bytes_sent"].get<uint64_t>() > 0);
  }
  // Rounds of sites 2 and 3 keep growing at the last samples.
  std::istringstream csv(ReadFile(dir / "out/metrics.csv"));
  std::string line;
  std::getline(csv, line);
  int64_t first_round[4] = {-1, -1, -1, -1}, last_round[4] = {0, 0, 0, 0};
  while (std::getline(csv, line)) {
    std::vector<std::string> f;
    std::stringstream ls(line);
    for (std::string x; std::getline(ls, x, ',');) f.push_back(x);
    const int site = f[3].back() - '0';
    const int64_t round = std::stoll(f[2]);
    if (first_round[site] < 0) first_round[site] = round;
    last_round[site] = round;
  }
  CHECK(last_round[2] > first_round[2] + 20);
  CHECK(last_round[3] > first_round[3] + 20);
}

TEST_CASE("the LibTorch MLP backend: learns, reproducible, budgets held, restarts") {
  TempDir dir;
  WriteData(dir);
  std::string text = Experiment(
      "[model]\nkind = \"mlp\"\nhidden = [8]\n"
      "[faults]\ncheckpoint_interval_s = 0.5\n"
      "[[faults.crash]]\nsite = 2\nat_s = 1\nrestart_s = 2\n",
      "[[arm]]\nname = \"g\"\nkind = \"gossip\"\nepsilon = 2\n"
      "[[arm]]\nname = \"n\"\nkind = \"gossip\"\nprivate = false\n"
      "[[arm]]\nname = \"p\"\nkind = \"pooled\"\nepsilon = 2\n");
  // The MLP needs more, smaller steps than the logistic model on this task.
  text.replace(text.find("epochs = 8"), 10, "epochs = 30");
  text.replace(text.find("learning_rate = 2.0"), 19, "learning_rate = 0.5");
  // Without the backend the model is refused, naming the key.
  Result<RunResult> none = Run(dir, text, "none");
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().message().find("model.kind") != std::string::npos);

  std::vector<RestartReport> restarts;
  Result<RunResult> a = Run(dir, text, "a", std::nullopt, true,
                            [&](const RestartReport& rep) { restarts.push_back(rep); });
  REQUIRE(a.ok());
  // One restart per gossip arm, each through a LearnerTrainer checkpoint
  // (the backend's hooks) taken before the crash: the steps since are lost.
  REQUIRE(restarts.size() == 2);
  for (const RestartReport& rep : restarts) {
    CAPTURE(rep.arm);
    REQUIRE(rep.from_checkpoint);
    CHECK(rep.checkpoint_steps > 0);
    CHECK(rep.checkpoint_steps < rep.steps_run);
    CHECK(rep.ledger_steps >= rep.steps_run);
    REQUIRE(rep.estimate.size() == rep.checkpoint_parameters.size());
    for (size_t k = 0; k < rep.estimate.size(); ++k) {
      CHECK(rep.estimate[k] == static_cast<double>(rep.checkpoint_parameters[k]));
    }
  }
  REQUIRE(Run(dir, text, "b", std::nullopt, true).ok());
  CHECK(ReadFile(dir / "a/metrics.csv") == ReadFile(dir / "b/metrics.csv"));
  CHECK(ReadFile(dir / "a/summary.json") == ReadFile(dir / "b/summary.json"));
  CHECK(a->max_budget_ratio <= 1.0);
  const nlohmann::json s = Summary(dir, "a");
  // Clearly above the roughly balanced classes' 0.5 (a learning bound, not a
  // recorded figure).
  CHECK(s["arms"][1]["mean"]["accuracy"].get<double>() > 0.7);
  for (const auto& arm : s["arms"]) CHECK(arm["budget_held"].get<bool>());
  for (const auto& n : s["arms"][0]["nodes"]) {
    CHECK(n["ledger_epsilon"].get<double>() <= 2.0);
    CHECK(n["steps"].get<int64_t>() > 0);
  }
}

TEST_CASE("shipped experiments parse and faults.toml holds every budget") {
  const fs::path dir = fs::path(DPNODE_SOURCE_DIR) / "examples" / "experiments";
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".toml") continue;
    CAPTURE(entry.path().string());
    Result<ExperimentSpec> spec = LoadExperiment(entry.path().string());
    CHECK(spec.ok());
    ++files;
  }
  CHECK(files >= 3);
  // The fault experiment end to end (about 2 s): partition, 4 crash/restart
  // cycles, a straggler; every private node's ledger stays within ε.
  TempDir out;
  Result<ExperimentSpec> spec = LoadExperiment((dir / "faults.toml").string());
  REQUIRE(spec.ok());
  RunOptions o;
  o.out_dir = out / "faults";
  Result<RunResult> r = RunExperiment(*spec, o);
  REQUIRE(r.ok());
  CHECK(r->max_budget_ratio <= 1.0);
  const nlohmann::json s = nlohmann::json::parse(ReadFile(out / "faults/summary.json"));
  for (const auto& arm : s["arms"]) {
    CAPTURE(arm["name"].get<std::string>());
    CHECK(arm["budget_held"].get<bool>());
    for (const auto& n : arm["nodes"]) {
      if (arm["kind"] == "gossip") CHECK(n["alive"].get<bool>());
      if (arm["private"].get<bool>()) {
        CHECK(n["epsilon_spent"].get<double>() <= arm["target_epsilon"].get<double>());
      }
    }
  }
}

TEST_CASE("site splits cover every training row once and Dirichlet skews labels") {
  TempDir dir;
  WriteData(dir);
  Result<ExperimentSpec> spec = ParseExperiment(Experiment("", kGossipArms), "t.toml", dir.path());
  REQUIRE(spec.ok());
  Result<learn::Schema> schema = learn::LoadSchemaFile(dir / "schema.toml");
  REQUIRE(schema.ok());
  Result<learn::Dataset> data = learn::LoadDataset(*schema, dir / "data.csv");
  REQUIRE(data.ok());
  // Spread of the positive rate over sites.
  auto label_spread = [&](const std::vector<std::vector<int64_t>>& sites) {
    double lo = 1, hi = 0;
    for (const auto& rows : sites) {
      double pos = 0;
      for (int64_t r : rows) pos += data->labels[static_cast<size_t>(r)];
      const double rate = pos / static_cast<double>(rows.size());
      lo = std::min(lo, rate);
      hi = std::max(hi, rate);
    }
    return hi - lo;
  };
  double iid_spread = 0;
  for (SplitKind kind : {SplitKind::kIid, SplitKind::kDirichlet, SplitKind::kQuantity}) {
    ExperimentSpec e = *spec;
    e.split = kind;
    e.sites = 5;
    e.alpha = 1.0;
    std::vector<std::string> names;
    Result<std::vector<std::vector<int64_t>>> a = SplitSites(e, *data, &names);
    CAPTURE(static_cast<int>(kind));
    CAPTURE(a.status().ToString());
    REQUIRE(a.ok());
    REQUIRE(a->size() == 5);
    CHECK(names.size() == 5);
    std::vector<int64_t> all;
    for (const auto& rows : *a) all.insert(all.end(), rows.begin(), rows.end());
    std::sort(all.begin(), all.end());
    CHECK(all == data->train_rows);
    std::vector<std::string> again;
    CHECK(*SplitSites(e, *data, &again) == *a);  // a pure function of the seed
    e.seed += 1;
    CHECK(*SplitSites(e, *data, &again) != *a);
    if (kind == SplitKind::kIid) {
      for (const auto& rows : *a) CHECK(rows.size() == data->train_rows.size() / 5);
      iid_spread = label_spread(*a);
    }
    // Label skew spreads the sites' positive rates far more than IID does.
    if (kind == SplitKind::kDirichlet) CHECK(label_spread(*a) > 2 * iid_spread);
  }
  // A split that leaves a site empty is refused, naming the knob to turn.
  ExperimentSpec e = *spec;
  e.split = SplitKind::kQuantity;
  e.sites = 40;
  e.alpha = 0.01;
  std::vector<std::string> names;
  Result<std::vector<std::vector<int64_t>>> empty = SplitSites(e, *data, &names);
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.status().message().find("data.alpha") != std::string::npos);
}

TEST_CASE("[crypto] overrides the simulated crypto costs, bad values name the key") {
  TempDir dir;
  WriteData(dir);
  const std::string arm = "[[arm]]\nkind = \"gossip\"\nprivate = false\n";
  const std::string table =
      "[crypto]\naead_mb_per_s = 500\naead_per_message_us = 1.5\nhandshake_ms = 2.25\n";
  Result<ExperimentSpec> all = ParseExperiment(Experiment(table, arm), "test.toml", dir.path());
  REQUIRE_MESSAGE(all.ok(), all.status().ToString());
  CHECK(all->crypto.aead_bytes_per_second == 500e6);
  CHECK(all->crypto.aead_per_message == std::chrono::nanoseconds(1500));
  CHECK(all->crypto.handshake == std::chrono::microseconds(2250));

  // One key: the others keep the measured defaults; 0 MB/s makes AEAD free.
  Result<ExperimentSpec> one =
      ParseExperiment(Experiment("[crypto]\naead_mb_per_s = 0\n", arm), "test.toml", dir.path());
  REQUIRE(one.ok());
  const CryptoModel defaults;
  CHECK(one->crypto.aead_bytes_per_second == 0);
  CHECK(one->crypto.aead_per_message == defaults.aead_per_message);
  CHECK(one->crypto.handshake == defaults.handshake);
  Result<ExperimentSpec> none = ParseExperiment(Experiment("", arm), "test.toml", dir.path());
  REQUIRE(none.ok());
  CHECK(none->crypto.aead_bytes_per_second == defaults.aead_bytes_per_second);
  CHECK(none->crypto.handshake == defaults.handshake);

  const std::pair<std::string, std::string> bad[] = {
      {"aead_mb_per_s = -1", "crypto.aead_mb_per_s"},
      {"aead_mb_per_s = inf", "crypto.aead_mb_per_s"},
      {"aead_mb_per_s = \"fast\"", "crypto.aead_mb_per_s"},
      {"aead_per_message_us = nan", "crypto.aead_per_message_us"},
      {"aead_per_message_us = -0.5", "crypto.aead_per_message_us"},
      {"handshake_ms = -3", "crypto.handshake_ms"},
      {"handshake_ms = 1e300", "crypto.handshake_ms"},
      {"aead_gbps = 1", "crypto.aead_gbps"},
  };
  for (const auto& [line, key] : bad) {
    CAPTURE(line);
    Result<ExperimentSpec> spec =
        ParseExperiment(Experiment("[crypto]\n" + line + "\n", arm), "test.toml", dir.path());
    REQUIRE_FALSE(spec.ok());
    CHECK(spec.status().message().find("'" + key + "'") != std::string::npos);
  }

  // The run uses it: with a handshake longer than the horizon no link ever
  // comes up, so no site sends a byte; with the defaults they all do.
  REQUIRE(Run(dir, Experiment("", arm), "default").ok());
  REQUIRE(Run(dir, Experiment("[crypto]\nhandshake_ms = 100000\n", arm), "slow").ok());
  const nlohmann::json fast = Summary(dir, "default"), slow = Summary(dir, "slow");
  REQUIRE(fast["arms"][0]["nodes"].size() == 4);
  REQUIRE(slow["arms"][0]["nodes"].size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    CHECK(fast["arms"][0]["nodes"][i]["bytes_sent"].get<uint64_t>() > 0);
    CHECK(slow["arms"][0]["nodes"][i]["bytes_sent"].get<uint64_t>() == 0);
  }
}

TEST_CASE("SVG writer: escapes text and skips non-finite points") {
  LinePlot p{"a<b & c", "x", "y", {{"s\"1", {{0, 1}, {1, NAN}, {2, 3}}}}};
  const std::string svg = RenderSvg(p);
  CHECK(svg.find("a&lt;b &amp; c") != std::string::npos);
  CHECK(svg.find("s&quot;1") != std::string::npos);
  CHECK(svg.find("nan") == std::string::npos);
}

}  // namespace
}  // namespace dpnode::sim

namespace dpnode::sim {
namespace {

// Three sites of different size and label balance, named in a site column.
void WriteSiteData(const TempDir& dir) {
  std::ofstream schema(dir / "schema.toml");
  schema << "schema_version = 1\nsite_column = \"site\"\n"
            "[label]\ncolumn = \"y\"\nnegative = 0\npositive = 1\n"
            "[split]\ntest_fraction = 0.3\nseed = 5\n"
            "[[column]]\nname = \"a\"\ntype = \"numeric\"\nmin = -4\nmax = 4\n"
            "[[column]]\nname = \"b\"\ntype = \"numeric\"\nmin = -4\nmax = 4\n";
  std::ofstream csv(dir / "data.csv");
  csv << "site,a,b,y\n";
  Xoshiro256 rng(9);
  const char* sites[] = {"north", "south", "east"};
  const int rows[] = {200, 120, 80};
  const double shift[] = {0.0, 0.8, -0.8};  // different base rates per site
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < rows[s]; ++i) {
      const double a = rng.Normal(), b = rng.Normal(), e = 0.3 * rng.Normal();
      csv << sites[s] << "," << a << "," << b << "," << (a + 0.5 * b + shift[s] + e > 0 ? 1 : 0)
          << "\n";
    }
  }
}

// Checks one run's per-site figures (see the test below).
void CheckSiteFigures(const nlohmann::json& s) {
  const size_t test_rows = s["test_rows"].get<size_t>();
  REQUIRE(s["arms"].size() == 3);
  for (const auto& arm : s["arms"]) {
    CAPTURE(arm["name"].get<std::string>());
    REQUIRE(arm.contains("mean_site_test"));
    if (arm["kind"] == "pooled") {
      REQUIRE(arm["nodes"][0]["per_site_test"].size() == 3);
      CHECK_FALSE(arm["nodes"][0].contains("site_test"));
      continue;
    }
    REQUIRE(arm["nodes"].size() == 3);
    size_t rows = 0;
    double mean_acc = 0;
    for (const auto& n : arm["nodes"]) {
      REQUIRE(n.contains("site_test"));
      rows += n["site_test"]["rows"].get<size_t>();
      const double acc = n["site_test"]["accuracy"].get<double>();
      CHECK(acc >= 0);
      CHECK(acc <= 1);
      mean_acc += acc / 3;
    }
    CHECK(rows == test_rows);  // every test row belongs to exactly one site
    CHECK(arm["mean_site_test"]["accuracy"].get<double>() == doctest::Approx(mean_acc));
  }
  // The single pooled model: the row-weighted mean of its per-site
  // accuracies is exactly its accuracy on the pooled test set.
  const auto& pooled = s["arms"][2]["nodes"][0];
  std::map<std::string, size_t> site_rows;
  for (const auto& n : s["arms"][1]["nodes"]) {
    site_rows[n["node"].get<std::string>()] = n["site_test"]["rows"].get<size_t>();
  }
  double weighted = 0;
  size_t total = 0;
  bool differs = false;
  for (const auto& e : pooled["per_site_test"]) {
    const size_t k = site_rows.at(e["site"].get<std::string>());
    weighted += e["accuracy"].get<double>() * static_cast<double>(k);
    total += k;
    // Not the pooled figure copied: the sites' base rates differ.
    differs = differs || std::abs(e["accuracy"].get<double>() - pooled["accuracy"].get<double>()) > 1e-9;
  }
  REQUIRE(total == test_rows);
  CHECK(weighted / static_cast<double>(total) ==
        doctest::Approx(pooled["accuracy"].get<double>()).epsilon(1e-12));
  CHECK(differs);
}

TEST_CASE("site-column splits report each site's own test metrics, consistent with the pooled ones") {
  TempDir dir;
  WriteSiteData(dir);
  const std::string arms = "[[arm]]\nname = \"g\"\nkind = \"gossip\"\nepsilon = 3\n"
                           "[[arm]]\nname = \"l\"\nkind = \"local\"\nepsilon = 3\n"
                           "[[arm]]\nname = \"p\"\nkind = \"pooled\"\nepsilon = 3\n";
  auto by_site = [&](const std::string& extra) {
    std::string text = Experiment(extra, arms);
    const std::string iid = "split = \"iid\"\nsites = 4";
    text.replace(text.find(iid), iid.size(), "split = \"site_column\"");
    return text;
  };
  Result<RunResult> r = Run(dir, by_site(""), "out");
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CheckSiteFigures(Summary(dir, "out"));
  // The LibTorch backend evaluates on the rows it is given too (it once
  // cached the first row list it saw).
  Result<RunResult> t = Run(dir, by_site("[model]\nkind = \"torch_logistic\"\n"), "torch",
                            std::nullopt, /*torch=*/true);
  REQUIRE_MESSAGE(t.ok(), t.status().ToString());
  CheckSiteFigures(Summary(dir, "torch"));
}

}  // namespace
}  // namespace dpnode::sim
