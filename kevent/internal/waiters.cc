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
  if (driver_ != nullptr) Signal(*driver_);
}

bool WaitList::ClaimDriver(Waiter* w) {
  if (driver_ == nullptr) driver_ = w;
  return driver_ == w;
}

void WaitList::Sleep(Waiter& w, std::optional<int64_t> until_ns) {
  std::unique_lock lock(w.wake_mu);
  if (until_ns) {
    w.wake_cv.wait_until(lock, ToTimePoint(*until_ns), [&w] { return w.signaled; });
  } else {
    w.wake_cv.wait(lock, [&w] { return w.signaled; });
  }
  w.signaled = false;
}

void WaitList::Signal(Waiter& w) {
  // Under the queue's lock: the waiter cannot leave (and destroy its wake-up) before this
  // returns, because it must take the queue's lock to remove itself.
  std::lock_guard lock(w.wake_mu);
  w.signaled = true;
  w.wake_cv.notify_one();
}

void WaitList::Notify(Waiter& w) {
  w.notified = true;
  Signal(w);
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
  if (driver_ != nullptr) Signal(*driver_);
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
