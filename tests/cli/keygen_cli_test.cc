// `dpnode keygen` as a user runs it: the identity files with owner-only
// permissions, the peers.txt line on stdout, and one-line refusals.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/cli/run_command.h"
#include "tests/temp_dir.h"

namespace dpnode::testing {
namespace {

unsigned ModeOf(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

std::string FirstLine(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

TEST_CASE("keygen writes an owner-only identity and prints its peers.txt line") {
  TempDir tmp;
  const std::string dir = tmp.path() + "/id";
  CommandResult r = RunDpnode("keygen --out " + dir + " --name st-olav");
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  REQUIRE(CountLines(r.out) == 1);
  const std::string line = r.out.substr(0, r.out.size() - 1);
  // "st-olav ed25519:<44 base64> -"
  CHECK(line.rfind("st-olav ed25519:", 0) == 0);
  CHECK(line.size() == std::string("st-olav ").size() + 52 + 2);
  CHECK(line.substr(line.size() - 2) == " -");
  const std::string key = line.substr(8, 52);
  CHECK(FirstLine(dir + "/site.pub") == key);
  CHECK(ModeOf(dir) == 0700);
  CHECK(ModeOf(dir + "/site.key") == 0600);
  CHECK(r.err.find("fingerprint") != std::string::npos);

  // A second site gets a different key.
  CommandResult other = RunDpnode("keygen --out " + tmp.path() +
                                  "/other --name aarhus --address "
                                  "'[2001:db8::7]:7400'");
  REQUIRE_MESSAGE(other.exit_code == 0, other.err);
  CHECK(other.out.rfind("aarhus ed25519:", 0) == 0);
  CHECK(other.out.find(" [2001:db8::7]:7400\n") != std::string::npos);
  CHECK(other.out.find(key) == std::string::npos);

  // Never overwrites an identity.
  CommandResult again = RunDpnode("keygen --out " + dir + " --name st-olav");
  CHECK(again.exit_code == 1);
  CHECK(again.out.empty());
  CHECK(CountLines(again.err) == 1);
  CHECK(again.err.find("already exists") != std::string::npos);
  CHECK(FirstLine(dir + "/site.pub") == key);
}

TEST_CASE("keygen refuses bad names and addresses before writing anything") {
  TempDir tmp;
  const std::string dir = tmp.path() + "/id";
  for (const std::string args :
       {"--name 'bad name'", "--name ok --address host", "--name ok --address host:70000",
        "--name ok --address ::1:7400"}) {
    CAPTURE(args);
    CommandResult r = RunDpnode("keygen --out " + dir + " " + args);
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(CountLines(r.err) == 1);
    CHECK(r.err.rfind("dpnode: keygen: ", 0) == 0);
    CHECK_FALSE(std::filesystem::exists(dir));
  }
  CommandResult missing = RunDpnode("keygen --name x");
  CHECK(missing.exit_code != 0);
  CHECK(missing.err.find("--out") != std::string::npos);
  CommandResult help = RunDpnode("keygen --help");
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("peers.txt") != std::string::npos);
}

}  // namespace
}  // namespace dpnode::testing
