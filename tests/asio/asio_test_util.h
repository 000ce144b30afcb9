// Helpers for the Asio transport tests: identities, AsioEnvs on 127.0.0.1,
// a LinkHandler that records events for the test thread to wait on, and raw
// TCP clients for the refusal tests.
#ifndef DPNODE_TESTS_ASIO_ASIO_TEST_UTIL_H_
#define DPNODE_TESTS_ASIO_ASIO_TEST_UTIL_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "crypto/identity.h"
#include "node/asio/asio_env.h"
#include "node/env.h"

namespace dpnode::asio::testing {

inline crypto::SiteIdentity NewIdentity() { return std::move(crypto::SiteIdentity::Generate()).value(); }

inline NetworkOptions TestNetworkOptions() {
  NetworkOptions o;
  o.channel.consortium_id = "test-consortium";
  o.channel.handshake_timeout = std::chrono::seconds(5);
  o.close_flush_timeout = std::chrono::seconds(2);
  return o;
}

inline std::unique_ptr<AsioEnv> MakeEnv(const crypto::SiteIdentity& id, std::vector<PeerId> pinned,
                                        NetworkOptions options = TestNetworkOptions()) {
  auto check = [pinned](const crypto::Ed25519PublicKey& k) {
    return std::find(pinned.begin(), pinned.end(), k) != pinned.end();
  };
  AsioEnvOptions env_options;
  Result<std::unique_ptr<AsioEnv>> env = AsioEnv::Create(id, check, std::move(options), env_options);
  if (!env.ok()) return nullptr;
  return std::move(env).value();
}

// Records link events; the test thread waits on them.
class Recorder : public LinkHandler {
 public:
  void OnLinkUp(const std::shared_ptr<Link>& link) override {
    std::lock_guard<std::mutex> lock(mu_);
    up_.push_back(link);
    cv_.notify_all();
  }
  void OnMessage(const std::shared_ptr<Link>& link, const SharedBytes& message) override {
    std::lock_guard<std::mutex> lock(mu_);
    messages_.push_back(message);
    message_links_.push_back(link.get());
    cv_.notify_all();
  }
  void OnLinkDown(const std::shared_ptr<Link>& link, const Status& why) override {
    std::lock_guard<std::mutex> lock(mu_);
    down_.push_back(why);
    down_links_.push_back(link.get());
    cv_.notify_all();
  }

  // Waits until `pred` (called under the lock) holds; false on timeout.
  bool WaitFor(const std::function<bool()>& pred,
               std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, pred);
  }
  bool WaitUp(size_t n) { return WaitFor([&] { return up_.size() >= n; }); }
  bool WaitMessages(size_t n, std::chrono::milliseconds t = std::chrono::seconds(10)) {
    return WaitFor([&] { return messages_.size() >= n; }, t);
  }
  bool WaitDown(size_t n) { return WaitFor([&] { return down_.size() >= n; }); }

  std::shared_ptr<Link> up(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return up_.at(i);
  }
  size_t up_count() {
    std::lock_guard<std::mutex> lock(mu_);
    return up_.size();
  }
  size_t message_count() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_.size();
  }
  SharedBytes message(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_.at(i);
  }
  size_t down_count() {
    std::lock_guard<std::mutex> lock(mu_);
    return down_.size();
  }
  Status down(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return down_.at(i);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<Link>> up_;
  std::vector<SharedBytes> messages_;
  std::vector<const Link*> message_links_;
  std::vector<Status> down_;
  std::vector<const Link*> down_links_;
};

// Collects a Connect failure for the test thread.
struct ConnectResult {
  std::mutex mu;
  std::condition_variable cv;
  bool failed = false;
  Status status;
  std::function<void(const Status&)> Callback() {
    return [this](const Status& s) {
      std::lock_guard<std::mutex> lock(mu);
      failed = true;
      status = s;
      cv.notify_all();
    };
  }
  bool WaitFailed(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, timeout, [&] { return failed; });
  }
};

inline NetAddress Loopback(uint16_t port) { return NetAddress{"127.0.0.1", port}; }

// A plain TCP client that connects and sends nothing. -1 on failure.
inline int RawConnect(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// True when the server closed `fd` (EOF or reset) within `timeout`.
inline bool ClosedByPeerWithin(int fd, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return true;  // EOF or reset; any data before it is discarded
  }
}

}  // namespace dpnode::asio::testing

#endif  // DPNODE_TESTS_ASIO_ASIO_TEST_UTIL_H_
