// IoUringPoller internals the parameterised suite (poller_test.cc) cannot reach: the setup flags
// it negotiated, the overflow list that holds SQEs which find the SQ full, and the receive
// pool's memory (ring window, pages given back when idle).
#include "kevent/io_uring_poller.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kevent/poller_test_util.h"

namespace kev::internal {
namespace {

using namespace std::chrono_literals;

class Recorder : public IoCompletion {
 public:
  void OnComplete(int32_t result, uint32_t flags) noexcept override {
    EXPECT_EQ(finals, 0) << "completion after the final one";
    results.push_back(result);
    if ((flags & kCompletionMore) == 0) ++finals;
  }
  std::vector<int32_t> results;
  int finals = 0;
};

// Creates an io_uring poller; null (and the test skips) where io_uring is unavailable.
std::unique_ptr<Poller> Make(const PollerOptions& options, IoUringPoller** ring) {
  int error = 0;
  std::unique_ptr<Poller> poller = Poller::Create(PollerBackend::kIoUring, options, &error);
  *ring = static_cast<IoUringPoller*>(poller.get());
  return poller;
}

#define SKIP_WITHOUT(poller) \
  if ((poller) == nullptr) GTEST_SKIP() << "io_uring unavailable here"

bool KernelAtLeast(int major, int minor) {
  utsname u;
  int got_major = 0, got_minor = 0;
  if (uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &got_major, &got_minor) != 2) return false;
  return got_major > major || (got_major == major && got_minor >= minor);
}

bool WaitUntil(Poller& poller, const std::function<bool()>& done) {
  for (int i = 0; i < 400 && !done(); ++i) {  // bounded at ~20 s: a bug fails, never hangs
    if (poller.Wait(50ms) < 0) return false;
  }
  return done();
}

TEST(IoUringPollerTest, NegotiatesSetupFlags) {
  IoUringPoller* ring;
  std::unique_ptr<Poller> poller = Make({}, &ring);
  SKIP_WITHOUT(poller);
  unsigned flags = ring->setup_flags();
  EXPECT_TRUE(flags & IORING_SETUP_CQSIZE);
  // DEFER_TASKRUN needs SINGLE_ISSUER; SINGLE_ISSUER comes with R_DISABLED (bound at enable).
  EXPECT_TRUE(!(flags & IORING_SETUP_DEFER_TASKRUN) || (flags & IORING_SETUP_SINGLE_ISSUER));
  EXPECT_TRUE(!(flags & IORING_SETUP_SINGLE_ISSUER) || (flags & IORING_SETUP_R_DISABLED));
  constexpr unsigned kAll = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
                            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  if (KernelAtLeast(6, 1)) {
    EXPECT_EQ(flags & kAll, kAll);
  }

  IoUringPoller* shared_ring;
  std::unique_ptr<Poller> shared = Make({.single_issuer = false}, &shared_ring);
  ASSERT_NE(shared, nullptr);
  EXPECT_EQ(shared_ring->setup_flags() &
                (IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED),
            0u);
}

// SQEs held in the overflow list are submitted in order as the SQ frees up; those cancelled
// before reaching the kernel complete once, with -ECANCELED, like the others.
TEST(IoUringPollerTest, OverflowListLosesNothing) {
  IoUringPoller* ring;
  std::unique_ptr<Poller> poller = Make({.entries = 8}, &ring);
  SKIP_WITHOUT(poller);
  ring->DisableEarlySubmitForTesting();
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, s), 0);
  constexpr int kOps = 200;
  std::vector<Recorder> recvs(kOps);
  char buf[kOps];
  for (int i = 0; i < kOps; ++i) {
    poller->Recv(s[0], {reinterpret_cast<std::byte*>(&buf[i]), 1}, 0, &recvs[i]);
  }
  EXPECT_GE(ring->overflow_size_for_testing(), static_cast<size_t>(kOps - 8));
  for (int i = 0; i < kOps; i += 2) poller->Cancel(&recvs[i]);
  EXPECT_EQ(poller->InFlight(), static_cast<size_t>(kOps));
  // No data yet: every cancelled receive ends with -ECANCELED, nothing else ends.
  ASSERT_TRUE(WaitUntil(*poller, [&] { return poller->InFlight() == kOps / 2; }));
  EXPECT_EQ(ring->overflow_size_for_testing(), 0u);
  for (int i = 0; i < kOps; ++i) {
    EXPECT_EQ(recvs[i].results,
              i % 2 == 0 ? std::vector<int32_t>{-ECANCELED} : std::vector<int32_t>{});
  }
  for (int i = 0; i < kOps / 2; ++i) ASSERT_EQ(write(s[1], "d", 1), 1);
  ASSERT_TRUE(WaitUntil(*poller, [&] { return poller->InFlight() == 0; }));
  for (int i = 1; i < kOps; i += 2) EXPECT_EQ(recvs[i].results, std::vector<int32_t>{1});
  close(s[0]);
  close(s[1]);
}

