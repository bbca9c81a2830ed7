// KEVENT_SIGNAL through the queue core, on io_uring and on epoll: real signals sent with kill
// and tgkill, NOMASK and not, chaining to the previous handler, the disposition put back after
// the last request, several queues and requests on one signal.
#include "kevent/internal/signal_origin.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "kevent/internal/os_origin_fixture.h"

namespace kev::kevent_internal::test {
namespace {

std::atomic<int> g_plain_calls{0};
std::atomic<int> g_info_calls{0};
std::atomic<int> g_info_signo{0};

void PlainHandler(int) { g_plain_calls.fetch_add(1); }
void InfoHandler(int signo, siginfo_t* info, void*) {
  g_info_signo.store(info != nullptr ? info->si_signo : -signo);
  g_info_calls.fetch_add(1);
}

ukevent SignalRequest(int signo, bool nomask, uint32_t flags = 0, uint32_t user = 0) {
  ukevent uk{};
  uk.type = KEVENT_SIGNAL;
  uk.event = KEVENT_SIGNAL_DELIVERY;
  uk.id.raw_u64 = static_cast<uint64_t>(signo) | (nomask ? KEVENT_SIGNAL_NOMASK : 0);
  uk.req_flags = flags;
  uk.user[0] = user;
  return uk;
}

void TgkillSelf(int signo) {
  ASSERT_EQ(syscall(SYS_tgkill, getpid(), static_cast<pid_t>(syscall(SYS_gettid)), signo), 0);
}

// Sends signo to the process and waits until the handler counted it (one arrival each, even
// where a sanitizer defers handlers and would merge two pending instances).
void SendAndSettle(int signo, bool to_thread = false) {
  const uint64_t before = SignalArrivalsForTesting(signo);
  if (to_thread) {
    TgkillSelf(signo);
  } else {
    ASSERT_EQ(kill(getpid(), signo), 0);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (SignalArrivalsForTesting(signo) == before) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "signal " << signo << " lost";
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

struct sigaction Current(int signo) {
  struct sigaction sa = {};
  sigaction(signo, nullptr, &sa);
  return sa;
}

class SignalOriginTest : public OsOriginTest {
 protected:
  void SetUp() override {
    for (int signo : kTouched) sigaction(signo, nullptr, &saved_[signo]);
    g_plain_calls = 0;
    g_info_calls = 0;
    g_info_signo = 0;
    OsOriginTest::SetUp();
  }
  void TearDown() override {
    primary_.queue.reset();  // removes requests: our handlers go before the saved ones return
    for (int signo : kTouched) sigaction(signo, &saved_[signo], nullptr);
  }
  static void Install(int signo, void (*handler)(int)) {
    struct sigaction sa = {};
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(sigaction(signo, &sa, nullptr), 0);
  }
  static void InstallInfo(int signo) {
    struct sigaction sa = {};
    sa.sa_sigaction = InfoHandler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(sigaction(signo, &sa, nullptr), 0);
  }

  static constexpr int kTouched[] = {SIGUSR1, SIGUSR2, SIGTERM, SIGINT, SIGCHLD};
  struct sigaction saved_[NSIG] = {};
};

TEST_P(SignalOriginTest, NomaskReachesOnlyTheQueue) {
  Install(SIGUSR1, PlainHandler);
  ukevent uk = SignalRequest(SIGUSR1, /*nomask=*/true, 0, 7);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 0u);
  EXPECT_NE(Current(SIGUSR1).sa_handler, PlainHandler) << "the queue's handler is installed";
  SendAndSettle(SIGUSR1);
  std::vector<ukevent> events = WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ret_flags, kDone);
  EXPECT_EQ(events[0].ret_data[0], 1u);
  EXPECT_EQ(events[0].user[0], 7u);
  EXPECT_EQ(events[0].id.raw[0], static_cast<uint32_t>(SIGUSR1));
  EXPECT_EQ(g_plain_calls.load(), 0) << "NOMASK: the previous handler must not run";
  EXPECT_EQ(Ctl(KEVENT_CTL_REMOVE, uk), kDone);
  EXPECT_EQ(Current(SIGUSR1).sa_handler, PlainHandler) << "disposition put back";
  TgkillSelf(SIGUSR1);  // runs the handler on this thread before returning
  EXPECT_EQ(g_plain_calls.load(), 1);
}

TEST_P(SignalOriginTest, WithoutNomaskThePreviousHandlerRunsToo) {
  InstallInfo(SIGUSR2);
  ukevent uk = SignalRequest(SIGUSR2, /*nomask=*/false);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 0u);
  SendAndSettle(SIGUSR2, /*to_thread=*/true);  // tgkill: the handler runs on this thread
  std::vector<ukevent> events = WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ret_data[0], 1u);
  EXPECT_EQ(g_info_calls.load(), 1) << "chained to the SA_SIGINFO handler";
  EXPECT_EQ(g_info_signo.load(), SIGUSR2) << "with its siginfo";
  SendAndSettle(SIGUSR2);  // kill: any thread
  events = WaitEvents(1);
  EXPECT_EQ(events.size(), 1u);
  EXPECT_EQ(g_info_calls.load(), 2);
}

