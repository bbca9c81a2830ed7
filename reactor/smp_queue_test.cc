#include "reactor/smp_queue.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace kev {
namespace {

// ---------------------------------------------------------------------------------------------
// Single-threaded tests: one thread plays every shard in turn, so each step is deterministic.

// Records what happened to it in shared counters; frees itself at the end of its life.
struct Log {
  std::vector<int> processed;  // ids, in Process() order
  std::vector<int> completed;  // ids, in Complete() order
  int discarded_unprocessed = 0;
  int discarded_processed = 0;
};

class LoggedMessage : public SmpMessage {
 public:
  LoggedMessage(Log* log, int id) : log_(log), id_(id) {}
  void Process() noexcept override { log_->processed.push_back(id_); }
  void Complete() noexcept override {
    log_->completed.push_back(id_);
    delete this;
  }
  void Discard(bool processed) noexcept override {
    ++(processed ? log_->discarded_processed : log_->discarded_unprocessed);
    delete this;
  }

 private:
  Log* log_;
  int id_;
};

class CountingWaker : public Waker {
 public:
  void Wake() noexcept override { wakes.fetch_add(1); }
  std::atomic<int> wakes{0};
};

TEST(SmpMessageMatrixTest, RejectsBadArguments) {
  EXPECT_THROW(SmpMessageMatrix(0), std::invalid_argument);
  EXPECT_THROW(SmpMessageMatrix(2, 3), std::invalid_argument);
}

TEST(SmpMessageMatrixTest, RoundTripProcessesOnTargetAndCompletesOnSource) {
  SmpMessageMatrix m(2, 8);
  Log log;
  m.Send(0, 1, new LoggedMessage(&log, 7));
  EXPECT_TRUE(m.HasStaged(0));
  EXPECT_FALSE(m.HasIncoming(1));  // Staged only: not visible before Flush.
  EXPECT_EQ(m.Poll(1), 0u);

  EXPECT_EQ(m.Flush(0), 1u);
  EXPECT_TRUE(m.HasIncoming(1));
  EXPECT_EQ(m.Poll(1), 1u);
  EXPECT_EQ(log.processed, std::vector<int>{7});
  EXPECT_TRUE(log.completed.empty());
  EXPECT_EQ(m.Outstanding(0), 1u);

  EXPECT_EQ(m.Flush(1), 1u);  // The reply.
  EXPECT_EQ(m.Poll(0), 1u);
  EXPECT_EQ(log.completed, std::vector<int>{7});
  EXPECT_EQ(m.Outstanding(0), 0u);

  const SmpCounters c0 = m.Counters(0);
  const SmpCounters c1 = m.Counters(1);
  EXPECT_EQ(c0.messages_sent, 1u);
  EXPECT_EQ(c0.replies_completed, 1u);
  EXPECT_EQ(c1.messages_received, 1u);
  EXPECT_EQ(c1.messages_sent, 0u);
}

TEST(SmpMessageMatrixTest, SendToSelfGoesThroughItsOwnRing) {
  SmpMessageMatrix m(1, 4);
  Log log;
  m.Send(0, 0, new LoggedMessage(&log, 1));
  m.Flush(0);
  m.Poll(0);
  m.Flush(0);
  m.Poll(0);
  EXPECT_EQ(log.processed, std::vector<int>{1});
  EXPECT_EQ(log.completed, std::vector<int>{1});
}

// Ring of 4, 50 messages: Flush publishes what fits, the rest waits staged, in order.
TEST(SmpMessageMatrixTest, FullRingKeepsMessagesStagedInOrder) {
  SmpMessageMatrix m(2, 4);
  Log log;
  constexpr int kCount = 50;
  for (int i = 0; i < kCount; ++i) m.Send(0, 1, new LoggedMessage(&log, i));
  EXPECT_EQ(m.Flush(0), 4u);
  EXPECT_EQ(m.Flush(0), 0u);  // Still full: nothing lost, nothing published.
  EXPECT_GE(m.Counters(0).ring_full, 2u);
  EXPECT_TRUE(m.HasStaged(0));

  int turns = 0;
  while (m.Outstanding(0) != 0) {
    ASSERT_LT(++turns, 1000) << "no progress";
    m.Poll(1);
    m.Flush(1);
    m.Poll(0);
    m.Flush(0);
  }
  ASSERT_EQ(log.processed.size(), static_cast<std::size_t>(kCount));
  ASSERT_EQ(log.completed.size(), static_cast<std::size_t>(kCount));
  for (int i = 0; i < kCount; ++i) {
    EXPECT_EQ(log.processed[i], i);
    EXPECT_EQ(log.completed[i], i);
  }
  EXPECT_FALSE(m.HasStaged(0));
  EXPECT_FALSE(m.HasStaged(1));
}

TEST(SmpMessageMatrixTest, PublishingWakesASleepingTargetOnce) {
  SmpMessageMatrix m(3, 8);
  CountingWaker w0, w1, w2;
  m.SetWaker(0, &w0);
  m.SetWaker(1, &w1);
  m.SetWaker(2, &w2);
  Log log;

  // Awake target: no wake-up (that would be a wasted syscall in the reactor).
  m.Send(0, 1, new LoggedMessage(&log, 1));
  m.Flush(0);
  EXPECT_EQ(w1.wakes.load(), 0);
  m.Poll(1);
  m.Flush(1);
  m.Poll(0);

  ASSERT_TRUE(m.TryEnterSleep(1));
  EXPECT_EQ(m.Counters(1).sleeps, 1u);
  m.Send(0, 1, new LoggedMessage(&log, 2));
  m.Flush(0);
  EXPECT_EQ(w1.wakes.load(), 1);
  EXPECT_EQ(m.Counters(0).wakeups_sent, 1u);
  // A second publisher before the sleeper has run: the first Wake() is still pending, no
  // second one.
  m.Send(2, 1, new LoggedMessage(&log, 3));
  m.Flush(2);
  EXPECT_EQ(w1.wakes.load(), 1);
  EXPECT_EQ(m.Counters(2).wakeups_sent, 0u);
  m.ExitSleep(1);

  // With work pending, the sleeper is refused.
  EXPECT_FALSE(m.TryEnterSleep(1));
  m.ExitSleep(1);
  m.Poll(1);
  // Replies are pending staged; TryEnterSleep flushes them and then may sleep.
  EXPECT_TRUE(m.TryEnterSleep(1));
  m.ExitSleep(1);
  EXPECT_EQ(w0.wakes.load(), 0);  // Shards 0 and 2 never slept.
  EXPECT_EQ(w2.wakes.load(), 0);
  m.Poll(0);
  m.Poll(2);
  EXPECT_EQ(log.completed.size(), 3u);
}

TEST(SmpMessageMatrixTest, ShardWithoutWakerNeverSleeps) {
  SmpMessageMatrix m(2, 8);
  EXPECT_FALSE(m.TryEnterSleep(0));
  m.ExitSleep(0);
}

// Shard 1 has replies staged behind a full reply ring and goes to sleep; shard 0 draining its
// replies frees the space, which must wake shard 1 (nobody else would).
TEST(SmpMessageMatrixTest, FreeingSpaceWakesABlockedProducer) {
  SmpMessageMatrix m(2, 4);
  CountingWaker w0, w1;
  m.SetWaker(0, &w0);
  m.SetWaker(1, &w1);
  Log log;
  for (int i = 0; i < 8; ++i) m.Send(0, 1, new LoggedMessage(&log, i));
  m.Flush(0);  // 4 requests published.
  m.Poll(1);
  m.Flush(1);  // 4 replies published: reply ring 1->0 is full (shard 0 does not poll yet).
  m.Flush(0);  // 4 more requests.
  m.Poll(1);
  EXPECT_EQ(m.Flush(1), 0u);  // 4 replies stuck.
  ASSERT_TRUE(m.HasStaged(1));
  ASSERT_TRUE(m.TryEnterSleep(1));  // Nothing incoming, ring still full: may block.

  EXPECT_EQ(m.Poll(0), 4u);
  m.Flush(0);
  EXPECT_EQ(w1.wakes.load(), 1);
  m.ExitSleep(1);
  EXPECT_EQ(m.Flush(1), 4u);
  EXPECT_EQ(m.Poll(0), 4u);
  EXPECT_EQ(log.completed.size(), 8u);
}

TEST(SmpMessageMatrixTest, TryEnterSleepFlushesFirst) {
  SmpMessageMatrix m(2, 2);
  CountingWaker w0, w1;
  m.SetWaker(0, &w0);
  m.SetWaker(1, &w1);
  Log log;
  for (int i = 0; i < 3; ++i) m.Send(0, 1, new LoggedMessage(&log, i));
  m.Flush(0);  // 2 published, 1 staged.
  m.Poll(1);   // Frees the ring; shard 0 has not flushed since.
  ASSERT_TRUE(m.TryEnterSleep(1));  // Publishes the two replies, then sleeps.
  EXPECT_EQ(m.Poll(0), 2u);         // Shard 1 is not blocked: freeing space wakes nobody.
  EXPECT_EQ(w1.wakes.load(), 0);
  // Shard 0's own flush inside TryEnterSleep publishes the third message (and wakes shard 1),
  // so shard 0 sleeps with nothing staged rather than "blocked".
  EXPECT_TRUE(m.TryEnterSleep(0));
  EXPECT_FALSE(m.HasStaged(0));
  EXPECT_EQ(w1.wakes.load(), 1);
  m.ExitSleep(0);
  m.ExitSleep(1);
}

// Shutdown with messages at every stage of their trip: each is discarded once, with the right
// `processed` flag, counted against its source; ASan's leak check proves every one was freed.
TEST(SmpMessageMatrixTest, DiscardAllReleasesMessagesAtEveryStage) {
  Log log;
  {
    SmpMessageMatrix m(2, 4);
    for (int i = 0; i < 4; ++i) m.Send(0, 1, new LoggedMessage(&log, i));
    m.Flush(0);
    m.Poll(1);   // 4 processed, replies staged on shard 1.
    m.Flush(1);  // ... and now in the reply ring 1->0.
    for (int i = 4; i < 8; ++i) m.Send(0, 1, new LoggedMessage(&log, i));
    m.Flush(0);  // 4 in the request ring 0->1.
    m.Poll(1);   // processed; replies staged (the reply ring is full).
    m.Flush(1);
    for (int i = 8; i < 11; ++i) m.Send(0, 1, new LoggedMessage(&log, i));
    m.Flush(0);  // 3 in the request ring.
    m.Send(0, 1, new LoggedMessage(&log, 11));  // staged on shard 0
    m.Send(1, 0, new LoggedMessage(&log, 12));  // staged on shard 1

    EXPECT_EQ(m.DiscardAll(), 13u);
    EXPECT_EQ(log.discarded_processed, 8);
    EXPECT_EQ(log.discarded_unprocessed, 5);
    EXPECT_EQ(m.Counters(0).discarded, 12u);
    EXPECT_EQ(m.Counters(1).discarded, 1u);
    EXPECT_EQ(m.Outstanding(0), 0u);
    EXPECT_EQ(m.Outstanding(1), 0u);
    EXPECT_FALSE(m.HasIncoming(0));
    EXPECT_FALSE(m.HasIncoming(1));
    EXPECT_EQ(m.DiscardAll(), 0u);

    // The matrix stays usable after a discard.
    m.Send(0, 1, new LoggedMessage(&log, 13));
    m.Flush(0);
    m.Poll(1);
    m.Flush(1);
    m.Poll(0);
    EXPECT_EQ(log.completed, std::vector<int>{13});
    m.Send(1, 0, new LoggedMessage(&log, 14));  // Left for the destructor.
  }
  EXPECT_EQ(log.discarded_unprocessed, 6);
}

// ---------------------------------------------------------------------------------------------
// Multi-threaded tests: one std::thread per shard, each running the loop a reactor would run.

thread_local int tls_shard = -1;

// Blocks on a condition variable; Wake() latches in `pending_` so a wake-up that arrives
// between TryEnterSleep() and Block() is not lost.
class CondvarWaker : public Waker {
 public:
  void Wake() noexcept override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_ = true;
    }
    cv_.notify_one();
  }
  // Returns false if `timeout` passed with no Wake().
  bool Block(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    const bool woken = cv_.wait_for(lock, timeout, [this] { return pending_; });
    pending_ = false;
    return woken;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false;
};

