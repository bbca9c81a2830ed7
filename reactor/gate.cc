#include "reactor/gate.h"

#include "reactor/errors.h"
#include "reactor/internal/check.h"

namespace kev {

Gate::~Gate() {
  KEV_CHECK_MSG(count_ == 0, "Gate destroyed while still held; Close() it and wait first");
}

void Gate::Enter() {
  if (closed_) throw GateClosed();
  ++count_;
}

bool Gate::TryEnter() noexcept {
  if (closed_) return false;
  ++count_;
  return true;
}

void Gate::Leave() noexcept {
  KEV_CHECK_MSG(count_ > 0, "Gate::Leave() without a matching Enter()");
  if (--count_ == 0 && closed_) drained_.SetValue();
}

Gate::Holder Gate::Hold() {
  Enter();
  return Holder(this);
}

Future<void> Gate::Close() {
  KEV_CHECK_MSG(!closed_, "Gate::Close() called twice");
  closed_ = true;
  if (count_ == 0) return MakeReadyFuture();
  return drained_.GetFuture();
}

}  // namespace kev
