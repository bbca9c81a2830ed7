// Poller tests, part 2: cancellation, Close, Wake, threads, scale, destruction and buffer
// selection (with the pool's idle give-back), on io_uring and on epoll (the PollerTest suite is
// instantiated in poller_test.cc).
#include <sys/mman.h>

#include <array>

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

// RegisterFile is an optimisation only: io_uring registers the socket, epoll declines, and on
// both a registered socket sends, receives, and is really closed by Close() (the peer sees the
// end of the stream: the registration does not keep the file open).
TEST_P(PollerTest, RegisteredSocketWorksAndClosesOnEitherBackend) {
  SKIP_IF_UNAVAILABLE();
  int s[2];
  SocketPair(s);
  EXPECT_EQ(poller_->RegisterFile(s[0]), GetParam() == PollerBackend::kIoUring);
  Recorder sent, received, closed;
  poller_->Send(s[0], Bytes(std::string("ping")), MSG_NOSIGNAL, &sent);
  char in[8] = {};
  poller_->Recv(s[0], Bytes(in, sizeof in), 0, &received);
  ASSERT_EQ(write(s[1], "pong", 4), 4);
  ASSERT_TRUE(Until([&] { return sent.done() && received.done(); }));
  EXPECT_EQ(sent.result(), 4);
  EXPECT_EQ(received.result(), 4);
  EXPECT_EQ(std::string(in, 4), "pong");
  char got[8];
  ASSERT_EQ(read(s[1], got, sizeof got), 4);
  poller_->Close(s[0], &closed);
  ASSERT_TRUE(Until([&] { return closed.done(); }));
  EXPECT_EQ(closed.result(), 0);
  // MSG_DONTWAIT: a socket left open fails here (-1, EAGAIN) instead of hanging the test.
  EXPECT_EQ(recv(s[1], got, sizeof got, MSG_DONTWAIT), 0) << "the socket stayed open after Close()";
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

// --- Buffer selection (RecvBufferSelect) ---------------------------------------------------
// Each case runs with the provided-buffer ring and, on io_uring, also with the fallback
// (use_buffer_ring = false); epoll has one mode.

std::vector<PollerOptions> BufferModes(PollerBackend backend, unsigned count, unsigned size) {
  PollerOptions ring;
  ring.recv_buffer_count = count;
  ring.recv_buffer_size = size;
  if (backend != PollerBackend::kIoUring) return {ring};
  PollerOptions fallback = ring;
  fallback.use_buffer_ring = false;
  return {ring, fallback};
}

uint16_t BufferOf(const Recorder& r) { return CompletionBufferId(r.events.back().flags); }

std::string InBuffer(Poller& poller, const Recorder& r) {
  std::span<std::byte> buf = poller.SelectedBuffer(BufferOf(r));
  return std::string(reinterpret_cast<const char*>(buf.data()), static_cast<size_t>(r.result()));
}

TEST_P(PollerTest, BufferSelectRecvLandsInPoolBufferAndReturns) {
  SKIP_IF_UNAVAILABLE();
  for (const PollerOptions& options : BufferModes(GetParam(), 4, 64)) {
    SCOPED_TRACE(options.use_buffer_ring ? "ring" : "fallback");
    std::unique_ptr<Poller> poller = Make(options);
    ASSERT_NE(poller, nullptr);
    ASSERT_TRUE(poller->SupportsBufferSelect());
    int s[2];
    SocketPair(s);
    Recorder r;
    poller->RecvBufferSelect(s[0], 0, &r);
    bool uring = GetParam() == PollerBackend::kIoUring;
    EXPECT_EQ(poller->UsesBufferRing(), uring && options.use_buffer_ring);
    EXPECT_GE(poller->Wait(1ms), 0);
    EXPECT_FALSE(r.done());
    // A waiting receive holds no buffer, except in io_uring's fallback (taken at submission).
    EXPECT_EQ(poller->BuffersAvailable(), uring && !options.use_buffer_ring ? 3u : 4u);
    ASSERT_EQ(write(s[1], "hello", 5), 5);
    ASSERT_TRUE(Until(*poller, [&] { return r.done(); }));
    ASSERT_EQ(r.result(), 5);
    ASSERT_NE(r.events.back().flags & kCompletionBuffer, 0u);
    EXPECT_EQ(poller->SelectedBuffer(BufferOf(r)).size(), 64u);
    EXPECT_EQ(InBuffer(*poller, r), "hello");
    EXPECT_EQ(poller->BuffersAvailable(), 3u);
    poller->ReturnBuffer(BufferOf(r));
    EXPECT_EQ(poller->BuffersAvailable(), 4u);
    // Many rounds: buffers go around the pool (and the ring wraps) without loss.
    for (int i = 0; i < 20; ++i) {
      Recorder again;
      std::string msg = "round" + std::to_string(i);
      ASSERT_EQ(write(s[1], msg.data(), msg.size()), static_cast<ssize_t>(msg.size()));
      poller->RecvBufferSelect(s[0], 0, &again);
      ASSERT_TRUE(Until(*poller, [&] { return again.done(); }));
      ASSERT_EQ(InBuffer(*poller, again), msg);
      poller->ReturnBuffer(BufferOf(again));
    }
    // End of stream: result 0 and no buffer.
    Recorder eof;
    shutdown(s[1], SHUT_WR);
    poller->RecvBufferSelect(s[0], 0, &eof);
    ASSERT_TRUE(Until(*poller, [&] { return eof.done(); }));
    EXPECT_EQ(eof.result(), 0);
    EXPECT_EQ(eof.events.back().flags & kCompletionBuffer, 0u);
    EXPECT_EQ(poller->BuffersAvailable(), 4u);
    EXPECT_EQ(poller->InFlight(), 0u);
    close(s[0]);
    close(s[1]);
  }
}

TEST_P(PollerTest, BufferSelectExhaustedPoolGivesEnobufsThenRecovers) {
  SKIP_IF_UNAVAILABLE();
  for (const PollerOptions& options : BufferModes(GetParam(), 2, 16)) {
    SCOPED_TRACE(options.use_buffer_ring ? "ring" : "fallback");
    std::unique_ptr<Poller> poller = Make(options);
    ASSERT_NE(poller, nullptr);
    int s[3][2];
    Recorder r[3];
    for (int i = 0; i < 3; ++i) {
      SocketPair(s[i]);
      ASSERT_EQ(write(s[i][1], "x", 1), 1);
      poller->RecvBufferSelect(s[i][0], 0, &r[i]);
    }
    ASSERT_TRUE(Until(*poller, [&] { return r[0].done() && r[1].done() && r[2].done(); }));
    int failed = -1;
    for (int i = 0; i < 3; ++i) {
      if (r[i].result() == -ENOBUFS) {
        EXPECT_EQ(failed, -1) << "two receives failed";
        failed = i;
        EXPECT_EQ(r[i].events.back().flags & kCompletionBuffer, 0u);
      } else {
        EXPECT_EQ(r[i].result(), 1);
      }
    }
    ASSERT_NE(failed, -1);
    EXPECT_EQ(poller->BuffersAvailable(), 0u);
    // Returning a buffer lets the failed socket receive its byte (it was not lost).
    int donor = failed == 0 ? 1 : 0;
    poller->ReturnBuffer(BufferOf(r[donor]));
    Recorder retry;
    poller->RecvBufferSelect(s[failed][0], 0, &retry);
    ASSERT_TRUE(Until(*poller, [&] { return retry.done(); }));
    ASSERT_EQ(retry.result(), 1);
    EXPECT_EQ(InBuffer(*poller, retry), "x");
    for (int i = 0; i < 3; ++i) {
      if (i != failed && i != donor) poller->ReturnBuffer(BufferOf(r[i]));
    }
    poller->ReturnBuffer(BufferOf(retry));
    EXPECT_EQ(poller->BuffersAvailable(), 2u);
    for (auto& p : s) {
      close(p[0]);
      close(p[1]);
    }
  }
}

TEST_P(PollerTest, BufferSelectCancelCloseAndDestructionHoldNoBuffer) {
  SKIP_IF_UNAVAILABLE();
  for (const PollerOptions& options : BufferModes(GetParam(), 4, 64)) {
    SCOPED_TRACE(options.use_buffer_ring ? "ring" : "fallback");
    std::unique_ptr<Poller> poller = Make(options);
    ASSERT_NE(poller, nullptr);
    int s[2], t[2], u[2];
    SocketPair(s);
    SocketPair(t);
    SocketPair(u);
    Recorder cancelled, closed, close_done, at_destruction;
    poller->RecvBufferSelect(s[0], 0, &cancelled);
    poller->RecvBufferSelect(t[0], 0, &closed);
    EXPECT_GE(poller->Wait(1ms), 0);
    poller->Cancel(&cancelled);
    poller->Close(t[0], &close_done);  // cancels the receive first
    ASSERT_TRUE(
        Until(*poller, [&] { return cancelled.done() && closed.done() && close_done.done(); }));
    EXPECT_EQ(cancelled.result(), -ECANCELED);
    EXPECT_EQ(closed.result(), -ECANCELED);
    EXPECT_EQ(cancelled.events.back().flags & kCompletionBuffer, 0u);
    EXPECT_EQ(closed.events.back().flags & kCompletionBuffer, 0u);
    EXPECT_EQ(poller->BuffersAvailable(), 4u);
    // Cancelled before any Wait(): in the fallback it never reached the kernel.
    Recorder early;
    poller->RecvBufferSelect(s[0], 0, &early);
    poller->Cancel(&early);
    ASSERT_TRUE(Until(*poller, [&] { return early.done(); }));
    EXPECT_EQ(early.result(), -ECANCELED);
    EXPECT_EQ(poller->BuffersAvailable(), 4u);
    poller->RecvBufferSelect(u[0], 0, &at_destruction);
    EXPECT_GE(poller->Wait(0ns), 0);
    poller.reset();
    EXPECT_EQ(at_destruction.finals, 1);
    EXPECT_EQ(at_destruction.result(), -ECANCELED);
    for (int fd : {s[0], s[1], t[1], u[0], u[1]}) close(fd);
  }
}

// Regression (the epoll pool never gave pages back): once the shard idles, free buffers the
// load no longer needs give their pages back (every 250 ms, BufferReserve::Release), on both
// backends; a buffer a receiver holds keeps its page and its bytes, and a buffer given back
// works as before. io_uring runs without its ring here: buffers in the ring stay resident by
// design (io_uring_poller_test covers the ring's window).
TEST_P(PollerTest, BufferSelectIdlePoolGivesPagesBack) {
  SKIP_IF_UNAVAILABLE();
  constexpr unsigned kCount = 16;
  constexpr size_t kSockets = 8;
  std::unique_ptr<Poller> poller =
      Make({.recv_buffer_count = kCount, .recv_buffer_size = 4096, .use_buffer_ring = false});
  ASSERT_NE(poller, nullptr);
  std::vector<std::array<int, 2>> s(kSockets);
  for (auto& pair : s) SocketPair(pair.data());
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);  // round 1 receives into buffers whose pages were given back
    std::vector<Recorder> r(kSockets);
    for (size_t i = 0; i < kSockets; ++i) {
      std::string msg = "m" + std::to_string(i);
      ASSERT_EQ(write(s[i][1], msg.data(), msg.size()), static_cast<ssize_t>(msg.size()));
      poller->RecvBufferSelect(s[i][0], 0, &r[i]);
    }
    ASSERT_TRUE(Until(*poller, [&] {
      return std::all_of(r.begin(), r.end(), [](const Recorder& x) { return x.done(); });
    }));
    for (size_t i = 0; i < kSockets; ++i) {
      ASSERT_EQ(InBuffer(*poller, r[i]), "m" + std::to_string(i));
    }
    EXPECT_EQ(ResidentCount(*poller, kCount), kSockets);
    // Hold the first buffer; give the rest back and idle until their pages are gone.
    for (size_t i = 1; i < kSockets; ++i) poller->ReturnBuffer(BufferOf(r[i]));
    ASSERT_TRUE(Until(*poller, [&] { return ResidentCount(*poller, kCount) == 1; }));
    EXPECT_TRUE(Resident(*poller, kCount)[BufferOf(r[0])]) << "a held buffer lost its page";
    EXPECT_EQ(InBuffer(*poller, r[0]), "m0");
    poller->ReturnBuffer(BufferOf(r[0]));
    EXPECT_EQ(poller->BuffersAvailable(), kCount);
  }
  // The last one returned goes too: an idle shard keeps nothing of the pool resident.
  ASSERT_TRUE(Until(*poller, [&] { return ResidentCount(*poller, kCount) == 0; }));
  EXPECT_EQ(poller->InFlight(), 0u);
  for (auto& pair : s) {
    close(pair[0]);
    close(pair[1]);
  }
}

}  // namespace
}  // namespace kev::poller_testing
