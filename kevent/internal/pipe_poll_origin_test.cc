// PIPE and POLL origins through the C API, on both backends.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kevent/internal/fd_origin_fixture.h"
#include "kevent/internal/poll_origin.h"
#include "kevent/kevent.h"

namespace kev::kevent_internal::test {
namespace {

using PipeTest = OriginTest;
using PollTest = OriginTest;

TEST_P(PipeTest, ReadEndBecomesReadableAndWriteEndIsWritable) {
  int p[2];
  Pipe(p);
  EXPECT_EQ(Add(Req(KEVENT_PIPE, p[0], KEVENT_SOCKET_RECV)).ret_flags, 0u);
  ukevent w = Add(Req(KEVENT_PIPE, p[1], KEVENT_SOCKET_SEND, KEVENT_REQ_ONESHOT));
  EXPECT_EQ(w.ret_flags, kDone);
  EXPECT_EQ(w.ret_data[0], static_cast<uint32_t>(KEVENT_SOCKET_SEND));
  EXPECT_EQ(w.ret_data[1], 0u);
  Write(p[1], "data");
  std::vector<ukevent> ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, static_cast<uint32_t>(KEVENT_PIPE));
  EXPECT_EQ(ev[0].ret_data[0], static_cast<uint32_t>(KEVENT_SOCKET_RECV));
  EXPECT_EQ(ev[0].ret_data[1], 0u);
  EXPECT_EQ(Drain(p[0]), "data");
  EXPECT_TRUE(Get(1, kBrief).empty());
}

// Level-triggered re-checks and confirmations are batched (one poll(2) over many fds): each
// pipe must still be judged on its own. Half the pipes are drained after the first delivery;
// only the other half comes back, and once all are drained nothing does.
TEST_P(PipeTest, BatchedRechecksJudgeEachPipeOnItsOwn) {
  constexpr int kPipes = 40;
  int p[kPipes][2];
  for (auto& fds : p) {
    Pipe(fds);
    ASSERT_EQ(Add(Req(KEVENT_PIPE, fds[0], KEVENT_SOCKET_RECV)).ret_flags, 0u);
    Write(fds[1], "x");
  }
  std::vector<ukevent> ev = Get(kPipes, kLong);
  ASSERT_EQ(ev.size(), static_cast<size_t>(kPipes));
  for (int i = 0; i < kPipes; i += 2) EXPECT_EQ(Drain(p[i][0]), "x");
  ev = Get(kPipes / 2, kLong);
  ASSERT_EQ(ev.size(), static_cast<size_t>(kPipes / 2));
  for (const ukevent& e : ev) {
    bool odd = false;
    for (int i = 1; i < kPipes; i += 2) odd |= e.id.raw[0] == static_cast<uint32_t>(p[i][0]);
    EXPECT_TRUE(odd) << "a drained pipe was delivered again: fd " << e.id.raw[0];
  }
  for (int i = 1; i < kPipes; i += 2) EXPECT_EQ(Drain(p[i][0]), "x");
  EXPECT_TRUE(Get(1, kBrief).empty());
}

// One activity goes to one request; a second level-triggered request passed over while the
// first held it must still get the condition once the holder is gone (here: a ONESHOT request,
// delivered and removed), without any new activity.
TEST_P(PipeTest, HeldActivityReachesTheNextRequestWhenTheHolderLeaves) {
  int p[2];
  Pipe(p);
  ASSERT_EQ(Add(Req(KEVENT_PIPE, p[0], KEVENT_SOCKET_RECV, KEVENT_REQ_ONESHOT, 1)).ret_flags, 0u);
  ASSERT_EQ(Add(Req(KEVENT_PIPE, p[0], KEVENT_SOCKET_RECV, 0, 2)).ret_flags, 0u);
  Write(p[1], "x");
  std::vector<ukevent> ev = Get(1, kLong, 1);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].user[0], 1u);
  ev = Get(1, kLong, 1);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].user[0], 2u);
  EXPECT_EQ(Drain(p[0]), "x");
  EXPECT_TRUE(Get(1, kBrief).empty());
}

