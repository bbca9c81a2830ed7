// kevent/internal/timer_heap.h: the queue's timers, a 4-ary min-heap with lazy cancellation.
//
// Each entry holds its deadline and arming sequence inline (sifting compares without touching
// the requests) and a pointer to its request; a request remembers its entry's position
// (Request::timer_heap_index). Arm is O(log n) (O(1) for the common later-than-everything
// deadline); Cancel is O(1): it only marks the entry cancelled (a tombstone) and unlinks the
// request, so the request may be freed at once. Tombstones leave the heap when they reach the
// top (PopDue, NextDeadline) or when they outnumber the armed timers kTombstoneRatio to one
// (one O(n) rebuild, amortised O(1) per cancel). Ties on the deadline fire in arming order. No
// allocation beyond the array's amortised growth.
//
// Example:
//   TimerHeap heap;
//   r.timer_deadline_ns = now + 1'000'000;
//   heap.Arm(&r);
//   while (Request* due = heap.PopDue(NowNs())) { ... }
//
// Not thread-safe: owned by one queue.
#ifndef KEV_KEVENT_INTERNAL_TIMER_HEAP_H_
#define KEV_KEVENT_INTERNAL_TIMER_HEAP_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "kevent/internal/huge_page_allocator.h"
#include "kevent/internal/request.h"

namespace kev::kevent_internal {

class TimerHeap {
 public:
  TimerHeap() = default;
  TimerHeap(const TimerHeap&) = delete;
  TimerHeap& operator=(const TimerHeap&) = delete;

  // Inserts r (not armed) with r->timer_deadline_ns already set. Returns true if r is now the
  // earliest entry (the caller's sleep may need shortening).
  bool Arm(Request* r);
  // Removes r if armed; no-op otherwise. r may be destroyed right after.
  void Cancel(Request* r);
  // Removes and returns the earliest armed request whose deadline is <= now_ns, or nullptr.
  Request* PopDue(int64_t now_ns);
  // The earliest armed deadline, if any timer is armed (drops cancelled entries off the top).
  std::optional<int64_t> NextDeadline();

  // True if an Arm since the last call made its request the earliest entry; clears the flag.
  bool TakeEarlierArmed() {
    const bool was = earlier_armed_;
    earlier_armed_ = false;
    return was;
  }

  // Armed timers (cancelled entries not counted).
  size_t size() const { return live_; }
  bool empty() const { return live_ == 0; }
  // Entries in the array, tombstones included: at most (kTombstoneRatio + 1) * size(), or 64.
  size_t entries() const { return heap_.size(); }

  // Tombstones per armed timer that trigger a rebuild (see Cancel). 3 rather than 1: arming and
  // cancelling a million timers in arming order (tombstones at the front, none trimmed off the
  // back) rebuilt 1M entries in all with 1, 333k with 3 (A/B, timer_bench arm+cancel warm:
  // 123 -> 118 ms per 1M); the price is up to 96 bytes of heap per armed timer instead of 48.
  static constexpr size_t kTombstoneRatio = 3;

 private:
  struct Entry {
    int64_t deadline_ns;
    uint64_t seq;
    Request* request;  // nullptr: cancelled
  };
  static constexpr size_t kArity = 4;  // shallower than binary: fewer cache misses per sift

  static bool Less(const Entry& a, const Entry& b) {
    return a.deadline_ns != b.deadline_ns ? a.deadline_ns < b.deadline_ns : a.seq < b.seq;
  }
  void Place(const Entry& e, size_t i);
  // Moves the entry (deadline_ns, seq, request), whose slot is i, up to its place; returns that
  // place.
  size_t SiftUp(size_t i, int64_t deadline_ns, uint64_t seq, Request* request);
  void SiftDown(size_t i);
  void PopTop();
  void DropCancelledTop();
  void Compact();

  std::vector<Entry, HugePageAllocator<Entry>> heap_;  // 24 MB at a million timers
  size_t live_ = 0;
  uint64_t next_seq_ = 0;
  // At least every entry's deadline while heap_ is not empty (removals leave it stale, which
  // only sends Arm down its general path more often): an Arm at or after it appends without
  // sifting.
  int64_t max_deadline_ = 0;
  bool earlier_armed_ = false;
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_TIMER_HEAP_H_
