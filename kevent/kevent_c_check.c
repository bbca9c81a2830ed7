/* Compiles kevent/ukevent.h and kevent/kevent.h as C11 (the C ABI must stay plain C) and
 * reports the layout the C compiler sees, so ukevent_test can compare it with C++'s. */
#include <stddef.h>

#include "kevent/kevent.h"

struct kev_c_layout {
  size_t ukevent_size, ukevent_align, ring_size, off_type, off_event, off_req_flags, off_ret_flags,
      off_ret_data, off_ptr, off_ring_event;
};

struct kev_c_layout kev_c_get_layout(void) {
  struct kev_c_layout l = {
      sizeof(struct ukevent),
      _Alignof(struct ukevent),
      sizeof(struct kevent_ring),
      offsetof(struct ukevent, type),
      offsetof(struct ukevent, event),
      offsetof(struct ukevent, req_flags),
      offsetof(struct ukevent, ret_flags),
      offsetof(struct ukevent, ret_data),
      offsetof(struct ukevent, ptr),
      offsetof(struct kevent_ring, event),
  };
  return l;
}

/* Calls through the C declarations, so a mismatched prototype fails to link. */
int kev_c_init_and_close(void) {
  int fd = kevent_init(NULL, 0, 0);
  if (fd < 0) return fd;
  struct ukevent uk = {0};
  uk.type = KEVENT_UNOTIFY;
  uk.event = 1;
  uk.req_flags = KEVENT_REQ_READY | KEVENT_REQ_ONESHOT;
  int rc = kevent_ctl(fd, KEVENT_CTL_ADD, 1, &uk);
  int done = (rc == 1 && uk.ret_flags == KEVENT_RET_DONE);
  kevent_close(fd);
  return done ? 0 : -1;
}
