#include "kevent/internal/waiters.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace kev::kevent_internal {
namespace {

std::chrono::steady_clock::time_point ToTimePoint(int64_t monotonic_ns) {
  // libstdc++'s steady_clock is CLOCK_MONOTONIC, the queue's clock.
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(monotonic_ns));
}

}  // namespace

bool WaitList::Satisfied(const Waiter& w, const Queue& q) {
  if (w.kind == Waiter::Kind::kEvents) return q.ready_count() >= w.min_nr;
  return (q.ready_count() > 0 && q.ring().space() > 0) || q.ring().uidx() != w.old_uidx;
}

void WaitList::Add(Waiter* w) { list_.PushBack(w); }

void WaitList::Remove(Waiter* w, const Queue& q) {
  list_.Remove(w);
  if (driver_ != w) return;
  driver_ = list_.front();
  if (driver_ != nullptr && q.NextTimerDeadline()) driver_->cv.notify_one();
}

void WaitList::Block(std::unique_lock<std::mutex>& lock, Waiter& w,
                     std::optional<int64_t> deadline_ns, const Queue& q) {
  if (driver_ == nullptr) driver_ = &w;
  std::optional<int64_t> until = deadline_ns;
  if (driver_ == &w) {
    if (std::optional<int64_t> timer = q.NextTimerDeadline()) {
      until = until ? std::min(*until, *timer) : *timer;
    }
  }
  if (until) {
    w.cv.wait_until(lock, ToTimePoint(*until));
  } else {
    w.cv.wait(lock);
  }
}

void WaitList::Notify(Waiter& w) {
  w.notified = true;
  // Notified under the queue's mutex: the waiter cannot return (and destroy its condition
  // variable) before this call ends.
  w.cv.notify_one();
}

void WaitList::OnEventReady(bool wake_all, const Queue& q) {
  if (!wake_all) {
    WakeSatisfied(q);
    return;
  }
  for (Waiter* w = list_.front(); w != nullptr; w = list_.next(w)) {
    w->interrupted = true;
    Notify(*w);
  }
}

void WaitList::WakeSatisfied(const Queue& q) {
  for (Waiter* w = list_.front(); w != nullptr; w = list_.next(w)) {
    if (!w->notified && Satisfied(*w, q)) {
      Notify(*w);
      return;
    }
  }
}

void WaitList::OnCommit(const Queue& q) {
  for (Waiter* w = list_.front(); w != nullptr; w = list_.next(w)) {
    if (w->kind == Waiter::Kind::kRing && !w->notified && Satisfied(*w, q)) Notify(*w);
  }
}

void WaitList::OnTimerArmed() {
  if (driver_ == nullptr) driver_ = list_.front();
  if (driver_ != nullptr) driver_->cv.notify_one();
}

void WaitList::InterruptOne() {
  for (Waiter* w = list_.front(); w != nullptr; w = list_.next(w)) {
    if (!w->notified && !w->interrupted) {
      w->interrupted = true;
      Notify(*w);
      return;
    }
  }
  pending_interrupt_ = true;
}

bool WaitList::TakeInterrupt() { return std::exchange(pending_interrupt_, false); }

void WaitList::WakeAll() {
  for (Waiter* w = list_.front(); w != nullptr; w = list_.next(w)) Notify(*w);
}

}  // namespace kev::kevent_internal
