#include "reactor/fiber.h"

#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "reactor/errors.h"
#include "reactor/future.h"
#include "reactor/task_queue.h"

namespace kev {
namespace {

class FiberTest : public ::testing::Test {
 protected:
  void Drain() {
    while (!queue_.Empty()) queue_.RunReady();
  }
  TaskQueue queue_;
  TaskQueue::Scope scope_{&queue_};
};

TEST_F(FiberTest, RunsTheFunctionOnAFiberScheduledThroughTheQueue) {
  bool ran = false;
  bool in_fiber = false;
  Future<int> f = Async([&] {
    ran = true;
    in_fiber = InFiber();
    return 42;
  });
  EXPECT_FALSE(ran) << "the fiber starts when the queue runs, not inside Async()";
  EXPECT_FALSE(InFiber());
  Drain();
  EXPECT_TRUE(ran);
  EXPECT_TRUE(in_fiber);
  EXPECT_EQ(f.Get(), 42);
}

TEST_F(FiberTest, GetSuspendsOnlyTheFiber) {
  Promise<int> p;
  std::vector<std::string> log;
  Future<int> f = Async([&] {
    log.push_back("fiber waits");
    int v = p.GetFuture().Get();
    log.push_back("fiber resumed");
    return v + 1;
  });
  Drain();
  EXPECT_EQ(log, (std::vector<std::string>{"fiber waits"}));
  EXPECT_FALSE(f.Available());
  // The shard is free to run other work while the fiber waits.
  Future<void> other = MakeReadyFuture().Then([&] { log.push_back("other work"); });
  other.Get();
  p.SetValue(1);
  Drain();
  EXPECT_EQ(log, (std::vector<std::string>{"fiber waits", "other work", "fiber resumed"}));
  EXPECT_EQ(f.Get(), 2);
}

TEST_F(FiberTest, VoidFibersAndReadyGets) {
  int sum = 0;
  Future<void> f = Async([&] {
    sum += MakeReadyFuture(1).Get();  // ready: no suspension
    sum += MakeReadyFuture(2).Then([](int v) { return v * 10; }).Get();
  });
  Drain();
  f.Get();
  EXPECT_EQ(sum, 21);
}

TEST_F(FiberTest, ExceptionsLeaveThroughTheReturnedFuture) {
  Future<int> f = Async([]() -> int { throw std::runtime_error("fiber failed"); });
  Drain();
  ASSERT_TRUE(f.Failed());
  EXPECT_THROW(f.Get(), std::runtime_error);
}

TEST_F(FiberTest, ExceptionsPropagateAcrossGet) {
  Promise<int> caught_promise;
  Promise<int> uncaught_promise;
  Future<std::string> caught = Async([&]() -> std::string {
    try {
      caught_promise.GetFuture().Get();
    } catch (const std::invalid_argument& e) {
      return std::string("caught ") + e.what();
    }
    return "nothing";
  });
  Future<int> uncaught = Async([&] { return uncaught_promise.GetFuture().Get() + 1; });
  Drain();
  caught_promise.SetException(std::invalid_argument("bad"));
  uncaught_promise.SetException(std::out_of_range("range"));
  Drain();
  EXPECT_EQ(caught.Get(), "caught bad");
  EXPECT_THROW(uncaught.Get(), std::out_of_range);
}

TEST_F(FiberTest, BrokenPromiseWakesTheFiber) {
  auto p = std::make_unique<Promise<int>>();
  Future<int> f = Async([&] { return p->GetFuture().Get(); });
  Drain();
  p.reset();
  Drain();
  EXPECT_THROW(f.Get(), BrokenPromise);
}

TEST_F(FiberTest, FunctionsReturningFuturesAreWaitedFor) {
  Promise<int> p;
  Future<int> f = Async([&] { return p.GetFuture().Then([](int v) { return v * 3; }); });
  Drain();
  EXPECT_FALSE(f.Available());
  p.SetValue(5);
  Drain();
  EXPECT_EQ(f.Get(), 15);
}

Future<int> CoroutineAddingOne(Future<int> in) { co_return (co_await std::move(in)) + 1; }

TEST_F(FiberTest, FibersWaitForCoroutinesAndNestedFibers) {
  Promise<int> p;
  Future<int> f = Async([&] {
    int a = CoroutineAddingOne(p.GetFuture()).Get();
    int b = Async([a] { return a * 2; }).Get();  // a fiber waiting for another fiber
    EXPECT_TRUE(InFiber());
    return a + b;
  });
  Drain();
  p.SetValue(1);
  Drain();
  EXPECT_EQ(f.Get(), 6);
}

TEST_F(FiberTest, ManySuspensionsOnOneFiber) {
  constexpr int kRounds = 10'000;
  Promise<int>* current = nullptr;
  Future<int> f = Async([&] {
    int sum = 0;
    for (int i = 0; i < kRounds; ++i) {
      Promise<int> p;
      current = &p;
      sum += p.GetFuture().Get();
    }
    current = nullptr;
    return sum;
  });
  int rounds = 0;
  Drain();
  while (current != nullptr) {
    current->SetValue(1);
    ++rounds;
    Drain();
  }
  EXPECT_EQ(rounds, kRounds);
  EXPECT_EQ(f.Get(), kRounds);
}

// TSan models every fiber as a thread with its own vector clock, so N live fibers cost O(N^2)
// there (measured: 2,500 fibers 3.5 s, 5,000 fibers 12.5 s); it checks races just as well with
// fewer.
#if defined(__SANITIZE_THREAD__)
constexpr int kManyFibers = 1'000;
#else
constexpr int kManyFibers = 5'000;
#endif

TEST_F(FiberTest, FiveThousandFibersWaitingAtOnce) {
  constexpr int kFibers = kManyFibers;
  std::vector<Promise<int>> promises(kFibers);
  std::vector<Future<int>> results;
  results.reserve(kFibers);
  int started = 0;
  for (int i = 0; i < kFibers; ++i) {
    results.push_back(Async([&, i] {
      ++started;
      return promises[i].GetFuture().Get() + i;
    }));
  }
  Drain();
  EXPECT_EQ(started, kFibers) << "all fibers are alive and suspended together";
  for (int i = 0; i < kFibers; ++i) promises[i].SetValue(i);
  Drain();
  long sum = 0;
  for (auto& r : results) {
    ASSERT_TRUE(r.Available());
    sum += r.Get();
  }
  EXPECT_EQ(sum, 2L * kFibers * (kFibers - 1) / 2);
}

TEST_F(FiberTest, LargeStacksAreUsable) {
  FiberOptions options;
  options.stack_size = 4 * 1024 * 1024;
  Future<size_t> f = Async(options, [] {
    volatile char big[2 * 1024 * 1024];  // Would not fit a default stack.
    std::memset(const_cast<char*>(big), 1, sizeof(big));
    size_t sum = 0;
    for (size_t i = 0; i < sizeof(big); i += 4096) sum += big[i];
    return sum;
  });
  Drain();
  EXPECT_EQ(f.Get(), 2u * 1024 * 1024 / 4096);
}

TEST_F(FiberTest, StackBoundsDescribeTheGuardPage) {
  EXPECT_EQ(internal::CurrentFiberStack().end, nullptr);
  internal::FiberStack stack;
  const char* local_address = nullptr;
  Future<void> f = Async([&] {
    char local = 0;
    local_address = &local;
    stack = internal::CurrentFiberStack();
  });
  Drain();
  f.Get();
  ASSERT_NE(stack.end, nullptr);
  EXPECT_EQ(stack.usable_begin - stack.guard_begin, sysconf(_SC_PAGESIZE));
  EXPECT_GE(stack.end - stack.usable_begin, static_cast<long>(FiberOptions::kDefaultStackSize));
  EXPECT_GT(local_address, stack.usable_begin);
  EXPECT_LT(local_address, stack.end);
}

// Stack overflow: recursion until the guard page. A SIGSEGV handler on an alternate stack
// checks that the faulting address is the guard page of the running fiber, i.e. the overflow
// was caught before it touched anything else.
internal::FiberStack overflow_stack;

void OnSegv(int, siginfo_t* info, void*) {
  const char* addr = static_cast<const char*>(info->si_addr);
  const bool on_guard = addr >= overflow_stack.guard_begin && addr < overflow_stack.usable_begin;
  const char* msg = on_guard ? "SIGSEGV on the fiber's guard page\n" : "SIGSEGV elsewhere\n";
  (void)!write(STDERR_FILENO, msg, std::strlen(msg));
  _exit(on_guard ? 3 : 4);
}

int Recurse(int depth) {
  volatile char frame[512];
  frame[0] = static_cast<char>(depth);
  if (depth < 0) return 0;  // Never true; keeps the recursion from being "infinite" UB.
  return Recurse(depth + 1) + frame[0];
}

void OverflowAFiberStack() {
  static char alt_stack[256 * 1024];
  stack_t ss{};
  ss.ss_sp = alt_stack;
  ss.ss_size = sizeof(alt_stack);
  sigaltstack(&ss, nullptr);
  struct sigaction sa {};
  sa.sa_sigaction = OnSegv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigaction(SIGSEGV, &sa, nullptr);

  TaskQueue queue;
  TaskQueue::Scope scope(&queue);
  FiberOptions options;
  options.stack_size = 64 * 1024;
  Future<int> f = Async(options, [] {
    overflow_stack = internal::CurrentFiberStack();
    return Recurse(1);
  });
  while (!queue.Empty()) queue.RunReady();
}

TEST(FiberDeathTest, StackOverflowFaultsOnTheGuardPage) {
  EXPECT_EXIT(OverflowAFiberStack(), ::testing::ExitedWithCode(3),
              "SIGSEGV on the fiber's guard page");
}

TEST(FiberDeathTest, AsyncWithoutAQueueAborts) {
  EXPECT_DEATH(
      {
        Future<int> f = Async([] { return 1; });
      },
      "kev::Async\\(\\) needs a current TaskQueue");
}

}  // namespace
}  // namespace kev
