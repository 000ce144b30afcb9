// `dpnode privacy plan SITE.toml...`: what each site's privacy budget buys.
//
// Reads the [data] and [privacy] tables of site configurations, counts each
// site's training records N, and prints the DP-SGD plan the node would run:
// sample rate q = B/N for an expected batch of B records, T = epochs/q steps,
// and the noise multiplier σ that keeps T steps within the target (ε, δ)
// (solved, or checked when the config gives σ).
#ifndef DPNODE_NODE_CLI_PLAN_H_
#define DPNODE_NODE_CLI_PLAN_H_

#include <cstdint>
#include <string>

#include "base/status.h"
#include "node/privacy/accountant.h"

namespace CLI {
class App;
}

namespace dpnode::cli {

// The [privacy] table of a site configuration.
struct PrivacyPlanConfig {
  double target_epsilon = 0;     // required
  double delta = 0;              // required
  privacy::AccountantKind accountant = privacy::AccountantKind::kRdp;
  int64_t expected_batch_size = 0;  // B, required: q = B / N
  double epochs = 0;             // required: T = ceil(epochs * N / B)
  double noise_multiplier = 0;   // 0 = solve the smallest σ for the target
  double clip_norm = 1.0;        // C; recorded, not used by the arithmetic
};

struct PrivacyPlan {
  std::string site;
  int64_t records = 0;  // N, training records
  double sample_rate = 0;
  int64_t steps = 0;
  double noise_multiplier = 0;
  double epsilon = 0;   // spent by the whole plan, by the configured accountant
  double epsilon_rdp = 0;  // the same plan under RDP, for comparison
  PrivacyPlanConfig config;
};

// Builds the plan for `records` training records under `config`.
Result<PrivacyPlan> MakePlan(const std::string& site, int64_t records,
                             const PrivacyPlanConfig& config);

void RegisterPlanCommand(CLI::App& privacy, int& exit_code);

}  // namespace dpnode::cli

#endif  // DPNODE_NODE_CLI_PLAN_H_
