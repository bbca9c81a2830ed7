// The kevent C API over the single-threaded core (kevent/internal/queue.h).
//
// A process-wide table maps each queue fd (a real eventfd) to an ApiQueue: the core, a mutex
// around it, its Poller (one per queue, backend from KEV_BACKEND), the threads waiting on it
// (kevent/internal/waiters.h) and the eventfd, which is readable while the ready list is
// non-empty whenever another thread can look (it is synced when the mutex is released or the
// driver blocks, not at each change within a call). Calls hold a reference to the ApiQueue for
// their whole duration, so kevent_close racing with any call is safe: the call sees the queue
// closed and returns -EBADF; the memory and the fd go when the last reference does.
//
// Locking: the mutex guards the core, the origins AND the Poller. The driving waiter blocks in
// Poller::Wait with the mutex held, so completions (and the origins they call) run under it,
// exactly as in a single-threaded reactor, and no origin ever needs a lock of its own. Every
// other thread takes the mutex through QueueLock: if a driver is inside Wait it first calls
// Poller::Wake (the one thread-safe Poller call); the driver returns, sees someone waiting for
// the lock and steps aside (DriverPoll) until they have it.
#include "kevent/kevent.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <limits>
#include <memory>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <new>
#include <optional>
#include <shared_mutex>

#include "absl/container/flat_hash_map.h"
#include "kevent/internal/aio_origin.h"
#include "kevent/internal/kevent_testing.h"
#include "kevent/internal/posix_timer_origin.h"
#include "kevent/internal/queue.h"
#include "kevent/internal/waiters.h"
#include "kevent/poller.h"

namespace kev::kevent_internal {
namespace {

constexpr int64_t kNsPerSec = 1'000'000'000;

std::unique_ptr<Poller> MakePoller() {
  // Whichever thread waits drives the poller, so it cannot be bound to one issuer.
  PollerOptions options;
  options.single_issuer = false;
  return Poller::Create(PollerBackendFromEnvironment(), options);
}

class ApiQueue final : public QueueObserver {
 public:
  ApiQueue(int efd, kevent_ring* ring, unsigned num)
      : efd_(efd),
        poller_(MakePoller()),
        core_(QueueOptions{
            .ring = ring, .ring_size = num, .observer = this, .poller = poller_.get()}) {}
  ~ApiQueue() override {
    // Last reference: no other thread is here. Requests go first (their polls and operations
    // are cancelled), then the poller delivers every final completion to origins still alive.
    core_.Clear();
    poller_.reset();
    if (efd_owned_) close(efd_);
  }

  // Takes mu; see QueueLock.
  void Acquire() {
    if (mu_.try_lock()) return;  // uncontended: no driver is in Wait
    contenders_.fetch_add(1);
    if (polling_.load()) poller_->Wake();  // a syscall only when a driver holds the lock
    mu_.lock();
    std::lock_guard lock(yield_mu_);
    if (contenders_.fetch_sub(1) == 1) yield_cv_.notify_all();
  }
  void Release() {
    SyncEventfd();  // before anyone else can look at the queue
    mu_.unlock();
  }

  // The driver's sleep, called and returning with mu held: blocks in Poller::Wait until
  // `until` (CLOCK_MONOTONIC ns; nullopt: forever), a completion, or a Wake from a thread that
  // wants the lock; then steps aside for such threads.
  void DriverPoll(std::optional<int64_t> until) {
    polling_.store(true);
    // Dekker with Acquire: either it sees polling_ and wakes us, or we see it and do not wait.
    if (contenders_.load() == 0) {
      SyncEventfd();  // blocking with the lock held: the fd must tell the truth meanwhile
      std::optional<std::chrono::nanoseconds> timeout;
      if (until) {
        timeout = std::chrono::nanoseconds(std::max<int64_t>(0, *until - MonotonicClock().NowNs()));
      }
      poller_->Wait(timeout);
    }
    polling_.store(false);
    if (contenders_.load() > 0) {
      Release();
      {
        std::unique_lock lock(yield_mu_);
        yield_cv_.wait(lock, [this] { return contenders_.load() == 0; });
      }
      mu_.lock();
    }
  }

  // Everything below is guarded by mu.
  Queue& core() { return core_; }
  WaitList& waiters() { return waiters_; }
  Poller* poller() { return poller_.get(); }
  bool closed = false;

  // kevent_init found this queue's fd number reused: plain close() was used on it. The fd now
  // belongs to a new queue, so this one must not touch or close it.
  void Orphan() {
    efd_owned_ = false;
    closed = true;
    waiters_.WakeAll();
  }