TEST_P(SignalOriginTest, PlainRequestBeatsNomaskForTheChain) {
  // One request without NOMASK is enough for the previous disposition to run.
  Install(SIGUSR1, PlainHandler);
  ukevent masked = SignalRequest(SIGUSR1, true, 0, 1);
  ukevent plain = SignalRequest(SIGUSR1, false, KEVENT_REQ_WAKEUP_ALL, 2);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, masked), 0u);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, plain), 0u);
  SendAndSettle(SIGUSR1);
  EXPECT_EQ(WaitEvents(2).size(), 2u);
  EXPECT_EQ(g_plain_calls.load(), 1);
  ASSERT_EQ(Ctl(KEVENT_CTL_REMOVE, plain), kDone);
  SendAndSettle(SIGUSR1);
  EXPECT_EQ(WaitEvents(1).size(), 1u);
  EXPECT_EQ(g_plain_calls.load(), 1) << "only NOMASK left";
}

TEST_P(SignalOriginTest, ArrivalsCoalesceWithACount) {
  ukevent uk = SignalRequest(SIGUSR1, true);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 0u);
  for (int i = 0; i < 3; ++i) SendAndSettle(SIGUSR1, /*to_thread=*/i % 2 == 0);
  std::vector<ukevent> events = WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ret_data[0], 3u);
  EXPECT_TRUE(Settle().empty()) << "delivered once";
  SendAndSettle(SIGUSR1);
  events = WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ret_data[0], 1u) << "counts since the last report";
}

TEST_P(SignalOriginTest, NomaskKeepsATerminatingSignalFromKilling) {
  // SIGTERM at SIG_DFL would end the test binary: with NOMASK it only reaches the queue (what a
  // reactor's App does for a clean shutdown). Caller-owned request, as a reactor embeds it.
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  ASSERT_EQ(sigaction(SIGTERM, &dfl, nullptr), 0);
  Request req(SignalRequest(SIGTERM, true, KEVENT_REQ_ONESHOT));
  queue().AddRequest(&req);
  ASSERT_EQ(req.uk.ret_flags, 0u);
  SendAndSettle(SIGTERM);
  std::vector<ukevent> events = WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].id.raw[0], static_cast<uint32_t>(SIGTERM));
  EXPECT_EQ(req.queue, nullptr) << "ONESHOT: unregistered at delivery";
  EXPECT_EQ(Current(SIGTERM).sa_handler, SIG_DFL) << "last request gone: SIG_DFL is back";
}

