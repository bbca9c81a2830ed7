#include "net/internal/shard.h"

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "reactor/reactor.h"

namespace kev::net::internal {
namespace {
thread_local Poller* installed_poller = nullptr;
}  // namespace

Poller& CurrentPoller() noexcept {
  if (installed_poller != nullptr) return *installed_poller;
  if (Reactor* reactor = Reactor::CurrentOrNull()) return reactor->poller();
  std::fprintf(stderr, "kev::net: I/O outside a shard (no reactor and no ScopedShardPoller)\n");
  std::abort();
}

void IgnoreSigpipeOnce() noexcept {
  static std::atomic<bool> done{false};
  if (done.load(std::memory_order_acquire)) return;
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL &&
      (current.sa_flags & SA_SIGINFO) == 0) {
    signal(SIGPIPE, SIG_IGN);
  }
  done.store(true, std::memory_order_release);
}

ScopedShardPoller::ScopedShardPoller(Poller* poller) noexcept : previous_(installed_poller) {
  installed_poller = poller;
}
ScopedShardPoller::~ScopedShardPoller() { installed_poller = previous_; }

}  // namespace kev::net::internal
