#include "kevent/internal/pipe_origin.h"

#include <poll.h>
#include <sys/stat.h>

#include <cerrno>

namespace kev::kevent_internal {
namespace {

constexpr uint32_t kAll = KEVENT_SOCKET_RECV | KEVENT_SOCKET_SEND;

}  // namespace

int PipeOrigin::Validate(const struct stat& st, uint32_t event) const {
  if (event == 0 || (event & ~kAll) != 0) return -EINVAL;
  if (!S_ISFIFO(st.st_mode)) return -EINVAL;
  return 0;
}

uint32_t PipeOrigin::PollEvents(uint32_t event) const {
  uint32_t events = 0;
  if ((event & KEVENT_SOCKET_RECV) != 0) events |= POLLIN;
  if ((event & KEVENT_SOCKET_SEND) != 0) events |= POLLOUT;
  return events;
}

bool PipeOrigin::Evaluate(Request& r, uint32_t revents) const {
  const uint32_t event = r.uk.event;
  // A read end reports POLLHUP when every writer closed; a write end POLLERR when every reader
  // did.
  const bool closed = (revents & (POLLHUP | POLLERR)) != 0;
  uint32_t ready = 0;
  if ((event & KEVENT_SOCKET_RECV) != 0 && ((revents & POLLIN) != 0 || closed)) {
    ready |= KEVENT_SOCKET_RECV;
  }
  if ((event & KEVENT_SOCKET_SEND) != 0 && ((revents & POLLOUT) != 0 || closed)) {
    ready |= KEVENT_SOCKET_SEND;
  }
  if (ready == 0) return false;
  r.uk.ret_data[0] = ready;
  r.uk.ret_data[1] = closed ? 1u : 0u;
  return true;
}

}  // namespace kev::kevent_internal
