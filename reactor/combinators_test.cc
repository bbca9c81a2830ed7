#include "reactor/combinators.h"

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "reactor/future.h"
#include "reactor/internal/alloc_counter.h"
#include "reactor/task_queue.h"

namespace kev {
namespace {

using internal::AllocCounter;

class CombinatorsTest : public ::testing::Test {
 protected:
  void Drain() {
    while (!queue_.Empty()) queue_.RunReady();
  }
  TaskQueue queue_;
  TaskQueue::Scope scope_{&queue_};
};

class FnTask final : public Task {
 public:
  explicit FnTask(std::function<void()> fn) : fn_(std::move(fn)) {}
  void Run() noexcept override { fn_(); }

 private:
  std::function<void()> fn_;
};

std::string What(std::exception_ptr ex) {
  try {
    std::rethrow_exception(ex);
  } catch (const std::exception& e) {
    return e.what();
  }
}

TEST_F(CombinatorsTest, WhenAllOfAvailableFuturesIsAvailableAtOnce) {
  std::vector<Future<int>> in;
  for (int i = 0; i < 4; ++i) in.push_back(MakeReadyFuture(i));
  AllocCounter counter;
  Future<std::vector<int>> all = WhenAll(std::move(in));
  EXPECT_EQ(counter.Count(), 1) << "just the result vector";
  ASSERT_TRUE(all.Available());
  EXPECT_EQ(all.Get(), (std::vector<int>{0, 1, 2, 3}));
  Future<std::vector<int>> none = WhenAll(std::vector<Future<int>>{});
  EXPECT_TRUE(none.Get().empty());
}

TEST_F(CombinatorsTest, WhenAllWaitsForEveryPendingFutureInOrder) {
  std::vector<Promise<std::string>> promises(3);
  std::vector<Future<std::string>> in;
  for (auto& p : promises) in.push_back(p.GetFuture());
  in.push_back(MakeReadyFuture<std::string>("ready"));
  Future<std::vector<std::string>> all = WhenAll(std::move(in));
  promises[2].SetValue("c");
  promises[0].SetValue("a");
  Drain();
  EXPECT_FALSE(all.Available());
  promises[1].SetValue("b");
  Drain();
  ASSERT_TRUE(all.Available());
  EXPECT_EQ(all.Get(), (std::vector<std::string>{"a", "b", "c", "ready"}));
}

TEST_F(CombinatorsTest, WhenAllFailsWithTheFirstFailureByIndexButOnlyAfterAll) {
  std::vector<Promise<void>> promises(3);
  std::vector<Future<void>> in;
  for (auto& p : promises) in.push_back(p.GetFuture());
  Future<void> all = WhenAll(std::move(in));
  promises[2].SetException(std::runtime_error("third"));
  promises[1].SetException(std::runtime_error("second"));
  Drain();
  EXPECT_FALSE(all.Available()) << "an input is still pending; it must not be abandoned";
  promises[0].SetValue();
  Drain();
  ASSERT_TRUE(all.Failed());
  EXPECT_EQ(What(all.GetException()), "second");
}

TEST_F(CombinatorsTest, VariadicWhenAllDropsVoidsAndKeepsArgumentOrder) {
  Promise<int> pi;
  Promise<void> pv;
  Future<std::tuple<int, std::string, int>> all =
      WhenAll(pi.GetFuture(), MakeReadyFuture<std::string>("s"), pv.GetFuture(), MakeReadyFuture(7));
  pv.SetValue();
  pi.SetValue(3);
  Drain();
  ASSERT_TRUE(all.Available());
  auto [a, s, b] = all.Get();
  EXPECT_EQ(a, 3);
  EXPECT_EQ(s, "s");
  EXPECT_EQ(b, 7);
}

TEST_F(CombinatorsTest, VariadicWhenAllOfVoidsIsVoid) {
  Promise<void> p;
  Future<void> all = WhenAll(MakeReadyFuture(), p.GetFuture());
  EXPECT_FALSE(all.Available());
  p.SetValue();
  Drain();
  ASSERT_TRUE(all.Available());
  all.Get();
  Future<std::tuple<int, int>> ready = WhenAll(MakeReadyFuture(1), MakeReadyFuture(2));
  EXPECT_EQ(ready.Get(), std::make_tuple(1, 2));
}

TEST_F(CombinatorsTest, VariadicWhenAllFailsWithTheFirstFailureInArgumentOrder) {
  Promise<int> p;
  Future<std::tuple<int, int>> all =
      WhenAll(p.GetFuture(), MakeExceptionFuture<int>(std::runtime_error("second arg")));
  p.SetException(std::runtime_error("first arg"));
  Drain();
  ASSERT_TRUE(all.Failed());
  EXPECT_EQ(What(all.GetException()), "first arg");
}

TEST_F(CombinatorsTest, ParallelForEachWithSynchronousFunction) {
  std::vector<int> items{1, 2, 3};
  int sum = 0;
  Future<void> done = ParallelForEach(items, [&](int& v) { sum += v; });
  EXPECT_TRUE(done.Available());
  done.Get();
  EXPECT_EQ(sum, 6);
}

TEST_F(CombinatorsTest, ParallelForEachStartsEverythingBeforeWaiting) {
  std::vector<Promise<void>> promises(5);
  int started = 0;
  Future<void> done = ParallelForEach(promises, [&](Promise<void>& p) {
    ++started;
    return p.GetFuture();
  });
  EXPECT_EQ(started, 5) << "all calls happen before ParallelForEach returns";
  EXPECT_FALSE(done.Available());
  for (int i = 4; i >= 0; --i) {
    Drain();
    EXPECT_FALSE(done.Available());
    promises[i].SetValue();
  }
  Drain();
  ASSERT_TRUE(done.Available());
  done.Get();
}

TEST_F(CombinatorsTest, ParallelForEachReportsTheFirstFailureInIterationOrder) {
  std::vector<Promise<void>> promises(2);
  std::vector<int> items{0, 1, 2, 3};
  int calls = 0;
  Future<void> done = ParallelForEach(items, [&](int i) -> Future<void> {
    ++calls;
    if (i == 3) throw std::runtime_error("item 3 threw");  // does not stop the others
    if (i == 2) return MakeReadyFuture();
    return promises[i].GetFuture();
  });
  EXPECT_EQ(calls, 4);
  promises[0].SetValue();
  promises[1].SetException(std::runtime_error("item 1 failed later"));
  Drain();
  ASSERT_TRUE(done.Failed());
  EXPECT_EQ(What(done.GetException()), "item 1 failed later");
}

Future<void> LogAroundYield(std::vector<std::string>* log) {
  log->push_back("before");
  co_await Yield();
  log->push_back("after");
}

TEST_F(CombinatorsTest, YieldResumesInTheNextTurn) {
  std::vector<std::string> log;
  Future<void> f;
  FnTask start([&] { f = LogAroundYield(&log); });
  FnTask sibling([&] { log.push_back("sibling"); });
  queue_.Schedule(&start);
  queue_.Schedule(&sibling);
  EXPECT_EQ(queue_.RunReady(std::chrono::hours(1)), 2u);
  EXPECT_EQ(log, (std::vector<std::string>{"before", "sibling"}));
  EXPECT_FALSE(f.Available());
  EXPECT_FALSE(queue_.Empty());
  queue_.RunReady();
  EXPECT_EQ(log, (std::vector<std::string>{"before", "sibling", "after"}));
  ASSERT_TRUE(f.Available());
  f.Get();
}

TEST_F(CombinatorsTest, MaybeYieldIsFreeWhileTheTurnHasTime) {
  {
    TaskQueue::Scope no_queue(nullptr);
    Future<void> f = MaybeYield();
    EXPECT_TRUE(f.Available());
    f.Get();
  }
  AllocCounter counter;
  Future<void> outside_turn = MaybeYield();
  EXPECT_TRUE(outside_turn.Available()) << "no turn is running, so nothing to give up";
  outside_turn.Get();
  EXPECT_EQ(counter.Count(), 0);
}

Future<int> LoopWithMaybeYield(int iterations) {
  int work = 0;
  for (int i = 0; i < iterations; ++i) {
    ++work;
    co_await MaybeYield();
  }
  co_return work;
}

TEST_F(CombinatorsTest, MaybeYieldSplitsALongLoopAcrossTurns) {
  constexpr int kIterations = 1000;
  Future<int> f;
  FnTask start([&] { f = LoopWithMaybeYield(kIterations); });
  queue_.Schedule(&start);
  int turns = 0;
  while (!queue_.Empty()) {
    queue_.RunReady(std::chrono::nanoseconds(0));  // every check finds the quota spent
    ++turns;
  }
  EXPECT_EQ(f.Get(), kIterations);
  EXPECT_GE(turns, kIterations) << "with no quota, every MaybeYield() ends the turn";
}

}  // namespace
}  // namespace kev