TEST(IoUringPollerTest, OverflowListKeepsSubmissionOrder) {
  IoUringPoller* ring;
  std::unique_ptr<Poller> poller = Make({.entries = 4}, &ring);
  SKIP_WITHOUT(poller);
  ring->DisableEarlySubmitForTesting();
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  std::string text = "the quick brown fox jumps over the lazy dog";
  std::vector<Recorder> writes(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    poller->Write(p[1], {reinterpret_cast<const std::byte*>(&text[i]), 1}, -1, &writes[i]);
  }
  ASSERT_TRUE(WaitUntil(*poller, [&] { return poller->InFlight() == 0; }));
  std::string got(text.size(), '\0');
  ASSERT_EQ(read(p[0], got.data(), got.size()), static_cast<ssize_t>(got.size()));
  EXPECT_EQ(got, text);
  close(p[0]);
  close(p[1]);
}

TEST(IoUringPollerTest, DestructionCompletesOverflowedOperations) {
  IoUringPoller* ring;
  std::unique_ptr<Poller> poller = Make({.entries = 8}, &ring);
  SKIP_WITHOUT(poller);
  ring->DisableEarlySubmitForTesting();
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  std::vector<Recorder> recvs(50);
  char buf[8];
  for (Recorder& r : recvs) poller->Recv(s[0], {reinterpret_cast<std::byte*>(buf), 8}, 0, &r);
  EXPECT_GT(ring->overflow_size_for_testing(), 0u);
  poller.reset();  // never waited: some SQEs in the ring, most in the overflow list
  for (const Recorder& r : recvs) EXPECT_EQ(r.results, std::vector<int32_t>{-ECANCELED});
  close(s[0]);
  close(s[1]);
}

// --- The receive pool's memory (see the pool's comment in io_uring_poller.h) ---------------

// Records a RecvBufferSelect's completion with its flags (the buffer id).
struct BufferRecv : IoCompletion {
  void OnComplete(int32_t r, uint32_t f) noexcept override {
    result = r;
    flags = f;
    done = true;
  }
  int32_t result = 0;
  uint32_t flags = 0;
  bool done = false;
};

using poller_testing::ResidentCount;

// Receives one message on each socket at once (the peers wrote "m<i>") and holds every buffer;
// receives that found no buffer (-ENOBUFS) are retried, as net/ would.
std::vector<uint16_t> ReceiveAll(Poller& poller, std::vector<std::array<int, 2>>& socks) {
  std::vector<BufferRecv> r(socks.size());
  for (size_t i = 0; i < socks.size(); ++i) {
    std::string msg = "m" + std::to_string(i);
    EXPECT_EQ(write(socks[i][1], msg.data(), msg.size()), static_cast<ssize_t>(msg.size()));
    poller.RecvBufferSelect(socks[i][0], 0, &r[i]);
  }
  std::vector<uint16_t> ids(socks.size());
  for (size_t got = 0; got < socks.size();) {
    EXPECT_TRUE(WaitUntil(poller, [&] {
      for (const BufferRecv& x : r) {
        if (!x.done) return false;
      }
      return true;
    }));
    got = 0;
    for (size_t i = 0; i < socks.size(); ++i) {
      if (r[i].result == -ENOBUFS) {
        r[i] = BufferRecv();
        poller.RecvBufferSelect(socks[i][0], 0, &r[i]);
        continue;
      }
      std::string msg = "m" + std::to_string(i);
      EXPECT_EQ(r[i].result, static_cast<int32_t>(msg.size()));
      EXPECT_NE(r[i].flags & kCompletionBuffer, 0u);
      ids[i] = CompletionBufferId(r[i].flags);
      std::span<std::byte> buf = poller.SelectedBuffer(ids[i]);
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), msg.size()), msg);
      ++got;
    }
  }
  return ids;
}

