// SOCKET origin through the C API, on both backends: socketpairs and loopback TCP.
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kevent/internal/fd_origin_fixture.h"
#include "kevent/internal/kevent_testing.h"
#include "kevent/kevent.h"

namespace kev::kevent_internal::test {
namespace {

using SocketTest = OriginTest;

TEST_P(SocketTest, RecvBecomesReadyWhenDataArrives) {
  int sv[2];
  SocketPair(sv);
  EXPECT_EQ(Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV, 0, 7)).ret_flags, 0u);
  EXPECT_TRUE(Get(0, kZero).empty());
  Write(sv[1], "hello");
  std::vector<ukevent> ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, static_cast<uint32_t>(KEVENT_SOCKET));
  EXPECT_EQ(ev[0].id.raw[0], static_cast<uint32_t>(sv[0]));
  EXPECT_EQ(ev[0].user[0], 7u);
  EXPECT_EQ(ev[0].ret_flags, kDone);
  EXPECT_EQ(ev[0].ret_data[0], static_cast<uint32_t>(KEVENT_SOCKET_RECV));
  EXPECT_EQ(ev[0].ret_data[1], 0u);
}

TEST_P(SocketTest, RecvIsLevelTriggeredUntilDrained) {
  int sv[2];
  SocketPair(sv);
  Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV));
  Write(sv[1], "x");
  ASSERT_EQ(Get(1, kLong).size(), 1u);
  ASSERT_EQ(Get(1, kLong).size(), 1u);  // still readable: delivered again
  EXPECT_EQ(Drain(sv[0]), "x");
  EXPECT_TRUE(Get(1, kBrief).empty());
  Write(sv[1], "y");
  EXPECT_EQ(Get(1, kLong).size(), 1u);
}

TEST_P(SocketTest, EdgeTriggeredIsDeliveredOncePerActivity) {
  int sv[2];
  SocketPair(sv);
  Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV, KEVENT_REQ_ET));
  Write(sv[1], "a");
  ASSERT_EQ(Get(1, kLong).size(), 1u);
  EXPECT_TRUE(Get(1, kBrief).empty());  // not drained, but nothing new
  EXPECT_EQ(Drain(sv[0]), "a");
  EXPECT_TRUE(Get(1, kBrief).empty());
  Write(sv[1], "b");
  EXPECT_EQ(Get(1, kLong).size(), 1u);
}

TEST_P(SocketTest, PeerCloseMakesRecvReadyWithTheClosedBit) {
  int sv[2];
  SocketPair(sv);
  Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV));
  CloseNow(sv[1]);
  std::vector<ukevent> ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].ret_flags, kDone);
  EXPECT_EQ(ev[0].ret_data[0], static_cast<uint32_t>(KEVENT_SOCKET_RECV));
  EXPECT_EQ(ev[0].ret_data[1] & 1u, 1u);
}

TEST_P(SocketTest, SendIsReadyAtOnceOnAWritableSocket) {
  int sv[2];
  SocketPair(sv);
  ukevent uk = Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_SEND, KEVENT_REQ_ONESHOT));
  EXPECT_EQ(uk.ret_flags, kDone);
  EXPECT_EQ(uk.ret_data[0], static_cast<uint32_t>(KEVENT_SOCKET_SEND));
  uk = Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_SEND, KEVENT_REQ_ALWAYS_QUEUE, 2));
  EXPECT_EQ(uk.ret_flags, 0u);
  EXPECT_EQ(Get(1, kZero).size(), 1u);
}

TEST_P(SocketTest, SendBecomesReadyWhenTheBufferDrains) {
  int sv[2];
  SocketPair(sv);
  const std::string chunk(65536, 'z');
  while (write(sv[0], chunk.data(), chunk.size()) > 0) {
  }
  ASSERT_EQ(errno, EAGAIN);
  EXPECT_EQ(Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_SEND)).ret_flags, 0u);
  EXPECT_TRUE(Get(1, kBrief).empty());
  Drain(sv[1]);
  std::vector<ukevent> ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].ret_data[0], static_cast<uint32_t>(KEVENT_SOCKET_SEND));
}

