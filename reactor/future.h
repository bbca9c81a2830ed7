// Future<T> and Promise<T>: kev's single asynchronous result type.
//
// A Future<T> is the consumer end of a value (or error) that is available now or later. It is
// also a C++20 coroutine type (a function returning Future<T> may co_await and co_return) and
// it is awaitable. Errors are std::exception_ptr carried inside the future; they are rethrown
// by Get() and co_await, and skip .Then() continuations until one handles them.
//
//   kev::Future<int> Answer();                      // some asynchronous operation
//
//   kev::Future<std::string> Describe() {           // a coroutine
//     int n = co_await Answer();                    // no suspension if already available
//     co_return std::to_string(n);
//   }
//
//   kev::Future<void> Log() {                       // a continuation chain
//     return Answer().Then([](int n) { std::printf("%d\n", n); });
//   }
//
// Cost model (why it looks like this):
//   * A ready future (MakeReadyFuture, MakeExceptionFuture, a .Then() on a ready future) keeps
//     its value inline and allocates nothing; the continuation runs inline, right away.
//   * A pending future points at one heap FutureState shared with its producer. One allocation
//     is the price of a rendezvous between two objects whose lifetimes are independent (either
//     side may go away first) and that may both move; Seastar avoids it with back-pointers
//     patched on every move, which is much more code for little gain at our scale. A .Then()
//     on a pending future allocates one object that is both the continuation and the result's
//     state; a coroutine's frame is its own state (no extra allocation).
//   * Continuations of pending futures never run inside SetValue(): they are scheduled on the
//     TaskQueue that was current when they were attached, so stacks stay shallow and the
//     producer's code is not re-entered.
//
// Threading: a future, its promise and its continuations belong to one shard (thread). Results
// cross shards only through the SMP layer.
#ifndef KEV_REACTOR_FUTURE_H_
#define KEV_REACTOR_FUTURE_H_

#include <exception>
#include <functional>
#include <type_traits>
#include <utility>
#include <variant>

#include "reactor/errors.h"
#include "reactor/internal/check.h"
#include "reactor/internal/future_state.h"
#include "reactor/task_queue.h"

namespace kev {

template <class T>
class Future;
template <class T>
class Promise;

namespace internal {
template <class T>
class CoroutinePromise;
template <class T>
class FutureAwaiter;
struct FutureAccess;

template <class T>
inline constexpr bool kIsFuture = false;
template <class T>
inline constexpr bool kIsFuture<Future<T>> = true;

// Blocks the running fiber until `state` resolves; aborts outside fibers.
void WaitOnFiber(FutureStateBase& state) noexcept;
}  // namespace internal

// The consumer end of an asynchronous T (T may be void).
//
// States: *invalid* (default-constructed, moved from, or consumed by Get(), Then(), co_await),
// *pending*, or *available* (holding a value or an exception). Consuming operations leave the
// future invalid. Get(), GetException(), Then(), ThenWrapped() and co_await on an invalid
// future are contract violations (abort); Available() and Failed() return false for it.
// Dropping a pending future is allowed: the producer still runs, its result is discarded.
template <class T>
class [[nodiscard]] Future {
  static_assert(!std::is_reference_v<T>, "Future<T&> is not supported; use a pointer");
  static_assert(!internal::kIsFuture<T>, "Future<Future<T>> is not supported; futures flatten");
  static_assert(std::is_void_v<T> || std::is_move_constructible_v<T>,
                "a Future's value type must be move-constructible");

 public:
  using ValueType = T;
  // Makes `Future<T> F(...) { co_await ...; co_return ...; }` a coroutine. The coroutine starts
  // eagerly (runs until its first suspension before returning) and runs to completion even if
  // the returned future is dropped.
  using promise_type = internal::CoroutinePromise<T>;

  // An invalid future. Exists so that futures can be members and container elements.
  Future() noexcept = default;
  // Moving leaves `other` invalid (not merely "moved-from"), so a stale use is caught.
  Future(Future&& other) noexcept(std::is_nothrow_move_constructible_v<internal::Stored<T>>)
      : v_(std::move(other.v_)) {
    other.v_.template emplace<kEmpty>();
  }
  Future& operator=(Future&& other) noexcept(
      std::is_nothrow_move_constructible_v<internal::Stored<T>>) {
    if (this != &other) {
      v_ = std::move(other.v_);
      other.v_.template emplace<kEmpty>();
    }
    return *this;
  }
  Future(const Future&) = delete;
  Future& operator=(const Future&) = delete;
  ~Future() = default;

  // False for a default-constructed, moved-from or consumed future.
  bool Valid() const noexcept { return v_.index() != kEmpty; }

  // True when the result (value or exception) is known. Cheap: no scheduling involved.
  bool Available() const noexcept {
    switch (v_.index()) {
      case kValue:
      case kException:
        return true;
      case kState:
        return std::get<kState>(v_)->Resolved();
      default:
        return false;
    }
  }

  // True when the result is known and is an exception.
  bool Failed() const noexcept {
    return v_.index() == kException ||
           (v_.index() == kState && std::get<kState>(v_)->Failed());
  }

