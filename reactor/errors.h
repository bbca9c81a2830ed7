// Error types of kev's async primitives.
//
// kev carries C++ errors as exceptions inside futures (std::exception_ptr). These are the
// reactor's own failure kinds; each is a small class with a fixed message, so that throwing one
// allocates nothing beyond the exception object itself, and callers can catch them by type:
//
//   try {
//     co_await sem.Wait(1, abort_source);
//   } catch (const kev::AbortRequested&) {
//     co_return;  // shutting down
//   }
//
// All of them derive from kev::Error, itself a std::exception.
#ifndef KEV_REACTOR_ERRORS_H_
#define KEV_REACTOR_ERRORS_H_

#include <exception>

namespace kev {

// Base of the reactor's error types; catch it to handle any of them.
class Error : public std::exception {};

// A Promise was destroyed (or moved over) before it was given a value or an exception. Its
// future resolves with this error, so nothing waits forever for a producer that is gone.
class BrokenPromise : public Error {
 public:
  const char* what() const noexcept override {
    return "kev::BrokenPromise: promise destroyed without a value";
  }
};

// Semaphore::Broken() was called without an explicit exception, or the Semaphore was destroyed
// while waiters were queued.
class BrokenSemaphore : public Error {
 public:
  const char* what() const noexcept override { return "kev::BrokenSemaphore: semaphore broken"; }
};

// Gate::Enter() or Gate::Hold() after Gate::Close(): the guarded service is shutting down.
class GateClosed : public Error {
 public:
  const char* what() const noexcept override { return "kev::GateClosed: gate is closed"; }
};

// An AbortSource fired while an operation tied to it was pending.
class AbortRequested : public Error {
 public:
  const char* what() const noexcept override { return "kev::AbortRequested: abort requested"; }
};

// WithTimeout()'s deadline passed before the operation finished (reactor/timer.h).
class TimedOut : public Error {
 public:
  const char* what() const noexcept override { return "kev::TimedOut: operation timed out"; }
};

}  // namespace kev

#endif  // KEV_REACTOR_ERRORS_H_
