// Fibers: stackful threads of control, scheduled by the shard's TaskQueue, for code that cannot
// be written as coroutines or continuations (deep call stacks, third-party callbacks).
//
// Inside a fiber, Future::Get() on a pending future suspends only that fiber; the shard keeps
// running other tasks and resumes the fiber (through the TaskQueue) once the future resolves.
// Exceptions thrown by the fiber's function travel out through the future Async() returned.
//
//   kev::Future<size_t> total = kev::Async([&files] {
//     size_t sum = 0;
//     for (auto& f : files) sum += f.Size().Get();  // suspends this fiber, not the shard
//     return sum;
//   });
//
// Stacks are fixed-size Boost.Context stacks with a PROT_NONE guard page below them: overflowing
// a fiber's stack is a clean SIGSEGV on the guard page, never silent corruption of a neighbour.
// Size them for the deepest call chain the fiber runs (FiberOptions::stack_size).
//
// Threading: a fiber runs only on the thread (shard) that created it, and only inside that
// shard's TaskQueue::RunReady(); it never migrates.
//
// Hazard: do not call Get() on a pending future inside a catch block. The C++ runtime keeps the
// "currently caught exceptions" per thread, not per fiber, so switching fibers inside a handler
// can interleave them (Boost.Context documents the same limitation).
#ifndef KEV_REACTOR_FIBER_H_
#define KEV_REACTOR_FIBER_H_

#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

#include "reactor/future.h"

namespace kev {

struct FiberOptions {
  // Usable stack bytes, rounded up to whole pages; a guard page is added below. Sanitizer
  // builds default to more because their stack frames are several times larger.
#if defined(KEV_SANITIZER)
  static constexpr size_t kDefaultStackSize = 512 * 1024;
#else
  static constexpr size_t kDefaultStackSize = 128 * 1024;
#endif
  size_t stack_size = kDefaultStackSize;
};

// True when the calling code runs on a kev fiber (so Future::Get() may suspend).
bool InFiber() noexcept;

namespace internal {

// The type-erased work of one fiber: calls the user's function and resolves its promise.
class FiberBody {
 public:
  virtual ~FiberBody() = default;
  // Runs on the fiber's stack. Must not let exceptions escape (they would end the process).
  virtual void Run() noexcept = 0;
};

// Creates a fiber running `body` and schedules its first run on the current TaskQueue. Throws
// std::bad_alloc when the stack cannot be mapped.
void StartFiber(const FiberOptions& options, std::unique_ptr<FiberBody> body);

// The running fiber's stack: [guard_begin, usable_begin) is the PROT_NONE guard page and
// [usable_begin, end) the usable stack. All null outside fibers. For crash diagnostics and the
// stack-overflow test.
struct FiberStack {
  const char* guard_begin = nullptr;
  const char* usable_begin = nullptr;
  const char* end = nullptr;
};
FiberStack CurrentFiberStack() noexcept;

template <class R>
struct AsyncValue {
  using Type = R;
};
template <class U>
struct AsyncValue<Future<U>> {
  using Type = U;
};

}  // namespace internal

// Runs `fn()` on a new fiber and returns the future of its result.
//
// `fn` is moved (or copied) into the fiber and destroyed there after it returns. The fiber is
// scheduled on the current TaskQueue (one must be installed; checked) and starts when that queue
// next runs tasks, not inside Async(). If `fn` returns Future<U>, the fiber waits for it and the
// result is Future<U>. If `fn` throws, the returned future fails with that exception.
// Cost (not a hot path): a stack mmap + mprotect (munmap at exit) and three small allocations
// (the function object, the future's state, the fiber record). Throws std::bad_alloc when the
// stack cannot be mapped (nothing is scheduled then).
template <class Fn>
auto Async(FiberOptions options, Fn&& fn) {
  using Callable = std::decay_t<Fn>;
  using R = std::invoke_result_t<Callable&>;
  using U = typename internal::AsyncValue<R>::Type;

  class Body final : public internal::FiberBody {
   public:
    explicit Body(Fn&& fn) : fn_(std::forward<Fn>(fn)) {}
    Future<U> GetFuture() { return promise_.GetFuture(); }
    void Run() noexcept override {
      try {
        if constexpr (internal::kIsFuture<R>) {
          if constexpr (std::is_void_v<U>) {
            fn_().Get();
            promise_.SetValue();
          } else {
            promise_.SetValue(fn_().Get());
          }
        } else if constexpr (std::is_void_v<R>) {
          fn_();
          promise_.SetValue();
        } else {
          promise_.SetValue(fn_());
        }
      } catch (...) {
        promise_.SetException(std::current_exception());
      }
    }

   private:
    Callable fn_;
    Promise<U> promise_;
  };

  auto body = std::make_unique<Body>(std::forward<Fn>(fn));
  Future<U> result = body->GetFuture();
  internal::StartFiber(options, std::move(body));
  return result;
}

// Async() with default options.
template <class Fn>
auto Async(Fn&& fn) {
  return Async(FiberOptions{}, std::forward<Fn>(fn));
}

}  // namespace kev

#endif  // KEV_REACTOR_FIBER_H_
