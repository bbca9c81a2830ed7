// kevent/internal/waiters.h: the threads blocked in one C-API queue, and how they are woken.
//
// The waiting strategy of the C API, in one place:
//   - Each blocked thread has a Waiter with its own condition (get_events: at least `min_nr`
//     events ready; kevent_wait: an event ready and a free ring slot, or the consumer index moved)
//     and its own condition variable, so a wake-up goes to one chosen thread.
//   - A ready event wakes one waiter whose condition now holds (FIFO), or every waiter when the
//     request has KEVENT_REQ_WAKEUP_ALL. KEVENT_CTL_READY with num == 0 interrupts one waiter
//     (or, with nobody waiting, the next thread that would block).
//   - One waiter is the driver: it also sleeps no later than the next timer deadline and fires
//     the due timers. When it leaves, the role passes to another waiter.
// The next step (OS origins) keeps this shape and changes only how the driver sleeps: it will
// block in Poller::Wait and be woken by Poller::Wake, while the other waiters sleep here.
//
// Example (what kevent_get_events does, simplified; `mu` guards `queue` and `waiters`):
//   std::unique_lock lock(mu);
//   Waiter w;  w.min_nr = 1;
//   waiters.Add(&w);
//   while (!w.interrupted && !WaitList::Satisfied(w, queue)) {
//     queue.ExpireTimers();
//     w.notified = false;
//     waiters.Block(lock, w, deadline, queue);
//   }
//   waiters.Remove(&w, queue);
//
// Threading: every method is called with the queue's mutex held (the `lock` passed to Block).
#ifndef KEV_KEVENT_INTERNAL_WAITERS_H_
#define KEV_KEVENT_INTERNAL_WAITERS_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>

#include "kevent/internal/intrusive_list.h"
#include "kevent/internal/queue.h"

namespace kev::kevent_internal {

struct Waiter {
  enum class Kind { kEvents, kRing };
  Kind kind = Kind::kEvents;
  size_t min_nr = 1;         // kEvents: ready events needed
  unsigned old_uidx = 0;     // kRing: the consumer index the caller knows
  bool notified = false;     // a wake-up is on its way: wake-one picks another waiter
  bool interrupted = false;  // return now with what is ready (READY num == 0, WAKEUP_ALL)
  std::condition_variable cv;
  ListHook hook;
};

class WaitList {
 public:
  WaitList() = default;
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;

  // Does w's condition hold now?
  static bool Satisfied(const Waiter& w, const Queue& q);

  void Add(Waiter* w);
  // Removes w; if it was the driver, hands the role on (poking the new driver when timers are
  // armed, so it starts watching them).
  void Remove(Waiter* w, const Queue& q);
  size_t size() const { return list_.size(); }

  // Sleeps until w is notified, `deadline_ns` (CLOCK_MONOTONIC; nullopt: none) passes, or, for
  // the driver, the next timer deadline passes. Spurious returns are allowed: callers loop.
  void Block(std::unique_lock<std::mutex>& lock, Waiter& w, std::optional<int64_t> deadline_ns,
             const Queue& q);

  // A request joined the ready list.
  void OnEventReady(bool wake_all, const Queue& q);
  // Wakes the first waiter whose condition holds and that has no wake-up on its way.
  void WakeSatisfied(const Queue& q);
  // Ring slots were committed: kevent_wait waiters whose condition now holds are woken.
  void OnCommit(const Queue& q);
  // A timer was armed earlier than before: the driver re-computes its sleep.
  void OnTimerArmed();
  // KEVENT_CTL_READY with num == 0.
  void InterruptOne();
  // Consumes the interrupt left when nobody was waiting.
  bool TakeInterrupt();
  // kevent_close: every waiter is woken (and sees the queue closed).
  void WakeAll();

 private:
  void Notify(Waiter& w);

  IntrusiveList<Waiter, &Waiter::hook> list_;
  Waiter* driver_ = nullptr;
  bool pending_interrupt_ = false;
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_WAITERS_H_
