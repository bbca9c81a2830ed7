// kevent/internal/readable_watch.h: an fd watched for readability on a queue's Poller, for the
// origins that learn about the OS through a file descriptor of their own (SIGNAL's eventfd,
// INODE's inotify fd, POSIX_TIMER's timerfds, the fd origins' private epoll sets).
//
// A ReadableWatch owns its fd and keeps a PollAdd armed on it (io_uring: one-shot, re-armed after
// each report; epoll: one multishot registration); every readiness report calls
// Listener::OnReadable() (which must drain the fd: the watch is level-triggered). It is its
// own IoCompletion, and the Poller may hold it after its owner is gone (a cancelled operation's
// final completion comes in a later Wait()), so the owner never deletes it: it calls Release(),
// and the watch closes its fd and deletes itself at its final completion, or at once if nothing is
// in flight (the Poller was destroyed first, as a Reactor does).
//
// Example:
//   struct Drain : ReadableWatch::Listener {
//     void OnReadable() override { uint64_t n; read(efd, &n, sizeof n); ... }
//   } drain;
//   ReadableWatch* w = ReadableWatch::Start(*poller, efd, &drain);  // owns efd from now on
//   ...
//   w->Release();  // before `drain` goes away; w may outlive this call
//
// Threading: as the owning queue (Start, Release and the callbacks run on the thread that drives
// the queue's Poller).
#ifndef KEV_KEVENT_INTERNAL_READABLE_WATCH_H_
#define KEV_KEVENT_INTERNAL_READABLE_WATCH_H_

#include <cstdint>

#include "kevent/poller.h"

namespace kev::kevent_internal {

class ReadableWatch final : public IoCompletion {
 public:
  class Listener {
   public:
    // The fd is readable: read it until EAGAIN (or it is reported again at the next Wait()).
    virtual void OnReadable() = 0;

   protected:
    ~Listener() = default;
  };

  // Takes ownership of `fd` (closed by the watch in every case) and arms a poll for
  // POLLIN on `poller`. Never fails: a poll that fails finally (e.g. -EBADF) is left disarmed.
  static ReadableWatch* Start(Poller& poller, int fd, Listener* listener);

  // The owner goes away: no more callbacks. Cancels the poll if armed; the fd is closed and the
  // watch deleted at its final completion (or now if none is pending). Call once.
  void Release();

  int fd() const { return fd_; }
  // A PollAdd is in flight (counted in the Poller's InFlight()): false once a poll failed
  // finally, or after Release.
  bool armed() const { return armed_; }

  void OnComplete(int32_t result, uint32_t flags) noexcept override;

 private:
  ReadableWatch(Poller& poller, int fd, Listener* listener)
      : poller_(poller),
        fd_(fd),
        one_shot_(poller.backend() == PollerBackend::kIoUring),
        listener_(listener) {}
  ~ReadableWatch();
  void Arm();

  Poller& poller_;
  const int fd_;
  const bool one_shot_;  // re-armed one-shot polls (io_uring) or one multishot poll (epoll)
  Listener* listener_;  // null once released
  bool armed_ = false;  // a PollAdd is in flight (its final completion not yet seen)
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_READABLE_WATCH_H_
