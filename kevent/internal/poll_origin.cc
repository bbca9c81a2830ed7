#include "kevent/internal/poll_origin.h"

#include <poll.h>

#include <cerrno>
#include <iterator>

namespace kev::kevent_internal {
namespace {

struct BitPair {
  uint32_t kevent;
  uint32_t poll;
};

constexpr BitPair kBits[] = {
    {KEVENT_POLL_POLLIN, POLLIN},         {KEVENT_POLL_POLLPRI, POLLPRI},
    {KEVENT_POLL_POLLOUT, POLLOUT},       {KEVENT_POLL_POLLERR, POLLERR},
    {KEVENT_POLL_POLLHUP, POLLHUP},       {KEVENT_POLL_POLLNVAL, POLLNVAL},
    {KEVENT_POLL_POLLRDNORM, POLLRDNORM}, {KEVENT_POLL_POLLRDBAND, POLLRDBAND},
    {KEVENT_POLL_POLLWRNORM, POLLWRNORM}, {KEVENT_POLL_POLLWRBAND, POLLWRBAND},
    {KEVENT_POLL_POLLMSG, POLLMSG},       {KEVENT_POLL_POLLRDHUP, POLLRDHUP},
};

constexpr uint32_t kKnown = [] {
  uint32_t all = KEVENT_POLL_POLLREMOVE;
  for (const BitPair& b : kBits) all |= b.kevent;
  return all;
}();

}  // namespace

uint32_t KeventToPollBits(uint32_t kevent_bits) {
  uint32_t out = 0;
  for (const BitPair& b : kBits) {
    if ((kevent_bits & b.kevent) != 0) out |= b.poll;
  }
  return out;
}

uint32_t PollToKeventBits(uint32_t poll_bits) {
  uint32_t out = 0;
  for (const BitPair& b : kBits) {
    if ((poll_bits & b.poll) != 0) out |= b.kevent;
  }
  return out;
}

int PollOrigin::Validate(const struct stat& st, uint32_t event) const {
  if ((event & ~kKnown) != 0 || (event & ~KEVENT_POLL_POLLREMOVE) == 0) return -EINVAL;
  return 0;
}

uint32_t PollOrigin::PollEvents(uint32_t event) const {
  // POLLNVAL is reported, never asked for; the fd table turns it into BROKEN EBADF.
  return KeventToPollBits(event) & ~static_cast<uint32_t>(POLLNVAL);
}

bool PollOrigin::Evaluate(Request& r, uint32_t revents) const {
  const uint32_t wanted = PollEvents(r.uk.event) | POLLERR | POLLHUP;
  const uint32_t hold = revents & wanted;
  if (hold == 0) return false;
  r.uk.ret_data[0] = PollToKeventBits(hold);
  r.uk.ret_data[1] = 0;
  return true;
}

}  // namespace kev::kevent_internal
