#include "kevent/internal/timer_heap.h"

#include "kevent/internal/check.h"

namespace kev::kevent_internal {

bool TimerHeap::Less(const Request* a, const Request* b) const {
  if (a->timer.deadline_ns != b->timer.deadline_ns) {
    return a->timer.deadline_ns < b->timer.deadline_ns;
  }
  return a->timer.seq < b->timer.seq;
}

void TimerHeap::Place(Request* r, size_t i) {
  heap_[i] = r;
  r->timer.heap_index = static_cast<uint32_t>(i);
}

void TimerHeap::SiftUp(size_t i) {
  Request* r = heap_[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!Less(r, heap_[parent])) break;
    Place(heap_[parent], i);
    i = parent;
  }
  Place(r, i);
}

void TimerHeap::SiftDown(size_t i) {
  Request* r = heap_[i];
  const size_t n = heap_.size();
  while (true) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && Less(heap_[child + 1], heap_[child])) ++child;
    if (!Less(heap_[child], r)) break;
    Place(heap_[child], i);
    i = child;
  }
  Place(r, i);
}

void TimerHeap::Arm(Request* r) {
  KEV_CHECK(!r->timer.armed());
  KEV_CHECK(heap_.size() < TimerSlot::kNotArmed);
  r->timer.seq = next_seq_++;
  heap_.push_back(r);  // amortised growth: the only allocation, not per expiry
  r->timer.heap_index = static_cast<uint32_t>(heap_.size() - 1);
  SiftUp(heap_.size() - 1);
}

void TimerHeap::Cancel(Request* r) {
  if (!r->timer.armed()) return;
  const size_t i = r->timer.heap_index;
  KEV_CHECK(i < heap_.size() && heap_[i] == r);
  Request* last = heap_.back();
  heap_.pop_back();
  r->timer.heap_index = TimerSlot::kNotArmed;
  if (last == r) return;
  Place(last, i);
  // The moved element may belong above or below its new slot.
  if (i > 0 && Less(last, heap_[(i - 1) / 2])) {
    SiftUp(i);
  } else {
    SiftDown(i);
  }
}

Request* TimerHeap::PopDue(int64_t now_ns) {
  if (heap_.empty() || heap_[0]->timer.deadline_ns > now_ns) return nullptr;
  Request* r = heap_[0];
  Cancel(r);
  return r;
}

std::optional<int64_t> TimerHeap::NextDeadline() const {
  if (heap_.empty()) return std::nullopt;
  return heap_[0]->timer.deadline_ns;
}

}  // namespace kev::kevent_internal
