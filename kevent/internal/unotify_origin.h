// kevent/internal/unotify_origin.h: the KEVENT_UNOTIFY origin (user notifications).
//
// Any id and event. Never ready by itself: it becomes ready through KEVENT_CTL_READY (which
// copies the caller's ret_data into it) or KEVENT_REQ_READY at ADD (ret_data as given at ADD).
// Each READY is one occurrence; READYs coalesce while undelivered (the last ret_data wins).
//
// Example:
//   ukevent uk{};  uk.type = KEVENT_UNOTIFY;  uk.event = 1;  uk.id.raw[0] = 42;
//   queue.Ctl(KEVENT_CTL_ADD, uk);     // registered, not ready
//   uk.ret_data[0] = 7;
//   queue.Ctl(KEVENT_CTL_READY, uk);   // ready; delivered with ret_data[0] == 7
//
// Threading: as the owning queue.
#ifndef KEV_KEVENT_INTERNAL_UNOTIFY_ORIGIN_H_
#define KEV_KEVENT_INTERNAL_UNOTIFY_ORIGIN_H_

#include "kevent/internal/origin.h"

namespace kev::kevent_internal {

class UnotifyOrigin final : public Origin {
 public:
  int Enqueue(Request& r) override { return 0; }
  void Dequeue(Request& r) override {}
  // A READY, once made, holds until delivered (so LAST_CHECK confirms it).
  int Check(Request& r) override { return 1; }
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_UNOTIFY_ORIGIN_H_