  // QueueObserver.
  void OnReady(bool wake_all) override {
    if (waiters_.size() == 0) return;  // the usual case for a caller that collects events itself
    waiters_.OnEventReady(wake_all, core_);
  }
  // The eventfd follows the ready list lazily: only its state when the lock is released (or
  // the driver blocks holding it) can be seen by anyone, so a list that fills and empties
  // within one call (a get_events that collects and takes every event) costs no syscall.
  void OnReadyListChanged(bool nonempty) override { efd_wanted_ = nonempty; }
  void OnTimerArmed() override { waiters_.OnTimerArmed(); }

 private:
  // Brings the eventfd to the ready list's state (efd_wanted_). Called with mu held, at every
  // point where another thread may observe the fd: a syscall only on a change since then.
  void SyncEventfd() {
    if (efd_wanted_ == efd_signaled_ || !efd_owned_) return;
    // The eventfd is what makes the queue pollable (and nestable): its counter must match
    // readiness whenever someone can look.
    uint64_t value = 1;
    ssize_t rc =
        efd_wanted_ ? write(efd_, &value, sizeof(value)) : read(efd_, &value, sizeof(value));
    (void)rc;  // EAGAIN on read only if someone else drained it: the state is "not readable"
    efd_signaled_ = efd_wanted_;
  }

  std::mutex mu_;
  // Threads blocked in Acquire; the driver waits on yield_cv_ until they got the lock.
  std::atomic<int> contenders_{0};
  std::atomic<bool> polling_{false};  // a driver is (about to be) inside Poller::Wait
  std::mutex yield_mu_;
  std::condition_variable yield_cv_;

  const int efd_;
  bool efd_owned_ = true;
  bool efd_wanted_ = false;    // the ready list is non-empty (guarded by mu)
  bool efd_signaled_ = false;  // the eventfd was made readable (guarded by mu)
  std::unique_ptr<Poller> poller_;  // null if no backend could be created: OS origins refuse
  Queue core_;
  WaitList waiters_;
};

// The queue's mutex, taken so that a driver blocked in Poller::Wait lets go of it.
class QueueLock {
 public:
  explicit QueueLock(ApiQueue& q) : q_(q) { q_.Acquire(); }
  ~QueueLock() {
    if (owned_) q_.Release();
  }
  QueueLock(const QueueLock&) = delete;
  QueueLock& operator=(const QueueLock&) = delete;
  void unlock() {
    q_.Release();
    owned_ = false;
  }
  void lock() {
    q_.Acquire();
    owned_ = true;
  }

 private:
  ApiQueue& q_;
  bool owned_ = true;
};

// fd -> queue. A reader lock and one reference-count increment per call: cheap next to the
// call's own work, and what makes close-vs-use safe.
class Table {
 public:
  std::shared_ptr<ApiQueue> Find(int fd) {
    std::shared_lock lock(mu_);
    auto it = map_.find(fd);
    return it == map_.end() ? nullptr : it->second;
  }
  void Insert(int fd, std::shared_ptr<ApiQueue> q) {
    std::shared_ptr<ApiQueue> stale;
    {
      std::unique_lock lock(mu_);
      auto [it, inserted] = map_.try_emplace(fd, q);
      if (!inserted) {
        stale = std::move(it->second);
        it->second = std::move(q);
      }
    }
    if (stale != nullptr) {
      QueueLock lock(*stale);
      stale->Orphan();
    }
  }
  std::shared_ptr<ApiQueue> Take(int fd) {
    std::unique_lock lock(mu_);
    auto it = map_.find(fd);
    if (it == map_.end()) return nullptr;
    std::shared_ptr<ApiQueue> q = std::move(it->second);
    map_.erase(it);
    return q;
  }

