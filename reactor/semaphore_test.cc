#include "reactor/semaphore.h"

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <vector>

#include "gtest/gtest.h"
#include "reactor/abort_source.h"
#include "reactor/combinators.h"
#include "reactor/errors.h"
#include "reactor/future.h"
#include "reactor/internal/alloc_counter.h"
#include "reactor/task_queue.h"

namespace kev {
namespace {

using internal::AllocCounter;

class SemaphoreTest : public ::testing::Test {
 protected:
  void Drain() {
    while (!queue_.Empty()) queue_.RunReady();
  }
  TaskQueue queue_;
  TaskQueue::Scope scope_{&queue_};
};

TEST_F(SemaphoreTest, FreeUnitsAreTakenWithoutWaitingOrAllocating) {
  Semaphore sem(2);
  AllocCounter counter;
  Future<void> a = sem.Wait();
  Future<void> b = sem.Wait();
  EXPECT_EQ(counter.Count(), 0);
  EXPECT_TRUE(a.Available());
  EXPECT_TRUE(b.Available());
  a.Get();
  b.Get();
  EXPECT_EQ(sem.Available(), 0u);
  EXPECT_FALSE(sem.TryWait());
}

TEST_F(SemaphoreTest, WaitBlocksUntilSignal) {
  Semaphore sem(0);
  Future<void> f = sem.Wait();
  EXPECT_FALSE(f.Available());
  EXPECT_EQ(sem.Waiters(), 1u);
  sem.Signal();
  EXPECT_EQ(sem.Waiters(), 0u);
  EXPECT_EQ(sem.Available(), 0u) << "the units went to the waiter";
  Drain();
  ASSERT_TRUE(f.Available());
  f.Get();
}

TEST_F(SemaphoreTest, WaitersAreServedInArrivalOrderWithoutOvertaking) {
  Semaphore sem(0);
  Future<void> big = sem.Wait(2);
  Future<void> small = sem.Wait(1);
  sem.Signal(1);
  Drain();
  EXPECT_FALSE(big.Available());
  EXPECT_FALSE(small.Available()) << "a later small wait must not overtake the big one";
  EXPECT_FALSE(sem.TryWait(1)) << "TryWait must not jump the queue either";
  sem.Signal(1);
  Drain();
  EXPECT_TRUE(big.Available());
  EXPECT_FALSE(small.Available());
  sem.Signal(1);
  Drain();
  EXPECT_TRUE(small.Available());
  big.Get();
  small.Get();
}

TEST_F(SemaphoreTest, BrokenFailsPresentAndFutureWaits) {
  Semaphore sem(0);
  Future<void> waiting = sem.Wait();
  sem.Broken();
  Drain();
  EXPECT_THROW(waiting.Get(), BrokenSemaphore);
  EXPECT_THROW(sem.Wait().Get(), BrokenSemaphore);
  sem.Signal(5);
  EXPECT_FALSE(sem.TryWait());

  Semaphore custom(0);
  Future<void> w = custom.Wait();
  custom.Broken(std::make_exception_ptr(std::runtime_error("shutdown")));
  EXPECT_THROW(w.Get(), std::runtime_error);
}

TEST_F(SemaphoreTest, DestroyingASemaphoreBreaksItsWaiters) {
  auto sem = std::make_unique<Semaphore>(0);
  Future<void> f = sem->Wait();
  sem.reset();
  Drain();
  EXPECT_THROW(f.Get(), BrokenSemaphore);
}

TEST_F(SemaphoreTest, AbortWithdrawsAWait) {
  Semaphore sem(0);
  AbortSource abort;
  Future<void> aborted = sem.Wait(abort, 1);
  Future<void> other = sem.Wait(1);
  EXPECT_EQ(sem.Waiters(), 2u);
  abort.RequestAbort();
  EXPECT_EQ(sem.Waiters(), 1u);
  Drain();
  EXPECT_THROW(aborted.Get(), AbortRequested);
  sem.Signal(1);
  Drain();
  EXPECT_TRUE(other.Available()) << "the withdrawn waiter took no units";
  other.Get();
}

TEST_F(SemaphoreTest, AbortingTheHeadWaiterWakesSmallerOnesBehindIt) {
  Semaphore sem(1);
  AbortSource abort;
  Future<void> big = sem.Wait(abort, 5);
  Future<void> small = sem.Wait(1);
  EXPECT_FALSE(small.Available());
  abort.RequestAbort();
  Drain();
  EXPECT_TRUE(big.Failed());
  EXPECT_TRUE(small.Available());
  small.Get();
  big.GetException();
}

TEST_F(SemaphoreTest, AbortBeforeOrAfterTheWait) {
  Semaphore sem(1);
  AbortSource already;
  already.RequestAbort();
  EXPECT_THROW(sem.Wait(already).Get(), AbortRequested);
  EXPECT_EQ(sem.Available(), 1u);

  AbortSource later;
  Future<void> granted = sem.Wait(later);
  EXPECT_TRUE(granted.Available());
  later.RequestAbort();  // after the grant: no effect
  granted.Get();

  Semaphore empty(0);
  AbortSource after_grant;
  Future<void> w = empty.Wait(after_grant);
  empty.Signal();
  after_grant.RequestAbort();  // the grant came first
  Drain();
  EXPECT_FALSE(w.Failed());
  w.Get();
}

Future<void> CriticalSection(Semaphore& mutex, int* inside, int* max_inside, int* done) {
  SemaphoreUnits units = co_await GetUnits(mutex);
  ++*inside;
  *max_inside = std::max(*max_inside, *inside);
  co_await Yield();  // Hold the units across a turn boundary.
  --*inside;
  ++*done;
}

TEST_F(SemaphoreTest, BoundsConcurrency) {
  for (int limit : {1, 3}) {
    Semaphore sem(limit);
    int inside = 0, max_inside = 0, done = 0;
    std::vector<Future<void>> all;
    for (int i = 0; i < 50; ++i) all.push_back(CriticalSection(sem, &inside, &max_inside, &done));
    Drain();
    EXPECT_EQ(done, 50);
    EXPECT_EQ(max_inside, limit);
    EXPECT_EQ(sem.Available(), static_cast<size_t>(limit)) << "every unit came back";
    for (auto& f : all) f.Get();
  }
}

Future<void> FailWhileHolding(Semaphore& sem) {
  SemaphoreUnits units = co_await GetUnits(sem, 2);
  EXPECT_EQ(units.count(), 2u);
  throw std::runtime_error("failed while holding units");
}

TEST_F(SemaphoreTest, UnitsComeBackOnErrors) {
  Semaphore sem(2);
  Future<void> f = FailWhileHolding(sem);
  Drain();
  EXPECT_THROW(f.Get(), std::runtime_error);
  EXPECT_EQ(sem.Available(), 2u);
}

TEST_F(SemaphoreTest, SemaphoreUnitsMoveAndRelease) {
  Semaphore sem(3);
  ASSERT_TRUE(sem.TryWait(3));
  SemaphoreUnits a(sem, 2);
  SemaphoreUnits b = std::move(a);
  EXPECT_EQ(a.count(), 0u);
  a.Release();  // moved-from: nothing to return
  EXPECT_EQ(sem.Available(), 0u);
  b.Release();
  EXPECT_EQ(sem.Available(), 2u);
  {
    SemaphoreUnits c(sem, 1);
  }
  EXPECT_EQ(sem.Available(), 3u);
}

}  // namespace
}  // namespace kev
