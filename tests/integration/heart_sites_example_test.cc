// examples/heart/sites/*.toml must stay complete daemon configurations, usable
// in place (examples/heart/README.md) and by examples/heart/demo.sh: each file,
// copied beside links to the real data and schema so that its relative paths
// are resolved as written, passes `dpnode check` with the peers.txt its
// network.peers names, and checking writes no ledger.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "tests/cli/run_command.h"
#include "tests/integration/util.h"
#include "tests/temp_dir.h"

namespace dpnode::testing {
namespace {

namespace fs = std::filesystem;

TEST_CASE("the heart example's site files are complete daemon configurations") {
  TempDir dir;
  const fs::path tmp = dir.path();
  const fs::path heart = fs::path(DPNODE_SOURCE_DIR) / "examples/heart";
  // The example's layout: sites/<site>.toml next to ../data and ../schema.toml.
  fs::create_directories(tmp / "sites");
  fs::create_directory_symlink(heart / "data", tmp / "data");
  fs::create_symlink(heart / "schema.toml", tmp / "schema.toml");
  const char* sites[] = {"cleveland", "hungarian", "switzerland", "va"};
  const int train_rows[] = {199, 172, 30, 85};  // FLamby's split: the CSV was found

  std::string peers;
  for (const char* s : sites) {
    fs::create_directories(tmp / "sites" / s);
    CommandResult k = RunDpnode("keygen --out " + (tmp / "sites" / s / "identity").string() +
                                " --name " + s + " --address 127.0.0.1:7400");
    REQUIRE_MESSAGE(k.exit_code == 0, k.err);
    peers += k.out;
  }
  std::ofstream(tmp / "sites/peers.txt") << peers;

  for (size_t i = 0; i < 4; ++i) {
    const std::string site = sites[i];
    CAPTURE(site);
    std::string config = ReadAll((heart / "sites" / (site + ".toml")).string());
    // Only the port changes: the files' fixed 7401-7404 may be taken on a
    // machine that runs several test suites at once.
    const std::regex listen("listen = \"127\\.0\\.0\\.1:74\\d\\d\"");
    REQUIRE(std::regex_search(config, listen));
    config = std::regex_replace(config, listen,
                                "listen = \"127.0.0.1:" + std::to_string(FreePort()) + "\"");
    const fs::path file = tmp / "sites" / (site + ".toml");
    std::ofstream(file) << config;

    // No --peers: network.peers must name the file, relative to the config.
    CommandResult c = RunDpnode("check --config " + file.string());
    CHECK_MESSAGE(c.exit_code == 0, c.err);
    const std::string valid = "site " + site + ": configuration, identity, peers, data and plan";
    CHECK(c.out.find(valid + " are valid") != std::string::npos);
    CHECK(c.out.find("4 pinned sites") != std::string::npos);
    CHECK(c.out.find(std::to_string(train_rows[i]) + " train rows") != std::string::npos);
    CHECK(c.out.find((tmp / "sites" / site / "state").string()) != std::string::npos);
    CHECK_FALSE(fs::exists(tmp / "sites" / site / "state" / "budget.ledger"));
  }
}

}  // namespace
}  // namespace dpnode::testing
