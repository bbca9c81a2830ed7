// kevent/internal/socket_origin.h: the KEVENT_SOCKET origin.
//
// id.raw[0] = a socket fd (else ENOTSOCK; a bad fd: EBADF). event = any of KEVENT_SOCKET_RECV
// (readable, or the peer closed), KEVENT_SOCKET_ACCEPT (a connection is pending on a listening
// socket) and KEVENT_SOCKET_SEND (writable); anything else is EINVAL. Level-triggered (ET:
// once per activity, see fd_table.h). Delivered ret_data[0] = the requested events that hold;
// ret_data[1] bit 0 = the peer closed (POLLRDHUP or POLLHUP), so RECV is ready on a close too.
// A socket error (POLLERR) makes every request ready: the next call on the socket reports it.
//
// io_uring: one IORING_OP_POLL_ADD (multishot) per watched fd; epoll: one level-triggered
// registration (both through Poller::PollAdd).
//
// Example:
//   ukevent uk{};  uk.type = KEVENT_SOCKET;  uk.id.raw[0] = sock;  uk.event = KEVENT_SOCKET_RECV;
//   kevent_ctl(kfd, KEVENT_CTL_ADD, 1, &uk);   // ready while data is waiting on `sock`
//
// Threading: as the owning queue.
#ifndef KEV_KEVENT_INTERNAL_SOCKET_ORIGIN_H_
#define KEV_KEVENT_INTERNAL_SOCKET_ORIGIN_H_

#include "kevent/internal/fd_table.h"

namespace kev::kevent_internal {

class SocketOrigin final : public FdOrigin {
 public:
  using FdOrigin::FdOrigin;

 protected:
  int Validate(const struct stat& st, uint32_t event) const override;
  uint32_t PollEvents(uint32_t event) const override;
  bool Evaluate(Request& r, uint32_t revents) const override;
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_SOCKET_ORIGIN_H_
