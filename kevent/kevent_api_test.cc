// The C API (kevent/kevent.h) from one thread: arguments, timeouts, rings, pollability.
// kevent_threads_test.cc covers waiting threads.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <vector>

#include "gtest/gtest.h"
#include "kevent/internal/ukevent_builders.h"
#include "kevent/kevent.h"

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr uint32_t kBroken = KEVENT_RET_BROKEN | KEVENT_RET_DONE;
using kev::kevent_testing::kForever;
using kev::kevent_testing::kNoWait;
using kev::kevent_testing::Timer;
using kev::kevent_testing::Unotify;

timespec Ms(long ms) { return timespec{ms / 1000, (ms % 1000) * 1'000'000}; }

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

// A ring of `num` slots in its own memory.
class RingMemory {
 public:
  explicit RingMemory(unsigned num) : mem_(sizeof(kevent_ring) + num * sizeof(ukevent)) {}
  kevent_ring* get() { return reinterpret_cast<kevent_ring*>(mem_.data()); }
  unsigned kidx() {
    return std::atomic_ref<unsigned>(get()->ring_kidx).load(std::memory_order_acquire);
  }
  unsigned over() {
    return std::atomic_ref<unsigned>(get()->ring_over).load(std::memory_order_acquire);
  }

 private:
  std::vector<char> mem_;
};

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fd_ = kevent_init(nullptr, 0, 0);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override {
    if (fd_ >= 0) kevent_close(fd_);
  }
  int Ctl(unsigned cmd, ukevent& uk) { return kevent_ctl(fd_, cmd, 1, &uk); }
  void ReadyOne(uint32_t id, uint32_t data = 0) {
    ukevent uk = Unotify(id);
    uk.ret_data[0] = data;
    ASSERT_EQ(Ctl(KEVENT_CTL_READY, uk), 1);
    ASSERT_EQ(uk.ret_flags, 0u);
  }
  int Get(ukevent* buf, unsigned max, timespec timeout = kNoWait, unsigned min = 1) {
    return kevent_get_events(fd_, min, max, timeout, buf, 0);
  }
  int fd_ = -1;
};

// --- kevent_init and the fd ---------------------------------------------------------------------

TEST(InitTest, ReturnsARealCloexecFdAndRejectsBadArguments) {
  RingMemory ring(4);
  EXPECT_EQ(kevent_init(ring.get(), 0, 0), -EINVAL);  // ring without slots
  EXPECT_EQ(kevent_init(nullptr, 4, 0), -EINVAL);     // slots without ring
  EXPECT_EQ(kevent_init(ring.get(), 1, 0), -EINVAL);  // num == 1
  EXPECT_EQ(kevent_init(nullptr, 0, 0x10), -EINVAL);  // unknown flags
  const int fd = kevent_init(ring.get(), 4, 0);
  ASSERT_GE(fd, 0);
  EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_EQ(ring.kidx(), 0u);
  EXPECT_EQ(ring.over(), 0u);
  EXPECT_EQ(kevent_close(fd), 0);
  EXPECT_EQ(kevent_close(fd), -EBADF);
}

TEST_F(ApiTest, FdPollsReadableExactlyWhileEventsAreReady) {
  EXPECT_FALSE(Readable(fd_));
  ukevent uk = Unotify(1);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 1);
  EXPECT_FALSE(Readable(fd_));
  ReadyOne(1);
  EXPECT_TRUE(Readable(fd_));
  ReadyOne(1);  // coalesced: still one readable state
  EXPECT_TRUE(Readable(fd_));
  ukevent out[4];
  EXPECT_EQ(Get(out, 4), 1);
  EXPECT_FALSE(Readable(fd_));
  ReadyOne(1);
  ukevent rm = Unotify(1);
  ASSERT_EQ(Ctl(KEVENT_CTL_REMOVE, rm), 1);  // dropped undelivered
  EXPECT_FALSE(Readable(fd_));
}

