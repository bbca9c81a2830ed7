// The epoll backend's registration reuse on the receive path, which net::Connection's reads
// rely on (a receive parks on the socket's existing registration without an epoll_ctl; see
// kevent/epoll_poller.h, FdState). Here because net/ is its user and kevent/BUILD is shared.
//
// The hazard that reuse brings: a socket closed with a plain close(2) (not Poller::Close) loses
// its kernel registration silently, and a new socket that gets the same number must still have
// its receives reported. These tests close behind the poller's back and check that.
#include <poll.h>
#include <sys/socket.h>
#include <cerrno>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "gtest/gtest.h"
#include "kevent/poller.h"

namespace kev {
namespace {

struct Done final : IoCompletion {
  void OnComplete(int32_t r, uint32_t f) noexcept override {
    result = r;
    flags = f;
    ++count;
  }
  int32_t result = 0;
  uint32_t flags = 0;
  int count = 0;
};

class EpollRegistrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int error = 0;
    poller_ = Poller::Create(PollerBackend::kEpoll, {}, &error);
    ASSERT_NE(poller_, nullptr) << error;
  }

  static void Pair(int fds[2]) {
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  }

  // Waits (in 50 ms steps, at most ~5 s: a hang fails instead of blocking) until `done` has
  // completed.
  void WaitFor(const Done& done) {
    for (int i = 0; i < 100 && done.count == 0; ++i) {
      ASSERT_GE(poller_->Wait(std::chrono::milliseconds(50)), 0);
    }
    ASSERT_EQ(done.count, 1);
  }