// A level-triggered and an edge-triggered request on one fd are judged apart: each gets the
// activity; while it is not drained only the level-triggered one comes back.
TEST_P(PipeTest, LevelAndEdgeTriggeredRequestsOnOneFd) {
  int p[2];
  Pipe(p);
  ASSERT_EQ(Add(Req(KEVENT_PIPE, p[0], KEVENT_SOCKET_RECV, 0, 1)).ret_flags, 0u);
  ASSERT_EQ(Add(Req(KEVENT_PIPE, p[0], KEVENT_SOCKET_RECV, KEVENT_REQ_ET, 2)).ret_flags, 0u);
  for (int round = 0; round < 2; ++round) {
    Write(p[1], "x");
    std::vector<ukevent> all = GetAtLeast(2, kLong);
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].user[0] + all[1].user[0], 1u + 2u);
    std::vector<ukevent> again = Get(1, kBrief);
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].user[0], 1u);  // level-triggered: still readable
    EXPECT_EQ(Drain(p[0]), "x");
    EXPECT_TRUE(Get(1, kBrief).empty());
  }
}

// An fd number closed and reused for another pipe: requests on the old file are broken, a
// request on the new one is served.
TEST_P(PipeTest, ReusedFdNumberWatchesTheNewPipe) {
  int p[2], q[2];
  Pipe(p);
  Pipe(q);
  ASSERT_EQ(Add(Req(KEVENT_PIPE, p[0], KEVENT_SOCKET_RECV, 0, 1)).ret_flags, 0u);
  ASSERT_EQ(dup2(q[0], p[0]), p[0]);  // p[0] now names q's read end
  ASSERT_EQ(Add(Req(KEVENT_PIPE, p[0], KEVENT_SOCKET_RECV, 0, 2)).ret_flags, 0u);
  Write(q[1], "x");
  std::vector<ukevent> all = GetAtLeast(2, kLong);
  ASSERT_EQ(all.size(), 2u);
  for (const ukevent& e : all) {
    if (e.user[0] == 1) {
      EXPECT_EQ(e.ret_flags, kBrokenDone);
      EXPECT_EQ(e.ret_data[0], static_cast<uint32_t>(EBADF));
    } else {
      EXPECT_EQ(e.user[0], 2u);
      EXPECT_EQ(e.ret_data[0], static_cast<uint32_t>(KEVENT_SOCKET_RECV));
    }
  }
  EXPECT_EQ(Drain(q[0]), "x");
  EXPECT_TRUE(Get(1, kBrief).empty());
}

// Level-triggered requests are re-checked by the kernel (their fds are registered
// level-triggered in the origin's epoll set) and one report drains at most one batch of the set:
// a burst bigger than a batch must still give every pipe exactly once per call, every call,
// until it is drained.
TEST_P(PipeTest, BurstBiggerThanABatchIsReportedOncePerPipePerCall) {
  constexpr int kPipes = 300;  // > FdOrigin's 256 reports per epoll_wait
  std::vector<std::array<int, 2>> p(kPipes);
  for (auto& fds : p) {
    Pipe(fds.data());
    ASSERT_EQ(Add(Req(KEVENT_PIPE, fds[0], KEVENT_SOCKET_RECV)).ret_flags, 0u);
    Write(fds[1], "x");
  }
  for (int round = 0; round < 2; ++round) {  // not drained: the same pipes again
    std::vector<ukevent> ev = Get(kPipes, kLong, 2 * kPipes);
    ASSERT_EQ(ev.size(), static_cast<size_t>(kPipes)) << "round " << round;
    std::set<uint32_t> fds;
    for (const ukevent& e : ev) fds.insert(e.id.raw[0]);
    EXPECT_EQ(fds.size(), static_cast<size_t>(kPipes)) << "a pipe was reported twice";
  }
  for (auto& fds : p) EXPECT_EQ(Drain(fds[0]), "x");
  EXPECT_TRUE(Get(1, kBrief).empty());
}

