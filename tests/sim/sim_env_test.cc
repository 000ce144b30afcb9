// SimEnv: timers, posts and modelled compute on the virtual clock.
#include "sim/sim_env.h"

#include <doctest/doctest.h>

#include <chrono>
#include <stdexcept>
#include <vector>

namespace dpnode::sim {
namespace {

using std::chrono::milliseconds;

TimePoint Ms(int64_t ms) { return TimePoint(milliseconds(ms)); }

TEST_CASE("RunAfter fires at the exact virtual time, dropping or cancelling the Timer stops it") {
  Scheduler s;
  SimEnv env(s, 4, 1);
  std::vector<int64_t> fired;
  auto rec = [&] { fired.push_back(std::chrono::duration_cast<milliseconds>(env.Now().time_since_epoch()).count()); };
  Timer t1 = env.RunAfter(milliseconds(10), rec);
  Timer t2 = env.RunAfter(milliseconds(20), rec);
  { Timer dropped = env.RunAfter(milliseconds(15), rec); }
  Timer t3 = env.RunAfter(milliseconds(30), rec);
  CHECK(t3.pending());
  t3.Cancel();
  CHECK_FALSE(t3.pending());
  Timer t4 = env.RunAfter(milliseconds(-5), rec);  // negative delay: now
  s.RunAll();
  CHECK(fired == std::vector<int64_t>{0, 10, 20});
  CHECK(s.Now() == Ms(20));
}

TEST_CASE("Post runs later on the loop, FIFO, tagged with the node, Now() unchanged") {
  Scheduler s;
  SimEnv env(s, 9, 1);
  std::vector<int> order;
  s.Schedule(Ms(5), 9, [&] {
    env.Post([&] {
      order.push_back(2);
      CHECK(env.Now() == Ms(5));
      CHECK(s.current_node() == 9);
    });
    env.Post([&] { order.push_back(3); });
    order.push_back(1);
  });
  s.RunAll();
  CHECK(order == std::vector<int>{1, 2, 3});
}

TEST_CASE("RunCompute runs work at once and delivers done after cost x speed, FIFO on one worker") {
  Scheduler s;
  SimEnv env(s, 0, 1);
  env.SetComputeModel([] { return milliseconds(10); });
  env.SetSpeedFactor(2.5);  // a straggler
  std::vector<std::pair<int, int64_t>> done;
  bool worked = false;
  env.RunCompute(
      [&] {
        worked = true;
        return Status::Ok();
      },
      [&](const Status& st) {
        CHECK(st.ok());
        done.emplace_back(1, std::chrono::duration_cast<milliseconds>(env.Now().time_since_epoch()).count());
      });
  CHECK(worked);  // inline
  env.SetNextComputeCost(milliseconds(2));  // one-shot: 2 * 2.5 = 5 ms, queued behind the first
  env.RunCompute([] { return Status::BudgetExhausted("spent"); },
                 [&](const Status& st) {
                   CHECK(st.code() == StatusCode::kBudgetExhausted);
                   done.emplace_back(2, std::chrono::duration_cast<milliseconds>(env.Now().time_since_epoch()).count());
                 });
  env.RunCompute([] { return Status::Ok(); },  // back to the model: 25 ms more
                 [&](const Status&) {
                   done.emplace_back(3, std::chrono::duration_cast<milliseconds>(env.Now().time_since_epoch()).count());
                 });
  s.RunAll();
  REQUIRE(done.size() == 3);
  CHECK(done[0] == std::make_pair(1, int64_t{25}));
  CHECK(done[1] == std::make_pair(2, int64_t{30}));
  CHECK(done[2] == std::make_pair(3, int64_t{55}));
  CHECK(env.computations() == 3);
}

TEST_CASE("an exception from work becomes an internal Status for done") {
  Scheduler s;
  SimEnv env(s, 0, 1);
  Status got;
  env.RunCompute([]() -> Status { throw std::runtime_error("boom"); }, [&](const Status& st) { got = st; });
  s.RunAll();
  CHECK(got.code() == StatusCode::kInternal);
  CHECK(got.message().find("boom") != std::string::npos);
}

TEST_CASE("a killed env schedules nothing, rng is the seeded stream") {
  Scheduler s;
  SimEnv env(s, 0, 77);
  Xoshiro256 same(77);
  CHECK(env.rng().Next() == same.Next());
  env.Kill();
  int ran = 0;
  Timer t = env.RunAfter(milliseconds(1), [&] { ++ran; });
  CHECK_FALSE(t.pending());
  env.Post([&] { ++ran; });
  env.RunCompute([&] { ++ran; return Status::Ok(); }, [&](const Status&) { ++ran; });
  s.RunAll();
  CHECK(ran == 0);
}

}  // namespace
}  // namespace dpnode::sim