TEST_P(SocketTest, AcceptAndRecvOnLoopbackTcp) {
  int l = Own(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(l, 8), 0);
  socklen_t len = sizeof(a);
  ASSERT_EQ(getsockname(l, reinterpret_cast<sockaddr*>(&a), &len), 0);
  EXPECT_EQ(Add(Req(KEVENT_SOCKET, l, KEVENT_SOCKET_ACCEPT)).ret_flags, 0u);
  int c = Own(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  std::vector<ukevent> ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].ret_data[0], static_cast<uint32_t>(KEVENT_SOCKET_ACCEPT));
  int s = Own(accept4(l, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  ASSERT_GE(s, 0);
  EXPECT_TRUE(Get(1, kBrief).empty());  // drained: ACCEPT no longer holds

  Add(Req(KEVENT_SOCKET, s, KEVENT_SOCKET_RECV));
  Write(c, "over tcp");
  ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].id.raw[0], static_cast<uint32_t>(s));
  EXPECT_EQ(Drain(s), "over tcp");
  shutdown(c, SHUT_WR);
  ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].ret_data[1] & 1u, 1u);  // the peer closed its side
}

TEST_P(SocketTest, RejectsNonSocketsBadFdsAndBadEvents) {
  int p[2];
  Pipe(p);
  ukevent uk = Add(Req(KEVENT_SOCKET, p[0], KEVENT_SOCKET_RECV));
  EXPECT_EQ(uk.ret_flags, kBrokenDone);
  EXPECT_EQ(uk.ret_data[0], static_cast<uint32_t>(ENOTSOCK));
  uk = Add(Req(KEVENT_SOCKET, 100000, KEVENT_SOCKET_RECV));
  EXPECT_EQ(uk.ret_data[0], static_cast<uint32_t>(EBADF));
  int sv[2];
  SocketPair(sv);
  uk = Add(Req(KEVENT_SOCKET, sv[0], 0x8));
  EXPECT_EQ(uk.ret_data[0], static_cast<uint32_t>(EINVAL));
  uk = Add(Req(KEVENT_SOCKET, sv[0], 0));
  EXPECT_EQ(uk.ret_data[0], static_cast<uint32_t>(EINVAL));
}

TEST_P(SocketTest, OneActivityGoesToTheFirstRequestUnlessWakeupAll) {
  int sv[2];
  SocketPair(sv);
  Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV, 0, 1));
  Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV, 0, 2));
  Write(sv[1], "x");
  std::vector<ukevent> ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].user[0], 1u);
  Drain(sv[0]);
  EXPECT_TRUE(Get(1, kBrief).empty());

  Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV, KEVENT_REQ_WAKEUP_ALL, 3));
  Write(sv[1], "y");
  std::vector<ukevent> all = GetAtLeast(2, kLong);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].user[0] + all[1].user[0], 1u + 3u);  // the first, and the WAKEUP_ALL one
}

TEST_P(SocketTest, TwoQueuesWatchOneSocket) {
  int sv[2];
  SocketPair(sv);
  int other = kevent_init(nullptr, 0, 0);
  ASSERT_GE(other, 0);
  Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV));
  Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV), other);
  Write(sv[1], "x");
  EXPECT_EQ(Get(1, kLong).size(), 1u);
  EXPECT_EQ(Get(1, kLong, 64, other).size(), 1u);
  EXPECT_EQ(kevent_close(other), 0);
}

TEST_P(SocketTest, ClosingTheFdBreaksItsRequests) {
  int sv[2];
  SocketPair(sv);
  Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV, 0, 1));
  Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_SEND, KEVENT_REQ_ET | KEVENT_REQ_ALWAYS_QUEUE, 2));
  EXPECT_EQ(Get(1, kZero).size(), 1u);  // SEND, once (ET)
  CloseNow(sv[0]);
  std::vector<ukevent> ev;
  while (ev.size() < 2) {
    std::vector<ukevent> more = Get(1, kLong);
    ASSERT_FALSE(more.empty());
    ev.insert(ev.end(), more.begin(), more.end());
  }
  for (const ukevent& e : ev) {
    EXPECT_EQ(e.ret_flags, kBrokenDone);
    EXPECT_EQ(e.ret_data[0], static_cast<uint32_t>(EBADF));
  }
  // Broken requests are delivered once and removed.
  EXPECT_EQ(Ctl(KEVENT_CTL_REMOVE, Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV, 0, 1)).ret_flags,
            kBrokenDone);
}

