#include "kevent/internal/readable_watch.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace kev::kevent_internal {

ReadableWatch* ReadableWatch::Start(Poller& poller, int fd, Listener* listener) {
  auto* w = new ReadableWatch(poller, fd, listener);  // once per origin object, not per event
  w->Arm();
  return w;
}

ReadableWatch::~ReadableWatch() { close(fd_); }

void ReadableWatch::Arm() {
  armed_ = true;
  // io_uring: one-shot, re-armed after each drain. A multishot poll would queue kernel task
  // work at every wake-up of the fd (for an epoll set: every activity of every fd in it) and
  // need the poller's level re-check poll(2) at each Wait; a one-shot poll is woken once per
  // drain, and arming it checks the fd, so nothing is missed. epoll: multishot, which is one
  // level-triggered registration, where re-arming would cost an epoll_ctl per report.
  poller_.PollAdd(fd_, POLLIN, /*multishot=*/!one_shot_, this);
}

void ReadableWatch::Release() {
  listener_ = nullptr;
  if (armed_) {
    poller_.Cancel(this);  // the final completion deletes us
  } else {
    delete this;
  }
}

void ReadableWatch::OnComplete(int32_t result, uint32_t flags) noexcept {
  const bool final = (flags & kCompletionMore) == 0;
  if (result >= 0 && listener_ != nullptr) listener_->OnReadable();
  if (!final) return;
  armed_ = false;
  if (listener_ == nullptr) {
    delete this;
    return;
  }
  // A one-shot poll ends at each report, and a multishot one may end by itself (io_uring CQ
  // overflow), with a normal result: re-arm. An error (-ECANCELED while the Poller is
  // destroyed, -EBADF...) leaves the watch disarmed.
  if (result >= 0) Arm();
}

}  // namespace kev::kevent_internal
