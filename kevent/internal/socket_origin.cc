#include "kevent/internal/socket_origin.h"

#include <poll.h>
#include <sys/stat.h>

#include <cerrno>

namespace kev::kevent_internal {
namespace {

constexpr uint32_t kAll = KEVENT_SOCKET_RECV | KEVENT_SOCKET_ACCEPT | KEVENT_SOCKET_SEND;

}  // namespace

int SocketOrigin::Validate(const struct stat& st, uint32_t event) const {
  if (event == 0 || (event & ~kAll) != 0) return -EINVAL;
  if (!S_ISSOCK(st.st_mode)) return -ENOTSOCK;
  return 0;
}

uint32_t SocketOrigin::PollEvents(uint32_t event) const {
  uint32_t events = 0;
  if ((event & KEVENT_SOCKET_RECV) != 0) events |= POLLIN | POLLRDHUP;
  if ((event & KEVENT_SOCKET_ACCEPT) != 0) events |= POLLIN;
  if ((event & KEVENT_SOCKET_SEND) != 0) events |= POLLOUT;
  return events;
}

bool SocketOrigin::Evaluate(Request& r, uint32_t revents) const {
  const uint32_t event = r.uk.event;
  const bool error = (revents & POLLERR) != 0;
  const bool closed = (revents & (POLLRDHUP | POLLHUP)) != 0;
  uint32_t ready = 0;
  if ((event & KEVENT_SOCKET_RECV) != 0 && ((revents & POLLIN) != 0 || closed || error)) {
    ready |= KEVENT_SOCKET_RECV;
  }
  if ((event & KEVENT_SOCKET_ACCEPT) != 0 && ((revents & POLLIN) != 0 || error)) {
    ready |= KEVENT_SOCKET_ACCEPT;
  }
  if ((event & KEVENT_SOCKET_SEND) != 0 &&
      ((revents & POLLOUT) != 0 || error || (revents & POLLHUP) != 0)) {
    ready |= KEVENT_SOCKET_SEND;
  }
  if (ready == 0) return false;
  r.uk.ret_data[0] = ready;
  r.uk.ret_data[1] = closed ? 1u : 0u;
  return true;
}

}  // namespace kev::kevent_internal
