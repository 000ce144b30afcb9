// Simulated experiments: the TOML experiment file, site splits, and a run of
// every arm (gossip over simulated Nodes, local-only, pooled) that writes
// metrics.csv, summary.json and SVG plots. Format reference: docs/experiments.md.
//
// Determinism: everything (splits, topology, link draws, DP noise) derives
// from the experiment's root seed through SeedTree streams, and no wall clock
// is read here, so the same file and seed give byte-identical metrics.csv and
// summary.json. The DP noise is seeded too: simulated runs are NOT private,
// and summary.json says so ("noise": "seeded (NOT private)").
#ifndef DPNODE_SIM_EXPERIMENT_EXPERIMENT_H_
#define DPNODE_SIM_EXPERIMENT_EXPERIMENT_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "node/learn/checkpoint.h"
#include "node/learn/data/dataset.h"
#include "node/privacy/accountant.h"
#include "node/trainer.h"
#include "sim/experiment/logistic_trainer.h"
#include "sim/sim_network.h"

namespace dpnode::sim {

enum class SplitKind { kSiteColumn, kIid, kDirichlet, kQuantity };
enum class ArmKind { kGossip, kLocal, kPooled };

struct PartitionSpec {
  std::vector<uint32_t> sites;  // one side; the rest is the other side
  double start_s = 0;
  double heal_s = 0;
};
struct CrashSpec {
  uint32_t site = 0;
  double at_s = 0;
  double restart_s = -1;  // < 0: never restarts
};
struct StragglerSpec {
  uint32_t site = 0;
  double factor = 1;  // compute time multiplier
};

struct ArmSpec {
  std::string name;
  ArmKind kind = ArmKind::kGossip;
  bool is_private = true;
  double epsilon = 0;  // target ε when private
  // Per-arm overrides of [topology] kind and [data] sites (a sweep in one
  // file); empty / 0: the experiment's own. Other topology parameters are
  // shared.
  std::string topology;
  uint32_t sites = 0;
};

struct ExperimentSpec {
  std::string name;
  std::string base_dir;  // the experiment file's folder; data paths are relative to it
  uint64_t seed = 1;

  // [data]
  std::string schema_path;
  std::vector<std::string> csv_paths;
  SplitKind split = SplitKind::kSiteColumn;
  uint32_t sites = 0;  // from the data for kSiteColumn
  double alpha = 0.5;  // Dirichlet concentration (kDirichlet, kQuantity)

  // [topology]
  std::string topology = "complete";
  double p = 0.3;         // erdos_renyi
  uint32_t k = 4;         // regular, watts_strogatz
  double beta = 0.1;      // watts_strogatz
  uint32_t m = 2;         // barabasi_albert
  uint32_t rows = 0;      // torus (0: a near-square factorisation)
  std::string edge_file;  // edge_list

  // [gossip]
  std::string policy = "push-sum";
  double gossip_interval_s = 0.1;
  double step_time_s = 0.02;  // modelled compute per local step
  double horizon_s = 60;      // virtual time limit of a gossip arm
  double eval_interval_s = 1;

  // [link]
  std::string latency = "constant";  // constant | uniform | lognormal
  double latency_ms = 5;
  double latency_hi_ms = 20;
  double latency_sigma = 0.5;
  double bandwidth_mbps = 1000;  // 0: unlimited
  double loss = 0;

  // [crypto]: CPU time the secure channel costs, charged to every simulated
  // message and handshake. Keys not given keep CryptoModel's defaults (measured
  // by bench/crypto_bench; sim/sim_network.h).
  CryptoModel crypto;

  // [privacy]
  double delta = 1e-5;
  int64_t batch = 16;
  double epochs = 5;
  double clip = 1.0;
  double learning_rate = 0.5;
  privacy::AccountantKind accountant = privacy::AccountantKind::kRdp;

  // [model]: "logistic" is built in (LogisticTrainer); "mlp" and
  // "torch_logistic" need a ModelBackend (the LibTorch learner, sim/learn/).
  std::string model = "logistic";
  std::vector<int64_t> hidden;  // mlp hidden layer widths

