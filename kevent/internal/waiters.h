// kevent/internal/waiters.h: the threads blocked in one C-API queue, and how they are woken.
//
// The waiting strategy of the C API, in one place:
//   - Each blocked thread has a Waiter with its own condition (get_events: at least `min_nr`
//     events ready; kevent_wait: an event ready and a free ring slot, or the consumer index moved)
//     and its own wake-up (a private mutex, condition variable and flag), so a wake-up goes to one
//     chosen thread.
//   - A ready event wakes one waiter whose condition now holds (FIFO), or every waiter when the
//     request has KEVENT_REQ_WAKEUP_ALL. KEVENT_CTL_READY with num == 0 interrupts one waiter
//     (or, with nobody waiting, the next thread that would block).
//   - One waiter is the driver: instead of sleeping on its wake-up it blocks in Poller::Wait
//     (until its deadline or the next timer), with the queue's lock held, so poller completions
//     and origins run under the lock like everything else. Any other thread that needs the lock
//     meanwhile calls Poller::Wake first (kevent.cc's QueueLock); the driver then steps out of
//     Wait and lets it in. When the driver leaves, the role passes to another waiter.
//   The others sleep on their own wake-up without the queue's lock, and take it again (through
//   QueueLock) when woken.
//
// Example (what kevent_get_events does, simplified; `lock` holds the queue's mutex):
//   Waiter w;  w.min_nr = 1;
//   waiters.Add(&w);
//   while (!w.interrupted && !WaitList::Satisfied(w, queue)) {
//     w.notified = false;
//     if (waiters.ClaimDriver(&w)) { DriverPoll(lock, deadline); continue; }   // lock held
//     lock.unlock();  WaitList::Sleep(w, deadline);  lock.lock();
//   }
//   waiters.Remove(&w, queue);
//
// Threading: every method but Sleep is called with the queue's mutex held.
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
  ListHook hook;
  // The private wake-up. Wakers set `signaled` under wake_mu while holding the queue's lock;
  // the waiter waits on it without the queue's lock.
  std::mutex wake_mu;
  std::condition_variable wake_cv;
  bool signaled = false;
};

class WaitList {
 public:
  WaitList() = default;
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;

  // Does w's condition hold now?
  static bool Satisfied(const Waiter& w, const Queue& q);

  void Add(Waiter* w);
  // Removes w; if it was the driver, hands the role on (waking the new driver so it starts
  // polling and watching the timers).
  void Remove(Waiter* w, const Queue& q);
  size_t size() const { return list_.size(); }

  // Makes w the driver if there is none. Returns whether w is the driver.
  bool ClaimDriver(Waiter* w);
  bool is_driver(const Waiter* w) const { return driver_ == w; }

  // Without the queue's lock: sleeps until w is signaled or `until_ns` (CLOCK_MONOTONIC;
  // nullopt: none) passes, and consumes the signal. Spurious returns are allowed: callers loop.
  static void Sleep(Waiter& w, std::optional<int64_t> until_ns);

  // A request joined the ready list.
  void OnEventReady(bool wake_all, const Queue& q);
  // Wakes the first waiter whose condition holds and that has no wake-up on its way.
  void WakeSatisfied(const Queue& q);
  // Ring slots were committed: kevent_wait waiters whose condition now holds are woken.
  void OnCommit(const Queue& q);
  // A timer was armed earlier than before: the driver re-computes its sleep (a driver blocked in
  // Poller::Wait was already woken by the thread that took the lock to arm it).
  void OnTimerArmed();
  // KEVENT_CTL_READY with num == 0.
  void InterruptOne();
  // Consumes the interrupt left when nobody was waiting.
  bool TakeInterrupt();
  // kevent_close: every waiter is woken (and sees the queue closed).
  void WakeAll();

 private:
  void Notify(Waiter& w);
  static void Signal(Waiter& w);

  IntrusiveList<Waiter, &Waiter::hook> list_;
  Waiter* driver_ = nullptr;
  bool pending_interrupt_ = false;
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_WAITERS_H_
