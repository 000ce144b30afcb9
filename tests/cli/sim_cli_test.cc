// `dpnode sim` as a user runs it on a shipped experiment: the outputs, their
// determinism (only summary.json's wall_time_s may differ), and a refusal.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/cli/run_command.h"
#include "tests/temp_dir.h"

namespace dpnode::testing {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_CASE("dpnode sim writes its outputs, reproducibly, with the wall time in summary.json") {
  const TempDir tmp;
  const std::string experiment = std::string(DPNODE_SOURCE_DIR) + "/examples/experiments/heart_paper.toml";
  CommandResult a = RunDpnode("sim " + experiment + " --out " + (tmp / "a"));
  INFO(a.err);
  REQUIRE(a.exit_code == 0);
  CHECK(a.out.find("wrote ") != std::string::npos);
  CommandResult b = RunDpnode("sim " + experiment + " --out " + (tmp / "b"));
  REQUIRE(b.exit_code == 0);
  for (const char* f : {"metrics.csv", "accuracy_vs_time.svg", "accuracy_vs_bytes.svg",
                        "consensus_distance.svg", "epsilon_spent.svg"}) {
    CAPTURE(f);
    const std::string fa = Slurp(tmp / (std::string("a/") + f));
    CHECK(fa.size() > 100);
    CHECK(fa == Slurp(tmp / (std::string("b/") + f)));
  }
  nlohmann::json sa = nlohmann::json::parse(Slurp(tmp / "a/summary.json"));
  nlohmann::json sb = nlohmann::json::parse(Slurp(tmp / "b/summary.json"));
  REQUIRE(sa["wall_time_s"].is_number());
  CHECK(sa["wall_time_s"].get<double>() > 0);
  CHECK(sa["wall_time_s"].get<double>() < 600);
  sa.erase("wall_time_s");
  sb.erase("wall_time_s");
  CHECK(sa == sb);
  CHECK(sa["noise"] == "seeded (NOT private)");
  CHECK(sa["arms"].size() == 7);
  const nlohmann::json info = nlohmann::json::parse(Slurp(tmp / "a/run_info.json"));
  CHECK(info["events_processed"] == sa["events_processed"]);
  // A different seed gives different metrics.
  CommandResult c = RunDpnode("sim " + experiment + " --seed 2 --out " + (tmp / "c"));
  REQUIRE(c.exit_code == 0);
  CHECK(Slurp(tmp / "c/metrics.csv") != Slurp(tmp / "a/metrics.csv"));
}

TEST_CASE("dpnode sim refuses a bad experiment file naming the key") {
  const TempDir tmp;
  std::ofstream(tmp / "bad.toml") << "name = \"x\"\n[data]\nschema = \"s.toml\"\ncsv = \"d.csv\"\n"
                                     "split = \"stripes\"\n";
  CommandResult r = RunDpnode("sim " + (tmp / "bad.toml") + " --out " + (tmp / "out"));
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("data.split") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(tmp / "out/summary.json"));
}

}  // namespace
}  // namespace dpnode::testing