TEST_F(ApiTest, FdCanBeNestedInEpoll) {
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd_;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fd_, &ev), 0);
  epoll_event got{};
  EXPECT_EQ(epoll_wait(ep, &got, 1, 0), 0);
  ukevent uk = Unotify(1, KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 1);
  ASSERT_EQ(epoll_wait(ep, &got, 1, 1000), 1);
  EXPECT_EQ(got.data.fd, fd_);
  ukevent out[1];
  EXPECT_EQ(Get(out, 1), 1);
  EXPECT_EQ(epoll_wait(ep, &got, 1, 0), 0);
  close(ep);
}

// --- kevent_ctl -------------------------------------------------------------------------------

TEST_F(ApiTest, CtlRejectsBadCalls) {
  ukevent uk = Unotify(1);
  EXPECT_EQ(kevent_ctl(-1, KEVENT_CTL_ADD, 1, &uk), -EBADF);
  EXPECT_EQ(kevent_ctl(12345, KEVENT_CTL_ADD, 1, &uk), -EBADF);
  EXPECT_EQ(kevent_ctl(STDIN_FILENO, KEVENT_CTL_ADD, 1, &uk), -EBADF);  // a real fd, no queue
  EXPECT_EQ(kevent_ctl(fd_, 4, 1, &uk), -EINVAL);
  EXPECT_EQ(kevent_ctl(fd_, 0xffffffff, 0, nullptr), -EINVAL);
  EXPECT_EQ(kevent_ctl(fd_, KEVENT_CTL_ADD, 1, nullptr), -EFAULT);
  EXPECT_EQ(kevent_ctl(fd_, KEVENT_CTL_ADD, 0, nullptr), 0);
  EXPECT_EQ(kevent_ctl(fd_, KEVENT_CTL_REMOVE, 0, nullptr), 0);
}

TEST_F(ApiTest, CtlProcessesEveryEntryInOrderWithItsOwnOutcome) {
  ukevent batch[6] = {Unotify(1), Unotify(1), Timer(0, 5), Unotify(2), Unotify(3), Unotify(4)};
  batch[2].type = KEVENT_NAIO;
  batch[3].type = KEVENT_SOCKET;
  batch[3].id.raw[0] = static_cast<uint32_t>(fd_);  // an eventfd: not a socket
  batch[4].req_flags = 0x400;
  batch[5].req_flags = KEVENT_REQ_READY | KEVENT_REQ_ONESHOT;
  batch[5].ret_data[0] = 31;
  ASSERT_EQ(kevent_ctl(fd_, KEVENT_CTL_ADD, 6, batch), 6);
  EXPECT_EQ(batch[0].ret_flags, 0u);
  EXPECT_EQ(batch[1].ret_flags, kBroken);
  EXPECT_EQ(batch[1].ret_data[0], static_cast<uint32_t>(EEXIST));
  EXPECT_EQ(batch[2].ret_flags, kBroken);
  EXPECT_EQ(batch[2].ret_data[0], static_cast<uint32_t>(EINVAL));
  EXPECT_EQ(batch[3].ret_flags, kBroken);
  EXPECT_EQ(batch[3].ret_data[0], static_cast<uint32_t>(ENOTSOCK));
  EXPECT_EQ(batch[4].ret_flags, kBroken);
  EXPECT_EQ(batch[4].ret_data[0], static_cast<uint32_t>(EINVAL));
  EXPECT_EQ(batch[5].ret_flags, static_cast<uint32_t>(KEVENT_RET_DONE));  // done at once
  EXPECT_EQ(batch[5].ret_data[0], 31u);
  ukevent out[4];
  EXPECT_EQ(Get(out, 4), 0);
}

TEST_F(ApiTest, RemoveModifyReadyOfMissingRequestsAreBrokenAndDone) {
  for (unsigned cmd : {KEVENT_CTL_REMOVE, KEVENT_CTL_MODIFY, KEVENT_CTL_READY}) {
    ukevent uk = Unotify(9);
    ASSERT_EQ(Ctl(cmd, uk), 1);
    EXPECT_EQ(uk.ret_flags, kBroken) << cmd;
    EXPECT_EQ(uk.ret_data[0], static_cast<uint32_t>(ENOENT)) << cmd;
  }
}