 private:
  std::shared_mutex mu_;
  absl::flat_hash_map<int, std::shared_ptr<ApiQueue>> map_;
};

Table& Queues() {
  static Table* table = new Table;  // never destroyed: calls may race with exit
  return *table;
}

int64_t MonotonicNowNs() { return MonotonicClock().NowNs(); }

int64_t RealtimeNowNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * kNsPerSec + ts.tv_nsec;
}

// Converts a kevent timeout to a CLOCK_MONOTONIC deadline: nullopt waits forever. Returns
// false for an invalid timespec.
bool ToDeadline(const timespec& t, unsigned flags, std::optional<int64_t>* deadline) {
  if (t.tv_sec == -1) {
    *deadline = std::nullopt;
    return true;
  }
  if (t.tv_sec < 0 || t.tv_nsec < 0 || t.tv_nsec >= kNsPerSec) return false;
  const int64_t now = MonotonicNowNs();
  // Beyond ~292 years the nanosecond arithmetic would overflow: that is "forever".
  constexpr int64_t kMaxSec = std::numeric_limits<int64_t>::max() / kNsPerSec / 4;
  if (t.tv_sec > kMaxSec) {
    *deadline = std::nullopt;
    return true;
  }
  const int64_t ns = static_cast<int64_t>(t.tv_sec) * kNsPerSec + t.tv_nsec;
  if ((flags & KEVENT_FLAGS_ABSTIME) != 0) {
    // A CLOCK_REALTIME deadline, converted once: later wall-clock steps are not followed.
    *deadline = now + (ns - RealtimeNowNs());
  } else {
    *deadline = now + ns;
  }
  return true;
}

// Blocks until w's condition holds, w is interrupted, the deadline passes or the queue closes
// (-EBADF). Fires due timers on every pass; collects what the OS has (without blocking) once
// per call (Queue::PollNow), so a call that does not block still sees new socket data. Called
// and returns with the queue locked.
int Await(ApiQueue& q, QueueLock& lock, Waiter& w, std::optional<int64_t> deadline) {
  bool enlisted = false;
  bool harvested = false;
  int rc = 0;
  while (true) {
    if (q.closed) {
      rc = -EBADF;
      break;
    }
    q.core().ExpireTimers();
    if (!harvested) {
      harvested = true;
      q.core().PollNow();  // one syscall (epoll_wait or io_uring_enter) if anything is watched
      continue;
    }
    if (w.interrupted || WaitList::Satisfied(w, q.core())) break;
    if (deadline && MonotonicNowNs() >= *deadline) break;
    if (!enlisted) {
      if (q.waiters().TakeInterrupt()) {
        w.interrupted = true;
        break;
      }
      q.waiters().Add(&w);
      enlisted = true;
      // Level-triggered re-arming and the closed-fd sweep of readiness origins; may ready
      // events, so look again before sleeping.
      q.core().BeforeWait();
      continue;
    }
    w.notified = false;
    std::optional<int64_t> until = deadline;
    if (q.waiters().ClaimDriver(&w)) {
      if (std::optional<int64_t> timer = q.core().NextTimerDeadline()) {
        until = until ? std::min(*until, *timer) : *timer;
      }
      if (q.poller() != nullptr) {
        q.core().BeforeWait();
        if (w.interrupted || WaitList::Satisfied(w, q.core())) continue;
        q.DriverPoll(until);
        continue;
      }
    }
    lock.unlock();
    WaitList::Sleep(w, until);
    lock.lock();
  }
  if (enlisted) q.waiters().Remove(&w, q.core());
  return rc;
}

bool Expired(const std::optional<int64_t>& deadline) {
  return deadline && MonotonicNowNs() >= *deadline;
}

}  // namespace

long StartAio(int kevent_fd, std::unique_ptr<AioOperation> op) {
  std::shared_ptr<ApiQueue> q = Queues().Find(kevent_fd);
  if (q == nullptr) return -EBADF;
  QueueLock lock(*q);
  if (q->closed) return -EBADF;
  try {
    return q->core().StartAio(std::move(op));
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  }
}

int BlockedWaitersForTesting(int fd) {
  std::shared_ptr<ApiQueue> q = Queues().Find(fd);
  if (q == nullptr) return -1;
  QueueLock lock(*q);
  return static_cast<int>(q->waiters().size());
}

}  // namespace kev::kevent_internal

using kev::kevent_internal::ApiQueue;
using kev::kevent_internal::QueueLock;
using kev::kevent_internal::Queues;
using kev::kevent_internal::Waiter;

extern "C" {

int kevent_init(struct kevent_ring* ring, unsigned int num, unsigned int flags) {
  if (flags != 0) return -EINVAL;
  if ((ring == nullptr) != (num == 0) || num == 1) return -EINVAL;
  const int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) return -errno;
  std::shared_ptr<ApiQueue> q;
  try {
    q = std::make_shared<ApiQueue>(efd, ring, num);
  } catch (const std::bad_alloc&) {
    close(efd);
    return -ENOMEM;
  }
  Queues().Insert(efd, std::move(q));
  return efd;
}

int kevent_ctl(int fd, unsigned int cmd, unsigned int num, struct ukevent* arg) {
  std::shared_ptr<ApiQueue> q = Queues().Find(fd);
  if (q == nullptr) return -EBADF;
  if (cmd > KEVENT_CTL_READY) return -EINVAL;
  if (num > 0 && arg == nullptr) return -EFAULT;
  if (num > static_cast<unsigned>(std::numeric_limits<int>::max())) return -EINVAL;
  QueueLock lock(*q);
  if (q->closed) return -EBADF;
  if (cmd == KEVENT_CTL_READY && num == 0) {
    q->waiters().InterruptOne();
    return 0;
  }
  q->core().ExpireTimers();
  try {
    q->core().CtlBatch(cmd, arg, num);
  } catch (const std::bad_alloc&) {
    return -ENOMEM;  // entries before the failing one were applied
  }
  return static_cast<int>(num);
}

