// Semaphore: a counter of units that asynchronous code waits on, with FIFO fairness. Used to
// bound concurrency (at most N requests in flight) and as a simple async mutex (N = 1).
//
//   kev::Semaphore slots(64);                       // at most 64 concurrent uploads
//
//   kev::Future<void> Upload(File f) {
//     kev::SemaphoreUnits units = co_await kev::GetUnits(slots, 1);
//     co_await Send(std::move(f));
//   }                                               // units returned here, even on error
//
// Waiters are served strictly in arrival order: a large Wait(n) at the head is not overtaken by
// later small ones (no starvation). Broken() fails every present and future wait, for shutdown.
//
// Threading: shard-local.
#ifndef KEV_REACTOR_SEMAPHORE_H_
#define KEV_REACTOR_SEMAPHORE_H_

#include <cstddef>
#include <exception>
#include <utility>

#include "reactor/abort_source.h"
#include "reactor/future.h"

namespace kev {

class Semaphore {
 public:
  // Starts with `count` units available.
  explicit Semaphore(size_t count) noexcept : count_(count) {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;
  // Waiters still queued fail with kev::BrokenSemaphore (nothing waits forever).
  ~Semaphore();

  // Takes `n` units: an available future if they are free and nobody waits before us (no
  // allocation); otherwise a pending one (one allocation: the queued waiter, which is also the
  // future's state) that resolves once `n` units are signalled and earlier waiters are served.
  // Fails with the broken exception after Broken().
  Future<void> Wait(size_t n = 1);

  // Like Wait(n), but if `abort` fires first the wait is withdrawn (its place in the queue is
  // given up, no units are taken) and the future fails with the abort's reason.
  Future<void> Wait(AbortSource& abort, size_t n = 1);

  // Takes `n` units if they are free and nobody waits; never waits.
  bool TryWait(size_t n = 1) noexcept;

  // Returns `n` units and wakes the waiters that can now be served, in order (their futures
  // resolve through the TaskQueue). Ignored after Broken().
  void Signal(size_t n = 1) noexcept;

  // Fails every queued waiter and every later Wait() with `ex` (kev::BrokenSemaphore if null).
  void Broken(std::exception_ptr ex = nullptr) noexcept;

  // Units free now.
  size_t Available() const noexcept { return count_; }
  // Number of queued waiters.
  size_t Waiters() const noexcept { return waiters_; }

 private:
  class Waiter;
  Future<void> Enqueue(size_t n, AbortSource* abort);
  void Unlink(Waiter* w) noexcept;
  void WakeWaiters() noexcept;
  void Withdraw(Waiter* w, const std::exception_ptr& reason) noexcept;

  size_t count_;
  size_t waiters_ = 0;
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
  std::exception_ptr broken_;
};

// Units taken from a Semaphore, returned (Signal) when this object dies. Move-only.
class SemaphoreUnits {
 public:
  SemaphoreUnits() noexcept = default;
  SemaphoreUnits(Semaphore& semaphore, size_t n) noexcept : semaphore_(&semaphore), n_(n) {}
  SemaphoreUnits(SemaphoreUnits&& other) noexcept
      : semaphore_(std::exchange(other.semaphore_, nullptr)), n_(std::exchange(other.n_, 0)) {}
  SemaphoreUnits& operator=(SemaphoreUnits&& other) noexcept {
    if (this != &other) {
      Release();
      semaphore_ = std::exchange(other.semaphore_, nullptr);
      n_ = std::exchange(other.n_, 0);
    }
    return *this;
  }
  ~SemaphoreUnits() { Release(); }

  // Returns the units now.
  void Release() noexcept {
    if (semaphore_ != nullptr) std::exchange(semaphore_, nullptr)->Signal(n_);
    n_ = 0;
  }
  size_t count() const noexcept { return n_; }

 private:
  Semaphore* semaphore_ = nullptr;
  size_t n_ = 0;
};

// Waits for `n` units and returns them as an RAII object. The Semaphore must outlive it.
inline Future<SemaphoreUnits> GetUnits(Semaphore& semaphore, size_t n = 1) {
  return semaphore.Wait(n).Then([&semaphore, n] { return SemaphoreUnits(semaphore, n); });
}

}  // namespace kev

#endif  // KEV_REACTOR_SEMAPHORE_H_
