// FaultInjectingPoller on both backends: failures are not performed and arrive inside Wait(),
// short transfers are real, every fault kind is reachable, decisions are reproducible from the
// seed, one final completion per operation (Cancel, destruction), and a retrying transfer loop
// survives a high fault rate with its data intact.
#include "kevent/testing/fault_injecting_poller.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace kev {
namespace {

struct Recorder : IoCompletion {
  void OnComplete(int32_t result, uint32_t flags) noexcept override {
    results.push_back(result);
    if ((flags & kCompletionMore) == 0) ++finals;
    if (then) then(result);
  }
  std::vector<int32_t> results;
  int finals = 0;
  std::function<void(int32_t)> then;
};

std::span<const std::byte> Bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
std::span<std::byte> Bytes(std::string& s) {
  return {reinterpret_cast<std::byte*>(s.data()), s.size()};
}

class FaultInjectingPollerTest : public ::testing::TestWithParam<PollerBackend> {
 protected:
  void SetUp() override {
    ASSERT_EQ(pipe2(pipe_, O_NONBLOCK | O_CLOEXEC), 0);
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock_), 0);
  }
  void TearDown() override {
    for (int fd : {pipe_[0], pipe_[1], sock_[0], sock_[1]}) close(fd);
  }

  std::unique_ptr<FaultInjectingPoller> Make(const FaultOptions& options) {
    std::unique_ptr<Poller> inner = Poller::Create(GetParam());
    EXPECT_NE(inner, nullptr);
    return std::make_unique<FaultInjectingPoller>(std::move(inner), options);
  }
  // Drives p until c has its final completion (bounded: the test fails instead of hanging).
  void WaitFor(Poller& p, const Recorder& c) {
    for (int i = 0; i < 1000 && c.finals == 0; ++i) {
      ASSERT_GE(p.Wait(std::chrono::milliseconds(10)), 0);
    }
    ASSERT_EQ(c.finals, 1);
  }
  // Bytes waiting in the pipe, read with the plain syscall.
  std::string DrainPipe() {
    std::string out(1 << 16, '\0');
    const ssize_t n = read(pipe_[0], out.data(), out.size());
    out.resize(n > 0 ? n : 0);
    return out;
  }

  int pipe_[2];
  int sock_[2];
};

TEST_P(FaultInjectingPollerTest, WithoutFaultsItIsTransparent) {
  auto p = Make(FaultOptions{});
  EXPECT_EQ(p->backend(), GetParam());
  EXPECT_EQ(p->name().substr(0, 7), "faulty-");
  Recorder w, r;
  p->Write(pipe_[1], Bytes(std::string("hello")), -1, &w);
  WaitFor(*p, w);
  EXPECT_EQ(w.results.back(), 5);
  std::string buf(16, '\0');
  p->Read(pipe_[0], Bytes(buf), -1, &r);
  WaitFor(*p, r);
  EXPECT_EQ(r.results.back(), 5);
  EXPECT_EQ(buf.substr(0, 5), "hello");
  EXPECT_EQ(p->stats().eligible, 2u);
  EXPECT_EQ(p->stats().injected(), 0u);
}

TEST_P(FaultInjectingPollerTest, AnInjectedFailureIsNotPerformedAndArrivesInWait) {
  FaultOptions options;
  options[Fault::kEnomem] = 1.0;
  auto p = Make(options);
  Recorder w;
  p->Write(pipe_[1], Bytes(std::string("lost")), -1, &w);
  EXPECT_TRUE(w.results.empty()) << "completed inside its own submission";
  EXPECT_EQ(p->InFlight(), 1u);
  ASSERT_GE(p->Wait(std::chrono::seconds(1)), 1);
  ASSERT_EQ(w.results, std::vector<int32_t>{-ENOMEM});
  EXPECT_EQ(p->InFlight(), 0u);
  EXPECT_EQ(DrainPipe(), "") << "a failed write must not have written";

  ASSERT_EQ(write(pipe_[1], "kept", 4), 4);
  std::string buf(8, '\0');
  Recorder r;
  p->Read(pipe_[0], Bytes(buf), -1, &r);
  WaitFor(*p, r);
  EXPECT_EQ(r.results.back(), -ENOMEM);
  EXPECT_EQ(DrainPipe(), "kept") << "a failed read must not have consumed";
  EXPECT_EQ(p->stats()[Fault::kEnomem], 2u);
}

TEST_P(FaultInjectingPollerTest, EveryFaultKindIsReachable) {
  struct Case {
    Fault fault;
    int expected;
  };
  for (const Case& c :
       {Case{Fault::kEnomem, -ENOMEM}, Case{Fault::kEagain, -EAGAIN}, Case{Fault::kEintr, -EINTR},
        Case{Fault::kEconnreset, -ECONNRESET}, Case{Fault::kEnospc, -ENOSPC}}) {
    FaultOptions options;
    options[c.fault] = 1.0;
    auto p = Make(options);
    Recorder w;
    p->Write(pipe_[1], Bytes(std::string("x")), -1, &w);  // Write admits every errno
    WaitFor(*p, w);
    EXPECT_EQ(w.results.back(), c.expected) << FaultName(c.fault);
    EXPECT_EQ(p->stats()[c.fault], 1u);
  }
  EXPECT_EQ(DrainPipe(), "");
}

