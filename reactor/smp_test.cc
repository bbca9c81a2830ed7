#include "reactor/smp.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "reactor/combinators.h"
#include "reactor/future.h"
#include "reactor/reactor.h"
#include "reactor/timer.h"

namespace kev {
namespace {

using std::chrono::milliseconds;

constexpr unsigned kShards = 2;

class SmpTest : public ::testing::TestWithParam<PollerBackend> {
 protected:
  SmpOptions Options() const {
    SmpOptions o;
    o.shards = kShards;
    o.backend = GetParam();
    return o;
  }
};

TEST_P(SmpTest, ShardsRunPinnedOnDistinctCpusWithTheirOwnReactor) {
  Smp smp(Options());
  ASSERT_EQ(smp.shard_count(), kShards);
  EXPECT_NE(smp.placement()[0].cpu, smp.placement()[1].cpu);
  std::vector<int> cpus = smp.Run([]() -> Future<std::vector<int>> {
    EXPECT_EQ(this_shard_id(), 0u);
    EXPECT_EQ(smp_count(), kShards);
    std::vector<int> cpus;
    for (unsigned s = 0; s < smp_count(); ++s) {
      cpus.push_back(co_await SubmitTo(s, [s] {
        EXPECT_EQ(this_shard_id(), s);
        EXPECT_EQ(Reactor::Current().shard_id(), s);
        return sched_getcpu();
      }));
    }
    co_return cpus;
  });
  for (unsigned s = 0; s < kShards; ++s) {
    EXPECT_EQ(cpus[s], static_cast<int>(smp.placement()[s].cpu)) << "shard " << s;
  }
}

TEST_P(SmpTest, EveryShardReachesEveryOther) {
  Smp smp(Options());
  std::vector<unsigned> reached = smp.Run([]() -> Future<std::vector<unsigned>> {
    // Each shard asks every shard (itself included) for its id; the answers come back as
    // from * 10 + to.
    std::vector<Future<std::vector<unsigned>>> per_source;
    for (unsigned from = 0; from < smp_count(); ++from) {
      per_source.push_back(SubmitTo(from, []() -> Future<std::vector<unsigned>> {
        std::vector<unsigned> got;
        for (unsigned to = 0; to < smp_count(); ++to) {
          unsigned id = co_await SubmitTo(to, [] { return this_shard_id(); });
          got.push_back(this_shard_id() * 10 + id);
        }
        co_return got;
      }));
    }
    std::vector<unsigned> all;
    for (auto& f : per_source) {
      for (unsigned v : co_await std::move(f)) all.push_back(v);
    }
    co_return all;
  });
  EXPECT_EQ(reached, (std::vector<unsigned>{0, 1, 10, 11}));
}

TEST_P(SmpTest, CallsBetweenAPairStartInSubmissionOrder) {
  constexpr int kCalls = 20000;
  Smp smp(Options());
  // Both directions at once; each target appends to a vector only it touches.
  std::vector<int> seen[kShards];
  smp.Run([&]() -> Future<void> {
    co_await InvokeOnAll([&]() -> Future<void> {
      const unsigned peer = 1 - this_shard_id();
      std::vector<Future<void>> calls;
      calls.reserve(kCalls);
      for (int i = 0; i < kCalls; ++i) {
        calls.push_back(SubmitTo(peer, [&seen, i] { seen[this_shard_id()].push_back(i); }));
      }
      co_await WhenAll(std::move(calls));
    });
  });
  for (unsigned s = 0; s < kShards; ++s) {
    ASSERT_EQ(seen[s].size(), static_cast<size_t>(kCalls));
    EXPECT_TRUE(std::is_sorted(seen[s].begin(), seen[s].end()));
  }
}

TEST_P(SmpTest, AsynchronousResultsAndErrorsComeBack) {
  Smp smp(Options());
  smp.Run([]() -> Future<void> {
    // A coroutine lambda with captures: they must live until its future resolves on shard 1.
    std::string name = "shard";
    // Named, not a temporary inside the co_await: GCC 12 copies a capturing closure built
    // inside a co_await expression bytewise (docs/coroutines.md, hazard 9).
    auto describe = [name]() -> Future<std::string> {
      co_await Sleep(milliseconds(2));
      co_return name + std::to_string(this_shard_id());
    };
    std::string got = co_await SubmitTo(1, std::move(describe));
    EXPECT_EQ(got, "shard1");
    EXPECT_THROW(co_await SubmitTo(1, []() -> int { throw std::runtime_error("sync"); }),
                 std::runtime_error);
    EXPECT_THROW(co_await SubmitTo(1,
                                   []() -> Future<void> {
                                     co_await Sleep(milliseconds(1));
                                     throw std::out_of_range("async");
                                   }),
                 std::out_of_range);
    // A move-only result.
    std::unique_ptr<int> p = co_await SubmitTo(1, [] { return std::make_unique<int>(5); });
    EXPECT_EQ(*p, 5);
    // Local submission runs in place.
    bool ran = false;
    co_await SubmitTo(0, [&ran] { ran = true; });
    EXPECT_TRUE(ran);
  });
}

TEST_P(SmpTest, MapReduceAndInvokeOnAll) {
  Smp smp(Options());
  int sum = smp.Run([]() -> Future<int> {
    std::atomic<int> visits{0};
    co_await InvokeOnAll([&visits] { visits.fetch_add(1); });
    EXPECT_EQ(visits.load(), static_cast<int>(kShards));
    // Folded in shard order: ((100 - 0) * 2 - 1)... a non-commutative fold shows the order.
    int ordered = co_await MapReduce([] { return static_cast<int>(this_shard_id()); }, 100,
                                     [](int acc, int v) { return acc * 2 - v; });
    EXPECT_EQ(ordered, (100 * 2 - 0) * 2 - 1);
    EXPECT_THROW(co_await MapReduce(
                     []() -> int {
                       if (this_shard_id() == 1) throw std::logic_error("no");
                       return 1;
                     },
                     0, std::plus<int>()),
                 std::logic_error);
    co_return co_await MapReduce(
        []() -> Future<int> {
          co_await Sleep(milliseconds(1));
          co_return static_cast<int>(this_shard_id()) + 1;
        },
        0, std::plus<int>());
  });
  EXPECT_EQ(sum, 3);
}

class Counter {
 public:
  explicit Counter(int start) : value_(start), shard_(this_shard_id()) {}
  ~Counter() { EXPECT_EQ(this_shard_id(), shard_); }  // destroyed on its own shard
  void Add(int n) {
    EXPECT_EQ(this_shard_id(), shard_);
    value_ += n;
  }
  int value() const { return value_; }
  Future<void> Stop() {
    co_await Sleep(milliseconds(1));
    stopped_count.fetch_add(1);
  }
  static inline std::atomic<int> stopped_count{0};

