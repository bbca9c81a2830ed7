/*
 * kevent/kevent.h: the kevent C API (shared/KEVENT_SPEC.md), implemented in user space.
 *
 * Threading: every function here is safe to call from many threads at once, on the same queue
 * or on different ones. Errors: every function returns a negative errno on failure; per-entry
 * outcomes of kevent_ctl are in each entry's ret_flags / ret_data[0].
 *
 * Example: wait for a user notification fired by another thread.
 *
 *   int kfd = kevent_init(NULL, 0, 0);            // a real, pollable fd
 *   struct ukevent uk = {0};
 *   uk.type = KEVENT_UNOTIFY; uk.event = 1; uk.id.raw[0] = 42;
 *   kevent_ctl(kfd, KEVENT_CTL_ADD, 1, &uk);       // uk.ret_flags == 0: queued
 *   // ... another thread: kevent_ctl(kfd, KEVENT_CTL_READY, 1, &uk);
 *   struct ukevent out[8];
 *   struct timespec forever = {-1, 0};
 *   int n = kevent_get_events(kfd, 1, 8, forever, out, 0);   // n == 1, out[0].id.raw[0] == 42
 *   kevent_close(kfd);
 *
 * docs/kevent.md describes every call, flag and origin as implemented.
 */
#ifndef KEV_KEVENT_KEVENT_H_
#define KEV_KEVENT_KEVENT_H_

#include <time.h>
#include <sys/types.h>

#include "kevent/ukevent.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Declared by <time.h> only with POSIX features enabled; strict C11 (-std=c11) needs it here. */
struct itimerspec;

/* Creates a queue. Returns its fd (>= 0), which polls readable while events are ready, or
 * -EINVAL (ring without slots, ring with num < 2, unknown flags), -ENOMEM, -EMFILE.
 * `ring` (header plus num slots) stays owned by the caller and must outlive the queue; it may be
 * NULL with num == 0. Release the queue with kevent_close, not close. */
int kevent_init(struct kevent_ring *ring, unsigned int num, unsigned int flags);

/* Applies cmd (KEVENT_CTL_*) to num entries of arg, in order. Returns num, or -EBADF (not a
 * queue), -EINVAL (unknown cmd), -EFAULT (arg NULL with num > 0). Each entry's ret_flags says its
 * outcome: 0 queued; DONE completed at once; BROKEN|DONE rejected with errno in ret_data[0]. */
int kevent_ctl(int fd, unsigned int cmd, unsigned int num, struct ukevent *arg);

/* Waits until min_nr events are ready or the timeout passes, then copies up to max_nr of them,
 * oldest first, into buf (and into the ring, if any). timeout.tv_sec == -1 waits forever; {0,0}
 * never blocks; with KEVENT_FLAGS_ABSTIME the timeout is a CLOCK_REALTIME deadline. Returns the
 * count copied (possibly fewer than min_nr on timeout), or -EBADF, -EFAULT (buf NULL with
 * max_nr > 0), -EINVAL (bad timespec or flags). */
int kevent_get_events(int fd, unsigned int min_nr, unsigned int max_nr, struct timespec timeout,
                      struct ukevent *buf, unsigned int flags);

/* Waits until an event is ready and the ring has room (or a READY wake-up, or old_uidx differs
 * from the consumer index), then copies up to num ready events into the ring at ring_kidx (at
 * most the free slots) and advances it. Returns the count (0 on timeout or wake-up), -EINVAL
 * (no ring, bad timespec or flags), -EBADF. */
int kevent_wait(int fd, unsigned int num, unsigned int old_uidx, struct timespec timeout,
                unsigned int flags);

/* Frees ring slots up to new_uidx, `over` being the ring_over the caller read (see
 * docs/kevent.md). Returns the number of slots freed (0 when another thread freed them first),
 * -EINVAL (no ring, new_uidx >= num or beyond ring_kidx), -EOVERFLOW (over is neither ring_over
 * nor ring_over - 1, or a forward move made with ring_over - 1: re-read ring_over), -EBADF. */
int kevent_commit(int fd, unsigned int new_uidx, unsigned int over);

/* Releases the queue: its requests are removed, waiting threads return -EBADF, later calls
 * with fd return -EBADF. Returns 0 or -EBADF. */
int kevent_close(int fd);

/* POSIX timers of queue fd, whose expiries are KEVENT_POSIX_TIMER events (id.raw_u64 = the timer
 * id, ptr = `ptr`, ret_data[0] = expirations since the last delivery). Thread-safe.
 * create: makes a disarmed timer on `clock` (any clock the kernel has timers on, CPU clocks
 *   included) and registers its request. Returns the timer id (> 0), or -EBADF (fd), -EINVAL
 *   (clock), -EPERM (an _ALARM clock without CAP_WAKE_ALARM), -EMFILE, -ENOMEM.
 * settime: as timer_settime(2): flags 0 or TIMER_ABSTIME; it_value 0 disarms; it_interval
 *   repeats; the previous setting goes to *old if non-NULL. Returns 0, -EBADF or -EINVAL (no
 *   such timer, bad flags, NULL value, tv_nsec out of range).
 * delete: removes the request (a ready, undelivered event is dropped) and the timer. Returns 0,
 *   -EBADF or -EINVAL (no such timer). kevent_close deletes the queue's timers. */
long kevent_posix_timer_create(int fd, clockid_t clock, void *ptr);
int kevent_posix_timer_settime(int fd, long timer, int flags, const struct itimerspec *value,
                               struct itimerspec *old);
int kevent_posix_timer_delete(int fd, long timer);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KEV_KEVENT_KEVENT_H_ */