TEST_F(ApiTest, AlwaysQueueVersusImmediateDone) {
  ukevent now = Unotify(1, KEVENT_REQ_READY);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, now), 1);
  EXPECT_EQ(now.ret_flags, static_cast<uint32_t>(KEVENT_RET_DONE));
  ukevent queued = Unotify(2, KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, queued), 1);
  EXPECT_EQ(queued.ret_flags, 0u);
  ukevent out[4];
  ASSERT_EQ(Get(out, 4), 1);
  EXPECT_EQ(out[0].id.raw[0], 2u);
  EXPECT_EQ(out[0].ret_flags, static_cast<uint32_t>(KEVENT_RET_DONE));
}

TEST_F(ApiTest, OneshotIsRemovedAndPersistentStays) {
  ukevent once = Unotify(1, KEVENT_REQ_ONESHOT);
  ukevent stay = Unotify(2);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, once), 1);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, stay), 1);
  ReadyOne(1);
  ReadyOne(2);
  ukevent out[4];
  ASSERT_EQ(Get(out, 4), 2);
  ukevent again_once = Unotify(1);
  ASSERT_EQ(Ctl(KEVENT_CTL_READY, again_once), 1);
  EXPECT_EQ(again_once.ret_flags, kBroken);  // gone
  ReadyOne(2);                               // still there
  EXPECT_EQ(Get(out, 4), 1);
}

TEST_F(ApiTest, OccurrencesAreDeliveredOnceWithOrWithoutEt) {
  // UNOTIFY is an occurrence type: one READY, one delivery, never re-delivered on its own.
  ukevent level = Unotify(1);
  ukevent edge = Unotify(2, KEVENT_REQ_ET);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, level), 1);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, edge), 1);
  ReadyOne(1, 5);
  ReadyOne(2, 6);
  ukevent out[4];
  ASSERT_EQ(Get(out, 4), 2);
  EXPECT_EQ(Get(out, 4), 0);
  ReadyOne(1, 7);
  ASSERT_EQ(Get(out, 4), 1);
  EXPECT_EQ(out[0].ret_data[0], 7u);
}

TEST_F(ApiTest, LastCheckOnAnOccurrenceStillDelivers) {
  ukevent uk = Unotify(1, KEVENT_REQ_LAST_CHECK);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 1);
  ReadyOne(1, 3);
  ukevent out[2];
  ASSERT_EQ(Get(out, 2), 1);
  EXPECT_EQ(out[0].ret_data[0], 3u);
}

TEST_F(ApiTest, ModifyRechecksAndMayReadyAtOnce) {
  ukevent uk = Unotify(1);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 1);
  ukevent mod = Unotify(1, KEVENT_REQ_READY | KEVENT_REQ_ONESHOT);
  mod.event = 0x80;
  ASSERT_EQ(Ctl(KEVENT_CTL_MODIFY, mod), 1);
  EXPECT_EQ(mod.ret_flags, static_cast<uint32_t>(KEVENT_RET_DONE));
  ukevent out[2];
  ASSERT_EQ(Get(out, 2), 1);
  EXPECT_EQ(out[0].event, 0x80u);
  ukevent gone = Unotify(1);
  ASSERT_EQ(Ctl(KEVENT_CTL_READY, gone), 1);
  EXPECT_EQ(gone.ret_flags, kBroken);  // became ONESHOT and was delivered
}

TEST_F(ApiTest, RemovedReadyEventIsNotCopiedToTheRing) {
  RingMemory ring(4);
  const int fd = kevent_init(ring.get(), 4, 0);
  ASSERT_GE(fd, 0);
  ukevent a = Unotify(1, KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE);
  ukevent b = Unotify(2, KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE);
  ASSERT_EQ(kevent_ctl(fd, KEVENT_CTL_ADD, 1, &a), 1);
  ASSERT_EQ(kevent_ctl(fd, KEVENT_CTL_ADD, 1, &b), 1);
  ukevent rm = Unotify(1);
  ASSERT_EQ(kevent_ctl(fd, KEVENT_CTL_REMOVE, 1, &rm), 1);
  EXPECT_EQ(rm.ret_flags, static_cast<uint32_t>(KEVENT_RET_DONE));
  EXPECT_EQ(kevent_wait(fd, 4, 0, kNoWait, 0), 1);
  EXPECT_EQ(ring.kidx(), 1u);
  EXPECT_EQ(ring.get()->event[0].id.raw[0], 2u);
  kevent_close(fd);
}

