#include "reactor/abort_source.h"

#include <exception>
#include <functional>
#include <utility>

#include "reactor/errors.h"

namespace kev {

void AbortSource::Subscription::Unsubscribe() noexcept {
  if (source_ != nullptr) source_->Unlink(this);
  callback_ = nullptr;
}

void AbortSource::Subscription::MoveFrom(Subscription& other) noexcept {
  callback_ = std::move(other.callback_);
  other.callback_ = nullptr;
  source_ = std::exchange(other.source_, nullptr);
  if (source_ == nullptr) return;
  // Take `other`'s place in the source's list.
  prev_ = std::exchange(other.prev_, nullptr);
  next_ = std::exchange(other.next_, nullptr);
  (prev_ != nullptr ? prev_->next_ : source_->head_) = this;
  (next_ != nullptr ? next_->prev_ : source_->tail_) = this;
}

AbortSource::~AbortSource() {
  while (head_ != nullptr) Unlink(head_);
}

AbortSource::Subscription AbortSource::Subscribe(std::function<void()> callback) {
  Subscription subscription;
  if (Aborted()) {
    callback();
    return subscription;
  }
  subscription.callback_ = std::move(callback);
  Link(&subscription);
  // NRVO, or the move constructor, which relinks: either way the list stays consistent.
  return subscription;
}

void AbortSource::RequestAbort(std::exception_ptr reason) noexcept {
  if (Aborted()) return;
  reason_ = reason != nullptr ? std::move(reason) : std::make_exception_ptr(AbortRequested());
  while (head_ != nullptr) {
    Subscription* s = head_;
    Unlink(s);  // Inactive before its callback runs, so the callback may destroy it.
    std::function<void()> callback = std::move(s->callback_);
    s->callback_ = nullptr;
    if (callback) callback();
  }
}

void AbortSource::Link(Subscription* s) noexcept {
  s->source_ = this;
  s->next_ = nullptr;
  s->prev_ = tail_;
  (tail_ != nullptr ? tail_->next_ : head_) = s;
  tail_ = s;
}

void AbortSource::Unlink(Subscription* s) noexcept {
  (s->prev_ != nullptr ? s->prev_->next_ : head_) = s->next_;
  (s->next_ != nullptr ? s->next_->prev_ : tail_) = s->prev_;
  s->prev_ = s->next_ = nullptr;
  s->source_ = nullptr;
}

}  // namespace kev
