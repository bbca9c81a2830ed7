// Poller tests, part 2: cancellation, Close, Wake, threads, scale and destruction, on io_uring
// and on epoll (the PollerTest suite is instantiated in poller_test.cc).
#include "kevent/poller_test_util.h"

namespace kev::poller_testing {
namespace {

using namespace std::chrono_literals;

TEST_P(PollerTest, CancelPendingRecvCompletesOnce) {
  SKIP_IF_UNAVAILABLE();
  int s[2];
  SocketPair(s);
  std::vector<int32_t> finals;
  char buf[2][8];
  auto* submitted_then_waited = new SelfDeleting(&finals);
  auto* cancelled_before_wait = new SelfDeleting(&finals);
  poller_->Recv(s[0], Bytes(buf[0], 8), 0, submitted_then_waited);
  EXPECT_GE(poller_->Wait(0ns), 0);
  poller_->Cancel(submitted_then_waited);
  poller_->Recv(s[1], Bytes(buf[1], 8), 0, cancelled_before_wait);
  poller_->Cancel(cancelled_before_wait);  // never reached a Wait()
  EXPECT_TRUE(finals.empty()) << "Cancel must not complete inline";
  ASSERT_TRUE(Until([&] { return finals.size() == 2; }));
  EXPECT_EQ(finals, (std::vector<int32_t>{-ECANCELED, -ECANCELED}));
  EXPECT_EQ(poller_->InFlight(), 0u);
  for (int i = 0; i < 3; ++i) EXPECT_GE(poller_->Wait(1ms), 0);
  EXPECT_EQ(finals.size(), 2u);
  close(s[0]);
  close(s[1]);
}

TEST_P(PollerTest, CancelAfterCompletionGetsRealResult) {
  SKIP_IF_UNAVAILABLE();
  TempFile file;
  ASSERT_EQ(write(file.fd, "hello", 5), 5);
  char buf[8];
  Recorder read;
  poller_->Read(file.fd, Bytes(buf, sizeof buf), 0, &read);
  poller_->Cancel(&read);  // races with the read: either outcome, exactly once
  ASSERT_TRUE(Until([&] { return read.done(); }));
  EXPECT_TRUE(read.result() == 5 || read.result() == -ECANCELED) << read.result();
  EXPECT_EQ(read.events.size(), 1u);
  poller_->Cancel(&read);  // nothing in flight: a no-op
  EXPECT_GE(poller_->Wait(1ms), 0);
  EXPECT_EQ(read.events.size(), 1u);
}

TEST_P(PollerTest, CloseCancelsOperationsOnTheFd) {
  SKIP_IF_UNAVAILABLE();
  int s[2];
  SocketPair(s);
  char buf[8];
  Recorder recv, closed;
  poller_->Recv(s[0], Bytes(buf, sizeof buf), 0, &recv);
  EXPECT_GE(poller_->Wait(0ns), 0);
  poller_->Close(s[0], &closed);
  ASSERT_TRUE(Until([&] { return recv.done() && closed.done(); }));
  EXPECT_EQ(recv.result(), -ECANCELED);
  EXPECT_EQ(closed.result(), 0);
  EXPECT_EQ(poller_->InFlight(), 0u);
  close(s[1]);
}

TEST_P(PollerTest, WakeFromAnotherThreadEndsBlockingWait) {
  SKIP_IF_UNAVAILABLE();
  poller_->Wake();  // before the Wait(): the next one returns promptly
  EXPECT_GE(poller_->Wait(std::nullopt), 0);
  std::atomic<bool> done{false};
  std::thread waker([&] {
    for (int i = 0; i < 1000; ++i) {
      poller_->Wake();
      if (i % 100 == 0) std::this_thread::sleep_for(1ms);
    }
    done.store(true);
    poller_->Wake();
  });
  int waits = 0;
  while (!done.load()) {  // would hang (test timeout) if a Wake() were lost
    EXPECT_GE(poller_->Wait(std::nullopt), 0);
    ++waits;
  }
  waker.join();
  EXPECT_GE(waits, 1);
}

Poller* g_signal_poller = nullptr;
void WakeFromSignal(int) { g_signal_poller->Wake(); }

TEST_P(PollerTest, WakeFromSignalHandler) {
  SKIP_IF_UNAVAILABLE();
  g_signal_poller = poller_.get();
  struct sigaction sa {
  }, old{};
  sa.sa_handler = WakeFromSignal;
  sigaction(SIGUSR1, &sa, &old);
  pthread_t self = pthread_self();
  std::atomic<bool> waiting{false};
  std::thread signaller([&] {
    while (!waiting.load()) std::this_thread::yield();
    std::this_thread::sleep_for(10ms);
    pthread_kill(self, SIGUSR1);
  });
  waiting.store(true);
  EXPECT_GE(poller_->Wait(std::nullopt), 0);  // EINTR or the wake-up: either way it returns
  signaller.join();
  sigaction(SIGUSR1, &old, nullptr);
}

// Created on one thread, driven and destroyed on another (a reactor shard's usual life).
TEST_P(PollerTest, DrivenByAnotherThreadThanItsCreator) {
  SKIP_IF_UNAVAILABLE();
  std::thread shard([&] {
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    std::string msg = "moved";
    char buf[8] = {};
    Recorder wrote, read;
    poller_->Read(p[0], Bytes(buf, sizeof buf), -1, &read);
    poller_->Write(p[1], Bytes(msg), -1, &wrote);
    EXPECT_TRUE(Until([&] { return wrote.done() && read.done(); }));
    EXPECT_EQ(read.result(), 5);
    Recorder pending;
    poller_->Read(p[0], Bytes(buf, sizeof buf), -1, &pending);
    poller_.reset();  // on the driving thread, as the contract asks
    EXPECT_EQ(pending.result(), -ECANCELED);
    close(p[0]);
    close(p[1]);
  });
  shard.join();
}

// Without single_issuer, the driving thread may change between turns (the C API's queues).
TEST_P(PollerTest, SharedPollerDrivenByTurns) {
  SKIP_IF_UNAVAILABLE();
  std::unique_ptr<Poller> shared = Make(PollerOptions{.single_issuer = false});
  ASSERT_NE(shared, nullptr);
  int s[2];
  SocketPair(s);
  for (int turn = 0; turn < 3; ++turn) {
    std::thread driver([&] {
      char buf[4];
      Recorder recv;
      shared->Recv(s[0], Bytes(buf, sizeof buf), 0, &recv);
      EXPECT_EQ(write(s[1], "t", 1), 1);
      EXPECT_TRUE(Until(*shared, [&] { return recv.done(); }));
      EXPECT_EQ(recv.result(), 1);
    });
    driver.join();
  }
  Recorder pending;
  char buf[4];
  shared->Recv(s[0], Bytes(buf, sizeof buf), 0, &pending);
  shared.reset();  // on yet another thread
  EXPECT_EQ(pending.result(), -ECANCELED);
  close(s[0]);
  close(s[1]);
}

TEST_P(PollerTest, SmallQueueTakesThousandsOfOps) {
  SKIP_IF_UNAVAILABLE();
  std::unique_ptr<Poller> poller = Make(PollerOptions{.entries = 8});
  ASSERT_NE(poller, nullptr);
  TempFile file;
  constexpr int kReads = 1000;
  std::string data(kReads, '\0');
  for (int i = 0; i < kReads; ++i) data[i] = static_cast<char>(i * 7);
  ASSERT_EQ(write(file.fd, data.data(), kReads), kReads);
  std::vector<char> got(kReads);
  std::vector<Recorder> reads(kReads), timeouts(100), recvs(50);
  for (int i = 0; i < kReads; ++i) poller->Read(file.fd, Bytes(&got[i], 1), i, &reads[i]);
  for (Recorder& t : timeouts) poller->Timeout(0ns, &t);
  int s[2];
  SocketPair(s, SOCK_DGRAM);
  char buf[50];
  for (int i = 0; i < 50; ++i) poller->Recv(s[0], Bytes(&buf[i], 1), 0, &recvs[i]);
  EXPECT_EQ(poller->InFlight(), 1150u);
  for (int i = 0; i < 50; ++i) ASSERT_EQ(write(s[1], "r", 1), 1);
  ASSERT_TRUE(Until(*poller, [&] { return poller->InFlight() == 0; }));
  for (int i = 0; i < kReads; ++i) {
    ASSERT_EQ(reads[i].events.size(), 1u);
    ASSERT_EQ(reads[i].result(), 1);
  }
  EXPECT_EQ(std::string(got.begin(), got.end()), data);
  for (Recorder& t : timeouts) EXPECT_EQ(t.result(), -ETIME);
  for (Recorder& r : recvs) EXPECT_EQ(r.result(), 1);
  close(s[0]);
  close(s[1]);
}

TEST_P(PollerTest, TenThousandSocketsPolledAtOnce) {
  SKIP_IF_UNAVAILABLE();
  constexpr int kSockets = 10'000;
  rlimit limit;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_max < kSockets + 200) {
    GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << limit.rlim_max << " < " << kSockets + 200;
  }
  limit.rlim_cur = limit.rlim_max;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
  std::vector<int> fds(kSockets);
  for (int i = 0; i < kSockets; i += 2) SocketPair(&fds[i]);
  std::vector<Recorder> polls(kSockets);
  for (int i = 0; i < kSockets; ++i) poller_->PollAdd(fds[i], POLLIN, false, &polls[i]);
  EXPECT_GE(poller_->Wait(0ns), 0);
  EXPECT_EQ(poller_->InFlight(), static_cast<size_t>(kSockets));
  for (int i = 0; i < kSockets; ++i) ASSERT_EQ(write(fds[i ^ 1], "!", 1), 1);
  ASSERT_TRUE(Until([&] { return poller_->InFlight() == 0; }));
  for (const Recorder& r : polls) {
    ASSERT_EQ(r.events.size(), 1u);
    ASSERT_TRUE(r.result() & POLLIN);
  }
  for (int fd : fds) close(fd);
}

TEST_P(PollerTest, DestructionCompletesEverythingInFlight) {
  SKIP_IF_UNAVAILABLE();
  int s[2], p[2];
  SocketPair(s);
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  sockaddr_in addr;
  int listener = Listen(&addr, true);
  TempFile file;
  ASSERT_EQ(write(file.fd, "hello", 5), 5);
  char buf[4][8];
  Recorder recv0, recv1, pipe_read, timeout, poll, accept, file_read, late;
  // A callback that submits during destruction: that operation is refused with -ECANCELED.
  struct Resubmit : Recorder {
    void OnComplete(int32_t result, uint32_t flags) noexcept override {
      Recorder::OnComplete(result, flags);
      if (done()) poller->Recv(fd, Bytes(buf, sizeof buf), 0, late);
    }
    Poller* poller;
    int fd;
    char buf[8];
    Recorder* late;
  } resubmit;
  resubmit.poller = poller_.get();
  resubmit.fd = s[1];
  resubmit.late = &late;
  poller_->Recv(s[0], Bytes(buf[0], 8), 0, &recv0);
  poller_->Recv(s[1], Bytes(buf[1], 8), 0, &recv1);
  poller_->Read(p[0], Bytes(buf[2], 8), -1, &pipe_read);
  poller_->Timeout(std::chrono::hours(1), &timeout);
  poller_->PollAdd(s[0], POLLIN, true, &poll);
  poller_->Accept(listener, nullptr, nullptr, 0, true, &accept);
  EXPECT_GE(poller_->Wait(0ns), 0);
  poller_->Recv(s[0], Bytes(buf[3], 8), 0, &resubmit);
  poller_->Read(file.fd, Bytes(buf[3], 8), 0, &file_read);  // may finish before the cancel
  poller_.reset();
  for (Recorder* r : {&recv0, &recv1, &pipe_read, &timeout, &poll, &accept,
                      static_cast<Recorder*>(&resubmit), &late}) {
    EXPECT_EQ(r->finals, 1);
    EXPECT_EQ(r->result(), -ECANCELED);
  }
  EXPECT_EQ(file_read.finals, 1);
  EXPECT_TRUE(file_read.result() == 5 || file_read.result() == -ECANCELED);
  for (int fd : {s[0], s[1], p[0], p[1], listener}) close(fd);
}

}  // namespace
}  // namespace kev::poller_testing
