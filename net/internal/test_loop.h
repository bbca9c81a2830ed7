// net/internal/test_loop.h: a minimal shard for net/ and aio/ tests: a TaskQueue and a Poller of
// the requested backend, installed as the thread's current ones, and Run(future) which turns
// the loop until the future resolves. Test-only; the real loop is reactor/'s Reactor.
//
//   kev::net::internal::TestLoop loop(kev::PollerBackend::kEpoll);
//   int n = loop.Run(SomeCoroutine());
#ifndef KEV_NET_INTERNAL_TEST_LOOP_H_
#define KEV_NET_INTERNAL_TEST_LOOP_H_

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "kevent/poller.h"
#include "net/internal/shard.h"
#include "reactor/future.h"
#include "reactor/task_queue.h"

namespace kev::net::internal {

class TestLoop {
 public:
  explicit TestLoop(PollerBackend backend, unsigned entries = 4096)
      : TestLoop(backend, Entries(entries)) {}
  TestLoop(PollerBackend backend, const PollerOptions& options) {
    int error = 0;
    poller_ = Poller::Create(backend, options, &error);
    if (poller_ == nullptr) {
      std::fprintf(stderr, "TestLoop: cannot create poller: %d\n", error);
      std::abort();
    }
    shard_.emplace(poller_.get());
  }
  TestLoop(const TestLoop&) = delete;
  TestLoop& operator=(const TestLoop&) = delete;

  // Lets every operation finish (so nothing leaks), then tears down.
  ~TestLoop() {
    Drain();
    shard_.reset();
    poller_.reset();  // Delivers final completions of anything left; they may schedule tasks.
    while (!tasks_.Empty()) tasks_.RunReady();
  }

  Poller& poller() { return *poller_; }
  static PollerOptions Entries(unsigned entries) {
    PollerOptions options;
    options.entries = entries;
    return options;
  }
  TaskQueue& tasks() { return tasks_; }

  // Turns the loop until `future` resolves (or `limit` passes: the test fails and aborts, since
  // a hung test would otherwise only time out), then returns its value or rethrows.
  template <class T>
  T Run(Future<T> future, std::chrono::seconds limit = std::chrono::seconds(60)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!future.Available()) {
      Turn();
      if (std::chrono::steady_clock::now() > deadline) {
        std::fprintf(stderr, "TestLoop::Run: future did not resolve in time\n");
        std::abort();
      }
    }
    return future.Get();
  }

  // One loop turn: ready tasks, then the poller (blocking briefly only when idle). Returns the
  // number of completions dispatched.
  int Turn() {
    tasks_.RunReady();
    std::optional<std::chrono::nanoseconds> wait = std::chrono::milliseconds(50);
    if (!tasks_.Empty()) wait = std::chrono::nanoseconds(0);
    int n = poller_->Wait(wait);
    if (n < 0) {
      std::fprintf(stderr, "TestLoop: Poller::Wait failed: %d\n", n);
      std::abort();
    }
    return n;
  }

  // Turns until `idle_turns` turns in a row dispatch nothing (the I/O has stalled, e.g. on a
  // peer that does not read), at most `max_turns` turns.
  void TurnUntilIdle(int idle_turns = 3, int max_turns = 10000) {
    int idle = 0;
    for (int i = 0; i < max_turns && idle < idle_turns; ++i) {
      idle = (Turn() == 0 && tasks_.Empty()) ? idle + 1 : 0;
    }
  }

  // Turns until nothing is in flight and no task is queued.
  void Drain() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while ((poller_->InFlight() > 0 || !tasks_.Empty()) &&
           std::chrono::steady_clock::now() < deadline) {
      Turn();
    }
  }

 private:
  TaskQueue tasks_;
  TaskQueue::Scope scope_{&tasks_};
  std::unique_ptr<Poller> poller_;
  std::optional<ScopedShardPoller> shard_;
};

inline std::string BackendName(const testing::TestParamInfo<PollerBackend>& info) {
  return info.param == PollerBackend::kIoUring ? "IoUring" : "Epoll";
}

}  // namespace kev::net::internal

#endif  // KEV_NET_INTERNAL_TEST_LOOP_H_
