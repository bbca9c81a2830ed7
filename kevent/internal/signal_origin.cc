#include "kevent/internal/signal_origin.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <mutex>

#include "kevent/internal/queue.h"

namespace kev::kevent_internal {
namespace {

static_assert(NSIG - 1 <= kMaxSignal, "a signal number does not fit the 64-bit sink masks");

// How many queues may watch signals at once (each holds one slot while it has an eventfd).
// The handler scans the used prefix of the table, so the cost is paid only for slots in use.
constexpr int kMaxSinks = 1024;

// Process-wide state of one signal. The atomics are read by the handler; the rest is guarded
// by g_mu (ADD / REMOVE only).
struct SignalState {
  std::atomic<uint64_t> arrivals{0};
  std::atomic<uint32_t> plain{0};   // requests without NOMASK, over all queues
  std::atomic<uint32_t> nomask{0};  // requests with NOMASK, over all queues
  // The disposition found when the handler was installed, as the handler needs it.
  std::atomic<uintptr_t> prev_handler{0};
  std::atomic<int> prev_flags{0};
  // Guarded by g_mu.
  struct sigaction previous = {};
  bool installed = false;
};

// One queue's eventfd and the signals it watches (bit signo - 1).
struct Sink {
  std::atomic<int> fd{-1};
  std::atomic<uint64_t> mask{0};
};

SignalState g_signals[kMaxSignal + 1];
Sink g_sinks[kMaxSinks];
std::atomic<int> g_sink_limit{0};  // slots at or beyond this were never used
// Handlers between their first and last look at g_sinks: a slot's fd is closed only when no
// handler can still be about to write to it.
std::atomic<int> g_in_handler{0};
std::mutex g_mu;
bool g_slot_used[kMaxSinks];  // guarded by g_mu

void DefaultAction(int signo) {
  switch (signo) {
    case SIGCHLD:
    case SIGCONT:  // the kernel already continued the process
    case SIGURG:
    case SIGWINCH:
      return;  // default: ignore
    case SIGTSTP:
    case SIGTTIN:
    case SIGTTOU:
      // Default: stop. SIGSTOP stops the process just the same without touching the
      // disposition other queues rely on (the parent sees WSTOPSIG == SIGSTOP).
      kill(getpid(), SIGSTOP);
      return;
    default:
      break;
  }
  // Default: terminate (or dump core). Die of this very signal, so the exit status is right.
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(signo, &dfl, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signo);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  raise(signo);
  _exit(128 + signo);  // not reached
}

void RunPrevious(int signo, uintptr_t handler, int flags, siginfo_t* info, void* ucontext) {
  if (handler == reinterpret_cast<uintptr_t>(SIG_IGN)) return;
  if (handler == reinterpret_cast<uintptr_t>(SIG_DFL)) {
    DefaultAction(signo);
    return;
  }
  if ((flags & SA_SIGINFO) != 0) {
    reinterpret_cast<void (*)(int, siginfo_t*, void*)>(handler)(signo, info, ucontext);
  } else {
    reinterpret_cast<void (*)(int)>(handler)(signo);
  }
}

// The handler of every watched signal. Async-signal-safe: atomics and write(2) only.
void OnSignal(int signo, siginfo_t* info, void* ucontext) {
  const int saved_errno = errno;
  g_in_handler.fetch_add(1);
  SignalState& s = g_signals[signo];
  s.arrivals.fetch_add(1);
  const uint64_t bit = uint64_t{1} << (signo - 1);
  const int limit = g_sink_limit.load();
  for (int i = 0; i < limit; ++i) {
    if ((g_sinks[i].mask.load() & bit) == 0) continue;
    const int fd = g_sinks[i].fd.load();
    if (fd < 0) continue;
    const uint64_t one = 1;
    // Non-blocking eventfd: fails only at a counter of 2^64 - 2, when the queue is awake anyway.
    ssize_t rc = write(fd, &one, sizeof(one));
    (void)rc;
  }
  // Nobody asked to mask it (or nobody watches any more): the previous disposition runs too.
  const bool chain = s.plain.load() > 0 || s.nomask.load() == 0;
  const uintptr_t handler = s.prev_handler.load();
  const int flags = s.prev_flags.load();
  g_in_handler.fetch_sub(1);  // before chaining: the chained handler may never return
  errno = saved_errno;
  if (chain) RunPrevious(signo, handler, flags, info, ucontext);
  errno = saved_errno;
}

bool IsOurs(const struct sigaction& sa) {
  return (sa.sa_flags & SA_SIGINFO) != 0 && sa.sa_sigaction == &OnSignal;
}

// A request for signo joins (counts first, so a signal arriving right after the handler is
// installed already honours NOMASK). Installs the handler for the first one. Negative errno.
int WatchSignal(int signo, bool nomask) {
  std::lock_guard lock(g_mu);
  SignalState& s = g_signals[signo];
  std::atomic<uint32_t>& count = nomask ? s.nomask : s.plain;
  count.fetch_add(1);
  if (s.installed) return 0;
  struct sigaction current = {};
  if (sigaction(signo, nullptr, &current) != 0) {
    const int err = errno;
    count.fetch_sub(1);
    return -err;
  }
  s.previous = current;
  s.prev_handler.store(reinterpret_cast<uintptr_t>(current.sa_handler));
  s.prev_flags.store(current.sa_flags);
  struct sigaction ours = {};
  ours.sa_sigaction = &OnSignal;
  ours.sa_mask = current.sa_mask;  // what the previous handler ran with, chained or not
  // SA_RESTART: the queues' handler should not make other threads' syscalls fail with EINTR.
  ours.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK | (current.sa_flags & SA_NODEFER);
  if (sigaction(signo, &ours, nullptr) != 0) {
    const int err = errno;  // EINVAL: a signal the C library reserves
    count.fetch_sub(1);
    return -err;
  }
  s.installed = true;
  return 0;
}

// A request for signo leaves; the last one puts the previous disposition back.
void UnwatchSignal(int signo, bool nomask) {
  std::lock_guard lock(g_mu);
  SignalState& s = g_signals[signo];
  (nomask ? s.nomask : s.plain).fetch_sub(1);
  if (s.plain.load() + s.nomask.load() > 0 || !s.installed) return;
  s.installed = false;
  struct sigaction current = {};
  // Someone who replaced our handler meanwhile keeps theirs.
  if (sigaction(signo, nullptr, &current) == 0 && IsOurs(current)) {
    sigaction(signo, &s.previous, nullptr);
  }
}

int AcquireSink(int fd) {
  std::lock_guard lock(g_mu);
  for (int i = 0; i < kMaxSinks; ++i) {
    if (g_slot_used[i]) continue;
    g_slot_used[i] = true;
    g_sinks[i].mask.store(0);
    g_sinks[i].fd.store(fd);
    if (i >= g_sink_limit.load()) g_sink_limit.store(i + 1);
    return i;
  }
  return -ENOSPC;
}

void ReleaseSink(int slot) {
  std::lock_guard lock(g_mu);
  g_sinks[slot].mask.store(0);
  g_sinks[slot].fd.store(-1);
  // A handler that read the fd before the store may still write to it: wait until it is out
  // (handlers only write to non-blocking eventfds, so this is brief).
  while (g_in_handler.load() != 0) sched_yield();
  g_slot_used[slot] = false;
}

void SetSinkBit(int slot, int signo, bool on) {
  const uint64_t bit = uint64_t{1} << (signo - 1);
  if (on) {
    g_sinks[slot].mask.fetch_or(bit);
  } else {
    g_sinks[slot].mask.fetch_and(~bit);
  }
}

}  // namespace

uint64_t SignalArrivalsForTesting(int signo) { return g_signals[signo].arrivals.load(); }

SignalOrigin::~SignalOrigin() {
  if (slot_ >= 0) ReleaseSink(slot_);  // no handler writes to the eventfd after this
  if (watch_ != nullptr) watch_->Release();
}

int SignalOrigin::EnsureSink() {
  if (slot_ >= 0) return 0;
  Poller* poller = context_.poller();
  if (poller == nullptr) return -EOPNOTSUPP;
  const int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) return -errno;
  const int slot = AcquireSink(efd);
  if (slot < 0) {
    close(efd);
    return slot;
  }
  slot_ = slot;
  watch_ = ReadableWatch::Start(*poller, efd, this);
  return 0;
}

