// The Env seam: the only door from node/ (and what it uses below) to the world.
//
// A Node sees time, timers, its own event loop, the network and non-secret
// randomness only through an Env. Two implementations exist:
//   AsioEnv (node/asio/)  real sockets, the secure channel, a steady clock,
//                         a worker thread for RunCompute;
//   SimEnv  (sim/)        a virtual clock, modelled links, inline compute whose
//                         completion fires at a modelled virtual time.
// Node code is identical in both. tests/check_layers.sh keeps clocks, sleeps,
// threads and Asio out of node/ outside node/asio/.
//
// Threading: every callback an Env delivers (timers, posted work, link
// events, RunCompute's `done`) runs on the node's one event loop, one at a
// time. Now() is constant while one callback runs. Nothing may throw out of a
// callback: errors are Status values.
//
// Lifetimes: the Env outlives the Node. A Timer or Link handle may be dropped
// at any time; dropping a Timer cancels it, and no callback fires for a
// cancelled timer or for a link after its OnClosed.
#ifndef DPNODE_NODE_ENV_H_
#define DPNODE_NODE_ENV_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace dpnode {

// The node's clock: monotonic, in nanoseconds since the Env started. It has
// no now(): only Env::Now() reads it.
struct EnvClock {
  using rep = int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<EnvClock>;
  static constexpr bool is_steady = true;
};
using Duration = EnvClock::duration;
using TimePoint = EnvClock::time_point;

// A pending timer. Move-only; destroying or Cancel()ing it guarantees the
// callback will not run afterwards.
class Timer {
 public:
  Timer() = default;
  explicit Timer(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
  Timer(Timer&& other) noexcept : cancel_(std::move(other.cancel_)) { other.cancel_ = nullptr; }
  Timer& operator=(Timer&& other) noexcept {
    if (this != &other) {
      Cancel();
      cancel_ = std::move(other.cancel_);
      other.cancel_ = nullptr;
    }
    return *this;
  }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  ~Timer() { Cancel(); }

  void Cancel() {
    if (cancel_) {
      auto c = std::move(cancel_);
      cancel_ = nullptr;
      c();
    }
  }
  bool pending() const { return static_cast<bool>(cancel_); }

 private:
  std::function<void()> cancel_;
};

// A site's identity on the network: its Ed25519 public key, as pinned in
// peers.txt.
using PeerId = std::array<uint8_t, 32>;

// A message payload shared between recipients without copying (the simulator
// hands the same buffer to every neighbour).
using SharedBytes = std::shared_ptr<const std::vector<uint8_t>>;

// "host:port" for the real network; the simulator uses its own node names.
struct NetAddress {
  std::string host;
  uint16_t port = 0;
};

// An authenticated, ordered, reliable-while-open message link to one peer.
// Below it sits the secure channel (AsioEnv) or a modelled link (SimEnv),
// which may drop the link, delay it, or lose it entirely.
class Link {
 public:
  virtual ~Link() = default;
  // The peer's pinned identity, proven during the handshake.
  virtual const PeerId& peer() const = 0;
  // Queues one application message. kUnavailable when the send queue is full
  // (backpressure: the caller drops or retries later, never buffers without
  // bound); kFailedPrecondition when the link is closed.
  virtual Status Send(SharedBytes message) = 0;
  // Bytes queued and not yet handed to the wire.
  virtual size_t queued_bytes() const = 0;
  // Closes the link; `reason` goes into the log and, where possible, a goodbye.
  virtual void Close(const std::string& reason) = 0;
};

// What a Node receives from its links. Runs on the node's loop.
class LinkHandler {
 public:
  virtual ~LinkHandler() = default;
  // A new authenticated link, inbound or outbound.
  virtual void OnLinkUp(const std::shared_ptr<Link>& link) = 0;
  // One complete application message. `message` is valid during the call.
  virtual void OnMessage(const std::shared_ptr<Link>& link, const SharedBytes& message) = 0;
  // The link is gone (peer closed, error, timeout); no more calls for it.
  virtual void OnLinkDown(const std::shared_ptr<Link>& link, const Status& why) = 0;
};

class Network {
 public:
  virtual ~Network() = default;
  // Where links are reported. Must be set before Listen/Connect; the handler
  // must outlive the Network's use.
  virtual void SetHandler(LinkHandler* handler) = 0;
  // Accepts inbound connections from pinned peers at `address`.
  virtual Status Listen(const NetAddress& address) = 0;
  // Starts connecting to `peer` at `address`. Success arrives as OnLinkUp; a
  // failure as `failed` (each on the loop). Retrying with backoff is the
  // caller's policy.
  virtual void Connect(const PeerId& peer, const NetAddress& address,
                       std::function<void(const Status&)> failed) = 0;
};

// Non-secret randomness (partner choice, jitter, Poisson sampling in the
// simulator's seeded mode). DP noise never comes from here: it comes from the
// learner's CSPRNG.
class Rng {
 public:
  virtual ~Rng() = default;
  virtual uint64_t Next() = 0;  // uniform over 64 bits
  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n), n > 0, without modulo bias.
  uint64_t Below(uint64_t n);
};

class Env {
 public:
  virtual ~Env() = default;
  virtual TimePoint Now() const = 0;  // constant during one callback
  [[nodiscard]] virtual Timer RunAfter(Duration delay, std::function<void()> fn) = 0;
  virtual void Post(std::function<void()> fn) = 0;  // later, on this node's loop
  virtual Network& network() = 0;
  virtual Rng& rng() = 0;
  // Runs `work` off the loop (LibTorch steps), then `done` on the loop.
  // `work` must not touch node state; exceptions from it are caught at this
  // boundary and delivered to `done` as a Status.
  virtual void RunCompute(std::function<Status()> work,
                          std::function<void(const Status&)> done) = 0;
};

inline uint64_t Rng::Below(uint64_t n) {
  // Lemire's multiply-shift with rejection.
  uint64_t x = Next();
  __uint128_t m = static_cast<__uint128_t>(x) * n;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < n) {
    const uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      x = Next();
      m = static_cast<__uint128_t>(x) * n;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

}  // namespace dpnode

#endif  // DPNODE_NODE_ENV_H_