// A level-triggered request that is ready but not yet taken (the waiter wants two events and
// only one is there) on a pipe that stays readable: the kernel's level-triggered registration
// would report it at every wait, so the origin parks it (EPOLLET) until the request is
// delivered. Spinning instead would burn the waiter's CPU for the whole wait; after the
// delivery the request is reported again (still readable), then not (drained).
TEST_P(PipeTest, ReadyUndeliveredLevelRequestDoesNotSpinTheWaiter) {
  int p[2], q[2];
  Pipe(p);
  Pipe(q);
  ASSERT_EQ(Add(Req(KEVENT_PIPE, p[0], KEVENT_SOCKET_RECV, 0, 1)).ret_flags, 0u);
  ASSERT_EQ(Add(Req(KEVENT_PIPE, q[0], KEVENT_SOCKET_RECV, 0, 2)).ret_flags, 0u);
  Write(p[1], "x");
  timespec cpu0, cpu1;
  ASSERT_EQ(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0), 0);
  std::vector<ukevent> ev = Get(2, timespec{0, 400'000'000}, 2);  // times out with one
  ASSERT_EQ(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1), 0);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].user[0], 1u);
  const int64_t cpu_ns =
      (cpu1.tv_sec - cpu0.tv_sec) * 1'000'000'000LL + (cpu1.tv_nsec - cpu0.tv_nsec);
  // A blocked waiter uses next to no CPU; a spinning one most of the 400 ms, even on a loaded
  // machine.
  EXPECT_LT(cpu_ns, 100'000'000) << "the waiter spun while the request waited to be taken";
  ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);  // level-triggered: still readable
  EXPECT_EQ(ev[0].user[0], 1u);
  EXPECT_EQ(Drain(p[0]), "x");
  EXPECT_TRUE(Get(1, kBrief).empty());
}

