#include "reactor/timer.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "reactor/abort_source.h"
#include "reactor/future.h"
#include "reactor/reactor.h"

namespace kev {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

class TimerTest : public ::testing::TestWithParam<PollerBackend> {
 protected:
  ReactorOptions Options() const {
    ReactorOptions o;
    o.backend = GetParam();
    return o;
  }
};

TEST_P(TimerTest, SleepsFireInDeadlineOrder) {
  std::vector<int> order = RunReactor(
      []() -> Future<std::vector<int>> {
        std::vector<int> order;
        std::vector<Future<void>> all;
        for (int ms : {30, 10, 20, 0}) {
          all.push_back(Sleep(milliseconds(ms)).Then([&order, ms] { order.push_back(ms); }));
        }
        for (auto& f : all) co_await std::move(f);
        co_return order;
      },
      Options());
  EXPECT_EQ(order, (std::vector<int>{0, 10, 20, 30}));
}

TEST_P(TimerTest, SleepNeverFiresEarly) {
  RunReactor(
      []() -> Future<void> {
        for (int ms : {1, 5, 15}) {
          const auto start = Clock::now();
          co_await Sleep(milliseconds(ms));
          EXPECT_GE(Clock::now() - start, milliseconds(ms));
        }
      },
      Options());
}

TEST_P(TimerTest, EqualDeadlinesFireInArmingOrder) {
  std::vector<int> order = RunReactor(
      []() -> Future<std::vector<int>> {
        std::vector<int> order;
        std::vector<Future<void>> all;
        for (int i = 0; i < 100; ++i) {
          all.push_back(Sleep(milliseconds(0)).Then([&order, i] { order.push_back(i); }));
        }
        for (auto& f : all) co_await std::move(f);
        co_return order;
      },
      Options());
  ASSERT_EQ(order.size(), 100u);
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
}

TEST_P(TimerTest, AbortWakesSleepersWithTheReasonAndCancelsTheirTimers) {
  RunReactor(
      []() -> Future<void> {
        AbortSource abort;
        Future<void> long_sleep = Sleep(std::chrono::hours(1), abort);
        Future<void> other = Sleep(std::chrono::hours(2), abort);
        EXPECT_EQ(Reactor::Current().queue().size(), 2u);
        co_await Sleep(milliseconds(1));
        abort.RequestAbort();
        EXPECT_EQ(Reactor::Current().queue().size(), 0u);
        EXPECT_TRUE(long_sleep.Failed());
        EXPECT_THROW(co_await std::move(long_sleep), AbortRequested);
        EXPECT_THROW(co_await std::move(other), AbortRequested);
        // Already aborted: fails at once, arms nothing.
        Future<void> late = Sleep(milliseconds(1), abort);
        EXPECT_TRUE(late.Failed());
        EXPECT_THROW(late.Get(), AbortRequested);
        // A custom reason travels through.
        AbortSource custom;
        Future<void> s = Sleep(std::chrono::hours(1), custom);
        custom.RequestAbort(std::make_exception_ptr(std::runtime_error("shutdown")));
        EXPECT_THROW(co_await std::move(s), std::runtime_error);
      },
      Options());
}

TEST_P(TimerTest, SleepThatFiredIgnoresALaterAbort) {
  RunReactor(
      []() -> Future<void> {
        AbortSource abort;
        co_await Sleep(milliseconds(1), abort);
        abort.RequestAbort();  // nothing subscribed any more
      },
      Options());
}

TEST_P(TimerTest, WithTimeoutFailsWhenTheFutureIsLate) {
  RunReactor(
      []() -> Future<void> {
        Promise<int> never;
        EXPECT_THROW(co_await WithTimeout(milliseconds(5), never.GetFuture()), TimedOut);
        EXPECT_EQ(Reactor::Current().queue().size(), 0u);
        // In time: the value, and the timer is removed.
        Promise<int> soon;
        Future<int> f = WithTimeout(std::chrono::hours(1), soon.GetFuture());
        EXPECT_EQ(Reactor::Current().queue().size(), 1u);
        Future<void> set = Sleep(milliseconds(1)).Then([&] { soon.SetValue(9); });
        EXPECT_EQ(co_await std::move(f), 9);
        EXPECT_EQ(Reactor::Current().queue().size(), 0u);
        co_await std::move(set);
        // Errors pass through; available futures are returned as is.
        EXPECT_THROW(
            co_await WithTimeout(milliseconds(5), MakeExceptionFuture<int>(std::logic_error("x"))),
            std::logic_error);
        EXPECT_EQ(co_await WithTimeout(milliseconds(5), MakeReadyFuture(3)), 3);
        // The input resolving after the timeout is discarded without harm.
        Promise<void> late;
        Future<void> timed = WithTimeout(milliseconds(1), late.GetFuture());
        co_await Sleep(milliseconds(3));
        late.SetValue();
        EXPECT_THROW(co_await std::move(timed), TimedOut);
      },
      Options());
}

TEST_P(TimerTest, PeriodicTimerTicksUntilCancelled) {
  int ticks = RunReactor(
      []() -> Future<int> {
        int ticks = 0;
        Promise<void> done;
        Timer timer([&] {
          ++ticks;
          if (ticks == 5) {
            done.SetValue();
          }
        });
        timer.ArmPeriodic(milliseconds(2));
        EXPECT_TRUE(timer.Armed());
        co_await done.GetFuture();
        timer.Cancel();
        EXPECT_FALSE(timer.Armed());
        EXPECT_EQ(Reactor::Current().queue().size(), 0u);
        co_await Sleep(milliseconds(10));
        co_return ticks;  // no tick after Cancel
      },
      Options());
  EXPECT_EQ(ticks, 5);
}

TEST_P(TimerTest, OneShotTimerCanReArmItself) {
  int fired = RunReactor(
      []() -> Future<int> {
        int fired = 0;
        Promise<void> done;
        Timer* self = nullptr;
        Timer timer([&] {
          EXPECT_EQ(self->expirations(), 1u);
          if (++fired < 3) {
            self->Arm(milliseconds(1));
          } else {
            done.SetValue();
          }
        });
        self = &timer;
        timer.Arm(milliseconds(1));
        co_await done.GetFuture();
        EXPECT_FALSE(timer.Armed());
        co_return fired;
      },
      Options());
  EXPECT_EQ(fired, 3);
  EXPECT_THROW(RunReactor(
                   [] {
                     Timer t([] {});
                     t.ArmPeriodic(milliseconds(0));
                   },
                   Options()),
               std::invalid_argument);
}

// 100,000 concurrent sleeps with random durations: every one fires, none early, and sleeps of
// equal duration fire in the order they were armed.
TEST_P(TimerTest, HundredThousandTimers) {
  constexpr int kN = 100'000;
  std::mt19937 rng(42);
  std::vector<int> duration_ms(kN);
  for (int& d : duration_ms) d = static_cast<int>(rng() % 50);
  std::vector<int> fired_order;
  fired_order.reserve(kN);
  int early = 0;
  RunReactor(
      [&]() -> Future<void> {
        std::vector<Future<void>> all;
        all.reserve(kN);
        for (int i = 0; i < kN; ++i) {
          const auto start = Clock::now();
          all.push_back(Sleep(milliseconds(duration_ms[i])).Then([&, i, start] {
            if (Clock::now() - start < milliseconds(duration_ms[i])) ++early;
            fired_order.push_back(i);
          }));
        }
        EXPECT_EQ(Reactor::Current().queue().size(), static_cast<size_t>(kN));
        for (auto& f : all) co_await std::move(f);
        EXPECT_EQ(Reactor::Current().queue().size(), 0u);
      },
      Options());
  ASSERT_EQ(fired_order.size(), static_cast<size_t>(kN));
  EXPECT_EQ(early, 0);
  std::vector<int> last_of_duration(50, -1);
  int out_of_order = 0;
  for (int i : fired_order) {
    int& last = last_of_duration[duration_ms[i]];
    if (i < last) ++out_of_order;
    last = i;
  }
  EXPECT_EQ(out_of_order, 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, TimerTest,
                         ::testing::Values(PollerBackend::kIoUring, PollerBackend::kEpoll),
                         [](const auto& info) {
                           return info.param == PollerBackend::kIoUring ? std::string("io_uring")
                                                                        : std::string("epoll");
                         });

}  // namespace
}  // namespace kev
