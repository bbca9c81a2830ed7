// kevent/internal/timer_origin.h: the KEVENT_TIMER origin.
//
// id.raw[0] seconds + id.raw[1] nanoseconds (< 1e9), relative to CLOCK_MONOTONIC at ADD (or
// MODIFY, which re-arms). event must be KEVENT_TIMER_FIRED. Periodic unless KEVENT_REQ_ONESHOT;
// a periodic timer needs a non-zero period. Each expiry is one occurrence; expirations
// coalesce while undelivered. Delivered ret_data[0] = CLOCK_MONOTONIC in milliseconds (low 32
// bits) when the queue last noticed an expiry; ret_data[1] = expirations since the last
// delivery. Periods keep their phase: a late timer counts every missed period and the next
// deadline stays on the original grid.
//
// Example: see kevent/ukevent.h (a one-shot 1.5 s timer).
//
// Threading: as the owning queue.
#ifndef KEV_KEVENT_INTERNAL_TIMER_ORIGIN_H_
#define KEV_KEVENT_INTERNAL_TIMER_ORIGIN_H_

#include "kevent/internal/origin.h"

namespace kev::kevent_internal {

class TimerOrigin final : public Origin {
 public:
  explicit TimerOrigin(OriginContext& context) : context_(context) {}

  int Enqueue(Request& r) override;
  void Dequeue(Request& r) override;
  int Check(Request& r) override { return 1; }
  void Fill(const Request& r, ukevent& out) override { out.ret_data[1] = r.pending; }
  void OnTimer(Request& r, int64_t now_ns) override;

 private:
  OriginContext& context_;
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_TIMER_ORIGIN_H_