TEST_P(SignalOriginTest, IgnoredDefaultSignalStaysHarmlessWithoutNomask) {
  // SIGCHLD's default action is to ignore: chaining to SIG_DFL does nothing.
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  ASSERT_EQ(sigaction(SIGCHLD, &dfl, nullptr), 0);
  ukevent uk = SignalRequest(SIGCHLD, false);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 0u);
  SendAndSettle(SIGCHLD);
  EXPECT_EQ(WaitEvents(1).size(), 1u);
}

TEST_P(SignalOriginTest, FirstRequestTakesTheArrivalUnlessWakeupAll) {
  ukevent a = SignalRequest(SIGUSR1, true, 0, 1);
  ukevent b = SignalRequest(SIGUSR1, true, 0, 2);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, a), 0u);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, b), 0u);
  SendAndSettle(SIGUSR1);
  std::vector<ukevent> events = WaitEvents(1);
  events.insert(events.end(), Settle().begin(), Settle().end());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].user[0], 1u);

  ukevent c = SignalRequest(SIGUSR1, true, KEVENT_REQ_WAKEUP_ALL, 3);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, c), 0u);
  SendAndSettle(SIGUSR1);
  events = WaitEvents(2);
  std::vector<ukevent> more = Settle();
  events.insert(events.end(), more.begin(), more.end());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].user[0], 1u) << "the first request";
  EXPECT_EQ(events[1].user[0], 3u) << "and the WAKEUP_ALL one; not b";
}

TEST_P(SignalOriginTest, OneshotRequestsTakeTurns) {
  ukevent a = SignalRequest(SIGUSR2, true, KEVENT_REQ_ONESHOT, 1);
  ukevent b = SignalRequest(SIGUSR2, true, KEVENT_REQ_ONESHOT, 2);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, a), 0u);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, b), 0u);
  SendAndSettle(SIGUSR2);
  SendAndSettle(SIGUSR2);
  std::vector<ukevent> events = WaitEvents(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].user[0], 1u);
  EXPECT_EQ(events[0].ret_data[0], 1u);
  EXPECT_EQ(events[1].user[0], 2u);
  EXPECT_EQ(events[1].ret_data[0], 1u);
  EXPECT_EQ(queue().size(), 0u);
  EXPECT_NE(Current(SIGUSR2).sa_flags & SA_SIGINFO, SA_SIGINFO) << "both gone: handler restored";
}

TEST_P(SignalOriginTest, TwoQueuesBothSeeEveryArrival) {
  Install(SIGUSR1, SIG_IGN);
  OsQueue second = MakeQueue();
  ASSERT_NE(second.queue, nullptr);
  ukevent a = SignalRequest(SIGUSR1, true, 0, 1);
  ukevent b = SignalRequest(SIGUSR1, false, 0, 2);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, a), 0u);
  ASSERT_EQ(second.Ctl(KEVENT_CTL_ADD, b), 0u);
  SendAndSettle(SIGUSR1);
  SendAndSettle(SIGUSR1, true);
  auto events = DriveUntil({&primary_, &second}, [](const auto& e) {
    auto count = [](const std::vector<ukevent>& v) {
      uint32_t n = 0;
      for (const ukevent& uk : v) n += uk.ret_data[0];
      return n;
    };
    return count(e[0]) >= 2 && count(e[1]) >= 2;
  });
  ASSERT_FALSE(events[0].empty());
  ASSERT_FALSE(events[1].empty());
  EXPECT_EQ(events[0][0].user[0], 1u);
  EXPECT_EQ(events[1][0].user[0], 2u);

  // The disposition comes back only when the last request over both queues goes.
  ASSERT_EQ(Ctl(KEVENT_CTL_REMOVE, a), kDone);
  EXPECT_NE(Current(SIGUSR1).sa_handler, SIG_IGN);
  second.queue.reset();  // destroying a queue removes its requests
  EXPECT_EQ(Current(SIGUSR1).sa_handler, SIG_IGN);
}

