// `dpnode sim EXPERIMENT.toml [--out DIR] [--seed N]`: runs a simulated
// experiment (sim/experiment/experiment.h, docs/experiments.md) and writes
// metrics.csv, summary.json, SVG plots and run_info.json into --out.
//
// Wall time is measured here, not in the simulator: summary.json's
// "wall_time_s" (the one field that differs between runs of the same
// experiment and seed) and run_info.json (with events per second).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "node/cli/commands.h"
#include "node/cli/output.h"
#include "sim/experiment/experiment.h"
#include "node/learn/network.h"
#include "sim/learn/learner_backend.h"

namespace dpnode::cli {
namespace {

struct SimFlags {
  std::string experiment;
  std::string out = "sim-out";
  std::optional<uint64_t> seed;
  int threads = 1;
};

int RunSim(const SimFlags& f) {
  const std::string cmd = "sim";
  Result<sim::ExperimentSpec> spec = sim::LoadExperiment(f.experiment);
  if (!spec.ok()) return ReportError(cmd, spec.status());
  sim::RunOptions options;
  options.out_dir = f.out;
  options.seed = f.seed;
  options.backend = sim::LearnerBackend();  // model.kind = "mlp" / "torch_logistic"
  // The simulator is single-threaded; one LibTorch/BLAS thread is faster for
  // its small models and keeps results independent of the machine's cores.
  learn::SetComputeThreads(f.threads);
  size_t last_len = 0;
  options.progress = [&last_len](const std::string& line) {
    // One status line, rewritten in place.
    std::fprintf(stderr, "\r%-*s", static_cast<int>(last_len), line.c_str());
    last_len = line.size();
  };
  const auto start = std::chrono::steady_clock::now();
  options.wall_seconds = [start] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  Result<sim::RunResult> r = sim::RunExperiment(*spec, options);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (last_len) std::fprintf(stderr, "\n");
  if (!r.ok()) return ReportError(cmd, r.status());
  {
    std::ofstream info(std::filesystem::path(f.out) / "run_info.json", std::ios::binary);
    info << "{\n  \"wall_time_s\": " << wall << ",\n  \"events_processed\": " << r->events
         << ",\n  \"events_per_second\": " << (wall > 0 ? static_cast<double>(r->events) / wall : 0)
         << "\n}\n";
  }
  std::printf("wrote %s, %s and plots in %s (%llu events, spectral gap %.4g, %.1f s wall)\n",
              r->metrics_path.c_str(), r->summary_path.c_str(), f.out.c_str(),
              static_cast<unsigned long long>(r->events), r->spectral_gap, wall);
  return kExitOk;
}

}  // namespace

void RegisterSimCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<SimFlags>();
  CLI::App* cmd = app.add_subcommand(
      "sim", "Run a simulated experiment (gossip, local and pooled arms) from a TOML file");
  cmd->add_option("experiment", flags->experiment, "the experiment file (docs/experiments.md)")
      ->required();
  cmd->add_option("--out", flags->out, "output directory")->capture_default_str();
  cmd->add_option("--seed", flags->seed, "root seed, overriding the file's");
  cmd->add_option("--threads", flags->threads,
                  "LibTorch/BLAS threads for mlp / torch_logistic models (1 keeps results "
                  "independent of the machine)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->callback([flags, &exit_code] { exit_code = RunSim(*flags); });
}

}  // namespace dpnode::cli
