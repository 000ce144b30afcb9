// The randomness is what the accountant assumes: Gaussian noise of standard
// deviation σC with mean 0 (checked on what the trainer actually adds), and
// Poisson batches of mean qN and variance Nq(1-q).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <vector>

#include "node/learn/dpsgd.h"
#include "node/learn/noise.h"
#include "node/privacy/ledger.h"
#include "tests/learn/torch/test_dirs.h"

namespace dpnode::learn {
namespace {

namespace fs = std::filesystem;

struct Moments {
  double mean = 0;
  double stddev = 0;
};

Moments MomentsOf(const std::vector<double>& v) {
  double s = 0, s2 = 0;
  for (double x : v) s += x;
  const double mean = s / static_cast<double>(v.size());
  for (double x : v) s2 += (x - mean) * (x - mean);
  return {mean, std::sqrt(s2 / static_cast<double>(v.size() - 1))};
}

TEST_CASE("AddGaussian has standard deviation sigma*C and mean 0") {
  const double sigma = 1.3, clip = 0.7, sd = sigma * clip;
  const int64_t n = 200000;
  for (bool seeded : {true, false}) {
    RandomStream rng = seeded ? RandomStream::Seeded(11, "noise") : RandomStream::Secure();
    std::vector<float> x(static_cast<size_t>(n), 0.0f);
    rng.AddGaussian(x.data(), n, sd);
    Moments m = MomentsOf(std::vector<double>(x.begin(), x.end()));
    CHECK(std::fabs(m.stddev / sd - 1) < 0.02);
    CHECK(std::fabs(m.mean) < 5 * sd / std::sqrt(static_cast<double>(n)));
    // Tails: |z| > 3 has probability 0.0027.
    int64_t tail = 0;
    for (float v : x) tail += std::fabs(v) > 3 * sd ? 1 : 0;
    CHECK(static_cast<double>(tail) / static_cast<double>(n) == doctest::Approx(0.0027).epsilon(0.15));
  }
}

TEST_CASE("Gaussian draws follow the normal CDF, tails included") {
  // Points across the ziggurat's layers, its base strip edge r = 3.654 and
  // the tail beyond; each empirical CDF value within 5 standard errors.
  const int64_t n = 1000000;
  RandomStream rng = RandomStream::Seeded(21, "cdf");
  std::vector<double> z(static_cast<size_t>(n));
  for (double& v : z) v = rng.Gaussian();
  for (double t : {-4.0, -3.7, -3.0, -2.0, -1.0, -0.5, 0.0, 0.3, 1.0, 2.0, 2.5, 3.0, 3.6, 3.7, 4.0}) {
    CAPTURE(t);
    int64_t below = 0;
    for (double v : z) below += v <= t ? 1 : 0;
    const double p = 0.5 * std::erfc(-t / std::sqrt(2.0));
    const double se = std::sqrt(p * (1 - p) / static_cast<double>(n));
    CHECK(std::fabs(static_cast<double>(below) / static_cast<double>(n) - p) < 5 * se + 1e-6);
  }
}

TEST_CASE("seeded streams repeat, secure streams do not") {
  RandomStream a = RandomStream::Seeded(5, "x"), b = RandomStream::Seeded(5, "x");
  RandomStream c = RandomStream::Seeded(5, "y");
  CHECK(a.NextU64() == b.NextU64());
  CHECK(a.NextU64() != c.NextU64());
  CHECK(a.seeded());
  RandomStream s1 = RandomStream::Secure(), s2 = RandomStream::Secure();
  CHECK(!s1.seeded());
  CHECK(s1.NextU64() != s2.NextU64());
  CHECK(std::string(NoiseDescription(a)) == "seeded (NOT private)");
  CHECK(std::string(NoiseDescription(s1)) == "csprng");
}

TEST_CASE("Poisson batch sizes have mean qN and variance Nq(1-q)") {
  const int64_t records = 1000;
  const double q = 0.05;
  const int runs = 4000;
  RandomStream rng = RandomStream::Secure();
  std::vector<double> sizes;
  int64_t first_hits = 0;
  for (int r = 0; r < runs; ++r) {
    std::vector<int64_t> batch = PoissonSample(records, q, rng);
    for (size_t i = 1; i < batch.size(); ++i) REQUIRE(batch[i - 1] < batch[i]);
    first_hits += !batch.empty() && batch.front() == 0 ? 1 : 0;
    sizes.push_back(static_cast<double>(batch.size()));
  }
  const double mean = records * q, var = records * q * (1 - q);
  Moments m = MomentsOf(sizes);
  CHECK(std::fabs(m.mean - mean) < 5 * std::sqrt(var / runs));
  // The sample variance's standard error is about var·sqrt(2/runs).
  CHECK(std::fabs(m.stddev * m.stddev - var) < 5 * var * std::sqrt(2.0 / runs));
  // Each record independently: record 0 is in about q of the batches.
  CHECK(std::fabs(static_cast<double>(first_hits) / runs - q) < 5 * std::sqrt(q * (1 - q) / runs));
  CHECK(PoissonSample(records, 0.0, rng).empty());
  CHECK(static_cast<int64_t>(PoissonSample(records, 1.0, rng).size()) == records);
}

TEST_CASE("the trainer adds N(0, sigma^2 C^2) per coordinate, even to an empty batch") {
  // One record and q = 1e-9: every batch is (all but surely) empty, so each
  // SGD step moves the parameters by exactly lr·noise/(qN), and every step
  // is still charged.
  ModelSpec spec;
  spec.input_dim = 999;
  spec.num_classes = 2;  // 2000 parameters
  Result<std::unique_ptr<Network>> net =
      Network::Create(spec, std::vector<float>(static_cast<size_t>(ParameterCount(spec)), 0.0f));
  REQUIRE(net.ok());
  std::vector<float> features(999, 1.0f);
  std::vector<int32_t> labels{1};
  Examples data{features.data(), labels.data(), 1, 999};
  const double q = 1e-9, sigma = 0.8, clip = 2.5;

  Result<std::unique_ptr<privacy::Ledger>> ledger =
      privacy::Ledger::Create(FreshDir("noise"), {1.0, 1e-5, privacy::AccountantKind::kRdp, "t"});
  REQUIRE_MESSAGE(ledger.ok(), ledger.status().ToString());
  OptimizerConfig opt;
  opt.learning_rate = q;  // lr/(qN) = 1: the update is the noise itself
  DpSgdConfig config;
  config.sample_rate = q;
  config.noise_multiplier = sigma;
  config.clip_norm = clip;
  config.max_steps = 60;
  config.ledger_block_steps = 16;
  config.noise_seed = 99;
  Result<std::unique_ptr<DpSgdTrainer>> trainer =
      DpSgdTrainer::Create(**net, opt, config, ledger->get());
  REQUIRE(trainer.ok());
  std::vector<double> noise;
  std::vector<float> before = (*net)->parameters();
  for (int step = 0; step < 60; ++step) {
    StepReport report;
    Result<bool> ran = (*trainer)->TryStep(data, &report);
    REQUIRE(ran.ok());
    REQUIRE(*ran);
    REQUIRE(report.batch_size == 0);
    const std::vector<float>& after = (*net)->parameters();
    for (size_t i = 0; i < after.size(); ++i) noise.push_back(double(before[i]) - double(after[i]));
    before = after;
  }
  Moments m = MomentsOf(noise);
  CHECK(std::fabs(m.stddev / (sigma * clip) - 1) < 0.02);
  CHECK(std::fabs(m.mean) < 5 * sigma * clip / std::sqrt(static_cast<double>(noise.size())));
  CHECK((*ledger)->total_steps() >= 60);
  // Blocks of 16, 16, 16 and the 12 steps left of the plan.
  CHECK((*ledger)->total_steps() == 60);
  CHECK((*ledger)->history().size() == 4);
  CHECK(std::string(NoiseDescription((*trainer)->noise_stream())) == "seeded (NOT private)");
}

}  // namespace
}  // namespace dpnode::learn