TEST_P(SignalOriginTest, ModifyAndRemoveKeepTheCountsRight) {
  Install(SIGUSR1, PlainHandler);
  ukevent uk = SignalRequest(SIGUSR1, false);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 0u);
  uk.req_flags = KEVENT_REQ_WAKEUP_ALL;
  ASSERT_EQ(Ctl(KEVENT_CTL_MODIFY, uk), kDone);
  SendAndSettle(SIGUSR1);
  EXPECT_EQ(WaitEvents(1).size(), 1u);
  EXPECT_EQ(g_plain_calls.load(), 1);
  ASSERT_EQ(Ctl(KEVENT_CTL_REMOVE, uk), kDone);
  EXPECT_EQ(Current(SIGUSR1).sa_handler, PlainHandler);
  // A fresh request starts counting from its ADD, not from the first one's.
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 0u);
  EXPECT_TRUE(Settle().empty());
}

TEST_P(SignalOriginTest, BadRequestsAreRejected) {
  const int reserved = SIGRTMIN - 1;  // a real-time signal the C library keeps for itself
  struct Case {
    ukevent uk;
    uint32_t err;
  };
  std::vector<Case> cases = {
      {SignalRequest(0, true), EINVAL},        {SignalRequest(NSIG, true), EINVAL},
      {SignalRequest(SIGKILL, true), EINVAL},  {SignalRequest(SIGSTOP, false), EINVAL},
      {SignalRequest(reserved, true), EINVAL},
  };
  ukevent bad_event = SignalRequest(SIGUSR1, true);
  bad_event.event = 2;
  cases.push_back({bad_event, EINVAL});
  ukevent bad_id = SignalRequest(SIGUSR1, false);
  bad_id.id.raw[1] = 1;
  cases.push_back({bad_id, EINVAL});
  for (Case& c : cases) {
    EXPECT_EQ(Ctl(KEVENT_CTL_ADD, c.uk), kBroken) << c.uk.id.raw[0];
    EXPECT_EQ(c.uk.ret_data[0], c.err) << c.uk.id.raw[0];
  }
  EXPECT_EQ(queue().size(), 0u);

  Queue no_poller({});
  ukevent uk = SignalRequest(SIGUSR1, true);
  no_poller.Ctl(KEVENT_CTL_ADD, uk);
  EXPECT_EQ(uk.ret_flags, kBroken);
  EXPECT_EQ(uk.ret_data[0], static_cast<uint32_t>(EOPNOTSUPP));
}

TEST_P(SignalOriginTest, PollerDestroyedBeforeTheQueue) {
  // A Reactor destroys its poller first: the eventfd's poll ends there, the queue after.
  ukevent uk = SignalRequest(SIGUSR1, true);
  ASSERT_EQ(Ctl(KEVENT_CTL_ADD, uk), 0u);
  SendAndSettle(SIGUSR1);
  primary_.poller.reset();
  primary_.queue.reset();
  EXPECT_NE(Current(SIGUSR1).sa_flags & SA_SIGINFO, SA_SIGINFO);
}

INSTANTIATE_TEST_SUITE_P(Backends, SignalOriginTest,
                         ::testing::Values(PollerBackend::kIoUring, PollerBackend::kEpoll),
                         BackendName);

// Without NOMASK a SIG_DFL terminating signal does what SIG_DFL does: the process dies of it.
TEST(SignalOriginDeathTest, DefaultTerminatingActionRunsWithoutNomask) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        struct sigaction dfl = {};
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGUSR1, &dfl, nullptr);
        std::unique_ptr<Poller> poller = Poller::Create(PollerBackend::kEpoll);
        Queue q(QueueOptions{.poller = poller.get()});
        ukevent uk = SignalRequest(SIGUSR1, /*nomask=*/false);
        q.Ctl(KEVENT_CTL_ADD, uk);
        if (uk.ret_flags != 0) _exit(3);
        kill(getpid(), SIGUSR1);
        std::this_thread::sleep_for(std::chrono::seconds(10));
        _exit(4);
      },
      ::testing::KilledBySignal(SIGUSR1), "");
}

}  // namespace
}  // namespace kev::kevent_internal::test
