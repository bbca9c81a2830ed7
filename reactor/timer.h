// Timers on the shard's kevent TIMER origin: Sleep(), WithTimeout() and a periodic Timer.
//
//   kev::Future<void> Heartbeat(kev::AbortSource& stop) {
//     while (true) {
//       co_await kev::Sleep(std::chrono::seconds(1), stop);   // throws AbortRequested on stop
//       SendPing();
//     }
//   }
//
//   // Fails with kev::TimedOut if the reply does not come within 100 ms.
//   Reply r = co_await kev::WithTimeout(std::chrono::milliseconds(100), conn.ReadReply());
//
//   kev::Timer tick([&] { ++ticks; });                      // callback runs in the loop
//   tick.ArmPeriodic(std::chrono::milliseconds(10));
//
// All timers are kevent requests in the shard's queue (CLOCK_MONOTONIC, nanosecond deadlines,
// a timer heap): a due timer wakes the reactor's poll, and timers due at the same moment fire
// in the order they were armed. Durations are rounded to nanoseconds; a zero or negative
// duration means "due now" (fires in the next loop turn, after I/O has been polled).
//
// Threading: the shard that created them, which must have a current Reactor.
#ifndef KEV_REACTOR_TIMER_H_
#define KEV_REACTOR_TIMER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <utility>

#include "kevent/ukevent.h"
#include "reactor/abort_source.h"
#include "reactor/errors.h"
#include "reactor/future.h"
#include "reactor/internal/future_state.h"
#include "reactor/reactor.h"
#include "reactor/task_queue.h"

namespace kev {

namespace internal {

// A KEVENT_TIMER request of `duration` (clamped to [0, 2^32 s)); ONESHOT unless periodic.
ukevent TimerRequest(std::chrono::nanoseconds duration, bool periodic) noexcept;

// WithTimeout()'s state: resolves like its input, or fails with TimedOut when the timer fires
// first. References: the result future, and this object as producer (dropped once it no longer
// waits for anything).
template <class T>
class TimeoutState final : public FutureState<T>, public Task, public KeventHandler {
 public:
  TimeoutState(StateRef<T> input, std::chrono::nanoseconds timeout)
      : FutureState<T>(/*refs=*/2),
        KeventHandler(TimerRequest(timeout, /*periodic=*/false)),
        input_(std::move(input)) {
    input_->SetWaiter(this, TaskQueue::CurrentOrDie("kev::WithTimeout() on a pending future"));
    Register();  // A one-shot timer never completes at once: its deadline is ahead.
  }

  // The input resolved (scheduled by its state).
  void Run() noexcept override {
    Unregister();
    if (!this->Resolved()) ForwardResult(*input_.get(), *this);
    input_.reset();
    this->Release();
  }

 private:
  // The timer fired.
  void OnEvent(const ukevent&) noexcept override {
    if (this->Resolved()) return;
    this->SetException(std::make_exception_ptr(TimedOut()));
    // If the input resolved already, Run() is queued and releases us; else stop waiting.
    if (!input_->Resolved()) {
      input_->ClearWaiter();
      input_.reset();
      this->Release();
    }
  }

  StateRef<T> input_;
};

Future<void> SleepFor(std::chrono::nanoseconds duration, AbortSource* abort);

}  // namespace internal

// A future that resolves after `duration`. One allocation (the state embeds the timer
// request). Needs a current reactor.
template <class Rep, class Period>
Future<void> Sleep(std::chrono::duration<Rep, Period> duration) {
  return internal::SleepFor(std::chrono::ceil<std::chrono::nanoseconds>(duration), nullptr);
}

// Like Sleep(), but fails with `abort`'s reason (kev::AbortRequested by default) as soon as it
// fires (at once if it already has); the timer is cancelled then.
template <class Rep, class Period>
Future<void> Sleep(std::chrono::duration<Rep, Period> duration, AbortSource& abort) {
  return internal::SleepFor(std::chrono::ceil<std::chrono::nanoseconds>(duration), &abort);
}

// Resolves like `future`, unless `timeout` passes first: then it fails with kev::TimedOut at
// once and `future`'s eventual result is discarded (the operation behind it is not cancelled;
// tie it to an AbortSource too if it must stop). An available `future` is returned as is
// (no timer). A pending one costs one allocation and one timer.
template <class Rep, class Period, class T>
Future<T> WithTimeout(std::chrono::duration<Rep, Period> timeout, Future<T> future) {
  if (future.Available()) return future;
  auto* state = new internal::TimeoutState<T>(internal::FutureAccess::TakeState(future),
                                              std::chrono::ceil<std::chrono::nanoseconds>(timeout));
  return internal::FutureAccess::FromState(internal::StateRef<T>::Adopt(state));
}

// A re-armable timer that calls a callback from the reactor loop (the delivery phase), once
// (Arm) or every period (ArmPeriodic). Not a task: the callback runs inline in the loop, so
// keep it short (start a coroutine for longer work). It may re-arm, cancel or destroy this
// Timer. A periodic timer that falls behind calls the callback once with the number of periods
// that elapsed (expirations()).
//
// Not copyable or movable (its request is linked into the queue). Destroying it cancels it.
class Timer final : private KeventHandler {
 public:
  explicit Timer(std::function<void()> callback) noexcept
      : KeventHandler(ukevent{}), callback_(std::move(callback)) {}
  ~Timer() = default;

  // Fires once after `delay`. Re-arming an armed timer restarts it.
  template <class Rep, class Period>
  void Arm(std::chrono::duration<Rep, Period> delay) {
    ArmNs(std::chrono::ceil<std::chrono::nanoseconds>(delay), /*periodic=*/false);
  }
  // Fires every `period` (> 0, else std::invalid_argument), the first time after one period;
  // the schedule keeps its phase (a late turn does not shift later expirations).
  template <class Rep, class Period>
  void ArmPeriodic(std::chrono::duration<Rep, Period> period) {
    ArmNs(std::chrono::ceil<std::chrono::nanoseconds>(period), /*periodic=*/true);
  }
  // Stops the timer; the callback will not run until it is armed again. No-op if not armed.
  void Cancel() noexcept { Unregister(); }
  bool Armed() const noexcept { return Registered(); }
  // Periods covered by the current callback (> 1 when the loop was late); 1 for Arm().
  uint32_t expirations() const noexcept { return expirations_; }

 private:
  void ArmNs(std::chrono::nanoseconds duration, bool periodic);
  void OnEvent(const ukevent& event) noexcept override;

  std::function<void()> callback_;
  uint32_t expirations_ = 0;
};

}  // namespace kev

#endif  // KEV_REACTOR_TIMER_H_
