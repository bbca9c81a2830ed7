// Combinators over futures: wait for many (WhenAll), run a function over a range concurrently
// (ParallelForEach), and give the shard back to the reactor (Yield, MaybeYield).
//
//   kev::Future<void> Replicate(std::vector<Peer>& peers, const Record& r) {
//     // Sends to every peer concurrently; fails if any send failed, after all have finished.
//     co_await kev::ParallelForEach(peers, [&r](Peer& p) { return p.Send(r); });
//   }
//
//   kev::Future<void> Checksum(const std::vector<Block>& blocks, uint32_t* sum) {
//     for (const Block& b : blocks) {
//       *sum = Crc(*sum, b);
//       co_await kev::MaybeYield();  // long loop: let I/O run when the turn's quota is spent
//     }
//   }
//
// Failure rule for all "wait for many" combinators: they never abandon an input. They wait
// until every input has resolved (so nothing an input's continuation uses is torn down early),
// then fail with the exception of the first failed input in argument/iteration order, or
// succeed with all values.
//
// Threading: shard-local like the futures they combine.
#ifndef KEV_REACTOR_COMBINATORS_H_
#define KEV_REACTOR_COMBINATORS_H_

#include <array>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "reactor/future.h"
#include "reactor/internal/future_state.h"
#include "reactor/task_queue.h"

namespace kev {
namespace internal {

// `co_await StateAwaiter{state}` waits until `state` (kept alive by its future elsewhere) has
// resolved, without consuming or rethrowing anything. A null state counts as resolved.
struct StateAwaiter final : Task {
  explicit StateAwaiter(FutureStateBase* s) noexcept : state(s) {}
  bool await_ready() const noexcept { return state == nullptr || state->Resolved(); }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    handle = h;
    state->SetWaiter(this, TaskQueue::CurrentOrDie("WhenAll/ParallelForEach on pending futures"));
  }
  void await_resume() const noexcept {}
  void Run() noexcept override { handle.resume(); }

  FutureStateBase* state;
  std::coroutine_handle<> handle;
};

template <class T>
using VectorResult = std::conditional_t<std::is_void_v<T>, void, std::vector<T>>;

// Consumes available futures: the first failure, or all values.
template <class T>
Future<VectorResult<T>> CollectVector(std::vector<Future<T>>& futures) {
  for (auto& f : futures) {
    if (f.Failed()) return MakeExceptionFuture<VectorResult<T>>(f.GetException());
  }
  if constexpr (std::is_void_v<T>) {
    for (auto& f : futures) f.Get();
    return MakeReadyFuture();
  } else {
    std::vector<T> values;
    values.reserve(futures.size());
    for (auto& f : futures) values.push_back(f.Get());
    return MakeReadyFuture(std::move(values));
  }
}

template <class T>
Future<VectorResult<T>> WhenAllPending(std::vector<Future<T>> futures) {
  for (auto& f : futures) co_await StateAwaiter(FutureAccess::PendingState(f));
  co_return co_await CollectVector(futures);
}

template <class T>
struct AsTuple {
  using Type = std::tuple<T>;
  static Type Take(Future<T>& f) { return Type(f.Get()); }
};
template <>
struct AsTuple<void> {
  using Type = std::tuple<>;
  static Type Take(Future<void>& f) {
    f.Get();
    return {};
  }
};

// The value of WhenAll(Future<Ts>...): void if every T is void, else a tuple of the non-void
// values in argument order.
template <class... Ts>
using TupleResult =
    std::conditional_t<(std::is_void_v<Ts> && ...), void,
                       decltype(std::tuple_cat(std::declval<typename AsTuple<Ts>::Type>()...))>;

template <class... Ts, size_t... I>
Future<TupleResult<Ts...>> CollectTuple(std::tuple<Future<Ts>...>& futures,
                                        std::index_sequence<I...>) {
  std::exception_ptr first;
  ((first == nullptr && std::get<I>(futures).Failed()
        ? void(first = std::get<I>(futures).GetException())
        : void()),
   ...);
  if (first != nullptr) return MakeExceptionFuture<TupleResult<Ts...>>(std::move(first));
  if constexpr (std::is_void_v<TupleResult<Ts...>>) {
    (std::get<I>(futures).Get(), ...);
    return MakeReadyFuture();
  } else {
    // Braced init evaluates left to right, so values are taken in argument order.
    return MakeReadyFuture(std::apply(
        [](auto&&... parts) { return std::tuple_cat(std::move(parts)...); },
        std::tuple<typename AsTuple<Ts>::Type...>{AsTuple<Ts>::Take(std::get<I>(futures))...}));
  }
}

template <class... Ts>
Future<TupleResult<Ts...>> WhenAllPending(std::tuple<Future<Ts>...> futures) {
  std::array<FutureStateBase*, sizeof...(Ts)> states = std::apply(
      [](auto&... f) {
        return std::array<FutureStateBase*, sizeof...(Ts)>{FutureAccess::PendingState(f)...};
      },
      futures);
  for (FutureStateBase* state : states) co_await StateAwaiter(state);
  co_return co_await CollectTuple(futures, std::index_sequence_for<Ts...>{});
}

Future<void> ForEachPending(std::vector<std::pair<size_t, Future<void>>> pending,
                            size_t first_failed_index, std::exception_ptr first_failure);

// Calls fn(item) and turns its outcome (void, Future<void>, or a throw) into a Future<void>.
template <class Fn, class Item>
Future<void> InvokeForEach(Fn& fn, Item& item) noexcept {
  using R = std::invoke_result_t<Fn&, Item&>;
  static_assert(std::is_void_v<R> || std::is_same_v<R, Future<void>>,
                "ParallelForEach's function must return void or Future<void>");
  return Futurize<R>::Apply([&]() -> R { return std::invoke(fn, item); });
}

// Yield()'s future: a state that resolves itself when the queue runs it, in the next turn.
class YieldState final : public FutureState<void>, public Task {
 public:
  YieldState() noexcept : FutureState<void>(/*refs=*/2) {}
  void Run() noexcept override {
    SetValue();
    Release();
  }
};

}  // namespace internal

