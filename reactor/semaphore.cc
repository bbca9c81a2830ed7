#include "reactor/semaphore.h"

#include <exception>
#include <utility>

#include "reactor/errors.h"
#include "reactor/internal/future_state.h"

namespace kev {

// A queued Wait(): an intrusive FIFO node that is also the waiting future's state.
// References: the future and the semaphore's queue (dropped when served, broken or withdrawn).
class Semaphore::Waiter final : public internal::FutureState<void> {
 public:
  explicit Waiter(size_t n) noexcept : FutureState<void>(/*refs=*/2), n(n) {}

  const size_t n;
  Waiter* prev = nullptr;
  Waiter* next = nullptr;
  AbortSource::Subscription abort;
};

Semaphore::~Semaphore() {
  if (head_ != nullptr) Broken(std::make_exception_ptr(BrokenSemaphore()));
}

Future<void> Semaphore::Wait(size_t n) {
  if (broken_ != nullptr) return MakeExceptionFuture<void>(broken_);
  if (TryWait(n)) return MakeReadyFuture();
  return Enqueue(n, nullptr);
}

Future<void> Semaphore::Wait(AbortSource& abort, size_t n) {
  if (broken_ != nullptr) return MakeExceptionFuture<void>(broken_);
  if (abort.Aborted()) return MakeExceptionFuture<void>(abort.Reason());
  if (TryWait(n)) return MakeReadyFuture();
  return Enqueue(n, &abort);
}

bool Semaphore::TryWait(size_t n) noexcept {
  if (broken_ != nullptr || head_ != nullptr || count_ < n) return false;
  count_ -= n;
  return true;
}

Future<void> Semaphore::Enqueue(size_t n, AbortSource* abort) {
  // The one allocation of a blocked wait: the queue node doubles as the future's state.
  auto* w = new Waiter(n);
  w->prev = tail_;
  (tail_ != nullptr ? tail_->next : head_) = w;
  tail_ = w;
  ++waiters_;
  if (abort != nullptr) {
    w->abort = abort->Subscribe([this, w, abort] { Withdraw(w, abort->Reason()); });
  }
  return internal::FutureAccess::FromState(internal::StateRef<void>::Adopt(w));
}

void Semaphore::Unlink(Waiter* w) noexcept {
  (w->prev != nullptr ? w->prev->next : head_) = w->next;
  (w->next != nullptr ? w->next->prev : tail_) = w->prev;
  w->prev = w->next = nullptr;
  --waiters_;
}

void Semaphore::WakeWaiters() noexcept {
  while (head_ != nullptr && count_ >= head_->n) {
    Waiter* w = head_;
    count_ -= w->n;
    Unlink(w);
    w->abort.Unsubscribe();
    w->SetValue();
    w->Release();
  }
}

void Semaphore::Withdraw(Waiter* w, const std::exception_ptr& reason) noexcept {
  const bool was_head = (w == head_);
  Unlink(w);
  w->SetException(reason);
  w->Release();
  // A large request at the head may have been holding back smaller ones behind it.
  if (was_head) WakeWaiters();
}

void Semaphore::Signal(size_t n) noexcept {
  if (broken_ != nullptr) return;
  count_ += n;
  WakeWaiters();
}

void Semaphore::Broken(std::exception_ptr ex) noexcept {
  broken_ = ex != nullptr ? std::move(ex) : std::make_exception_ptr(BrokenSemaphore());
  while (head_ != nullptr) {
    Waiter* w = head_;
    Unlink(w);
    w->abort.Unsubscribe();
    w->SetException(broken_);
    w->Release();
  }
}

}  // namespace kev
