/*
 * kevent/ukevent.h: the kevent ABI — constants and structures, byte for byte as the 2007
 * kevent patch series (take37) defined them, as fixed by shared/KEVENT_SPEC.md.
 *
 * This header is plain C (C11) and C++20. It declares no functions; see kevent/kevent.h.
 *
 * Example (a one-shot 1.5 s timer request):
 *
 *   struct ukevent uk = {0};
 *   uk.type = KEVENT_TIMER;
 *   uk.event = KEVENT_TIMER_FIRED;
 *   uk.req_flags = KEVENT_REQ_ONESHOT;
 *   uk.id.raw[0] = 1;          // seconds
 *   uk.id.raw[1] = 500000000;  // nanoseconds
 *   kevent_ctl(kfd, KEVENT_CTL_ADD, 1, &uk);
 *
 * Layout is part of the contract: the static assertions at the end pin it, because rings may live
 * in memory shared between processes built by different compilers.
 */
#ifndef KEV_KEVENT_UKEVENT_H_
#define KEV_KEVENT_UKEVENT_H_

#include <linux/types.h>
#include <stddef.h>

/* Request flags (ukevent.req_flags). */
#define KEVENT_REQ_ONESHOT 0x1      /* remove the request when it is delivered */
#define KEVENT_REQ_WAKEUP_ALL 0x2   /* an activity readies every matching request, wakes all */
#define KEVENT_REQ_ET 0x4           /* edge-triggered: deliver once per new activity */
#define KEVENT_REQ_LAST_CHECK 0x8   /* re-check readiness when leaving the ready queue */
#define KEVENT_REQ_ALWAYS_QUEUE 0x10 /* queue even when ready at ADD (no immediate DONE) */
#define KEVENT_REQ_READY 0x20       /* mark ready at ADD */

/* Return flags (ukevent.ret_flags). */
#define KEVENT_RET_BROKEN 0x1      /* the request failed; positive errno in ret_data[0] */
#define KEVENT_RET_DONE 0x2        /* processing finished (at once, or delivered) */
#define KEVENT_RET_COPY_FAILED 0x4 /* returned in buf but did not fit in the ring */

/* Types (ukevent.type). */
#define KEVENT_SOCKET 0
#define KEVENT_INODE 1
#define KEVENT_TIMER 2
#define KEVENT_POLL 3
#define KEVENT_NAIO 4 /* reserved: adding it is rejected with EINVAL */
#define KEVENT_AIO 5
#define KEVENT_PIPE 6
#define KEVENT_SIGNAL 7
#define KEVENT_POSIX_TIMER 8
#define KEVENT_UNOTIFY 9
#define KEVENT_MAX 10

/* Events (ukevent.event), per type. */
#define KEVENT_TIMER_FIRED 0x1

#define KEVENT_SOCKET_RECV 0x1 /* pipes use RECV and SEND too */
#define KEVENT_SOCKET_ACCEPT 0x2
#define KEVENT_SOCKET_SEND 0x4

#define KEVENT_INODE_CREATE 0x1
#define KEVENT_INODE_REMOVE 0x2

#define KEVENT_POLL_POLLIN 0x0001
#define KEVENT_POLL_POLLPRI 0x0002
#define KEVENT_POLL_POLLOUT 0x0004
#define KEVENT_POLL_POLLERR 0x0008
#define KEVENT_POLL_POLLHUP 0x0010
#define KEVENT_POLL_POLLNVAL 0x0020
#define KEVENT_POLL_POLLRDNORM 0x0040
#define KEVENT_POLL_POLLRDBAND 0x0080
#define KEVENT_POLL_POLLWRNORM 0x0100
#define KEVENT_POLL_POLLWRBAND 0x0200
#define KEVENT_POLL_POLLMSG 0x0400
#define KEVENT_POLL_POLLREMOVE 0x1000
#define KEVENT_POLL_POLLRDHUP 0x2000

#define KEVENT_AIO_BIO 0x1

#define KEVENT_SIGNAL_DELIVERY 0x1
#define KEVENT_SIGNAL_NOMASK 0x8000000000000000ULL /* in id.raw_u64 */

#define KEVENT_MASK_ALL 0xffffffff
#define KEVENT_MASK_EMPTY 0x0

/* kevent_ctl commands. */
#define KEVENT_CTL_ADD 0
#define KEVENT_CTL_REMOVE 1
#define KEVENT_CTL_MODIFY 2
#define KEVENT_CTL_READY 3

/* Flags of kevent_get_events and kevent_wait. */
#define KEVENT_FLAGS_ABSTIME 1 /* timeout is a CLOCK_REALTIME deadline */

struct kevent_id {
  union {
    __u32 raw[2];
    __u64 raw_u64 __attribute__((aligned(8)));
  };
};

struct ukevent {
  /* Id of this request: fd, signal number, timer period... (per type). */
  struct kevent_id id;
  /* Event type: KEVENT_SOCKET, KEVENT_TIMER, ... */
  __u32 type;
  /* Event bits of the type: KEVENT_SOCKET_RECV, KEVENT_TIMER_FIRED, ... */
  __u32 event;
  /* KEVENT_REQ_* flags. */
  __u32 req_flags;
  /* KEVENT_RET_* flags, filled by the queue. */
  __u32 ret_flags;
  /* Data the origin returns (per type). */
  __u32 ret_data[2];
  /* The caller's own data, copied to and from the queue untouched. */
  union {
    __u32 user[2];
    void *ptr;
  };
};

struct kevent_ring {
  /* Index where the next event is written by kevent_wait / kevent_get_events. */
  unsigned int ring_kidx;
  /* How many times the consumer index has wrapped: kevent_commit increments it on a wrap and
   * checks its `over` argument against it (see kevent_commit). */
  unsigned int ring_over;
  struct ukevent event[0];
};

#ifdef __cplusplus
#define KEV_STATIC_ASSERT_ static_assert
#define KEV_ALIGNOF_ alignof
#else
#define KEV_STATIC_ASSERT_ _Static_assert
#define KEV_ALIGNOF_ _Alignof
#endif
KEV_STATIC_ASSERT_(sizeof(struct kevent_id) == 8, "kevent_id is 8 bytes");
KEV_STATIC_ASSERT_(sizeof(struct ukevent) == 40, "ukevent is 40 bytes");
KEV_STATIC_ASSERT_(KEV_ALIGNOF_(struct ukevent) == 8, "ukevent is 8-byte aligned");
KEV_STATIC_ASSERT_(offsetof(struct ukevent, type) == 8, "ukevent.type at 8");
KEV_STATIC_ASSERT_(offsetof(struct ukevent, ret_data) == 24, "ukevent.ret_data at 24");
KEV_STATIC_ASSERT_(offsetof(struct ukevent, ptr) == 32, "ukevent.ptr at 32");
KEV_STATIC_ASSERT_(sizeof(struct kevent_ring) == 8, "kevent_ring header is 8 bytes");
#undef KEV_STATIC_ASSERT_
#undef KEV_ALIGNOF_

#endif /* KEV_KEVENT_UKEVENT_H_ */
