/*
 * kevent_demo: a complete C program using only kevent/kevent.h.
 *
 * It creates a queue with a 16-slot ring and registers three requests:
 *   - a periodic timer (every 50 ms),
 *   - a one-shot timer (120 ms),
 *   - a user notification (KEVENT_UNOTIFY) that a second thread fires after 80 ms.
 * Phase 1 waits with kevent_get_events (events come back in a buffer, and are also copied into
 * the ring, whose slots the program then commits). Phase 2 waits with kevent_wait and reads the
 * events from the ring itself, committing each batch with kevent_commit. Every step is printed.
 * Exit status 0 on success, 1 on any unexpected result.
 *
 * Build and run: bazel run //kevent/examples:kevent_demo
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kevent/kevent.h"

enum { kRingSlots = 16, kPeriodic = 1, kOneshot = 2, kNotify = 3 };

#define CHECK(cond, ...)              \
  do {                                \
    if (!(cond)) {                    \
      printf("FAILED: " __VA_ARGS__); \
      printf("\n");                   \
      exit(1);                        \
    }                                 \
  } while (0)

static int kfd;

static const char* Name(const struct ukevent* ev) {
  switch (ev->user[0]) {
    case kPeriodic:
      return "periodic timer";
    case kOneshot:
      return "one-shot timer";
    case kNotify:
      return "unotify";
    default:
      return "unknown";
  }
}

static void Print(const char* how, const struct ukevent* ev) {
  printf("  [%s] %-14s ret_flags=%s%s%s ret_data={%u, %u}\n", how, Name(ev),
         (ev->ret_flags & KEVENT_RET_DONE) ? "DONE" : "",
         (ev->ret_flags & KEVENT_RET_BROKEN) ? "|BROKEN" : "",
         (ev->ret_flags & KEVENT_RET_COPY_FAILED) ? "|COPY_FAILED" : "", ev->ret_data[0],
         ev->ret_data[1]);
}

/* The second thread: sleeps 80 ms, then marks the UNOTIFY request ready with its own data. */
static void* Notifier(void* arg) {
  (void)arg;
  struct timespec pause = {0, 80 * 1000 * 1000};
  nanosleep(&pause, NULL);
  struct ukevent uk;
  memset(&uk, 0, sizeof(uk));
  uk.type = KEVENT_UNOTIFY;
  uk.id.raw[0] = 42;
  uk.user[0] = kNotify;
  uk.ret_data[0] = 0xC0FFEE;
  int rc = kevent_ctl(kfd, KEVENT_CTL_READY, 1, &uk);
  printf("notifier thread: KEVENT_CTL_READY -> %d, ret_flags=%u\n", rc, uk.ret_flags);
  return NULL;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct kevent_ring* ring =
      calloc(1, sizeof(struct kevent_ring) + kRingSlots * sizeof(struct ukevent));
  CHECK(ring != NULL, "out of memory");

  kfd = kevent_init(ring, kRingSlots, 0);
  CHECK(kfd >= 0, "kevent_init: %s", strerror(-kfd));
  printf("kevent_init(ring, %d, 0) -> fd %d\n", kRingSlots, kfd);

  /* Three requests in one kevent_ctl call; each entry gets its own outcome. */
  struct ukevent add[3];
  memset(add, 0, sizeof(add));
  add[0].type = KEVENT_TIMER;
  add[0].event = KEVENT_TIMER_FIRED;
  add[0].id.raw[1] = 50 * 1000 * 1000; /* 0 s + 50 ms, repeating */
  add[0].user[0] = kPeriodic;
  add[1].type = KEVENT_TIMER;
  add[1].event = KEVENT_TIMER_FIRED;
  add[1].id.raw[1] = 120 * 1000 * 1000;
  add[1].req_flags = KEVENT_REQ_ONESHOT;
  add[1].user[0] = kOneshot;
  add[2].type = KEVENT_UNOTIFY;
  add[2].event = 1;
  add[2].id.raw[0] = 42;
  add[2].user[0] = kNotify;
  int rc = kevent_ctl(kfd, KEVENT_CTL_ADD, 3, add);
  CHECK(rc == 3, "kevent_ctl ADD -> %d", rc);
  for (int i = 0; i < 3; ++i) {
    printf("ADD %-14s -> ret_flags=%u (0: queued)\n", Name(&add[i]), add[i].ret_flags);
    CHECK(add[i].ret_flags == 0, "request %d not queued", i);
  }

  pthread_t notifier;
  CHECK(pthread_create(&notifier, NULL, Notifier, NULL) == 0, "pthread_create");

  /* Phase 1: kevent_get_events until the one-shot timer, the notification and at least three
   * periodic expirations have arrived. */
  printf("phase 1: kevent_get_events\n");
  unsigned uidx = 0, periodic = 0;
  int saw_oneshot = 0, saw_notify = 0;
  while (!(saw_oneshot && saw_notify && periodic >= 3)) {
    struct ukevent buf[8];
    struct timespec timeout = {2, 0};
    int n = kevent_get_events(kfd, 1, 8, timeout, buf, 0);
    CHECK(n > 0, "kevent_get_events -> %d", n);
    for (int i = 0; i < n; ++i) {
      Print("get_events", &buf[i]);
      CHECK(buf[i].ret_flags == KEVENT_RET_DONE, "unexpected ret_flags %u", buf[i].ret_flags);
      if (buf[i].user[0] == kPeriodic) periodic += buf[i].ret_data[1];
      if (buf[i].user[0] == kOneshot) saw_oneshot++;
      if (buf[i].user[0] == kNotify) {
        CHECK(buf[i].ret_data[0] == 0xC0FFEE, "unotify data %x", buf[i].ret_data[0]);
        saw_notify++;
      }
    }
    /* The same events were copied into the ring: free those slots. */
    unsigned kidx = ring->ring_kidx;
    int freed = kevent_commit(kfd, kidx, ring->ring_over);
    CHECK(freed == n, "kevent_commit -> %d, expected %d", freed, n);
    printf("  ring: ring_kidx=%u, committed %d slot(s), ring_over=%u\n", kidx, freed,
           ring->ring_over);
    uidx = kidx;
  }
  CHECK(saw_oneshot == 1, "one-shot timer delivered %d times", saw_oneshot);
  printf("phase 1 done: one-shot timer once, unotify once, %u periodic expirations\n", periodic);
  pthread_join(notifier, NULL);

  /* Phase 2: kevent_wait copies ready events straight into the ring; read them there. */
  printf("phase 2: kevent_wait + kevent_commit\n");
  unsigned ring_events = 0;
  while (ring_events < 2) {
    struct timespec timeout = {2, 0};
    int n = kevent_wait(kfd, kRingSlots, uidx, timeout, 0);
    CHECK(n > 0, "kevent_wait -> %d", n);
    for (int i = 0; i < n; ++i) {
      const struct ukevent* ev = &ring->event[(uidx + i) % kRingSlots];
      Print("ring", ev);
      CHECK(ev->user[0] == kPeriodic, "only the periodic timer is left, got %s", Name(ev));
      ring_events++;
    }
    unsigned kidx = ring->ring_kidx;
    int freed = kevent_commit(kfd, kidx, ring->ring_over);
    CHECK(freed == n, "kevent_commit -> %d, expected %d", freed, n);
    printf("  kevent_wait -> %d, ring_kidx=%u, committed %d, ring_over=%u\n", n, kidx, freed,
           ring->ring_over);
    uidx = kidx;
  }

  /* Remove the periodic timer; removing it twice reports BROKEN (no such request). */
  struct ukevent rm = add[0];
  rc = kevent_ctl(kfd, KEVENT_CTL_REMOVE, 1, &rm);
  printf("REMOVE periodic timer -> %d, ret_flags=%u (DONE)\n", rc, rm.ret_flags);
  CHECK(rc == 1 && rm.ret_flags == KEVENT_RET_DONE, "remove failed");
  rm = add[0];
  rc = kevent_ctl(kfd, KEVENT_CTL_REMOVE, 1, &rm);
  printf("REMOVE again -> ret_flags=%u (BROKEN|DONE), errno %u (%s)\n", rm.ret_flags,
         rm.ret_data[0], strerror((int)rm.ret_data[0]));
  CHECK(rm.ret_flags == (KEVENT_RET_BROKEN | KEVENT_RET_DONE), "second remove not broken");

  CHECK(kevent_close(kfd) == 0, "kevent_close");
  printf("kevent_close -> 0; kevent_close again -> %d (EBADF)\n", kevent_close(kfd));
  free(ring);
  printf("kevent_demo: OK\n");
  return 0;
}