  // [faults]
  // Virtual seconds between a gossip site's checkpoints (counted from each
  // start of the site); a restart resumes from the last one.
  double checkpoint_interval_s = 5;
  std::vector<PartitionSpec> partitions;
  std::vector<CrashSpec> crashes;
  std::vector<StragglerSpec> stragglers;

  std::vector<ArmSpec> arms;
};

// Parses an experiment file's text. Errors are InvalidArgument naming the
// key ("data.split", "arm[2].epsilon", ...) and the reason.
Result<ExperimentSpec> ParseExperiment(std::string_view toml_text, std::string_view source_name,
                                       const std::string& base_dir);
Result<ExperimentSpec> LoadExperiment(const std::string& path);

// Site of each training row: out[s] = ascending row indices of site s.
// `site_names` receives one name per site.
Result<std::vector<std::vector<int64_t>>> SplitSites(const ExperimentSpec& spec,
                                                     const learn::Dataset& data,
                                                     std::vector<std::string>* site_names);

// Trainers for models other than the built-in logistic one. The CLI plugs the
// LibTorch learner in here (sim/learn/learner_backend.h), which keeps this
// target torch-free.
struct ModelBackend {
  // A trainer over `rows` of `data` following `plan`, all randomness (noise
  // included) seeded from `seed`.
  std::function<Result<std::unique_ptr<node::Trainer>>(
      const ExperimentSpec& spec, const learn::Dataset& data, const std::vector<int64_t>& rows,
      int num_classes, const TrainPlan& plan, uint64_t seed)>
      make_trainer;
  // Test metrics of a parameter vector (the trainer's layout) on `rows`.
  std::function<Result<EvalResult>(const ExperimentSpec& spec, const learn::Dataset& data,
                                   const std::vector<int64_t>& rows, int num_classes,
                                   const std::vector<float>& params)>
      evaluate;
  // Checkpoints of a trainer make_trainer built (a restarted site resumes
  // through the checkpoint file, as a real node does): its fingerprint,
  // optimiser state and step count (the runner replaces the parameters with
  // the Node's estimate), and restoring one into a freshly made trainer
  // (errors as learn::LearnerTrainer::RestoreCheckpoint).
  std::function<Result<learn::Checkpoint>(const node::Trainer& trainer)> make_checkpoint;
  std::function<Status(node::Trainer& trainer, const learn::Checkpoint& checkpoint)>
      restore_checkpoint;
};

// What a gossip site restarted from, reported right after its new Node
// started (RunOptions::on_restart).
struct RestartReport {
  std::string arm;
  uint32_t site = 0;
  uint32_t incarnation = 0;  // 1 for the first restart
  double time_s = 0;         // virtual
  bool from_checkpoint = false;  // false: no checkpoint yet, initial parameters
  int64_t checkpoint_steps = 0;  // local steps the checkpoint holds
  int64_t steps_run = 0;         // steps run by all earlier incarnations
  int64_t ledger_steps = 0;      // steps the reopened ledger has charged
  int64_t max_steps = 0;         // granted to this incarnation: planned - ledger_steps
  std::vector<float> checkpoint_parameters;  // empty without a checkpoint
  std::vector<double> estimate;              // the new Node's estimate at start
};

struct RunOptions {
  std::string out_dir = "sim-out";
  std::optional<uint64_t> seed;  // overrides the file's seed
  // Progress, e.g. for a status line; called at every evaluation.
  std::function<void(const std::string&)> progress;
  // Called at every restart of a gossip site (e.g. for a log or a test).
  std::function<void(const RestartReport&)> on_restart;
  ModelBackend backend;
  // Seconds of wall time since the run started, read once just before
  // summary.json is written (its "wall_time_s"); the CLI passes a clock
  // reading, the simulator reads none. Unset: "wall_time_s" is null and
  // summary.json is byte-identical for the same experiment and seed.
  std::function<double()> wall_seconds;
};

struct RunResult {
  uint64_t events = 0;
  double spectral_gap = 0;
  // Max over nodes and private arms of ε spent / target (≤ 1 when every
  // budget held), from the ledgers.
  double max_budget_ratio = 0;
  std::string summary_path;
  std::string metrics_path;
};

Result<RunResult> RunExperiment(const ExperimentSpec& spec, const RunOptions& options);

}  // namespace dpnode::sim

#endif  // DPNODE_SIM_EXPERIMENT_EXPERIMENT_H_