TEST_P(FaultInjectingPollerTest, FaultsOnlyWhereTheKernelCouldReturnThem) {
  FaultOptions options;
  options[Fault::kEnospc] = 1.0;  // not a read error
  options[Fault::kShort] = 1.0;   // nothing to shorten in a 1-byte read
  auto p = Make(options);
  ASSERT_EQ(write(pipe_[1], "z", 1), 1);
  std::string buf(1, '\0');
  Recorder r;
  p->Read(pipe_[0], Bytes(buf), -1, &r);
  WaitFor(*p, r);
  EXPECT_EQ(r.results.back(), 1);
  EXPECT_EQ(p->stats().injected(), 0u);
}

TEST_P(FaultInjectingPollerTest, ShortTransfersAreRealAndShort) {
  FaultOptions options;
  options[Fault::kShort] = 1.0;
  auto p = Make(options);
  const std::string data(1000, 'd');
  Recorder w;
  p->Write(pipe_[1], Bytes(data), -1, &w);
  WaitFor(*p, w);
  const int written = w.results.back();
  EXPECT_GE(written, 1);
  EXPECT_LT(written, 1000);
  EXPECT_EQ(DrainPipe().size(), static_cast<size_t>(written));

  ASSERT_EQ(write(sock_[0], data.data(), 100), 100);
  std::string buf(100, '\0');
  Recorder r;
  p->Recv(sock_[1], Bytes(buf), 0, &r);
  WaitFor(*p, r);
  EXPECT_GE(r.results.back(), 1);
  EXPECT_LT(r.results.back(), 100);
  EXPECT_EQ(p->stats()[Fault::kShort], 2u);
}

TEST_P(FaultInjectingPollerTest, DecideHookChoosesExactOperations) {
  FaultOptions options;
  options.decide = [](FaultOp op, uint64_t index) -> std::optional<Fault> {
    if (op == FaultOp::kSend && index == 1) return Fault::kEconnreset;
    return Fault::kNone;
  };
  auto p = Make(options);
  std::vector<int32_t> results;
  for (int i = 0; i < 3; ++i) {
    Recorder s;
    p->Send(sock_[0], Bytes(std::string("abc")), 0, &s);
    WaitFor(*p, s);
    results.push_back(s.results.back());
  }
  EXPECT_EQ(results, (std::vector<int32_t>{3, -ECONNRESET, 3}));
}

// The same seed and the same operations give the same faults and results; another seed not.
std::vector<int32_t> Script(Poller& p, int a, int b) {
  std::vector<int32_t> log;
  size_t outstanding = 0;
  std::string buf(256, '\0');
  const std::string chunk(64, 'c');
  for (int i = 0; i < 300; ++i) {
    Recorder c;
    if (outstanding == 0 || i % 3 != 2) {
      p.Send(a, Bytes(chunk), 0, &c);
    } else {
      p.Recv(b, Bytes(buf), 0, &c);
    }
    for (int k = 0; k < 1000 && c.finals == 0; ++k) p.Wait(std::chrono::milliseconds(10));
    if (c.finals != 1) return {};
    const int32_t res = c.results.back();
    log.push_back(res);
    if (res > 0)
      outstanding = (outstanding == 0 || i % 3 != 2) ? outstanding + res : outstanding - res;
  }
  return log;
}

TEST_P(FaultInjectingPollerTest, DeterministicForASeed) {
  FaultOptions options;
  options[Fault::kEagain] = 0.1;
  options[Fault::kEintr] = 0.1;
  options[Fault::kShort] = 0.3;
  std::vector<std::vector<int32_t>> logs;
  std::vector<FaultStats> stats;
  for (uint64_t seed : {7, 7, 8}) {
    options.seed = seed;
    auto p = Make(options);
    logs.push_back(Script(*p, sock_[0], sock_[1]));
    stats.push_back(p->stats());
    char drain[1 << 16];
    while (recv(sock_[1], drain, sizeof(drain), MSG_DONTWAIT) > 0) {
    }
  }
  ASSERT_EQ(logs[0].size(), 300u);
  EXPECT_EQ(logs[0], logs[1]);
  EXPECT_EQ(stats[0].count, stats[1].count);
  EXPECT_NE(logs[0], logs[2]);
  EXPECT_GT(stats[0].injected(), 30u);
}

TEST_P(FaultInjectingPollerTest, CancelKeepsOneFinal) {
  FaultOptions options;
  options[Fault::kEagain] = 1.0;
  auto p = Make(options);
  Recorder r;
  std::string buf(8, '\0');
  p->Read(pipe_[0], Bytes(buf), -1, &r);
  p->Cancel(&r);
  for (int i = 0; i < 3; ++i) p->Wait(std::chrono::milliseconds(1));
  EXPECT_EQ(r.results, std::vector<int32_t>{-EAGAIN});
  EXPECT_EQ(r.finals, 1);
}