// A get_events that does not block collects the pipes' news with one epoll_wait of its own
// (Queue::PollNow), leaving the watch on the epoll set unconsumed or unsubmitted: a later
// blocking wait must still be woken by the next write, round after round, in both modes.
TEST_P(PipeTest, BlockingWaitAfterNonBlockingCollectsIsWokenByTheNextWrite) {
  for (uint32_t flags : {0u, static_cast<uint32_t>(KEVENT_REQ_ET)}) {
    SCOPED_TRACE(flags);
    int p[2];
    Pipe(p);
    ASSERT_EQ(Add(Req(KEVENT_PIPE, p[0], KEVENT_SOCKET_RECV, flags)).ret_flags, 0u);
    for (int round = 0; round < 3; ++round) {
      Write(p[1], "a");
      ASSERT_EQ(Get(1, kZero).size(), 1u);  // collected without blocking
      EXPECT_EQ(Drain(p[0]), "a");
      std::thread writer([&] {
        usleep(20'000);  // let the main thread block first (either order must work)
        Write(p[1], "b");
      });
      std::vector<ukevent> ev = Get(1, kLong);
      writer.join();
      ASSERT_EQ(ev.size(), 1u);
      EXPECT_EQ(Drain(p[0]), "b");
    }
    ASSERT_EQ(Ctl(KEVENT_CTL_REMOVE, Req(KEVENT_PIPE, p[0], KEVENT_SOCKET_RECV, flags)).ret_flags,
              kDone);
  }
}

// The queue's fd follows the ready list lazily (synced when the lock is released or the driver
// blocks): an event the driver collected itself and then blocks on (min_nr not reached) must
// make the fd readable while it blocks, and once it returned with both events, not readable.
TEST_P(PipeTest, QueueFdIsReadableWhileTheDriverBlocksOnAnEventItCollected) {
  int p[2], q[2];
  Pipe(p);
  Pipe(q);
  ASSERT_EQ(Add(Req(KEVENT_PIPE, p[0], KEVENT_SOCKET_RECV, 0, 1)).ret_flags, 0u);
  ASSERT_EQ(Add(Req(KEVENT_PIPE, q[0], KEVENT_SOCKET_RECV, 0, 2)).ret_flags, 0u);
  Write(p[1], "x");
  size_t got = 0;
  std::thread driver([&] { got = Get(2, kLong, 2).size(); });
  pollfd pfd{.fd = kfd_, .events = POLLIN, .revents = 0};
  EXPECT_EQ(poll(&pfd, 1, 10'000), 1) << "the fd stayed unreadable while an event was ready";
  Write(q[1], "y");
  driver.join();
  EXPECT_EQ(got, 2u);
  pfd.revents = 0;
  EXPECT_EQ(poll(&pfd, 1, 0), 0) << "the fd stayed readable with nothing ready";
}

// An fd's registration is edge-triggered while any of its requests is (KEVENT_REQ_ET) and
// level-triggered otherwise: the level-triggered request keeps being re-reported across the
// switch both ways, and the edge-triggered one gets its activity once.
TEST_P(PipeTest, LevelRequestIsReReportedWhileAnEdgeRequestComesAndGoes) {
  int p[2];
  Pipe(p);
  ASSERT_EQ(Add(Req(KEVENT_PIPE, p[0], KEVENT_SOCKET_RECV, 0, 1)).ret_flags, 0u);
  Write(p[1], "x");
  for (int i = 0; i < 2; ++i) {
    std::vector<ukevent> ev = Get(1, kLong);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].user[0], 1u);
  }
  // An ET request joins: ready at once (held condition, ADD completes it), then not again.
  ukevent et = Add(Req(KEVENT_PIPE, p[0], KEVENT_SOCKET_RECV, KEVENT_REQ_ET, 2));
  EXPECT_EQ(et.ret_flags, kDone);
  for (int i = 0; i < 2; ++i) {
    std::vector<ukevent> ev = Get(1, kLong);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].user[0], 1u);
  }
  Write(p[1], "y");  // new activity: both
  std::vector<ukevent> all = GetAtLeast(2, kLong);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].user[0] + all[1].user[0], 1u + 2u);
  EXPECT_EQ(Ctl(KEVENT_CTL_REMOVE, Req(KEVENT_PIPE, p[0], KEVENT_SOCKET_RECV, KEVENT_REQ_ET, 2))
                .ret_flags,
            kDone);
  for (int i = 0; i < 2; ++i) {  // level-triggered alone again
    std::vector<ukevent> ev = Get(1, kLong);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].user[0], 1u);
  }
  EXPECT_EQ(Drain(p[0]), "xy");
  EXPECT_TRUE(Get(1, kBrief).empty());
}

TEST_P(PipeTest, FullPipeBecomesWritableWhenRead) {
  int p[2];
  Pipe(p);
  const std::string chunk(65536, 'q');
  while (write(p[1], chunk.data(), chunk.size()) > 0) {
  }
  EXPECT_EQ(Add(Req(KEVENT_PIPE, p[1], KEVENT_SOCKET_SEND)).ret_flags, 0u);
  EXPECT_TRUE(Get(1, kBrief).empty());
  Drain(p[0]);
  std::vector<ukevent> ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].ret_data[0], static_cast<uint32_t>(KEVENT_SOCKET_SEND));
}

TEST_P(PipeTest, WriterClosedMakesRecvReadyWithTheClosedBit) {
  int p[2];
  Pipe(p);
  Add(Req(KEVENT_PIPE, p[0], KEVENT_SOCKET_RECV));
  CloseNow(p[1]);
  std::vector<ukevent> ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].ret_data[0], static_cast<uint32_t>(KEVENT_SOCKET_RECV));
  EXPECT_EQ(ev[0].ret_data[1] & 1u, 1u);
}

