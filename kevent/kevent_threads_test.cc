// The C API with several threads: wake-one vs WAKEUP_ALL, READY num == 0, close while waiting,
// commit races, timers fired by waiting threads, and a producer/consumer stress for TSan.
#include <pthread.h>

#include <atomic>
#include <barrier>
#include <cerrno>
#include <chrono>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kevent/internal/kevent_testing.h"
#include "kevent/internal/ukevent_builders.h"
#include "kevent/kevent.h"

namespace {

using kev::kevent_internal::BlockedWaitersForTesting;

using kev::kevent_testing::kForever;
using kev::kevent_testing::kNoWait;
using kev::kevent_testing::Unotify;

// A sub-second TIMER request carrying `user`.
ukevent Timer(uint32_t nsec, uint32_t flags, uint32_t user) {
  return kev::kevent_testing::Timer(0, nsec, flags, user);
}

// Waits (without a time bound that could flake) until `n` threads are blocked in `fd`.
void AwaitBlocked(int fd, int n) {
  while (BlockedWaitersForTesting(fd) != n)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

class ThreadsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fd_ = kevent_init(nullptr, 0, 0);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override {
    if (fd_ >= 0) kevent_close(fd_);
  }
  int fd_ = -1;
};

TEST_F(ThreadsTest, InfiniteWaitReturnsWhenAnotherThreadReadies) {
  ukevent uk = Unotify(1);
  ASSERT_EQ(kevent_ctl(fd_, KEVENT_CTL_ADD, 1, &uk), 1);
  int got = 0;
  ukevent out[2];
  std::thread waiter([&] { got = kevent_get_events(fd_, 1, 2, kForever, out, 0); });
  AwaitBlocked(fd_, 1);
  ukevent ready = Unotify(1);
  ready.ret_data[0] = 99;
  ASSERT_EQ(kevent_ctl(fd_, KEVENT_CTL_READY, 1, &ready), 1);
  waiter.join();
  ASSERT_EQ(got, 1);
  EXPECT_EQ(out[0].ret_data[0], 99u);
}

// Four threads wait for one event each. A plain event wakes one of them; a WAKEUP_ALL event
// wakes all four: one returns it, the other three return 0.
TEST_F(ThreadsTest, WakeOneVersusWakeupAll) {
  ukevent plain = Unotify(1);
  ukevent all = Unotify(2, KEVENT_REQ_WAKEUP_ALL);
  ASSERT_EQ(kevent_ctl(fd_, KEVENT_CTL_ADD, 1, &plain), 1);
  ASSERT_EQ(kevent_ctl(fd_, KEVENT_CTL_ADD, 1, &all), 1);

  for (uint32_t id : {1u, 2u}) {
    std::atomic<int> returned{0}, with_event{0}, with_zero{0}, with_ebadf{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&] {
        ukevent out[1];
        const int n = kevent_get_events(fd_, 1, 1, kForever, out, 0);
        (n == 1 ? with_event : n == 0 ? with_zero : with_ebadf).fetch_add(1);
        returned.fetch_add(1);
      });
    }
    AwaitBlocked(fd_, 4);
    ukevent ready = Unotify(id);
    ASSERT_EQ(kevent_ctl(fd_, KEVENT_CTL_READY, 1, &ready), 1);
    if (id == 1) {
      while (returned.load() < 1) std::this_thread::yield();
      AwaitBlocked(fd_, 3);  // the other three are still waiting
      EXPECT_EQ(with_event.load(), 1);
      // Release them with three more events: each takes exactly one.
      for (int i = 0; i < 3; ++i) {
        ukevent more = Unotify(1);
        ASSERT_EQ(kevent_ctl(fd_, KEVENT_CTL_READY, 1, &more), 1);
        while (returned.load() < 2 + i) std::this_thread::yield();
      }
      for (auto& t : threads) t.join();
      EXPECT_EQ(with_event.load(), 4);
      EXPECT_EQ(with_zero.load(), 0);
    } else {
      for (auto& t : threads) t.join();
      EXPECT_EQ(with_event.load(), 1);
      EXPECT_EQ(with_zero.load(), 3);
    }
    EXPECT_EQ(with_ebadf.load(), 0);
  }
}

TEST_F(ThreadsTest, ReadyWithNumZeroWakesExactlyOneWaiterWhichReturnsZero) {
  std::atomic<int> zeros{0}, ebadf{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&] {
      ukevent out[1];
      const int n = kevent_get_events(fd_, 1, 1, kForever, out, 0);
      (n == 0 ? zeros : n == -EBADF ? ebadf : other).fetch_add(1);
    });
  }
  AwaitBlocked(fd_, 2);
  ASSERT_EQ(kevent_ctl(fd_, KEVENT_CTL_READY, 0, nullptr), 0);
  while (zeros.load() < 1) std::this_thread::yield();
  AwaitBlocked(fd_, 1);
  EXPECT_EQ(zeros.load(), 1);
  kevent_close(fd_);  // the other one returns -EBADF
  for (auto& t : threads) t.join();
  fd_ = -1;
  EXPECT_EQ(zeros.load(), 1);
  EXPECT_EQ(ebadf.load(), 1);
  EXPECT_EQ(other.load(), 0);
}