struct World;

struct ShardData {
  // Touched only by the owning shard's thread.
  std::vector<std::uint64_t> next_processed;  // [source]: seq expected next from that source
  std::vector<std::uint64_t> next_completed;  // [target]: seq expected to complete next
  CondvarWaker waker;
};

struct World {
  World(unsigned shards, std::size_t capacity) : matrix(shards, capacity), data(shards) {
    for (unsigned i = 0; i < shards; ++i) {
      data[i].next_processed.assign(shards, 0);
      data[i].next_completed.assign(shards, 0);
      matrix.SetWaker(i, &data[i].waker);
    }
  }
  SmpMessageMatrix matrix;
  std::vector<ShardData> data;
  std::atomic<int> errors{0};
  std::atomic<int> lost_wakeups{0};
  std::atomic<unsigned> finished{0};
};

class PairMessage : public SmpMessage {
 public:
  PairMessage(World* w, unsigned from, unsigned to, std::uint64_t seq)
      : w_(w), from_(from), to_(to), seq_(seq) {}
  void Process() noexcept override {
    std::uint64_t& next = w_->data[to_].next_processed[from_];
    if (tls_shard != static_cast<int>(to_) || seq_ != next) w_->errors.fetch_add(1);
    next = seq_ + 1;
    processed_ = true;
  }
  void Complete() noexcept override {
    std::uint64_t& next = w_->data[from_].next_completed[to_];
    if (tls_shard != static_cast<int>(from_) || seq_ != next || !processed_) {
      w_->errors.fetch_add(1);
    }
    next = seq_ + 1;
    delete this;
  }
  void Discard(bool) noexcept override {
    w_->errors.fetch_add(1);  // Nothing may be left in flight in these tests.
    delete this;
  }

