// `dpnode train`: trains one site alone (the local-only baseline) or several
// sites' data pooled (the centralized baseline), privately through the
// ledger or not, evaluates on the held-out rows and writes the model.
#include <CLI/CLI.hpp>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "node/cli/commands.h"
#include "node/cli/logging.h"
#include "node/cli/output.h"
#include "node/cli/site_ledger.h"
#include "node/cli/plan.h"
#include "node/cli/site_config.h"
#include "node/learn/data/dataset.h"
#include "node/learn/data/schema.h"
#include "node/learn/dpsgd.h"
#include "node/learn/examples.h"
#include "node/learn/model_file.h"
#include "node/learn/network.h"
#include "node/privacy/ledger.h"

namespace dpnode::cli {
namespace {

namespace fs = std::filesystem;

struct TrainFlags {
  std::vector<std::string> configs;
  std::vector<std::string> data_configs;
  std::vector<std::string> test_configs;
  bool json = false;
  bool nonprivate = false;
  std::string state_dir;
  std::string out;
  double target_epsilon = 0;
  int threads = 0;
};

struct Pool {
  learn::Schema schema;
  learn::SchemaFingerprint schema_fingerprint{};
  std::vector<std::string> feature_names;
  std::vector<std::string> class_names;
  learn::ExampleTable train;
  learn::ExampleTable test;
  std::vector<std::string> sites;       // training rows came from these
  std::vector<std::string> test_sites;  // test rows came from these
};

// Adds the site's training rows (unless test_only) and its test rows.
Status AddSite(const SiteConfig& c, bool first, bool test_only, Pool& pool) {
  Result<learn::Schema> schema = learn::LoadSchemaFile(c.schema);
  if (!schema.ok()) return schema.status();
  const learn::SchemaFingerprint fp = learn::Fingerprint(*schema);
  if (first) {
    pool.schema = *schema;
    pool.schema_fingerprint = fp;
  } else if (fp != pool.schema_fingerprint) {
    return Status::InvalidArgument(c.file + ": schema " + c.schema +
                                   " differs from the first site's (fingerprints " +
                                   learn::FingerprintHex(fp) + " vs " +
                                   learn::FingerprintHex(pool.schema_fingerprint) + ")");
  }
  Result<learn::Dataset> d = learn::LoadDataset(*schema, c.csv);
  if (!d.ok()) return d.status();
  LogLoadReport(c.csv, *d);
  if (first) {
    pool.feature_names = d->feature_names;
    pool.class_names = d->class_names;
  }
  if (!test_only) {
    DPNODE_RETURN_IF_ERROR(learn::AppendRows(*d, d->train_rows, pool.train));
    pool.sites.push_back(c.name);
  }
  DPNODE_RETURN_IF_ERROR(learn::AppendRows(*d, d->test_rows, pool.test));
  pool.test_sites.push_back(c.name);
  return Status::Ok();
}

double Finite(double v) { return std::isfinite(v) ? v : -1; }

int RunTrain(const TrainFlags& f) {
  const std::string name = "train";
  auto fail = [&](const Status& s) { return ReportError(name, s); };

  std::vector<SiteConfig> configs;
  for (const std::string& file : f.configs) {
    Result<SiteConfig> c = LoadSiteConfig(file);
    if (!c.ok()) return fail(c.status());
    configs.push_back(*c);
  }
  for (const std::string& file : f.data_configs) {
    Result<SiteConfig> c = LoadSiteConfig(file, /*data_only=*/true);
    if (!c.ok()) return fail(c.status());
    configs.push_back(*c);
  }
  const size_t training_configs = configs.size();
  for (const std::string& file : f.test_configs) {
    Result<SiteConfig> c = LoadSiteConfig(file, /*data_only=*/true);
    if (!c.ok()) return fail(c.status());
    configs.push_back(*c);
  }
  // Settings come from the first --config; the others contribute data.
  SiteConfig settings = configs.front();
  TrainConfig& tc = settings.train;
  if (f.nonprivate) tc.private_training = false;
  if (!f.state_dir.empty()) tc.state_dir = f.state_dir;
  if (!f.out.empty()) tc.model_path = f.out;
  if (f.threads > 0) tc.threads = f.threads;
  PrivacyPlanConfig pc = settings.privacy;
  if (!settings.has_privacy) {
    pc.expected_batch_size = 32;
    pc.epochs = 20;
  }
  if (f.target_epsilon > 0) pc.target_epsilon = f.target_epsilon;
  if (tc.private_training && tc.state_dir.empty()) {
    return fail(Status::InvalidArgument(
        settings.file +
        ": private training needs train.state_dir (or --state-dir): the privacy ledger lives "
        "there"));
  }

  Pool pool;
  for (size_t i = 0; i < configs.size(); ++i) {
    Status s = AddSite(configs[i], i == 0, i >= training_configs, pool);
    if (!s.ok()) return fail(s);
  }
  if (pool.train.rows == 0) return fail(Status::InvalidArgument("no training rows"));
  if (pool.test.rows == 0) {
    return fail(Status::InvalidArgument("no test rows: the schema's [split] must hold some out"));
  }
  std::string site_label;
  for (const std::string& s : pool.sites) site_label += (site_label.empty() ? "" : "+") + s;

  // The plan: q = B/N, T = ceil(epochs/q), σ solved (or checked) for the target.
  Result<PrivacyPlan> plan = Status::InvalidArgument("unset");
  if (tc.private_training) {
    plan = MakePlan(site_label, pool.train.rows, pc);
    if (!plan.ok()) return fail(plan.status());
  } else {
    if (pc.expected_batch_size < 1 || pc.expected_batch_size > pool.train.rows ||
        !(pc.epochs > 0) || !(pc.epochs <= 1e6)) {
      return fail(Status::InvalidArgument(settings.file +
                                          ": expected_batch_size or epochs out of range"));
    }
    PrivacyPlan p;
    p.site = site_label;
    p.records = pool.train.rows;
    p.config = pc;
    p.sample_rate = static_cast<double>(pc.expected_batch_size) / static_cast<double>(p.records);
    p.steps = static_cast<int64_t>(std::ceil(pc.epochs / p.sample_rate - 1e-9));
    plan = p;
  }

  learn::ModelSpec spec;
  spec.kind = settings.model.kind == "mlp" ? learn::ModelKind::kMlp : learn::ModelKind::kLogistic;
  spec.input_dim = pool.train.dim;
  spec.num_classes = static_cast<int64_t>(pool.class_names.size());
  spec.hidden = settings.model.hidden;
  spec.activation = settings.model.activation == "tanh" ? learn::Activation::kTanh
                                                        : learn::Activation::kRelu;
  spec.dropout = settings.model.dropout;
  if (Status s = learn::ValidateModelSpec(spec); !s.ok()) return fail(s);

  learn::SetComputeThreads(tc.threads);
  Result<std::unique_ptr<learn::Network>> net =
      learn::Network::Create(spec, learn::InitialParameters(spec, tc.seed));
  if (!net.ok()) return fail(net.status());

  std::unique_ptr<privacy::Ledger> ledger;
  if (tc.private_training) {
    Result<std::unique_ptr<privacy::Ledger>> l = OpenOrCreateLedger(
        tc.state_dir, {pc.target_epsilon, pc.delta, pc.accountant, LedgerLabel(pool.sites)});
    if (!l.ok()) return fail(l.status());
    ledger = std::move(l).value();
  }

  learn::OptimizerConfig opt;
  opt.kind = tc.optimizer == "adam" ? learn::OptimizerKind::kAdam : learn::OptimizerKind::kSgd;
  opt.learning_rate =
      tc.learning_rate > 0 ? tc.learning_rate : (opt.kind == learn::OptimizerKind::kAdam ? 0.01 : 0.5);
  opt.momentum = opt.kind == learn::OptimizerKind::kSgd ? tc.momentum : 0;
  learn::DpSgdConfig dc;
  dc.private_training = tc.private_training;
  dc.sample_rate = plan->sample_rate;
  dc.noise_multiplier = tc.private_training ? plan->noise_multiplier : 0;
  dc.clip_norm = pc.clip_norm;
  dc.max_steps = plan->steps;
  dc.ledger_block_steps = tc.ledger_block_steps;
  if (tc.seeded_noise) dc.noise_seed = tc.seed;
  dc.dropout_seed = tc.seed;
  Result<std::unique_ptr<learn::DpSgdTrainer>> trainer =
      learn::DpSgdTrainer::Create(**net, opt, dc, ledger.get());
  if (!trainer.ok()) return fail(trainer.status());
  Result<learn::TrainReport> report = (*trainer)->Run(pool.train.view());
  if (!report.ok()) return fail(report.status());
  if (report->steps_run == 0 && report->stop == learn::StopReason::kBudgetExhausted) {
    // Nothing was trained: keep whatever model an earlier run wrote.
    return fail(Status::BudgetExhausted(
        ledger->path() + " has no budget left for one more step (epsilon spent " +
        ShortNumber(report->epsilon_spent) + " of " + ShortNumber(pc.target_epsilon) +
        "); nothing trained, no model written"));
  }
  Result<learn::Metrics> metrics = learn::Evaluate(**net, pool.test.view());
  if (!metrics.ok()) return fail(metrics.status());

  std::string model_path = tc.model_path;
  if (model_path.empty()) {
    model_path = tc.state_dir.empty() ? (fs::path(LedgerLabel(pool.sites) + ".dpm")).string()
                                      : (fs::path(tc.state_dir) / "model.dpm").string();
  }
  learn::ModelFile file;
  file.spec = spec;
  file.schema_fingerprint = pool.schema_fingerprint;
  file.fingerprint = learn::ComputeModelFingerprint(pool.schema_fingerprint, spec);
  file.feature_names = pool.feature_names;
  file.class_names = pool.class_names;
  file.parameters = (*net)->parameters();

  const learn::Metrics& m = *metrics;
  const learn::TrainReport& r = *report;
  nlohmann::json j = {
      {"sites", pool.sites},
      {"test_sites", pool.test_sites},
      {"private", tc.private_training},
      {"noise", r.noise},
      {"model", learn::ModelKindName(spec.kind)},
      {"hidden", spec.hidden},
      {"optimizer", learn::OptimizerName(opt.kind)},
      {"learning_rate", opt.learning_rate},
      {"train_records", pool.train.rows},
      {"test_records", pool.test.rows},
      {"expected_batch_size", pc.expected_batch_size},
      {"sample_rate", plan->sample_rate},
      {"steps_planned", r.steps_planned},
      {"steps_run", r.steps_run},
      {"stopped", learn::StopReasonName(r.stop)},
      {"noise_multiplier", dc.noise_multiplier},
      {"clip_norm", tc.private_training ? pc.clip_norm : 0.0},
      {"clipped_fraction",
       r.examples > 0 ? static_cast<double>(r.clipped) / static_cast<double>(r.examples) : 0.0},
      {"epsilon_spent", r.epsilon_spent},
      {"target_epsilon", tc.private_training ? pc.target_epsilon : 0.0},
      {"delta", tc.private_training ? pc.delta : 0.0},
      {"accountant", tc.private_training ? privacy::AccountantName(pc.accountant) : "none"},
      {"ledger_steps", r.ledger_steps},
      {"metrics",
       {{"accuracy", m.accuracy},
        {"auroc", Finite(m.auroc)},
        {"auprc", Finite(m.auprc)},
        {"brier", m.brier},
        {"ece", m.ece}}},
      {"model_path", model_path},
      {"model_fingerprint", learn::ModelFingerprintHex(file.fingerprint)}};
  if (Status s = learn::WriteModelFile(model_path, file, j.dump()); !s.ok()) return fail(s);

  if (f.json) {
    std::printf("%s\n", j.dump().c_str());
    return kExitOk;
  }
  std::printf("trained %s: %lld training rows, %lld test rows, %s model\n", site_label.c_str(),
              static_cast<long long>(pool.train.rows), static_cast<long long>(pool.test.rows),
              learn::ModelKindName(spec.kind));
  if (tc.private_training) {
    std::printf("DP-SGD: q %.5f, sigma %.4f, clip %s; noise: %s\n", plan->sample_rate,
                dc.noise_multiplier, ShortNumber(pc.clip_norm).c_str(), r.noise.c_str());
  } else {
    std::printf("non-private SGD (no clipping, no noise, no ledger): q %.5f\n", plan->sample_rate);
  }
  std::printf("steps: %lld of %lld planned (%s)\n", static_cast<long long>(r.steps_run),
              static_cast<long long>(r.steps_planned), learn::StopReasonName(r.stop));
  if (tc.private_training) {
    std::printf("epsilon spent: %.4f of %s at delta %s (%s); ledger %s holds %lld steps\n",
                r.epsilon_spent, ShortNumber(pc.target_epsilon).c_str(),
                ShortNumber(pc.delta).c_str(), privacy::AccountantName(pc.accountant),
                ledger->path().c_str(), static_cast<long long>(r.ledger_steps));
  }
  std::printf("test: accuracy %.4f  AUROC %.4f  AUPRC %.4f  Brier %.4f  ECE %.4f\n", m.accuracy,
              m.auroc, m.auprc, m.brier, m.ece);
  std::printf("model: %s (fingerprint %s)\n", model_path.c_str(),
              learn::ModelFingerprintHex(file.fingerprint).c_str());
  return kExitOk;
}

}  // namespace

void RegisterTrainCommand(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<TrainFlags>();
  CLI::App* cmd = app.add_subcommand(
      "train", "Train one site alone, or several sites' data pooled, and evaluate on held-out rows");
  cmd->add_option("--config", f->configs,
                  "site configuration (TOML); repeat to pool several sites' data (settings "
                  "come from the first)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--data-config", f->data_configs,
                  "another site configuration whose [data] joins the pool (other tables ignored)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--test-config", f->test_configs,
                  "another site configuration whose test rows join the evaluation only "
                  "(e.g. a local-only model scored on the pooled test set)")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--json", f->json, "print one JSON object with the metrics and epsilon spent");
  cmd->add_flag("--nonprivate", f->nonprivate,
                "baseline: no clipping, no noise, no ledger (overrides train.private)");
  cmd->add_option("--state-dir", f->state_dir, "directory of the privacy ledger (overrides train.state_dir)");
  cmd->add_option("--out", f->out, "model file to write (overrides train.model)");
  cmd->add_option("--target-epsilon", f->target_epsilon,
                  "overrides privacy.target_epsilon (the ledger's budget must match)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--threads", f->threads, "LibTorch/BLAS threads (overrides train.threads)")
      ->check(CLI::Range(1, 256));
  cmd->callback([f, &exit_code] { exit_code = RunTrain(*f); });
}

}  // namespace dpnode::cli