 private:
  int value_;
  unsigned shard_;
};

TEST_P(SmpTest, ShardedServiceLivesOnEveryShard) {
  Counter::stopped_count = 0;
  Smp smp(Options());
  Sharded<Counter> counters;
  int total = smp.Run([&]() -> Future<int> {
    co_await counters.Start(10);
    co_await counters.InvokeOnAll([](Counter& c) { c.Add(static_cast<int>(this_shard_id())); });
    counters.Local().Add(100);
    int on1 = co_await counters.InvokeOn(1, [](Counter& c) { return c.value(); });
    EXPECT_EQ(on1, 11);
    int sum = co_await MapReduce([&] { return counters.Local().value(); }, 0, std::plus<int>());
    co_await counters.Stop();
    co_return sum;
  });
  EXPECT_EQ(total, 110 + 11);
  EXPECT_EQ(Counter::stopped_count.load(), static_cast<int>(kShards));
}

struct Throws {
  explicit Throws(int) {
    if (this_shard_id() == 1) throw std::runtime_error("ctor");
  }
};

TEST_P(SmpTest, ShardedStartFailureCleansUp) {
  Smp smp(Options());
  Sharded<Throws> s;
  smp.Run([&]() -> Future<void> { EXPECT_THROW(co_await s.Start(1), std::runtime_error); });
}

// Messages the test sends itself through the matrix, recycled on completion: a window of them
// per direction keeps the rings full without allocating per message.
class PingPong final : public SmpMessage {
 public:
  void Process() noexcept override { ++*processed; }
  void Complete() noexcept override {
    ++*completed;
    if (*sent < total) {
      ++*sent;
      matrix->Send(from, to, this);
    } else if (*completed == total) {
      done->SetValue();
    }
  }
  void Discard(bool) noexcept override {}