std::vector<std::array<int, 2>> SocketPairs(size_t n) {
  std::vector<std::array<int, 2>> socks(n);
  for (auto& s : socks) EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s.data()), 0);
  return socks;
}

void CloseAll(std::vector<std::array<int, 2>>& socks) {
  for (auto& s : socks) {
    close(s[0]);
    close(s[1]);
  }
}

TEST(IoUringPollerTest, RingWindowGrowsWithTheLoadAndIdlePagesGoBack) {
  IoUringPoller* ring;
  constexpr unsigned kCount = 256;
  std::unique_ptr<Poller> poller =
      Make({.recv_buffer_count = kCount, .recv_buffer_size = 4096}, &ring);
  SKIP_WITHOUT(poller);
  std::vector<std::array<int, 2>> socks = SocketPairs(100);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);  // round 1 reuses buffers whose pages were given back
    std::vector<uint16_t> ids = ReceiveAll(*poller, socks);
    if (!ring->UsesBufferRing()) GTEST_SKIP() << "no provided-buffer ring on this kernel";
    // 100 receives at once do not fit the initial 32-buffer window: it grew.
    EXPECT_GT(ring->ring_window_for_testing(), 32u);
    EXPECT_GE(ResidentCount(*poller, kCount), 100u);
    for (uint16_t id : ids) poller->ReturnBuffer(id);
    // Idle: the window shrinks back, the excess leaves the ring, and its pages go back.
    size_t released = ring->buffers_released_for_testing();
    ASSERT_TRUE(WaitUntil(*poller, [&] {
      return ring->ring_window_for_testing() == 32 && ring->ring_buffers_for_testing() <= 32 &&
             ResidentCount(*poller, kCount) <= 32;
    }));
    EXPECT_GE(ring->buffers_released_for_testing(), released + 68);
    EXPECT_EQ(poller->BuffersAvailable(), kCount);
  }
  EXPECT_EQ(poller->InFlight(), 0u);
  CloseAll(socks);
}

TEST(IoUringPollerTest, FallbackPoolGivesIdlePagesBack) {
  IoUringPoller* ring;
  constexpr unsigned kCount = 64;
  std::unique_ptr<Poller> poller = Make(
      {.recv_buffer_count = kCount, .recv_buffer_size = 4096, .use_buffer_ring = false}, &ring);
  SKIP_WITHOUT(poller);
  std::vector<std::array<int, 2>> socks = SocketPairs(20);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    std::vector<uint16_t> ids = ReceiveAll(*poller, socks);
    EXPECT_EQ(ResidentCount(*poller, kCount), 20u);
    for (uint16_t id : ids) poller->ReturnBuffer(id);
    ASSERT_TRUE(WaitUntil(*poller, [&] { return ResidentCount(*poller, kCount) == 0; }));
    EXPECT_EQ(ring->buffers_released_for_testing(), 20u * (round + 1));
    EXPECT_EQ(poller->BuffersAvailable(), kCount);
  }
  CloseAll(socks);
}

TEST(IoUringPollerTest, SteadyLightLoadKeepsItsBuffers) {
  IoUringPoller* ring;
  std::unique_ptr<Poller> poller =
      Make({.recv_buffer_count = 256, .recv_buffer_size = 4096}, &ring);
  SKIP_WITHOUT(poller);
  std::vector<std::array<int, 2>> socks = SocketPairs(1);
  // One receive at a time, with idle waits in between: the window never grows, and only the
  // buffers it holds (and the one in use) are ever touched.
  for (int i = 0; i < 100; ++i) {
    std::vector<uint16_t> ids = ReceiveAll(*poller, socks);
    poller->ReturnBuffer(ids[0]);
    EXPECT_GE(poller->Wait(0ns), 0);
  }
  EXPECT_LE(ring->ring_window_for_testing(), 32u);
  EXPECT_LE(ResidentCount(*poller, 256), 33u);
  CloseAll(socks);
}

// --- Registered files ------------------------------------------------------------------------