// --- kevent_get_events: arguments and timeouts ------------------------------------------------

TEST_F(ApiTest, GetEventsRejectsBadArguments) {
  ukevent out[1];
  EXPECT_EQ(kevent_get_events(-1, 1, 1, kNoWait, out, 0), -EBADF);
  EXPECT_EQ(kevent_get_events(fd_, 1, 1, kNoWait, nullptr, 0), -EFAULT);
  EXPECT_EQ(kevent_get_events(fd_, 0, 0, kNoWait, nullptr, 0), 0);
  EXPECT_EQ(kevent_get_events(fd_, 1, 1, kNoWait, out, 2), -EINVAL);
  EXPECT_EQ(kevent_get_events(fd_, 1, 1, timespec{0, 1'000'000'000}, out, 0), -EINVAL);
  EXPECT_EQ(kevent_get_events(fd_, 1, 1, timespec{0, -1}, out, 0), -EINVAL);
  EXPECT_EQ(kevent_get_events(fd_, 1, 1, timespec{-2, 0}, out, 0), -EINVAL);
}

TEST_F(ApiTest, ZeroTimeoutNeverBlocks) {
  ukevent out[1];
  const auto start = Clock::now();
  EXPECT_EQ(Get(out, 1, kNoWait, 1), 0);
  EXPECT_LT(Clock::now() - start, milliseconds(2000));
}

TEST_F(ApiTest, RelativeTimeoutWaitsItsTime) {
  ukevent out[1];
  const auto start = Clock::now();
  EXPECT_EQ(Get(out, 1, Ms(60)), 0);
  EXPECT_GE(Clock::now() - start, milliseconds(60));
}

TEST_F(ApiTest, AbstimeInThePastReturnsAtOnce) {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  timespec past = {now.tv_sec - 3600, now.tv_nsec};
  ukevent out[1];
  const auto start = Clock::now();
  EXPECT_EQ(kevent_get_events(fd_, 1, 1, past, out, KEVENT_FLAGS_ABSTIME), 0);
  EXPECT_LT(Clock::now() - start, milliseconds(2000));
  // Also when events are ready: they are returned, without waiting for min_nr.
  ukevent uk = Unotify(1, KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 1);
  EXPECT_EQ(kevent_get_events(fd_, 5, 1, past, out, KEVENT_FLAGS_ABSTIME), 1);
}

TEST_F(ApiTest, AbstimeInTheFutureWaitsUntilThen) {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  long nsec = now.tv_nsec + 80'000'000;
  timespec deadline = {now.tv_sec + nsec / 1'000'000'000, nsec % 1'000'000'000};
  ukevent out[1];
  const auto start = Clock::now();
  EXPECT_EQ(kevent_get_events(fd_, 1, 1, deadline, out, KEVENT_FLAGS_ABSTIME), 0);
  EXPECT_GE(Clock::now() - start, milliseconds(70));  // 10 ms for the clocks' conversion
}

TEST_F(ApiTest, MinNrWaitsForEnoughOrTheTimeout) {
  for (uint32_t id = 1; id <= 2; ++id) {
    ukevent uk = Unotify(id, KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE);
    ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 1);
  }
  ukevent out[4];
  const auto start = Clock::now();
  EXPECT_EQ(Get(out, 4, Ms(50), 3), 2);  // only 2 ever ready: both, after the timeout
  EXPECT_GE(Clock::now() - start, milliseconds(50));
}

TEST_F(ApiTest, MaxNrLimitsAndTheRestStaysReady) {
  for (uint32_t id = 1; id <= 5; ++id) {
    ukevent uk = Unotify(id, KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE);
    ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 1);
  }
  ukevent out[5];
  ASSERT_EQ(Get(out, 2), 2);
  EXPECT_EQ(out[0].id.raw[0], 1u);
  EXPECT_EQ(out[1].id.raw[0], 2u);
  EXPECT_TRUE(Readable(fd_));
  ASSERT_EQ(Get(out, 5), 3);
  EXPECT_EQ(out[0].id.raw[0], 3u);
}

// --- Timers through the API --------------------------------------------------------------------

TEST_F(ApiTest, PeriodicTimerFiresWhileWaitingAndCountsExpirations) {
  ukevent t = Timer(0, 20'000'000);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, t), 1);
  ASSERT_EQ(t.ret_flags, 0u);
  ukevent out[1];
  uint32_t expirations = 0;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Get(out, 1, kForever), 1);
    EXPECT_EQ(out[0].type, static_cast<uint32_t>(KEVENT_TIMER));
    EXPECT_EQ(out[0].ret_flags, static_cast<uint32_t>(KEVENT_RET_DONE));
    EXPECT_GE(out[0].ret_data[1], 1u);
    expirations += out[0].ret_data[1];
  }
  EXPECT_GE(expirations, 3u);
  // After a pause several expirations are coalesced into one event.
  struct timespec pause = Ms(100);
  nanosleep(&pause, nullptr);
  ASSERT_EQ(Get(out, 1), 1);
  EXPECT_GE(out[0].ret_data[1], 2u);
}

