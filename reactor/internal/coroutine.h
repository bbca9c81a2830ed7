// Internal: what makes Future<T> a C++20 coroutine type and an awaitable. Included by
// reactor/future.h; not part of kev's public API. docs/coroutines.md explains the rules.
#ifndef KEV_REACTOR_INTERNAL_COROUTINE_H_
#define KEV_REACTOR_INTERNAL_COROUTINE_H_

#include <coroutine>
#include <exception>
#include <utility>

#include "reactor/future.h"

namespace kev::internal {

// The promise of a coroutine returning Future<T>. The coroutine frame is itself the future's
// shared state, so a coroutine costs exactly its frame allocation. References: the returned
// future and the running coroutine; the coroutine drops its reference at final suspension, and
// whichever side is last frees the frame.
template <class T>
class CoroutinePromiseBase : public FutureState<T> {
 public:
  CoroutinePromiseBase() noexcept : FutureState<T>(/*refs=*/2) {}

  Future<T> get_return_object() noexcept {
    return FutureAccess::FromState(StateRef<T>::Adopt(this));
  }

  // Eager start: the body runs on the caller's stack until its first real suspension, so a
  // coroutine that never waits completes before returning, with no scheduling.
  std::suspend_never initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    // May free the frame (when the future is gone); nothing touches it afterwards.
    void await_suspend(std::coroutine_handle<> h) noexcept { promise->Release(); }
    void await_resume() noexcept {}
    CoroutinePromiseBase* promise;
  };
  FinalAwaiter final_suspend() noexcept { return FinalAwaiter{this}; }

  void unhandled_exception() noexcept { this->SetException(std::current_exception()); }

 protected:
  void Destroy() noexcept override {
    std::coroutine_handle<CoroutinePromise<T>>::from_promise(
        static_cast<CoroutinePromise<T>&>(*this))
        .destroy();
  }
};

template <class T>
class CoroutinePromise final : public CoroutinePromiseBase<T> {
 public:
  template <class V = T>
  void return_value(V&& value) {
    this->SetValue(std::forward<V>(value));
  }
};

template <>
class CoroutinePromise<void> final : public CoroutinePromiseBase<void> {
 public:
  void return_void() noexcept { this->SetValue(); }
};

// `co_await future`. Lives in the awaiting coroutine's frame, so waiting allocates nothing:
// the awaiter is itself the Task that resumes the coroutine.
template <class T>
class FutureAwaiter final : public Task {
 public:
  explicit FutureAwaiter(Future<T>&& future) noexcept : future_(std::move(future)) {}

  // An invalid future counts as ready so that await_resume()'s Get() reports the misuse.
  bool await_ready() const noexcept { return !future_.Valid() || future_.Available(); }

  void await_suspend(std::coroutine_handle<> handle) noexcept {
    handle_ = handle;
    FutureAccess::PendingState(future_)->SetWaiter(
        this, TaskQueue::CurrentOrDie("co_await on a pending future"));
  }

  T await_resume() { return future_.Get(); }

  // Scheduled by the future's state when it resolves.
  void Run() noexcept override { handle_.resume(); }

 private:
  Future<T> future_;
  std::coroutine_handle<> handle_;
};

}  // namespace kev::internal

#endif  // KEV_REACTOR_INTERNAL_COROUTINE_H_