TEST_P(PipeTest, ReaderClosedMakesSendReadyWithTheClosedBit) {
  int p[2];
  Pipe(p);
  const std::string chunk(65536, 'q');
  while (write(p[1], chunk.data(), chunk.size()) > 0) {
  }
  Add(Req(KEVENT_PIPE, p[1], KEVENT_SOCKET_SEND));
  CloseNow(p[0]);
  std::vector<ukevent> ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].ret_data[1] & 1u, 1u);
}

TEST_P(PipeTest, FifoWorksLikeAPipe) {
  char dir[] = "/tmp/kev_fifo_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/fifo";
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  int r = Own(open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  ASSERT_GE(r, 0);
  int w = Own(open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  ASSERT_GE(w, 0);
  unlink(path.c_str());
  rmdir(dir);
  EXPECT_EQ(Add(Req(KEVENT_PIPE, r, KEVENT_SOCKET_RECV)).ret_flags, 0u);
  Write(w, "fifo");
  std::vector<ukevent> ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(Drain(r), "fifo");
}

TEST_P(PipeTest, NonFifoFdsAreRejected) {
  int sv[2];
  SocketPair(sv);
  EXPECT_EQ(Add(Req(KEVENT_PIPE, sv[0], KEVENT_SOCKET_RECV)).ret_data[0],
            static_cast<uint32_t>(EINVAL));
  FILE* f = tmpfile();
  ASSERT_NE(f, nullptr);
  ukevent uk = Add(Req(KEVENT_PIPE, fileno(f), KEVENT_SOCKET_RECV));
  EXPECT_EQ(uk.ret_flags, kBrokenDone);
  EXPECT_EQ(uk.ret_data[0], static_cast<uint32_t>(EINVAL));
  fclose(f);
  int p[2];
  Pipe(p);
  EXPECT_EQ(Add(Req(KEVENT_PIPE, p[0], KEVENT_SOCKET_ACCEPT)).ret_data[0],
            static_cast<uint32_t>(EINVAL));
  EXPECT_EQ(Add(Req(KEVENT_PIPE, 100000, KEVENT_SOCKET_RECV)).ret_data[0],
            static_cast<uint32_t>(EBADF));
}

TEST(PollBitsTest, KeventBitsMapToPollBitsAndBack) {
  EXPECT_EQ(KeventToPollBits(KEVENT_POLL_POLLIN | KEVENT_POLL_POLLOUT), POLLIN | POLLOUT);
  EXPECT_EQ(KeventToPollBits(KEVENT_POLL_POLLRDHUP | KEVENT_POLL_POLLPRI), POLLRDHUP | POLLPRI);
  EXPECT_EQ(PollToKeventBits(POLLHUP | POLLERR | POLLRDNORM),
            KEVENT_POLL_POLLHUP | KEVENT_POLL_POLLERR | KEVENT_POLL_POLLRDNORM);
  EXPECT_EQ(PollToKeventBits(POLLWRBAND | POLLMSG), KEVENT_POLL_POLLWRBAND | KEVENT_POLL_POLLMSG);
}

TEST_P(PollTest, EventfdInAndOut) {
  int efd = Own(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  EXPECT_EQ(Add(Req(KEVENT_POLL, efd, KEVENT_POLL_POLLIN, 0, 1)).ret_flags, 0u);
  // An eventfd reports POLLOUT, not WRNORM: only the bits that hold come back.
  ukevent out = Add(Req(KEVENT_POLL, efd, KEVENT_POLL_POLLOUT | KEVENT_POLL_POLLWRNORM,
                        KEVENT_REQ_ONESHOT, 2));
  EXPECT_EQ(out.ret_flags, kDone);
  EXPECT_EQ(out.ret_data[0], static_cast<uint32_t>(KEVENT_POLL_POLLOUT));
  uint64_t one = 1;
  ASSERT_EQ(write(efd, &one, sizeof(one)), 8);
  std::vector<ukevent> ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].user[0], 1u);
  EXPECT_EQ(ev[0].ret_data[0], static_cast<uint32_t>(KEVENT_POLL_POLLIN));
  EXPECT_EQ(Get(1, kLong).size(), 1u);  // level-triggered: still readable
  ASSERT_EQ(read(efd, &one, sizeof(one)), 8);
  EXPECT_TRUE(Get(1, kBrief).empty());
}

TEST_P(PollTest, PipeReadBitsAndHangUp) {
  int p[2];
  Pipe(p);
  Add(Req(KEVENT_POLL, p[0], KEVENT_POLL_POLLIN | KEVENT_POLL_POLLRDNORM | KEVENT_POLL_POLLPRI));
  Write(p[1], "x");
  std::vector<ukevent> ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].ret_data[0], static_cast<uint32_t>(KEVENT_POLL_POLLIN | KEVENT_POLL_POLLRDNORM));
  Drain(p[0]);
  EXPECT_TRUE(Get(1, kBrief).empty());
  CloseNow(p[1]);  // HUP is reported although only IN/RDNORM/PRI were asked for
  ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].ret_data[0] & KEVENT_POLL_POLLHUP, static_cast<uint32_t>(KEVENT_POLL_POLLHUP));
}

