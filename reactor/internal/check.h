// KEV_CHECK_MSG: contract checks that stay on in optimised builds, with a message.
//
// A failed check is a bug in the caller (a broken contract), not a runtime error, so it prints
// where and why and aborts; it never throws. The condition is evaluated exactly once.
//
//   KEV_CHECK_MSG(queue != nullptr, "Future::Then() on a pending future needs a TaskQueue");
//
// Named apart from kevent's one-argument KEV_CHECK(cond) (kevent/internal/check.h) so that a
// translation unit may include both. Lives in reactor/internal until kev has a common base
// library; guarded so that a later tree-wide definition of the same macro wins.
#ifndef KEV_REACTOR_INTERNAL_CHECK_H_
#define KEV_REACTOR_INTERNAL_CHECK_H_

namespace kev::internal {

// Prints "kev: contract violation at file:line: message (condition)" to stderr and aborts.
[[noreturn]] void CheckFailed(const char* file, int line, const char* condition,
                              const char* message) noexcept;

}  // namespace kev::internal

#ifndef KEV_CHECK_MSG
#define KEV_CHECK_MSG(condition, message)                                        \
  do {                                                                           \
    if (__builtin_expect(!(condition), 0)) {                                     \
      ::kev::internal::CheckFailed(__FILE__, __LINE__, #condition, (message));   \
    }                                                                            \
  } while (0)
#endif

#endif  // KEV_REACTOR_INTERNAL_CHECK_H_
