// io_uring completion-queue overflow, provoked on purpose: a poller with a tiny ring
// (PollerOptions::entries 1 or 2, so a CQ of 2-4 entries) gets hundreds of operations that all
// complete while nobody reaps, so the kernel parks the surplus CQEs in its overflow list
// (IORING_FEAT_NODROP) and the poller must drain them over later Wait()s. Nothing may be lost,
// duplicated or mixed up: every operation gets exactly one final completion with its own result.
//
// The same scenarios run on epoll as a control (there `entries` bounds the events fetched per
// epoll_wait, the analogous limit).
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kevent/poller.h"

namespace kev {
namespace {

using namespace std::chrono_literals;

struct Recorder final : IoCompletion {
  void OnComplete(int32_t r, uint32_t flags) noexcept override {
    if ((flags & kCompletionMore) != 0) {
      ++more;
      return;
    }
    ++finals;
    result = r;
  }
  int finals = 0;
  int more = 0;
  int32_t result = 0;
};

struct Param {
  PollerBackend backend;
  unsigned entries;
  bool single_issuer;
};

class CqOverflowTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    PollerOptions options;
    options.entries = GetParam().entries;
    options.single_issuer = GetParam().single_issuer;
    int error = 0;
    poller_ = Poller::Create(GetParam().backend, options, &error);
    if (poller_ == nullptr) GTEST_SKIP() << "backend unavailable: " << error;
  }

  // Drives the poller until done() (bounded: a lost completion fails, never hangs).
  bool WaitUntil(const std::function<bool()>& done) {
    for (int i = 0; i < 2000 && !done(); ++i) {
      if (poller_->Wait(10ms) < 0) return false;
    }
    return done();
  }

  // Enough non-blocking Wait()s to move every held submission into the kernel.
  void SubmitAll() {
    for (int i = 0; i < 2100; ++i) poller_->Wait(0ns);
  }

  std::unique_ptr<Poller> poller_;
};

// 500 receives on datagram socketpairs, all satisfied before the first Wait() that reaps:
// each receive gets its own datagram (its index), exactly once.
TEST_P(CqOverflowTest, ReceivesCompletedBeforeReapingAreAllDelivered) {
  constexpr int kPairs = 50;
  constexpr int kPerPair = 10;
  int fds[kPairs][2];
  for (auto& p : fds) ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, p), 0);
  std::vector<Recorder> done(kPairs * kPerPair);
  std::vector<uint32_t> got(kPairs * kPerPair, ~0u);
  for (int p = 0; p < kPairs; ++p) {
    for (int i = 0; i < kPerPair; ++i) {
      const int k = p * kPerPair + i;
      poller_->Recv(fds[p][0], {reinterpret_cast<std::byte*>(&got[k]), sizeof(uint32_t)}, 0,
                    &done[k]);
    }
  }
  // Get them all into the kernel (the SQ is tiny: the poller holds the rest and feeds them in
  // at each Wait); nothing completes yet, no socket has data.
  SubmitAll();
  ASSERT_EQ(poller_->InFlight(), done.size());
  // Now satisfy every receive at once; the kernel completes them all before the next reap.
  for (int p = 0; p < kPairs; ++p) {
    for (int i = 0; i < kPerPair; ++i) {
      const uint32_t v = 0x5a000000u | static_cast<uint32_t>(p * kPerPair + i);
      ASSERT_EQ(write(fds[p][1], &v, sizeof v), static_cast<ssize_t>(sizeof v));
    }
  }
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(WaitUntil([&] { return poller_->InFlight() == 0; }));
  std::vector<int> seen(done.size(), 0);
  for (size_t k = 0; k < done.size(); ++k) {
    ASSERT_EQ(done[k].finals, 1) << k;
    ASSERT_EQ(done[k].result, static_cast<int32_t>(sizeof(uint32_t))) << k;
    ASSERT_EQ(got[k] & 0xff000000u, 0x5a000000u) << k;
    const uint32_t v = got[k] & 0xffffffu;
    ASSERT_LT(v, done.size());
    // Same pair: the datagrams of one socket go to its receives in some order.
    EXPECT_EQ(v / kPerPair, k / kPerPair) << k;
    ++seen[v];
  }
  for (size_t v = 0; v < seen.size(); ++v) EXPECT_EQ(seen[v], 1) << "datagram " << v;
  for (auto& p : fds) {
    close(p[0]);
    close(p[1]);
  }
}

// 1000 timeouts that all expire while nobody reaps: 1000 -ETIME, each exactly once.
TEST_P(CqOverflowTest, ExpiredTimeoutsAreAllDelivered) {
  std::vector<Recorder> done(1000);
  for (auto& d : done) poller_->Timeout(300ms, &d);
  SubmitAll();  // ~2000 cheap Wait(0)s: well under 300 ms, so nothing has expired yet
  std::this_thread::sleep_for(400ms);
  ASSERT_TRUE(WaitUntil([&] { return poller_->InFlight() == 0; }));
  for (size_t k = 0; k < done.size(); ++k) {
    ASSERT_EQ(done[k].finals, 1) << k;
    EXPECT_EQ(done[k].result, -ETIME) << k;
  }
}

// Multishot readiness: 64 sockets readable at once produce a burst of CQEs (with MORE) beyond
// the CQ; then every one is cancelled and gets exactly one final.
TEST_P(CqOverflowTest, MultishotBurstThenCancelOneFinalEach) {
  constexpr int kPairs = 64;
  int fds[kPairs][2];
  std::vector<Recorder> done(kPairs);
  for (int p = 0; p < kPairs; ++p) {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds[p]), 0);
    poller_->PollAdd(fds[p][0], POLLIN, /*multishot=*/true, &done[p]);
  }
  SubmitAll();
  for (auto& p : fds) ASSERT_EQ(write(p[1], "x", 1), 1);
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(WaitUntil([&] {
    for (const Recorder& d : done) {
      if (d.more + d.finals == 0) return false;
    }
    return true;
  }));
  for (auto& d : done) poller_->Cancel(&d);
  ASSERT_TRUE(WaitUntil([&] { return poller_->InFlight() == 0; }));
  for (int p = 0; p < kPairs; ++p) {
    EXPECT_EQ(done[p].finals, 1) << p;
    EXPECT_GE(done[p].more + done[p].finals, 1) << p;
  }
  for (auto& p : fds) {
    close(p[0]);
    close(p[1]);
  }
}

INSTANTIATE_TEST_SUITE_P(
    TinyRings, CqOverflowTest,
    ::testing::Values(Param{PollerBackend::kIoUring, 1, true},
                      Param{PollerBackend::kIoUring, 2, false},
                      Param{PollerBackend::kEpoll, 1, true}),
    [](const ::testing::TestParamInfo<Param>& info) {
      return std::string(info.param.backend == PollerBackend::kIoUring ? "io_uring" : "epoll") +
             "_entries" + std::to_string(info.param.entries) +
             (info.param.single_issuer ? "_single_issuer" : "_shared");
    });

}  // namespace
}  // namespace kev
