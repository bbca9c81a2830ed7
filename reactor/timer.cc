#include "reactor/timer.h"

#include <algorithm>
#include <stdexcept>

namespace kev {
namespace internal {

ukevent TimerRequest(std::chrono::nanoseconds duration, bool periodic) noexcept {
  constexpr int64_t kMaxNs = int64_t{0xffffffff} * 1'000'000'000 + 999'999'999;
  const int64_t ns = std::clamp<int64_t>(duration.count(), 0, kMaxNs);
  ukevent uk{};
  uk.type = KEVENT_TIMER;
  uk.event = KEVENT_TIMER_FIRED;
  uk.req_flags = periodic ? 0 : KEVENT_REQ_ONESHOT;
  uk.id.raw[0] = static_cast<uint32_t>(ns / 1'000'000'000);
  uk.id.raw[1] = static_cast<uint32_t>(ns % 1'000'000'000);
  return uk;
}

namespace {

// Sleep()'s state: the future's shared state and the timer request in one allocation.
// References: the future, and the pending timer (dropped when it fires or is aborted).
class SleepState final : public FutureState<void>, public KeventHandler {
 public:
  SleepState(std::chrono::nanoseconds duration, AbortSource* abort)
      : FutureState<void>(/*refs=*/2), KeventHandler(TimerRequest(duration, false)) {
    Register();  // A one-shot timer is never ready at ADD, even with a zero duration.
    if (abort != nullptr) {
      subscription_ = abort->Subscribe([this, abort] { OnAbort(abort->Reason()); });
    }
  }

 private:
  void OnEvent(const ukevent&) noexcept override {
    subscription_.Unsubscribe();
    SetValue();
    Release();
  }

  void OnAbort(std::exception_ptr reason) noexcept {
    Unregister();
    SetException(std::move(reason));
    Release();  // Drops the timer's reference; destroying the subscription in its callback is ok.
  }

  AbortSource::Subscription subscription_;
};

}  // namespace

Future<void> SleepFor(std::chrono::nanoseconds duration, AbortSource* abort) {
  if (abort != nullptr && abort->Aborted()) return MakeExceptionFuture<void>(abort->Reason());
  auto* state = new SleepState(duration, abort);  // the one allocation of a Sleep
  return FutureAccess::FromState(StateRef<void>::Adopt(state));
}

}  // namespace internal

void Timer::ArmNs(std::chrono::nanoseconds duration, bool periodic) {
  if (periodic && duration.count() <= 0) {
    throw std::invalid_argument("kev::Timer::ArmPeriodic: the period must be positive");
  }
  Unregister();
  request() = internal::TimerRequest(duration, periodic);
  Register();
}

void Timer::OnEvent(const ukevent& event) noexcept {
  expirations_ = event.ret_data[1];
  callback_();
}

}  // namespace kev
