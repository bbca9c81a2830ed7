// Gate and AbortSource.
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "reactor/abort_source.h"
#include "reactor/errors.h"
#include "reactor/future.h"
#include "reactor/gate.h"
#include "reactor/task_queue.h"

namespace kev {
namespace {

class SyncTest : public ::testing::Test {
 protected:
  void Drain() {
    while (!queue_.Empty()) queue_.RunReady();
  }
  TaskQueue queue_;
  TaskQueue::Scope scope_{&queue_};
};

// ---- Gate ----

TEST_F(SyncTest, GateCloseWithNothingInsideIsImmediate) {
  Gate gate;
  gate.Enter();
  gate.Leave();
  Future<void> closed = gate.Close();
  EXPECT_TRUE(closed.Available());
  closed.Get();
  EXPECT_TRUE(gate.IsClosed());
}

TEST_F(SyncTest, GateCloseWaitsForEveryHolder) {
  Gate gate;
  Gate::Holder a = gate.Hold();
  gate.Enter();
  EXPECT_EQ(gate.Count(), 2u);
  Future<void> closed = gate.Close();
  EXPECT_FALSE(closed.Available());
  a.Release();
  Drain();
  EXPECT_FALSE(closed.Available());
  gate.Leave();
  Drain();
  EXPECT_TRUE(closed.Available());
  closed.Get();
}

TEST_F(SyncTest, EnteringAClosedGateFails) {
  Gate gate;
  Gate::Holder h = gate.Hold();
  Future<void> closed = gate.Close();
  EXPECT_THROW(gate.Enter(), GateClosed);
  EXPECT_THROW((void)gate.Hold(), GateClosed);
  EXPECT_FALSE(gate.TryEnter());
  EXPECT_EQ(gate.Count(), 1u);
  h.Release();
  Drain();
  closed.Get();
}

TEST_F(SyncTest, GateHoldersMove) {
  Gate gate;
  Gate::Holder a = gate.Hold();
  Gate::Holder b = std::move(a);
  EXPECT_EQ(gate.Count(), 1u);
  a.Release();  // empty: no effect
  EXPECT_EQ(gate.Count(), 1u);
  Gate::Holder c;
  c = std::move(b);
  EXPECT_EQ(gate.Count(), 1u);
  c = Gate::Holder();
  EXPECT_EQ(gate.Count(), 0u);
}

TEST_F(SyncTest, WithGateHoldsTheGateUntilTheWorkResolves) {
  Gate gate;
  Promise<int> p;
  Future<int> work = WithGate(gate, [&] { return p.GetFuture(); });
  EXPECT_EQ(gate.Count(), 1u);
  Future<void> closed = gate.Close();
  Future<int> refused = WithGate(gate, [] { return 1; });
  ASSERT_TRUE(refused.Failed());
  EXPECT_THROW(refused.Get(), GateClosed);
  p.SetValue(7);
  Drain();
  EXPECT_EQ(work.Get(), 7);
  EXPECT_TRUE(closed.Available());
  closed.Get();
}

TEST_F(SyncTest, WithGateLeavesOnSynchronousResultsAndThrows) {
  Gate gate;
  Future<std::string> ok = WithGate(gate, [] { return std::string("done"); });
  EXPECT_EQ(gate.Count(), 0u);
  EXPECT_EQ(ok.Get(), "done");
  Future<void> threw = WithGate(gate, [] { throw std::runtime_error("bad"); });
  EXPECT_EQ(gate.Count(), 0u);
  EXPECT_THROW(threw.Get(), std::runtime_error);
  Promise<void> p;
  Future<void> failed_later = WithGate(gate, [&] { return p.GetFuture(); });
  p.SetException(std::runtime_error("later"));
  Drain();
  EXPECT_EQ(gate.Count(), 0u);
  EXPECT_THROW(failed_later.Get(), std::runtime_error);
}

TEST(SyncDeathTest, GateMisuseAborts) {
  EXPECT_DEATH(
      {
        Gate g;
        g.Leave();
      },
      "without a matching Enter");
  EXPECT_DEATH(
      {
        Gate g;
        g.Enter();
      },
      "Gate destroyed while still held");
  EXPECT_DEATH(
      {
        Gate g;
        Future<void> a = g.Close();
        Future<void> b = g.Close();
      },
      "Close\\(\\) called twice");
}

// ---- AbortSource ----

TEST_F(SyncTest, AbortRunsCallbacksOnceInOrder) {
  AbortSource source;
  std::vector<int> calls;
  auto s1 = source.Subscribe([&] { calls.push_back(1); });
  auto s2 = source.Subscribe([&] { calls.push_back(2); });
  EXPECT_TRUE(s1.Active());
  EXPECT_FALSE(source.Aborted());
  source.RequestAbort();
  source.RequestAbort();
  EXPECT_EQ(calls, (std::vector<int>{1, 2}));
  EXPECT_TRUE(source.Aborted());
  EXPECT_FALSE(s1.Active());
  EXPECT_THROW(source.ThrowIfAborted(), AbortRequested);
}

TEST_F(SyncTest, UnsubscribedCallbacksNeverRun) {
  AbortSource source;
  bool a = false, b = false;
  {
    auto gone = source.Subscribe([&] { a = true; });
  }
  auto unsubscribed = source.Subscribe([&] { b = true; });
  unsubscribed.Unsubscribe();
  EXPECT_FALSE(unsubscribed.Active());
  source.RequestAbort();
  EXPECT_FALSE(a);
  EXPECT_FALSE(b);
}

TEST_F(SyncTest, SubscribingAfterTheAbortRunsTheCallbackAtOnce) {
  AbortSource source;
  source.RequestAbort(std::make_exception_ptr(std::runtime_error("why")));
  bool ran = false;
  auto s = source.Subscribe([&] { ran = true; });
  EXPECT_TRUE(ran);
  EXPECT_FALSE(s.Active());
  EXPECT_THROW(source.ThrowIfAborted(), std::runtime_error);
}

TEST_F(SyncTest, CallbacksMayChangeSubscriptionsWhileFiring) {
  AbortSource source;
  std::vector<std::string> calls;
  auto own = std::make_unique<AbortSource::Subscription>();
  AbortSource::Subscription victim;
  AbortSource::Subscription late;
  *own = source.Subscribe([&] {
    calls.push_back("first");
    own.reset();             // destroys its own subscription
    victim.Unsubscribe();    // and a later one
    late = source.Subscribe([&] { calls.push_back("late"); });  // runs at once
  });
  victim = source.Subscribe([&] { calls.push_back("victim"); });
  auto last = source.Subscribe([&] { calls.push_back("last"); });
  source.RequestAbort();
  EXPECT_EQ(calls, (std::vector<std::string>{"first", "late", "last"}));
}

TEST_F(SyncTest, MovedSubscriptionsStayRegistered) {
  AbortSource source;
  int calls = 0;
  auto a = source.Subscribe([&] { ++calls; });
  auto b = source.Subscribe([&] { calls += 10; });
  AbortSource::Subscription moved = std::move(a);
  EXPECT_FALSE(a.Active());
  EXPECT_TRUE(moved.Active());
  AbortSource::Subscription assigned;
  assigned = std::move(b);
  source.RequestAbort();
  EXPECT_EQ(calls, 11);
}

TEST_F(SyncTest, SubscriptionsMayOutliveTheirSource) {
  auto source = std::make_unique<AbortSource>();
  bool ran = false;
  auto s = source->Subscribe([&] { ran = true; });
  source.reset();
  EXPECT_FALSE(s.Active());
  EXPECT_FALSE(ran);
}

TEST_F(SyncTest, WithAbortFailsAPendingWait) {
  AbortSource source;
  auto p = std::make_unique<Promise<int>>();
  Future<int> f = WithAbort(source, p->GetFuture());
  EXPECT_FALSE(f.Available());
  source.RequestAbort();
  Drain();
  ASSERT_TRUE(f.Failed());
  EXPECT_THROW(f.Get(), AbortRequested);
  p->SetValue(1);  // the input resolving later is harmless
  p.reset();
  Drain();
}

TEST_F(SyncTest, WithAbortPassesResultsThroughWhenNotAborted) {
  AbortSource source;
  Promise<int> p;
  Future<int> f = WithAbort(source, p.GetFuture());
  p.SetValue(5);
  Drain();
  source.RequestAbort();  // too late to matter
  EXPECT_EQ(f.Get(), 5);

  Future<int> ready = WithAbort(source, MakeReadyFuture(3));
  EXPECT_EQ(ready.Get(), 3) << "an available input wins even over an aborted source";
  Promise<int> q;
  Future<int> refused = WithAbort(source, q.GetFuture());
  ASSERT_TRUE(refused.Failed()) << "an aborted source fails a pending wait at once";
  EXPECT_THROW(refused.Get(), AbortRequested);
}

TEST_F(SyncTest, AbortBetweenInputResolutionAndForwardingIsSafe) {
  AbortSource source;
  Promise<int> p;
  Future<int> f = WithAbort(source, p.GetFuture());
  p.SetValue(1);          // forwarding is now queued
  source.RequestAbort();  // and the abort comes before it runs
  Drain();
  EXPECT_THROW(f.Get(), AbortRequested);
}

Future<std::string> AwaitWithAbort(AbortSource& source, Future<int> in) {
  try {
    co_await WithAbort(source, std::move(in));
  } catch (const AbortRequested&) {
    co_return "aborted";
  }
  co_return "completed";
}

TEST_F(SyncTest, CoroutinesSeeAbortRequested) {
  AbortSource source;
  Promise<int> p;
  Future<std::string> f = AwaitWithAbort(source, p.GetFuture());
  source.RequestAbort();
  Drain();
  EXPECT_EQ(f.Get(), "aborted");
}

TEST_F(SyncTest, DroppedWithAbortFutureIsFreed) {
  AbortSource source;
  Promise<int> p;
  { Future<int> dropped = WithAbort(source, p.GetFuture()); }
  source.RequestAbort();
  p.SetValue(1);
  Drain();  // ASan checks nothing leaked or was used after free
}

}  // namespace
}  // namespace kev
