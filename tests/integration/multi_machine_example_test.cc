// examples/multi-machine/ must stay a working setup: each site's file,
// with its absolute paths moved into a temp dir, passes `dpnode check`
// against a peers.txt of freshly generated keys, and checking writes no
// ledger.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/cli/run_command.h"
#include "tests/integration/util.h"
#include "tests/temp_dir.h"

namespace dpnode::testing {
namespace {

namespace fs = std::filesystem;

void ReplaceAll(std::string& s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

TEST_CASE("the multi-machine example's site files pass dpnode check") {
  const TempDir dir;
  const fs::path tmp = dir.path();
  const fs::path src = DPNODE_SOURCE_DIR;
  const fs::path example = src / "examples/multi-machine";
  const char* sites[] = {"cleveland", "hungarian", "switzerland", "va"};

  std::string peers;
  for (const char* s : sites) {
    fs::create_directories(tmp / s / "state");
    fs::create_directories(tmp / s / "log");
    CommandResult k = RunDpnode("keygen --out " + (tmp / s / "identity").string() + " --name " +
                                s + " --address " + s + ".consortium.example:7400");
    REQUIRE_MESSAGE(k.exit_code == 0, k.err);
    peers += k.out;
  }
  std::ofstream(tmp / "peers.txt") << peers;

  for (const char* s : sites) {
    const std::string site = s;
    CAPTURE(site);
    std::string config = ReadAll((example / (std::string(s) + ".toml")).string());
    REQUIRE(!config.empty());
    ReplaceAll(config, "/var/lib/dpnode/data/schema.toml", (src / "examples/heart/schema.toml").string());
    ReplaceAll(config, "/var/lib/dpnode/data/", (src / "examples/heart/data").string() + "/");
    ReplaceAll(config, "/var/lib/dpnode/", (tmp / s).string() + "/");
    ReplaceAll(config, "/var/log/dpnode/", (tmp / s / "log").string() + "/");
    ReplaceAll(config, "0.0.0.0:7400", "127.0.0.1:" + std::to_string(FreePort()));
    CHECK(config.find("/var/") == std::string::npos);
    const fs::path file = tmp / s / "dpnode.toml";
    std::ofstream(file) << config;

    CommandResult c = RunDpnode("check --config " + file.string() + " --peers " +
                                (tmp / "peers.txt").string());
    CHECK_MESSAGE(c.exit_code == 0, c.err);
    CHECK_FALSE(fs::exists(tmp / s / "state" / "budget.ledger"));
  }
}

}  // namespace
}  // namespace dpnode::testing