  // One pooled receive of `text` on `fd`, written by `peer`; gives the buffer back.
  void RoundTrip(int fd, int peer, std::string_view text) {
    Done done;
    poller_->RecvBufferSelect(fd, 0, &done);
    ASSERT_EQ(::write(peer, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    WaitFor(done);
    ASSERT_EQ(done.result, static_cast<int32_t>(text.size()));
    ASSERT_NE(done.flags & kCompletionBuffer, 0u);
    uint16_t id = CompletionBufferId(done.flags);
    EXPECT_EQ(std::memcmp(poller_->SelectedBuffer(id).data(), text.data(), text.size()), 0);
    poller_->ReturnBuffer(id);
  }

  std::unique_ptr<Poller> poller_;
};

TEST_F(EpollRegistrationTest, ManyReceivesOnOneSocket) {
  int s[2];
  Pair(s);
  // Every receive after the first parks on the registration the first one made.
  for (int i = 0; i < 1000; ++i) RoundTrip(s[0], s[1], "ping");
  ::close(s[0]);
  ::close(s[1]);
}

TEST_F(EpollRegistrationTest, EdgeTriggeredReceiveGetsEverything) {
  // A receive parks edge-triggered (after the socket was drained); bytes left behind by a full
  // buffer are fetched by the next receive without any new edge, and a later arrival is one.
  int s[2];
  Pair(s);
  RoundTrip(s[0], s[1], "warm");  // sets the pool up; the socket is drained
  const size_t buffer = poller_->SelectedBuffer(0).size();
  std::string big(2 * buffer + 100, 'b');
  Done first;
  poller_->RecvBufferSelect(s[0], 0, &first);  // parks (drained), edge-triggered
  ASSERT_EQ(::write(s[1], big.data(), big.size()), static_cast<ssize_t>(big.size()));
  size_t got = 0;
  WaitFor(first);
  ASSERT_GT(first.result, 0);
  got += static_cast<size_t>(first.result);
  poller_->ReturnBuffer(CompletionBufferId(first.flags));
  while (got < big.size()) {  // no more writes: the rest must come without a new edge
    Done next;
    poller_->RecvBufferSelect(s[0], 0, &next);
    WaitFor(next);
    ASSERT_GT(next.result, 0);
    got += static_cast<size_t>(next.result);
    poller_->ReturnBuffer(CompletionBufferId(next.flags));
  }
  EXPECT_EQ(got, big.size());
  RoundTrip(s[0], s[1], "after");  // drained again: parks, and the next arrival is reported
  ::close(s[0]);
  ::close(s[1]);
}

TEST_F(EpollRegistrationTest, PollAddJoiningAnEdgeTriggeredReceiveStaysLevelTriggered) {
  // A receive parks edge-triggered; a multishot PollAdd joining the same fd must still be
  // reported at every Wait() while bytes wait (regression: it kept the receive's EPOLLET
  // registration and was reported once).
  int s[2];
  Pair(s);
  RoundTrip(s[0], s[1], "warm");  // sets the pool up; the socket is drained
  const size_t buffer = poller_->SelectedBuffer(0).size();
  Done recv;
  poller_->RecvBufferSelect(s[0], 0, &recv);  // parks (drained), edge-triggered
  Done poll;
  poller_->PollAdd(s[0], POLLIN, /*multishot=*/true, &poll);
  std::string big(buffer + 100, 'b');  // one full buffer, 100 bytes left waiting
  ASSERT_EQ(::write(s[1], big.data(), big.size()), static_cast<ssize_t>(big.size()));
  WaitFor(recv);
  ASSERT_EQ(recv.result, static_cast<int32_t>(buffer));
  poller_->ReturnBuffer(CompletionBufferId(recv.flags));
  const int reported = poll.count;
  for (int i = 0; i < 3; ++i) {
    ASSERT_GE(poller_->Wait(std::chrono::milliseconds(50)), 0);
  }
  EXPECT_GE(poll.count, reported + 3) << "level-triggered: one report per Wait() while ready";
  EXPECT_NE(poll.flags & kCompletionMore, 0u);
  poller_->Cancel(&poll);
  for (int i = 0; i < 100 && (poll.flags & kCompletionMore) != 0; ++i) {
    ASSERT_GE(poller_->Wait(std::chrono::milliseconds(50)), 0);
  }
  EXPECT_EQ(poll.flags & kCompletionMore, 0u);
  ::close(s[0]);
  ::close(s[1]);
}

TEST_F(EpollRegistrationTest, PooledReceiveParkedOnAnEmptyPoolSeesWaitingBytes) {
  PollerOptions options;
  options.recv_buffer_count = 1;
  int error = 0;
  poller_ = Poller::Create(PollerBackend::kEpoll, options, &error);
  ASSERT_NE(poller_, nullptr);
  int s[2];
  Pair(s);
  Done warm;  // sets the pool up, so its buffer size is known
  poller_->RecvBufferSelect(s[0], 0, &warm);
  ASSERT_EQ(::write(s[1], "w", 1), 1);
  WaitFor(warm);
  poller_->ReturnBuffer(CompletionBufferId(warm.flags));
  const std::string big(poller_->SelectedBuffer(0).size() + 1, 'a');
  ASSERT_EQ(::write(s[1], big.data(), big.size()), static_cast<ssize_t>(big.size()));
  Done first;
  poller_->RecvBufferSelect(s[0], 0, &first);
  WaitFor(first);
  // A full buffer, held: one byte is left in the socket, its edge already reported.
  ASSERT_EQ(first.result, static_cast<int32_t>(big.size() - 1));
  // The pool is empty, so this receive parks without trying its recv: the byte already
  // waiting must be seen at once (-ENOBUFS: the caller then receives into its own memory),
  // not only by the unverified-registration check 10 ms later.
  Done second;
  poller_->RecvBufferSelect(s[0], 0, &second);
  for (int i = 0; i < 3 && second.count == 0; ++i) {
    ASSERT_GE(poller_->Wait(std::chrono::milliseconds(0)), 0);
  }
  EXPECT_EQ(second.count, 1);
  EXPECT_EQ(second.result, -ENOBUFS);
  poller_->ReturnBuffer(CompletionBufferId(first.flags));
  Done third;  // the last byte, now that a buffer is back
  poller_->RecvBufferSelect(s[0], 0, &third);
  WaitFor(third);
  EXPECT_EQ(third.result, 1);
  if (third.result > 0) poller_->ReturnBuffer(CompletionBufferId(third.flags));
  ::close(s[0]);
  ::close(s[1]);
}

TEST_F(EpollRegistrationTest, NumberReusedAfterPlainCloseStillReceives) {
  int a[2];
  Pair(a);
  RoundTrip(a[0], a[1], "first");  // leaves a lazy registration and a "drained" socket
  const int old_fd = a[0];
  ::close(a[0]);  // behind the poller's back: the kernel drops the registration
  ::close(a[1]);
  int b[2];
  Pair(b);
  if (b[0] != old_fd) {
    ::close(b[0]);
    ::close(b[1]);
    GTEST_SKIP() << "the descriptor number was not reused";
  }
  // This receive parks on a registration that no longer exists; the poller must notice (by
  // re-registering it once it stays unconfirmed) rather than wait forever.
  RoundTrip(b[0], b[1], "second");
  // And the socket keeps working afterwards.
  RoundTrip(b[0], b[1], "third");
  ::close(b[0]);
  ::close(b[1]);
}

TEST_F(EpollRegistrationTest, UnconfirmedReceiveOnAClosedNumberFails) {
  int a[2];
  Pair(a);
  RoundTrip(a[0], a[1], "first");
  // The next receive reuses the registration, then its socket is closed behind the poller's
  // back: the re-registration finds no descriptor and the receive completes with EBADF.
  Done done;
  poller_->RecvBufferSelect(a[0], 0, &done);
  ::close(a[0]);
  WaitFor(done);
  EXPECT_EQ(done.result, -EBADF);
  EXPECT_EQ(done.flags & kCompletionBuffer, 0u);
  ::close(a[1]);
}

}  // namespace
}  // namespace kev