 private:
  World* w_;
  unsigned from_, to_;
  std::uint64_t seq_;
  bool processed_ = false;
};

// The shard loop: send `per_pair` messages to every shard (self included) in bursts of
// `burst`, poll, flush, sleep whenever idle; stop when every shard has all its replies.
void RunShard(World& w, unsigned self, std::uint64_t per_pair, std::uint64_t burst) {
  tls_shard = static_cast<int>(self);
  SmpMessageMatrix& m = w.matrix;
  const unsigned n = m.shard_count();
  std::uint64_t sent = 0;  // per target
  bool counted = false;
  while (true) {
    if (sent < per_pair) {
      const std::uint64_t end = std::min(per_pair, sent + burst);
      for (unsigned to = 0; to < n; ++to) {
        for (std::uint64_t s = sent; s < end; ++s) m.Send(self, to, new PairMessage(&w, self, to, s));
      }
      sent = end;
    }
    m.Poll(self);
    m.Flush(self);
    if (!counted && sent == per_pair && m.Outstanding(self) == 0) {
      counted = true;
      if (w.finished.fetch_add(1) + 1 == n) {
        for (ShardData& d : w.data) d.waker.Wake();  // Let the sleepers see we are done.
      }
    }
    if (w.finished.load() == n) break;
    // Keep sending without sleeping; sleep only when the burst schedule is done.
    if (sent == per_pair && m.TryEnterSleep(self)) {
      // A wake-up lost by the protocol would leave work pending here forever; 10 s is far above
      // any scheduling delay, so a timeout with work pending is a lost wake-up, not noise.
      if (!w.data[self].waker.Block(std::chrono::seconds(10)) && m.HasIncoming(self)) {
        w.lost_wakeups.fetch_add(1);
      }
    }
    m.ExitSleep(self);
  }
}

