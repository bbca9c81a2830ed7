// IoUringPoller internals the parameterised suite (poller_test.cc) cannot reach: the setup flags
// it negotiated, and the overflow list that holds SQEs which find the SQ full.
#include "kevent/io_uring_poller.h"

#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

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

}  // namespace
}  // namespace kev::internal
