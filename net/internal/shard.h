// net/internal/shard.h: the poller of the calling shard, for net/ and aio/.
//
// net/ and aio/ submit every operation to "the current shard's poller". Normally that is the
// running Reactor's (reactor/reactor.h, Reactor::Current().poller()); a test loop or an
// embedding without a Reactor installs one with ScopedShardPoller. Not part of the public API.
//
//   kev::net::internal::ScopedShardPoller scope(poller.get());   // test loops only
//   kev::Poller& p = kev::net::internal::CurrentPoller();
#ifndef KEV_NET_INTERNAL_SHARD_H_
#define KEV_NET_INTERNAL_SHARD_H_

#include "kevent/poller.h"

namespace kev::net::internal {

// The calling thread's poller: the one installed by ScopedShardPoller, else the running
// Reactor's. Aborts with a message when there is neither (I/O outside a shard is a bug).
Poller& CurrentPoller() noexcept;

// Ignores SIGPIPE process-wide once, if its disposition is still the default, so that writing
// to a vanished peer (splice and sendfile cannot pass MSG_NOSIGNAL) is an EPIPE error and not
// the death of the process. Cheap after the first call (one atomic load).
void IgnoreSigpipeOnce() noexcept;

// Installs `poller` as the calling thread's shard poller for the scope's lifetime (nests).
class ScopedShardPoller {
 public:
  explicit ScopedShardPoller(Poller* poller) noexcept;
  ~ScopedShardPoller();
  ScopedShardPoller(const ScopedShardPoller&) = delete;
  ScopedShardPoller& operator=(const ScopedShardPoller&) = delete;

 private:
  Poller* previous_;
};

}  // namespace kev::net::internal

#endif  // KEV_NET_INTERNAL_SHARD_H_
