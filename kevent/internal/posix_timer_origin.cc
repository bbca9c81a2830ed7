#include "kevent/internal/posix_timer_origin.h"

#include <pthread.h>
#include <signal.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>

#include "kevent/internal/check.h"
#include "kevent/internal/queue.h"

namespace kev::kevent_internal {
namespace {

constexpr int64_t kNsPerSec = 1'000'000'000;
// The shortest sleep between two looks at a CPU clock (see the header).
constexpr int64_t kMinCpuCheckNs = 1'000'000;
// Timer values beyond ~73 years are "far future": keeps the nanosecond arithmetic in range.
constexpr int64_t kMaxSec = std::numeric_limits<int64_t>::max() / kNsPerSec / 4;

bool Valid(const timespec& ts) {
  return ts.tv_sec >= 0 && ts.tv_nsec >= 0 && ts.tv_nsec < kNsPerSec;
}
int64_t ToNs(const timespec& ts) {
  return std::min<int64_t>(ts.tv_sec, kMaxSec) * kNsPerSec + ts.tv_nsec;
}
timespec ToTimespec(int64_t ns) {
  return timespec{static_cast<time_t>(ns / kNsPerSec), static_cast<long>(ns % kNsPerSec)};
}
uint32_t Saturate(uint64_t n) {
  return static_cast<uint32_t>(std::min<uint64_t>(n, std::numeric_limits<uint32_t>::max()));
}

PosixTimerOrigin* OriginOf(Queue& queue) {
  return static_cast<PosixTimerOrigin*>(queue.origin(KEVENT_POSIX_TIMER));
}

}  // namespace

// One timer: a timerfd on its own clock, or (`computed_`) a CLOCK_MONOTONIC timerfd that wakes
// us to read the timer's clock and count expirations ourselves.
class PosixTimerOrigin::Timer final : public ReadableWatch::Listener {
 public:
  Timer(Poller& poller, int fd, clockid_t clock, bool computed, int64_t divisor)
      : clock_(clock), computed_(computed), divisor_(divisor) {
    watch_ = ReadableWatch::Start(poller, fd, this);
  }
  ~Timer() { watch_->Release(); }

  int Set(int flags, const itimerspec& value, itimerspec* old) {
    if (!computed_) {
      const int tfd_flags = (flags & TIMER_ABSTIME) != 0 ? TFD_TIMER_ABSTIME : 0;
      return timerfd_settime(watch_->fd(), tfd_flags, &value, old) == 0 ? 0 : -errno;
    }
    if (!Valid(value.it_value) || !Valid(value.it_interval)) return -EINVAL;
    const int64_t now = Now();
    if (old != nullptr) {
      *old = {};
      if (armed_) {
        old->it_value = ToTimespec(std::max<int64_t>(next_ns_ - now, 1));
        old->it_interval = ToTimespec(interval_ns_);
      }
    }
    const int64_t value_ns = ToNs(value.it_value);
    armed_ = value_ns != 0;
    interval_ns_ = ToNs(value.it_interval);
    if (!armed_) {
      const itimerspec zero = {};
      timerfd_settime(watch_->fd(), 0, &zero, nullptr);
      return 0;
    }
    next_ns_ = (flags & TIMER_ABSTIME) != 0 ? value_ns : now + value_ns;
    ArmWaker(now);
    return 0;
  }

  Request* request = nullptr;  // the request watching the timer, if any

 private:
  int64_t Now() const {
    timespec ts = {};
    clock_gettime(clock_, &ts);  // vDSO for TAI; a syscall for CPU clocks (once per check)
    return ToNs(ts);
  }

  void ArmWaker(int64_t now) {
    int64_t wait = std::max<int64_t>(next_ns_ - now, 1);
    if (divisor_ > 0) wait = std::max<int64_t>(wait / divisor_, kMinCpuCheckNs);
    const itimerspec its = {.it_interval = {}, .it_value = ToTimespec(wait)};
    timerfd_settime(watch_->fd(), 0, &its, nullptr);
  }

  void OnReadable() override {
    uint64_t ticks = 0;
    if (read(watch_->fd(), &ticks, sizeof(ticks)) != sizeof(ticks)) return;  // EAGAIN: re-set
    uint64_t expirations = ticks;
    if (computed_) {
      if (!armed_) return;
      const int64_t now = Now();
      if (now < next_ns_) {
        ArmWaker(now);  // woken early: the CPU clock ran slower than the bound
        return;
      }
      expirations = 1;
      if (interval_ns_ > 0) {
        expirations += static_cast<uint64_t>(now - next_ns_) / static_cast<uint64_t>(interval_ns_);
        next_ns_ += static_cast<int64_t>(expirations) * interval_ns_;
        ArmWaker(now);
      } else {
        armed_ = false;
      }
    }
    if (request != nullptr) request->queue->Activate(*request, Saturate(expirations));
  }

