// kevent/internal/pipe_origin.h: the KEVENT_PIPE origin.
//
// id.raw[0] = a pipe or FIFO fd (fstat S_ISFIFO; anything else is EINVAL, a bad fd EBADF).
// event = KEVENT_SOCKET_RECV (readable, or every writer closed) and/or KEVENT_SOCKET_SEND
// (writable, or every reader closed: the next write fails with EPIPE). Level-triggered (ET: once
// per activity, see fd_table.h). Delivered ret_data[0] = the requested events that hold;
// ret_data[1] bit 0 = the other end is closed (POLLHUP on a read end, POLLERR on a write end).
//
// io_uring / epoll: as SOCKET, one poll per watched fd through Poller::PollAdd.
//
// Example:
//   int p[2];  pipe2(p, O_NONBLOCK);
//   ukevent uk{};  uk.type = KEVENT_PIPE;  uk.id.raw[0] = p[0];  uk.event = KEVENT_SOCKET_RECV;
//   kevent_ctl(kfd, KEVENT_CTL_ADD, 1, &uk);   // ready once p[1] is written or closed
//
// Threading: as the owning queue.
#ifndef KEV_KEVENT_INTERNAL_PIPE_ORIGIN_H_
#define KEV_KEVENT_INTERNAL_PIPE_ORIGIN_H_

#include "kevent/internal/fd_table.h"

namespace kev::kevent_internal {

class PipeOrigin final : public FdOrigin {
 public:
  using FdOrigin::FdOrigin;

 protected:
  int Validate(const struct stat& st, uint32_t event) const override;
  uint32_t PollEvents(uint32_t event) const override;
  bool Evaluate(Request& r, uint32_t revents) const override;
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_PIPE_ORIGIN_H_
