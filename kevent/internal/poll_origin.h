// kevent/internal/poll_origin.h: the KEVENT_POLL origin.
//
// id.raw[0] = any pollable fd (a bad fd: EBADF). event = any non-empty set of KEVENT_POLL_*
// bits (POLLIN ... POLLRDHUP; KEVENT_POLL_POLLREMOVE is accepted and ignored); others are
// EINVAL. Ready when any requested bit holds, or POLLERR / POLLHUP (always, as poll(2) does).
// Delivered ret_data[0] = revents in the KEVENT_POLL_* encoding (the requested bits that hold,
// plus ERR / HUP); ret_data[1] = 0. Level-triggered (ET: once per activity, see fd_table.h).
// A regular file is always ready (poll(2) says so).
//
// io_uring / epoll: one poll per watched fd through Poller::PollAdd, with the requested bits.
//
// Example:
//   ukevent uk{};  uk.type = KEVENT_POLL;  uk.id.raw[0] = efd;
//   uk.event = KEVENT_POLL_POLLIN | KEVENT_POLL_POLLOUT;
//   kevent_ctl(kfd, KEVENT_CTL_ADD, 1, &uk);
//
// Threading: as the owning queue.
#ifndef KEV_KEVENT_INTERNAL_POLL_ORIGIN_H_
#define KEV_KEVENT_INTERNAL_POLL_ORIGIN_H_

#include <cstdint>

#include "kevent/internal/fd_table.h"

namespace kev::kevent_internal {

// KEVENT_POLL_* bits <-> poll(2) bits (identical values on Linux; mapped anyway).
uint32_t KeventToPollBits(uint32_t kevent_bits);
uint32_t PollToKeventBits(uint32_t poll_bits);

class PollOrigin final : public FdOrigin {
 public:
  using FdOrigin::FdOrigin;

 protected:
  int Validate(const struct stat& st, uint32_t event) const override;
  uint32_t PollEvents(uint32_t event) const override;
  bool Evaluate(Request& r, uint32_t revents) const override;
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_POLL_ORIGIN_H_
