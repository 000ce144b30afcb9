// AsioEnv: event loop, timers, compute worker, rng and shutdown (asio_env.h).
#include "node/asio/asio_env.h"

#include <exception>
#include <future>
#include <random>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/check.h"

namespace dpnode::asio {
namespace ba = boost::asio;

namespace {

uint64_t SeedFromOs() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

// A pending RunAfter: the Asio timer and the flag that Cancel sets.
struct TimerState {
  explicit TimerState(ba::io_context& io) : timer(io) {}
  ba::steady_timer timer;
  std::atomic<bool> cancelled{false};
};

}  // namespace

Result<std::unique_ptr<AsioEnv>> AsioEnv::Create(const crypto::SiteIdentity& identity,
                                                 crypto::PinnedKeyCheck is_pinned,
                                                 NetworkOptions network_options,
                                                 AsioEnvOptions options) {
  if (!is_pinned) return Status::InvalidArgument("AsioEnv needs a pinned-key check");
  const crypto::SecureChannelOptions& ch = network_options.channel;
  if (ch.consortium_id.empty() || ch.consortium_id.size() > 255) {
    return Status::InvalidArgument("consortium id must be 1-255 bytes");
  }
  if (ch.max_send_buffer_bytes < crypto::SecureChannel::EncodedSize(ch.max_message_bytes)) {
    return Status::InvalidArgument("max_send_buffer_bytes cannot hold one maximal message");
  }
  if (network_options.read_buffer_bytes == 0 || network_options.max_reads_per_turn <= 0) {
    return Status::InvalidArgument("read buffer and reads per turn must be positive");
  }
  if (options.compute_queue_capacity == 0) {
    return Status::InvalidArgument("compute queue capacity must be positive");
  }
  const uint64_t seed = options.rng_seed ? *options.rng_seed : SeedFromOs();
  std::unique_ptr<AsioEnv> env(new AsioEnv(std::move(options), seed));
  env->network_ = std::make_unique<AsioNetwork>(*env, identity, std::move(is_pinned),
                                                std::move(network_options));
  return env;
}

AsioEnv::AsioEnv(AsioEnvOptions options, uint64_t seed)
    : options_(std::move(options)),
      origin_(std::chrono::steady_clock::now()),
      rng_(seed),
      work_guard_(ba::make_work_guard(io_)) {}

AsioEnv::~AsioEnv() {
  Stop();
  // Connections and timers still referenced by queued handlers are released
  // with the io_context; the network goes first so it never sees a dead loop.
  network_.reset();
}

void AsioEnv::Start() {
  DPNODE_CHECK(!started_, "AsioEnv::Start called twice");
  started_ = true;
  compute_thread_ = std::thread([this] { ComputeThreadMain(); });
  loop_thread_ = std::thread([this] {
    loop_thread_id_.store(std::this_thread::get_id());
    io_.run();
  });
}

bool AsioEnv::OnLoopThread() const { return loop_thread_id_.load() == std::this_thread::get_id(); }

void AsioEnv::RefreshNow() {
  now_ = TimePoint(std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - origin_));
}

void AsioEnv::Log(const std::string& line) const {
  if (options_.log) options_.log(line);
}

void AsioEnv::RunOnLoop(const std::function<void()>& fn) {
  DPNODE_CHECK(!OnLoopThread(), "RunOnLoop on the loop thread would deadlock");
  if (!started_ || stopped_) {
    fn();
    return;
  }
  std::promise<void> finished;
  ba::post(io_, [&] {
    RefreshNow();
    fn();
    finished.set_value();
  });
  finished.get_future().wait();
}

Timer AsioEnv::RunAfter(Duration delay, std::function<void()> fn) {
  auto state = std::make_shared<TimerState>(io_);
  state->timer.expires_after(std::max(delay, Duration::zero()));
  state->timer.async_wait([this, state, fn = std::move(fn)](const boost::system::error_code&) {
    // The flag, not the error code, decides: an expired timer whose handler
    // is already queued still sees a Cancel made before it runs.
    if (state->cancelled.exchange(true) || stopping()) return;
    RefreshNow();
    fn();
  });
  std::weak_ptr<TimerState> weak = state;
  return Timer([this, weak] {
    std::shared_ptr<TimerState> s = weak.lock();
    if (!s) return;
    s->cancelled.store(true);
    // The Asio timer itself may only be touched on the loop.
    if (OnLoopThread() || !started_) {
      s->timer.cancel();
    } else {
      ba::post(io_, [s] { s->timer.cancel(); });
    }
  });
}

void AsioEnv::Post(std::function<void()> fn) {
  ba::post(io_, [this, fn = std::move(fn)] {
    if (stopping()) return;
    RefreshNow();
    fn();
  });
}

void AsioEnv::RunCompute(std::function<Status()> work, std::function<void(const Status&)> done) {
  {
    std::lock_guard<std::mutex> lock(compute_mu_);
    if (!compute_stop_ && compute_queue_.size() < options_.compute_queue_capacity) {
      compute_queue_.push_back(ComputeJob{std::move(work), std::move(done)});
      compute_cv_.notify_one();
      return;
    }
  }
  Post([done = std::move(done)] {
    done(Status::Unavailable("compute queue full; try again later"));
  });
}

void AsioEnv::ComputeThreadMain() {
  for (;;) {
    ComputeJob job;
    {
      std::unique_lock<std::mutex> lock(compute_mu_);
      compute_cv_.wait(lock, [this] { return compute_stop_ || !compute_queue_.empty(); });
      if (compute_stop_) return;
      job = std::move(compute_queue_.front());
      compute_queue_.pop_front();
    }
    Status status;
    try {
      status = job.work();
    } catch (const std::exception& e) {
      status = Status::Internal(std::string("compute work threw: ") + e.what());
    } catch (...) {
      status = Status::Internal("compute work threw a non-standard exception");
    }
    Post([done = std::move(job.done), status = std::move(status)] { done(status); });
  }
}

void AsioEnv::BeginShutdown(const std::string& reason) {
  RefreshNow();
  // Links learn they are down (OnLinkDown with OK) before the node goes quiet.
  const size_t flushing = network_->Shutdown(reason);
  stopping_.store(true);
  auto stop_loop = [this] { io_.stop(); };
  if (flushing == 0) {
    stop_loop();
    return;
  }
  network_->SetOnAllClosed(stop_loop);
  auto grace = std::make_shared<ba::steady_timer>(io_);
  grace->expires_after(options_.shutdown_grace);
  grace->async_wait([grace, stop_loop](const boost::system::error_code&) { stop_loop(); });
}

void AsioEnv::Stop(const std::string& reason) {
  if (stopped_) return;
  DPNODE_CHECK(!OnLoopThread(), "AsioEnv::Stop on the loop thread would deadlock");
  stopped_ = true;
  {
    std::lock_guard<std::mutex> lock(compute_mu_);
    compute_stop_ = true;
    compute_queue_.clear();
  }
  compute_cv_.notify_all();
  if (compute_thread_.joinable()) compute_thread_.join();
  if (started_) {
    ba::post(io_, [this, reason] { BeginShutdown(reason); });
    work_guard_.reset();
    loop_thread_.join();
  } else {
    network_->Shutdown(reason);
    stopping_.store(true);
  }
}

}  // namespace dpnode::asio
