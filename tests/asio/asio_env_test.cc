// AsioEnv: timers (firing, cancelling, cancel racing expiry), frozen time,
// Post, RunCompute threading and error mapping, clean Stop.
#include "node/asio/asio_env.h"

#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <stdexcept>
#include <thread>

#include "tests/asio/asio_test_util.h"

namespace dpnode::asio {
namespace {

using std::chrono::milliseconds;
using testing::MakeEnv;
using testing::NewIdentity;

std::unique_ptr<AsioEnv> StartedEnv() {
  const crypto::SiteIdentity id = NewIdentity();
  std::unique_ptr<AsioEnv> env = MakeEnv(id, {});
  REQUIRE(env != nullptr);
  env->Start();
  return env;
}

std::thread::id LoopThreadId(AsioEnv& env) {
  std::thread::id id;
  env.RunOnLoop([&] { id = std::this_thread::get_id(); });
  return id;
}

TEST_CASE("a timer fires on the loop after its delay, with Now() advanced") {
  auto env = StartedEnv();
  const std::thread::id loop = LoopThreadId(*env);
  std::promise<void> fired;
  TimePoint scheduled_at{}, fired_at{};
  std::thread::id fired_on;
  Timer t;
  env->RunOnLoop([&] {
    scheduled_at = env->Now();
    t = env->RunAfter(milliseconds(30), [&] {
      fired_at = env->Now();
      fired_on = std::this_thread::get_id();
      fired.set_value();
    });
  });
  REQUIRE(fired.get_future().wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  CHECK(fired_on == loop);
  CHECK(fired_at - scheduled_at >= milliseconds(30));
  env->Stop();
}

TEST_CASE("Now() is frozen during one callback and moves between callbacks") {
  auto env = StartedEnv();
  TimePoint a{}, b{}, c{};
  env->RunOnLoop([&] {
    a = env->Now();
    const auto until = std::chrono::steady_clock::now() + milliseconds(5);
    while (std::chrono::steady_clock::now() < until) {
    }
    b = env->Now();
  });
  env->RunOnLoop([&] { c = env->Now(); });
  CHECK(a == b);
  CHECK(c - a >= milliseconds(5));
  env->Stop();
}

TEST_CASE("cancelled and dropped timers never fire") {
  auto env = StartedEnv();
  std::atomic<int> cancelled_fired{0}, dropped_fired{0};
  std::promise<void> sentinel;
  Timer keep;
  env->RunOnLoop([&] {
    Timer t = env->RunAfter(milliseconds(20), [&] { ++cancelled_fired; });
    CHECK(t.pending());
    t.Cancel();
    CHECK(!t.pending());
    { Timer dropped = env->RunAfter(milliseconds(20), [&] { ++dropped_fired; }); }
    keep = env->RunAfter(milliseconds(120), [&] { sentinel.set_value(); });
  });
  REQUIRE(sentinel.get_future().wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  CHECK(cancelled_fired.load() == 0);
  CHECK(dropped_fired.load() == 0);
  env->Stop();
}

TEST_CASE("a Cancel on the loop wins over a timer that has already expired") {
  auto env = StartedEnv();
  std::atomic<int> second_fired{0};
  std::promise<void> first_done, sentinel;
  Timer first, second, keep;
  env->RunOnLoop([&] {
    second = env->RunAfter(milliseconds(10), [&] { ++second_fired; });
    first = env->RunAfter(milliseconds(5), [&] {
      // Hold the loop until `second` has certainly expired, so its handler
      // is ready to run, then cancel it.
      const auto until = std::chrono::steady_clock::now() + milliseconds(40);
      while (std::chrono::steady_clock::now() < until) {
      }
      second.Cancel();
      first_done.set_value();
    });
    keep = env->RunAfter(milliseconds(150), [&] { sentinel.set_value(); });
  });
  REQUIRE(first_done.get_future().wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  REQUIRE(sentinel.get_future().wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  CHECK(second_fired.load() == 0);
  env->Stop();
}

TEST_CASE("a timer cancelled from another thread does not fire") {
  auto env = StartedEnv();
  std::atomic<int> fired{0};
  std::promise<void> sentinel;
  Timer t, keep;
  env->RunOnLoop([&] {
    t = env->RunAfter(milliseconds(60), [&] { ++fired; });
    keep = env->RunAfter(milliseconds(150), [&] { sentinel.set_value(); });
  });
  t.Cancel();  // off the loop
  REQUIRE(sentinel.get_future().wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  CHECK(fired.load() == 0);
  env->Stop();
}

TEST_CASE("Post runs callbacks on the loop, in order") {
  auto env = StartedEnv();
  const std::thread::id loop = LoopThreadId(*env);
  std::vector<int> order;
  std::promise<void> done;
  bool all_on_loop = true;
  for (int i = 0; i < 5; ++i) {
    env->Post([&, i] {
      all_on_loop = all_on_loop && std::this_thread::get_id() == loop;
      order.push_back(i);
      if (i == 4) done.set_value();
    });
  }
  REQUIRE(done.get_future().wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  CHECK(all_on_loop);
  CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
  env->Stop();
}

TEST_CASE("RunCompute runs work off the loop and done on the loop") {
  auto env = StartedEnv();
  const std::thread::id loop = LoopThreadId(*env);
  std::thread::id work_on, done_on;
  std::promise<Status> result;
  env->RunOnLoop([&] {
    env->RunCompute(
        [&] {
          work_on = std::this_thread::get_id();
          return Status::OutOfRange("from work");
        },
        [&](const Status& s) {
          done_on = std::this_thread::get_id();
          result.set_value(s);
        });
  });
  auto f = result.get_future();
  REQUIRE(f.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  const Status s = f.get();
  CHECK(s.code() == StatusCode::kOutOfRange);
  CHECK(s.message() == "from work");
  CHECK(work_on != loop);
  CHECK(work_on != std::this_thread::get_id());
  CHECK(done_on == loop);
  env->Stop();
}

TEST_CASE("RunCompute turns exceptions from work into a Status") {
  auto env = StartedEnv();
  std::promise<Status> std_ex, other_ex;
  env->RunOnLoop([&] {
    env->RunCompute([]() -> Status { throw std::runtime_error("tensor shape mismatch"); },
                    [&](const Status& s) { std_ex.set_value(s); });
    env->RunCompute([]() -> Status { throw 42; }, [&](const Status& s) { other_ex.set_value(s); });
  });
  auto f1 = std_ex.get_future();
  auto f2 = other_ex.get_future();
  REQUIRE(f1.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  REQUIRE(f2.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  const Status s1 = f1.get();
  const Status s2 = f2.get();
  CHECK(s1.code() == StatusCode::kInternal);
  CHECK(s1.message().find("tensor shape mismatch") != std::string::npos);
  CHECK(s2.code() == StatusCode::kInternal);
  env->Stop();
}

TEST_CASE("RunCompute refuses work beyond the queue capacity") {
  const crypto::SiteIdentity id = NewIdentity();
  AsioEnvOptions options;
  options.compute_queue_capacity = 1;
  auto env = std::move(AsioEnv::Create(id, [](const crypto::Ed25519PublicKey&) { return false; },
                                       testing::TestNetworkOptions(), options))
                 .value();
  env->Start();
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> blocker_started;
  std::promise<Status> queued, refused, blocker;
  env->RunOnLoop([&] {
    env->RunCompute(
        [&] {
          blocker_started.set_value();
          released.wait();
          return Status::Ok();
        },
        [&](const Status& s) { blocker.set_value(s); });
  });
  blocker_started.get_future().wait();
  env->RunOnLoop([&] {
    env->RunCompute([] { return Status::Ok(); }, [&](const Status& s) { queued.set_value(s); });
    env->RunCompute([] { return Status::Ok(); }, [&](const Status& s) { refused.set_value(s); });
  });
  auto fr = refused.get_future();
  REQUIRE(fr.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  CHECK(fr.get().code() == StatusCode::kUnavailable);
  release.set_value();
  auto fq = queued.get_future();
  REQUIRE(fq.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  CHECK(fq.get().ok());
  CHECK(blocker.get_future().get().ok());
  env->Stop();
}

TEST_CASE("after Stop no callback reaches the node") {
  auto env = StartedEnv();
  std::atomic<int> fired{0};
  Timer t;
  env->RunOnLoop([&] { t = env->RunAfter(milliseconds(50), [&] { ++fired; }); });
  env->Stop();
  env->Stop();  // idempotent
  std::this_thread::sleep_for(milliseconds(100));
  CHECK(fired.load() == 0);
}

}  // namespace
}  // namespace dpnode::asio