void RunWorld(unsigned shards, std::size_t capacity, std::uint64_t per_pair,
              std::uint64_t burst) {
  World w(shards, capacity);
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < shards; ++i) {
    threads.emplace_back(RunShard, std::ref(w), i, per_pair, burst);
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(w.errors.load(), 0);
  EXPECT_EQ(w.lost_wakeups.load(), 0);
  for (unsigned i = 0; i < shards; ++i) {
    const SmpCounters c = w.matrix.Counters(i);
    EXPECT_EQ(c.messages_sent, per_pair * shards) << "shard " << i;
    EXPECT_EQ(c.replies_completed, per_pair * shards) << "shard " << i;
    EXPECT_EQ(c.messages_received, per_pair * shards) << "shard " << i;
    EXPECT_EQ(c.discarded, 0u);
    // Every shard reached every other: next_processed[k] counts messages from k.
    for (unsigned k = 0; k < shards; ++k) {
      EXPECT_EQ(w.data[i].next_processed[k], per_pair) << i << " from " << k;
      EXPECT_EQ(w.data[i].next_completed[k], per_pair) << i << " to " << k;
    }
  }
  EXPECT_EQ(w.matrix.DiscardAll(), 0u);
}

#ifdef KEV_SANITIZER
constexpr std::uint64_t kScale = 2;
#else
constexpr std::uint64_t kScale = 10;
#endif