  // Consumes the future: returns the value or rethrows the exception. On a pending future it
  // suspends the calling fiber (see fiber.h) until the result is known; outside a fiber that
  // is a contract violation and aborts, because blocking the shard's thread would deadlock it.
  T Get();

  // Consumes a Failed() future and returns its exception without throwing.
  std::exception_ptr GetException() noexcept;

  // Chains `fn` after a successful result and consumes this future.
  //
  // `fn` takes the value (nothing for Future<void>) and may return U, void or Future<U>; the
  // result is Future<U> (flattened when fn returns a future). If this future fails, `fn` is not
  // called and the failure propagates. If `fn` throws, the result fails with that exception.
  // When this future is available, `fn` runs inline before Then() returns (no allocation);
  // otherwise `fn` is stored and runs on the TaskQueue current now (one must be installed),
  // after the result arrives. A stored `fn` is kept alive until the future it returned
  // resolves, but see docs/coroutines.md before passing a capturing coroutine lambda.
  template <class Fn>
  auto Then(Fn&& fn) &&;

  // Like Then(), but `fn` always runs and receives this future, available (value or error):
  // the place to handle or translate errors. `fn(Future<T>)` may return U, void or Future<U>.
  template <class Fn>
  auto ThenWrapped(Fn&& fn) &&;

  // `co_await future` consumes it. No suspension if available; otherwise the coroutine is
  // resumed by the current TaskQueue once the result arrives. Yields T or throws.
  auto operator co_await() && noexcept { return internal::FutureAwaiter<T>(std::move(*this)); }
  auto operator co_await() & noexcept { return internal::FutureAwaiter<T>(std::move(*this)); }

 private:
  friend struct internal::FutureAccess;
  using Value = internal::Stored<T>;
  enum : size_t { kEmpty = 0, kValue = 1, kException = 2, kState = 3 };

  template <size_t I, class... Args>
  explicit Future(std::in_place_index_t<I> index, Args&&... args)
      : v_(index, std::forward<Args>(args)...) {}

  // Replaces a resolved shared state by its result held inline.
  void Settle() noexcept(std::is_nothrow_move_constructible_v<Value>) {
    internal::StateRef<T> state = std::move(std::get<kState>(v_));
    if (state->Failed()) {
      v_.template emplace<kException>(state->exception());
    } else {
      v_.template emplace<kValue>(state->TakeValue());
    }
  }

  template <bool kWrapped, class Fn>
  auto ThenImpl(Fn&& fn);

  std::variant<std::monostate, Value, std::exception_ptr, internal::StateRef<T>> v_;
};

namespace internal {

// The one door into Future's representation, for kev's own machinery (continuations,
// coroutines, fibers, combinators). Not for users.
struct FutureAccess {
  template <class T, class... Args>
  static Future<T> Ready(Args&&... args) {
    return Future<T>(std::in_place_index<Future<T>::kValue>, std::forward<Args>(args)...);
  }
  template <class T>
  static Future<T> Failed(std::exception_ptr ex) noexcept {
    KEV_CHECK_MSG(ex != nullptr, "MakeExceptionFuture with a null exception_ptr");
    return Future<T>(std::in_place_index<Future<T>::kException>, std::move(ex));
  }
  template <class T>
  static Future<T> FromState(StateRef<T> state) noexcept {
    return Future<T>(std::in_place_index<Future<T>::kState>, std::move(state));
  }
  // The shared state of a pending future, or null if it is available or invalid.
  template <class T>
  static FutureState<T>* PendingState(const Future<T>& f) noexcept {
    if (f.v_.index() != Future<T>::kState) return nullptr;
    FutureState<T>* state = std::get<Future<T>::kState>(f.v_).get();
    return state->Resolved() ? nullptr : state;
  }
  // Takes the shared state out of a future known to be pending.
  template <class T>
  static StateRef<T> TakeState(Future<T>& f) noexcept {
    StateRef<T> state = std::move(std::get<Future<T>::kState>(f.v_));
    f.v_.template emplace<Future<T>::kEmpty>();
    return state;
  }
  // Moves the result of an available future into a pending state.
  template <class T>
  static void ResolveInto(Future<T>&& f, FutureState<T>& to) noexcept {
    if (f.Failed()) {
      to.SetException(f.GetException());
    } else if constexpr (std::is_void_v<T>) {
      f.Get();
      to.SetValue();
    } else {
      to.SetValue(f.Get());
    }
  }
};

}  // namespace internal

// Returns an available future holding T constructed from `args` (nothing for void). Allocates
// nothing beyond what T's constructor does.
template <class T = void, class... Args>
  requires(std::is_void_v<T> ? sizeof...(Args) == 0 : std::is_constructible_v<T, Args...>)
Future<T> MakeReadyFuture(Args&&... args) {
  return internal::FutureAccess::Ready<T>(std::forward<Args>(args)...);
}

// Deduces T from the argument: MakeReadyFuture(42) is a Future<int>.
template <class V>
Future<std::decay_t<V>> MakeReadyFuture(V&& value) {
  return internal::FutureAccess::Ready<std::decay_t<V>>(std::forward<V>(value));
}

// Returns an available, failed future. `ex` must not be null. Allocates nothing.
template <class T>
Future<T> MakeExceptionFuture(std::exception_ptr ex) noexcept {
  return internal::FutureAccess::Failed<T>(std::move(ex));
}

// Same with an exception object, e.g. MakeExceptionFuture<int>(std::runtime_error("no")).
// (std::make_exception_ptr allocates the exception object, as any throw does.)
template <class T, class E>
  requires(!std::is_same_v<std::decay_t<E>, std::exception_ptr>)
Future<T> MakeExceptionFuture(E&& ex) noexcept {
  return internal::FutureAccess::Failed<T>(std::make_exception_ptr(std::forward<E>(ex)));
}

// The producer end of a Future<T>. Move-only.
//
// Allocates its shared state on first use (GetFuture() or Set*()), so an unused Promise is
// free. Exactly one of SetValue()/SetException() may be called, once (checked). Destroying or
// overwriting a Promise that was not resolved resolves its future with kev::BrokenPromise,
// so a consumer can never wait for a producer that no longer exists. Resolving schedules the
// consumer's continuation (if any) on the queue it was attached on; nothing runs inline.
template <class T>
class Promise {
 public:
  Promise() noexcept = default;
  Promise(Promise&& other) noexcept
      : state_(std::exchange(other.state_, nullptr)),
        future_taken_(other.future_taken_),
        resolved_(other.resolved_) {}
  Promise& operator=(Promise&& other) noexcept {
    if (this != &other) {
      Abandon();
      state_ = std::exchange(other.state_, nullptr);
      future_taken_ = other.future_taken_;
      resolved_ = other.resolved_;
    }
    return *this;
  }
  Promise(const Promise&) = delete;
  Promise& operator=(const Promise&) = delete;
  ~Promise() { Abandon(); }

