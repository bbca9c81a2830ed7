#include "reactor/reactor.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "reactor/abort_source.h"
#include "reactor/combinators.h"
#include "reactor/fiber.h"
#include "reactor/future.h"
#include "reactor/interest.h"
#include "reactor/timer.h"

namespace kev {
namespace {

using std::chrono::milliseconds;

ukevent Unotify(uint32_t id, uint32_t flags = 0) {
  ukevent uk{};
  uk.type = KEVENT_UNOTIFY;
  uk.event = 1;
  uk.id.raw[0] = id;
  uk.req_flags = flags;
  return uk;
}

class ReactorTest : public ::testing::TestWithParam<PollerBackend> {
 protected:
  ReactorOptions Options() const {
    ReactorOptions o;
    o.backend = GetParam();
    return o;
  }
};

TEST_P(ReactorTest, RunsOnTheRequestedBackendAndIsCurrent) {
  PollerBackend seen = PollerBackend::kDefault;
  bool current = false;
  RunReactor(
      [&] {
        seen = Reactor::Current().backend();
        current = Reactor::CurrentOrNull() != nullptr && TaskQueue::Current() != nullptr;
      },
      Options());
  EXPECT_EQ(seen, GetParam());
  EXPECT_TRUE(current);
  EXPECT_EQ(Reactor::CurrentOrNull(), nullptr);
}

TEST_P(ReactorTest, ReturnsAPlainValueAndAReadyFuture) {
  EXPECT_EQ(RunReactor([] { return 7; }, Options()), 7);
  EXPECT_EQ(RunReactor([] { return MakeReadyFuture<std::string>("x"); }, Options()), "x");
}

TEST_P(ReactorTest, RunsTheLoopUntilACoroutineFinishes) {
  int n = RunReactor(
      []() -> Future<int> {
        int sum = 0;
        for (int i = 0; i < 3; ++i) {
          co_await Yield();
          co_await Sleep(milliseconds(1));
          sum += i;
        }
        co_return sum;
      },
      Options());
  EXPECT_EQ(n, 3);
}

TEST_P(ReactorTest, RethrowsTheFailure) {
  EXPECT_THROW(RunReactor(
                   []() -> Future<int> {
                     co_await Sleep(milliseconds(1));
                     throw std::runtime_error("boom");
                   },
                   Options()),
               std::runtime_error);
  EXPECT_THROW(RunReactor([]() -> int { throw std::logic_error("sync"); }, Options()),
               std::logic_error);
}

TEST_P(ReactorTest, FibersRunInsideTheLoop) {
  int v = RunReactor(
      [] {
        return Async([] {
          Sleep(milliseconds(1)).Get();  // suspends the fiber, the loop keeps running
          return 41 + 1;
        });
      },
      Options());
  EXPECT_EQ(v, 42);
}

TEST_P(ReactorTest, BlocksWhenIdleAndCountsIt) {
  ReactorMetrics m = RunReactor(
      []() -> Future<ReactorMetrics> {
        co_await Sleep(milliseconds(20));
        co_return Reactor::Current().metrics();
      },
      Options());
  EXPECT_GE(m.sleeps, 1u);
  EXPECT_GT(m.idle_time.count(), 0);
  EXPECT_GE(m.events_delivered, 1u);
  EXPECT_GE(m.polls, m.sleeps);
  EXPECT_GE(m.turns, 1u);
}

// Idle polling: a shard with nothing to do polls without blocking for idle_poll, then sleeps;
// events that arrive meanwhile (a timer, a cross-thread Stop) are still taken, and the polled
// time is idle time.
TEST_P(ReactorTest, IdlePollingPollsThenSleeps) {
  ReactorOptions o = Options();
  o.idle_poll = milliseconds(5);
  ReactorMetrics m = RunReactor(
      []() -> Future<ReactorMetrics> {
        co_await Sleep(milliseconds(2));   // shorter than idle_poll: taken while polling
        co_await Sleep(milliseconds(30));  // longer: polls 5 ms, then sleeps
        co_return Reactor::Current().metrics();
      },
      o);
  EXPECT_GE(m.sleeps, 1u);
  // Polling turns: each is a poll that may not block, far more of them than sleeps.
  EXPECT_GT(m.polls, m.sleeps + 10);
  EXPECT_GE(m.idle_time, milliseconds(20));  // both the polled and the slept time
}

TEST_P(ReactorTest, IdlePollingStillTakesAStopFromAnotherThread) {
  ReactorOptions o = Options();
  o.idle_poll = std::chrono::hours(1);  // never sleeps: Stop must be seen while polling
  Reactor reactor(o);
  std::thread stopper([&] {
    std::this_thread::sleep_for(milliseconds(20));
    reactor.Stop();
  });
  reactor.Run();
  stopper.join();
  EXPECT_EQ(reactor.metrics().sleeps, 0u);
  EXPECT_GT(reactor.metrics().polls, 10u);
}

TEST_P(ReactorTest, StopFromAnotherThreadEndsABlockedRun) {
  Reactor reactor(Options());
  std::thread stopper([&] {
    std::this_thread::sleep_for(milliseconds(20));
    reactor.Stop();
  });
  reactor.Run();  // nothing to do: blocks in the poller until Stop() wakes it
  stopper.join();
  EXPECT_GE(reactor.metrics().sleeps, 1u);
}

TEST_P(ReactorTest, StopBeforeRunReturnsAtOnceAndRunCanBeResumed) {
  Reactor reactor(Options());
  reactor.Stop();
  reactor.Run();
  bool ran = false;
  Future<void> f = Sleep(milliseconds(1)).Then([&] {
    ran = true;
    Reactor::Current().Stop();
  });
  reactor.Run();
  EXPECT_TRUE(ran);
  EXPECT_GE(reactor.metrics().tasks_run, 1u);  // counted when the turn's RunReady returns
}

// A persistent UNOTIFY interest counting its deliveries.
class Counter final : public KeventHandler {
 public:
  explicit Counter(const ukevent& uk) : KeventHandler(uk) {}
  void OnEvent(const ukevent& e) noexcept override {
    ++count;
    last = e;
  }
  int count = 0;
  ukevent last{};
};

TEST_P(ReactorTest, HandlersGetEveryDeliveryWithTheirOwnUserData) {
  RunReactor(
      [&]() -> Future<void> {
        ukevent uk = Unotify(5);
        int user_object = 0;
        uk.ptr = &user_object;
        Counter counter(uk);
        EXPECT_FALSE(counter.Register().has_value());
        EXPECT_TRUE(counter.Registered());
        for (uint32_t i = 1; i <= 3; ++i) {
          ukevent key = counter.QueueKey();
          key.ret_data[0] = i;
          Reactor::Current().queue().Ctl(KEVENT_CTL_READY, key);
          EXPECT_EQ(key.ret_flags, 0u);
          co_await Yield();
          co_await Yield();
        }
        EXPECT_EQ(counter.count, 3);
        EXPECT_EQ(counter.last.ret_data[0], 3u);
        EXPECT_EQ(counter.last.ptr, &user_object);
        EXPECT_EQ(counter.last.ret_flags, static_cast<uint32_t>(KEVENT_RET_DONE));
        counter.Unregister();
        EXPECT_EQ(Reactor::Current().queue().size(), 0u);
      },
      Options());
}

TEST_P(ReactorTest, InterestResumesWithTheDeliveredEvent) {
  RunReactor(
      [&]() -> Future<void> {
        ukevent uk = Unotify(9, KEVENT_REQ_ONESHOT);
        uk.user[0] = 77;
        // Find the interest's queue key from the outside: fire it from a timer callback.
        Interest* waiting = nullptr;
        Timer fire([&] {
          ukevent key = waiting->QueueKey();
          key.ret_data[1] = 123;
          Reactor::Current().queue().Ctl(KEVENT_CTL_READY, key);
        });
        fire.Arm(milliseconds(1));
        Interest interest(uk);
        waiting = &interest;
        ukevent ev = co_await interest;
        EXPECT_EQ(ev.ret_data[1], 123u);
        EXPECT_EQ(ev.user[0], 77u);
        EXPECT_FALSE(interest.Registered());
        EXPECT_EQ(Reactor::Current().queue().size(), 0u);
      },
      Options());
}

TEST_P(ReactorTest, InterestCompletedAtAddDoesNotSuspend) {
  RunReactor(
      []() -> Future<void> {
        ukevent uk = Unotify(1, KEVENT_REQ_READY);  // ready at ADD: completes at once
        uk.ret_data[0] = 5;
        ukevent ev = co_await Interest(uk);
        EXPECT_EQ(ev.ret_data[0], 5u);
        EXPECT_EQ(Reactor::Current().queue().size(), 0u);  // persistent, but taken and removed
        // ALWAYS_QUEUE makes it go through the loop instead.
        ev = co_await WaitFor(Unotify(2, KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE));
        EXPECT_EQ(ev.ret_flags, static_cast<uint32_t>(KEVENT_RET_DONE));
      },
      Options());
}

TEST_P(ReactorTest, RejectedInterestThrowsSystemError) {
  RunReactor(
      []() -> Future<void> {
        ukevent bad = Unotify(1);
        bad.req_flags = 0x4000;  // not a request flag
        try {
          co_await Interest(bad);
          ADD_FAILURE() << "no exception";
        } catch (const std::system_error& e) {
          EXPECT_EQ(e.code().value(), EINVAL);
        }
        ukevent naio{};
        naio.type = KEVENT_NAIO;
        EXPECT_THROW(co_await WaitFor(naio), std::system_error);
      },
      Options());
}

TEST_P(ReactorTest, AbortedInterestThrowsAndUnregisters) {
  RunReactor(
      []() -> Future<void> {
        AbortSource abort;
        Timer t([&] { abort.RequestAbort(); });
        t.Arm(milliseconds(2));
        EXPECT_THROW(co_await Interest(Unotify(3), abort), AbortRequested);
        EXPECT_EQ(Reactor::Current().queue().size(), 0u);
        // Already aborted: throws without registering.
        EXPECT_THROW(co_await WaitFor(Unotify(4), abort), AbortRequested);
        EXPECT_EQ(Reactor::Current().queue().size(), 0u);
      },
      Options());
}

TEST_P(ReactorTest, ManyInterestsAwaitedConcurrentlyAllCancelled) {
  constexpr int kN = 2000;
  int aborted = RunReactor(
      [&]() -> Future<int> {
        AbortSource abort;
        std::vector<Future<ukevent>> waits;
        for (int i = 0; i < kN; ++i) {
          waits.push_back(WaitFor(Unotify(static_cast<uint32_t>(i), KEVENT_REQ_ONESHOT), abort));
        }
        EXPECT_EQ(Reactor::Current().queue().size(), static_cast<size_t>(kN));
        co_await Sleep(milliseconds(1));
        for (Future<ukevent>& w : waits) EXPECT_FALSE(w.Available());
        abort.RequestAbort();
        EXPECT_EQ(Reactor::Current().queue().size(), 0u);
        int n = 0;
        for (Future<ukevent>& w : waits) {
          try {
            co_await std::move(w);
          } catch (const AbortRequested&) {
            ++n;
          }
        }
        co_return n;
      },
      Options());
  EXPECT_EQ(aborted, kN);
}

TEST_P(ReactorTest, InterestOnAPipeResumesWhenDataArrives) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
  RunReactor(
      [&]() -> Future<void> {
        ukevent uk{};
        uk.type = KEVENT_PIPE;
        uk.event = KEVENT_SOCKET_RECV;
        uk.id.raw[0] = static_cast<uint32_t>(p[0]);
        uk.req_flags = KEVENT_REQ_ONESHOT;
        Timer writer([&] { EXPECT_EQ(write(p[1], "x", 1), 1); });
        writer.Arm(milliseconds(2));
        ukevent ev = co_await Interest(uk);  // the loop blocks in the poller meanwhile
        EXPECT_EQ(ev.ret_flags & KEVENT_RET_BROKEN, 0u);
        EXPECT_NE(ev.ret_data[0] & KEVENT_SOCKET_RECV, 0u);
        char c = 0;
        EXPECT_EQ(read(p[0], &c, 1), 1);
        // Readable at ADD: completes at once, no suspension.
        EXPECT_EQ(write(p[1], "y", 1), 1);
        ev = co_await Interest(uk);
        EXPECT_NE(ev.ret_data[0] & KEVENT_SOCKET_RECV, 0u);
        EXPECT_EQ(Reactor::Current().queue().size(), 0u);
        // A bad fd is rejected.
        ukevent bad = uk;
        bad.id.raw[0] = 100000;
        EXPECT_THROW(co_await WaitFor(bad), std::system_error);
      },
      Options());
  close(p[0]);
  close(p[1]);
}

INSTANTIATE_TEST_SUITE_P(Backends, ReactorTest,
                         ::testing::Values(PollerBackend::kIoUring, PollerBackend::kEpoll),
                         [](const auto& info) {
                           return info.param == PollerBackend::kIoUring ? std::string("io_uring")
                                                                        : std::string("epoll");
                         });

}  // namespace
}  // namespace kev