TEST_F(ThreadsTest, ReadyWithNumZeroAndNobodyWaitingInterruptsTheNextWait) {
  ASSERT_EQ(kevent_ctl(fd_, KEVENT_CTL_READY, 0, nullptr), 0);
  ukevent out[1];
  EXPECT_EQ(kevent_get_events(fd_, 1, 1, kForever, out, 0), 0);
  // Only one: the next wait times out normally.
  EXPECT_EQ(kevent_get_events(fd_, 1, 1, timespec{0, 20'000'000}, out, 0), 0);
}

TEST_F(ThreadsTest, CloseWakesEveryWaiterWithEbadf) {
  std::vector<char> mem(sizeof(kevent_ring) + 4 * sizeof(ukevent));
  const int fd = kevent_init(reinterpret_cast<kevent_ring*>(mem.data()), 4, 0);
  ASSERT_GE(fd, 0);
  std::atomic<int> ebadf{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      ukevent out[1];
      const int n = i == 0 ? kevent_wait(fd, 1, 0, kForever, 0)
                           : kevent_get_events(fd, 1, 1, kForever, out, 0);
      if (n == -EBADF) ebadf.fetch_add(1);
    });
  }
  AwaitBlocked(fd, 3);
  EXPECT_EQ(kevent_close(fd), 0);
  for (auto& t : threads) t.join();
  EXPECT_EQ(ebadf.load(), 3);
}

