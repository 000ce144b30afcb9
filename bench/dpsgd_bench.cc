// DP-SGD throughput: examples per second for non-private SGD, fast DP-SGD
// (ghost-norm clipping) and the microbatch reference (per-example autograd),
// on an MLP 64->128->128->2 and on logistic regression over the same data,
// with an expected batch of 256 (Poisson sampling). Each figure times whole
// training steps: sampling, gathering the batch, the gradient, noise and the
// optimiser. The ledger charge is timed on its own (ledger_reserve_ms: one
// durable Reserve, i.e. one fsync, which a node pays once per block of
// ledger_block_steps steps), because an fsync's latency depends on the disk
// and on other processes, not on the learner. Target (docs/learner.md): fast
// DP-SGD at least half the speed of non-private training for the MLP.
//
//   ./build/bench/dpsgd_bench [--json] [--threads N] [--seconds S]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include "node/learn/dpsgd.h"
#include "node/learn/model_spec.h"
#include "node/learn/network.h"
#include "node/learn/noise.h"
#include "node/privacy/ledger.h"

namespace dpnode::learn {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kRows = 256 * 40;  // q = 256 / kRows = 0.025
constexpr int64_t kDim = 64;
constexpr double kBatch = 256;

enum class Path { kNonPrivate, kFast, kReference };

struct Options {
  bool json = false;
  int threads = 1;
  double seconds = 2.0;  // per measurement (the reference gets a quarter)
};

ExampleTable SyntheticData() {
  // A linearly separable-ish task so that training is not degenerate.
  RandomStream rng = RandomStream::Seeded(1, "bench-data");
  ExampleTable t;
  t.rows = kRows;
  t.dim = kDim;
  for (int64_t i = 0; i < kRows; ++i) {
    double s = 0;
    for (int64_t j = 0; j < kDim; ++j) {
      const float v = static_cast<float>(rng.Gaussian());
      t.features.push_back(v);
      if (j < 8) s += v;
    }
    t.labels.push_back(s + 0.5 * rng.Gaussian() > 0 ? 1 : 0);
  }
  return t;
}

// Examples per second of `path` on `spec`, or a negative value on failure.
double Measure(const ModelSpec& spec, Path path, const ExampleTable& data, double seconds) {
  Result<std::unique_ptr<Network>> net = Network::Create(spec, InitialParameters(spec, 1));
  if (!net.ok()) return -1;
  std::unique_ptr<privacy::Ledger> ledger;
  const fs::path dir = fs::temp_directory_path() /
                       ("dpsgd_bench_" + std::to_string(static_cast<long>(::getpid())) + "_" +
                        std::to_string(static_cast<int>(path)));
  if (path != Path::kNonPrivate) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    Result<std::unique_ptr<privacy::Ledger>> l =
        privacy::Ledger::Create(dir.string(), {1e6, 1e-5, privacy::AccountantKind::kRdp, "bench"});
    if (!l.ok()) {
      std::fprintf(stderr, "ledger: %s\n", l.status().ToString().c_str());
      return -1;
    }
    ledger = std::move(l).value();
  }
  OptimizerConfig opt;
  opt.learning_rate = 0.05;
  opt.momentum = 0.9;
  DpSgdConfig c;
  c.private_training = path != Path::kNonPrivate;
  c.sample_rate = kBatch / static_cast<double>(kRows);
  c.noise_multiplier = 1.0;
  c.clip_norm = 1.0;
  c.max_steps = int64_t{1} << 40;
  // One charge, during warm-up, covers every timed step (see the top).
  c.ledger_block_steps = int64_t{1} << 20;
  c.clip_mode = path == Path::kReference ? ClipMode::kMicrobatch : ClipMode::kGhost;
  Result<std::unique_ptr<DpSgdTrainer>> trainer =
      DpSgdTrainer::Create(**net, opt, c, ledger.get());
  if (!trainer.ok()) return -1;
  const Examples view = data.view();
  for (int i = 0; i < 3; ++i) {  // warm-up
    if (!(*trainer)->TryStep(view).ok()) return -1;
  }
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  int64_t examples = 0;
  double elapsed = 0;
  do {
    StepReport r;
    Result<bool> ran = (*trainer)->TryStep(view, &r);
    if (!ran.ok() || !*ran) return -1;
    examples += r.batch_size;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  trainer->reset();
  ledger.reset();
  fs::remove_all(dir);
  return static_cast<double>(examples) / elapsed;
}

// Median milliseconds of one Reserve() (append + fsync) on a fresh ledger
// in the temporary directory; negative on failure.
double MeasureLedgerReserve() {
  const fs::path dir = fs::temp_directory_path() /
                       ("dpsgd_bench_ledger_" + std::to_string(static_cast<long>(::getpid())));
  fs::remove_all(dir);
  fs::create_directories(dir);
  Result<std::unique_ptr<privacy::Ledger>> l =
      privacy::Ledger::Create(dir.string(), {1e6, 1e-5, privacy::AccountantKind::kRdp, "bench"});
  if (!l.ok()) return -1;
  std::vector<double> ms;
  using Clock = std::chrono::steady_clock;
  for (int i = 0; i < 41; ++i) {
    const Clock::time_point start = Clock::now();
    if (!(*l)->Reserve({0.025, 1.0, 16}).ok()) return -1;
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  l->reset();
  fs::remove_all(dir);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

int Run(const Options& o) {
  SetComputeThreads(o.threads);
  const ExampleTable data = SyntheticData();
  ModelSpec mlp;
  mlp.kind = ModelKind::kMlp;
  mlp.input_dim = kDim;
  mlp.hidden = {128, 128};
  mlp.num_classes = 2;
  ModelSpec logistic;
  logistic.input_dim = kDim;
  logistic.num_classes = 2;
  struct Case {
    const char* name;
    ModelSpec spec;
  };
  const double reserve_ms = MeasureLedgerReserve();
  int status = reserve_ms < 0 ? 1 : 0;
  for (const Case& k : {Case{"mlp_64_128_128_2", mlp}, Case{"logistic_64_2", logistic}}) {
    const double nonprivate = Measure(k.spec, Path::kNonPrivate, data, o.seconds);
    const double fast = Measure(k.spec, Path::kFast, data, o.seconds);
    const double reference = Measure(k.spec, Path::kReference, data, o.seconds / 4);
    if (nonprivate < 0 || fast < 0 || reference < 0) status = 1;
    if (o.json) {
      std::printf(
          "{\"model\":\"%s\",\"nonprivate_examples_per_s\":%.1f,\"dpsgd_examples_per_s\":%.1f,"
          "\"reference_examples_per_s\":%.1f,\"dpsgd_over_nonprivate\":%.3f,"
          "\"ledger_reserve_ms\":%.3f,\"expected_batch\":%.0f,\"threads\":%d}\n",
          k.name, nonprivate, fast, reference, fast / nonprivate, reserve_ms, kBatch, o.threads);
    } else {
      std::printf("%-18s non-private %10.0f ex/s   DP-SGD %10.0f ex/s (%.2fx)   reference %9.0f ex/s\n",
                  k.name, nonprivate, fast, fast / nonprivate, reference);
    }
  }
  if (!o.json) std::printf("ledger Reserve (append + fsync), median: %.3f ms\n", reserve_ms);
  return status;
}

}  // namespace
}  // namespace dpnode::learn

int main(int argc, char** argv) {
  dpnode::learn::Options o;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json")) {
      o.json = true;
    } else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      o.threads = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) {
      o.seconds = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: dpsgd_bench [--json] [--threads N] [--seconds S]\n");
      return 2;
    }
  }
  return dpnode::learn::Run(o);
}
