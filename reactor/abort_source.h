// AbortSource: cooperative cancellation. One side calls RequestAbort(); everything subscribed
// learns about it once, synchronously, and pending operations tied to the source fail with
// kev::AbortRequested (or the reason given) instead of waiting on.
//
//   kev::AbortSource stop;                        // e.g. owned by a server, fired on SIGTERM
//
//   kev::Future<void> Serve(Connection& c, kev::AbortSource& stop) {
//     auto sub = stop.Subscribe([&c] { c.Shutdown(); });    // unsubscribes on scope exit
//     while (true) {
//       Request r = co_await kev::WithAbort(stop, c.ReadRequest());  // throws AbortRequested
//       co_await c.Reply(r);
//     }
//   }
//
// Threading: shard-local; RequestAbort() and callbacks run on the owning shard. To abort from
// another shard, send a message to the owner (SMP layer) that calls RequestAbort() there.
#ifndef KEV_REACTOR_ABORT_SOURCE_H_
#define KEV_REACTOR_ABORT_SOURCE_H_

#include <exception>
#include <functional>
#include <utility>

#include "reactor/errors.h"
#include "reactor/future.h"
#include "reactor/internal/future_state.h"
#include "reactor/task_queue.h"

namespace kev {

class AbortSource {
 public:
  // An RAII registration of a callback with an AbortSource. Destroying (or Unsubscribe()-ing)
  // it before the abort guarantees the callback never runs. Move-only; the moved-from object
  // is inactive. It may outlive its source, which deactivates its subscriptions when it dies.
  class Subscription {
   public:
    Subscription() noexcept = default;
    Subscription(Subscription&& other) noexcept { MoveFrom(other); }
    Subscription& operator=(Subscription&& other) noexcept {
      if (this != &other) {
        Unsubscribe();
        MoveFrom(other);
      }
      return *this;
    }
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    ~Subscription() { Unsubscribe(); }

    // True while the callback is registered and has not run.
    bool Active() const noexcept { return source_ != nullptr; }

    // Unregisters the callback (no-op when inactive).
    void Unsubscribe() noexcept;

   private:
    friend class AbortSource;  // Links and fires subscriptions.
    void MoveFrom(Subscription& other) noexcept;

    AbortSource* source_ = nullptr;  // Null when inactive.
    Subscription* prev_ = nullptr;
    Subscription* next_ = nullptr;
    std::function<void()> callback_;
  };

  AbortSource() noexcept = default;
  // Not copyable or movable: subscriptions point at it.
  AbortSource(const AbortSource&) = delete;
  AbortSource& operator=(const AbortSource&) = delete;
  // Detaches any remaining subscriptions; their callbacks never run.
  ~AbortSource();

  // Registers `callback` to run once, when RequestAbort() is called. If the abort was already
  // requested, `callback` runs right away, before Subscribe() returns, and the subscription
  // returned is inactive: no abort is ever missed. The callback must not throw. Small callbacks
  // (up to two pointers of captures) are stored without allocation.
  [[nodiscard]] Subscription Subscribe(std::function<void()> callback);

  // Requests the abort: records `reason` (null means kev::AbortRequested) and runs every
  // subscribed callback once, in subscription order, synchronously. Later calls do nothing.
  // Callbacks may subscribe, unsubscribe or destroy subscriptions (their own included).
  void RequestAbort(std::exception_ptr reason = nullptr) noexcept;

  // True once RequestAbort() has been called.
  bool Aborted() const noexcept { return reason_ != nullptr; }

  // The abort's reason; null before RequestAbort().
  const std::exception_ptr& Reason() const noexcept { return reason_; }

  // Throws the abort's reason if the abort was requested; else does nothing.
  void ThrowIfAborted() const {
    if (reason_ != nullptr) std::rethrow_exception(reason_);
  }

 private:
  void Link(Subscription* s) noexcept;
  void Unlink(Subscription* s) noexcept;

  Subscription* head_ = nullptr;
  Subscription* tail_ = nullptr;
  std::exception_ptr reason_;
};

namespace internal {

// WithAbort()'s future: waits for the input, or resolves with the abort's reason first.
// References: the result future and this object as producer (dropped when it resolves, or on
// abort once it no longer waits for the input).
template <class T>
class AbortableState final : public FutureState<T>, public Task {
 public:
  AbortableState(StateRef<T> input, AbortSource& source)
      : FutureState<T>(/*refs=*/2), input_(std::move(input)) {
    input_->SetWaiter(this, TaskQueue::CurrentOrDie("kev::WithAbort() on a pending future"));
    subscription_ = source.Subscribe([this, &source] { OnAbort(source.Reason()); });
  }

  // The input resolved.
  void Run() noexcept override {
    subscription_.Unsubscribe();
    if (!this->Resolved()) ForwardResult(*input_.get(), *this);
    input_.reset();
    this->Release();
  }

 private:
  void OnAbort(std::exception_ptr reason) noexcept {
    if (this->Resolved()) return;
    this->SetException(std::move(reason));
    // If the input already resolved, Run() is queued and will release us; else stop waiting.
    if (!input_->Resolved()) {
      input_->ClearWaiter();
      input_.reset();
      this->Release();
    }
  }

  StateRef<T> input_;
  AbortSource::Subscription subscription_;
};

}  // namespace internal

// Returns a future that resolves like `future`, unless `source` aborts first: then it fails
// right away with the abort's reason (kev::AbortRequested by default) and `future`'s eventual
// result is discarded (the operation behind it is not cancelled; tie it to `source` too if it
// must stop). An available `future` is returned as is. A pending one costs one allocation and
// needs a current TaskQueue.
template <class T>
Future<T> WithAbort(AbortSource& source, Future<T> future) {
  if (future.Available()) return future;
  if (source.Aborted()) return MakeExceptionFuture<T>(source.Reason());
  auto* state = new internal::AbortableState<T>(internal::FutureAccess::TakeState(future), source);
  return internal::FutureAccess::FromState(internal::StateRef<T>::Adopt(state));
}

}  // namespace kev

#endif  // KEV_REACTOR_ABORT_SOURCE_H_
