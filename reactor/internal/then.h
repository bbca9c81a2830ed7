// Internal: the machinery behind Future::Then() and Future::ThenWrapped(). Included by
// reactor/future.h; not part of kev's public API.
#ifndef KEV_REACTOR_INTERNAL_THEN_H_
#define KEV_REACTOR_INTERNAL_THEN_H_

#include <exception>
#include <functional>
#include <type_traits>
#include <utility>

#include "reactor/future.h"

namespace kev::internal {

// Futurize<R> turns "call something returning R" into "get a Future": values are wrapped,
// futures pass through (flattening), and a throw becomes a failed future.
template <class R>
struct Futurize {
  using Type = Future<R>;
  template <class C>
  static Type Apply(C&& call) noexcept {
    try {
      return FutureAccess::Ready<R>(call());
    } catch (...) {
      return FutureAccess::Failed<R>(std::current_exception());
    }
  }
};

template <>
struct Futurize<void> {
  using Type = Future<void>;
  template <class C>
  static Type Apply(C&& call) noexcept {
    try {
      call();
      return FutureAccess::Ready<void>();
    } catch (...) {
      return FutureAccess::Failed<void>(std::current_exception());
    }
  }
};

template <class U>
struct Futurize<Future<U>> {
  using Type = Future<U>;
  template <class C>
  static Type Apply(C&& call) noexcept {
    try {
      return call();
    } catch (...) {
      return FutureAccess::Failed<U>(std::current_exception());
    }
  }
};

template <class F>
struct FutureValue;
template <class U>
struct FutureValue<Future<U>> {
  using Type = U;
};

// What a continuation returns when it is given an available Future<T>: the value (Then) or the
// future itself (ThenWrapped).
template <class T, class Fn, bool kWrapped>
struct ThenCall;

template <class T, class Fn>
struct ThenCall<T, Fn, /*kWrapped=*/true> {
  using Raw = std::invoke_result_t<Fn&, Future<T>&&>;
  using Result = typename Futurize<Raw>::Type;

  static Result Call(Fn& fn, Future<T>&& in) noexcept {
    return Futurize<Raw>::Apply([&]() -> Raw { return std::invoke(fn, std::move(in)); });
  }
};

template <class T, class Fn>
struct ValueCallResult {
  using Type = std::invoke_result_t<Fn&, T&&>;
};
template <class Fn>
struct ValueCallResult<void, Fn> {
  using Type = std::invoke_result_t<Fn&>;
};

template <class T, class Fn>
struct ThenCall<T, Fn, /*kWrapped=*/false> {
  using Raw = typename ValueCallResult<T, Fn>::Type;
  using Result = typename Futurize<Raw>::Type;

  static Result Call(Fn& fn, Future<T>&& in) noexcept {
    if (in.Failed()) {
      return FutureAccess::Failed<typename FutureValue<Result>::Type>(in.GetException());
    }
    return Futurize<Raw>::Apply([&]() -> Raw {
      if constexpr (std::is_void_v<T>) {
        in.Get();
        return std::invoke(fn);
      } else {
        return std::invoke(fn, in.Get());
      }
    });
  }
};

// A continuation attached to a pending future. It is at once the Task that runs `fn` when the
// input resolves and the shared state of the future Then() returned, so the pending path costs
// one allocation. When `fn` returns a pending future, the same object waits for that one too
// (flattening) before resolving. References: the result future and this continuation (the
// producer), dropped when the result is set.
template <class T, class Fn, bool kWrapped>
class ThenState final
    : public FutureState<typename FutureValue<typename ThenCall<T, Fn, kWrapped>::Result>::Type>,
      public Task {
  using Call = ThenCall<T, Fn, kWrapped>;
  using U = typename FutureValue<typename Call::Result>::Type;

 public:
  template <class F>
  ThenState(StateRef<T> input, F&& fn)
      : FutureState<U>(/*refs=*/2), input_(std::move(input)), fn_(std::forward<F>(fn)) {
    input_->SetWaiter(this, TaskQueue::CurrentOrDie("Future::Then() on a pending future"));
  }

  void Run() noexcept override {
    if (input_) {
      typename Call::Result out = Call::Call(fn_, FutureAccess::FromState(std::move(input_)));
      if (FutureAccess::PendingState(out) != nullptr) {
        inner_ = FutureAccess::TakeState(out);
        inner_->SetWaiter(this, TaskQueue::CurrentOrDie("Future::Then() flattening"));
        return;
      }
      FutureAccess::ResolveInto(std::move(out), *this);
    } else {
      ForwardResult(*inner_.get(), *this);
      inner_.reset();
    }
    this->Release();
  }

 private:
  StateRef<T> input_;  // Until `fn_` has run.
  StateRef<U> inner_;  // The pending future `fn_` returned, while we wait for it.
  // Kept until this state is freed (not just until it ran), so that a coroutine `fn_` may use
  // its captures until the future it returned resolves.
  Fn fn_;
};

}  // namespace kev::internal

namespace kev {

template <class T>
template <bool kWrapped, class Fn>
auto Future<T>::ThenImpl(Fn&& fn) {
  using Callable = std::decay_t<Fn>;
  using Call = internal::ThenCall<T, Callable, kWrapped>;
  using U = typename internal::FutureValue<typename Call::Result>::Type;
  KEV_CHECK_MSG(Valid(), "Future::Then() on an invalid (moved-from or consumed) future");
  if (internal::FutureAccess::PendingState(*this) == nullptr) {
    // Available: run inline, allocation-free, calling `fn` as the caller passed it.
    return internal::ThenCall<T, std::remove_reference_t<Fn>, kWrapped>::Call(fn, std::move(*this));
  }
  // Pending: one allocation, the continuation that is also the result's state.
  auto* state = new internal::ThenState<T, Callable, kWrapped>(
      internal::FutureAccess::TakeState(*this), std::forward<Fn>(fn));
  return internal::FutureAccess::FromState(internal::StateRef<U>::Adopt(state));
}

template <class T>
template <class Fn>
auto Future<T>::Then(Fn&& fn) && {
  return ThenImpl<false>(std::forward<Fn>(fn));
}

template <class T>
template <class Fn>
auto Future<T>::ThenWrapped(Fn&& fn) && {
  return ThenImpl<true>(std::forward<Fn>(fn));
}

}  // namespace kev

#endif  // KEV_REACTOR_INTERNAL_THEN_H_
