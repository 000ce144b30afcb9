// `dpnode privacy ...`: the accountant, calibration and ledger from the
// command line. Figures printed here are the ones a node enforces.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "node/cli/commands.h"
#include "node/cli/output.h"
#include "node/cli/plan.h"
#include "node/privacy/accountant.h"
#include "node/privacy/calibrate.h"
#include "node/privacy/ledger.h"
#include "node/privacy/prv.h"
#include "node/privacy/rdp.h"

namespace dpnode::cli {
namespace {

using privacy::AccountantKind;

struct CommonFlags {
  double delta = 0;
  std::string accountant = "rdp";
  bool json = false;
};

void AddCommonFlags(CLI::App* cmd, CommonFlags& f) {
  cmd->add_option("--delta", f.delta, "delta of the (epsilon, delta) guarantee, in (0, 1)")
      ->required();
  cmd->add_option("--accountant", f.accountant, "rdp (Renyi DP, as Opacus) or prv (tighter)")
      ->check(CLI::IsMember({"rdp", "prv"}));
  cmd->add_flag("--json", f.json, "print one JSON object on one line");
}

// The fields every answer carries, plus accountant-specific detail.
nlohmann::json Answer(AccountantKind kind, double epsilon, double delta, double q, double sigma,
                      int64_t steps) {
  return {{"epsilon", epsilon},       {"delta", delta}, {"noise_multiplier", sigma},
          {"sample_rate", q},         {"steps", steps}, {"accountant", privacy::AccountantName(kind)}};
}

// Adds the accountant's own detail (RDP's optimal order, PRV's error bounds).
Status AddDetail(AccountantKind kind, double delta, double q, double sigma, int64_t steps,
                 nlohmann::json& out) {
  if (steps == 0) return Status::Ok();
  const privacy::History h = {{q, sigma, steps}};
  if (kind == AccountantKind::kRdp) {
    Result<privacy::RdpEpsilon> r = privacy::RdpEpsilonFor(h, delta);
    if (!r.ok()) return r.status();
    out["rdp_order"] = r->order;
  } else {
    Result<privacy::PrvEpsilon> r = privacy::PrvEpsilonFor(h, delta);
    if (!r.ok()) return r.status();
    out["prv_epsilon_lower"] = r->lower;
    out["prv_epsilon_estimate"] = r->estimate;
    out["prv_epsilon_upper"] = r->upper;
  }
  return Status::Ok();
}

void Print(const nlohmann::json& a, bool json) {
  if (json) {
    std::printf("%s\n", a.dump().c_str());
    return;
  }
  std::printf("epsilon           %s\n", ShortNumber(a["epsilon"].get<double>()).c_str());
  std::printf("delta             %s\n", ShortNumber(a["delta"].get<double>()).c_str());
  std::printf("noise multiplier  %s\n", ShortNumber(a["noise_multiplier"].get<double>()).c_str());
  std::printf("sample rate       %s\n", ShortNumber(a["sample_rate"].get<double>()).c_str());
  std::printf("steps             %lld\n", static_cast<long long>(a["steps"].get<int64_t>()));
  std::string acc = a["accountant"].get<std::string>();
  if (a.contains("rdp_order")) {
    acc += " (optimal order " + ShortNumber(a["rdp_order"].get<double>()) + ")";
  }
  if (a.contains("prv_epsilon_lower")) {
    acc += " (true epsilon in [" + ShortNumber(a["prv_epsilon_lower"].get<double>()) + ", " +
           ShortNumber(a["prv_epsilon_upper"].get<double>()) + "])";
  }
  std::printf("accountant        %s\n", acc.c_str());
  if (a.contains("steps_capped") && a["steps_capped"].get<bool>()) {
    std::printf("note              the step count hit the search cap: the budget is practically unbounded\n");
  }
}

Result<AccountantKind> Kind(const CommonFlags& f) { return privacy::ParseAccountant(f.accountant); }

// Reads the ledger without locking it (a running node may hold it) and
// reports the budget, the charges, ε spent and what is left.
int RunLedgerCommand(const std::string& dir, bool json) {
  const std::string name = "privacy ledger";
  Result<privacy::LedgerSnapshot> snap = privacy::Ledger::Inspect(dir);
  if (!snap.ok()) return ReportError(name, snap.status());
  const privacy::Budget& b = snap->budget;
  Result<double> spent = privacy::ComputeEpsilon(b.accountant, snap->history, b.delta);
  if (!spent.ok()) return ReportError(name, spent.status());
  const AccountantKind other =
      b.accountant == AccountantKind::kRdp ? AccountantKind::kPrv : AccountantKind::kRdp;
  Result<double> spent_other = privacy::ComputeEpsilon(other, snap->history, b.delta);
  if (!spent_other.ok()) return ReportError(name, spent_other.status());

  // What is left, in steps at the most recent (q, σ): the natural next block.
  int64_t steps_left = 0;
  bool steps_capped = false;
  const bool has_charges = !snap->history.empty();
  if (has_charges) {
    const privacy::StepBlock& last = snap->history.back();
    Result<privacy::StepsCalibration> left = privacy::LargestSteps(
        b.accountant, b.epsilon, b.delta, last.sample_rate, last.noise_multiplier, snap->history);
    if (left.ok()) {
      steps_left = left->steps;
      steps_capped = left->capped;
    } else if (left.status().code() != StatusCode::kBudgetExhausted) {
      return ReportError(name, left.status());
    }
  }
  const double remaining = std::max(0.0, b.epsilon - *spent);
  const privacy::History groups = privacy::Compact(snap->history);

  if (json) {
    nlohmann::json j = {{"state_dir", dir},
                        {"label", b.label},
                        {"accountant", privacy::AccountantName(b.accountant)},
                        {"target_epsilon", b.epsilon},
                        {"delta", b.delta},
                        {"epsilon", *spent},
                        {std::string("epsilon_") + privacy::AccountantName(other), *spent_other},
                        {"epsilon_remaining", remaining},
                        {"steps", snap->total_steps},
                        {"records", snap->record_count},
                        {"torn_tail_bytes", snap->torn_tail_bytes}};
    if (has_charges) {
      j["steps_remaining_at_last_rate"] = steps_left;
      j["steps_remaining_capped"] = steps_capped;
    }
    nlohmann::json blocks = nlohmann::json::array();
    for (const privacy::StepBlock& g : groups) {
      blocks.push_back({{"sample_rate", g.sample_rate},
                        {"noise_multiplier", g.noise_multiplier},
                        {"steps", g.steps}});
    }
    j["charges"] = blocks;
    std::printf("%s\n", j.dump().c_str());
    return kExitOk;
  }
  std::printf("ledger            %s/%s (%llu records, chain verified)\n", dir.c_str(),
              privacy::Ledger::kFileName, static_cast<unsigned long long>(snap->record_count));
  if (!b.label.empty()) std::printf("label             %s\n", b.label.c_str());
  std::printf("budget            epsilon %s at delta %s, %s accountant\n",
              ShortNumber(b.epsilon).c_str(), ShortNumber(b.delta).c_str(),
              privacy::AccountantName(b.accountant));
  std::printf("spent             epsilon %s (%s: %s)\n", ShortNumber(*spent).c_str(),
              privacy::AccountantName(other), ShortNumber(*spent_other).c_str());
  std::printf("remaining         epsilon %s\n", ShortNumber(remaining).c_str());
  std::printf("steps charged     %lld\n", static_cast<long long>(snap->total_steps));
  for (const privacy::StepBlock& g : groups) {
    std::printf("  %10lld steps at q = %s, sigma = %s\n", static_cast<long long>(g.steps),
                ShortNumber(g.sample_rate).c_str(), ShortNumber(g.noise_multiplier).c_str());
  }
  if (has_charges) {
    std::printf("steps left        %lld%s at the last (q, sigma)\n", static_cast<long long>(steps_left),
                steps_capped ? "+ (practically unbounded)" : "");
  }
  if (snap->torn_tail_bytes > 0) {
    std::printf("torn tail         %llu bytes after the last record (an unfinished append; the node drops it on open)\n",
                static_cast<unsigned long long>(snap->torn_tail_bytes));
  }
  return kExitOk;
}

}  // namespace

void RegisterPrivacyCommands(CLI::App& app, int& exit_code) {
  CLI::App* privacy = app.add_subcommand(
      "privacy", "Privacy accounting: epsilon of a plan, noise or steps for a target, the ledger");
  privacy->require_subcommand(1);

  // dpnode privacy epsilon
  {
    struct Flags : CommonFlags {
      double q = 0, sigma = 0;
      int64_t steps = 0;
    };
    auto f = std::make_shared<Flags>();
    CLI::App* cmd = privacy->add_subcommand(
        "epsilon", "Epsilon spent by T steps of DP-SGD at sample rate q and noise multiplier sigma");
    cmd->add_option("--sample-rate", f->q, "Poisson sampling rate q, in (0, 1]")->required();
    cmd->add_option("--noise-multiplier", f->sigma, "noise multiplier sigma > 0")->required();
    cmd->add_option("--steps", f->steps, "number of steps T >= 0")->required();
    AddCommonFlags(cmd, *f);
    cmd->callback([f, &exit_code] {
      const std::string name = "privacy epsilon";
      Result<AccountantKind> kind = Kind(*f);
      if (!kind.ok()) { exit_code = ReportError(name, kind.status()); return; }
      Result<double> eps = privacy::ComputeEpsilon(*kind, {{f->q, f->sigma, f->steps}}, f->delta);
      if (!eps.ok()) { exit_code = ReportError(name, eps.status()); return; }
      if (!std::isfinite(*eps)) {
        exit_code = ReportError(name, Status::OutOfRange(
            "these parameters give no finite (epsilon, delta) guarantee: add noise or sample less"));
        return;
      }
      nlohmann::json a = Answer(*kind, *eps, f->delta, f->q, f->sigma, f->steps);
      Status s = AddDetail(*kind, f->delta, f->q, f->sigma, f->steps, a);
      if (!s.ok()) { exit_code = ReportError(name, s); return; }
      Print(a, f->json);
      exit_code = kExitOk;
    });
  }

  // dpnode privacy noise
  {
    struct Flags : CommonFlags {
      double target = 0, q = 0;
      int64_t steps = 0;
    };
    auto f = std::make_shared<Flags>();
    CLI::App* cmd = privacy->add_subcommand(
        "noise", "Smallest noise multiplier that keeps T steps at sample rate q within a target epsilon");
    cmd->add_option("--target-epsilon", f->target, "target epsilon > 0")->required();
    cmd->add_option("--sample-rate", f->q, "Poisson sampling rate q, in (0, 1]")->required();
    cmd->add_option("--steps", f->steps, "number of steps T >= 1")->required();
    AddCommonFlags(cmd, *f);
    cmd->callback([f, &exit_code] {
      const std::string name = "privacy noise";
      Result<AccountantKind> kind = Kind(*f);
      if (!kind.ok()) { exit_code = ReportError(name, kind.status()); return; }
      Result<privacy::NoiseCalibration> c =
          privacy::SmallestNoiseMultiplier(*kind, f->target, f->delta, f->q, f->steps);
      if (!c.ok()) { exit_code = ReportError(name, c.status()); return; }
      nlohmann::json a = Answer(*kind, c->epsilon, f->delta, f->q, c->noise_multiplier, f->steps);
      a["target_epsilon"] = f->target;
      Status s = AddDetail(*kind, f->delta, f->q, c->noise_multiplier, f->steps, a);
      if (!s.ok()) { exit_code = ReportError(name, s); return; }
      Print(a, f->json);
      exit_code = kExitOk;
    });
  }

  // dpnode privacy steps
  {
    struct Flags : CommonFlags {
      double target = 0, q = 0, sigma = 0;
    };
    auto f = std::make_shared<Flags>();
    CLI::App* cmd = privacy->add_subcommand(
        "steps", "Largest number of steps at (q, sigma) that stays within a target epsilon");
    cmd->add_option("--target-epsilon", f->target, "target epsilon > 0")->required();
    cmd->add_option("--sample-rate", f->q, "Poisson sampling rate q, in (0, 1]")->required();
    cmd->add_option("--noise-multiplier", f->sigma, "noise multiplier sigma > 0")->required();
    AddCommonFlags(cmd, *f);
    cmd->callback([f, &exit_code] {
      const std::string name = "privacy steps";
      Result<AccountantKind> kind = Kind(*f);
      if (!kind.ok()) { exit_code = ReportError(name, kind.status()); return; }
      Result<privacy::StepsCalibration> c =
          privacy::LargestSteps(*kind, f->target, f->delta, f->q, f->sigma);
      if (!c.ok()) { exit_code = ReportError(name, c.status()); return; }
      nlohmann::json a = Answer(*kind, c->epsilon, f->delta, f->q, f->sigma, c->steps);
      a["target_epsilon"] = f->target;
      a["steps_capped"] = c->capped;
      Status s = AddDetail(*kind, f->delta, f->q, f->sigma, c->steps, a);
      if (!s.ok()) { exit_code = ReportError(name, s); return; }
      Print(a, f->json);
      exit_code = kExitOk;
    });
  }

  // dpnode privacy ledger STATE_DIR
  {
    struct Flags {
      std::string dir;
      bool json = false;
    };
    auto f = std::make_shared<Flags>();
    CLI::App* cmd = privacy->add_subcommand(
        "ledger", "What a node's ledger has charged, by which accountant, and what is left");
    cmd->add_option("state_dir", f->dir, "the node's state directory (holds budget.ledger)")
        ->required();
    cmd->add_flag("--json", f->json, "print one JSON object on one line");
    cmd->callback([f, &exit_code] { exit_code = RunLedgerCommand(f->dir, f->json); });
  }

  RegisterPlanCommand(*privacy, exit_code);
}

}  // namespace dpnode::cli
