#include "reactor/task_queue.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace kev {
namespace {

using std::chrono::nanoseconds;

// A task that runs a std::function; tests only (allocation does not matter here).
class FnTask final : public Task {
 public:
  explicit FnTask(std::function<void()> fn) : fn_(std::move(fn)) {}
  void Run() noexcept override { fn_(); }

 private:
  std::function<void()> fn_;
};

void Drain(TaskQueue& q) {
  while (!q.Empty()) q.RunReady();
}

TEST(TaskQueueTest, RunsInFifoOrder) {
  TaskQueue q;
  std::vector<int> order;
  FnTask a([&] { order.push_back(1); });
  FnTask b([&] { order.push_back(2); });
  FnTask c([&] { order.push_back(3); });
  q.Schedule(&a);
  q.Schedule(&b);
  q.Schedule(&c);
  EXPECT_EQ(q.Size(), 3u);
  EXPECT_FALSE(q.Empty());
  EXPECT_EQ(q.RunReady(), 3u);
  EXPECT_TRUE(q.Empty());
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(TaskQueueTest, TasksScheduledDuringATurnRunInThatTurn) {
  TaskQueue q;
  std::vector<int> order;
  FnTask second([&] { order.push_back(2); });
  FnTask first([&] {
    order.push_back(1);
    q.Schedule(&second);
  });
  q.Schedule(&first);
  EXPECT_EQ(q.RunReady(), 2u);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(TaskQueueTest, TaskMayRescheduleItself) {
  TaskQueue q;
  int runs = 0;
  FnTask* self = nullptr;
  FnTask task([&] {
    if (++runs < 100) q.Schedule(self);
  });
  self = &task;
  q.Schedule(&task);
  Drain(q);
  EXPECT_EQ(runs, 100);
}

TEST(TaskQueueTest, TaskMayDeleteItself) {
  TaskQueue q;
  struct SelfDeleting final : Task {
    explicit SelfDeleting(bool* ran) : ran(ran) {}
    void Run() noexcept override {
      *ran = true;
      delete this;
    }
    bool* ran;
  };
  bool ran = false;
  q.Schedule(new SelfDeleting(&ran));
  Drain(q);
  EXPECT_TRUE(ran);  // ASan reports a leak or use-after-free if this goes wrong.
}

TEST(TaskQueueTest, NextTurnTasksWaitForTheNextRunReady) {
  TaskQueue q;
  std::vector<int> order;
  FnTask later([&] { order.push_back(3); });
  FnTask now([&] { order.push_back(2); });
  FnTask first([&] {
    order.push_back(1);
    q.ScheduleNextTurn(&later);
    q.Schedule(&now);
  });
  q.Schedule(&first);
  EXPECT_EQ(q.RunReady(), 2u);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_FALSE(q.Empty()) << "a next-turn task is still runnable work";
  EXPECT_EQ(q.Size(), 1u);
  EXPECT_EQ(q.RunReady(), 1u);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(q.Empty());
}

TEST(TaskQueueTest, NextTurnTasksRunAfterTasksAlreadyQueued) {
  TaskQueue q;
  std::vector<int> order;
  FnTask yielded([&] { order.push_back(2); });
  FnTask io([&] { order.push_back(1); });
  q.ScheduleNextTurn(&yielded);
  q.Schedule(&io);  // e.g. an I/O completion delivered between turns
  Drain(q);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(TaskQueueTest, ExhaustedQuotaEndsTheTurnAtTheNextClockRead) {
  TaskQueue q;
  int runs = 0;
  std::vector<std::unique_ptr<FnTask>> tasks;
  for (int i = 0; i < 100; ++i) {
    tasks.push_back(std::make_unique<FnTask>([&] { ++runs; }));
    q.Schedule(tasks.back().get());
  }
  // A zero quota is over at the first clock read, which comes after kTasksPerClockRead tasks.
  EXPECT_EQ(q.RunReady(nanoseconds(0)), size_t{TaskQueue::kTasksPerClockRead});
  EXPECT_EQ(runs, TaskQueue::kTasksPerClockRead);
  Drain(q);
  EXPECT_EQ(runs, 100);
}

TEST(TaskQueueTest, RequestPreemptEndsTheTurnAfterTheCurrentTask) {
  TaskQueue q;
  std::vector<int> order;
  bool need_before = true, need_after = false;
  FnTask b([&] { order.push_back(2); });
  FnTask a([&] {
    order.push_back(1);
    need_before = q.NeedPreempt();
    q.RequestPreempt();
    need_after = q.NeedPreempt();
  });
  q.Schedule(&a);
  q.Schedule(&b);
  EXPECT_EQ(q.RunReady(std::chrono::hours(1)), 1u);
  EXPECT_FALSE(need_before);
  EXPECT_TRUE(need_after);
  EXPECT_EQ(order, (std::vector<int>{1}));
  EXPECT_FALSE(q.NeedPreempt()) << "no turn is running";
  EXPECT_EQ(q.RunReady(std::chrono::hours(1)), 1u) << "the request ended only the last turn";
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(TaskQueueTest, RequestPreemptFromAnotherThread) {
  TaskQueue q;
  std::atomic<bool> spinning{false};
  std::thread requester;
  FnTask spin([&] {
    spinning.store(true);
    while (!q.NeedPreempt()) {  // a long computation that checks for preemption
    }
  });
  FnTask never([] {});
  q.Schedule(&spin);
  q.Schedule(&never);
  requester = std::thread([&] {
    while (!spinning.load()) std::this_thread::yield();
    q.RequestPreempt();
  });
  EXPECT_EQ(q.RunReady(std::chrono::hours(1)), 1u);
  requester.join();
  Drain(q);
}

TEST(TaskQueueTest, NeedPreemptSeesAnExhaustedQuotaInsideATask) {
  TaskQueue q;
  bool need = false;
  FnTask a([&] { need = q.NeedPreempt(); });
  q.Schedule(&a);
  q.RunReady(nanoseconds(0));
  EXPECT_TRUE(need);
}

TEST(TaskQueueTest, CurrentIsInstalledByScopeAndByRunReady) {
  EXPECT_EQ(TaskQueue::Current(), nullptr);
  TaskQueue outer, inner;
  {
    TaskQueue::Scope s1(&outer);
    EXPECT_EQ(TaskQueue::Current(), &outer);
    {
      TaskQueue::Scope s2(&inner);
      EXPECT_EQ(TaskQueue::Current(), &inner);
    }
    EXPECT_EQ(TaskQueue::Current(), &outer);
  }
  EXPECT_EQ(TaskQueue::Current(), nullptr);

  TaskQueue* seen = nullptr;
  FnTask probe([&] { seen = TaskQueue::Current(); });
  inner.Schedule(&probe);
  inner.RunReady();
  EXPECT_EQ(seen, &inner);
  EXPECT_EQ(TaskQueue::Current(), nullptr);
}

TEST(TaskQueueTest, EachThreadHasItsOwnCurrentQueue) {
  TaskQueue main_queue;
  TaskQueue::Scope scope(&main_queue);
  TaskQueue* seen_on_thread = &main_queue;
  int thread_runs = 0;
  std::thread t([&] {
    seen_on_thread = TaskQueue::Current();
    TaskQueue q;  // A second shard: its own queue, no sharing.
    FnTask task([&] { ++thread_runs; });
    for (int i = 0; i < 1000; ++i) {
      q.Schedule(&task);
      q.RunReady();
    }
  });
  t.join();
  EXPECT_EQ(seen_on_thread, nullptr);
  EXPECT_EQ(thread_runs, 1000);
  EXPECT_EQ(TaskQueue::Current(), &main_queue);
}

TEST(TaskQueueTest, ManyTasksThroughOneQueue) {
  TaskQueue q;
  constexpr int kRuns = 1'000'000;
  int runs = 0;
  FnTask* self = nullptr;
  FnTask task([&] {
    if (++runs < kRuns) q.Schedule(self);
  });
  self = &task;
  q.Schedule(&task);
  size_t total = 0;
  while (!q.Empty()) total += q.RunReady();
  EXPECT_EQ(runs, kRuns);
  EXPECT_EQ(total, size_t{kRuns});
}

TEST(TaskQueueDeathTest, SchedulingATaskTwiceAborts) {
  EXPECT_DEATH(
      {
        TaskQueue q;
        FnTask a([] {});
        q.Schedule(&a);
        q.Schedule(&a);
      },
      "Task scheduled twice");
}

TEST(TaskQueueDeathTest, NestedRunReadyAborts) {
  EXPECT_DEATH(
      {
        TaskQueue q;
        FnTask a([&] { q.RunReady(); });
        q.Schedule(&a);
        q.RunReady();
      },
      "nested turn");
}

TEST(TaskQueueDeathTest, CurrentOrDieExplainsWhatNeededAQueue) {
  EXPECT_DEATH(TaskQueue::CurrentOrDie("frobnicate"), "frobnicate needs a current TaskQueue");
}

}  // namespace
}  // namespace kev