TEST_P(FaultInjectingPollerTest, DestructionDeliversEveryFinal) {
  FaultOptions options;
  options.decide = [](FaultOp, uint64_t index) -> std::optional<Fault> {
    return index == 0 ? Fault::kEnomem : Fault::kNone;
  };
  Recorder injected, real, resubmitted;
  std::string buf(8, '\0');
  {
    auto p = Make(options);
    p->Read(pipe_[0], Bytes(buf), -1, &injected);  // injected -ENOMEM, undelivered
    p->Read(pipe_[0], Bytes(buf), -1, &real);      // real, waits on an empty pipe
    Poller* raw = p.get();
    injected.then = [raw, &buf, &resubmitted](int32_t) {
      raw->Read(-1, Bytes(buf), -1, &resubmitted);  // from a callback during destruction
    };
    p.reset();
  }
  EXPECT_EQ(injected.results, std::vector<int32_t>{-ENOMEM});
  ASSERT_EQ(real.results.size(), 1u);  // never submitted: -ECANCELED (or a real -EAGAIN)
  EXPECT_TRUE(real.results[0] == -ECANCELED || real.results[0] == -EAGAIN) << real.results[0];
  EXPECT_EQ(resubmitted.results, std::vector<int32_t>{-ECANCELED});
}

// What code above the poller must do, and can: a byte stream over a socket pair with a fault
// in half the operations arrives intact, retrying failures and resuming short transfers.
TEST_P(FaultInjectingPollerTest, RetryingTransferSurvivesHeavyFaults) {
  FaultOptions options;
  options.seed = 99;
  options[Fault::kEnomem] = 0.1;
  options[Fault::kEagain] = 0.1;
  options[Fault::kEintr] = 0.1;
  options[Fault::kShort] = 0.2;
  auto p = Make(options);
  std::string data(64 * 1024, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + 7);
  std::string got(data.size(), '\0');
  size_t sent = 0, received = 0;
  Recorder s, r;
  bool send_busy = false, recv_busy = false;
  s.then = [&](int32_t res) {
    send_busy = false;
    if (res > 0) sent += res;
  };
  r.then = [&](int32_t res) {
    recv_busy = false;
    if (res > 0) received += res;
  };
  for (int turn = 0; turn < 100000 && received < data.size(); ++turn) {
    if (!send_busy && sent < data.size()) {
      send_busy = true;
      const size_t n = std::min<size_t>(4096, data.size() - sent);
      p->Send(sock_[0], Bytes(data).subspan(sent, n), 0, &s);
    }
    if (!recv_busy) {
      recv_busy = true;
      p->Recv(sock_[1], Bytes(got).subspan(received), 0, &r);
    }
    ASSERT_GE(p->Wait(std::chrono::milliseconds(100)), 0);
  }
  if (recv_busy) {
    p->Cancel(&r);
    while (recv_busy) p->Wait(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(received, data.size());
  EXPECT_TRUE(got == data);
  EXPECT_GT(p->stats().injected(), 20u);
}

INSTANTIATE_TEST_SUITE_P(Backends, FaultInjectingPollerTest,
                         ::testing::Values(PollerBackend::kIoUring, PollerBackend::kEpoll),
                         [](const auto& info) {
                           return info.param == PollerBackend::kIoUring ? "IoUring" : "Epoll";
                         });

TEST(FaultOptionsTest, Parse) {
  auto o = FaultOptions::Parse("seed=7,enomem=0.01,short=0.25,econnreset=1");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->seed, 7u);
  EXPECT_DOUBLE_EQ((*o)[Fault::kEnomem], 0.01);
  EXPECT_DOUBLE_EQ((*o)[Fault::kShort], 0.25);
  EXPECT_DOUBLE_EQ((*o)[Fault::kEconnreset], 1.0);
  EXPECT_DOUBLE_EQ((*o)[Fault::kEagain], 0.0);
  EXPECT_TRUE(FaultOptions::Parse("").has_value());
  for (const char* bad : {"seed", "seed=x", "enomem=2", "enomem=-0.1", "bogus=0.1", "enomem=0.1x",
                          "short=", "seed=1,,eagain=0.1"}) {
    EXPECT_FALSE(FaultOptions::Parse(bad).has_value()) << bad;
  }
}

TEST(FaultOptionsTest, FromEnvironment) {
  unsetenv("KEV_FAULTS_TEST");
  EXPECT_FALSE(FaultOptions::FromEnvironment("KEV_FAULTS_TEST").has_value());
  setenv("KEV_FAULTS_TEST", "seed=3,eintr=0.5", 1);
  auto o = FaultOptions::FromEnvironment("KEV_FAULTS_TEST");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->seed, 3u);
  EXPECT_DOUBLE_EQ((*o)[Fault::kEintr], 0.5);
  unsetenv("KEV_FAULTS_TEST");
}

}  // namespace
}  // namespace kev