int SignalOrigin::Enqueue(Request& r) {
  r.storage = nullptr;  // Dequeue's "accounted" mark: set by Attach below
  if (context_.poller() == nullptr) return -EOPNOTSUPP;  // nothing would ever wake the queue
  if (r.uk.event != KEVENT_SIGNAL_DELIVERY) return -EINVAL;
  if ((r.uk.id.raw_u64 & ~KEVENT_SIGNAL_NOMASK) >> 32 != 0) return -EINVAL;
  const uint32_t signo = r.uk.id.raw[0];
  if (signo < 1 || signo >= static_cast<uint32_t>(NSIG) || signo == SIGKILL || signo == SIGSTOP) {
    return -EINVAL;
  }
  int rc = EnsureSink();
  if (rc < 0) return rc;
  const bool nomask = (r.uk.id.raw_u64 & KEVENT_SIGNAL_NOMASK) != 0;
  rc = WatchSignal(static_cast<int>(signo), nomask);
  if (rc < 0) return rc;
  std::unique_ptr<Watched>& w = watched_[signo];
  if (w == nullptr) w = std::make_unique<Watched>();  // once per signal per queue
  if (w->requests++ == 0) {
    SetSinkBit(slot_, static_cast<int>(signo), true);
    w->seen = g_signals[signo].arrivals.load();  // only arrivals from now on count
  }
  w->storage.Attach(r);
  return 0;
}

void SignalOrigin::Dequeue(Request& r) {
  // Dequeue may come twice (a broken request is dequeued, then unregistered): account once.
  if (r.storage == nullptr) return;
  r.storage->Detach(r);
  r.storage = nullptr;
  const int signo = static_cast<int>(r.uk.id.raw[0]);
  Watched& w = *watched_[signo];
  if (--w.requests == 0) SetSinkBit(slot_, signo, false);
  UnwatchSignal(signo, (r.uk.id.raw_u64 & KEVENT_SIGNAL_NOMASK) != 0);
}

void SignalOrigin::OnReadable() {
  uint64_t value;
  while (read(watch_->fd(), &value, sizeof(value)) > 0) {
  }
  for (int signo = 1; signo <= kMaxSignal; ++signo) {
    Watched* w = watched_[signo].get();
    if (w == nullptr || w->requests == 0) continue;
    const uint64_t now = g_signals[signo].arrivals.load();
    uint64_t delta = now - w->seen;
    w->seen = now;
    // Each arrival is one activity: the first request takes it (coalescing into its count),
    // or every WAKEUP_ALL one; a ONESHOT request leaves the storage once ready, so the next
    // arrival goes to the next request.
    for (; delta > 0 && !w->storage.empty(); --delta) w->storage.Ready(KEVENT_SIGNAL_DELIVERY);
  }
}

}  // namespace kev::kevent_internal
