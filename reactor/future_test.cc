#include "reactor/future.h"

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "reactor/errors.h"
#include "reactor/internal/alloc_counter.h"
#include "reactor/task_queue.h"

namespace kev {
namespace {

using internal::AllocCounter;

// Every test that may schedule runs under a queue installed on the test thread.
class FutureTest : public ::testing::Test {
 protected:
  void Drain() {
    while (!queue_.Empty()) queue_.RunReady();
  }
  TaskQueue queue_;
  TaskQueue::Scope scope_{&queue_};
};

std::string ErrorOf(Future<int>& f) {
  try {
    f.Get();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

TEST_F(FutureTest, ReadyValue) {
  Future<int> f = MakeReadyFuture(42);
  EXPECT_TRUE(f.Valid());
  EXPECT_TRUE(f.Available());
  EXPECT_FALSE(f.Failed());
  EXPECT_EQ(f.Get(), 42);
  EXPECT_FALSE(f.Valid()) << "Get() consumes";
}

TEST_F(FutureTest, ReadyVoidAndExplicitType) {
  Future<void> v = MakeReadyFuture();
  EXPECT_TRUE(v.Available());
  v.Get();
  Future<std::string> s = MakeReadyFuture<std::string>(3, 'x');
  EXPECT_EQ(s.Get(), "xxx");
  Future<long> l = MakeReadyFuture<long>(7);
  EXPECT_EQ(l.Get(), 7);
}

TEST_F(FutureTest, DefaultConstructedFutureIsInvalid) {
  Future<int> f;
  EXPECT_FALSE(f.Valid());
  EXPECT_FALSE(f.Available());
}

TEST_F(FutureTest, MovedFromFuturesAreInvalid) {
  Promise<int> p;
  Future<int> a = p.GetFuture();
  Future<int> b = std::move(a);
  EXPECT_FALSE(a.Valid());
  EXPECT_FALSE(a.Available());
  Future<int> c;
  c = std::move(b);
  EXPECT_FALSE(b.Valid());
  EXPECT_TRUE(c.Valid());
  Future<int> ready = MakeReadyFuture(1);
  Future<int> moved = std::move(ready);
  EXPECT_FALSE(ready.Valid());
  EXPECT_EQ(moved.Get(), 1);
}

TEST_F(FutureTest, ExceptionFutureRethrowsFromGet) {
  Future<int> f = MakeExceptionFuture<int>(std::runtime_error("boom"));
  EXPECT_TRUE(f.Available());
  EXPECT_TRUE(f.Failed());
  EXPECT_EQ(ErrorOf(f), "boom");
  EXPECT_FALSE(f.Valid());
}

TEST_F(FutureTest, GetExceptionDoesNotThrow) {
  Future<void> f = MakeExceptionFuture<void>(std::logic_error("bad"));
  std::exception_ptr ex = f.GetException();
  ASSERT_NE(ex, nullptr);
  EXPECT_THROW(std::rethrow_exception(ex), std::logic_error);
}

TEST_F(FutureTest, MoveOnlyValues) {
  Future<std::unique_ptr<int>> f = MakeReadyFuture(std::make_unique<int>(5));
  Future<int> g = std::move(f).Then([](std::unique_ptr<int> p) { return *p + 1; });
  EXPECT_EQ(g.Get(), 6);
}

TEST_F(FutureTest, ThenOnReadyRunsInlineWithoutAQueue) {
  TaskQueue::Scope no_queue(nullptr);
  bool ran = false;
  Future<std::string> f = MakeReadyFuture(2).Then([&](int v) {
    ran = true;
    return std::to_string(v * 21);
  });
  EXPECT_TRUE(ran);
  EXPECT_TRUE(f.Available());
  EXPECT_EQ(f.Get(), "42");
}

TEST_F(FutureTest, ChainOfValueAndVoidContinuations) {
  std::vector<std::string> log;
  Future<void> f = MakeReadyFuture(1)
                       .Then([&](int v) {
                         log.push_back("int " + std::to_string(v));
                         return std::string("s");
                       })
                       .Then([&](std::string s) { log.push_back("string " + s); })
                       .Then([&] { log.push_back("void"); });
  f.Get();
  EXPECT_EQ(log, (std::vector<std::string>{"int 1", "string s", "void"}));
}

TEST_F(FutureTest, ErrorsSkipThenAndReachThenWrapped) {
  bool skipped = true;
  Future<int> f = MakeExceptionFuture<int>(std::runtime_error("e1"))
                      .Then([&](int v) {
                        skipped = false;
                        return v;
                      })
                      .ThenWrapped([](Future<int> in) {
                        EXPECT_TRUE(in.Failed());
                        try {
                          in.Get();
                        } catch (const std::runtime_error& e) {
                          return std::string(e.what()).size() == 2 ? 7 : 0;
                        }
                        return 0;
                      });
  EXPECT_TRUE(skipped);
  EXPECT_EQ(f.Get(), 7);
}

TEST_F(FutureTest, ThrowingContinuationFailsTheResult) {
  Future<int> f = MakeReadyFuture(1).Then([](int) -> int { throw std::runtime_error("cont"); });
  EXPECT_TRUE(f.Failed());
  EXPECT_EQ(ErrorOf(f), "cont");
  Future<void> g = MakeReadyFuture().Then([] { throw std::out_of_range("void cont"); });
  EXPECT_THROW(g.Get(), std::out_of_range);
}

TEST_F(FutureTest, ThenFlattensReadyFutures) {
  Future<int> f = MakeReadyFuture(1).Then([](int v) { return MakeReadyFuture(v + 1); });
  EXPECT_EQ(f.Get(), 2);
  Future<int> g =
      MakeReadyFuture(1).Then([](int) { return MakeExceptionFuture<int>(std::runtime_error("x")); });
  EXPECT_TRUE(g.Failed());
}

TEST_F(FutureTest, ThenAcceptsLvalueAndConstCallables) {
  int calls = 0;
  auto add = [&calls](int v) {
    ++calls;
    return v + 1;
  };
  const auto twice = [](int v) { return v * 2; };
  EXPECT_EQ(MakeReadyFuture(1).Then(add).Then(twice).Get(), 4);
  Promise<int> p;
  Future<int> f = p.GetFuture().Then(add).Then(twice);
  p.SetValue(2);
  Drain();
  EXPECT_EQ(f.Get(), 6);
  EXPECT_EQ(calls, 2);
}

TEST_F(FutureTest, PromiseResolvesAPendingFutureThroughTheQueue) {
  Promise<int> p;
  Future<int> f = p.GetFuture();
  EXPECT_TRUE(f.Valid());
  EXPECT_FALSE(f.Available());
  bool ran = false;
  Future<int> g = std::move(f).Then([&](int v) {
    ran = true;
    return v * 2;
  });
  EXPECT_FALSE(g.Available());
  p.SetValue(21);
  EXPECT_FALSE(ran) << "continuations never run inside SetValue()";
  EXPECT_FALSE(queue_.Empty());
  Drain();
  EXPECT_TRUE(ran);
  ASSERT_TRUE(g.Available());
  EXPECT_EQ(g.Get(), 42);
}

TEST_F(FutureTest, PromiseResolvedBeforeGetFuture) {
  Promise<std::string> p;
  p.SetValue("early");
  Future<std::string> f = p.GetFuture();
  EXPECT_TRUE(f.Available());
  EXPECT_EQ(f.Get(), "early");
}

TEST_F(FutureTest, PromiseExceptionReachesThePendingChain) {
  Promise<int> p;
  bool ran = false;
  Future<int> f = p.GetFuture().Then([&](int v) {
    ran = true;
    return v;
  });
  p.SetException(std::runtime_error("late"));
  Drain();
  EXPECT_FALSE(ran);
  EXPECT_EQ(ErrorOf(f), "late");
}

TEST_F(FutureTest, PendingFlatteningWaitsForTheInnerFuture) {
  Promise<int> outer;
  Promise<int> inner;
  Future<int> f = outer.GetFuture().Then([&](int v) {
    return inner.GetFuture().Then([v](int w) { return v + w; });
  });
  outer.SetValue(1);
  Drain();
  EXPECT_FALSE(f.Available()) << "the continuation returned a pending future";
  inner.SetValue(10);
  Drain();
  EXPECT_EQ(f.Get(), 11);
}

TEST_F(FutureTest, DestroyedPromiseBreaksItsFuture) {
  Future<int> f;
  {
    Promise<int> p;
    f = p.GetFuture();
  }
  ASSERT_TRUE(f.Available());
  EXPECT_THROW(f.Get(), BrokenPromise);
}

TEST_F(FutureTest, BrokenPromiseReachesAttachedContinuations) {
  auto p = std::make_unique<Promise<void>>();
  Future<void> f = p->GetFuture().ThenWrapped([](Future<void> in) {
    EXPECT_TRUE(in.Failed());
    in.Get();  // rethrows BrokenPromise into the result
  });
  p.reset();
  Drain();
  EXPECT_THROW(f.Get(), BrokenPromise);
}

TEST_F(FutureTest, MoveAssigningOverAPromiseBreaksTheOldOne) {
  Promise<int> p;
  Future<int> f = p.GetFuture();
  p = Promise<int>();
  EXPECT_THROW(f.Get(), BrokenPromise);
  Future<int> g = p.GetFuture();
  p.SetValue(3);
  EXPECT_EQ(g.Get(), 3);
}

TEST_F(FutureTest, MovedPromiseStillResolves) {
  Promise<int> p;
  Future<int> f = p.GetFuture();
  Promise<int> q = std::move(p);
  q.SetValue(9);
  EXPECT_EQ(f.Get(), 9);
}

TEST_F(FutureTest, DroppedFuturesAreHarmless) {
  Promise<int> p;
  bool ran = false;
  {
    Future<void> dropped = p.GetFuture().Then([&](int) { ran = true; });
  }
  p.SetValue(1);
  Drain();
  EXPECT_TRUE(ran) << "the producer and its continuation still run";
  Promise<int> unused;
  unused.SetValue(1);  // never observed; must not leak (ASan)
}

TEST_F(FutureTest, ContinuationRunsOnTheQueueCurrentWhenAttached) {
  TaskQueue other;
  Promise<int> p;
  TaskQueue* ran_on = nullptr;
  Future<void> f = p.GetFuture().Then([&](int) { ran_on = TaskQueue::Current(); });
  {
    TaskQueue::Scope scope(&other);
    p.SetValue(1);  // resolving under another queue still schedules on queue_
  }
  EXPECT_TRUE(other.Empty());
  Drain();
  EXPECT_EQ(ran_on, &queue_);
  f.Get();
}

TEST_F(FutureTest, LongPendingChainDoesNotRecurse) {
  Promise<int> p;
  Future<int> f = p.GetFuture();
  constexpr int kLinks = 100'000;
  for (int i = 0; i < kLinks; ++i) f = std::move(f).Then([](int v) { return v + 1; });
  p.SetValue(0);
  Drain();
  EXPECT_EQ(f.Get(), kLinks);
}

TEST_F(FutureTest, AllocCounterSeesAllocations) {
  AllocCounter counter;
  auto p = std::make_unique<int>(1);
  EXPECT_EQ(counter.Count(), 1) << "the zero-allocation tests below would prove nothing";
}

TEST_F(FutureTest, ReadyFuturesAllocateNothing) {
  std::exception_ptr premade = std::make_exception_ptr(std::runtime_error("premade"));
  AllocCounter counter;
  Future<int> a = MakeReadyFuture(1);
  Future<void> b = MakeReadyFuture();
  Future<int> c = MakeExceptionFuture<int>(premade);
  Future<long> chained = std::move(a)
                             .Then([](int v) { return v + 1; })
                             .Then([](int v) { return MakeReadyFuture<long>(v * 2); })
                             .ThenWrapped([](Future<long> f) { return f.Get() + 1; });
  Future<void> void_chain = std::move(b).Then([] {}).Then([] { return 3; }).Then([](int) {});
  Future<int> failed_chain = std::move(c).Then([](int v) { return v; });
  const bool ok = chained.Get() == 5 && failed_chain.Failed() && void_chain.Available();
  void_chain.Get();
  const int64_t allocations = counter.Count();
  EXPECT_TRUE(ok);
  EXPECT_EQ(allocations, 0);
  failed_chain.GetException();
}

TEST_F(FutureTest, PendingPathAllocationsAreBounded) {
  AllocCounter counter;
  Promise<int> p;
  EXPECT_EQ(counter.Count(), 0) << "an unused promise allocates nothing";
  Future<int> f = p.GetFuture();
  EXPECT_EQ(counter.Count(), 1) << "one shared state";
  Future<int> g = std::move(f).Then([](int v) { return v + 1; });
  EXPECT_EQ(counter.Count(), 2) << "one continuation that is also the result's state";
  p.SetValue(1);
  Drain();
  EXPECT_EQ(g.Get(), 2);
  EXPECT_EQ(counter.Count(), 2) << "resolving and running allocate nothing more";
}

TEST(FutureDeathTest, GetOnAPendingFutureOutsideAFiberAborts) {
  EXPECT_DEATH(
      {
        Promise<int> p;
        Future<int> f = p.GetFuture();
        (void)f.Get();
      },
      "Get\\(\\) on a pending future outside a fiber");
}

TEST(FutureDeathTest, ThenOnAPendingFutureWithoutAQueueAborts) {
  EXPECT_DEATH(
      {
        Promise<int> p;
        Future<void> f = p.GetFuture().Then([](int) {});
      },
      "Future::Then\\(\\) on a pending future needs a current TaskQueue");
}

TEST(FutureDeathTest, ResolvingAPromiseTwiceAborts) {
  EXPECT_DEATH(
      {
        Promise<int> p;
        p.SetValue(1);
        p.SetValue(2);
      },
      "Promise resolved twice");
}

TEST(FutureDeathTest, GetFutureTwiceAborts) {
  EXPECT_DEATH(
      {
        Promise<int> p;
        Future<int> a = p.GetFuture();
        Future<int> b = p.GetFuture();
      },
      "GetFuture\\(\\) called twice");
}

TEST(FutureDeathTest, UsingAConsumedFutureAborts) {
  EXPECT_DEATH(
      {
        Future<int> f = MakeReadyFuture(1);
        (void)f.Get();
        (void)f.Get();
      },
      "invalid");
}

}  // namespace
}  // namespace kev
