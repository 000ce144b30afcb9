// Two processes on loopback exchange a 40 MB tensor intact over the real
// secure channel. This process is the sender; build/tests/asio_peer_helper
// (tests/asio/asio_peer_helper.cc) is the receiver. Each has its own
// identity in a temporary directory and pins the other through peers.txt.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "crypto/peers.h"
#include "node/asio/asio_env.h"
#include "tests/asio/asio_test_util.h"
#include "tests/temp_dir.h"

extern char** environ;

namespace dpnode::asio {
namespace {

namespace fs = std::filesystem;
using testing::Recorder;

constexpr size_t kTensorBytes = 40'000'000;

std::vector<uint8_t> Blake2b256(const uint8_t* data, size_t n) {
  std::vector<uint8_t> h(crypto_generichash_BYTES);
  crypto_generichash(h.data(), h.size(), data, n, nullptr, 0);
  return h;
}

TEST_CASE("two processes on loopback exchange a 40 MB tensor intact") {
  REQUIRE(sodium_init() >= 0);
  const dpnode::testing::TempDir tmp;
  const fs::path root(tmp.path());
  const crypto::SiteIdentity a_id = testing::NewIdentity(), b_id = testing::NewIdentity();
  REQUIRE(crypto::WriteIdentity((root / "a").string(), a_id).ok());
  REQUIRE(crypto::WriteIdentity((root / "b").string(), b_id).ok());
  {
    std::ofstream peers(root / "peers.txt");
    peers << "# test consortium\n"
          << crypto::FormatPeerLine("site-a", a_id.public_key(), std::nullopt) << "\n"
          << crypto::FormatPeerLine("site-b", b_id.public_key(), std::nullopt) << "\n";
  }
  Result<crypto::PeerList> peers = crypto::ReadPeersFile((root / "peers.txt").string());
  REQUIRE(peers.ok());

  // Start the receiver; it prints "PORT <n>" once listening.
  int out_pipe[2];
  REQUIRE(pipe(out_pipe) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out_pipe[0]);
  const std::string helper = std::string(DPNODE_BINARY_DIR) + "/tests/asio_peer_helper";
  const std::string id_dir = (root / "b").string(), peers_path = (root / "peers.txt").string();
  std::vector<std::string> args = {helper, id_dir, peers_path, "two-process-test",
                                   std::to_string(kTensorBytes)};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, helper.c_str(), &actions, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  FILE* out = fdopen(out_pipe[0], "r");
  REQUIRE(out != nullptr);
  unsigned port = 0;
  const int scanned = std::fscanf(out, "PORT %u", &port);
  if (scanned != 1) kill(pid, SIGKILL);
  REQUIRE(scanned == 1);

  std::vector<uint8_t> tensor(kTensorBytes);
  randombytes_buf(tensor.data(), tensor.size());
  const std::vector<uint8_t> hash = Blake2b256(tensor.data(), tensor.size());

  NetworkOptions o = testing::TestNetworkOptions();
  o.channel.consortium_id = "two-process-test";
  const crypto::PeerList& list = *peers;
  auto env = std::move(AsioEnv::Create(
                           a_id, [&list](const crypto::Ed25519PublicKey& k) { return list.IsPinned(k); },
                           o))
                 .value();
  Recorder rec;
  env->network().SetHandler(&rec);
  env->Start();
  const auto start = std::chrono::steady_clock::now();
  testing::ConnectResult connect;
  env->RunOnLoop([&] {
    env->network().Connect(b_id.public_key(), testing::Loopback(static_cast<uint16_t>(port)),
                           connect.Callback());
  });
  REQUIRE(rec.WaitUp(1));
  std::shared_ptr<Link> link = rec.up(0);
  auto payload = std::make_shared<const std::vector<uint8_t>>(std::move(tensor));
  env->RunOnLoop([&] {
    CHECK(link->Send(std::make_shared<const std::vector<uint8_t>>(hash)).ok());
    CHECK(link->Send(payload).ok());
  });
  // The receiver answers with the BLAKE2b-256 it computed and a verdict byte.
  REQUIRE(rec.WaitMessages(1, std::chrono::seconds(30)));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const SharedBytes reply = rec.message(0);
  REQUIRE(reply->size() == hash.size() + 1);
  CHECK(std::vector<uint8_t>(reply->begin(), reply->begin() + 32) == hash);
  CHECK((*reply)[32] == 1);
  MESSAGE("40 MB across processes and back-confirmed in " << seconds << " s");
  env->RunOnLoop([&] { link->Close("done"); });
  env->Stop();

  int wstatus = 0;
  REQUIRE(waitpid(pid, &wstatus, 0) == pid);
  CHECK(WIFEXITED(wstatus));
  CHECK(WEXITSTATUS(wstatus) == 0);
  char line[256];
  while (std::fgets(line, sizeof(line), out) != nullptr) {
    if (line[0] != '\n') MESSAGE("helper: " << line);
  }
  std::fclose(out);
}

}  // namespace
}  // namespace dpnode::asio
