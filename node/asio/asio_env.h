// AsioEnv: the real dpnode::Env. One Boost.Asio io_context run by one thread
// is the node's event loop; a second thread runs RunCompute work; the network
// is an AsioNetwork (TCP + the secure channel).
//
// Time. Now() is std::chrono::steady_clock converted to EnvClock: nanoseconds
// since this AsioEnv was created. It is frozen per callback: every handler the
// loop runs on the node's behalf (timers, posted work, link events, compute
// completions) first reads the steady clock once into now_, and Now() returns
// that value until the next handler starts. Call Now() only on the loop (or
// before Start, when it returns 0).
//
// Timers. RunAfter arms a steady_timer. Cancel sets a shared flag that the
// timer's handler checks on the loop before calling `fn`, so a Cancel made on
// the loop wins even when the timer has already expired and its handler is
// queued: no callback runs after Cancel. (A Cancel made off the loop cannot
// stop a callback that has already started.)
//
// Compute. RunCompute queues `work` for one worker thread (at most
// compute_queue_capacity jobs waiting; beyond that `done` gets kUnavailable
// without running `work`). Exceptions thrown by `work` become kInternal.
// `done` is posted back to the loop.
//
// Lifecycle. Create, set the handler and Listen/Connect (before Start or on
// the loop), Start() the threads, Stop() from any thread but the loop (or let
// the destructor do it). Stop closes every link with a reason (OnLinkDown
// with OK, a final flush of queued output bounded by shutdown_grace), stops
// accepting and reconnecting, drops compute jobs not yet started, and joins
// both threads. After Stop no callback reaches the node.
//
// Threads. Node code calls the Env on the loop. Post, RunCompute and
// Timer::Cancel may also be called from other threads (main(), tests);
// network() and Link methods only on the loop or before Start.
//
// Threads and Asio are confined to node/asio/ (tests/check_layers.sh).
#ifndef DPNODE_NODE_ASIO_ASIO_ENV_H_
#define DPNODE_NODE_ASIO_ASIO_ENV_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "base/status.h"
#include "crypto/identity.h"
#include "crypto/secure_channel.h"
#include "node/asio/asio_network.h"
#include "node/env.h"
#include "node/xoshiro.h"

namespace dpnode::asio {

struct AsioEnvOptions {
  // Seed for rng(); unset = from the OS (std::random_device).
  std::optional<uint64_t> rng_seed;
  // RunCompute jobs waiting for the worker thread.
  size_t compute_queue_capacity = 16;
  // Longest Stop() waits for links to flush their queued output.
  Duration shutdown_grace = std::chrono::seconds(1);
  // Where log lines go (one line per call, no trailing newline). Unset = silent.
  std::function<void(const std::string&)> log;
};


class AsioEnv final : public Env {
 public:
  // `identity` is copied. `is_pinned` decides which site keys may connect
  // (e.g. PeerList::IsPinned); it is called on the loop. kInvalidArgument for
  // bad channel options.
  static Result<std::unique_ptr<AsioEnv>> Create(const crypto::SiteIdentity& identity,
                                                 crypto::PinnedKeyCheck is_pinned,
                                                 NetworkOptions network_options,
                                                 AsioEnvOptions options = {});
  ~AsioEnv() override;
  AsioEnv(const AsioEnv&) = delete;
  AsioEnv& operator=(const AsioEnv&) = delete;

  // Starts the loop and compute threads. Once only.
  void Start();
  // Idempotent. Must not be called on the loop thread (it joins it).
  void Stop(const std::string& reason = "node shutting down");

  // Runs `fn` on the loop and waits for it (inline before Start). For main()
  // and tests, which live off the loop. Not on the loop thread.
  void RunOnLoop(const std::function<void()>& fn);
  bool OnLoopThread() const;

  // --- dpnode::Env ---
  TimePoint Now() const override { return now_; }
  [[nodiscard]] Timer RunAfter(Duration delay, std::function<void()> fn) override;
  void Post(std::function<void()> fn) override;
  Network& network() override { return *network_; }
  Rng& rng() override { return rng_; }
  void RunCompute(std::function<Status()> work, std::function<void(const Status&)> done) override;

  AsioNetwork& asio_network() { return *network_; }

  // --- for AsioNetwork (on the loop) ---
  boost::asio::io_context& io() { return io_; }
  // Reads the steady clock into Now(); the first thing each handler does.
  void RefreshNow();
  // True once Stop has begun: no more callbacks into the node.
  bool stopping() const { return stopping_.load(); }
  std::chrono::steady_clock::time_point ToSteady(TimePoint t) const { return origin_ + t.time_since_epoch(); }
  void Log(const std::string& line) const;

 private:
  AsioEnv(AsioEnvOptions options, uint64_t seed);
  struct ComputeJob {
    std::function<Status()> work;
    std::function<void(const Status&)> done;
  };
  void ComputeThreadMain();
  void BeginShutdown(const std::string& reason);

  AsioEnvOptions options_;
  const std::chrono::steady_clock::time_point origin_;
  TimePoint now_{};
  Xoshiro256 rng_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_guard_;
  std::unique_ptr<AsioNetwork> network_;
  std::atomic<bool> stopping_{false};
  bool started_ = false;
  bool stopped_ = false;
  std::thread loop_thread_;
  std::atomic<std::thread::id> loop_thread_id_{};

  std::mutex compute_mu_;
  std::condition_variable compute_cv_;
  std::deque<ComputeJob> compute_queue_;  // guarded by compute_mu_
  bool compute_stop_ = false;             // guarded by compute_mu_
  std::thread compute_thread_;
};

}  // namespace dpnode::asio

#endif  // DPNODE_NODE_ASIO_ASIO_ENV_H_