TEST_F(ApiTest, OneshotTimerFiresOnce) {
  ukevent t = Timer(0, 10'000'000, KEVENT_REQ_ONESHOT);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, t), 1);
  ukevent out[1];
  ASSERT_EQ(Get(out, 1, kForever), 1);
  EXPECT_EQ(out[0].ret_data[1], 1u);
  EXPECT_EQ(Get(out, 1, Ms(50)), 0);
  ukevent rm = Timer(0, 10'000'000);
  ASSERT_EQ(Ctl(KEVENT_CTL_REMOVE, rm), 1);
  EXPECT_EQ(rm.ret_flags, kBroken);  // already removed
}

TEST_F(ApiTest, MillionTimersArmedThenCancelledThroughTheApi) {
#ifdef KEV_SANITIZER
  constexpr uint32_t kCount = 100'000;
#else
  constexpr uint32_t kCount = 1'000'000;
#endif
  constexpr uint32_t kBatch = 4096;
  std::vector<ukevent> batch(kBatch);
  for (unsigned cmd : {KEVENT_CTL_ADD, KEVENT_CTL_REMOVE}) {
    for (uint32_t base = 0; base < kCount; base += kBatch) {
      const uint32_t n = std::min(kBatch, kCount - base);
      for (uint32_t i = 0; i < n; ++i) {
        batch[i] = Timer(3600 + (base + i) % 7, base + i);  // far in the future
        batch[i].user[0] = base + i;
      }
      ASSERT_EQ(kevent_ctl(fd_, cmd, n, batch.data()), static_cast<int>(n));
      const uint32_t want = cmd == KEVENT_CTL_ADD ? 0u : static_cast<uint32_t>(KEVENT_RET_DONE);
      for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(batch[i].ret_flags, want) << base + i;
    }
  }
  ukevent out[1];
  EXPECT_EQ(Get(out, 1), 0);
  ukevent gone = Timer(3600, 0);
  ASSERT_EQ(Ctl(KEVENT_CTL_REMOVE, gone), 1);
  EXPECT_EQ(gone.ret_flags, kBroken);
}

TEST_F(ApiTest, TimerMsClockIsMonotonicMilliseconds) {
  timespec before;
  clock_gettime(CLOCK_MONOTONIC, &before);
  ukevent t = Timer(0, 1'000'000, KEVENT_REQ_ONESHOT);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, t), 1);
  ukevent out[1];
  ASSERT_EQ(Get(out, 1, kForever), 1);
  timespec after;
  clock_gettime(CLOCK_MONOTONIC, &after);
  const uint32_t lo = static_cast<uint32_t>(before.tv_sec * 1000 + before.tv_nsec / 1'000'000);
  const uint32_t hi = static_cast<uint32_t>(after.tv_sec * 1000 + after.tv_nsec / 1'000'000);
  EXPECT_GE(out[0].ret_data[0] - lo, 1u);  // unsigned: robust to the 32-bit wrap
  EXPECT_LE(out[0].ret_data[0] - lo, hi - lo);
}

