// Test-only builders of ukevent requests and the timeouts the C-API tests use, shared so every
// test spells a request the same way.
#ifndef KEV_KEVENT_INTERNAL_UKEVENT_BUILDERS_H_
#define KEV_KEVENT_INTERNAL_UKEVENT_BUILDERS_H_

#include <ctime>
#include <cstdint>

#include "kevent/ukevent.h"

namespace kev::kevent_testing {

inline constexpr timespec kNoWait = {0, 0};
inline constexpr timespec kForever = {-1, 0};

// A UNOTIFY request for id `id` (event 1).
inline ukevent Unotify(uint32_t id, uint32_t flags = 0) {
  ukevent uk{};
  uk.type = KEVENT_UNOTIFY;
  uk.event = 1;
  uk.id.raw[0] = id;
  uk.req_flags = flags;
  return uk;
}

// A TIMER request of `sec` s + `nsec` ns, with `user[0] = user`.
inline ukevent Timer(uint32_t sec, uint32_t nsec, uint32_t flags = 0, uint32_t user = 0) {
  ukevent uk{};
  uk.type = KEVENT_TIMER;
  uk.event = KEVENT_TIMER_FIRED;
  uk.id.raw[0] = sec;
  uk.id.raw[1] = nsec;
  uk.req_flags = flags;
  uk.user[0] = user;
  return uk;
}

}  // namespace kev::kevent_testing

#endif  // KEV_KEVENT_INTERNAL_UKEVENT_BUILDERS_H_
