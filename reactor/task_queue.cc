#include "reactor/task_queue.h"

#include <cstdio>
#include <cstdlib>

#include "reactor/internal/check.h"

namespace kev {

TaskQueue::~TaskQueue() {
  KEV_CHECK_MSG(!running_, "TaskQueue destroyed while RunReady() is running");
  KEV_CHECK_MSG(current_ != this, "TaskQueue destroyed while installed as the current queue");
}

void TaskQueue::Schedule(Task* task) noexcept {
  KEV_CHECK_MSG(!task->queued_, "Task scheduled twice before it ran");
  task->queued_ = true;
  task->next_ = nullptr;
  if (tail_ == nullptr) {
    head_ = task;
  } else {
    tail_->next_ = task;
  }
  tail_ = task;
  ++size_;
}

void TaskQueue::ScheduleNextTurn(Task* task) noexcept {
  KEV_CHECK_MSG(!task->queued_, "Task scheduled twice before it ran");
  task->queued_ = true;
  task->next_ = nullptr;
  if (next_turn_tail_ == nullptr) {
    next_turn_head_ = task;
  } else {
    next_turn_tail_->next_ = task;
  }
  next_turn_tail_ = task;
  ++size_;
}

Task* TaskQueue::PopFront() noexcept {
  Task* task = head_;
  head_ = task->next_;
  if (head_ == nullptr) tail_ = nullptr;
  task->next_ = nullptr;
  task->queued_ = false;  // Before Run(): the task may reschedule itself.
  --size_;
  return task;
}

void TaskQueue::SpliceNextTurn() noexcept {
  if (next_turn_head_ == nullptr) return;
  if (tail_ == nullptr) {
    head_ = next_turn_head_;
  } else {
    tail_->next_ = next_turn_head_;
  }
  tail_ = next_turn_tail_;
  next_turn_head_ = next_turn_tail_ = nullptr;
}

size_t TaskQueue::RunReady(std::chrono::nanoseconds quota) noexcept {
  KEV_CHECK_MSG(!running_, "TaskQueue::RunReady() called from inside a task (nested turn)");
  Scope scope(this);
  SpliceNextTurn();
  running_ = true;
  preempt_requested_.store(false, std::memory_order_relaxed);
  // The clock is started lazily (StartedDeadline): a turn of fewer than kTasksPerClockRead
  // tasks that never asks NeedPreempt() reads no clock at all.
  quota_ = quota;
  deadline_started_ = false;
  size_t ran = 0;
  while (head_ != nullptr) {
    PopFront()->Run();
    ++ran;
    if (preempt_requested_.load(std::memory_order_relaxed)) break;
    if (ran % kTasksPerClockRead == 0 && Clock::now() >= StartedDeadline()) break;
  }
  running_ = false;
  return ran;
}

bool TaskQueue::NeedPreempt() const noexcept {
  if (!running_) return false;
  if (preempt_requested_.load(std::memory_order_relaxed)) return true;
  return Clock::now() >= StartedDeadline();
}

TaskQueue::Clock::time_point TaskQueue::StartedDeadline() const noexcept {
  if (!deadline_started_) {
    deadline_ = Clock::now() + quota_;  // the turn's first clock read (vDSO, no syscall)
    deadline_started_ = true;
  }
  return deadline_;
}

TaskQueue& TaskQueue::CurrentOrDie(const char* what) noexcept {
  if (current_ == nullptr) {
    std::fprintf(stderr,
                 "kev: contract violation: %s needs a current TaskQueue on this thread "
                 "(run it inside TaskQueue::RunReady() or a TaskQueue::Scope)\n",
                 what);
    std::fflush(stderr);
    std::abort();
  }
  return *current_;
}

}  // namespace kev
