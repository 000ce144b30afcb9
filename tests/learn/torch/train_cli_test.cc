// `dpnode train` as a user runs it: JSON output, the model file and its
// fingerprint, the ledger charged across runs, and refusals of bad configs.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "node/learn/model_file.h"
#include "tests/cli/run_command.h"
#include "tests/learn/torch/test_dirs.h"

namespace dpnode::learn {
namespace {

namespace fs = std::filesystem;
using dpnode::testing::CommandResult;
using dpnode::testing::RunDpnode;

std::string Heart(const std::string& rel) {
  return (fs::path(DPNODE_SOURCE_DIR) / "examples" / "heart" / rel).string();
}

// A site config for `site` with the given extra TOML appended.
std::string WriteConfig(const std::string& dir, const std::string& site, const std::string& extra) {
  const std::string path = dir + "/" + site + ".toml";
  std::ofstream out(path);
  out << "[site]\nname = \"" << site << "\"\n[data]\ncsv = \"" << Heart("data/" + site + ".csv")
      << "\"\nschema = \"" << Heart("schema.toml") << "\"\n"
      << "[privacy]\ntarget_epsilon = 2.0\ndelta = 1e-5\nexpected_batch_size = 16\n"
      << "epochs = 3\nclip_norm = 1.0\n"
      << extra;
  return path;
}

nlohmann::json JsonOf(const CommandResult& r) {
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  REQUIRE(dpnode::testing::CountLines(r.out) == 1);
  return nlohmann::json::parse(r.out);
}

TEST_CASE("train --nonprivate --json: metrics, no epsilon, a model file with its fingerprint") {
  const std::string dir = FreshDir("cli_nonprivate");
  const std::string out = dir + "/m.dpm";
  nlohmann::json j = JsonOf(RunDpnode("train --config " +
                                      Heart("sites/cleveland.toml") +
                                      " --nonprivate --json --out " + out));
  CHECK(j["private"] == false);
  CHECK(j["noise"] == "none");
  CHECK(j["epsilon_spent"] == 0.0);
  CHECK(j["sites"] == nlohmann::json::array({"cleveland"}));
  CHECK(j["test_records"].get<int>() > 0);
  CHECK(j["steps_run"] == j["steps_planned"]);
  for (const char* k : {"accuracy", "auroc", "auprc", "brier", "ece"}) {
    CHECK_MESSAGE(j["metrics"].contains(k), k);
  }
  CHECK(j["metrics"]["accuracy"].get<double>() > 0.6);
  Result<ModelFile> m = ReadModelFile(out);
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  CHECK(ModelFingerprintHex(m->fingerprint) == j["model_fingerprint"].get<std::string>());
  CHECK(fs::exists(out + ".json"));
}

TEST_CASE("private train charges the ledger, and a second run finds the budget spent") {
  const std::string dir = FreshDir("cli_private");
  const std::string cfg = WriteConfig(
      dir, "hungarian",
      "[model]\nkind = \"mlp\"\nhidden = [8]\nactivation = \"tanh\"\n"
      "[train]\noptimizer = \"adam\"\nseed = 4\nnoise = \"seeded\"\nstate_dir = \"state\"\n");
  nlohmann::json first = JsonOf(RunDpnode("train --json --config " + cfg));
  CHECK(first["private"] == true);
  CHECK(first["noise"] == "seeded (NOT private)");
  CHECK(first["stopped"] == "completed");
  CHECK(first["epsilon_spent"].get<double>() <= 2.0);
  CHECK(first["ledger_steps"].get<int64_t>() >= first["steps_run"].get<int64_t>());
  CHECK(fs::exists(dir + "/state/budget.ledger"));
  CHECK(fs::exists(dir + "/state/model.dpm"));
  // The same plan again: the ledger remembers the first run. Whatever is
  // left of the budget (the solved σ spends just under the target) pays for
  // a few steps at most; a run that can pay for none refuses.
  // The first re-run squeezes in every step that still fits, so by the
  // second at the latest nothing is left.
  const int64_t charged = first["ledger_steps"].get<int64_t>();
  bool refused = false;
  for (int run = 0; run < 2 && !refused; ++run) {
    CommandResult again = RunDpnode("train --json --config " + cfg);
    if (again.exit_code == 0) {
      nlohmann::json j = nlohmann::json::parse(again.out);
      CHECK(j["stopped"] == "budget_exhausted");
      CHECK(j["steps_run"].get<int64_t>() < j["steps_planned"].get<int64_t>());
      CHECK(j["epsilon_spent"].get<double>() <= 2.0);
      CHECK(j["ledger_steps"].get<int64_t>() >= charged + j["steps_run"].get<int64_t>());
    } else {
      CHECK(again.exit_code == 1);
      CHECK(again.err.find("no budget left") != std::string::npos);
      CHECK(again.out.empty());
      refused = true;
    }
  }
  CHECK(refused);
  // A different budget on the same ledger is refused.
  CommandResult other =
      RunDpnode("train --json --config " + cfg + " --target-epsilon 5");
  CHECK(other.exit_code != 0);
  CHECK(other.err.find("budget") != std::string::npos);
}

TEST_CASE("pooling: --data-config adds training rows, --test-config only test rows") {
  const std::string dir = FreshDir("cli_pooled");
  nlohmann::json one = JsonOf(RunDpnode("train --nonprivate --json --out " + dir + "/a.dpm" +
                                        " --config " + Heart("sites/va.toml")));
  nlohmann::json two = JsonOf(RunDpnode("train --nonprivate --json --out " + dir + "/b.dpm" +
                                        " --config " + Heart("sites/va.toml") +
                                        " --data-config " + Heart("sites/switzerland.toml")));
  nlohmann::json sw = JsonOf(RunDpnode("train --nonprivate --json --out " + dir + "/c.dpm" +
                                       " --config " + Heart("sites/switzerland.toml")));
  CHECK(two["train_records"].get<int>() ==
        one["train_records"].get<int>() + sw["train_records"].get<int>());
  CHECK(two["test_records"].get<int>() ==
        one["test_records"].get<int>() + sw["test_records"].get<int>());
  CHECK(two["sites"] == nlohmann::json::array({"va", "switzerland"}));
  // --test-config: evaluation rows only.
  nlohmann::json scored = JsonOf(RunDpnode("train --nonprivate --json --out " + dir + "/d.dpm" +
                                           " --config " + Heart("sites/va.toml") +
                                           " --test-config " + Heart("sites/switzerland.toml")));
  CHECK(scored["train_records"] == one["train_records"]);
  CHECK(scored["test_records"] == two["test_records"]);
  CHECK(scored["sites"] == nlohmann::json::array({"va"}));
  CHECK(scored["test_sites"] == nlohmann::json::array({"va", "switzerland"}));
}

TEST_CASE("bad configurations are refused with the key named") {
  const std::string dir = FreshDir("cli_bad");
  CommandResult typo = RunDpnode("train --config " +
                                 WriteConfig(dir, "va", "[train]\nlearnig_rate = 0.1\n"));
  CHECK(typo.exit_code == 1);
  CHECK(typo.err.find("train.learnig_rate") != std::string::npos);
  CommandResult kind = RunDpnode("train --config " +
                                 WriteConfig(dir, "va", "[model]\nkind = \"forest\"\n"));
  CHECK(kind.exit_code == 1);
  CHECK(kind.err.find("model.kind") != std::string::npos);
  CommandResult no_state = RunDpnode("train --config " + WriteConfig(dir, "va", ""));
  CHECK(no_state.exit_code == 1);
  CHECK(no_state.err.find("state_dir") != std::string::npos);
  CommandResult hidden = RunDpnode(
      "train --config " + WriteConfig(dir, "va", "[model]\nhidden = [4]\n") + " --nonprivate");
  CHECK(hidden.exit_code == 1);
  CHECK(hidden.err.find("model.hidden") != std::string::npos);
}

}  // namespace
}  // namespace dpnode::learn
