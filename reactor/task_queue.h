// TaskQueue: the shard-local run queue that every continuation, coroutine resumption and fiber
// switch in kev goes through.
//
// A Task is an intrusive node: whoever schedules it owns its storage (usually it is embedded in
// a future's shared state, a coroutine awaiter or a fiber record), so Schedule() never
// allocates. The reactor loop calls RunReady() once per turn; RunReady() runs tasks in FIFO
// order until the queue is empty or the turn's time quota is spent, so a flood of ready work
// cannot starve I/O polling.
//
//   struct Hello final : kev::Task {
//     void Run() noexcept override { std::puts("hello"); }
//   };
//   kev::TaskQueue queue;
//   kev::TaskQueue::Scope scope(&queue);  // futures created here schedule onto `queue`
//   Hello hello;
//   queue.Schedule(&hello);
//   while (!queue.Empty()) queue.RunReady();
//
// Threading: a TaskQueue belongs to one thread (its shard). All members except
// RequestPreempt() must be called on that thread. Cross-shard work arrives through the SMP
// rings, which schedule onto the destination shard's queue from that shard's own thread.
#ifndef KEV_REACTOR_TASK_QUEUE_H_
#define KEV_REACTOR_TASK_QUEUE_H_

#include <atomic>
#include <chrono>
#include <cstddef>

namespace kev {

class TaskQueue;

// A unit of work that a TaskQueue runs once per Schedule(). Subclasses implement Run(); the
// object must stay alive (and must not be scheduled again) until Run() has started. Run() may
// destroy the Task itself and may schedule it again.
class Task {
 public:
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;

  // Called by TaskQueue::RunReady() on the queue's thread. Errors cannot escape a task: there
  // is nobody to report them to, so it is noexcept and failures travel through futures instead.
  virtual void Run() noexcept = 0;

 protected:
  Task() = default;
  // Not virtual: the queue never owns or deletes tasks.
  ~Task() = default;

 private:
  friend class TaskQueue;  // The queue links tasks through next_; nothing else touches it.
  Task* next_ = nullptr;
  bool queued_ = false;  // Catches double scheduling, which would corrupt the list.
};

// A FIFO of Tasks with a per-turn time quota. Not copyable or movable (tasks and the
// thread-local "current queue" point at it).
class TaskQueue {
 public:
  using Clock = std::chrono::steady_clock;

  // The default turn quota: long enough to amortise a poll of the I/O backend, short enough
  // that a busy shard still polls 2000 times a second (Seastar uses 500us as well).
  static constexpr std::chrono::nanoseconds kDefaultQuota = std::chrono::microseconds(500);

  // RunReady() reads the clock once every this many tasks. A clock read is a vDSO call of
  // ~20 ns; most continuations run in well under 1 us, so checking every 16 tasks costs about
  // 1 ns per task. The quota is counted from the turn's first clock read (at the 16th task, or
  // the first NeedPreempt()), so a short turn reads no clock at all (a 1-task turn, as a
  // coroutine resumed per turn: BM_CoroutineResume 49 -> 31 ns), and a turn overshoots its quota
  // by at most 2 x 16 tasks.
  static constexpr int kTasksPerClockRead = 16;

  TaskQueue() = default;
  TaskQueue(const TaskQueue&) = delete;
  TaskQueue& operator=(const TaskQueue&) = delete;

  // Tasks still queued are abandoned, neither run nor freed (their owners own them). Must not
  // be called while this queue is running or is the current queue of the calling thread.
  ~TaskQueue();

  // Appends `task` to the run list. O(1), no allocation, no lock. `task` must not already be
  // queued (checked: aborts). If called while RunReady() runs, the task runs in the same turn
  // unless the quota ends it first.
  void Schedule(Task* task) noexcept;

  // Queues `task` for the *next* turn: it becomes runnable when RunReady() is next called, after
  // the tasks already queued then. Yield() uses this so that a yielding loop lets the reactor
  // poll I/O before it continues, instead of spinning inside one turn.
  void ScheduleNextTurn(Task* task) noexcept;

  // Runs queued tasks in FIFO order (tasks they schedule included) until none is left, the
  // quota is used up (checked every kTasksPerClockRead tasks and counted from the first check,
  // so at least that many run when enough are queued), or RequestPreempt() was called (checked
  // after every task). Installs this
  // queue as the current queue while it runs. Returns how many tasks ran. Must not be called
  // from inside a task (no nesting; checked).
  size_t RunReady(std::chrono::nanoseconds quota = kDefaultQuota) noexcept;

  // True when no task is queued for this turn or the next. The reactor blocks in its poller
  // only when this is true.
  bool Empty() const noexcept { return head_ == nullptr && next_turn_head_ == nullptr; }

  // Number of queued tasks (this turn and next), for metrics and tests.
  size_t Size() const noexcept { return size_; }

  // True when the task running now should let others run: the turn's quota is spent or
  // RequestPreempt() was called. Outside RunReady() it is false (there is no turn to end).
  // Cost: one relaxed atomic load plus one steady_clock read (vDSO, ~20 ns, no syscall); call
  // it every few microseconds of work, not every few instructions.
  bool NeedPreempt() const noexcept;

  // Asks the running turn to end early: RunReady() returns after the current task, and
  // NeedPreempt() is true until the turn ends. Thread-safe (a relaxed atomic store) so that
  // another shard or a signal handler may call it; a request made between turns is dropped when
  // the next turn starts.
  void RequestPreempt() noexcept { preempt_requested_.store(true, std::memory_order_relaxed); }

  // The queue installed on the calling thread (by Scope or by a running RunReady()), or null.
  static TaskQueue* Current() noexcept { return current_; }

  // Like Current(), but aborts with `what` in the message when no queue is installed. Used where
  // a pending operation must be resumed later and there is nowhere to resume it.
  static TaskQueue& CurrentOrDie(const char* what) noexcept;

  // Installs a queue as the calling thread's current queue for the Scope's lifetime, restoring
  // the previous one (possibly null) on destruction. Scopes nest; destroy them in reverse order.
  class Scope {
   public:
    explicit Scope(TaskQueue* queue) noexcept : previous_(current_) { current_ = queue; }
    ~Scope() { current_ = previous_; }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    TaskQueue* previous_;
  };

 private:
  Task* PopFront() noexcept;
  void SpliceNextTurn() noexcept;

  // Run list (this turn) and next-turn list; singly linked through Task::next_.
  Task* head_ = nullptr;
  Task* tail_ = nullptr;
  Task* next_turn_head_ = nullptr;
  Task* next_turn_tail_ = nullptr;
  size_t size_ = 0;

  // Turn state, valid while running_.
  bool running_ = false;
  // The end of the quota, set at the turn's first clock read (StartedDeadline).
  Clock::time_point StartedDeadline() const noexcept;
  std::chrono::nanoseconds quota_{};
  mutable bool deadline_started_ = false;
  mutable Clock::time_point deadline_{};
  std::atomic<bool> preempt_requested_{false};

  static inline thread_local TaskQueue* current_ = nullptr;
};

}  // namespace kev

#endif  // KEV_REACTOR_TASK_QUEUE_H_
