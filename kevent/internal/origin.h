// kevent/internal/origin.h: the interface between the queue and the sources of events.
//
// An origin is one event type (TIMER, UNOTIFY, later SOCKET, PIPE, POLL, SIGNAL, INODE,
// POSIX_TIMER, AIO). Like the kernel patch's kevent_callbacks it has three entry points:
//   Enqueue(r)  validate r's id and event, attach r to the storage of its origin object (an fd, a
//               signal, a timer...), and say whether r is ready at once;
//   Dequeue(r)  detach r;
//   Check(r)    is r's condition true now? (the kernel's `callback`): used when an activity is
//               reported, for KEVENT_REQ_LAST_CHECK, and to re-deliver level-triggered requests.
// A Storage is the list of requests watching one origin object, possibly from several queues.
// When the object shows activity, the origin calls Storage::Ready(event_bits): the first
// matching request becomes ready, or every matching one that has KEVENT_REQ_WAKEUP_ALL.
//
// Origins driven by the OS arm operations on the queue's kev::Poller, reached through
// OriginContext; the TIMER origin uses the queue's timer heap and clock.
//
// Example (an origin whose objects report activity themselves):
//   class MyOrigin : public Origin {
//     int Enqueue(Request& r) override { objects_[r.uk.id.raw[0]].Attach(r); return Check(r); }
//     void Dequeue(Request& r) override { r.storage->Detach(r); }
//     int Check(Request& r) override { return IsReadyNow(r) ? 1 : 0; }
//   };
//   ... later, on activity:  objects_[fd].Ready(KEVENT_SOCKET_RECV);
//
// Threading: an origin belongs to its queue and runs on the thread that owns the queue at that
// moment (the queue's lock is held in the C API).
#ifndef KEV_KEVENT_INTERNAL_ORIGIN_H_
#define KEV_KEVENT_INTERNAL_ORIGIN_H_

#include <cstddef>
#include <cstdint>

#include "kevent/internal/intrusive_list.h"
#include "kevent/internal/request.h"

namespace kev {
class Poller;
}  // namespace kev

namespace kev::kevent_internal {

class TimerHeap;

// What an origin may use from the queue that owns it.
class OriginContext {
 public:
  virtual ~OriginContext() = default;
  // CLOCK_MONOTONIC now, in nanoseconds (tests substitute a manual clock).
  virtual int64_t NowNs() = 0;
  // The queue's timer heap (TIMER origin).
  virtual TimerHeap& timers() = 0;
  // The poller OS-driven origins arm operations on; nullptr until the queue has one.
  virtual Poller* poller() = 0;
};

class Origin {
 public:
  virtual ~Origin() = default;

  // Validates r.uk (id, event) and attaches r to its storage. Returns 0 if r is armed and not
  // ready, > 0 if it is ready now (ret_data filled), or a negative errno (r is not attached:
  // EINVAL for a bad id or event, EBADF for a bad fd...).
  virtual int Enqueue(Request& r) = 0;
  // Detaches r from its storage; r may be ready or not. Never fails.
  virtual void Dequeue(Request& r) = 0;
  // Is r's condition true now? > 0 yes (fills r.uk.ret_data), 0 no, < 0 broken (negative
  // errno). Occurrence origins (timer, unotify...) answer yes: an occurrence, once reported,
  // stays true until delivered.
  virtual int Check(Request& r) = 0;
  // Check of each of rs[0..n), results into rcs[0..n). Origins whose Check is a syscall answer
  // them all with one (the FD origins: one poll(2) over every fd). Default: Check in a loop.
  virtual void CheckMany(Request* const* rs, int* rcs, size_t n) {
    for (size_t i = 0; i < n; ++i) rcs[i] = Check(*rs[i]);
  }
  // Completes the event handed to the user at delivery (e.g. expiration counts from
  // r.pending). Default: the registered ukevent as is.
  virtual void Fill(const Request& r, ukevent& out) {}
  // r's deadline in the queue's timer heap passed (r is no longer armed). For origins that arm
  // timers (TIMER; later POSIX_TIMER).
  virtual void OnTimer(Request& r, int64_t now_ns) {}
  // Readiness origins (SOCKET, PIPE, POLL) are level-triggered: a delivered request without
  // KEVENT_REQ_ET is checked again and re-delivered while its condition holds.
  virtual bool level_triggered() const { return false; }
  // Level-triggered r (no KEVENT_REQ_ET) was just delivered. true: the origin's own
  // registration re-reports r's condition while it holds (FD origins in level mode: the
  // kernel's level-triggered epoll), so it has re-armed r itself, as a re-check answering "not
  // ready" would, and the queue skips its re-check. false (default): the queue re-checks r.
  virtual bool RechecksItself(Request& r) { return false; }
  // r was delivered (`delivered`: an ET request after its delivery) or found not ready by a
  // re-check (LT re-check, LAST_CHECK), and waits for its next activity again: readiness
  // origins make sure their poll covers it. Not called for ONESHOT or broken requests.
  virtual void Rearm(Request& r, bool delivered) {}
  // A thread is about to block on the queue (or the reactor to poll): refresh state that
  // cannot be learnt from the poller (readiness origins: ET requests waiting for their
  // condition to clear).
  virtual void BeforeWait() {}

  // Origins that can ask the OS for their news without the Poller (the FD origins: one
  // epoll_wait on their private epoll set), so that a caller who is not going to block need
  // not drive the Poller (an io_uring_enter) to see new activity (Queue::PollNow):
  // PollableOps() is how many of the operations in flight on the Poller PollDirectly() stands
  // in for (their completions may come later all the same, and must then be harmless);
  // PollDirectly() collects that news without blocking. Defaults: none.
  virtual size_t PollableOps() const { return 0; }
  virtual void PollDirectly() {}
};

// The requests watching one origin object (kernel: struct kevent_storage).
class Storage {
 public:
  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  // Requests must be detached (Dequeue) before their storage is destroyed.
  ~Storage();

  // Links r (not yet in any storage) at the end; r.storage = this.
  void Attach(Request& r);
  // Unlinks r if linked here; r.storage stays set so the queue can re-attach it.
  void Detach(Request& r);
  bool empty() const { return requests_.empty(); }
  // Iteration over the attached requests (origins that dispatch activity themselves).
  Request* first() const { return requests_.front(); }
  Request* next(Request* r) const { return requests_.next(r); }
  size_t size() const { return requests_.size(); }

  // An activity with `event` bits: each request whose event mask intersects them is offered to
  // its queue (Queue::Activate: Check, then ready) until one became ready; requests with
  // KEVENT_REQ_WAKEUP_ALL are always offered. Returns how many became ready.
  int Ready(uint32_t event);

  // The origin object failed or went away: every request is marked BROKEN|DONE with `err`
  // (positive errno) in ret_data[0], detached, and delivered once; then it is removed.
  void Break(int err);

 private:
  IntrusiveList<Request, &Request::storage_hook> requests_;
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_ORIGIN_H_