  ReadableWatch* watch_;
  const clockid_t clock_;
  const bool computed_;
  // computed_ only: CPU clocks advance at most `divisor_` times faster than CLOCK_MONOTONIC
  // (0: not a CPU clock, same rate).
  const int64_t divisor_;
  bool armed_ = false;
  int64_t next_ns_ = 0;  // the next expiry, on clock_
  int64_t interval_ns_ = 0;
};

PosixTimerOrigin::PosixTimerOrigin(OriginContext& context) : context_(context) {}

PosixTimerOrigin::~PosixTimerOrigin() = default;

long PosixTimerOrigin::Create(Queue& queue, clockid_t clock, void* ptr) {
  Poller* poller = context_.poller();
  if (poller == nullptr) return -EOPNOTSUPP;
  if (clock == CLOCK_THREAD_CPUTIME_ID) {
    // The calling thread's clock, as timer_create means it; readable from any thread.
    clockid_t own;
    if (pthread_getcpuclockid(pthread_self(), &own) == 0) clock = own;
  }
  bool computed = false;
  int64_t divisor = 0;
  int fd = timerfd_create(clock, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) {
    if (errno != EINVAL) return -errno;  // EPERM: an _ALARM clock without CAP_WAKE_ALARM
    // Not a timerfd clock: does the kernel take it for timers at all?
    sigevent sev = {};
    sev.sigev_notify = SIGEV_NONE;
    timer_t probe;
    if (timer_create(clock, &sev, &probe) != 0) return errno == EPERM ? -EPERM : -EINVAL;
    timer_delete(probe);
    timespec ts;
    if (clock_gettime(clock, &ts) != 0) return -EINVAL;
    fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0) return -errno;
    computed = true;
    // Linux CPU clock ids: process CPU time (all threads) or, with bit 2 set, one thread's.
    const bool cpu = clock == CLOCK_PROCESS_CPUTIME_ID || clock < 0;
    const bool per_thread = clock < 0 && (clock & 4) != 0;
    if (cpu) divisor = per_thread ? 1 : std::max<long>(1, sysconf(_SC_NPROCESSORS_ONLN));
  }
  const uint64_t id = next_id_++;
  timers_[id] = std::make_unique<Timer>(*poller, fd, clock, computed, divisor);
  ukevent uk = {};
  uk.type = KEVENT_POSIX_TIMER;
  uk.event = KEVENT_TIMER_FIRED;
  uk.id.raw_u64 = id;
  uk.ptr = ptr;
  queue.Ctl(KEVENT_CTL_ADD, uk);
  if ((uk.ret_flags & KEVENT_RET_BROKEN) != 0) {
    timers_.erase(id);
    return -static_cast<long>(uk.ret_data[0]);
  }
  return static_cast<long>(id);
}

int PosixTimerOrigin::SetTime(uint64_t id, int flags, const itimerspec* value, itimerspec* old) {
  auto it = timers_.find(id);
  if (it == timers_.end() || value == nullptr || (flags & ~TIMER_ABSTIME) != 0) return -EINVAL;
  return it->second->Set(flags, *value, old);
}

int PosixTimerOrigin::Delete(Queue& queue, uint64_t id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return -EINVAL;
  if (it->second->request != nullptr) queue.RemoveRequest(it->second->request);
  timers_.erase(it);
  return 0;
}

int PosixTimerOrigin::Enqueue(Request& r) {
  if (context_.poller() == nullptr) return -EOPNOTSUPP;
  if (r.uk.event != KEVENT_TIMER_FIRED) return -EINVAL;
  auto it = timers_.find(r.uk.id.raw_u64);
  if (it == timers_.end()) return -EINVAL;  // timers are made by PosixTimerCreate, not by ADD
  Timer& t = *it->second;
  if (t.request != nullptr && t.request != &r) return -EEXIST;  // watched by another request
  t.request = &r;
  return 0;
}

void PosixTimerOrigin::Dequeue(Request& r) {
  auto it = timers_.find(r.uk.id.raw_u64);
  if (it != timers_.end() && it->second->request == &r) it->second->request = nullptr;
}

long PosixTimerCreate(Queue& queue, clockid_t clock, void* ptr) {
  return OriginOf(queue)->Create(queue, clock, ptr);
}

int PosixTimerSetTime(Queue& queue, long id, int flags, const itimerspec* value, itimerspec* old) {
  if (id <= 0) return -EINVAL;
  return OriginOf(queue)->SetTime(static_cast<uint64_t>(id), flags, value, old);
}

int PosixTimerDelete(Queue& queue, long id) {
  if (id <= 0) return -EINVAL;
  return OriginOf(queue)->Delete(queue, static_cast<uint64_t>(id));
}

}  // namespace kev::kevent_internal