TEST_P(SocketTest, RemovedRequestsAreNotDeliveredAndCanBeAddedAgain) {
  int sv[2];
  SocketPair(sv);
  Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV));
  Write(sv[1], "x");
  EXPECT_EQ(Ctl(KEVENT_CTL_REMOVE, Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV)).ret_flags,
            kDone);
  EXPECT_TRUE(Get(1, kBrief).empty());
  EXPECT_EQ(Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV)).ret_flags, kDone);  // ready at once
}

TEST_P(SocketTest, ModifyChangesTheEvents) {
  int sv[2];
  SocketPair(sv);
  Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV));
  ukevent uk = Ctl(KEVENT_CTL_MODIFY, Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_SEND));
  EXPECT_EQ(uk.ret_flags, kDone);
  std::vector<ukevent> ev = Get(1, kLong);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].ret_data[0], static_cast<uint32_t>(KEVENT_SOCKET_SEND));
}

TEST_P(SocketTest, TenThousandSocketsRegisteredAtOnce) {
  constexpr int kPairs = 5000;  // 10,000 sockets, every one registered
  rlimit rl;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 2 * kPairs + 256) {
    GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << rl.rlim_max << " is below " << 2 * kPairs + 256;
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 2 * kPairs + 256) {
    rl.rlim_cur = rl.rlim_max;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
  }
  std::vector<int> ends;
  std::vector<ukevent> reqs;
  for (int i = 0; i < kPairs; ++i) {
    int sv[2];
    SocketPair(sv);
    ends.push_back(sv[0]);
    ends.push_back(sv[1]);
    reqs.push_back(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV, 0, 0));
    reqs.push_back(Req(KEVENT_SOCKET, sv[1], KEVENT_SOCKET_RECV, 0, 1));
  }
  ASSERT_EQ(kevent_ctl(kfd_, KEVENT_CTL_ADD, reqs.size(), reqs.data()), static_cast<int>(reqs.size()));
  for (const ukevent& uk : reqs) ASSERT_EQ(uk.ret_flags, 0u);
  EXPECT_TRUE(Get(1, kZero).empty());
  // Every 97th socket gets data from its peer.
  std::vector<int> written;
  for (size_t i = 0; i < ends.size(); i += 97) {
    Write(ends[i ^ 1], "d");
    written.push_back(ends[i]);
  }
  std::vector<int> seen;
  while (seen.size() < written.size()) {
    std::vector<ukevent> ev = Get(1, kLong, 256);
    ASSERT_FALSE(ev.empty());
    for (const ukevent& e : ev) {
      const int fd = static_cast<int>(e.id.raw[0]);
      if (std::find(seen.begin(), seen.end(), fd) == seen.end()) {
        seen.push_back(fd);
        Drain(fd);
      }
    }
  }
  std::sort(seen.begin(), seen.end());
  std::sort(written.begin(), written.end());
  EXPECT_EQ(seen, written);
  ASSERT_EQ(kevent_ctl(kfd_, KEVENT_CTL_REMOVE, reqs.size(), reqs.data()),
            static_cast<int>(reqs.size()));
  for (const ukevent& uk : reqs) ASSERT_EQ(uk.ret_flags, kDone);
}

TEST_P(SocketTest, BlockedGetEventsWakesForSocketDataFromAnotherThread) {
  int sv[2];
  SocketPair(sv);
  Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV));
  std::atomic<int> got{-1};
  std::thread waiter([&] {
    ukevent ev[4];
    got = kevent_get_events(kfd_, 1, 4, {-1, 0}, ev, 0);
  });
  // Wait until it is blocked (not a timing assertion: just the order of the steps).
  while (kev::kevent_internal::BlockedWaitersForTesting(kfd_) < 1) usleep(1000);
  Write(sv[1], "x");
  waiter.join();
  EXPECT_EQ(got.load(), 1);
}

