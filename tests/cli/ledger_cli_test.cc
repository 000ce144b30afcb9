// `dpnode privacy ledger STATE_DIR`: the operator's view of what was spent.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "node/privacy/ledger.h"
#include "tests/cli/run_command.h"
#include "tests/temp_dir.h"

namespace dpnode::testing {
namespace {

namespace fs = std::filesystem;
using privacy::AccountantKind;

TEST_CASE("privacy ledger reports what the ledger charged and what is left") {
  TempDir dir;
  {
    Result<std::unique_ptr<privacy::Ledger>> l =
        privacy::Ledger::Create(dir.path(), {3.0, 1e-5, AccountantKind::kRdp, "cleveland"});
    REQUIRE(l.ok());
    REQUIRE((*l)->Reserve({0.08, 2.0, 32}).ok());
    REQUIRE((*l)->Reserve({0.08, 2.0, 32}).ok());
    REQUIRE((*l)->Reserve({0.05, 2.5, 10}).ok());
  }
  const privacy::History h = {{0.08, 2.0, 64}, {0.05, 2.5, 10}};
  const double expected = *privacy::ComputeEpsilon(AccountantKind::kRdp, h, 1e-5);
  const double expected_prv = *privacy::ComputeEpsilon(AccountantKind::kPrv, h, 1e-5);

  CommandResult r = RunDpnode("privacy ledger " + dir.path() + " --json");
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  REQUIRE(CountLines(r.out) == 1);
  nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["steps"] == 74);
  CHECK(j["accountant"] == "rdp");
  CHECK(j["label"] == "cleveland");
  CHECK(j["epsilon"].get<double>() == expected);
  CHECK(j["epsilon_prv"].get<double>() == expected_prv);
  CHECK(j["epsilon_remaining"].get<double>() == doctest::Approx(3.0 - expected));
  CHECK(j["charges"].size() == 2);
  CHECK(j["charges"][0]["steps"] == 64);
  // The steps left really are what still fits at the last rate.
  const int64_t left = j["steps_remaining_at_last_rate"].get<int64_t>();
  privacy::History more = h;
  more.push_back({0.05, 2.5, left});
  CHECK(*privacy::ComputeEpsilon(AccountantKind::kRdp, more, 1e-5) <= 3.0);
  more.back().steps += 1;
  CHECK(*privacy::ComputeEpsilon(AccountantKind::kRdp, more, 1e-5) > 3.0);

  CommandResult human = RunDpnode("privacy ledger " + dir.path());
  CHECK(human.exit_code == 0);
  CHECK(human.out.find("chain verified") != std::string::npos);
  CHECK(human.out.find("steps charged     74") != std::string::npos);
}

TEST_CASE("privacy ledger refuses a corrupt or missing ledger in one line") {
  TempDir dir;
  {
    Result<std::unique_ptr<privacy::Ledger>> l =
        privacy::Ledger::Create(dir.path(), {3.0, 1e-5, AccountantKind::kRdp, ""});
    REQUIRE(l.ok());
    REQUIRE((*l)->Reserve({0.08, 2.0, 32}).ok());
  }
  const std::string file = dir.path() + "/" + privacy::Ledger::kFileName;
  std::string bytes;
  {
    std::ifstream in(file);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  bytes[bytes.rfind("steps=32") + 6] = '1';  // rewrite history: 32 steps → 12
  {
    std::ofstream out(file, std::ios::trunc);
    out << bytes;
  }
  CommandResult r = RunDpnode("privacy ledger " + dir.path());
  CHECK(r.exit_code != 0);
  CHECK(CountLines(r.err) == 1);
  CHECK(r.err.find("corruption") == std::string::npos);  // the message, not the code name
  CHECK(r.err.find("record 1") != std::string::npos);

  CommandResult missing = RunDpnode("privacy ledger " + dir.path() + "/none");
  CHECK(missing.exit_code != 0);
  CHECK(CountLines(missing.err) == 1);
  CHECK(missing.err.find("no ledger") != std::string::npos);
}

}  // namespace
}  // namespace dpnode::testing
