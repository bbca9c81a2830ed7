// Regression tests for bugs found by the fuzz targets and the microbenchmarks of tests/fuzz and
// tests/perf, named after the bug. Each runs on both poller backends (KEV_BACKEND is read by
// kevent_init).
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"
#include "kevent/kevent.h"

namespace {

class KeventRegressionTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    setenv("KEV_BACKEND", GetParam(), 1);
    kfd_ = kevent_init(nullptr, 0, 0);
    ASSERT_GE(kfd_, 0);
  }
  void TearDown() override {
    kevent_close(kfd_);
    unsetenv("KEV_BACKEND");
  }
  int kfd_ = -1;
};

// Found by tests/perf/fd_readiness_bench (BM_KeventPipeEt hung) at d4f2dc9; fixed by be84edf (ET
// through a private EPOLLET set). Before the fix, an edge-triggered readiness
// request is re-armed only when BeforeWait samples its fd and finds the condition cleared. If the
// user drains the fd and new data arrives before the next kevent call samples it (here: read,
// then write, then wait), the condition never looks cleared, the request stays in
// edge_waiting_ with no poll armed, and the new activity (a new edge) is never delivered.
void DrainThenRefillIsANewEdge(int kfd, int type, int rd, int wr,
                               int (*get)(int, timespec, ukevent*)) {
  ukevent uk{};
  uk.type = type;
  uk.event = KEVENT_SOCKET_RECV;
  uk.req_flags = KEVENT_REQ_ET;
  uk.id.raw[0] = rd;
  ASSERT_EQ(kevent_ctl(kfd, KEVENT_CTL_ADD, 1, &uk), 1);
  ASSERT_EQ(uk.ret_flags, 0u);
  char byte;
  ukevent out{};
  for (int round = 0; round < 3; ++round) {
    ASSERT_EQ(write(wr, "x", 1), 1);
    ASSERT_EQ(get(kfd, timespec{2, 0}, &out), 1) << "edge " << round << " lost";
    EXPECT_EQ(out.id.raw[0], static_cast<uint32_t>(rd));
    ASSERT_EQ(read(rd, &byte, 1), 1);  // drained; the next write is a new edge
  }
}

int Get(int kfd, timespec timeout, ukevent* out) {
  return kevent_get_events(kfd, 1, 1, timeout, out, 0);
}

TEST_P(KeventRegressionTest, PipeEtDrainThenRefillIsDelivered) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
  DrainThenRefillIsANewEdge(kfd_, KEVENT_PIPE, p[0], p[1], Get);
  close(p[0]);
  close(p[1]);
}

TEST_P(KeventRegressionTest, SocketEtDrainThenRefillIsDelivered) {
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s), 0);
  DrainThenRefillIsANewEdge(kfd_, KEVENT_SOCKET, s[0], s[1], Get);
  close(s[0]);
  close(s[1]);
}

INSTANTIATE_TEST_SUITE_P(Backends, KeventRegressionTest, ::testing::Values("io_uring", "epoll"),
                         [](const auto& info) {
                           return std::string(info.param) == "io_uring" ? "IoUring" : "Epoll";
                         });

}  // namespace
