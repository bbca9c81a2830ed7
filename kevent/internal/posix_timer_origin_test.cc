// KEVENT_POSIX_TIMER through the queue core, on io_uring and on epoll: timers on
// CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_TAI and CPU clocks; relative, absolute and periodic;
// old values; delete while armed. Assertions are on counts and order, never on durations.
#include "kevent/internal/posix_timer_origin.h"

#include <pthread.h>
#include <time.h>

#include <thread>

#include "kevent/internal/os_origin_fixture.h"

namespace kev::kevent_internal::test {
namespace {

itimerspec Spec(int64_t value_ns, int64_t interval_ns = 0) {
  itimerspec its = {};
  its.it_value = {static_cast<time_t>(value_ns / 1'000'000'000), value_ns % 1'000'000'000};
  its.it_interval = {static_cast<time_t>(interval_ns / 1'000'000'000), interval_ns % 1'000'000'000};
  return its;
}
constexpr int64_t kMs = 1'000'000;

timespec Now(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return ts;
}
itimerspec At(clockid_t clock, int64_t later_ns) {
  timespec now = Now(clock);
  const int64_t ns = now.tv_nsec + later_ns;
  itimerspec its = {};
  its.it_value = {now.tv_sec + static_cast<time_t>(ns / 1'000'000'000), ns % 1'000'000'000};
  return its;
}

uint32_t Expirations(const std::vector<ukevent>& events) {
  uint32_t n = 0;
  for (const ukevent& uk : events) n += uk.ret_data[0];
  return n;
}

class PosixTimerOriginTest : public OsOriginTest {
 protected:
  long Create(clockid_t clock, void* ptr = nullptr) {
    return PosixTimerCreate(queue(), clock, ptr);
  }
  int Set(long id, int flags, const itimerspec& its, itimerspec* old = nullptr) {
    return PosixTimerSetTime(queue(), id, flags, &its, old);
  }
  int state_ = 0;
};

TEST_P(PosixTimerOriginTest, MonotonicRelativeOneShot) {
  const long id = Create(CLOCK_MONOTONIC, &state_);
  ASSERT_GT(id, 0);
  EXPECT_EQ(queue().size(), 1u) << "create registers the request";
  EXPECT_TRUE(Settle(2).empty()) << "a new timer is disarmed";
  ASSERT_EQ(Set(id, 0, Spec(5 * kMs)), 0);
  std::vector<ukevent> events = WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, static_cast<uint32_t>(KEVENT_POSIX_TIMER));
  EXPECT_EQ(events[0].event, static_cast<uint32_t>(KEVENT_TIMER_FIRED));
  EXPECT_EQ(events[0].ret_flags, kDone);
  EXPECT_EQ(events[0].ptr, &state_);
  EXPECT_EQ(events[0].id.raw_u64, static_cast<uint64_t>(id));
  EXPECT_EQ(events[0].ret_data[0], 1u);
  EXPECT_TRUE(Settle().empty()) << "one-shot";
  EXPECT_EQ(queue().size(), 1u) << "the request stays until delete";
  EXPECT_EQ(PosixTimerDelete(queue(), id), 0);
  EXPECT_EQ(queue().size(), 0u);
}

TEST_P(PosixTimerOriginTest, RealtimeAbsolute) {
  const long id = Create(CLOCK_REALTIME, &state_);
  ASSERT_GT(id, 0);
  ASSERT_EQ(Set(id, TIMER_ABSTIME, At(CLOCK_REALTIME, 10 * kMs)), 0);
  std::vector<ukevent> events = WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ret_data[0], 1u);
  // An absolute time in the past fires at once.
  ASSERT_EQ(Set(id, TIMER_ABSTIME, Spec(1'000'000'000)), 0);
  EXPECT_EQ(WaitEvents(1).size(), 1u);
}

TEST_P(PosixTimerOriginTest, MonotonicAbsolute) {
  const long id = Create(CLOCK_MONOTONIC);
  ASSERT_GT(id, 0);
  ASSERT_EQ(Set(id, TIMER_ABSTIME, At(CLOCK_MONOTONIC, 10 * kMs)), 0);
  std::vector<ukevent> events = WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ret_data[0], 1u);
}

TEST_P(PosixTimerOriginTest, PeriodicCountsEveryExpiration) {
  const long id = Create(CLOCK_MONOTONIC, &state_);
  ASSERT_GT(id, 0);
  ASSERT_EQ(Set(id, 0, Spec(2 * kMs, 2 * kMs)), 0);
  std::vector<ukevent> events =
      DriveUntil({&primary_}, [](const auto& e) { return Expirations(e[0]) >= 5; })[0];
  EXPECT_GE(Expirations(events), 5u);
  // Not polled for at least 20 ms (ten periods): the next delivery counts them all at once.
  Settle(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  events = WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_GE(events[0].ret_data[0], 10u) << "overruns are counted, not lost";
  ASSERT_EQ(Set(id, 0, Spec(0)), 0);  // disarm
  Settle(1);
  EXPECT_TRUE(Settle().empty());
}

TEST_P(PosixTimerOriginTest, SetTimeReturnsTheOldSetting) {
  const long id = Create(CLOCK_MONOTONIC);
  ASSERT_GT(id, 0);
  itimerspec old = Spec(123, 456);
  ASSERT_EQ(Set(id, 0, Spec(100'000 * kMs, 7 * kMs), &old), 0);
  EXPECT_EQ(old.it_value.tv_sec, 0);
  EXPECT_EQ(old.it_value.tv_nsec, 0) << "was disarmed";
  ASSERT_EQ(Set(id, 0, Spec(0), &old), 0);
  EXPECT_GT(old.it_value.tv_sec, 0);
  EXPECT_LE(old.it_value.tv_sec, 100);
  EXPECT_EQ(old.it_interval.tv_sec, 0);
  EXPECT_EQ(old.it_interval.tv_nsec, 7 * kMs);
  EXPECT_TRUE(Settle().empty());
}

TEST_P(PosixTimerOriginTest, DeleteWhileArmed) {
  const long a = Create(CLOCK_MONOTONIC);
  const long b = Create(CLOCK_REALTIME);
  ASSERT_GT(a, 0);
  ASSERT_GT(b, a) << "ids are distinct";
  ASSERT_EQ(Set(a, 0, Spec(1 * kMs, 1 * kMs)), 0);
  ASSERT_EQ(Set(b, 0, Spec(1 * kMs, 1 * kMs)), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  Settle(1);  // both may be ready now; deleting drops a ready, undelivered one
  EXPECT_EQ(PosixTimerDelete(queue(), a), 0);
  EXPECT_EQ(PosixTimerDelete(queue(), b), 0);
  EXPECT_EQ(queue().size(), 0u);
  EXPECT_EQ(queue().ready_count(), 0u);
  EXPECT_TRUE(Settle().empty());
  EXPECT_EQ(PosixTimerDelete(queue(), a), -EINVAL);
  itimerspec its = Spec(kMs);
  EXPECT_EQ(PosixTimerSetTime(queue(), b, 0, &its, nullptr), -EINVAL);
}

TEST_P(PosixTimerOriginTest, RemovedRequestLeavesTheTimerUntilDelete) {
  const long id = Create(CLOCK_MONOTONIC, &state_);
  ASSERT_GT(id, 0);
  ukevent uk{};
  uk.type = KEVENT_POSIX_TIMER;
  uk.event = KEVENT_TIMER_FIRED;
  uk.id.raw_u64 = static_cast<uint64_t>(id);
  uk.ptr = &state_;
  ASSERT_EQ(Ctl(KEVENT_CTL_REMOVE, uk), kDone);
  ASSERT_EQ(Set(id, 0, Spec(kMs)), 0) << "the timer itself is still there";
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  EXPECT_TRUE(Settle().empty()) << "unwatched: the expiry is dropped";
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 0u) << "watched again";
  ASSERT_EQ(Set(id, 0, Spec(kMs)), 0);
  EXPECT_EQ(WaitEvents(1).size(), 1u);
  ukevent other = uk;
  other.ptr = nullptr;
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, other), kBroken);
  EXPECT_EQ(other.ret_data[0], static_cast<uint32_t>(EEXIST)) << "one request per timer";
  ukevent unknown = uk;
  unknown.id.raw_u64 = 999;
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, unknown), kBroken);
  EXPECT_EQ(unknown.ret_data[0], static_cast<uint32_t>(EINVAL)) << "made by create only";
  EXPECT_EQ(PosixTimerDelete(queue(), id), 0);
}

TEST_P(PosixTimerOriginTest, TaiClock) {
  const long id = Create(CLOCK_TAI);
  ASSERT_GT(id, 0);
  ASSERT_EQ(Set(id, TIMER_ABSTIME, At(CLOCK_TAI, 5 * kMs)), 0);
  std::vector<ukevent> events = WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ret_data[0], 1u);
  ASSERT_EQ(Set(id, 0, Spec(kMs, kMs)), 0);
  events = DriveUntil({&primary_}, [](const auto& e) { return Expirations(e[0]) >= 3; })[0];
  EXPECT_GE(Expirations(events), 3u);
}

// Burns CPU on this thread while polling, until `n` expirations arrived.
std::vector<ukevent> BurnUntil(OsQueue& q, uint32_t n) {
  std::vector<ukevent> events;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  volatile uint64_t sink = 0;
  while (Expirations(events) < n && std::chrono::steady_clock::now() < deadline) {
    for (int i = 0; i < 100000; ++i) sink = sink + i;
    q.Turn(std::chrono::milliseconds(0), &events);
  }
  return events;
}

TEST_P(PosixTimerOriginTest, ProcessAndThreadCpuClocks) {
  for (clockid_t clock : {CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID}) {
    const long id = Create(clock, &state_);
    ASSERT_GT(id, 0) << clock;
    ASSERT_EQ(Set(id, 0, Spec(3 * kMs)), 0);
    std::vector<ukevent> events = BurnUntil(primary_, 1);
    ASSERT_EQ(events.size(), 1u) << clock;
    EXPECT_EQ(events[0].ret_data[0], 1u);
    EXPECT_EQ(events[0].ptr, &state_);
    ASSERT_EQ(Set(id, 0, Spec(2 * kMs, 2 * kMs)), 0);
    events = BurnUntil(primary_, 3);
    EXPECT_GE(Expirations(events), 3u) << clock;
    itimerspec old;
    ASSERT_EQ(Set(id, 0, Spec(0), &old), 0);
    EXPECT_EQ(old.it_interval.tv_nsec, 2 * kMs);
    EXPECT_EQ(PosixTimerDelete(queue(), id), 0);
  }
  // Another thread's clock, as pthread_getcpuclockid gives it.
  clockid_t main_clock;
  ASSERT_EQ(pthread_getcpuclockid(pthread_self(), &main_clock), 0);
  const long id = Create(main_clock);
  ASSERT_GT(id, 0);
  ASSERT_EQ(Set(id, 0, Spec(2 * kMs)), 0);
  EXPECT_EQ(Expirations(BurnUntil(primary_, 1)), 1u);
}

TEST_P(PosixTimerOriginTest, BadClocksAndArguments) {
  EXPECT_EQ(Create(CLOCK_MONOTONIC_RAW), -EINVAL) << "the kernel has no timers on it";
  EXPECT_EQ(Create(CLOCK_REALTIME_COARSE), -EINVAL);
  EXPECT_EQ(Create(12345), -EINVAL);
  const long alarm = Create(CLOCK_BOOTTIME_ALARM);
  EXPECT_TRUE(alarm > 0 || alarm == -EPERM) << alarm;  // needs CAP_WAKE_ALARM
  if (alarm > 0) EXPECT_EQ(PosixTimerDelete(queue(), alarm), 0);
  EXPECT_EQ(queue().size(), 0u);

  const long id = Create(CLOCK_MONOTONIC);
  ASSERT_GT(id, 0);
  itimerspec bad = Spec(kMs);
  bad.it_value.tv_nsec = 1'000'000'000;
  EXPECT_EQ(Set(id, 0, bad), -EINVAL);
  EXPECT_EQ(Set(id, 0x40, Spec(kMs)), -EINVAL);
  EXPECT_EQ(PosixTimerSetTime(queue(), id, 0, nullptr, nullptr), -EINVAL);
  EXPECT_EQ(Set(0, 0, Spec(kMs)), -EINVAL);
  EXPECT_EQ(Set(-5, 0, Spec(kMs)), -EINVAL);
  EXPECT_EQ(Set(id + 100, 0, Spec(kMs)), -EINVAL);
  EXPECT_EQ(PosixTimerDelete(queue(), id + 100), -EINVAL);

  Queue no_poller({});
  EXPECT_EQ(PosixTimerCreate(no_poller, CLOCK_MONOTONIC, nullptr), -EOPNOTSUPP);
}

TEST_P(PosixTimerOriginTest, QueueDestroyedWithArmedTimers) {
  for (clockid_t clock : {CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID}) {
    const long id = Create(clock);
    ASSERT_GT(id, 0);
    ASSERT_EQ(Set(id, 0, Spec(kMs, kMs)), 0);
  }
  Settle(1);
  primary_.queue.reset();  // then the poller, as the fixture does
}

INSTANTIATE_TEST_SUITE_P(Backends, PosixTimerOriginTest,
                         ::testing::Values(PollerBackend::kIoUring, PollerBackend::kEpoll),
                         BackendName);

}  // namespace
}  // namespace kev::kevent_internal::test
