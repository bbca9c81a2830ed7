#include "kevent/internal/timer_origin.h"

#include <cerrno>
#include <cstdint>
#include <limits>

#include "kevent/internal/queue.h"
#include "kevent/internal/timer_heap.h"

namespace kev::kevent_internal {
namespace {

// A TIMER request's period: its id, seconds and nanoseconds (validated by Enqueue).
int64_t PeriodNs(const ukevent& uk) {
  return static_cast<int64_t>(uk.id.raw[0]) * 1'000'000'000 + uk.id.raw[1];
}

}  // namespace

int TimerOrigin::Enqueue(Request& r) {
  if (r.uk.event != KEVENT_TIMER_FIRED) return -EINVAL;
  if (r.uk.id.raw[1] >= 1'000'000'000u) return -EINVAL;
  const int64_t period = PeriodNs(r.uk);
  const bool oneshot = (r.uk.req_flags & KEVENT_REQ_ONESHOT) != 0;
  if (period == 0 && !oneshot) return -EINVAL;  // would fire forever without time passing
  r.timer_deadline_ns = context_.NowNs() + period;  // at most 4.3e18: no overflow
  context_.timers().Arm(&r);
  return 0;
}

void TimerOrigin::Dequeue(Request& r) { context_.timers().Cancel(&r); }

void TimerOrigin::OnTimer(Request& r, int64_t now_ns) {
  uint64_t expirations = 1;
  if ((r.uk.req_flags & KEVENT_REQ_ONESHOT) == 0) {
    // Count every period that ended by now and stay on the original grid.
    const int64_t period = PeriodNs(r.uk);
    expirations += static_cast<uint64_t>(now_ns - r.timer_deadline_ns) / static_cast<uint64_t>(period);
    r.timer_deadline_ns += static_cast<int64_t>(expirations) * period;
    context_.timers().Arm(&r);
  }
  r.uk.ret_data[0] = static_cast<uint32_t>(now_ns / 1'000'000);
  const uint32_t count = expirations > std::numeric_limits<uint32_t>::max()
                             ? std::numeric_limits<uint32_t>::max()
                             : static_cast<uint32_t>(expirations);
  r.queue->Activate(r, count);
}

}  // namespace kev::kevent_internal