  SmpMessageMatrix* matrix;
  unsigned from, to;
  uint64_t total;
  uint64_t* sent;
  uint64_t* completed;
  uint64_t* processed;  // on the target shard
  Promise<void>* done;
};

TEST_P(SmpTest, TenMillionMessagesNoneLost) {
#if defined(KEV_SANITIZER)
  constexpr uint64_t kPerDirection = 1'000'000;  // sanitizers are ~10x slower
#else
  constexpr uint64_t kPerDirection = 5'000'000;  // 10 million in total
#endif
  constexpr int kWindow = 512;
  Smp smp(Options());
  uint64_t processed[kShards] = {};
  uint64_t completed[kShards] = {};
  smp.Run([&]() -> Future<void> {
    co_await InvokeOnAll([&]() -> Future<void> {
      const unsigned me = this_shard_id();
      uint64_t sent = 0;
      Promise<void> done;
      std::vector<PingPong> window(kWindow);
      for (PingPong& m : window) {
        m.matrix = &Smp::CurrentOrNull()->matrix();
        m.from = me;
        m.to = 1 - me;
        m.total = kPerDirection;
        m.sent = &sent;
        m.completed = &completed[me];
        m.processed = &processed[1 - me];
        m.done = &done;
        ++sent;
        m.matrix->Send(me, m.to, &m);
      }
      co_await done.GetFuture();
    });
  });
  for (unsigned s = 0; s < kShards; ++s) {
    EXPECT_EQ(processed[s], kPerDirection);
    EXPECT_EQ(completed[s], kPerDirection);
    EXPECT_EQ(smp.matrix().Outstanding(s), 0u);
    EXPECT_EQ(smp.matrix().Counters(s).discarded, 0u);
  }
}

TEST_P(SmpTest, ShutdownWithMessagesInFlight) {
  constexpr int kCalls = 10000;
  Smp smp(Options());
  std::atomic<int> ran{0};
  smp.Run([&] {
    // Keep shard 1 busy so that the calls behind pile up in the ring and staging list.
    Future<void> busy = SubmitTo(1, [] { std::this_thread::sleep_for(milliseconds(30)); });
    for (int i = 0; i < kCalls; ++i) {
      Future<int> f = SubmitTo(1, [&ran, payload = std::make_unique<int>(i)] {
        ran.fetch_add(1);
        return *payload;
      });
    }
    // Returning now stops every shard with most of those calls still in flight.
  });
  EXPECT_LT(ran.load(), kCalls);
  EXPECT_GT(smp.matrix().Counters(0).discarded, 0u);
  EXPECT_EQ(smp.matrix().Outstanding(0), 0u);  // every message was completed or discarded
}

TEST_P(SmpTest, IdleShardsSleepAndAreWokenByMessages) {
  Smp smp(Options());
  smp.Run([&]() -> Future<void> {
    for (int i = 0; i < 20; ++i) {
      co_await Sleep(milliseconds(1));  // shard 1 has nothing to do: it blocks
      EXPECT_EQ(co_await SubmitTo(1, [i] { return i; }), i);
    }
    ReactorMetrics m1 = co_await SubmitTo(1, [] { return Reactor::Current().metrics(); });
    EXPECT_GE(m1.sleeps, 1u);
    EXPECT_GE(m1.smp_messages_received, 20u);
    ReactorMetrics m0 = Reactor::Current().metrics();
    EXPECT_GE(m0.smp_messages_sent, 20u);
    EXPECT_GE(m0.smp_wakeups_sent, 1u);
  });
}

TEST_P(SmpTest, ResultOfMainIsReturnedAndErrorsRethrown) {
  EXPECT_EQ(Smp(Options()).Run([] { return 5; }), 5);
  EXPECT_THROW(Smp(Options()).Run([]() -> Future<int> {
    co_await SubmitTo(1, [] {});
    throw std::invalid_argument("main failed");
  }),
               std::invalid_argument);
}

TEST(SmpPlanTest, ImpossiblePlansAreRejected) {
  SmpOptions o;
  o.shards = 10000;
  EXPECT_THROW(Smp{o}, std::invalid_argument);
  SmpOptions all;
  all.pin = true;
  EXPECT_GE(Smp(all).shard_count(), 1u);
}

TEST(SmpWithoutShardsTest, LoneReactorIsShardZeroOfOne) {
  RunReactor([]() -> Future<void> {
    EXPECT_EQ(smp_count(), 1u);
    EXPECT_EQ(this_shard_id(), 0u);
    EXPECT_EQ(co_await SubmitTo(0, [] { return 3; }), 3);
    co_await InvokeOnAll([] {});
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, SmpTest,
                         ::testing::Values(PollerBackend::kIoUring, PollerBackend::kEpoll),
                         [](const auto& info) {
                           return info.param == PollerBackend::kIoUring ? std::string("io_uring")
                                                                        : std::string("epoll");
                         });

}  // namespace
}  // namespace kev
