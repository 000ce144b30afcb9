// The event queue: a cache-aligned 4-ary heap of 16-byte entries over a slab
// of callbacks.
#include "sim/scheduler.h"

#include <utility>

#include "base/check.h"

namespace dpnode::sim {
namespace {

constexpr size_t kArity = 4;
constexpr uint64_t kMaxSeq = (uint64_t{1} << 40) - 1;

inline uint64_t MixWord(uint64_t h, uint64_t x) {
  h ^= x;
  h *= 0x9E3779B97F4A7C15ull;
  return h ^ (h >> 29);
}

}  // namespace

EventId Scheduler::Schedule(TimePoint at, NodeIndex node, Callback fn) {
  DPNODE_CHECK(static_cast<bool>(fn), "scheduling an empty callback");
  DPNODE_CHECK(next_seq_ <= kMaxSeq, "more than 2^40 events scheduled");
  if (at < now_) at = now_;
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    DPNODE_CHECK(slots_.size() <= kSlotMask, "more than 2^24 events pending");
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  const uint64_t key = (next_seq_++ << 24) | slot;
  Slot& s = slots_[slot];
  s.fn = std::move(fn);
  s.key = key;
  s.node = node;
  s.node_epoch = NodeEpoch(node);
  ++live_;
  Push(MakeEntry(at.time_since_epoch().count(), key));
  return EventId{key};
}

bool Scheduler::Cancel(EventId id) {
  const uint64_t slot = id.key & kSlotMask;
  if (slot >= slots_.size()) return false;
  Slot& s = slots_[slot];
  if (s.key != id.key) return false;
  const bool dropped = Dropped(s);
  FreeSlot(static_cast<uint32_t>(slot));
  return !dropped;
}

void Scheduler::DropNodeEvents(NodeIndex node) {
  DPNODE_CHECK(node != kWorldNode, "world events cannot be dropped");
  if (node >= node_epoch_.size()) node_epoch_.resize(static_cast<size_t>(node) + 1, 0);
  ++node_epoch_[node];
}

void Scheduler::FreeSlot(uint32_t slot) {
  Slot& s = slots_[slot];
  s.fn = nullptr;
  s.key = UINT64_MAX;
  --live_;
  free_slots_.push_back(slot);
}

void Scheduler::Push(Entry e) {
  heap_.push_back(e);
  Entry* h = heap_.data() + kPad;
  size_t i = heap_size() - 1;
  while (i > 0) {
    const size_t parent = (i - 1) / kArity;
    if (!(e < h[parent])) break;
    h[i] = h[parent];
    i = parent;
  }
  h[i] = e;
}

void Scheduler::PopTop() {
  const Entry last = heap_.back();
  heap_.pop_back();
  const size_t n = heap_size();
  if (n == 0) return;
  Entry* h = heap_.data() + kPad;
  // Bottom-up: walk the hole down along the smaller children to a leaf, then
  // sift `last` (which usually belongs near the bottom) up from there.
  size_t i = 0;
  for (;;) {
    const size_t first = kArity * i + 1;
    size_t best;
    if (first + kArity <= n) {
      // Branch-free: on random times these comparisons are unpredictable.
      const size_t a = first + static_cast<size_t>(h[first + 1] < h[first]);
      const size_t b = first + 2 + static_cast<size_t>(h[first + 3] < h[first + 2]);
      best = h[b] < h[a] ? b : a;
    } else if (first < n) {
      best = first;
      for (size_t c = first + 1; c < n; ++c) {
        if (h[c] < h[best]) best = c;
      }
    } else {
      break;
    }
    h[i] = h[best];
    i = best;
  }
  while (i > 0) {
    const size_t parent = (i - 1) / kArity;
    if (!(last < h[parent])) break;
    h[i] = h[parent];
    i = parent;
  }
  h[i] = last;
}

bool Scheduler::Step() {
  while (heap_size() > 0) {
    const Entry top = heap_[kPad];
    PopTop();
    const uint64_t key = KeyOf(top);
    const auto slot = static_cast<uint32_t>(key & kSlotMask);
    Slot& s = slots_[slot];
    if (s.key != key) continue;  // cancelled
    if (Dropped(s)) {                // its node crashed
      FreeSlot(slot);
      continue;
    }
    // Move the callback out first: it may schedule events and grow slots_.
    Callback fn = std::move(s.fn);
    const NodeIndex node = s.node;
    FreeSlot(slot);
    // The next event's slot is a random access into the slab: start loading
    // it while this callback runs.
    if (heap_size() > 0) __builtin_prefetch(&slots_[KeyOf(heap_[kPad]) & kSlotMask]);
    now_ = TimePoint(Duration(TimeOf(top)));
    current_node_ = node;
    ++events_run_;
    trace_hash_ = MixWord(MixWord(MixWord(trace_hash_, static_cast<uint64_t>(TimeOf(top))), key >> 24), node);
    fn();
    current_node_ = kWorldNode;
    return true;
  }
  return false;
}

bool Scheduler::RunUntil(const std::function<bool()>& done, TimePoint deadline) {
  for (;;) {
    if (done()) return true;
    // Discard stale entries so the deadline check sees a real event.
    while (heap_size() > 0) {
      const Entry top = heap_[kPad];
      const auto slot = static_cast<uint32_t>(KeyOf(top) & kSlotMask);
      if (Live(top) && !Dropped(slots_[slot])) break;
      const bool dropped = Live(top);
      PopTop();
      if (dropped) FreeSlot(slot);
    }
    if (heap_size() == 0 || TimeOf(heap_[kPad]) > deadline.time_since_epoch().count()) {
      if (now_ < deadline && deadline != TimePoint::max()) now_ = deadline;
      return done();
    }
    Step();
  }
}

void Scheduler::RunFor(Duration d) {
  const TimePoint deadline = d > TimePoint::max() - now_ ? TimePoint::max() : now_ + d;
  RunUntil([] { return false; }, deadline);
}

void Scheduler::RunAll(uint64_t max_events) {
  for (uint64_t i = 0; i < max_events && Step(); ++i) {
  }
}

}  // namespace dpnode::sim