// Waits for every future in `futures`, then yields their values in order (Future<void> for a
// vector of Future<void>), or fails with the first failure by index. An empty vector gives an
// available result. Available inputs cost nothing beyond the result vector; otherwise one
// coroutine frame waits for the pending ones. Pending inputs need a current TaskQueue.
template <class T>
Future<internal::VectorResult<T>> WhenAll(std::vector<Future<T>> futures) {
  for (auto& f : futures) {
    KEV_CHECK_MSG(f.Valid(), "WhenAll() given an invalid future");
    if (!f.Available()) return internal::WhenAllPending(std::move(futures));
  }
  return internal::CollectVector(futures);
}

// Waits for every argument, then yields a tuple of the non-void values in argument order (or
// void when all are Future<void>), or fails with the first failure in argument order.
//   auto [n, s] = co_await kev::WhenAll(CountRows(), ReadName(), Flush());  // int, string
template <class... Ts>
  requires(sizeof...(Ts) > 0)
Future<internal::TupleResult<Ts...>> WhenAll(Future<Ts>... futures) {
  KEV_CHECK_MSG((futures.Valid() && ...), "WhenAll() given an invalid future");
  std::tuple<Future<Ts>...> all(std::move(futures)...);
  if (std::apply([](auto&... f) { return (f.Available() && ...); }, all)) {
    return internal::CollectTuple(all, std::index_sequence_for<Ts...>{});
  }
  return internal::WhenAllPending(std::move(all));
}

// Calls fn(item) for every item of `range`, all before returning (so the calls run
// concurrently), then waits for all the futures they returned. `fn` returns void or
// Future<void>; a throw counts as that item's failure and does not stop the others. Resolves
// when all have finished, failing with the first failure in iteration order. `range` and `fn`
// are used only during this call: an item must be copied into `fn`'s future if it is needed
// after `fn` returns. Allocates only when some call returns a pending future.
template <class Range, class Fn>
Future<void> ParallelForEach(Range&& range, Fn&& fn) {
  std::vector<std::pair<size_t, Future<void>>> pending;
  std::exception_ptr first_failure;
  size_t first_failed_index = 0;
  size_t index = 0;
  for (auto&& item : range) {
    Future<void> f = internal::InvokeForEach(fn, item);
    if (!f.Available()) {
      pending.emplace_back(index, std::move(f));
    } else if (f.Failed()) {
      std::exception_ptr ex = f.GetException();
      if (first_failure == nullptr) {
        first_failure = std::move(ex);
        first_failed_index = index;
      }
    } else {
      f.Get();
    }
    ++index;
  }
  if (!pending.empty()) {
    return internal::ForEachPending(std::move(pending), first_failed_index,
                                    std::move(first_failure));
  }
  if (first_failure != nullptr) return MakeExceptionFuture<void>(std::move(first_failure));
  return MakeReadyFuture();
}

// A future that becomes available in the next turn of the current TaskQueue (after the reactor
// has had a chance to poll I/O), not in this one. Needs a current TaskQueue (checked). One
// allocation: yielding ends the turn, so it is never on the per-task hot path.
inline Future<void> Yield() {
  TaskQueue& queue = TaskQueue::CurrentOrDie("kev::Yield()");
  auto* state = new internal::YieldState();
  queue.ScheduleNextTurn(state);
  return internal::FutureAccess::FromState(internal::StateRef<void>::Adopt(state));
}

// Yield() if the current turn should end (TaskQueue::NeedPreempt()), else an available future
// (no allocation). Cost when not yielding: one clock read (see NeedPreempt()). Without a current
// queue there is no turn to end, so it is always available.
inline Future<void> MaybeYield() {
  TaskQueue* queue = TaskQueue::Current();
  if (queue != nullptr && queue->NeedPreempt()) return Yield();
  return MakeReadyFuture();
}

}  // namespace kev

#endif  // KEV_REACTOR_COMBINATORS_H_
