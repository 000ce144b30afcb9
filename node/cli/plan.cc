#include "node/cli/plan.h"

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "node/cli/output.h"
#include "node/cli/site_config.h"
#include "node/cli/site_data.h"
#include "node/privacy/calibrate.h"

namespace dpnode::cli {
namespace {

// The site configuration reader is shared with `dpnode train`
// (site_config.h); the plan needs only [data] and [privacy].
Result<SiteConfig> LoadPlanConfig(const std::string& file) {
  Result<SiteConfig> c = LoadSiteConfig(file);
  if (!c.ok()) return c.status();
  if (!c->has_privacy) return Status::InvalidArgument(file + ": missing table [privacy]");
  return c;
}

}  // namespace

Result<PrivacyPlan> MakePlan(const std::string& site, int64_t records,
                             const PrivacyPlanConfig& config) {
  if (records < 1) return Status::InvalidArgument(site + ": no training records");
  if (config.expected_batch_size < 1 || config.expected_batch_size > records) {
    return Status::InvalidArgument(site + ": privacy.expected_batch_size must be in [1, " +
                                   std::to_string(records) + "] (the training records)");
  }
  if (!(config.epochs > 0) || !(config.epochs <= 1e6)) {
    return Status::InvalidArgument(site + ": privacy.epochs must be in (0, 1e6]");
  }
  PrivacyPlan plan;
  plan.site = site;
  plan.records = records;
  plan.config = config;
  plan.sample_rate = static_cast<double>(config.expected_batch_size) / static_cast<double>(records);
  plan.steps = static_cast<int64_t>(std::ceil(config.epochs / plan.sample_rate - 1e-9));
  if (config.noise_multiplier > 0) {
    plan.noise_multiplier = config.noise_multiplier;
    Result<double> eps = privacy::ComputeEpsilon(
        config.accountant, {{plan.sample_rate, plan.noise_multiplier, plan.steps}}, config.delta);
    if (!eps.ok()) return eps.status().WithContext(site);
    if (*eps > config.target_epsilon) {
      return Status::BudgetExhausted(
          site + ": the plan spends epsilon " + ShortNumber(*eps) + " > target " +
          ShortNumber(config.target_epsilon) + "; raise noise_multiplier or lower epochs");
    }
    plan.epsilon = *eps;
  } else {
    Result<privacy::NoiseCalibration> c = privacy::SmallestNoiseMultiplier(
        config.accountant, config.target_epsilon, config.delta, plan.sample_rate, plan.steps);
    if (!c.ok()) return c.status().WithContext(site);
    plan.noise_multiplier = c->noise_multiplier;
    plan.epsilon = c->epsilon;
  }
  Result<double> rdp = privacy::ComputeEpsilon(
      privacy::AccountantKind::kRdp, {{plan.sample_rate, plan.noise_multiplier, plan.steps}},
      config.delta);
  if (!rdp.ok()) return rdp.status().WithContext(site);
  plan.epsilon_rdp = *rdp;
  return plan;
}

void RegisterPlanCommand(CLI::App& privacy, int& exit_code) {
  struct Flags {
    std::vector<std::string> configs;
    std::string accountant;  // empty: each config's own
    bool json = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = privacy.add_subcommand(
      "plan", "The DP-SGD plan (q, steps, noise) each site's privacy budget buys");
  cmd->add_option("configs", f->configs, "site configuration files (TOML)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--accountant", f->accountant, "override the configs' accountant: rdp or prv")
      ->check(CLI::IsMember({"rdp", "prv"}));
  cmd->add_flag("--json", f->json, "print one JSON object per site, one per line");
  cmd->callback([f, &exit_code] {
    const std::string name = "privacy plan";
    std::vector<PrivacyPlan> plans;
    for (const std::string& file : f->configs) {
      Result<SiteConfig> c = LoadPlanConfig(file);
      if (!c.ok()) { exit_code = ReportError(name, c.status()); return; }
      Result<int64_t> n = CountTrainingRecords(c->csv, c->schema);
      if (!n.ok()) { exit_code = ReportError(name, n.status()); return; }
      if (!f->accountant.empty()) c->privacy.accountant = *privacy::ParseAccountant(f->accountant);
      Result<PrivacyPlan> plan = MakePlan(c->name, *n, c->privacy);
      if (!plan.ok()) { exit_code = ReportError(name, plan.status()); return; }
      plans.push_back(*plan);
    }
    if (f->json) {
      for (const PrivacyPlan& p : plans) {
        nlohmann::json j = {{"site", p.site},
                            {"records", p.records},
                            {"sample_rate", p.sample_rate},
                            {"steps", p.steps},
                            {"noise_multiplier", p.noise_multiplier},
                            {"epsilon", p.epsilon},
                            {"epsilon_rdp", p.epsilon_rdp},
                            {"target_epsilon", p.config.target_epsilon},
                            {"delta", p.config.delta},
                            {"accountant", privacy::AccountantName(p.config.accountant)},
                            {"expected_batch_size", p.config.expected_batch_size},
                            {"epochs", p.config.epochs}};
        std::printf("%s\n", j.dump().c_str());
      }
    } else {
      std::printf("%-14s %8s %6s %9s %7s %8s %10s %10s %7s %9s\n", "site", "records", "batch",
                  "q", "epochs", "steps", "sigma", "epsilon", "acct", "eps(rdp)");
      for (const PrivacyPlan& p : plans) {
        std::printf("%-14s %8lld %6lld %9.5f %7s %8lld %10.4f %10.4f %7s %9.4f\n", p.site.c_str(),
                    static_cast<long long>(p.records),
                    static_cast<long long>(p.config.expected_batch_size), p.sample_rate,
                    ShortNumber(p.config.epochs).c_str(), static_cast<long long>(p.steps),
                    p.noise_multiplier, p.epsilon, privacy::AccountantName(p.config.accountant),
                    p.epsilon_rdp);
      }
      if (!plans.empty()) {
        std::printf("each site spends at most its target epsilon at delta %s on its own records\n",
                    ShortNumber(plans.front().config.delta).c_str());
      }
    }
    exit_code = kExitOk;
  });
}

}  // namespace dpnode::cli
