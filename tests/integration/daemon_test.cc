// The dpnode daemon as sites run it: real `dpnode` processes on loopback,
// each with its own identity, heart-disease data and ledger (docs/daemon.md).
// Every test builds its consortium in a fresh temp dir; runs are kept short
// (few epochs, or 20 where the model is compared with local training; fast
// gossip) so the file stays well under a minute.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "node/learn/checkpoint.h"
#include "tests/integration/util.h"
#include "tests/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using dpnode::testing::FreePort;
using dpnode::testing::ReadAll;
using dpnode::testing::TempDir;

const std::string kDpnode = std::string(DPNODE_BINARY_DIR) + "/dpnode";
const std::string kHeart = std::string(DPNODE_SOURCE_DIR) + "/examples/heart";

// Starts `args` in `cwd` with stdout+stderr to `log` (stderr to `err_log`
// instead when given); returns the pid.
pid_t Spawn(const std::vector<std::string>& args, const std::string& cwd, const std::string& log,
            const std::string& err_log = "") {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) ::_exit(126);
    ::dup2(fd, 1);
    if (err_log.empty()) {
      ::dup2(fd, 2);
    } else {
      const int efd = ::open(err_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (efd < 0) ::_exit(126);
      ::dup2(efd, 2);
    }
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// The exit code, or -1 (and the process killed) after `timeout`.
int Wait(pid_t pid, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

int RunSync(const std::vector<std::string>& args, const std::string& cwd, const std::string& log) {
  return Wait(Spawn(args, cwd, log), std::chrono::seconds(60));
}


struct Site {
  std::string name;
  std::string csv;  // heart data file stem
  uint16_t port = 0;
  std::string dir;
  std::string peer_line;
};

// Creates `dir/<name>/identity` with keygen and returns the peers.txt line.
std::string Keygen(const std::string& dir, const std::string& name, uint16_t port) {
  const std::string log = dir + "/keygen-" + name + ".out";
  fs::create_directories(dir + "/" + name);
  REQUIRE(RunSync({kDpnode, "keygen", "--out", dir + "/" + name + "/identity", "--name", name,
                   "--address", "127.0.0.1:" + std::to_string(port)},
                  dir, log) == 0);
  std::istringstream out(ReadAll(log));
  std::string line;
  while (std::getline(out, line)) {
    if (line.rfind(name + " ", 0) == 0) return line;
  }
  FAIL("keygen printed no peers line for " << name);
  return "";
}

// A short private run: few epochs, fast gossip and settling.
void WriteConfig(const Site& s, const std::string& extra_network = "",
                 const std::string& extra_run = "", double epochs = 2,
                 double mixing_timeout_s = 15, double linger_s = 1) {
  std::ofstream f(s.dir + "/dpnode.toml");
  f << "[site]\nname = \"" << s.name << "\"\n"
    << "[data]\ncsv = \"" << kHeart << "/data/" << s.csv << ".csv\"\nschema = \"" << kHeart
    << "/schema.toml\"\n"
    << "[privacy]\ntarget_epsilon = 3.0\ndelta = 1e-5\naccountant = \"rdp\"\n"
    << "expected_batch_size = 16\nepochs = " << epochs << "\nclip_norm = 1.0\n"
    << "[train]\nstate_dir = \"state\"\nseed = 1\nledger_block_steps = 4\n"
    << "[network]\nlisten = \"127.0.0.1:" << s.port << "\"\nconsortium_id = \"itest\"\n"
    << "gossip_interval_ms = 20\nstep_interval_ms = 5\n" << extra_network
    << "[run]\nprogress_interval_s = 0.5\ncheckpoint_interval_s = 0.5\nlinger_s = " << linger_s
    << "\n"
    << "mixing_timeout_s = " << mixing_timeout_s << "\nsettle_window = 5\n" << extra_run;
}

// Replaces the first `from` in the site's dpnode.toml by `to` (a key WriteConfig
// writes with another value).
void EditConfig(const Site& s, const std::string& from, const std::string& to) {
  const std::string path = s.dir + "/dpnode.toml";
  std::string text = ReadAll(path);
  const size_t at = text.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, path << " has no '" << from << "'");
  text.replace(at, from.size(), to);
  std::ofstream(path) << text;
}

std::vector<Site> MakeSites(const std::string& root, const std::vector<std::string>& csvs) {
  std::vector<Site> sites;
  for (const std::string& c : csvs) {
    Site s;
    s.name = c;
    s.csv = c;
    s.port = FreePort();
    s.dir = root + "/" + c;
    s.peer_line = Keygen(root, c, s.port);
    sites.push_back(s);
  }
  return sites;
}

void WritePeers(const std::string& path, const std::vector<Site>& sites) {
  std::ofstream f(path);
  for (const Site& s : sites) f << s.peer_line << "\n";
}

// Reads every float32 array of an uncompressed .npz, straight from the zip
// and .npy format specifications (not through our writer's code).
std::map<std::string, std::vector<float>> ReadNpz(const std::string& path) {
  const std::string z = ReadAll(path);
  std::map<std::string, std::vector<float>> out;
  auto u16 = [&](size_t at) {
    return static_cast<uint32_t>(static_cast<uint8_t>(z[at])) |
           static_cast<uint32_t>(static_cast<uint8_t>(z[at + 1])) << 8;
  };
  auto u32 = [&](size_t at) { return u16(at) | u16(at + 2) << 16; };
  size_t at = 0;
  while (at + 30 <= z.size() && u32(at) == 0x04034b50) {
    REQUIRE(u16(at + 8) == 0);  // stored
    const uint32_t size = u32(at + 18);
    const uint32_t name_len = u16(at + 26);
    const uint32_t extra_len = u16(at + 28);
    const std::string name = z.substr(at + 30, name_len);
    const std::string npy = z.substr(at + 30 + name_len + extra_len, size);
    REQUIRE(npy.compare(0, 6, "\x93NUMPY") == 0);
    const size_t header_len = static_cast<uint8_t>(npy[8]) | static_cast<uint8_t>(npy[9]) << 8;
    const std::string header = npy.substr(10, header_len);
    REQUIRE(header.find("'<f4'") != std::string::npos);
    const size_t data_at = 10 + header_len;
    REQUIRE((data_at % 64) == 0);
    std::vector<float> values((npy.size() - data_at) / 4);
    std::memcpy(values.data(), npy.data() + data_at, values.size() * 4);
    REQUIRE(name.size() > 4);
    out[name.substr(0, name.size() - 4)] = values;
    at += 30 + name_len + extra_len + size;
  }
  return out;
}

// The whole response to one plain TCP connection to 127.0.0.1:port ("" on failure).
std::string HttpGet(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
    if (::write(fd, req, sizeof(req) - 1) > 0) {
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

nlohmann::json ReadJson(const std::string& path) { return nlohmann::json::parse(ReadAll(path)); }

// One `dpnode ... --json` command: run in `cwd`, stdout to `<cwd>/<tag>.json`
// and stderr to `<cwd>/<tag>.err`.
struct JsonCommand {
  std::vector<std::string> args;
  std::string cwd;
  std::string tag;
};

// Runs the commands side by side (each spends most of a second starting up)
// and parses their stdout, in order; a failure shows that command's stderr.
std::vector<nlohmann::json> RunJsonAll(const std::vector<JsonCommand>& commands) {
  std::vector<pid_t> pids;
  for (const JsonCommand& c : commands) {
    const std::string out = c.cwd + "/" + c.tag;
    pids.push_back(Spawn(c.args, c.cwd, out + ".json", out + ".err"));
  }
  std::vector<int> codes;
  for (const pid_t pid : pids) codes.push_back(Wait(pid, std::chrono::seconds(60)));
  std::vector<nlohmann::json> out;
  for (size_t i = 0; i < commands.size(); ++i) {
    const JsonCommand& c = commands[i];
    INFO(c.tag << " in " << c.cwd << " stderr:\n" << ReadAll(c.cwd + "/" + c.tag + ".err"));
    REQUIRE(codes[i] == 0);
    out.push_back(nlohmann::json::parse(ReadAll(c.cwd + "/" + c.tag + ".json")));
  }
  return out;
}

}  // namespace

// The same peers.txt line with its address replaced by '-'.
std::string WithoutAddress(const std::string& line) {
  return line.substr(0, line.rfind(' ')) + " -";
}

TEST_CASE("four daemons on loopback converge to one model within budget, beat local-only training and discover an address-less site") {
  TempDir tmp;
  std::vector<Site> sites = MakeSites(tmp.path(), {"cleveland", "hungarian", "switzerland", "va"});
  // va is listed without an address everywhere; va itself knows only
  // cleveland's address. It must find the others through signed peer records,
  // and they must learn its address the same way.
  {
    std::ofstream f(tmp.path() + "/peers.txt");
    for (size_t i = 0; i < 3; ++i) f << sites[i].peer_line << "\n";
    f << WithoutAddress(sites[3].peer_line) << "\n";
    std::ofstream g(tmp.path() + "/va-peers.txt");
    g << sites[0].peer_line << "\n"
      << WithoutAddress(sites[1].peer_line) << "\n"
      << WithoutAddress(sites[2].peer_line) << "\n"
      << WithoutAddress(sites[3].peer_line) << "\n";
  }
  std::vector<pid_t> pids;
  for (const Site& s : sites) {
    // Each site lingers 5 s after settling: the runs are short, and a site
    // that learns an address late (a refused first dial backs off about 1 s)
    // must still find the others up. 20 epochs, as the bundled site configs:
    // the model must be trained enough to compare it with local training.
    // No site trains before it has a session with all three others (else a
    // site up early spends its budget alone; under load that cost the shared
    // model its accuracy margin once), 30 s at most.
    WriteConfig(s, "wait_for_peers = 3\nwait_for_peers_timeout_s = 30\n", "", 20, 15, 5);
    // The bare form, as a site types it: ./dpnode.toml.
    const std::string peers = s.name == "va" ? "../va-peers.txt" : "../peers.txt";
    pids.push_back(Spawn({kDpnode, "--peers", peers}, s.dir, s.dir + "/run.log"));
  }
  for (size_t i = 0; i < pids.size(); ++i) {
    INFO(sites[i].name << " log:\n" << ReadAll(sites[i].dir + "/run.log"));
    CHECK(Wait(pids[i], std::chrono::seconds(60)) == 0);
  }
  std::vector<std::map<std::string, std::vector<float>>> models;
  for (const Site& s : sites) {
    models.push_back(ReadNpz(s.dir + "/state/model.npz"));
    const nlohmann::json meta = ReadJson(s.dir + "/state/model.json");
    CHECK(meta["epsilon_spent"].get<double>() > 0.5);
    CHECK(meta["epsilon_spent"].get<double>() <= 3.0 + 1e-9);
    CHECK(meta["ledger_steps"].get<int64_t>() > 0);
    CHECK(meta["settled"].get<bool>());
    CHECK(meta["noise"] == "csprng");  // the default: real DP noise, and the export says so
    const nlohmann::json status = ReadJson(s.dir + "/state/status.json");
    CHECK(status["phase"] == "exited");
  }
  REQUIRE(models[0].count("layer0.weight") == 1);
  // Tolerance: every parameter within 1e-3 of the four sites' mean.
  double worst = 0;
  for (const auto& [name, values] : models[0]) {
    for (size_t k = 0; k < values.size(); ++k) {
      double mean = 0;
      for (const auto& m : models) mean += m.at(name)[k];
      mean /= static_cast<double>(models.size());
      for (const auto& m : models) worst = std::max(worst, std::abs(m.at(name)[k] - mean));
    }
  }
  MESSAGE("largest parameter deviation from the mean: " << worst);
  CHECK(worst < 1e-3);
  // va reached all three, and hungarian (which had no address for va) did too.
  // The Node logs each session it completes (Hello accepted); a progress
  // line showing "3/3" is only a sample and may fall between sessions.
  const std::string va_log = ReadAll(sites[3].dir + "/run.log");
  INFO("va log:\n" << va_log);
  for (const std::string other : {"cleveland", "hungarian", "switzerland"}) {
    CAPTURE(other);
    CHECK(va_log.find("session with " + other) != std::string::npos);
  }
  CHECK(ReadAll(sites[1].dir + "/run.log").find("session with va") != std::string::npos);
  // Each site waited for the other three before its first step.
  for (const Site& s : sites) {
    CAPTURE(s.name);
    CHECK(ReadAll(s.dir + "/run.log").find("3 peer(s) connected: training starts") !=
          std::string::npos);
  }

  // The point of joining: each site trains alone (`dpnode train`, the same
  // configuration and budget, its own ledger) and every model is scored on the
  // pooled test rows of all four sites, as examples/heart/demo.sh does.
  std::vector<JsonCommand> train;
  for (const Site& s : sites) {
    train.push_back({{kDpnode, "train", "--json", "--config", "dpnode.toml", "--state-dir",
                      "local-state", "--out", "local.dpm"},
                     s.dir,
                     "local-train"});
  }
  for (const nlohmann::json& local : RunJsonAll(train)) {
    CHECK(local["epsilon_spent"].get<double>() <= 3.0 + 1e-9);
    CHECK(local["noise"] == "csprng");
  }
  std::vector<JsonCommand> eval;
  for (const Site& s : sites) {
    for (const std::string model : {"state/model.dpm", "local.dpm"}) {
      JsonCommand c{{kDpnode, "eval", "--json", "--model", model}, s.dir,
                    model == "local.dpm" ? "pooled-local" : "pooled-shared"};
      for (const Site& t : sites) {
        c.args.push_back("--config");
        c.args.push_back(t.dir + "/dpnode.toml");
      }
      eval.push_back(c);
    }
  }
  const std::vector<nlohmann::json> scores = RunJsonAll(eval);
  double shared_acc = 0, shared_auroc = 0, local_acc = 0, local_auroc = 0;
  for (size_t i = 0; i < sites.size(); ++i) {
    const nlohmann::json& shared = scores[2 * i];
    const nlohmann::json& local = scores[2 * i + 1];
    CHECK(shared["rows"] == local["rows"]);
    CHECK(shared["test_sites"].size() == 4);
    MESSAGE(sites[i].name << " pooled test: shared accuracy " << shared["accuracy"] << " AUROC "
                          << shared["auroc"] << ", local accuracy " << local["accuracy"]
                          << " AUROC " << local["auroc"]);
    shared_acc += shared["accuracy"].get<double>() / 4;
    shared_auroc += shared["auroc"].get<double>() / 4;
    local_acc += local["accuracy"].get<double>() / 4;
    local_auroc += local["auroc"].get<double>() / 4;
  }
  MESSAGE("pooled test means: shared accuracy " << shared_acc << " AUROC " << shared_auroc
                                                << ", local accuracy " << local_acc << " AUROC "
                                                << local_auroc);
  // Primary metric: accuracy. Over runs the local-only mean varies half as
  // much in accuracy as in AUROC (sd 0.025 against 0.051): in accuracy the
  // small sites' local models sit near the pooled base rate (0.516), while
  // their AUROC swings between 0.31 and 0.87.
  // Measured 2026-11-28, 24 runs of this case at 20 epochs (2 shared cores,
  // load 4-8, some runs two at a time): shared accuracy 0.740-0.827 (mean
  // 0.781, sd 0.021; AUROC 0.837-0.900), local-only mean 0.590-0.685 (mean
  // 0.626; AUROC 0.595-0.773), accuracy margin 0.101-0.213 (mean 0.155, sd
  // 0.031), AUROC margin 0.102-0.259 (mean 0.187, sd 0.049). At 2 epochs (28
  // runs) the margin was similar but the barely trained consensus once scored
  // accuracy 0.575 at AUROC 0.884 (its threshold off), hence 20 epochs, as in
  // the bundled site configs.
  // If gossip did nothing useful, the "shared" figures would be one more draw
  // of local models (resampling the 24 runs' local models): that beats the
  // local mean by 0.04 in 17% of draws, and also reaches 0.70 in 0.6%. The
  // real margin is 3.7 sd above 0.04, its accuracy 3.8 sd above 0.70 and its
  // AUROC margin 3.8 sd above 0.
  CHECK(shared_acc > local_acc + 0.04);
  CHECK(shared_acc > 0.70);
  CHECK(shared_auroc > local_auroc);
}

TEST_CASE("a key not in the others' peers.txt is refused") {
  TempDir tmp;
  std::vector<Site> sites = MakeSites(tmp.path(), {"cleveland", "va"});
  // cleveland pins only itself: va's key is unknown to it.
  WritePeers(tmp.path() + "/pinned.txt", {sites[0]});
  // va believes it belongs and knows cleveland's address.
  WritePeers(tmp.path() + "/intruder.txt", sites);
  WriteConfig(sites[0], "", "max_steps = 5\n", 2, 3);
  WriteConfig(sites[1], "", "max_steps = 5\n", 2, 3);
  const pid_t a = Spawn({kDpnode, "run", "--peers", "../pinned.txt"}, sites[0].dir,
                        sites[0].dir + "/run.log");
  const pid_t b = Spawn({kDpnode, "run", "--config", "dpnode.toml", "--peers", "../intruder.txt"},
                        sites[1].dir, sites[1].dir + "/run.log");
  const int ra = Wait(a, std::chrono::seconds(40));
  const int rb = Wait(b, std::chrono::seconds(40));
  const std::string log_a = ReadAll(sites[0].dir + "/run.log");
  const std::string log_b = ReadAll(sites[1].dir + "/run.log");
  INFO("cleveland:\n" << log_a << "\nva:\n" << log_b);
  CHECK(ra == 0);
  CHECK(rb == 0);
  // Neither ever had a session with the other.
  CHECK(log_a.find("peers 1/") == std::string::npos);
  CHECK(log_b.find("peers 1/") == std::string::npos);
  // The refusing side says why; the intruder only sees the connection closed.
  CHECK(log_a.find("key is not pinned in peers.txt") != std::string::npos);
  CHECK(log_b.find("dialing cleveland failed") != std::string::npos);
  CHECK(ReadJson(sites[1].dir + "/state/model.json")["settled"] == false);
}

TEST_CASE("a site of another consortium is refused with a clear message") {
  TempDir tmp;
  std::vector<Site> sites = MakeSites(tmp.path(), {"cleveland", "va"});
  WritePeers(tmp.path() + "/peers.txt", sites);
  WriteConfig(sites[0], "", "max_steps = 3\n", 2, 2);
  WriteConfig(sites[1], "", "max_steps = 3\n", 2, 2);
  // va was configured for another consortium.
  EditConfig(sites[1], "consortium_id = \"itest\"", "consortium_id = \"other-study\"");
  const pid_t a = Spawn({kDpnode, "--peers", "../peers.txt"}, sites[0].dir, sites[0].dir + "/run.log");
  const pid_t b = Spawn({kDpnode, "--peers", "../peers.txt"}, sites[1].dir, sites[1].dir + "/run.log");
  CHECK(Wait(a, std::chrono::seconds(40)) == 0);
  CHECK(Wait(b, std::chrono::seconds(40)) == 0);
  const std::string logs = ReadAll(sites[0].dir + "/run.log") + ReadAll(sites[1].dir + "/run.log");
  INFO(logs);
  CHECK(logs.find("peers 1/1 connected") == std::string::npos);
  CHECK(logs.find("wrong consortium id") != std::string::npos);
}

TEST_CASE("a site training another model is refused naming both fingerprints") {
  TempDir tmp;
  std::vector<Site> sites = MakeSites(tmp.path(), {"cleveland", "va"});
  WritePeers(tmp.path() + "/peers.txt", sites);
  WriteConfig(sites[0], "", "max_steps = 3\n", 2, 2);
  WriteConfig(sites[1], "", "max_steps = 3\n", 2, 2);
  // va trains an MLP: another model fingerprint.
  std::ofstream(sites[1].dir + "/dpnode.toml", std::ios::app) << "[model]\nkind = \"mlp\"\nhidden = [4]\n";
  const pid_t a = Spawn({kDpnode, "--peers", "../peers.txt"}, sites[0].dir, sites[0].dir + "/run.log");
  const pid_t b = Spawn({kDpnode, "--peers", "../peers.txt"}, sites[1].dir, sites[1].dir + "/run.log");
  CHECK(Wait(a, std::chrono::seconds(40)) == 0);
  CHECK(Wait(b, std::chrono::seconds(40)) == 0);
  const std::string log_a = ReadAll(sites[0].dir + "/run.log");
  const std::string log_b = ReadAll(sites[1].dir + "/run.log");
  INFO(log_a << "\n" << log_b);
  CHECK(log_a.find("trains model fingerprint") != std::string::npos);
  CHECK(log_b.find("trains model fingerprint") != std::string::npos);
  CHECK(log_a.find("peers 1/1 connected") == std::string::npos);
  CHECK(log_b.find("peers 1/1 connected") == std::string::npos);
}

TEST_CASE("bad configuration: the key is named, exit non-zero, no ledger written") {
  TempDir tmp;
  std::vector<Site> sites = MakeSites(tmp.path(), {"cleveland"});
  WritePeers(tmp.path() + "/peers.txt", sites);
  const Site& s = sites[0];
  struct Case {
    std::string network, run, expect;
  };
  const std::vector<Case> cases = {
      {"bogus_key = 1\n", "", "unknown key 'network.bogus_key'"},
      {"", "exit_when_dun = true\n", "unknown key 'run.exit_when_dun'"},
      {"", "[site2]\nname = \"x\"\n", "unknown key 'site2'"},
      {"policy = \"gossip-harder\"\n", "", "network.policy"},
      {"", "max_steps = \"many\"\n", "run.max_steps must be an integer"},
      {"announce = \"no-port\"\n", "", "network.announce"},
      {"wait_for_peers = -1\n", "", "network.wait_for_peers = -1 is outside"},
      {"", "stderr_level = \"loud\"\n", "run.stderr_level must be"},
      {"wait_for_peers_timeout_s = \"soon\"\n", "", "network.wait_for_peers_timeout_s must be a number"},
  };
  for (const Case& c : cases) {
    WriteConfig(s, c.network, c.run);
    const std::string log = s.dir + "/bad.log";
    const int rc = RunSync({kDpnode, "run", "--peers", "../peers.txt"}, s.dir, log);
    const std::string out = ReadAll(log);
    INFO(out);
    CHECK(rc != 0);
    CHECK(out.find(c.expect) != std::string::npos);
    CHECK(out.find("dpnode.toml:") != std::string::npos);  // file:line
    CHECK_FALSE(fs::exists(s.dir + "/state/budget.ledger"));
    // `dpnode check` refuses it the same way.
    CHECK(RunSync({kDpnode, "check", "--peers", "../peers.txt"}, s.dir, s.dir + "/check.log") != 0);
    CHECK(ReadAll(s.dir + "/check.log").find(c.expect) != std::string::npos);
  }
  {  // A listen address already in use is refused before the ledger is touched.
    WriteConfig(s);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(s.port);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    REQUIRE(::listen(fd, 1) == 0);
    const int rc = RunSync({kDpnode, "run", "--peers", "../peers.txt"}, s.dir, s.dir + "/busy.log");
    ::close(fd);
    const std::string out = ReadAll(s.dir + "/busy.log");
    INFO(out);
    CHECK(rc != 0);
    CHECK(out.find("network.listen 127.0.0.1:" + std::to_string(s.port) + " cannot be bound") !=
          std::string::npos);
    CHECK_FALSE(fs::exists(s.dir + "/state/budget.ledger"));
  }
  // A good configuration passes `dpnode check`, which writes nothing.
  WriteConfig(s);
  CHECK(RunSync({kDpnode, "check", "--peers", "../peers.txt"}, s.dir, s.dir + "/check.log") == 0);
  CHECK(ReadAll(s.dir + "/check.log").find("are valid") != std::string::npos);
  CHECK_FALSE(fs::exists(s.dir + "/state"));
  // A site key that others can read is refused before anything is written.
  WriteConfig(s);
  REQUIRE(::chmod((s.dir + "/identity/site.key").c_str(), 0644) == 0);
  const int rc = RunSync({kDpnode, "run", "--peers", "../peers.txt"}, s.dir, s.dir + "/perm.log");
  const std::string out = ReadAll(s.dir + "/perm.log");
  INFO(out);
  CHECK(rc != 0);
  CHECK(out.find("chmod 600") != std::string::npos);
  CHECK_FALSE(fs::exists(s.dir + "/state/budget.ledger"));
}

TEST_CASE("SIGTERM checkpoints and exports and a restart with the budget spent trains no step") {
  TempDir tmp;
  std::vector<Site> sites = MakeSites(tmp.path(), {"switzerland"});
  WritePeers(tmp.path() + "/peers.txt", sites);
  const Site& s = sites[0];
  // Slow steps so that the signal arrives mid-training.
  const uint16_t metrics_port = FreePort();
  const std::string log_keys = "log_file = \"daemon.log\"\nlog_max_bytes = 4096\nlog_files = 2\n" +
                               std::string("metrics_listen = \"127.0.0.1:") +
                               std::to_string(metrics_port) + "\"\n";
  WriteConfig(s, "", log_keys, 20, 1);
  // Slow steps for the first run only.
  EditConfig(s, "step_interval_ms = 5", "step_interval_ms = 100");
  const pid_t pid = Spawn({kDpnode, "--peers", "../peers.txt"}, s.dir, s.dir + "/run1.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int64_t steps_seen = 0;
  while (std::chrono::steady_clock::now() < deadline && steps_seen < 5) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!fs::exists(s.dir + "/state/status.json")) continue;
    steps_seen = ReadJson(s.dir + "/state/status.json")["steps_done"].get<int64_t>();
  }
  REQUIRE(steps_seen >= 5);
  const std::string scrape = HttpGet(metrics_port);
  INFO(scrape);
  CHECK(scrape.rfind("HTTP/1.0 200 OK", 0) == 0);
  CHECK(scrape.find("dpnode_steps_done{site=\"switzerland\"}") != std::string::npos);
  CHECK(scrape.find("dpnode_epsilon_budget{site=\"switzerland\"} 3") != std::string::npos);
  ::kill(pid, SIGTERM);
  CHECK(Wait(pid, std::chrono::seconds(20)) == 0);
  const std::string log1 = ReadAll(s.dir + "/run1.log");
  INFO(log1);
  CHECK(log1.find("SIGTERM") != std::string::npos);
  CHECK(fs::exists(s.dir + "/state/checkpoint.ckpt"));
  const nlohmann::json first = ReadJson(s.dir + "/state/model.json");
  const int64_t ledger_after_first = first["ledger_steps"].get<int64_t>();
  CHECK(ledger_after_first >= first["local_steps"].get<int64_t>());
  CHECK(first["local_steps"].get<int64_t>() < first["steps_planned"].get<int64_t>());

  // Resume and finish the plan, at full speed.
  WriteConfig(s, "", log_keys, 20, 1);
  REQUIRE(RunSync({kDpnode, "--peers", "../peers.txt"}, s.dir, s.dir + "/run2.log") == 0);
  const std::string log2 = ReadAll(s.dir + "/run2.log");
  INFO(log2);
  CHECK(log2.find("resumed from") != std::string::npos);
  const nlohmann::json second = ReadJson(s.dir + "/state/model.json");
  CHECK(second["ledger_steps"].get<int64_t>() >= second["steps_planned"].get<int64_t>());
  CHECK(second["epsilon_spent"].get<double>() > first["epsilon_spent"].get<double>());

  // Budget spent: a third start charges nothing and still exports the model.
  // With run.stderr_level = "warn", stderr stays quiet while the file still
  // gets the info lines.
  WriteConfig(s, "", log_keys + "stderr_level = \"warn\"\n", 20, 1);
  REQUIRE(RunSync({kDpnode, "--peers", "../peers.txt"}, s.dir, s.dir + "/run3.log") == 0);
  const nlohmann::json third = ReadJson(s.dir + "/state/model.json");
  CHECK(third["ledger_steps"] == second["ledger_steps"]);
  CHECK(third["epsilon_spent"] == second["epsilon_spent"]);
  CHECK(fs::exists(s.dir + "/state/model.npz"));
  const std::string log3 = ReadAll(s.dir + "/run3.log");
  CHECK(log3.find(" info ") == std::string::npos);
  CHECK(log3.find("exported") == std::string::npos);
  // The file got run 3's start line (only run 3 saw the final ledger count).
  const std::string logs = ReadAll(s.dir + "/daemon.1.log") + ReadAll(s.dir + "/daemon.log");
  CHECK(logs.find("ledger holds " + std::to_string(second["ledger_steps"].get<int64_t>()) +
                  " steps") != std::string::npos);

  // run.log_file: a rotated, size-capped copy of the log.
  CHECK(fs::exists(s.dir + "/daemon.1.log"));
  CHECK_FALSE(fs::exists(s.dir + "/daemon.3.log"));
  for (const char* f : {"/daemon.log", "/daemon.1.log"}) {
    if (fs::exists(s.dir + f)) CHECK(fs::file_size(s.dir + f) <= 4096);
  }

}

TEST_CASE("kill -9 mid-training: the restart resumes, the ledger keeps every step, the others finish") {
  TempDir tmp;
  std::vector<Site> sites = MakeSites(tmp.path(), {"cleveland", "hungarian", "va"});
  WritePeers(tmp.path() + "/peers.txt", sites);
  // Slow steps (~60 at 40 ms) so the kill lands mid-training.
  std::vector<pid_t> pids;
  for (const Site& s : sites) {
    WriteConfig(s, "", "", 5);
    EditConfig(s, "step_interval_ms = 5", "step_interval_ms = 40");
    pids.push_back(Spawn({kDpnode, "--peers", "../peers.txt"}, s.dir, s.dir + "/run.log"));
  }
  const Site& victim = sites[1];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int64_t ledger_before_kill = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!fs::exists(victim.dir + "/state/status.json") ||
        !fs::exists(victim.dir + "/state/checkpoint.ckpt")) {
      continue;
    }
    const nlohmann::json st = ReadJson(victim.dir + "/state/status.json");
    if (st["steps_done"].get<int64_t>() >= 10) {
      ledger_before_kill = st["ledger_steps"].get<int64_t>();
      break;
    }
  }
  REQUIRE(ledger_before_kill >= 10);
  // Two more checkpoint intervals (0.5 s): the checkpoint on disk then holds
  // steps, so its momentum cannot be zero (checked at the end).
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  ::kill(pids[1], SIGKILL);
  CHECK(Wait(pids[1], std::chrono::seconds(5)) == 128 + SIGKILL);
  // The checkpoint the restart will resume from: a periodic one (the process
  // never exited cleanly). Kept aside to check its optimiser state below.
  const std::string killed_ckpt = tmp.path() + "/killed.ckpt";
  fs::copy_file(victim.dir + "/state/checkpoint.ckpt", killed_ckpt);
  CHECK_FALSE(fs::exists(victim.dir + "/state/model.json"));  // no export: it died
  pids[1] = Spawn({kDpnode, "--peers", "../peers.txt"}, victim.dir, victim.dir + "/run2.log");
  for (size_t i = 0; i < pids.size(); ++i) {
    INFO(sites[i].name);
    CHECK(Wait(pids[i], std::chrono::seconds(60)) == 0);
  }
  const std::string log2 = ReadAll(victim.dir + "/run2.log");
  INFO(log2);
  CHECK(log2.find("resumed from") != std::string::npos);
  const nlohmann::json meta = ReadJson(victim.dir + "/state/model.json");
  // Every step charged before the kill is still in the ledger, and the
  // restart charged only what the plan had left.
  CHECK(meta["ledger_steps"].get<int64_t>() >= ledger_before_kill);
  CHECK(meta["ledger_steps"].get<int64_t>() >= meta["steps_planned"].get<int64_t>());
  CHECK(meta["local_steps"].get<int64_t>() <= meta["ledger_steps"].get<int64_t>());
  CHECK(meta["epsilon_spent"].get<double>() <= 3.0 + 1e-9);
  for (const Site& s : {sites[0], sites[2]}) {
    CHECK(ReadJson(s.dir + "/state/model.json")["ledger_steps"].get<int64_t>() > 0);
  }
  // A periodic checkpoint carries the SGD momentum (train.momentum = 0.5 by
  // default) taken between two steps, not zeros: a restart resumes with it.
  const std::string hex = meta["model_fingerprint"].get<std::string>();
  REQUIRE(hex.size() == 64);
  dpnode::learn::ModelFingerprint fp{};
  for (size_t i = 0; i < fp.size(); ++i) {
    fp[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  }
  dpnode::Result<dpnode::learn::Checkpoint> ckpt = dpnode::learn::ReadCheckpoint(killed_ckpt, fp);
  REQUIRE_MESSAGE(ckpt.ok(), ckpt.status().ToString());
  CHECK(ckpt->steps >= 10);
  REQUIRE(ckpt->optimizer.m.size() == ckpt->parameters.size());
  double momentum_norm = 0;
  for (float v : ckpt->optimizer.m) momentum_norm += static_cast<double>(v) * v;
  CHECK(momentum_norm > 0);
}
