// Training end to end on the bundled heart-disease data: the non-private
// pooled baseline reaches the published accuracy, private training charges
// the ledger before it runs and stops cleanly when the budget is spent, and
// the model file round-trips.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "node/learn/data/dataset.h"
#include "node/learn/data/schema.h"
#include "node/learn/dpsgd.h"
#include "node/learn/examples.h"
#include "node/learn/model_file.h"
#include "node/privacy/ledger.h"
#include "tests/learn/torch/test_dirs.h"

namespace dpnode::learn {
namespace {

namespace fs = std::filesystem;

struct Pooled {
  Schema schema;
  ExampleTable train;
  ExampleTable test;
  std::vector<std::string> class_names;
  std::vector<std::string> feature_names;
};

// The four FLamby heart sites, pooled.
Pooled LoadHeart() {
  const fs::path root = fs::path(DPNODE_SOURCE_DIR) / "examples" / "heart";
  Result<Schema> schema = LoadSchemaFile((root / "schema.toml").string());
  REQUIRE_MESSAGE(schema.ok(), schema.status().ToString());
  Pooled p;
  p.schema = *schema;
  for (const char* site : {"cleveland", "hungarian", "switzerland", "va"}) {
    Result<Dataset> d = LoadDataset(*schema, (root / "data" / (std::string(site) + ".csv")).string());
    REQUIRE_MESSAGE(d.ok(), d.status().ToString());
    REQUIRE(AppendRows(*d, d->train_rows, p.train).ok());
    REQUIRE(AppendRows(*d, d->test_rows, p.test).ok());
    p.class_names = d->class_names;
    p.feature_names = d->feature_names;
  }
  return p;
}

ModelSpec Logistic(int64_t dim) {
  ModelSpec s;
  s.input_dim = dim;
  s.num_classes = 2;
  return s;
}

TEST_CASE("non-private logistic regression on pooled heart data reaches FLamby's accuracy") {
  Pooled heart = LoadHeart();
  CHECK(heart.train.rows + heart.test.rows == 740);  // FLamby's rows
  ModelSpec spec = Logistic(heart.train.dim);
  Result<std::unique_ptr<Network>> net = Network::Create(spec, InitialParameters(spec, 1));
  REQUIRE(net.ok());
  OptimizerConfig opt;
  opt.kind = OptimizerKind::kAdam;
  opt.learning_rate = 0.01;
  DpSgdConfig config;
  config.private_training = false;
  config.sample_rate = 32.0 / static_cast<double>(heart.train.rows);
  config.max_steps = static_cast<int64_t>(std::ceil(30 / config.sample_rate));
  config.noise_seed = 1;
  Result<std::unique_ptr<DpSgdTrainer>> trainer = DpSgdTrainer::Create(**net, opt, config, nullptr);
  REQUIRE(trainer.ok());
  Result<TrainReport> report = (*trainer)->Run(heart.train.view());
  REQUIRE_MESSAGE(report.ok(), report.status().ToString());
  CHECK(report->stop == StopReason::kCompleted);
  CHECK(report->steps_run == config.max_steps);
  CHECK(report->noise == "none");
  Result<Metrics> m = Evaluate(**net, heart.test.view());
  REQUIRE(m.ok());
  MESSAGE("pooled heart, non-private logistic regression: accuracy " << m->accuracy << ", AUROC "
          << m->auroc << ", test rows " << m->rows);
  CHECK(m->rows == heart.test.rows);
  CHECK(m->accuracy >= 0.76);
  CHECK(m->auroc >= 0.8);
}

TEST_CASE("private training charges the ledger first and stops when the budget is spent") {
  Pooled heart = LoadHeart();
  ModelSpec spec;
  spec.kind = ModelKind::kMlp;
  spec.input_dim = heart.train.dim;
  spec.hidden = {16};
  spec.dropout = 0.1;
  Result<std::unique_ptr<Network>> net = Network::Create(spec, InitialParameters(spec, 2));
  REQUIRE(net.ok());
  const std::string dir = FreshDir("budget");
  const privacy::Budget budget{1.0, 1e-5, privacy::AccountantKind::kRdp, "heart-test"};
  Result<std::unique_ptr<privacy::Ledger>> ledger = privacy::Ledger::Create(dir, budget);
  REQUIRE(ledger.ok());
  OptimizerConfig opt;
  opt.learning_rate = 0.5;
  opt.momentum = 0.5;
  DpSgdConfig config;
  config.sample_rate = 0.05;
  config.noise_multiplier = 1.5;
  config.clip_norm = 1.0;
  config.max_steps = 100000;  // far more than ε = 1 buys
  config.ledger_block_steps = 8;
  config.noise_seed = 3;
  Result<std::unique_ptr<DpSgdTrainer>> trainer =
      DpSgdTrainer::Create(**net, opt, config, ledger->get());
  REQUIRE(trainer.ok());
  Result<TrainReport> report = (*trainer)->Run(heart.train.view());
  REQUIRE_MESSAGE(report.ok(), report.status().ToString());
  CHECK(report->stop == StopReason::kBudgetExhausted);
  CHECK(!report->stop_message.empty());
  CHECK(report->steps_run > 0);
  CHECK(report->steps_run < config.max_steps);
  CHECK(report->ledger_steps >= report->steps_run);
  CHECK(report->epsilon_spent <= budget.epsilon);
  CHECK(report->noise == "seeded (NOT private)");
  // The trainer squeezed in the partial last block: not one more step fits.
  Result<privacy::ChargeReceipt> more = (*ledger)->Reserve({0.05, 1.5, 1});
  CHECK(more.status().code() == StatusCode::kBudgetExhausted);
  Result<bool> again = (*trainer)->TryStep(heart.train.view());
  REQUIRE(again.ok());
  CHECK(!*again);
  // What was charged is on disk.
  const int64_t ran = report->steps_run;
  ledger->reset();
  trainer->reset();
  Result<std::unique_ptr<privacy::Ledger>> reopened = privacy::Ledger::Open(dir);
  REQUIRE(reopened.ok());
  CHECK((*reopened)->total_steps() >= ran);

  Result<Metrics> m = Evaluate(**net, heart.test.view());
  REQUIRE(m.ok());
  MESSAGE("pooled heart, DP-SGD MLP at epsilon <= 1: " << ran << " steps, accuracy "
          << m->accuracy);
  CHECK(m->accuracy > 0.5);
}

TEST_CASE("private training refuses to run without a ledger or with sigma 0") {
  ModelSpec spec = Logistic(3);
  Result<std::unique_ptr<Network>> net = Network::Create(spec, InitialParameters(spec, 1));
  REQUIRE(net.ok());
  DpSgdConfig config;
  config.sample_rate = 0.1;
  config.noise_multiplier = 1.0;
  config.max_steps = 10;
  CHECK(!DpSgdTrainer::Create(**net, OptimizerConfig{}, config, nullptr).ok());
  config.noise_multiplier = 0;
  CHECK(!DpSgdTrainer::Create(**net, OptimizerConfig{}, config, nullptr).ok());
}

TEST_CASE("a trainer whose caller charges the ledger runs only charged steps") {
  ModelSpec spec = Logistic(3);
  Result<std::unique_ptr<Network>> net = Network::Create(spec, InitialParameters(spec, 1));
  REQUIRE(net.ok());
  std::vector<float> features = {0.1f, 0.2f, 0.3f, 0.9f, 0.8f, 0.7f};
  std::vector<int32_t> labels = {0, 1};
  Examples data{features.data(), labels.data(), 2, 3};
  DpSgdConfig config;
  config.sample_rate = 1.0;
  config.noise_multiplier = 1.0;
  config.max_steps = 10;
  config.caller_charges = true;
  config.noise_seed = 5;
  Result<std::unique_ptr<privacy::Ledger>> ledger = privacy::Ledger::Create(
      FreshDir("caller"), {1.0, 1e-5, privacy::AccountantKind::kRdp, "t"});
  REQUIRE(ledger.ok());
  CHECK(!DpSgdTrainer::Create(**net, OptimizerConfig{}, config, ledger->get()).ok());
  Result<std::unique_ptr<DpSgdTrainer>> trainer =
      DpSgdTrainer::Create(**net, OptimizerConfig{}, config, nullptr);
  REQUIRE(trainer.ok());
  CHECK((*trainer)->TryStep(data).status().code() == StatusCode::kFailedPrecondition);
  CHECK(!(*trainer)->Run(data).ok());
  const std::vector<float> before = (*net)->parameters();
  StepReport report;
  REQUIRE((*trainer)->RunChargedStep(data, &report).ok());
  CHECK(report.batch_size == 2);  // q = 1
  CHECK((*net)->parameters() != before);
  CHECK((*trainer)->steps_run() == 1);
  CHECK((*ledger)->total_steps() == 0);  // untouched: the caller's ledger pays

  config.caller_charges = false;
  Result<std::unique_ptr<DpSgdTrainer>> own =
      DpSgdTrainer::Create(**net, OptimizerConfig{}, config, ledger->get());
  REQUIRE(own.ok());
  CHECK((*own)->RunChargedStep(data).code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("model file round-trips and detects corruption") {
  ModelFile m;
  m.spec.kind = ModelKind::kMlp;
  m.spec.input_dim = 5;
  m.spec.hidden = {4, 3};
  m.spec.activation = Activation::kTanh;
  m.spec.num_classes = 3;
  m.schema_fingerprint[3] = 7;
  m.fingerprint = ComputeModelFingerprint(m.schema_fingerprint, m.spec);
  m.feature_names = {"a", "b", "c", "d", "e"};
  m.class_names = {"x", "y", "z"};
  m.parameters = InitialParameters(m.spec, 9);
  const std::string path = FreshDir("model") + "/model.dpm";
  REQUIRE(WriteModelFile(path, m, "{\"accuracy\": 0.5}").ok());
  CHECK(fs::exists(path + ".json"));
  Result<ModelFile> back = ReadModelFile(path);
  REQUIRE_MESSAGE(back.ok(), back.status().ToString());
  CHECK(back->parameters == m.parameters);
  CHECK(back->fingerprint == m.fingerprint);
  CHECK(back->spec.hidden == m.spec.hidden);
  CHECK(back->class_names == m.class_names);
  // Flip one parameter byte.
  {
    std::FILE* f = std::fopen(path.c_str(), "r+b");
    REQUIRE(f);
    std::fseek(f, -40, SEEK_END);
    const int c = std::fgetc(f);
    std::fseek(f, -40, SEEK_END);
    std::fputc(c ^ 1, f);
    std::fclose(f);
  }
  CHECK(ReadModelFile(path).status().code() == StatusCode::kCorruption);
  CHECK(!WriteModelFile(path, m, "[1]").ok());
}

}  // namespace
}  // namespace dpnode::learn
