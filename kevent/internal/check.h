// kevent/internal/check.h: KEV_CHECK, an assertion that stays on in optimised builds.
//
// The queue's invariants (a request is on at most one list, indexes stay in range...) guard
// memory owned by callers, so a broken one must stop the process rather than corrupt it, in
// every build mode (.bazelrc builds tests with -c opt).
#ifndef KEV_KEVENT_INTERNAL_CHECK_H_
#define KEV_KEVENT_INTERNAL_CHECK_H_

#include <cstdio>
#include <cstdlib>

#ifndef KEV_CHECK
#define KEV_CHECK(cond)                                                                 \
  do {                                                                                  \
    if (__builtin_expect(!(cond), 0)) {                                                 \
      std::fprintf(stderr, "%s:%d: KEV_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)
#endif

#endif  // KEV_KEVENT_INTERNAL_CHECK_H_