// Bytes sent and received through a registered socket arrive, and Close() through the poller
// really closes it: the peer sees end of stream, which it would not if the table slot still
// held the open file.
TEST(IoUringPollerTest, RegisteredSocketWorksAndCloseReallyCloses) {
  IoUringPoller* ring;
  std::unique_ptr<Poller> poller = Make({}, &ring);
  SKIP_WITHOUT(poller);
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s), 0);
  ASSERT_TRUE(poller->RegisterFile(s[0]));
  EXPECT_TRUE(ring->registered_for_testing(s[0]));
  EXPECT_FALSE(ring->registered_for_testing(s[1]));

  const char kOut[] = "ping";
  Recorder sent;
  poller->Send(s[0], std::as_bytes(std::span(kOut, 4)), MSG_NOSIGNAL, &sent);
  ASSERT_TRUE(WaitUntil(*poller, [&] { return sent.finals == 1; }));
  EXPECT_EQ(sent.results, std::vector<int32_t>{4});
  char got[8] = {};
  ASSERT_EQ(read(s[1], got, sizeof got), 4);
  EXPECT_EQ(std::string(got, 4), "ping");

  std::array<std::byte, 8> in{};
  Recorder received;
  poller->Recv(s[0], in, 0, &received);
  ASSERT_EQ(write(s[1], "pong", 4), 4);
  ASSERT_TRUE(WaitUntil(*poller, [&] { return received.finals == 1; }));
  EXPECT_EQ(received.results, std::vector<int32_t>{4});
  EXPECT_EQ(std::string(reinterpret_cast<char*>(in.data()), 4), "pong");

  // A multishot pooled receive armed on it ends when Close() cancels it.
  Recorder armed;
  poller->RecvBufferSelectMultishot(s[0], 0, &armed);
  Recorder closed;
  poller->Close(s[0], &closed);
  EXPECT_FALSE(ring->registered_for_testing(s[0]));
  ASSERT_TRUE(WaitUntil(*poller, [&] { return closed.finals == 1 && armed.finals == 1; }));
  EXPECT_EQ(closed.results, std::vector<int32_t>{0});
  EXPECT_EQ(read(s[1], got, sizeof got), 0) << "the registration kept the socket open";
  close(s[1]);
}

// UnregisterFile() before a close(2) lets the close really close the socket.
TEST(IoUringPollerTest, UnregisterFileThenCloseCloses) {
  IoUringPoller* ring;
  std::unique_ptr<Poller> poller = Make({}, &ring);
  SKIP_WITHOUT(poller);
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s), 0);
  ASSERT_TRUE(poller->RegisterFile(s[0]));
  poller->UnregisterFile(s[0]);
  EXPECT_FALSE(ring->registered_for_testing(s[0]));
  poller->UnregisterFile(s[0]);  // not registered: a no-op
  close(s[0]);
  char got[1];
  EXPECT_EQ(read(s[1], got, sizeof got), 0);
  close(s[1]);
}

// A descriptor number closed through the poller and reused by a new socket is registered again
// and reaches the new socket, not the old one.
TEST(IoUringPollerTest, ReusedDescriptorNumberGetsTheNewSocket) {
  IoUringPoller* ring;
  std::unique_ptr<Poller> poller = Make({}, &ring);
  SKIP_WITHOUT(poller);
  int a[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a), 0);
  ASSERT_TRUE(poller->RegisterFile(a[0]));
  Recorder closed;
  poller->Close(a[0], &closed);
  ASSERT_TRUE(WaitUntil(*poller, [&] { return closed.finals == 1; }));
  int b[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b), 0);
  ASSERT_EQ(b[0], a[0]) << "the lowest free number is reused";
  ASSERT_TRUE(poller->RegisterFile(b[0]));
  Recorder sent;
  poller->Send(b[0], std::as_bytes(std::span("x", 1)), MSG_NOSIGNAL, &sent);
  ASSERT_TRUE(WaitUntil(*poller, [&] { return sent.finals == 1; }));
  EXPECT_EQ(sent.results, std::vector<int32_t>{1});
  char got[2];
  EXPECT_EQ(read(b[1], got, sizeof got), 1);
  EXPECT_EQ(read(a[1], got, sizeof got), 0);  // the old peer: closed, nothing more
  poller->UnregisterFile(b[0]);
  close(b[0]);
  close(b[1]);
  close(a[1]);
}

// Descriptors past the table (RLIMIT_NOFILE, at most 65536) are not registered and work as
// before; a negative one is refused.
TEST(IoUringPollerTest, UnregistrableDescriptorsAreRefused) {
  IoUringPoller* ring;
  std::unique_ptr<Poller> poller = Make({}, &ring);
  SKIP_WITHOUT(poller);
  EXPECT_FALSE(poller->RegisterFile(-1));
  EXPECT_FALSE(poller->RegisterFile(1 << 20));
  EXPECT_FALSE(ring->registered_for_testing(1 << 20));
}

}  // namespace
}  // namespace kev::internal