// --- Ring: kevent_wait / kevent_commit ----------------------------------------------------------

TEST_F(ApiTest, RingCallsWithoutARingAreEinval) {
  EXPECT_EQ(kevent_wait(fd_, 1, 0, kNoWait, 0), -EINVAL);
  EXPECT_EQ(kevent_commit(fd_, 0, 0), -EINVAL);
  EXPECT_EQ(kevent_wait(-1, 1, 0, kNoWait, 0), -EBADF);
  EXPECT_EQ(kevent_commit(-1, 0, 0), -EBADF);
}

class RingApiTest : public ::testing::Test {
 protected:
  static constexpr unsigned kNum = 8;
  void SetUp() override {
    fd_ = kevent_init(ring_.get(), kNum, 0);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override { kevent_close(fd_); }
  void AddReady(uint32_t id) {
    ukevent uk = Unotify(id, KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE | KEVENT_REQ_ONESHOT);
    ASSERT_EQ(kevent_ctl(fd_, KEVENT_CTL_ADD, 1, &uk), 1);
    ASSERT_EQ(uk.ret_flags, 0u);
  }
  RingMemory ring_{kNum};
  int fd_ = -1;
};

TEST_F(RingApiTest, CommitRejectsBadIndexesAndStaleOverflowCounts) {
  AddReady(1);
  ASSERT_EQ(kevent_wait(fd_, 1, 0, kNoWait, 0), 1);
  EXPECT_EQ(kevent_commit(fd_, kNum, 0), -EINVAL);
  EXPECT_EQ(kevent_commit(fd_, 5, 0), -EINVAL);  // beyond ring_kidx
  EXPECT_EQ(kevent_commit(fd_, 1, 7), -EOVERFLOW);
  EXPECT_EQ(kevent_commit(fd_, 1, 0), 1);
  EXPECT_EQ(kevent_wait(fd_, 1, 0, timespec{0, 1'000'000'000}, 0), -EINVAL);
  EXPECT_EQ(kevent_wait(fd_, 1, 0, kNoWait, 8), -EINVAL);
}

TEST_F(RingApiTest, WrapsAroundOverManyLapsWithoutLosingOrReordering) {
  uint32_t next_id = 1;
  uint32_t expect_id = 1;
  unsigned uidx = 0;
  for (int step = 0; step < 3000; ++step) {
    const unsigned batch = 1 + step % (kNum - 1);
    for (unsigned i = 0; i < batch; ++i) AddReady(next_id++);
    const int n = kevent_wait(fd_, kNum, uidx, kForever, 0);
    ASSERT_EQ(n, static_cast<int>(batch));
    for (int i = 0; i < n; ++i) {
      const ukevent& ev = ring_.get()->event[(uidx + i) % kNum];
      ASSERT_EQ(ev.id.raw[0], expect_id++);
      ASSERT_EQ(ev.ret_flags, static_cast<uint32_t>(KEVENT_RET_DONE));
    }
    const unsigned kidx = ring_.kidx();
    ASSERT_EQ(kidx, (uidx + batch) % kNum);
    ASSERT_EQ(kevent_commit(fd_, kidx, ring_.over()), n);
    uidx = kidx;
  }
  EXPECT_EQ(ring_.over(), (next_id - 1) / kNum);
}

TEST_F(RingApiTest, FullRingMarksCopyFailedAndNothingIsLost) {
  for (uint32_t id = 1; id <= kNum + 3; ++id) AddReady(id);
  ukevent out[kNum + 3];
  ASSERT_EQ(kevent_get_events(fd_, 1, kNum + 3, kNoWait, out, 0), static_cast<int>(kNum + 3));
  for (uint32_t i = 0; i < kNum + 3; ++i) {
    EXPECT_EQ(out[i].id.raw[0], i + 1);  // every event is in buf
    EXPECT_EQ((out[i].ret_flags & KEVENT_RET_COPY_FAILED) != 0, i >= kNum) << i;
  }
  for (uint32_t i = 0; i < kNum; ++i) EXPECT_EQ(ring_.get()->event[i].id.raw[0], i + 1);
  // Full: kevent_wait has no room, even with events ready.
  AddReady(100);
  EXPECT_EQ(kevent_wait(fd_, kNum, 0, kNoWait, 0), 0);
  // Drain: a full ring is freed in two commits (uidx itself names no slot).
  EXPECT_EQ(kevent_commit(fd_, kNum - 1, 0), static_cast<int>(kNum - 1));
  EXPECT_EQ(kevent_commit(fd_, 0, 0), 1);
  EXPECT_EQ(ring_.over(), 1u);
  ASSERT_EQ(kevent_wait(fd_, kNum, 0, kNoWait, 0), 1);
  EXPECT_EQ(ring_.get()->event[0].id.raw[0], 100u);
}

TEST_F(RingApiTest, WaitReturnsAtOnceWhenOldUidxIsStale) {
  AddReady(1);
  ASSERT_EQ(kevent_wait(fd_, 1, 0, kNoWait, 0), 1);
  ASSERT_EQ(kevent_commit(fd_, 1, 0), 1);
  const auto start = Clock::now();
  EXPECT_EQ(kevent_wait(fd_, 1, 0, kForever, 0), 0);  // caller thinks uidx is 0: it is 1
  EXPECT_LT(Clock::now() - start, milliseconds(2000));
}

TEST_F(RingApiTest, WaitCopiesAtMostNumAndTimesOut) {
  for (uint32_t id = 1; id <= 5; ++id) AddReady(id);
  EXPECT_EQ(kevent_wait(fd_, 2, 0, kNoWait, 0), 2);
  EXPECT_EQ(ring_.kidx(), 2u);
  EXPECT_EQ(kevent_wait(fd_, 0, 0, kNoWait, 0), 0);
  EXPECT_EQ(kevent_wait(fd_, 100, 0, kNoWait, 0), 3);  // num beyond the ring: what fits
  const auto start = Clock::now();
  EXPECT_EQ(kevent_wait(fd_, 1, 0, Ms(40), 0), 0);  // nothing ready
  EXPECT_GE(Clock::now() - start, milliseconds(40));
}

// --- close and the stubs ------------------------------------------------------------------------

TEST(CloseTest, EveryCallAfterCloseIsEbadf) {
  RingMemory ring(4);
  const int fd = kevent_init(ring.get(), 4, 0);
  ASSERT_GE(fd, 0);
  ukevent uk = Unotify(1, KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE);
  ASSERT_EQ(kevent_ctl(fd, KEVENT_CTL_ADD, 1, &uk), 1);
  ASSERT_EQ(kevent_close(fd), 0);
  ukevent out[1];
  EXPECT_EQ(kevent_ctl(fd, KEVENT_CTL_ADD, 1, &uk), -EBADF);
  EXPECT_EQ(kevent_get_events(fd, 1, 1, kNoWait, out, 0), -EBADF);
  EXPECT_EQ(kevent_wait(fd, 1, 0, kNoWait, 0), -EBADF);
  EXPECT_EQ(kevent_commit(fd, 0, 0), -EBADF);
  EXPECT_EQ(kevent_close(fd), -EBADF);
  EXPECT_EQ(fcntl(fd, F_GETFD), -1);  // the eventfd is closed too
}

TEST(CloseTest, FdNumberReusedAfterPlainCloseGetsAFreshQueue) {
  const int fd = kevent_init(nullptr, 0, 0);
  ASSERT_GE(fd, 0);
  ukevent uk = Unotify(1);
  ASSERT_EQ(kevent_ctl(fd, KEVENT_CTL_ADD, 1, &uk), 1);
  close(fd);  // wrong, but must not confuse the next queue that gets this number
  const int again = kevent_init(nullptr, 0, 0);
  ASSERT_EQ(again, fd);
  ukevent dup = Unotify(1);
  ASSERT_EQ(kevent_ctl(again, KEVENT_CTL_ADD, 1, &dup), 1);
  EXPECT_EQ(dup.ret_flags, 0u);  // not EEXIST: a fresh queue
  EXPECT_EQ(kevent_close(again), 0);
}

}  // namespace
