// `dpnode privacy` as a user types it: the exact interface the issue fixes,
// JSON on one line, and one-line refusals with a non-zero exit.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/cli/run_command.h"
#include "tests/temp_dir.h"

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

namespace dpnode::testing {
namespace {

TEST_CASE("privacy plan: the example sites' training rows, within budget, PRV needing less noise") {
  const std::string sites = std::string(DPNODE_SOURCE_DIR) + "/examples/heart/sites/";
  const std::string files = sites + "cleveland.toml " + sites + "hungarian.toml " + sites +
                            "switzerland.toml " + sites + "va.toml";
  CommandResult rdp = RunDpnode("privacy plan --json " + files);
  CommandResult prv = RunDpnode("privacy plan --json --accountant prv " + files);
  REQUIRE_MESSAGE(rdp.exit_code == 0, rdp.err);
  REQUIRE_MESSAGE(prv.exit_code == 0, prv.err);
  REQUIRE(CountLines(rdp.out) == 4);
  REQUIRE(CountLines(prv.out) == 4);
  std::istringstream rdp_lines(rdp.out), prv_lines(prv.out);
  // FLamby's training split sizes per hospital.
  const int64_t records[] = {199, 172, 30, 85};
  for (int64_t n : records) {
    std::string a, b;
    std::getline(rdp_lines, a);
    std::getline(prv_lines, b);
    nlohmann::json r = nlohmann::json::parse(a), p = nlohmann::json::parse(b);
    CAPTURE(a);
    CHECK(r["records"] == n);
    CHECK(r["sample_rate"].get<double>() == doctest::Approx(16.0 / n));
    CHECK(r["steps"].get<int64_t>() == static_cast<int64_t>(std::ceil(20.0 * n / 16 - 1e-9)));
    CHECK(r["accountant"] == "rdp");
    CHECK(r["epsilon"].get<double>() <= 3.0);
    CHECK(p["accountant"] == "prv");
    CHECK(p["epsilon"].get<double>() <= 3.0);
    CHECK(p["noise_multiplier"].get<double>() < r["noise_multiplier"].get<double>());
    CHECK(p["epsilon_rdp"].get<double>() > 3.0);  // the PRV plan's sigma would not pass RDP
  }
}

TEST_CASE("privacy plan: a bad site configuration is refused naming the file and key") {
  const TempDir tmp;
  const std::string dir = tmp.path();
  const std::string file = dir + "/site.toml";
  {
    std::ofstream out(file);
    out << "[data]\ncsv = \"" << DPNODE_SOURCE_DIR << "/examples/heart/data/va.csv\"\n"
        << "schema = \"" << DPNODE_SOURCE_DIR << "/examples/heart/schema.toml\"\n"
        << "[privacy]\ntarget_epsilon = 3\ndelta = 1e-5\nexpected_batch_size = 16\nepochs = 20\n"
        << "noise_multipler = 1.0\n";  // misspelt
  }
  CommandResult r = RunDpnode("privacy plan " + file);
  CHECK(r.exit_code != 0);
  CHECK(CountLines(r.err) == 1);
  CHECK(r.err.find("site.toml") != std::string::npos);
  CHECK(r.err.find("noise_multipler") != std::string::npos);
}

}  // namespace
}  // namespace dpnode::testing
