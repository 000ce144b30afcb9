// Reading site configuration files for `dpnode train`.
#include "node/cli/site_config.h"

#include <cmath>
#include <filesystem>
#include <set>
#include <toml++/toml.h>
#include <type_traits>

#include "node/cli/toml_fields.h"

namespace dpnode::cli {
namespace {

namespace fs = std::filesystem;

Status ReadPrivacy(const std::string& file, const toml::table& p, PrivacyPlanConfig& pc) {
  DPNODE_RETURN_IF_ERROR(OnlyKeys(file, "privacy", p,
                                  {"target_epsilon", "delta", "accountant", "expected_batch_size",
                                   "epochs", "noise_multiplier", "clip_norm"}));
  DPNODE_RETURN_IF_ERROR(RequireKey(file, p, "privacy", "target_epsilon"));
  DPNODE_RETURN_IF_ERROR(GetFinite(file, p, "privacy", "target_epsilon", pc.target_epsilon));
  DPNODE_RETURN_IF_ERROR(RequireKey(file, p, "privacy", "delta"));
  DPNODE_RETURN_IF_ERROR(GetFinite(file, p, "privacy", "delta", pc.delta));
  std::string accountant = "rdp";
  DPNODE_RETURN_IF_ERROR(GetString(file, p, "privacy", "accountant", accountant));
  Result<privacy::AccountantKind> kind = privacy::ParseAccountant(accountant);
  if (!kind.ok()) return kind.status().WithContext(file + ": privacy.accountant");
  pc.accountant = *kind;
  DPNODE_RETURN_IF_ERROR(RequireKey(file, p, "privacy", "expected_batch_size"));
  DPNODE_RETURN_IF_ERROR(GetInt(file, p, "privacy", "expected_batch_size", INT64_MIN, INT64_MAX, pc.expected_batch_size));
  DPNODE_RETURN_IF_ERROR(RequireKey(file, p, "privacy", "epochs"));
  DPNODE_RETURN_IF_ERROR(GetFinite(file, p, "privacy", "epochs", pc.epochs));
  DPNODE_RETURN_IF_ERROR(GetFinite(file, p, "privacy", "noise_multiplier", pc.noise_multiplier));
  DPNODE_RETURN_IF_ERROR(GetFinite(file, p, "privacy", "clip_norm", pc.clip_norm));
  if (!(pc.clip_norm > 0) || !std::isfinite(pc.clip_norm)) {
    return Status::InvalidArgument(file + ": privacy.clip_norm must be a finite number > 0");
  }
  return Status::Ok();
}

Status ReadModel(const std::string& file, const toml::table& m, ModelConfig& mc) {
  DPNODE_RETURN_IF_ERROR(OnlyKeys(file, "model", m, {"kind", "hidden", "activation", "dropout"}));
  DPNODE_RETURN_IF_ERROR(GetString(file, m, "model", "kind", mc.kind));
  if (mc.kind != "logistic" && mc.kind != "mlp") {
    return Status::InvalidArgument(file + ": model.kind must be \"logistic\" or \"mlp\"");
  }
  if (const toml::node* h = m.get("hidden")) {
    const toml::array* arr = h->as_array();
    if (!arr) return Status::InvalidArgument(Where(file, *h) + ": model.hidden must be an array");
    for (const toml::node& e : *arr) {
      std::optional<int64_t> v = e.value_exact<int64_t>();
      if (!v || *v < 1 || *v > (int64_t{1} << 20)) {
        return Status::InvalidArgument(Where(file, *h) +
                                       ": model.hidden must hold integers in [1, 2^20]");
      }
      mc.hidden.push_back(*v);
    }
  }
  if (mc.kind == "logistic" && !mc.hidden.empty()) {
    return Status::InvalidArgument(file + ": model.hidden is for kind = \"mlp\"");
  }
  if (mc.kind == "mlp" && mc.hidden.empty()) mc.hidden = {64};
  DPNODE_RETURN_IF_ERROR(GetString(file, m, "model", "activation", mc.activation));
  if (mc.activation != "relu" && mc.activation != "tanh") {
    return Status::InvalidArgument(file + ": model.activation must be \"relu\" or \"tanh\"");
  }
  DPNODE_RETURN_IF_ERROR(GetFinite(file, m, "model", "dropout", mc.dropout));
  if (!(mc.dropout >= 0 && mc.dropout < 1)) {
    return Status::InvalidArgument(file + ": model.dropout must be in [0, 1)");
  }
  return Status::Ok();
}

Status ReadTrain(const std::string& file, const fs::path& dir, const toml::table& t,
                 TrainConfig& tc) {
  DPNODE_RETURN_IF_ERROR(OnlyKeys(file, "train", t,
                                  {"private", "optimizer", "learning_rate", "momentum", "seed",
                                   "noise", "state_dir", "model", "threads",
                                   "ledger_block_steps"}));
  DPNODE_RETURN_IF_ERROR(GetBool(file, t, "train", "private", tc.private_training));
  DPNODE_RETURN_IF_ERROR(GetString(file, t, "train", "optimizer", tc.optimizer));
  if (tc.optimizer != "sgd" && tc.optimizer != "adam") {
    return Status::InvalidArgument(file + ": train.optimizer must be \"sgd\" or \"adam\"");
  }
  DPNODE_RETURN_IF_ERROR(GetFinite(file, t, "train", "learning_rate", tc.learning_rate));
  if (t.get("learning_rate") && (!(tc.learning_rate > 0) || !std::isfinite(tc.learning_rate))) {
    return Status::InvalidArgument(file + ": train.learning_rate must be a finite number > 0");
  }
  DPNODE_RETURN_IF_ERROR(GetFinite(file, t, "train", "momentum", tc.momentum));
  if (!(tc.momentum >= 0 && tc.momentum < 1)) {
    return Status::InvalidArgument(file + ": train.momentum must be in [0, 1)");
  }
  int64_t seed = 0;
  DPNODE_RETURN_IF_ERROR(GetInt(file, t, "train", "seed", 0, INT64_MAX, seed));
  tc.seed = static_cast<uint64_t>(seed);
  std::string noise = "csprng";
  DPNODE_RETURN_IF_ERROR(GetString(file, t, "train", "noise", noise));
  if (noise != "csprng" && noise != "seeded") {
    return Status::InvalidArgument(file + ": train.noise must be \"csprng\" or \"seeded\"");
  }
  tc.seeded_noise = noise == "seeded";
  std::string state_dir, model;
  DPNODE_RETURN_IF_ERROR(GetString(file, t, "train", "state_dir", state_dir));
  DPNODE_RETURN_IF_ERROR(GetString(file, t, "train", "model", model));
  if (!state_dir.empty()) tc.state_dir = (dir / state_dir).lexically_normal().string();
  if (!model.empty()) tc.model_path = (dir / model).lexically_normal().string();
  int64_t threads = tc.threads;
  DPNODE_RETURN_IF_ERROR(GetInt(file, t, "train", "threads", 1, 256, threads));
  tc.threads = static_cast<int>(threads);
  DPNODE_RETURN_IF_ERROR(
      GetInt(file, t, "train", "ledger_block_steps", 1, 1 << 20, tc.ledger_block_steps));
  return Status::Ok();
}

}  // namespace

Result<SiteConfig> LoadSiteConfig(const std::string& file, bool data_only) {
  Result<toml::table> parsed = ParseTomlFile(file);
  if (!parsed.ok()) return parsed.status();
  const toml::table& root = *parsed;
  SiteConfig c;
  c.file = file;
  const fs::path dir = fs::path(file).parent_path();
  if (const toml::table* site = root["site"].as_table()) {
    DPNODE_RETURN_IF_ERROR(GetString(file, *site, "site", "name", c.name));
  }
  if (c.name.empty()) c.name = fs::path(file).stem().string();

  const toml::table* data = root["data"].as_table();
  if (!data) return Status::InvalidArgument(file + ": missing table [data]");
  DPNODE_RETURN_IF_ERROR(OnlyKeys(file, "data", *data, {"csv", "schema"}));
  std::string csv, schema;
  DPNODE_RETURN_IF_ERROR(RequireKey(file, *data, "data", "csv"));
  DPNODE_RETURN_IF_ERROR(GetString(file, *data, "data", "csv", csv));
  DPNODE_RETURN_IF_ERROR(RequireKey(file, *data, "data", "schema"));
  DPNODE_RETURN_IF_ERROR(GetString(file, *data, "data", "schema", schema));
  c.csv = (dir / csv).lexically_normal().string();
  c.schema = (dir / schema).lexically_normal().string();
  if (data_only) return c;

  if (const toml::table* p = root["privacy"].as_table()) {
    c.has_privacy = true;
    DPNODE_RETURN_IF_ERROR(ReadPrivacy(file, *p, c.privacy));
  }
  if (const toml::table* m = root["model"].as_table()) {
    DPNODE_RETURN_IF_ERROR(ReadModel(file, *m, c.model));
  }
  if (const toml::table* t = root["train"].as_table()) {
    DPNODE_RETURN_IF_ERROR(ReadTrain(file, dir, *t, c.train));
  }
  if (c.train.private_training && !c.has_privacy) {
    return Status::InvalidArgument(file + ": missing table [privacy] (or set train.private = false)");
  }
  return c;
}

}  // namespace dpnode::cli
