// The first kev program of docs/tutorial.md: a timer, a coroutine, a cross-shard call and a
// fiber, under kev::App (flags --smp, --cpuset, --backend, and --ticks below).
#include <chrono>
#include <cstdio>
#include <functional>

#include "absl/flags/flag.h"
#include "reactor/app.h"
#include "reactor/fiber.h"
#include "reactor/future.h"
#include "reactor/smp.h"
#include "reactor/timer.h"

ABSL_FLAG(int, ticks, 3, "timer ticks to wait for before the rest of the tour");

using namespace std::chrono_literals;

// A coroutine: a function returning kev::Future<T> that may co_await. This one asks every
// shard for a number and adds the answers up, in shard order.
kev::Future<int> SumOverShards() {
  int sum = co_await kev::MapReduce([] { return static_cast<int>(kev::this_shard_id()) + 1; }, 0,
                                    std::plus<int>());
  co_return sum;
}

kev::Future<int> Tour() {
  // 1. A timer: the callback runs inside the reactor loop every 10 ms until cancelled.
  const int wanted = absl::GetFlag(FLAGS_ticks);
  int ticks = 0;
  kev::Promise<void> enough;
  kev::Timer timer([&] {
    std::printf("tick %d\n", ++ticks);
    if (ticks == wanted) enough.SetValue();
  });
  timer.ArmPeriodic(10ms);
  if (wanted > 0) co_await enough.GetFuture();
  timer.Cancel();

  // 2. A cross-shard call: the lambda runs on the last shard, its result comes back here.
  const unsigned last = kev::smp_count() - 1;
  unsigned answered_by = co_await kev::SubmitTo(last, [] { return kev::this_shard_id(); });
  std::printf("shard %u answered from shard %u\n", kev::this_shard_id(), answered_by);

  // 3. A coroutine calling coroutines.
  std::printf("sum over %u shards: %d\n", kev::smp_count(), co_await SumOverShards());

  // 4. A fiber: ordinary blocking-style code; Get() suspends only this fiber.
  int from_fiber = co_await kev::Async([] {
    kev::Sleep(5ms).Get();
    return 6 * 7;
  });
  std::printf("fiber says %d\n", from_fiber);
  co_return 0;
}

int main(int argc, char** argv) { return kev::App::Run(argc, argv, Tour); }
