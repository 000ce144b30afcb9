// The simulator's engine: one virtual clock and one queue of events for every
// simulated node in the process.
//
// Events run in order of (virtual time, insertion sequence): two events at the
// same instant run in the order they were scheduled, so a run is a pure
// function of its inputs. Each event is tagged with the node it belongs to
// (kWorldNode for the network model's own bookkeeping); DropNodeEvents()
// discards every pending event of a crashed node in O(1).
//
// Cost model: the queue is a 4-ary min-heap of 16-byte entries (time; then
// sequence and slab slot packed in one word), laid out so that the four
// children of a node share one 64-byte cache line; callbacks live out of
// line in a slab indexed by slot, so sifting moves small PODs and never a
// std::function. Cancellation is lazy: Cancel() frees the slot, and the stale
// heap entry is discarded when it reaches the top. Limits: 2^24 (16.7 M)
// events pending at once, 2^40 (1.1e12) events scheduled per run.
//
// Single-threaded by design; no wall clock is read anywhere.
#ifndef DPNODE_SIM_SCHEDULER_H_
#define DPNODE_SIM_SCHEDULER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <vector>

#include "node/env.h"

namespace dpnode::sim {

// Index of a simulated node in its World (0, 1, 2, ...).
using NodeIndex = uint32_t;
// Tag for events that belong to no node (partitions, crashes, restarts).
inline constexpr NodeIndex kWorldNode = 0xFFFFFFFFu;

// Handle to one scheduled event: its sequence number (high 40 bits) and slab
// slot (low 24 bits). Copyable; stays valid, as a stale handle, after the
// event ran or was cancelled.
struct EventId {
  uint64_t key = UINT64_MAX;
};

class Scheduler {
 public:
  using Callback = std::function<void()>;

  // Virtual time starts at TimePoint{} (0 ns).
  Scheduler() = default;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Runs `fn` at virtual time `at` on behalf of `node`. `at` earlier than
  // Now() is clamped to Now() (the event runs after those already due).
  EventId Schedule(TimePoint at, NodeIndex node, Callback fn);
  // `delay` saturates: Duration::max() means "at the end of time".
  EventId ScheduleAfter(Duration delay, NodeIndex node, Callback fn) {
    const TimePoint at = delay > TimePoint::max() - now_ ? TimePoint::max() : now_ + delay;
    return Schedule(at, node, std::move(fn));
  }
  // Cancels a pending event; returns false if it already ran, was cancelled
  // or was dropped. The callback (and what it captured) is destroyed now.
  bool Cancel(EventId id);
  // Discards every event of `node` scheduled so far (a crash). Events the
  // node schedules afterwards run normally. Lazy: O(1) now, O(log n) per
  // discarded event when it surfaces.
  void DropNodeEvents(NodeIndex node);

  // Runs the earliest pending event; returns false when the queue is empty.
  bool Step();
  // Runs events until `done()` holds (checked before each event and after the
  // last) or the next event is later than `deadline`. Returns done(). When it
  // stops for the deadline, Now() is advanced to `deadline`, unless that is
  // TimePoint::max() (an empty queue then leaves Now() where it was).
  bool RunUntil(const std::function<bool()>& done, TimePoint deadline);
  // Runs every event due within `d` of Now(), then sets Now() to Now() + d
  // (saturating).
  void RunFor(Duration d);
  // Runs until the queue is empty or `max_events` have run.
  void RunAll(uint64_t max_events = UINT64_MAX);

  TimePoint Now() const { return now_; }
  // The node whose event is running (kWorldNode outside node events).
  NodeIndex current_node() const { return current_node_; }
  // Pending entries, including cancelled ones not yet discarded.
  size_t queued() const { return heap_size(); }
  // Scheduled and not cancelled; events of a dropped node count until they
  // surface and are discarded.
  size_t pending() const { return live_; }
  uint64_t events_run() const { return events_run_; }
  // A running hash of (time, sequence, node) of every event run so far: two
  // runs with equal hashes ran the same events in the same order.
  uint64_t trace_hash() const { return trace_hash_; }

 private:
  // time_ns << 64 | key, with key = seq << 24 | slot: one unsigned compare
  // orders by time, then sequence, without branches. time_ns >= 0 always.
  using Entry = __uint128_t;
  static Entry MakeEntry(int64_t time_ns, uint64_t key) {
    return (static_cast<Entry>(static_cast<uint64_t>(time_ns)) << 64) | key;
  }
  static int64_t TimeOf(Entry e) { return static_cast<int64_t>(static_cast<uint64_t>(e >> 64)); }
  static uint64_t KeyOf(Entry e) { return static_cast<uint64_t>(e); }
  struct Slot {
    Callback fn;
    uint64_t key = UINT64_MAX;  // of the live event in this slot
    uint32_t node_epoch = 0;
    NodeIndex node = kWorldNode;
  };
  // Cache-line aligned storage for the heap.
  template <typename T>
  struct AlignedAllocator {
    using value_type = T;
    AlignedAllocator() = default;
    template <typename U>
    AlignedAllocator(const AlignedAllocator<U>&) {}  // NOLINT: rebind
    T* allocate(size_t n) {
      return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64)));
    }
    void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
    bool operator==(const AlignedAllocator&) const { return true; }
    bool operator!=(const AlignedAllocator&) const { return false; }
  };
  // Heap index i lives at heap_[i + kPad], so children 4i+1..4i+4 occupy
  // heap_[4i+4 .. 4i+7]: one aligned 64-byte line.
  static constexpr size_t kPad = 3;

  bool Live(Entry e) const { return slots_[KeyOf(e) & kSlotMask].key == KeyOf(e); }
  bool Dropped(const Slot& s) const { return s.node_epoch != NodeEpoch(s.node); }
  void Push(Entry e);
  void PopTop();
  void FreeSlot(uint32_t slot);
  uint32_t NodeEpoch(NodeIndex node) const {
    return node < node_epoch_.size() ? node_epoch_[node] : 0;
  }
  size_t heap_size() const { return heap_.size() - kPad; }

  static constexpr uint64_t kSlotMask = (uint64_t{1} << 24) - 1;

  std::vector<Entry, AlignedAllocator<Entry>> heap_ = std::vector<Entry, AlignedAllocator<Entry>>(kPad);
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<uint32_t> node_epoch_;
  TimePoint now_{};
  uint64_t next_seq_ = 0;
  uint64_t events_run_ = 0;
  uint64_t trace_hash_ = 0x6a09e667f3bcc908ull;  // arbitrary start
  size_t live_ = 0;
  NodeIndex current_node_ = kWorldNode;
};

}  // namespace dpnode::sim

#endif  // DPNODE_SIM_SCHEDULER_H_
