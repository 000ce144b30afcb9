// The event engine: order by (time, sequence), cancellation, dropping a
// crashed node's events, and the run loops' clock semantics.
#include "sim/scheduler.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <tuple>
#include <vector>

#include "sim/seeds.h"

namespace dpnode::sim {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TimePoint At(int64_t ns) { return TimePoint(nanoseconds(ns)); }

TEST_CASE("events run in time order, ties in scheduling order, with Now() at the event time") {
  Scheduler s;
  std::vector<std::tuple<int, int64_t, NodeIndex>> ran;
  auto record = [&](int tag) {
    return [&ran, &s, tag] { ran.emplace_back(tag, s.Now().time_since_epoch().count(), s.current_node()); };
  };
  s.Schedule(At(30), 1, record(0));
  s.Schedule(At(10), 2, record(1));
  s.Schedule(At(20), 3, record(2));
  s.Schedule(At(10), 4, record(3));  // same time as tag 1, scheduled later
  s.Schedule(At(10), 5, record(4));
  s.RunAll();
  REQUIRE(ran.size() == 5);
  CHECK(ran[0] == std::make_tuple(1, int64_t{10}, NodeIndex{2}));
  CHECK(ran[1] == std::make_tuple(3, int64_t{10}, NodeIndex{4}));
  CHECK(ran[2] == std::make_tuple(4, int64_t{10}, NodeIndex{5}));
  CHECK(ran[3] == std::make_tuple(2, int64_t{20}, NodeIndex{3}));
  CHECK(ran[4] == std::make_tuple(0, int64_t{30}, NodeIndex{1}));
  CHECK(s.events_run() == 5);
  CHECK(s.current_node() == kWorldNode);
  CHECK(s.pending() == 0);
}

TEST_CASE("an event scheduled in the past runs now, after those already due") {
  Scheduler s;
  std::vector<int> ran;
  s.Schedule(At(100), 0, [&] {
    s.Schedule(At(50), 0, [&] { ran.push_back(2); });  // clamped to 100
    CHECK(s.Now() == At(100));
  });
  s.Schedule(At(100), 0, [&] { ran.push_back(1); });
  s.RunAll();
  CHECK(ran == std::vector<int>{1, 2});
  CHECK(s.Now() == At(100));
}

TEST_CASE("cancellation: a cancelled event never runs, and cancel reports what it did") {
  Scheduler s;
  int a = 0, b = 0;
  const EventId ia = s.Schedule(At(10), 0, [&] { ++a; });
  const EventId ib = s.Schedule(At(20), 0, [&] { ++b; });
  CHECK(s.pending() == 2);
  CHECK(s.Cancel(ia));
  CHECK_FALSE(s.Cancel(ia));  // twice
  CHECK(s.pending() == 1);
  s.RunAll();
  CHECK(a == 0);
  CHECK(b == 1);
  CHECK_FALSE(s.Cancel(ib));  // already ran
  CHECK_FALSE(s.Cancel(EventId{}));

  // A stale handle must not cancel the event that reuses its slot.
  const EventId ic = s.Schedule(At(30), 0, [&] { ++a; });
  CHECK(s.Cancel(ic));
  const EventId id = s.Schedule(At(40), 0, [&] { ++b; });
  CHECK_FALSE(s.Cancel(ic));
  s.RunAll();
  CHECK(b == 2);
  CHECK_FALSE(s.Cancel(id));
}

TEST_CASE("an event may cancel a later one at the same instant") {
  Scheduler s;
  int later = 0;
  EventId victim;
  s.Schedule(At(5), 0, [&] { CHECK(s.Cancel(victim)); });
  victim = s.Schedule(At(5), 0, [&] { ++later; });
  s.RunAll();
  CHECK(later == 0);
}

TEST_CASE("DropNodeEvents discards only that node's events scheduled so far") {
  Scheduler s;
  std::vector<int> ran;
  s.Schedule(At(10), 1, [&] { ran.push_back(1); });
  const EventId dropped = s.Schedule(At(20), 1, [&] { ran.push_back(2); });
  s.Schedule(At(15), 2, [&] { ran.push_back(3); });
  s.Schedule(At(5), kWorldNode, [&] {
    s.DropNodeEvents(1);
    s.Schedule(At(30), 1, [&] { ran.push_back(4); });  // after the crash: runs
  });
  s.RunAll();
  CHECK(ran == std::vector<int>{3, 4});
  CHECK_FALSE(s.Cancel(dropped));
  CHECK(s.pending() == 0);
}

TEST_CASE("RunUntil stops on the predicate or at the deadline, RunFor advances the clock") {
  Scheduler s;
  int count = 0;
  for (int i = 1; i <= 10; ++i) s.Schedule(TimePoint(milliseconds(i)), 0, [&] { ++count; });
  CHECK(s.RunUntil([&] { return count == 3; }, TimePoint(milliseconds(100))));
  CHECK(count == 3);
  CHECK(s.Now() == TimePoint(milliseconds(3)));

  CHECK_FALSE(s.RunUntil([&] { return count == 100; }, TimePoint(milliseconds(6) + nanoseconds(1))));
  CHECK(count == 6);
  CHECK(s.Now() == TimePoint(milliseconds(6) + nanoseconds(1)));

  s.RunFor(milliseconds(2));  // until 8 ms + 1 ns: events at 7, 8
  CHECK(count == 8);
  CHECK(s.Now() == TimePoint(milliseconds(8) + nanoseconds(1)));

  CHECK(s.Step());
  CHECK(count == 9);
  s.RunAll();
  CHECK(count == 10);
  CHECK_FALSE(s.Step());
}

TEST_CASE("huge delays saturate, an unbounded RunUntil leaves the clock at the last event") {
  Scheduler s;
  int ran = 0;
  s.Schedule(At(7), 0, [&] { ++ran; });
  const EventId never = s.ScheduleAfter(Duration::max(), 0, [&] { ++ran; });
  CHECK(s.RunUntil([&] { return ran == 1; }, TimePoint::max()));
  CHECK(s.Cancel(never));
  CHECK_FALSE(s.RunUntil([] { return false; }, TimePoint::max()));
  CHECK(s.Now() == At(7));
  s.ScheduleAfter(milliseconds(1), 0, [&] { ++ran; });  // the clock still works
  s.RunAll();
  CHECK(ran == 2);
  CHECK(s.Now() == At(7) + milliseconds(1));
}

TEST_CASE("RunUntil skips cancelled entries when checking the deadline") {
  Scheduler s;
  int ran = 0;
  const EventId early = s.Schedule(TimePoint(milliseconds(1)), 0, [&] { ++ran; });
  s.Schedule(TimePoint(milliseconds(50)), 0, [&] { ++ran; });
  s.Cancel(early);
  CHECK_FALSE(s.RunUntil([] { return false; }, TimePoint(milliseconds(10))));
  CHECK(ran == 0);
  CHECK(s.Now() == TimePoint(milliseconds(10)));
  CHECK(s.pending() == 1);
}

// The heap against a reference: many random times (with many ties) and
// random cancellations; the run order must be the stable sort by time.
TEST_CASE("random schedules and cancellations match a stable sort by time") {
  Scheduler s;
  Xoshiro256 rng(2024);
  struct Ref {
    int64_t time;
    int id;
    bool cancelled;
  };
  std::vector<Ref> ref;
  std::vector<EventId> ids;
  std::vector<int> ran;
  constexpr int kEvents = 20000;
  for (int i = 0; i < kEvents; ++i) {
    const auto t = static_cast<int64_t>(rng.Below(5000));  // ~4 events per instant
    ref.push_back({t, i, false});
    ids.push_back(s.Schedule(At(t), static_cast<NodeIndex>(i % 7), [&ran, i] { ran.push_back(i); }));
  }
  for (int i = 0; i < kEvents; ++i) {
    if (rng.Below(4) == 0) {
      CHECK(s.Cancel(ids[i]));
      ref[i].cancelled = true;
    }
  }
  std::stable_sort(ref.begin(), ref.end(), [](const Ref& a, const Ref& b) { return a.time < b.time; });
  std::vector<int> expected;
  for (const Ref& r : ref) {
    if (!r.cancelled) expected.push_back(r.id);
  }
  CHECK(s.pending() == expected.size());
  s.RunAll();
  CHECK(ran == expected);
}

TEST_CASE("the trace hash depends on the order of events") {
  auto run = [](bool swap) {
    Scheduler s;
    s.Schedule(At(1), swap ? 2 : 1, [] {});
    s.Schedule(At(1), swap ? 1 : 2, [] {});
    s.RunAll();
    return s.trace_hash();
  };
  CHECK(run(false) == run(false));
  CHECK(run(false) != run(true));
}

}  // namespace
}  // namespace dpnode::sim