TEST(SmpMessageMatrixThreadsTest, FourShardsAllPairsInOrder) {
  RunWorld(/*shards=*/4, /*capacity=*/64, /*per_pair=*/5'000 * kScale, /*burst=*/100);
}

TEST(SmpMessageMatrixThreadsTest, TinyRingsBackpressureLosesNothing) {
  RunWorld(/*shards=*/3, /*capacity=*/2, /*per_pair=*/5'000 * kScale, /*burst=*/1'000);
}

// Two shards that sleep whenever idle, many small bursts: every burst must wake the receiver
// that went to sleep after the previous one. A lost wake-up shows as a timed-out Block() with
// work pending (or a test timeout).
TEST(SmpMessageMatrixThreadsTest, SleepingReceiverIsAlwaysWoken) {
  constexpr std::uint64_t kRounds = 2'000 * kScale;
  World w(2, 16);
  std::thread receiver([&] {
    tls_shard = 1;
    while (w.finished.load() == 0) {
      w.matrix.Poll(1);
      w.matrix.Flush(1);
      if (w.matrix.TryEnterSleep(1)) {
        if (!w.data[1].waker.Block(std::chrono::seconds(10)) && w.matrix.HasIncoming(1)) {
          w.lost_wakeups.fetch_add(1);
        }
      }
      w.matrix.ExitSleep(1);
    }
  });
  tls_shard = 0;
  for (std::uint64_t round = 0; round < kRounds; ++round) {
    const std::uint64_t burst = 1 + round % 5;
    for (std::uint64_t i = 0; i < burst; ++i) {
      w.matrix.Send(0, 1, new PairMessage(&w, 0, 1, w.matrix.Counters(0).messages_sent));
    }
    // Wait for the replies, sleeping too, so the receiver is idle (and usually asleep) when the
    // next burst arrives.
    while (w.matrix.Outstanding(0) != 0) {
      w.matrix.Poll(0);
      w.matrix.Flush(0);
      if (w.matrix.Outstanding(0) != 0 && w.matrix.TryEnterSleep(0)) {
        if (!w.data[0].waker.Block(std::chrono::seconds(10)) && w.matrix.HasIncoming(0)) {
          w.lost_wakeups.fetch_add(1);
        }
      }
      w.matrix.ExitSleep(0);
    }
  }
  w.finished.store(1);
  w.data[1].waker.Wake();
  receiver.join();
  EXPECT_EQ(w.errors.load(), 0);
  EXPECT_EQ(w.lost_wakeups.load(), 0);
  EXPECT_EQ(w.data[1].next_processed[0], w.matrix.Counters(0).messages_sent);
  EXPECT_EQ(w.matrix.Counters(1).messages_received, w.matrix.Counters(0).messages_sent);
  // Not asserted (scheduling-dependent): how often each side actually slept. Printed so a
  // reader can see the protocol was exercised.
  std::printf("receiver sleeps=%llu, wake-ups sent by shard 0=%llu\n",
              static_cast<unsigned long long>(w.matrix.Counters(1).sleeps),
              static_cast<unsigned long long>(w.matrix.Counters(0).wakeups_sent));
}

}  // namespace
}  // namespace kev
