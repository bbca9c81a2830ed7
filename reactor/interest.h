// Awaiting kevent interests from coroutines: `co_await kev::Interest(uk)` registers the ukevent
// `uk` in the current shard's kevent queue and resumes the coroutine with the delivered event.
// Any type the queue knows works: TIMER and UNOTIFY, and the OS-driven origins (SOCKET, PIPE,
// POLL, SIGNAL, ...) as they are registered in kevent/internal/queue.cc.
//
//   kev::Future<void> WaitReadable(int fd) {
//     ukevent uk{};
//     uk.type = KEVENT_SOCKET;
//     uk.event = KEVENT_SOCKET_RECV;
//     uk.id.raw[0] = fd;
//     uk.req_flags = KEVENT_REQ_ONESHOT;
//     ukevent ev = co_await kev::Interest(uk);   // no allocation: the request lives here
//     if (ev.ret_flags & KEVENT_RET_BROKEN) throw std::system_error(ev.ret_data[0], ...);
//   }
//
// Cost: an Interest is an awaiter in the coroutine frame and embeds its kevent request, so
// awaiting allocates nothing (WaitFor(), which returns a Future, costs one coroutine frame).
//
// Threading: the awaiting coroutine's shard only (it needs Reactor::Current()).
#ifndef KEV_REACTOR_INTEREST_H_
#define KEV_REACTOR_INTEREST_H_

#include <coroutine>
#include <exception>
#include <optional>

#include "kevent/ukevent.h"
#include "reactor/abort_source.h"
#include "reactor/future.h"
#include "reactor/reactor.h"
#include "reactor/task_queue.h"

namespace kev {

// The awaitable. `co_await Interest(uk)`:
//   * registers `uk` (as KEVENT_CTL_ADD; its user/ptr bits are returned untouched);
//   * if the queue completes it at once, yields that event without suspending;
//   * otherwise suspends until the first delivery and yields it (ret_flags DONE, or
//     BROKEN|DONE with the positive errno in ret_data[0]: a broken interest is an event, not an
//     exception, so the caller sees exactly what the queue reported);
//   * throws std::system_error if the queue rejects the request (EINVAL, EOPNOTSUPP, EBADF...);
//   * with an AbortSource: throws its reason (kev::AbortRequested by default) if it fires
//     before the event, or has fired already; the request is removed.
// The request is removed when the event has been taken (so a persistent request yields one
// event) and, at the latest, when the awaiter is destroyed. Not copyable or movable.
class Interest final : public KeventHandler, private Task {
 public:
  explicit Interest(const ukevent& uk) noexcept : KeventHandler(uk) {}
  Interest(const ukevent& uk, AbortSource& abort) noexcept : KeventHandler(uk), abort_(&abort) {}
  ~Interest() = default;

  bool await_ready() {
    if (abort_ != nullptr && abort_->Aborted()) {
      error_ = abort_->Reason();
      return true;
    }
    if (std::optional<ukevent> event = Register()) {
      Unregister();  // a persistent request that completed at once: one event is all we take
      event_ = *event;
      return true;
    }
    return false;
  }

  void await_suspend(std::coroutine_handle<> handle) noexcept {
    handle_ = handle;
    queue_ = &TaskQueue::CurrentOrDie("co_await kev::Interest");
    if (abort_ != nullptr) subscription_ = abort_->Subscribe([this] { OnAbort(); });
  }

  ukevent await_resume() {
    if (error_ != nullptr) std::rethrow_exception(error_);
    return event_;
  }

 private:
  void OnEvent(const ukevent& event) noexcept override {
    if (done_) return;
    done_ = true;
    event_ = event;
    Unregister();
    subscription_.Unsubscribe();
    queue_->Schedule(this);
  }

  void OnAbort() noexcept {
    if (done_) return;
    done_ = true;
    error_ = abort_->Reason();
    Unregister();
    queue_->Schedule(this);
  }

  void Run() noexcept override { handle_.resume(); }

  AbortSource* abort_ = nullptr;
  AbortSource::Subscription subscription_;
  TaskQueue* queue_ = nullptr;
  std::coroutine_handle<> handle_;
  ukevent event_{};
  std::exception_ptr error_;
  bool done_ = false;
};

// The same as a Future: resolves with the delivered event, or fails as co_await Interest(uk)
// throws. Costs one coroutine frame. Needs a current reactor.
Future<ukevent> WaitFor(ukevent uk);
Future<ukevent> WaitFor(ukevent uk, AbortSource& abort);

}  // namespace kev

#endif  // KEV_REACTOR_INTEREST_H_