TEST_P(SocketTest, BlockedDriverWakesForReadyAndTimerWhileWatchingSockets) {
  int sv[2];
  SocketPair(sv);
  Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV));
  ukevent note{};
  note.type = KEVENT_UNOTIFY;
  note.event = 1;
  note.id.raw[0] = 5;
  Add(note);
  std::atomic<int> got{-1};
  std::thread waiter([&] {
    ukevent ev[4];
    got = kevent_get_events(kfd_, 1, 4, {-1, 0}, ev, 0);
  });
  while (kev::kevent_internal::BlockedWaitersForTesting(kfd_) < 1) usleep(1000);
  EXPECT_EQ(kevent_ctl(kfd_, KEVENT_CTL_READY, 1, &note), 1);
  waiter.join();
  EXPECT_EQ(got.load(), 1);

  // A timer armed while a thread is blocked in the poller.
  got = -1;
  std::thread waiter2([&] {
    ukevent ev[4];
    got = kevent_get_events(kfd_, 1, 4, {-1, 0}, ev, 0);
  });
  while (kev::kevent_internal::BlockedWaitersForTesting(kfd_) < 1) usleep(1000);
  ukevent timer{};
  timer.type = KEVENT_TIMER;
  timer.event = KEVENT_TIMER_FIRED;
  timer.id.raw[1] = 1'000'000;  // 1 ms
  timer.req_flags = KEVENT_REQ_ONESHOT;
  Add(timer);
  waiter2.join();
  EXPECT_EQ(got.load(), 1);
}

TEST_P(SocketTest, SeveralThreadsShareTheSocketsOfOneQueue) {
  constexpr int kPairs = 16;
  constexpr int kThreads = 3;
  constexpr int kMessages = 2000;
  std::vector<int> readers, writers;
  for (int i = 0; i < kPairs; ++i) {
    int sv[2];
    SocketPair(sv);
    readers.push_back(sv[0]);
    writers.push_back(sv[1]);
    Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV, i % 2 == 0 ? 0 : KEVENT_REQ_ET));
  }
  std::atomic<long> received{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      ukevent ev[8];
      while (!done.load()) {
        const int n = kevent_get_events(kfd_, 1, 8, kBrief, ev, 0);
        ASSERT_GE(n, 0);
        for (int i = 0; i < n; ++i) {
          received += static_cast<long>(Drain(static_cast<int>(ev[i].id.raw[0])).size());
        }
      }
    });
  }
  for (int m = 0; m < kMessages; ++m) Write(writers[m % kPairs], "0123456789");
  while (received.load() < 10L * kMessages) usleep(1000);
  done = true;
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(received.load(), 10L * kMessages);
}

TEST_P(SocketTest, CloseWakesADriverBlockedInThePoller) {
  int sv[2];
  SocketPair(sv);
  Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV));
  std::atomic<int> got{1};
  std::thread waiter([&] {
    ukevent ev[4];
    got = kevent_get_events(kfd_, 1, 4, {-1, 0}, ev, 0);
  });
  while (kev::kevent_internal::BlockedWaitersForTesting(kfd_) < 1) usleep(1000);
  EXPECT_EQ(kevent_close(kfd_), 0);
  kfd_ = -1;
  waiter.join();
  EXPECT_EQ(got.load(), -EBADF);
}

TEST_P(SocketTest, KeventWaitFillsTheRingWithSocketEvents) {
  int sv[2];
  SocketPair(sv);
  constexpr unsigned kSlots = 4;
  alignas(kevent_ring) unsigned char mem[sizeof(kevent_ring) + kSlots * sizeof(ukevent)] = {};
  auto* ring = reinterpret_cast<kevent_ring*>(mem);
  const int rfd = kevent_init(ring, kSlots, 0);
  ASSERT_GE(rfd, 0);
  Add(Req(KEVENT_SOCKET, sv[0], KEVENT_SOCKET_RECV, 0, 9), rfd);
  std::thread writer([&] { Write(sv[1], "ring"); });
  EXPECT_EQ(kevent_wait(rfd, kSlots, 0, kLong, 0), 1);
  writer.join();
  EXPECT_EQ(ring->ring_kidx, 1u);
  EXPECT_EQ(ring->event[0].user[0], 9u);
  EXPECT_EQ(ring->event[0].ret_data[0], static_cast<uint32_t>(KEVENT_SOCKET_RECV));
  EXPECT_EQ(kevent_close(rfd), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, SocketTest, ::testing::Values("io_uring", "epoll"));

}  // namespace
}  // namespace kev::kevent_internal::test
