// kevent/internal/os_origin_fixture.h: the fixture shared by the tests of the OS-driven origins
// (SIGNAL, INODE, POSIX_TIMER): a real Poller of the parameter's backend and a Queue on it, and
// helpers that drive the poller until events arrive (generous 20 s bounds, so a bug fails rather
// than hangs; never a timing assertion).
#ifndef KEV_KEVENT_INTERNAL_OS_ORIGIN_FIXTURE_H_
#define KEV_KEVENT_INTERNAL_OS_ORIGIN_FIXTURE_H_

#include <string.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kevent/internal/queue.h"
#include "kevent/poller.h"
#include "kevent/ukevent.h"

namespace kev::kevent_internal::test {

inline constexpr uint32_t kDone = KEVENT_RET_DONE;
inline constexpr uint32_t kBroken = KEVENT_RET_BROKEN | KEVENT_RET_DONE;

inline std::string BackendName(const ::testing::TestParamInfo<PollerBackend>& info) {
  return info.param == PollerBackend::kIoUring ? "IoUring" : "Epoll";
}

// A queue with a poller; several may exist in one test.
struct OsQueue {
  std::unique_ptr<Poller> poller;
  std::unique_ptr<Queue> queue;

  uint32_t Ctl(unsigned cmd, ukevent& uk) {
    queue->Ctl(cmd, uk);
    return uk.ret_flags;
  }
  // One turn: poll (up to `timeout`), fire due timers, take what is ready.
  void Turn(std::chrono::milliseconds timeout, std::vector<ukevent>* out) {
    const int rc = poller->Wait(timeout);
    EXPECT_GE(rc, 0) << strerror(-rc);
    queue->ExpireTimers();
    ukevent buf[64];
    const size_t n = queue->Dequeue(buf, 64);
    out->insert(out->end(), buf, buf + n);
  }
};

class OsOriginTest : public ::testing::TestWithParam<PollerBackend> {
 protected:
  void SetUp() override {
    primary_ = MakeQueue();
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_NE(primary_.poller, nullptr);
  }

  OsQueue MakeQueue() {
    OsQueue q;
    int error = 0;
    PollerOptions options;
    options.entries = 64;
    q.poller = Poller::Create(GetParam(), options, &error);
    if (q.poller == nullptr) {
      if (GetParam() == PollerBackend::kIoUring &&
          (error == -ENOSYS || error == -EPERM || error == -EOPNOTSUPP)) {
        skip_reason_ = std::string("io_uring unavailable here: ") + strerror(-error);
      } else {
        ADD_FAILURE() << "Poller::Create: " << strerror(-error);
      }
      return q;
    }
    q.queue = std::make_unique<Queue>(QueueOptions{.poller = q.poller.get()});
    return q;
  }

  Queue& queue() { return *primary_.queue; }
  Poller& poller() { return *primary_.poller; }
  uint32_t Ctl(unsigned cmd, ukevent& uk) { return primary_.Ctl(cmd, uk); }

  // Drives the queues until `done(events of each)` holds. Returns the events (per queue).
  static std::vector<std::vector<ukevent>> DriveUntil(
      std::vector<OsQueue*> queues,
      const std::function<bool(const std::vector<std::vector<ukevent>>&)>& done) {
    std::vector<std::vector<ukevent>> events(queues.size());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done(events)) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "timed out waiting for events";
        break;
      }
      for (size_t i = 0; i < queues.size(); ++i) {
        queues[i]->Turn(std::chrono::milliseconds(queues.size() > 1 ? 5 : 50), &events[i]);
      }
    }
    return events;
  }
  // Drives the primary queue until at least `n` events arrived.
  std::vector<ukevent> WaitEvents(size_t n) {
    return DriveUntil({&primary_}, [n](const auto& e) { return e[0].size() >= n; })[0];
  }
  // Drives the primary queue for a few short turns and returns whatever arrived (to check that
  // nothing more did: a missing event is never waited for with a clock).
  std::vector<ukevent> Settle(int turns = 5) {
    std::vector<ukevent> events;
    for (int i = 0; i < turns; ++i) primary_.Turn(std::chrono::milliseconds(10), &events);
    return events;
  }

  std::string skip_reason_;
  OsQueue primary_;
};

}  // namespace kev::kevent_internal::test

#endif  // KEV_KEVENT_INTERNAL_OS_ORIGIN_FIXTURE_H_