  // Returns the future of this promise. May be called once (checked), before or after the
  // promise is resolved.
  Future<T> GetFuture() {
    KEV_CHECK_MSG(!future_taken_, "Promise::GetFuture() called twice");
    EnsureState();
    future_taken_ = true;
    state_->AddRef();
    Future<T> future = internal::FutureAccess::FromState(internal::StateRef<T>::Adopt(state_));
    if (resolved_) DropState();
    return future;
  }

  // Resolves the future with a value built from `args` (none for Promise<void>).
  template <class... Args>
  void SetValue(Args&&... args) {
    BeginResolve();
    state_->SetValue(std::forward<Args>(args)...);
    EndResolve();
  }

  // Resolves the future with an error. `ex` must not be null.
  void SetException(std::exception_ptr ex) noexcept {
    BeginResolve();
    state_->SetException(std::move(ex));
    EndResolve();
  }
  template <class E>
    requires(!std::is_same_v<std::decay_t<E>, std::exception_ptr>)
  void SetException(E&& ex) noexcept {
    SetException(std::make_exception_ptr(std::forward<E>(ex)));
  }

 private:
  void EnsureState() {
    // The one allocation of a pending future; see the cost model at the top of this file.
    if (state_ == nullptr) state_ = new internal::FutureState<T>(/*refs=*/1);
  }
  void BeginResolve() {
    KEV_CHECK_MSG(!resolved_, "Promise resolved twice");
    EnsureState();
  }
  void EndResolve() noexcept {
    resolved_ = true;
    if (future_taken_) DropState();  // The consumer holds the state now.
  }
  void DropState() noexcept {
    if (state_ != nullptr) std::exchange(state_, nullptr)->Release();
  }
  void Abandon() noexcept {
    if (state_ != nullptr && !resolved_) state_->SetException(std::make_exception_ptr(BrokenPromise()));
    DropState();
  }

  internal::FutureState<T>* state_ = nullptr;  // Our reference, while we may still need it.
  bool future_taken_ = false;
  bool resolved_ = false;
};

template <class T>
T Future<T>::Get() {
  KEV_CHECK_MSG(Valid(), "Future::Get() on an invalid (moved-from or consumed) future");
  if (v_.index() == kState) {
    if (!std::get<kState>(v_)->Resolved()) internal::WaitOnFiber(*std::get<kState>(v_).get());
    Settle();
  }
  if (v_.index() == kException) {
    std::exception_ptr ex = std::move(std::get<kException>(v_));
    v_.template emplace<kEmpty>();
    std::rethrow_exception(std::move(ex));
  }
  Value value = std::move(std::get<kValue>(v_));
  v_.template emplace<kEmpty>();
  if constexpr (!std::is_void_v<T>) return value;
}

template <class T>
std::exception_ptr Future<T>::GetException() noexcept {
  KEV_CHECK_MSG(Failed(), "Future::GetException() on a future that has not failed");
  if (v_.index() == kState) Settle();
  std::exception_ptr ex = std::move(std::get<kException>(v_));
  v_.template emplace<kEmpty>();
  return ex;
}

}  // namespace kev

#include "reactor/internal/then.h"       // IWYU pragma: export
#include "reactor/internal/coroutine.h"  // IWYU pragma: export

#endif  // KEV_REACTOR_FUTURE_H_
