#include "kevent/internal/timer_heap.h"

#include <algorithm>

#include "kevent/internal/check.h"

namespace kev::kevent_internal {

void TimerHeap::Place(const Entry& e, size_t i) {
  heap_[i] = e;
  if (e.request != nullptr) e.request->timer_heap_index = static_cast<uint32_t>(i);
}

size_t TimerHeap::SiftUp(size_t i, int64_t deadline_ns, uint64_t seq, Request* request) {
  const Entry e{deadline_ns, seq, request};  // scalars in registers, not a stack round trip
  while (i > 0) {
    const size_t parent = (i - 1) / kArity;
    if (!Less(e, heap_[parent])) break;
    Place(heap_[parent], i);
    i = parent;
  }
  Place(e, i);
  return i;
}

void TimerHeap::SiftDown(size_t i) {
  const Entry e = heap_[i];
  const size_t n = heap_.size();
  while (true) {
    const size_t first = kArity * i + 1;
    if (first >= n) break;
    const size_t last = first + kArity < n ? first + kArity : n;
    size_t best = first;
    for (size_t c = first + 1; c < last; ++c) {
      if (Less(heap_[c], heap_[best])) best = c;
    }
    if (!Less(heap_[best], e)) break;
    Place(heap_[best], i);
    i = best;
  }
  Place(e, i);
}

bool TimerHeap::Arm(Request* r) {
  KEV_CHECK(!r->timer_armed());
  KEV_CHECK(heap_.size() < Request::kTimerNotArmed);
  const int64_t deadline_ns = r->timer_deadline_ns;
  const uint64_t seq = next_seq_++;
  ++live_;
  if (!heap_.empty() && deadline_ns >= max_deadline_) {
    // Not earlier than any entry, and armed after all of them: it stays where it lands, so
    // its parent's entry (a cache miss in a big heap) is not even read.
    heap_.push_back(Entry{deadline_ns, seq, r});  // amortised growth only
    r->timer_heap_index = static_cast<uint32_t>(heap_.size() - 1);
    max_deadline_ = deadline_ns;
    return false;
  }
  max_deadline_ = heap_.empty() ? deadline_ns : std::max(max_deadline_, deadline_ns);
  heap_.push_back(Entry{deadline_ns, seq, r});  // amortised growth only
  // Sift the copy in hand, not heap_.back(): reading back the entry just stored stalls on the
  // store when its cache line is cold (perf: 13% of arming a million timers went there).
  const bool earliest = SiftUp(heap_.size() - 1, deadline_ns, seq, r) == 0;
  earlier_armed_ |= earliest;
  return earliest;
}

void TimerHeap::Cancel(Request* r) {
  if (!r->timer_armed()) return;
  const size_t i = r->timer_heap_index;
  KEV_CHECK(i < heap_.size() && heap_[i].request == r);
  r->timer_heap_index = Request::kTimerNotArmed;
  --live_;
  if (live_ == 0) {
    heap_.clear();  // every entry left is a tombstone (keeps the capacity)
    return;
  }
  heap_[i].request = nullptr;  // a tombstone: same key, so the heap order still holds
  while (!heap_.empty() && heap_.back().request == nullptr) heap_.pop_back();
  // Rebuild once tombstones outnumber armed timers kTombstoneRatio to one: amortised O(1) per
  // cancel, memory bounded by kTombstoneRatio + 1 entries per armed timer.
  if (heap_.size() - live_ > kTombstoneRatio * live_ && heap_.size() >= 64) Compact();
}

void TimerHeap::PopTop() {
  const Entry last = heap_.back();
  heap_.pop_back();
  if (heap_.empty()) return;
  Place(last, 0);
  SiftDown(0);
}

void TimerHeap::DropCancelledTop() {
  while (!heap_.empty() && heap_[0].request == nullptr) PopTop();
}

void TimerHeap::Compact() {
  size_t n = 0;
  for (const Entry& e : heap_) {
    if (e.request != nullptr) heap_[n++] = e;
  }
  heap_.resize(n);
  for (size_t i = 0; i < n; ++i) heap_[i].request->timer_heap_index = static_cast<uint32_t>(i);
  // Floyd's bottom-up heapify.
  if (n > 1) {
    for (size_t i = (n - 2) / kArity + 1; i-- > 0;) SiftDown(i);
  }
}

Request* TimerHeap::PopDue(int64_t now_ns) {
  // Only tombstones that are due leave here: this runs on every kevent_ctl call.
  while (!heap_.empty() && heap_[0].request == nullptr && heap_[0].deadline_ns <= now_ns) PopTop();
  if (heap_.empty() || heap_[0].deadline_ns > now_ns) return nullptr;
  Request* r = heap_[0].request;
  r->timer_heap_index = Request::kTimerNotArmed;
  --live_;
  PopTop();
  if (live_ == 0) heap_.clear();
  return r;
}

std::optional<int64_t> TimerHeap::NextDeadline() {
  DropCancelledTop();
  if (heap_.empty()) return std::nullopt;
  return heap_[0].deadline_ns;
}

}  // namespace kev::kevent_internal