int kevent_get_events(int fd, unsigned int min_nr, unsigned int max_nr, struct timespec timeout,
                      struct ukevent* buf, unsigned int flags) {
  std::shared_ptr<ApiQueue> q = Queues().Find(fd);
  if (q == nullptr) return -EBADF;
  if ((flags & ~KEVENT_FLAGS_ABSTIME) != 0) return -EINVAL;
  if (buf == nullptr && max_nr > 0) return -EFAULT;
  if (max_nr > static_cast<unsigned>(std::numeric_limits<int>::max())) return -EINVAL;
  std::optional<int64_t> deadline;
  if (!kev::kevent_internal::ToDeadline(timeout, flags, &deadline)) return -EINVAL;
  if (min_nr > max_nr) min_nr = max_nr;  // cannot return more than max_nr anyway

  QueueLock lock(*q);
  Waiter w;
  w.kind = Waiter::Kind::kEvents;
  size_t n = 0;
  while (true) {
    w.min_nr = min_nr - n;
    const int rc = kev::kevent_internal::Await(*q, lock, w, deadline);
    if (rc < 0) {
      if (n > 0) break;  // events already taken are returned, not dropped
      return rc;
    }
    n += q->core().Dequeue(buf + n, max_nr - n);
    // Fewer than asked only if LAST_CHECK / level-triggered confirmation dropped some: wait on.
    if (n >= min_nr || w.interrupted || kev::kevent_internal::Expired(deadline)) break;
  }
  if (q->core().ready_count() > 0) q->waiters().WakeSatisfied(q->core());
  return static_cast<int>(n);
}

int kevent_wait(int fd, unsigned int num, unsigned int old_uidx, struct timespec timeout,
                unsigned int flags) {
  std::shared_ptr<ApiQueue> q = Queues().Find(fd);
  if (q == nullptr) return -EBADF;
  if ((flags & ~KEVENT_FLAGS_ABSTIME) != 0) return -EINVAL;
  std::optional<int64_t> deadline;
  if (!kev::kevent_internal::ToDeadline(timeout, flags, &deadline)) return -EINVAL;

  QueueLock lock(*q);
  if (q->closed) return -EBADF;
  if (!q->core().ring().present()) return -EINVAL;
  Waiter w;
  w.kind = Waiter::Kind::kRing;
  w.old_uidx = old_uidx;
  size_t n = 0;
  while (true) {
    const int rc = kev::kevent_internal::Await(*q, lock, w, deadline);
    if (rc < 0) return rc;
    n = q->core().DequeueToRing(num);
    if (n > 0 || num == 0 || w.interrupted || q->core().ring().uidx() != old_uidx ||
        kev::kevent_internal::Expired(deadline)) {
      break;
    }
  }
  if (q->core().ready_count() > 0) q->waiters().WakeSatisfied(q->core());
  return static_cast<int>(n);
}

int kevent_commit(int fd, unsigned int new_uidx, unsigned int over) {
  std::shared_ptr<ApiQueue> q = Queues().Find(fd);
  if (q == nullptr) return -EBADF;
  QueueLock lock(*q);
  if (q->closed) return -EBADF;
  const int freed = q->core().ring().Commit(new_uidx, over);
  if (freed > 0) q->waiters().OnCommit(q->core());
  return freed;
}

int kevent_close(int fd) {
  std::shared_ptr<ApiQueue> q = Queues().Take(fd);
  if (q == nullptr) return -EBADF;
  QueueLock lock(*q);
  q->closed = true;
  q->waiters().WakeAll();
  q->core().Clear();
  return 0;
}

// The POSIX timers live in the queue's POSIX_TIMER origin (kevent/internal/posix_timer_origin.h),
// reached under the queue's lock like every other call.
long kevent_posix_timer_create(int fd, clockid_t clock, void* ptr) {
  std::shared_ptr<ApiQueue> q = Queues().Find(fd);
  if (q == nullptr) return -EBADF;
  QueueLock lock(*q);
  if (q->closed) return -EBADF;
  try {
    return kev::kevent_internal::PosixTimerCreate(q->core(), clock, ptr);
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  }
}

int kevent_posix_timer_settime(int fd, long timer, int flags, const struct itimerspec* value,
                               struct itimerspec* old) {
  std::shared_ptr<ApiQueue> q = Queues().Find(fd);
  if (q == nullptr) return -EBADF;
  QueueLock lock(*q);
  if (q->closed) return -EBADF;
  return kev::kevent_internal::PosixTimerSetTime(q->core(), timer, flags, value, old);
}

int kevent_posix_timer_delete(int fd, long timer) {
  std::shared_ptr<ApiQueue> q = Queues().Find(fd);
  if (q == nullptr) return -EBADF;
  QueueLock lock(*q);
  if (q->closed) return -EBADF;
  return kev::kevent_internal::PosixTimerDelete(q->core(), timer);
}

}  // extern "C"
