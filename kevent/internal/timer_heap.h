// kevent/internal/timer_heap.h: the queue's timers, a binary min-heap of intrusive requests.
//
// Arm, cancel and re-arm are O(log n) with no allocation beyond the heap array's amortised
// growth: each request remembers its heap position (TimerSlot::heap_index), so cancelling one of
// a million armed timers does not search. Ties on the deadline fire in arming order.
//
// Example:
//   TimerHeap heap;
//   r.timer.deadline_ns = now + 1'000'000;
//   heap.Arm(&r);
//   while (Request* due = heap.PopDue(NowNs())) { ... }
//
// Not thread-safe: owned by one queue.
#ifndef KEV_KEVENT_INTERNAL_TIMER_HEAP_H_
#define KEV_KEVENT_INTERNAL_TIMER_HEAP_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "kevent/internal/request.h"

namespace kev::kevent_internal {

class TimerHeap {
 public:
  TimerHeap() = default;
  TimerHeap(const TimerHeap&) = delete;
  TimerHeap& operator=(const TimerHeap&) = delete;

  // Inserts r (not armed) with r->timer.deadline_ns already set.
  void Arm(Request* r);
  // Removes r if armed; no-op otherwise.
  void Cancel(Request* r);
  // Removes and returns the earliest request whose deadline is <= now_ns, or nullptr.
  Request* PopDue(int64_t now_ns);
  // The earliest deadline, if any timer is armed.
  std::optional<int64_t> NextDeadline() const;

  size_t size() const { return heap_.size(); }
  bool empty() const { return heap_.empty(); }

 private:
  bool Less(const Request* a, const Request* b) const;
  void Place(Request* r, size_t i);
  void SiftUp(size_t i);
  void SiftDown(size_t i);

  std::vector<Request*> heap_;
  uint64_t next_seq_ = 0;
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_TIMER_HEAP_H_
