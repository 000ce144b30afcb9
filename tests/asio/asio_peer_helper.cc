// The receiving process of tests/asio/two_process_test.cc:
//   asio_peer_helper IDENTITY_DIR PEERS_FILE CONSORTIUM_ID EXPECTED_BYTES
// Reads its identity and peers.txt, listens on 127.0.0.1 (free port, printed
// as "PORT <n>"), accepts one pinned peer, and expects two messages: a
// 32-byte BLAKE2b-256 and then the data. It hashes the data, replies with
// its own hash and a verdict byte (1 = match), prints a summary and exits 0
// on a match, 1 on a mismatch, 2 on any other error or after 30 s.
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "crypto/bytes.h"
#include "crypto/identity.h"
#include "crypto/peers.h"
#include "node/asio/asio_env.h"

namespace {

using namespace dpnode;  // NOLINT: a small program

class Receiver : public LinkHandler {
 public:
  explicit Receiver(size_t expected_bytes) : expected_bytes_(expected_bytes) {}
  void OnLinkUp(const std::shared_ptr<Link>&) override {}
  void OnMessage(const std::shared_ptr<Link>& link, const SharedBytes& m) override {
    if (!have_hash_) {
      expected_hash_ = *m;
      have_hash_ = true;
      return;
    }
    std::vector<uint8_t> h(crypto_generichash_BYTES);
    crypto_generichash(h.data(), h.size(), m->data(), m->size(), nullptr, 0);
    const bool match = h == expected_hash_ && m->size() == expected_bytes_;
    auto reply = std::make_shared<std::vector<uint8_t>>(h.size() + 1);
    std::copy(h.begin(), h.end(), reply->begin());
    reply->back() = match ? 1 : 0;
    const Status s = link->Send(reply);
    std::printf("RECEIVED %zu bytes blake2b-256 %s %s\n", m->size(),
                crypto::HexEncode(crypto::ByteView(h)).c_str(), match ? "MATCH" : "MISMATCH");
    std::fflush(stdout);
    Finish(s.ok() ? (match ? 0 : 1) : 2);
  }
  void OnLinkDown(const std::shared_ptr<Link>&, const Status& why) override {
    if (!why.ok()) std::printf("link down: %s\n", why.ToString().c_str());
    Finish(2);
  }
  int Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(30), [&] { return done_; })) return 2;
    return code_;
  }

 private:
  void Finish(int code) {
    std::lock_guard<std::mutex> lock(mu_);
    if (done_) return;
    done_ = true;
    code_ = code;
    cv_.notify_all();
  }
  size_t expected_bytes_;
  bool have_hash_ = false;
  std::vector<uint8_t> expected_hash_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  int code_ = 2;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s IDENTITY_DIR PEERS_FILE CONSORTIUM_ID EXPECTED_BYTES\n", argv[0]);
    return 2;
  }
  if (sodium_init() < 0) return 2;
  Result<crypto::SiteIdentity> id = crypto::ReadIdentity(argv[1]);
  Result<crypto::PeerList> peers = crypto::ReadPeersFile(argv[2]);
  if (!id.ok() || !peers.ok()) {
    std::fprintf(stderr, "%s\n", (!id.ok() ? id.status() : peers.status()).ToString().c_str());
    return 2;
  }
  asio::NetworkOptions o;
  o.channel.consortium_id = argv[3];
  const crypto::PeerList& list = *peers;
  Result<std::unique_ptr<asio::AsioEnv>> env = asio::AsioEnv::Create(
      *id, [&list](const crypto::Ed25519PublicKey& k) { return list.IsPinned(k); }, o);
  if (!env.ok()) return 2;
  Receiver receiver(static_cast<size_t>(std::strtoull(argv[4], nullptr, 10)));
  (*env)->network().SetHandler(&receiver);
  const Status listening = (*env)->network().Listen(NetAddress{"127.0.0.1", 0});
  if (!listening.ok()) {
    std::fprintf(stderr, "%s\n", listening.ToString().c_str());
    return 2;
  }
  std::printf("PORT %u\n", static_cast<unsigned>((*env)->asio_network().listen_port()));
  std::fflush(stdout);
  (*env)->Start();
  const int code = receiver.Wait();
  (*env)->Stop("test finished");  // flushes the reply before closing
  return code;
}
