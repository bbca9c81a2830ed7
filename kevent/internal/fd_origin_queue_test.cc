// The OS origins on a bare Queue driven by hand, as a reactor shard uses them (no C API, no
// lock): readiness and AIO through Poller::Wait, and destruction in either order.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>

#include "gtest/gtest.h"
#include "kevent/internal/aio_origin.h"
#include "kevent/internal/queue.h"
#include "kevent/poller.h"

namespace kev::kevent_internal {
namespace {

class QueueOriginTest : public ::testing::TestWithParam<PollerBackend> {
 protected:
  void SetUp() override {
    poller_ = Poller::Create(GetParam());
    ASSERT_NE(poller_, nullptr);
    queue_ = std::make_unique<Queue>(QueueOptions{.poller = poller_.get()});
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv_), 0);
  }
  void TearDown() override {
    queue_.reset();  // first, as a Reactor does: operations in flight are orphaned
    poller_.reset();
    close(sv_[0]);
    close(sv_[1]);
  }
  // Polls until something is ready (bounded: a lost event fails the test instead of hanging).
  void PollUntilReady() {
    for (int i = 0; i < 100 && queue_->ready_count() == 0; ++i) {
      queue_->BeforeWait();
      ASSERT_GE(poller_->Wait(std::chrono::milliseconds(100)), 0);
    }
  }

  std::unique_ptr<Poller> poller_;
  std::unique_ptr<Queue> queue_;
  int sv_[2];
};

TEST_P(QueueOriginTest, SocketReadinessThroughWait) {
  Request r(ukevent{});
  r.uk.type = KEVENT_SOCKET;
  r.uk.id.raw[0] = static_cast<uint32_t>(sv_[0]);
  r.uk.event = KEVENT_SOCKET_RECV;
  queue_->AddRequest(&r);
  ASSERT_EQ(r.uk.ret_flags, 0u);
  ASSERT_EQ(write(sv_[1], "x", 1), 1);
  PollUntilReady();
  ukevent out;
  ASSERT_EQ(queue_->Dequeue(&out, 1), 1u);
  EXPECT_EQ(out.ret_data[0], static_cast<uint32_t>(KEVENT_SOCKET_RECV));
  queue_->RemoveRequest(&r);
}

TEST_P(QueueOriginTest, AioReadThroughWait) {
  ASSERT_EQ(write(sv_[1], "abc", 3), 3);
  char buf[8];
  const long cookie = queue_->StartAio(MakeAioRead(sv_[0], buf, sizeof(buf), -1));
  ASSERT_GT(cookie, 0);
  PollUntilReady();
  ukevent out;
  ASSERT_EQ(queue_->Dequeue(&out, 1), 1u);
  EXPECT_EQ(out.id.raw_u64, static_cast<uint64_t>(cookie));
  EXPECT_EQ(out.ret_data[0], 3u);
}

TEST_P(QueueOriginTest, QueueDestroyedWithPollsAndOperationsInFlight) {
  ukevent uk{};
  uk.type = KEVENT_POLL;
  uk.id.raw[0] = static_cast<uint32_t>(sv_[0]);
  uk.event = KEVENT_POLL_POLLIN;
  queue_->Ctl(KEVENT_CTL_ADD, uk);
  ASSERT_EQ(uk.ret_flags, 0u);
  static char buf[8];
  ASSERT_GT(queue_->StartAio(MakeAioRead(sv_[0], buf, sizeof(buf), -1)), 0);
  ASSERT_GE(poller_->Wait(std::chrono::nanoseconds(0)), 0);  // submitted
  EXPECT_GT(poller_->InFlight(), 0u);
  // TearDown destroys the queue, then the poller, which completes the orphans.
}

INSTANTIATE_TEST_SUITE_P(Backends, QueueOriginTest,
                         ::testing::Values(PollerBackend::kIoUring, PollerBackend::kEpoll));

}  // namespace
}  // namespace kev::kevent_internal
