// kevent/internal/kevent_testing.h: test hooks of the C API (kevent/kevent.cc).
//
// Tests use these to wait, without sleeping on the clock, until threads are really blocked in a
// queue before they act.
#ifndef KEV_KEVENT_INTERNAL_KEVENT_TESTING_H_
#define KEV_KEVENT_INTERNAL_KEVENT_TESTING_H_

#include <cstddef>

namespace kev::kevent_internal {

// Threads currently blocked in kevent_get_events / kevent_wait on queue `fd`; -1 if fd is not
// a queue. Any thread.
int BlockedWaitersForTesting(int fd);

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_KEVENT_TESTING_H_
