// Future<T> as a coroutine return type and as an awaitable.
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "reactor/errors.h"
#include "reactor/future.h"
#include "reactor/internal/alloc_counter.h"
#include "reactor/task_queue.h"

namespace kev {
namespace {

using internal::AllocCounter;

class CoroutineTest : public ::testing::Test {
 protected:
  void Drain() {
    while (!queue_.Empty()) queue_.RunReady();
  }
  TaskQueue queue_;
  TaskQueue::Scope scope_{&queue_};
};

Future<int> Immediate(int v) { co_return v * 2; }

Future<void> ImmediateVoid(bool* ran) {
  *ran = true;
  co_return;
}

// Parameters by value: the coroutine owns them across suspensions.
Future<int> AddLater(Future<int> a, int b) {
  int v = co_await std::move(a);
  co_return v + b;
}

Future<int> Thrower(Future<int> a) {
  int v = co_await std::move(a);
  if (v < 0) throw std::invalid_argument("negative");
  co_return v;
}

Future<int> ThrowsBeforeSuspending() {
  throw std::runtime_error("early");
  co_return 0;
}

TEST_F(CoroutineTest, CoroutineThatNeverSuspendsIsReadyOnReturn) {
  Future<int> f = Immediate(21);
  EXPECT_TRUE(f.Available());
  EXPECT_TRUE(queue_.Empty()) << "nothing was scheduled";
  EXPECT_EQ(f.Get(), 42);
  bool ran = false;
  Future<void> v = ImmediateVoid(&ran);
  EXPECT_TRUE(ran) << "coroutines start eagerly";
  EXPECT_TRUE(v.Available());
  v.Get();
}

TEST_F(CoroutineTest, AwaitingAReadyFutureDoesNotSuspend) {
  Future<int> f = AddLater(MakeReadyFuture(1), 2);
  EXPECT_TRUE(f.Available());
  EXPECT_TRUE(queue_.Empty());
  EXPECT_EQ(f.Get(), 3);
}

TEST_F(CoroutineTest, AwaitingAPendingFutureResumesThroughTheQueue) {
  Promise<int> p;
  Future<int> f = AddLater(p.GetFuture(), 2);
  EXPECT_FALSE(f.Available());
  p.SetValue(40);
  EXPECT_FALSE(f.Available()) << "resumption is scheduled, never inline";
  Drain();
  ASSERT_TRUE(f.Available());
  EXPECT_EQ(f.Get(), 42);
}

TEST_F(CoroutineTest, ExceptionsPropagateOutOfTheCoroutine) {
  Promise<int> p;
  Future<int> f = Thrower(p.GetFuture());
  p.SetValue(-1);
  Drain();
  ASSERT_TRUE(f.Failed());
  EXPECT_THROW(f.Get(), std::invalid_argument);

  Future<int> early = ThrowsBeforeSuspending();
  ASSERT_TRUE(early.Failed()) << "a throw before the first suspension is not thrown at the caller";
  EXPECT_THROW(early.Get(), std::runtime_error);
}

Future<std::string> CatchAndTranslate(Future<int> in) {
  try {
    co_await std::move(in);
  } catch (const std::runtime_error& e) {
    co_return std::string("caught ") + e.what();
  }
  co_return "no error";
}

TEST_F(CoroutineTest, AwaitRethrowsFailuresInsideTheCoroutine) {
  Promise<int> p;
  Future<std::string> f = CatchAndTranslate(p.GetFuture());
  p.SetException(std::runtime_error("io"));
  Drain();
  EXPECT_EQ(f.Get(), "caught io");
}

Future<std::string> AwaitBroken(Future<int> in) {
  try {
    co_await std::move(in);
  } catch (const BrokenPromise&) {
    co_return "broken";
  }
  co_return "value";
}

TEST_F(CoroutineTest, BrokenPromiseWakesTheAwaitingCoroutine) {
  auto p = std::make_unique<Promise<int>>();
  Future<std::string> f = AwaitBroken(p->GetFuture());
  p.reset();
  Drain();
  EXPECT_EQ(f.Get(), "broken");
}

Future<int> Leaf(Future<int> in) { co_return (co_await std::move(in)) + 1; }
Future<int> Middle(Future<int> in) { co_return (co_await Leaf(std::move(in))) * 10; }
Future<void> Top(Future<int> in, int* out) { *out = co_await Middle(std::move(in)); }

TEST_F(CoroutineTest, NestedCoroutines) {
  Promise<int> p;
  int out = 0;
  Future<void> f = Top(p.GetFuture(), &out);
  EXPECT_FALSE(f.Available());
  p.SetValue(4);
  Drain();
  EXPECT_TRUE(f.Available());
  f.Get();
  EXPECT_EQ(out, 50);
}

Future<void> Accumulate(Future<int> in, int* sum) { *sum += co_await std::move(in); }

TEST_F(CoroutineTest, TenThousandCoroutinesAwaitingPromises) {
  constexpr int kCount = 10'000;
  std::vector<Promise<int>> promises(kCount);
  std::vector<Future<void>> done;
  done.reserve(kCount);
  int sum = 0;
  for (auto& p : promises) done.push_back(Accumulate(p.GetFuture(), &sum));
  // Resolve in reverse to show resumption follows resolution, not creation.
  for (int i = kCount - 1; i >= 0; --i) promises[i].SetValue(i);
  EXPECT_EQ(sum, 0);
  Drain();
  EXPECT_EQ(sum, kCount * (kCount - 1) / 2);
  for (auto& f : done) {
    ASSERT_TRUE(f.Available());
    f.Get();
  }
}

Future<int> ManyAwaits(std::vector<Promise<int>>* promises, int ready_awaits) {
  int sum = 0;
  for (int i = 0; i < ready_awaits; ++i) sum += co_await MakeReadyFuture(1);
  for (auto& p : *promises) sum += co_await p.GetFuture();
  co_return sum;
}

TEST_F(CoroutineTest, LoopsOfAwaitsKeepTheStackFlat) {
  std::vector<Promise<int>> promises(1000);
  Future<int> f = ManyAwaits(&promises, 1'000'000);
  for (auto& p : promises) {
    p.SetValue(1);
    Drain();
  }
  EXPECT_EQ(f.Get(), 1'001'000);
}

Future<void> SetFlagAfter(Future<void> in, bool* flag) {
  co_await std::move(in);
  *flag = true;
}

TEST_F(CoroutineTest, DroppedFutureDoesNotStopTheCoroutine) {
  Promise<void> p;
  bool flag = false;
  { Future<void> dropped = SetFlagAfter(p.GetFuture(), &flag); }
  p.SetValue();
  Drain();
  EXPECT_TRUE(flag);  // and ASan checks the frame was freed exactly once
}

TEST_F(CoroutineTest, AwaitingAnLvalueConsumesIt) {
  Promise<int> p;
  Future<int> in = p.GetFuture();
  auto coro = [](Future<int>* f) -> Future<int> { co_return co_await *f; };
  Future<int> out = coro(&in);
  EXPECT_FALSE(in.Valid());
  p.SetValue(5);
  Drain();
  EXPECT_EQ(out.Get(), 5);
}

Future<std::unique_ptr<int>> MakeBox(Future<int> in) {
  co_return std::make_unique<int>(co_await std::move(in));
}

TEST_F(CoroutineTest, MoveOnlyResults) {
  Promise<int> p;
  Future<std::unique_ptr<int>> f = MakeBox(p.GetFuture());
  p.SetValue(8);
  Drain();
  EXPECT_EQ(*f.Get(), 8);
}

TEST_F(CoroutineTest, CoroutineContinuationsFlattenInThen) {
  Promise<int> p;
  Promise<int> q;
  // A captureless coroutine lambda taking its input by value: the safe form.
  Future<int> f = p.GetFuture().Then([](int v) -> Future<int> { co_return v + 1; });
  Future<int> g = MakeReadyFuture(1)
                      .Then([qf = q.GetFuture()](int v) mutable -> Future<int> {
                        // Captures are kept alive by Then() until this future resolves.
                        int w = co_await std::move(qf);
                        co_return v + w;
                      });
  p.SetValue(1);
  Drain();
  EXPECT_EQ(f.Get(), 2);
  EXPECT_FALSE(g.Available());
  q.SetValue(10);
  Drain();
  EXPECT_EQ(g.Get(), 11);
}

TEST_F(CoroutineTest, ACoroutineCostsItsFrameAndAwaitingCostsNothing) {
  Promise<int> p;
  Future<int> in = p.GetFuture();
  AllocCounter counter;
  Future<int> f = AddLater(std::move(in), 1);
  EXPECT_EQ(counter.Count(), 1) << "the frame is the future's state";
  p.SetValue(1);
  Drain();
  EXPECT_EQ(f.Get(), 2);
  EXPECT_EQ(counter.Count(), 1);
}

TEST_F(CoroutineTest, ResumesOnTheQueueCurrentWhenItSuspended) {
  Promise<void> p;
  TaskQueue* resumed_on = nullptr;
  auto coro = [](Future<void> in, TaskQueue** where) -> Future<void> {
    co_await std::move(in);
    *where = TaskQueue::Current();
  };
  Future<void> f = coro(p.GetFuture(), &resumed_on);
  TaskQueue other;
  {
    TaskQueue::Scope scope(&other);
    p.SetValue();
  }
  EXPECT_TRUE(other.Empty());
  Drain();
  EXPECT_EQ(resumed_on, &queue_);
  f.Get();
}

TEST(CoroutineDeathTest, AwaitingAPendingFutureWithoutAQueueAborts) {
  EXPECT_DEATH(
      {
        Promise<int> p;
        Future<int> f = AddLater(p.GetFuture(), 1);
      },
      "co_await on a pending future needs a current TaskQueue");
}

TEST(CoroutineDeathTest, AwaitingAConsumedFutureAborts) {
  EXPECT_DEATH(
      {
        Future<int> f = MakeReadyFuture(1);
        auto coro = [](Future<int>* in) -> Future<int> {
          int a = co_await *in;
          int b = co_await *in;  // consumed by the first await
          co_return a + b;
        };
        (void)coro(&f);
      },
      "invalid");
}

}  // namespace
}  // namespace kev