TEST_P(PollTest, SocketRdHup) {
  int sv[2];
  SocketPair(sv);
  Add(Req(KEVENT_POLL, sv[0], KEVENT_POLL_POLLRDHUP));
  EXPECT_TRUE(Get(1, kBrief).empty());
  shutdown(sv[1], SHUT_WR);
  std::vector<ukevent> ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].ret_data[0] & KEVENT_POLL_POLLRDHUP, static_cast<uint32_t>(KEVENT_POLL_POLLRDHUP));
}

TEST_P(PollTest, RejectsEmptyAndUnknownBits) {
  int efd = Own(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  EXPECT_EQ(Add(Req(KEVENT_POLL, efd, 0)).ret_data[0], static_cast<uint32_t>(EINVAL));
  EXPECT_EQ(Add(Req(KEVENT_POLL, efd, 0x800)).ret_data[0], static_cast<uint32_t>(EINVAL));
  EXPECT_EQ(Add(Req(KEVENT_POLL, efd, KEVENT_POLL_POLLREMOVE)).ret_data[0],
            static_cast<uint32_t>(EINVAL));
  EXPECT_EQ(Add(Req(KEVENT_POLL, 100000, KEVENT_POLL_POLLIN)).ret_data[0],
            static_cast<uint32_t>(EBADF));
}

// epoll refuses regular files (EPERM); they are always readable, which Check alone serves.
TEST_P(PollTest, RegularFileIsAlwaysReady) {
  int mfd = Own(memfd_create("kev_poll_test", MFD_CLOEXEC));
  ASSERT_GE(mfd, 0);
  ukevent added = Add(Req(KEVENT_POLL, mfd, KEVENT_POLL_POLLIN));
  EXPECT_EQ(added.ret_flags, kDone);
  EXPECT_EQ(added.ret_data[0] & KEVENT_POLL_POLLIN, static_cast<uint32_t>(KEVENT_POLL_POLLIN));
  for (int i = 0; i < 3; ++i) {
    std::vector<ukevent> ev = Get(1, kLong);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].ret_data[0] & KEVENT_POLL_POLLIN, static_cast<uint32_t>(KEVENT_POLL_POLLIN));
  }
}

TEST_P(PollTest, ClosedFdBreaksTheRequest) {
  int efd = Own(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  Add(Req(KEVENT_POLL, efd, KEVENT_POLL_POLLIN));
  CloseNow(efd);
  std::vector<ukevent> ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].ret_flags, kBrokenDone);
  EXPECT_EQ(ev[0].ret_data[0], static_cast<uint32_t>(EBADF));
}

INSTANTIATE_TEST_SUITE_P(Backends, PipeTest, ::testing::Values("io_uring", "epoll"));
INSTANTIATE_TEST_SUITE_P(Backends, PollTest, ::testing::Values("io_uring", "epoll"));

}  // namespace
}  // namespace kev::kevent_internal::test
