// SIGNAL, INODE and POSIX_TIMER through the C API (kevent.h), on io_uring and on epoll
// (KEV_BACKEND set per test): the blocking calls wake for a signal, a directory change or a
// timer, from the same thread or from a waiting one.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "kevent/internal/ukevent_builders.h"
#include "kevent/kevent.h"
#include "kevent/poller.h"

namespace kev::kevent_testing {
namespace {

constexpr timespec kLong = {20, 0};  // a bound so a bug fails instead of hanging
constexpr uint32_t kDone = KEVENT_RET_DONE;
constexpr long kMs = 1'000'000;

itimerspec Spec(long value_ns, long interval_ns = 0) {
  itimerspec its = {};
  its.it_value = {value_ns / 1'000'000'000, value_ns % 1'000'000'000};
  its.it_interval = {interval_ns / 1'000'000'000, interval_ns % 1'000'000'000};
  return its;
}

class OsOriginsApiTest : public ::testing::TestWithParam<PollerBackend> {
 protected:
  void SetUp() override {
    if (GetParam() == PollerBackend::kIoUring) {
      int error = 0;
      if (Poller::Create(PollerBackend::kIoUring, {}, &error) == nullptr) {
        GTEST_SKIP() << "io_uring unavailable here: " << strerror(-error);
      }
    }
    setenv("KEV_BACKEND", GetParam() == PollerBackend::kIoUring ? "io_uring" : "epoll", 1);
    fd_ = kevent_init(nullptr, 0, 0);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override {
    if (fd_ >= 0) EXPECT_EQ(kevent_close(fd_), 0);
    unsetenv("KEV_BACKEND");
  }
  int Add(ukevent& uk) {
    EXPECT_EQ(kevent_ctl(fd_, KEVENT_CTL_ADD, 1, &uk), 1);
    return static_cast<int>(uk.ret_flags);
  }
  // Waits (blocking in kevent_get_events) for one event.
  ukevent GetOne() {
    ukevent out{};
    EXPECT_EQ(kevent_get_events(fd_, 1, 1, kLong, &out, 0), 1);
    return out;
  }
  int fd_ = -1;
};

ukevent SignalRequest(int signo, uint32_t user) {
  ukevent uk{};
  uk.type = KEVENT_SIGNAL;
  uk.event = KEVENT_SIGNAL_DELIVERY;
  uk.id.raw_u64 = static_cast<uint64_t>(signo) | KEVENT_SIGNAL_NOMASK;
  uk.user[0] = user;
  return uk;
}

TEST_P(OsOriginsApiTest, SignalWakesABlockedWaiter) {
  ukevent uk = SignalRequest(SIGUSR1, 11);
  ASSERT_EQ(Add(uk), 0);
  std::atomic<bool> started{false};
  ukevent got{};
  int n = 0;
  std::thread waiter([&] {
    started = true;
    n = kevent_get_events(fd_, 1, 1, kLong, &got, 0);
  });
  while (!started) std::this_thread::yield();
  // Sent to the process (any thread may run the handler) once the waiter is likely blocked;
  // correctness does not depend on it.
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
  waiter.join();
  ASSERT_EQ(n, 1);
  EXPECT_EQ(got.user[0], 11u);
  EXPECT_EQ(got.ret_flags, kDone);
  EXPECT_GE(got.ret_data[0], 1u);
  EXPECT_EQ(kevent_ctl(fd_, KEVENT_CTL_REMOVE, 1, &uk), 1);
  EXPECT_EQ(uk.ret_flags, kDone);
}

TEST_P(OsOriginsApiTest, SignalToTheWaitingThreadItself) {
  ukevent uk = SignalRequest(SIGUSR2, 12);
  ASSERT_EQ(Add(uk), 0);
  ASSERT_EQ(syscall(SYS_tgkill, getpid(), static_cast<pid_t>(syscall(SYS_gettid)), SIGUSR2), 0);
  ukevent got = GetOne();
  EXPECT_EQ(got.user[0], 12u);
  EXPECT_EQ(got.ret_data[0], 1u);
  ukevent none{};
  EXPECT_EQ(kevent_get_events(fd_, 0, 1, kNoWait, &none, 0), 0);
}

TEST_P(OsOriginsApiTest, InodeChangesWakeAWaiter) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(base != nullptr ? base : "/tmp") + "/api_inode_XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dfd, 0);
  ukevent uk{};
  uk.type = KEVENT_INODE;
  uk.event = KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE;
  uk.id.raw[0] = static_cast<uint32_t>(dfd);
  ASSERT_EQ(Add(uk), 0);
  std::thread maker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const int f = open((dir + "/f").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    close(f);
  });
  ukevent got = GetOne();
  maker.join();
  EXPECT_EQ(got.type, static_cast<uint32_t>(KEVENT_INODE));
  EXPECT_EQ(got.ret_data[0], 1u);
  EXPECT_EQ(got.ret_data[1], static_cast<uint32_t>(KEVENT_INODE_CREATE));
  ASSERT_EQ(unlink((dir + "/f").c_str()), 0);
  got = GetOne();
  EXPECT_EQ(got.ret_data[1], static_cast<uint32_t>(KEVENT_INODE_REMOVE));
  close(dfd);
  rmdir(dir.c_str());
}

TEST_P(OsOriginsApiTest, PosixTimerMonotonicRelativeAndPeriodic) {
  int state = 0;
  const long t = kevent_posix_timer_create(fd_, CLOCK_MONOTONIC, &state);
  ASSERT_GT(t, 0);
  const itimerspec once = Spec(5 * kMs);
  ASSERT_EQ(kevent_posix_timer_settime(fd_, t, 0, &once, nullptr), 0);
  ukevent got = GetOne();
  EXPECT_EQ(got.type, static_cast<uint32_t>(KEVENT_POSIX_TIMER));
  EXPECT_EQ(got.ptr, &state);
  EXPECT_EQ(got.ret_data[0], 1u);

  const itimerspec periodic = Spec(2 * kMs, 2 * kMs);
  ASSERT_EQ(kevent_posix_timer_settime(fd_, t, 0, &periodic, nullptr), 0);
  uint32_t expirations = 0;
  while (expirations < 5) {
    got = GetOne();
    ASSERT_EQ(got.ptr, &state);
    expirations += got.ret_data[0];
  }
  // Not waited on for 20 ms (ten periods): one event carries them all.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  got = GetOne();
  EXPECT_GE(got.ret_data[0], 5u);
  itimerspec old = {};
  const itimerspec off = Spec(0);
  ASSERT_EQ(kevent_posix_timer_settime(fd_, t, 0, &off, &old), 0);
  EXPECT_EQ(old.it_interval.tv_nsec, 2 * kMs);
  EXPECT_EQ(kevent_posix_timer_delete(fd_, t), 0);
}

TEST_P(OsOriginsApiTest, PosixTimerRealtimeAbsolute) {
  const long t = kevent_posix_timer_create(fd_, CLOCK_REALTIME, nullptr);
  ASSERT_GT(t, 0);
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  itimerspec at = {};
  at.it_value = now;
  at.it_value.tv_nsec += 10 * kMs;
  if (at.it_value.tv_nsec >= 1'000'000'000) {
    at.it_value.tv_nsec -= 1'000'000'000;
    ++at.it_value.tv_sec;
  }
  ASSERT_EQ(kevent_posix_timer_settime(fd_, t, TIMER_ABSTIME, &at, nullptr), 0);
  ukevent got = GetOne();
  EXPECT_EQ(got.id.raw_u64, static_cast<uint64_t>(t));
  EXPECT_EQ(got.ret_data[0], 1u);
  EXPECT_EQ(kevent_posix_timer_delete(fd_, t), 0);
}

TEST_P(OsOriginsApiTest, PosixTimerDeleteWhileArmedAndWaiting) {
  const long t = kevent_posix_timer_create(fd_, CLOCK_MONOTONIC, nullptr);
  ASSERT_GT(t, 0);
  const itimerspec far = Spec(3600L * 1'000'000'000);
  ASSERT_EQ(kevent_posix_timer_settime(fd_, t, 0, &far, nullptr), 0);
  // A waiter is blocked (driving the poller) while another thread deletes the timer and wakes it.
  std::thread waiter([&] {
    ukevent got{};
    EXPECT_EQ(kevent_get_events(fd_, 1, 1, kLong, &got, 0), 0) << "woken by READY 0, not a timer";
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(kevent_posix_timer_delete(fd_, t), 0);
  EXPECT_EQ(kevent_ctl(fd_, KEVENT_CTL_READY, 0, nullptr), 0);
  waiter.join();
  EXPECT_EQ(kevent_posix_timer_delete(fd_, t), -EINVAL);
}

TEST_P(OsOriginsApiTest, PosixTimerBadArguments) {
  EXPECT_EQ(kevent_posix_timer_create(-1, CLOCK_MONOTONIC, nullptr), -EBADF);
  EXPECT_EQ(kevent_posix_timer_create(fd_, CLOCK_MONOTONIC_RAW, nullptr), -EINVAL);
  EXPECT_EQ(kevent_posix_timer_create(fd_, 4242, nullptr), -EINVAL);
  const itimerspec its = Spec(kMs);
  EXPECT_EQ(kevent_posix_timer_settime(-1, 1, 0, &its, nullptr), -EBADF);
  EXPECT_EQ(kevent_posix_timer_settime(fd_, 1, 0, &its, nullptr), -EINVAL) << "no such timer";
  EXPECT_EQ(kevent_posix_timer_delete(fd_, 1), -EINVAL);
  EXPECT_EQ(kevent_posix_timer_delete(-1, 1), -EBADF);
  const long t = kevent_posix_timer_create(fd_, CLOCK_PROCESS_CPUTIME_ID, nullptr);
  ASSERT_GT(t, 0) << "CPU clocks are timer clocks too";
  EXPECT_EQ(kevent_posix_timer_settime(fd_, t, 0, nullptr, nullptr), -EINVAL);
  EXPECT_EQ(kevent_posix_timer_settime(fd_, t, 0, &its, nullptr), 0);
  // Closing the queue with an armed timer frees it.
}

INSTANTIATE_TEST_SUITE_P(Backends, OsOriginsApiTest,
                         ::testing::Values(PollerBackend::kIoUring, PollerBackend::kEpoll),
                         [](const ::testing::TestParamInfo<PollerBackend>& info) {
                           return info.param == PollerBackend::kIoUring ? "IoUring" : "Epoll";
                         });

}  // namespace
}  // namespace kev::kevent_testing
