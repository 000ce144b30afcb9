// `dpnode privacy` as a user types it: the exact interface the issue fixes,
// JSON on one line, and one-line refusals with a non-zero exit.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "tests/cli/run_command.h"

namespace dpnode::testing {
namespace {

nlohmann::json JsonOf(const CommandResult& r) {
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  REQUIRE(CountLines(r.out) == 1);
  return nlohmann::json::parse(r.out);
}

void CheckKeys(const nlohmann::json& j) {
  for (const char* key : {"epsilon", "delta", "noise_multiplier", "sample_rate", "steps", "accountant"}) {
    CHECK_MESSAGE(j.contains(key), key);
  }
}

TEST_CASE("version and help") {
  CommandResult v = RunDpnode("--version");
  CHECK(v.exit_code == 0);
  CHECK(v.out.find("dpnode 0.") == 0);
  for (const char* sub : {"--help", "privacy --help", "privacy epsilon --help", "privacy noise --help",
                          "privacy steps --help", "privacy plan --help", "privacy ledger --help"}) {
    CommandResult h = RunDpnode(sub);
    CHECK_MESSAGE(h.exit_code == 0, sub);
    CHECK_MESSAGE(h.out.find("Usage") != std::string::npos, sub);
  }
}

TEST_CASE("privacy epsilon --json prints the agreed keys, matching Opacus's unit-test value") {
  // Opacus tests/accountants_test.py: sigma 1.5, q 0.04, int(90/0.04) steps, delta 1e-5.
  nlohmann::json j = JsonOf(RunDpnode(
      "privacy epsilon --sample-rate 0.04 --noise-multiplier 1.5 --steps 2250 --delta 1e-5 --json"));
  CheckKeys(j);
  CHECK(j["accountant"] == "rdp");
  CHECK(j["steps"] == 2250);
  CHECK(j["epsilon"].get<double>() == doctest::Approx(7.32911117143).epsilon(1e-9));

  nlohmann::json p = JsonOf(RunDpnode(
      "privacy epsilon --sample-rate 0.04 --noise-multiplier 1.5 --steps 2250 --delta 1e-5 "
      "--accountant prv --json"));
  CheckKeys(p);
  CHECK(p["accountant"] == "prv");
  CHECK(p["epsilon"].get<double>() <= j["epsilon"].get<double>());
  CHECK(p["epsilon"].get<double>() > 0.5 * j["epsilon"].get<double>());
}

TEST_CASE("privacy noise and steps round-trip through privacy epsilon") {
  for (const std::string acct : {"rdp", "prv"}) {
    CAPTURE(acct);
    nlohmann::json n = JsonOf(RunDpnode(std::string("privacy noise --target-epsilon 3 --delta 1e-5 "
                                                    "--sample-rate 0.01 --steps 1000 --json --accountant ") + acct));
    CheckKeys(n);
    const double sigma = n["noise_multiplier"].get<double>();
    CHECK(n["epsilon"].get<double>() <= 3.0);
    CHECK(n["epsilon"].get<double>() > 2.99);  // smallest sigma: nearly the whole budget is used

    char args[256];
    std::snprintf(args, sizeof args,
                  "privacy steps --target-epsilon 3 --delta 1e-5 --sample-rate 0.01 "
                  "--noise-multiplier %.17g --json --accountant %s", sigma, acct.c_str());
    nlohmann::json s = JsonOf(RunDpnode(args));
    CheckKeys(s);
    CHECK(s["steps"].get<int64_t>() >= 1000);  // sigma was chosen so 1000 steps fit
    CHECK(s["steps"].get<int64_t>() < 1100);   // and is the smallest such sigma
    CHECK(s["epsilon"].get<double>() <= 3.0);
  }
}

TEST_CASE("nonsense input exits non-zero with a one-line reason") {
  const char* bad[] = {
      "privacy epsilon --sample-rate 0 --noise-multiplier 1 --steps 10 --delta 1e-5",
      "privacy epsilon --sample-rate 1.5 --noise-multiplier 1 --steps 10 --delta 1e-5",
      "privacy epsilon --sample-rate -0.1 --noise-multiplier 1 --steps 10 --delta 1e-5",
      "privacy epsilon --sample-rate nan --noise-multiplier 1 --steps 10 --delta 1e-5",
      "privacy epsilon --sample-rate 0.1 --noise-multiplier 0 --steps 10 --delta 1e-5",
      "privacy epsilon --sample-rate 0.1 --noise-multiplier -2 --steps 10 --delta 1e-5",
      "privacy epsilon --sample-rate 0.1 --noise-multiplier inf --steps 10 --delta 1e-5",
      "privacy epsilon --sample-rate 0.1 --noise-multiplier 1 --steps -1 --delta 1e-5",
      "privacy epsilon --sample-rate 0.1 --noise-multiplier 1 --steps 10 --delta 0",
      "privacy epsilon --sample-rate 0.1 --noise-multiplier 1 --steps 10 --delta 1",
      "privacy epsilon --sample-rate 0.1 --noise-multiplier 1 --steps 10 --delta nan",
      "privacy epsilon --sample-rate 0.1 --noise-multiplier 1 --steps 10 --delta 1e-5 --accountant foo",
      "privacy noise --target-epsilon 0 --delta 1e-5 --sample-rate 0.1 --steps 100",
      "privacy noise --target-epsilon -1 --delta 1e-5 --sample-rate 0.1 --steps 100",
      "privacy noise --target-epsilon 3 --delta 1e-5 --sample-rate 0.1 --steps 0",
      // unreachable: a vanishing budget for a million full-batch steps
      "privacy noise --target-epsilon 1e-9 --delta 1e-5 --sample-rate 1 --steps 1000000",
      "privacy steps --target-epsilon 0.001 --delta 1e-5 --sample-rate 1 --noise-multiplier 0.5",
      "privacy steps --target-epsilon 3 --delta 1e-5 --sample-rate 0.1 --noise-multiplier 0",
      "privacy epsilon --sample-rate 0.1 --noise-multiplier 1 --delta 1e-5",  // missing --steps
  };
  for (const char* args : bad) {
    CAPTURE(args);
    CommandResult r = RunDpnode(args);
    CHECK(r.exit_code != 0);
    CHECK(r.out.find("nan") == std::string::npos);
    CHECK(CountLines(r.err) == 1);
  }
}

}  // namespace
}  // namespace dpnode::testing