TEST(ThreadsRaceTest, CloseWhileOtherThreadsUseTheQueueNeverCrashes) {
#ifdef KEV_SANITIZER
  constexpr int kRounds = 30;
#else
  constexpr int kRounds = 200;
#endif
  for (int round = 0; round < kRounds; ++round) {
    std::vector<char> mem(sizeof(kevent_ring) + 4 * sizeof(ukevent));
    const int fd = kevent_init(reinterpret_cast<kevent_ring*>(mem.data()), 4, 0);
    ASSERT_GE(fd, 0);
    std::atomic<bool> stop{false};
    std::vector<std::thread> users;
    for (int t = 0; t < 3; ++t) {
      users.emplace_back([&, t] {
        uint32_t id = t * 1'000'000;
        while (!stop.load(std::memory_order_relaxed)) {
          ukevent uk = Unotify(++id, KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE);
          int rc = kevent_ctl(fd, KEVENT_CTL_ADD, 1, &uk);
          ukevent out[4];
          int n = kevent_get_events(fd, 1, 4, timespec{0, 100'000}, out, 0);
          int w = kevent_wait(fd, 2, 0, kNoWait, 0);
          int c = kevent_commit(fd, 1, 0);
          // Either it worked or the queue is gone; nothing else.
          EXPECT_TRUE(rc == 1 || rc == -EBADF) << rc;
          EXPECT_TRUE(n >= 0 || n == -EBADF) << n;
          EXPECT_TRUE(w >= 0 || w == -EBADF) << w;
          EXPECT_TRUE(c >= 0 || c == -EBADF || c == -EINVAL || c == -EOVERFLOW) << c;
          if (rc == -EBADF) break;
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200 + 50 * (round % 10)));
    ASSERT_EQ(kevent_close(fd), 0);
    stop.store(true);
    for (auto& t : users) t.join();
  }
}

// Both threads saw the same ring state after a wrap and commit the same slots: one frees
// them, the other frees nothing. Repeated to give the race many chances.
TEST(ThreadsRaceTest, TwoThreadsCommittingTheSameSlotsAfterAWrapOnlyOneWins) {
  constexpr unsigned kNum = 4;
  std::vector<char> mem(sizeof(kevent_ring) + kNum * sizeof(ukevent));
  auto* ring = reinterpret_cast<kevent_ring*>(mem.data());
  const int fd = kevent_init(ring, kNum, 0);
  ASSERT_GE(fd, 0);
  uint32_t id = 0;
  unsigned uidx = 0;
  for (int round = 0; round < 300; ++round) {
    // Move uidx to kNum - 1, then write 2 events so that they wrap: slots 3 and 0.
    const unsigned to_end = (kNum - 1 + kNum - uidx) % kNum;
    for (unsigned i = 0; i < to_end; ++i) {
      ukevent uk = Unotify(++id, KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE | KEVENT_REQ_ONESHOT);
      ASSERT_EQ(kevent_ctl(fd, KEVENT_CTL_ADD, 1, &uk), 1);
    }
    if (to_end > 0) {
      ASSERT_EQ(kevent_wait(fd, kNum, uidx, kNoWait, 0), static_cast<int>(to_end));
      const unsigned over = std::atomic_ref<unsigned>(ring->ring_over).load();
      ASSERT_EQ(kevent_commit(fd, kNum - 1, over), static_cast<int>(to_end));
    }
    for (int i = 0; i < 2; ++i) {
      ukevent uk = Unotify(++id, KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE | KEVENT_REQ_ONESHOT);
      ASSERT_EQ(kevent_ctl(fd, KEVENT_CTL_ADD, 1, &uk), 1);
    }
    ASSERT_EQ(kevent_wait(fd, kNum, kNum - 1, kNoWait, 0), 2);
    const unsigned kidx = std::atomic_ref<unsigned>(ring->ring_kidx).load();
    const unsigned over = std::atomic_ref<unsigned>(ring->ring_over).load();
    ASSERT_EQ(kidx, 1u);
    int freed[2] = {-100, -100};
    std::barrier sync(2);
    std::thread a([&] {
      sync.arrive_and_wait();
      freed[0] = kevent_commit(fd, kidx, over);
    });
    std::thread b([&] {
      sync.arrive_and_wait();
      freed[1] = kevent_commit(fd, kidx, over);
    });
    a.join();
    b.join();
    ASSERT_EQ(freed[0] + freed[1], 2) << freed[0] << " " << freed[1];
    ASSERT_TRUE(freed[0] == 0 || freed[1] == 0);
    ASSERT_EQ(std::atomic_ref<unsigned>(ring->ring_over).load(), over + 1);
    uidx = kidx;
  }
  kevent_close(fd);
}

TEST(ThreadsRingTest, KeventWaitBlocksUntilTheRingHasRoom) {
  constexpr unsigned kNum = 2;
  std::vector<char> mem(sizeof(kevent_ring) + kNum * sizeof(ukevent));
  auto* ring = reinterpret_cast<kevent_ring*>(mem.data());
  const int fd = kevent_init(ring, kNum, 0);
  ASSERT_GE(fd, 0);
  for (uint32_t i = 1; i <= 3; ++i) {
    ukevent uk = Unotify(i, KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE | KEVENT_REQ_ONESHOT);
    ASSERT_EQ(kevent_ctl(fd, KEVENT_CTL_ADD, 1, &uk), 1);
  }
  ASSERT_EQ(kevent_wait(fd, kNum, 0, kNoWait, 0), 2);  // full now, one event still ready
  int copied = -1;
  std::thread waiter([&] { copied = kevent_wait(fd, kNum, 0, kForever, 0); });
  AwaitBlocked(fd, 1);
  ASSERT_EQ(kevent_commit(fd, 1, 0), 1);
  waiter.join();
  EXPECT_EQ(copied, 1);
  EXPECT_EQ(ring->event[0].id.raw[0], 3u);
  kevent_close(fd);
}

// Three threads wait forever; three one-shot timers fire at different times. The thread that
// watches the timers changes as threads leave, and every timer is still fired.
TEST_F(ThreadsTest, TimersFireWhileSeveralThreadsWait) {
  std::atomic<int> got{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&] {
      ukevent out[1];
      if (kevent_get_events(fd_, 1, 1, kForever, out, 0) == 1 && out[0].type == KEVENT_TIMER) {
        got.fetch_add(1);
      }
    });
  }
  AwaitBlocked(fd_, 3);
  for (uint32_t i = 1; i <= 3; ++i) {
    ukevent t = Timer(i * 15'000'000, KEVENT_REQ_ONESHOT, i);
    ASSERT_EQ(kevent_ctl(fd_, KEVENT_CTL_ADD, 1, &t), 1);
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(got.load(), 3);
}

// Producers add one-shot ready events, consumers take them: every event exactly once.
TEST_F(ThreadsTest, ProducersAndConsumersDeliverEveryEventExactlyOnce) {
#ifdef KEV_SANITIZER
  constexpr uint32_t kPerProducer = 2000;
#else
  constexpr uint32_t kPerProducer = 20000;
#endif
  constexpr int kProducers = 2;
  constexpr int kConsumers = 3;
  const uint32_t total = kPerProducer * kProducers;
  std::atomic<uint32_t> taken{0};
  std::vector<std::vector<uint32_t>> seen(kConsumers);
  std::vector<std::thread> threads;
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      ukevent out[16];
      while (taken.load() < total) {
        const int n = kevent_get_events(fd_, 1, 16, timespec{0, 5'000'000}, out, 0);
        ASSERT_GE(n, 0);
        for (int i = 0; i < n; ++i) seen[c].push_back(out[i].id.raw[0]);
        taken.fetch_add(n);
      }
    });
  }
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (uint32_t i = 0; i < kPerProducer; ++i) {
        ukevent uk = Unotify(p * kPerProducer + i,
                             KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE | KEVENT_REQ_ONESHOT);
        ASSERT_EQ(kevent_ctl(fd_, KEVENT_CTL_ADD, 1, &uk), 1);
        ASSERT_EQ(uk.ret_flags, 0u);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<uint32_t> all;
  size_t count = 0;
  for (const auto& v : seen) {
    count += v.size();
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(count, total);
  EXPECT_EQ(all.size(), total);
}

}  // namespace
