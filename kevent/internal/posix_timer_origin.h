// kevent/internal/posix_timer_origin.h: the KEVENT_POSIX_TIMER origin and the engine behind
// kevent_posix_timer_create / _settime / _delete (kevent/kevent.h).
//
// A POSIX timer of a queue is made by PosixTimerCreate, which registers its request at once:
// type KEVENT_POSIX_TIMER, event KEVENT_TIMER_FIRED, id.raw_u64 = the timer id (> 0, unique in
// the queue), ptr = the caller's pointer, req_flags 0 (persistent; MODIFY may change them). The
// timer starts disarmed; PosixTimerSetTime arms it like timer_settime(2): relative or
// TIMER_ABSTIME it_value, optional it_interval, the previous setting into *old. Each expiry is
// one occurrence; delivered ret_data[0] = expirations since the last delivery (overruns
// included), ret_data[1] = 0. PosixTimerDelete removes the request and destroys the timer.
// Removing the request with KEVENT_CTL_REMOVE (or delivering it as ONESHOT) leaves the timer
// alive but unwatched (expirations are dropped) until it is deleted or an ADD with its id and
// KEVENT_TIMER_FIRED watches it again; ADD of any other POSIX_TIMER id is rejected (EINVAL).
//
// Clocks: any clock the kernel accepts for timers.
//   - CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME_ALARM and
//     CLOCK_BOOTTIME_ALARM run on a timerfd, with the kernel's exact semantics (an ABSTIME
//     REALTIME timer follows clock changes; BOOTTIME counts suspend). The _ALARM clocks need
//     CAP_WAKE_ALARM: without it, create fails with -EPERM, as timer_create would.
//   - Every other clock that timer_create accepts (CLOCK_PROCESS_CPUTIME_ID,
//     CLOCK_THREAD_CPUTIME_ID, CPU clocks from clock_getcpuclockid / pthread_getcpuclockid,
//     CLOCK_TAI) is read with clock_gettime and checked on a CLOCK_MONOTONIC timerfd: a CPU
//     clock advances at most (online CPUs) times faster than real time, so the check sleeps for
//     the remaining CPU time divided by that, at least 1 ms (an expiry is noticed up to ~1 ms
//     late; an idle process is checked about that often while such a timer is armed).
//     CLOCK_THREAD_CPUTIME_ID means the thread that calls create, as for timer_create.
//   - Others (CLOCK_MONOTONIC_RAW, the _COARSE clocks, unknown ids): -EINVAL.
//
// Example (through the C API):
//   long t = kevent_posix_timer_create(kfd, CLOCK_MONOTONIC, &my_state);
//   struct itimerspec its = {.it_interval = {0, 10'000'000}, .it_value = {0, 10'000'000}};
//   kevent_posix_timer_settime(kfd, t, 0, &its, NULL);   // every 10 ms
//   ... kevent_get_events returns {type POSIX_TIMER, ptr &my_state, ret_data[0] expirations}
//   kevent_posix_timer_delete(kfd, t);
//
// Threading: as the owning queue (the C API calls these under the queue's lock).
#ifndef KEV_KEVENT_INTERNAL_POSIX_TIMER_ORIGIN_H_
#define KEV_KEVENT_INTERNAL_POSIX_TIMER_ORIGIN_H_

#include <time.h>

#include <cstdint>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "kevent/internal/origin.h"
#include "kevent/internal/readable_watch.h"

namespace kev::kevent_internal {

class Queue;

// Creates a disarmed timer on `clock` and registers its request (ptr = `ptr`). Returns the
// timer id (> 0) or a negative errno: EINVAL (clock), EPERM (an _ALARM clock without
// CAP_WAKE_ALARM), EOPNOTSUPP (the queue has no Poller), EMFILE/ENFILE/ENOMEM.
long PosixTimerCreate(Queue& queue, clockid_t clock, void* ptr);
// Arms (it_value non-zero) or disarms (zero) timer `id`, like timer_settime(2); flags is 0 or
// TIMER_ABSTIME. *old (if non-null) gets the previous setting. Returns 0, or -EINVAL (no such
// timer, bad flags, null value, tv_nsec out of range).
int PosixTimerSetTime(Queue& queue, long id, int flags, const itimerspec* value, itimerspec* old);
// Removes timer `id`'s request (a ready, undelivered event is dropped) and destroys the timer.
// Returns 0 or -EINVAL (no such timer).
int PosixTimerDelete(Queue& queue, long id);

class PosixTimerOrigin final : public Origin {
 public:
  explicit PosixTimerOrigin(OriginContext& context);
  // The queue's requests are gone by now; destroys the remaining timers.
  ~PosixTimerOrigin() override;

  // The engines of the functions above (which find the origin of `queue` and call these).
  long Create(Queue& queue, clockid_t clock, void* ptr);
  int SetTime(uint64_t id, int flags, const itimerspec* value, itimerspec* old);
  int Delete(Queue& queue, uint64_t id);

  int Enqueue(Request& r) override;
  void Dequeue(Request& r) override;
  int Check(Request& r) override { return 1; }  // an expiry holds until delivered
  void Fill(const Request& r, ukevent& out) override {
    out.ret_data[0] = r.pending;
    out.ret_data[1] = 0;
  }

 private:
  class Timer;

  OriginContext& context_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Timer>> timers_;  // by id
  uint64_t next_id_ = 1;
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_POSIX_TIMER_ORIGIN_H_
