// Internal: the shared state behind a pending Future, and the hooks that let Future::Get()
// suspend a fiber without future.h depending on fiber.h. Not part of kev's public API.
//
// A FutureState is the rendezvous between a producer (a Promise, a continuation, a coroutine)
// and the single consumer (a Future). It exists only when the value is not known at the time
// the future is created; ready futures keep their value inline. It is reference counted by its
// two sides (non-atomic: both sides live on one shard) and destroys itself through the virtual
// Destroy(), so that a coroutine frame can be a FutureState and free itself as a frame.
//
// When the state resolves and a waiter Task is registered, the waiter is scheduled on the
// TaskQueue captured when it registered: continuations never run inline inside SetValue(),
// which keeps stack depth bounded and makes "who runs what, where" predictable.
#ifndef KEV_REACTOR_INTERNAL_FUTURE_STATE_H_
#define KEV_REACTOR_INTERNAL_FUTURE_STATE_H_

#include <cstdint>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "reactor/internal/check.h"
#include "reactor/task_queue.h"

namespace kev::internal {

// What a Future<void> stores: an empty value, so that void needs no special storage code.
struct Unit {};

template <class T>
using Stored = std::conditional_t<std::is_void_v<T>, Unit, T>;

class FutureStateBase {
 public:
  FutureStateBase(const FutureStateBase&) = delete;
  FutureStateBase& operator=(const FutureStateBase&) = delete;

  bool Resolved() const noexcept { return status_ != Status::kPending; }
  bool Failed() const noexcept { return status_ == Status::kException; }

  // Registers the one consumer-side waiter; it is scheduled on `queue` when the state
  // resolves. Requires a pending state without a waiter.
  void SetWaiter(Task* waiter, TaskQueue& queue) noexcept {
    KEV_CHECK_MSG(!Resolved(), "waiter registered on a resolved future state");
    KEV_CHECK_MSG(waiter_ == nullptr, "a future can have only one waiter (continuation or co_await)");
    waiter_ = waiter;
    waiter_queue_ = &queue;
  }

  // Unregisters the waiter of a still-pending state (used by cancellation).
  void ClearWaiter() noexcept {
    KEV_CHECK_MSG(!Resolved(), "ClearWaiter on a resolved state: its waiter is already scheduled");
    waiter_ = nullptr;
    waiter_queue_ = nullptr;
  }

  void AddRef() noexcept { ++refs_; }
  // Drops one reference; destroys the state when none is left.
  void Release() noexcept {
    if (--refs_ == 0) Destroy();
  }

  // The failure of a Failed() state.
  const std::exception_ptr& exception() const noexcept { return exception_; }

  void SetException(std::exception_ptr ex) noexcept {
    KEV_CHECK_MSG(!Resolved(), "future resolved twice");
    KEV_CHECK_MSG(ex != nullptr, "SetException with a null exception_ptr");
    exception_ = std::move(ex);
    MarkResolved(Status::kException);
  }

 protected:
  explicit FutureStateBase(uint32_t refs) noexcept : refs_(refs) {}
  virtual ~FutureStateBase() = default;

  // Frees the state. Heap states delete themselves; coroutine frames override this.
  virtual void Destroy() noexcept { delete this; }

  enum class Status : uint8_t { kPending, kValue, kException };

  void MarkResolved(Status status) noexcept {
    status_ = status;
    if (waiter_ != nullptr) waiter_queue_->Schedule(waiter_);
  }

 private:
  Status status_ = Status::kPending;
  uint32_t refs_;
  Task* waiter_ = nullptr;
  TaskQueue* waiter_queue_ = nullptr;
  std::exception_ptr exception_;
};

template <class T>
class FutureState : public FutureStateBase {
 public:
  explicit FutureState(uint32_t refs) noexcept : FutureStateBase(refs) {}

  template <class... Args>
  void SetValue(Args&&... args) {
    KEV_CHECK_MSG(!Resolved(), "future resolved twice");
    value_.emplace(std::forward<Args>(args)...);
    MarkResolved(Status::kValue);
  }

  // Moves the value out of a resolved, non-failed state.
  Stored<T> TakeValue() noexcept(std::is_nothrow_move_constructible_v<Stored<T>>) {
    return std::move(*value_);
  }

 private:
  std::optional<Stored<T>> value_;
};

// Owning handle to one reference of a FutureState.
template <class T>
class StateRef {
 public:
  StateRef() noexcept = default;
  // Takes over a reference the caller already holds.
  static StateRef Adopt(FutureState<T>* state) noexcept { return StateRef(state); }

  StateRef(StateRef&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  StateRef& operator=(StateRef&& other) noexcept {
    if (this != &other) {
      reset();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  ~StateRef() { reset(); }

  void reset() noexcept {
    if (state_ != nullptr) std::exchange(state_, nullptr)->Release();
  }
  FutureState<T>* get() const noexcept { return state_; }
  FutureState<T>* operator->() const noexcept { return state_; }
  explicit operator bool() const noexcept { return state_ != nullptr; }

 private:
  explicit StateRef(FutureState<T>* state) noexcept : state_(state) {}
  FutureState<T>* state_ = nullptr;
};

// Moves the result of a resolved `from` into the pending `to`.
template <class T>
void ForwardResult(FutureState<T>& from, FutureState<T>& to) noexcept {
  if (from.Failed()) {
    to.SetException(from.exception());
  } else {
    to.SetValue(from.TakeValue());
  }
}

// Hook installed by fiber.cc while a fiber runs: Future::Get() on a pending future calls it to
// suspend the running fiber until `state` resolves. Kept abstract here so that future.h does
// not depend on Boost.Context.
class FiberSuspender {
 public:
  // Returns on the same fiber once `state` has resolved.
  virtual void SuspendUntilResolved(FutureStateBase& state) noexcept = 0;

 protected:
  ~FiberSuspender() = default;
};

// The suspender of the fiber running on this thread, or null outside fibers.
inline thread_local FiberSuspender* current_fiber_suspender = nullptr;

}  // namespace kev::internal

#endif  // KEV_REACTOR_INTERNAL_FUTURE_STATE_H_
