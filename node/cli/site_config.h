// The site configuration file (TOML) as `dpnode train` and `dpnode privacy
// plan` read it: where the data is, the privacy budget, the model and the
// training settings.
//
//   [site]     name (default: the file's stem)
//   [data]     csv, schema            paths relative to the config file
//   [privacy]  as `dpnode privacy plan` (plan.h, PrivacyPlanConfig)
//   [model]    kind = "logistic" | "mlp", hidden = [..], activation =
//              "relu" | "tanh", dropout
//   [train]    private, optimizer = "sgd" | "adam", learning_rate, momentum,
//              seed, noise = "csprng" | "seeded", state_dir, model, threads,
//              ledger_block_steps
//
// Unknown keys in [data], [privacy], [model] and [train] are refused, naming
// the key and line; other tables ([network], ...) belong to the daemon's
// reader and are left alone. Defaults are listed in docs/learner.md.
#ifndef DPNODE_NODE_CLI_SITE_CONFIG_H_
#define DPNODE_NODE_CLI_SITE_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "node/cli/plan.h"

namespace dpnode::cli {

struct ModelConfig {
  std::string kind = "logistic";
  std::vector<int64_t> hidden;  // mlp only; default {64} for an mlp
  std::string activation = "relu";
  double dropout = 0;
};

struct TrainConfig {
  bool private_training = true;
  std::string optimizer = "sgd";
  double learning_rate = 0;  // 0 = the optimizer's default (sgd 0.5, adam 0.01)
  double momentum = 0.5;     // sgd only
  uint64_t seed = 0;         // initialisation and dropout; not secret
  bool seeded_noise = false; // noise = "seeded": reproducible, NOT private
  std::string state_dir;     // absolute or relative to the config; holds the ledger
  std::string model_path;    // output; default STATE_DIR/model.dpm or ./SITE.dpm
  int threads = 1;           // LibTorch/BLAS threads
  int64_t ledger_block_steps = 16;
};

struct SiteConfig {
  std::string file;
  std::string name;
  std::string csv;     // resolved path
  std::string schema;  // resolved path
  bool has_privacy = false;
  PrivacyPlanConfig privacy;
  ModelConfig model;
  TrainConfig train;
};

// Reads a full site configuration. With `data_only`, only [site] and [data]
// are required and read (a data set pooled into another site's run).
Result<SiteConfig> LoadSiteConfig(const std::string& file, bool data_only = false);

}  // namespace dpnode::cli

#endif  // DPNODE_NODE_CLI_SITE_CONFIG_H_
