// Cost per step of kev's futures and coroutines (issue 7), reported beside a plain
// std::function call measured in the same binary and run (no target: a reference point).
// One item is one step; each iteration runs kSteps steps.
//  - BM_StdFunctionCall: calling a std::function<int(int)>;
//  - BM_ThenReady: .Then() on an available future (inline, no allocation);
//  - BM_ThenPending: a chain of .Then() attached to a pending future, then resolved and run
//    through the TaskQueue (one allocation and one scheduled task per step);
//  - BM_CoroutineReadyAwait: co_await of an available future (no suspension);
//  - BM_CoroutineResume: a coroutine suspended on a pending future, resumed through the
//    TaskQueue when the driver resolves it (one promise state and one task per step).
//
//   bazel run -c opt //tests/perf:future_bench -- --benchmark_repetitions=5
//       --benchmark_enable_random_interleaving=true
#include <functional>
#include <utility>

#include "benchmark/benchmark.h"
#include "reactor/future.h"
#include "reactor/task_queue.h"
#include "tests/perf/micro_ratio.h"

namespace {

constexpr int kSteps = 1000;

void Drain(kev::TaskQueue& queue) {
  while (!queue.Empty()) queue.RunReady();
}

void BM_StdFunctionCall(benchmark::State& state) {
  std::function<int(int)> fn = [](int x) { return x + 1; };
  benchmark::DoNotOptimize(fn);
  for (auto _ : state) {
    int x = 0;
    for (int i = 0; i < kSteps; ++i) {
      x = fn(x);
      benchmark::DoNotOptimize(x);
    }
  }
  state.SetItemsProcessed(state.iterations() * kSteps);
}
BENCHMARK(BM_StdFunctionCall);

void BM_ThenReady(benchmark::State& state) {
  kev::TaskQueue queue;
  kev::TaskQueue::Scope scope(&queue);
  for (auto _ : state) {
    kev::Future<int> f = kev::MakeReadyFuture(0);
    for (int i = 0; i < kSteps; ++i) f = std::move(f).Then([](int x) { return x + 1; });
    benchmark::DoNotOptimize(f.Get());
  }
  state.SetItemsProcessed(state.iterations() * kSteps);
}
BENCHMARK(BM_ThenReady);

void BM_ThenPending(benchmark::State& state) {
  kev::TaskQueue queue;
  kev::TaskQueue::Scope scope(&queue);
  for (auto _ : state) {
    kev::Promise<int> p;
    kev::Future<int> f = p.GetFuture();
    for (int i = 0; i < kSteps; ++i) f = std::move(f).Then([](int x) { return x + 1; });
    p.SetValue(0);
    Drain(queue);
    benchmark::DoNotOptimize(f.Get());
  }
  state.SetItemsProcessed(state.iterations() * kSteps);
}
BENCHMARK(BM_ThenPending);

kev::Future<int> AwaitReady(int steps) {
  int sum = 0;
  for (int i = 0; i < steps; ++i) sum += co_await kev::MakeReadyFuture(1);
  co_return sum;
}

void BM_CoroutineReadyAwait(benchmark::State& state) {
  kev::TaskQueue queue;
  kev::TaskQueue::Scope scope(&queue);
  for (auto _ : state) {
    kev::Future<int> f = AwaitReady(kSteps);
    Drain(queue);
    benchmark::DoNotOptimize(f.Get());
  }
  state.SetItemsProcessed(state.iterations() * kSteps);
}
BENCHMARK(BM_CoroutineReadyAwait);

struct Feed {
  kev::Promise<int> promise;
};

kev::Future<int> AwaitFeed(Feed* feed, int steps) {
  int sum = 0;
  for (int i = 0; i < steps; ++i) sum += co_await feed->promise.GetFuture();
  co_return sum;
}

void BM_CoroutineResume(benchmark::State& state) {
  kev::TaskQueue queue;
  kev::TaskQueue::Scope scope(&queue);
  for (auto _ : state) {
    Feed feed;
    kev::Future<int> f = AwaitFeed(&feed, kSteps);  // suspended on the first promise
    for (int i = 0; i < kSteps; ++i) {
      kev::Promise<int> resolved = std::exchange(feed.promise, kev::Promise<int>());
      resolved.SetValue(1);
      Drain(queue);  // resumes the coroutine, which awaits the fresh promise
    }
    benchmark::DoNotOptimize(f.Get());
  }
  state.SetItemsProcessed(state.iterations() * kSteps);
}
BENCHMARK(BM_CoroutineResume);

}  // namespace

int main(int argc, char** argv) {
  return kev::perf::RunWithRatios(
      argc, argv,
      {{"then_ready_vs_std_function", "BM_ThenReady", "BM_StdFunctionCall", std::nullopt},
       {"then_pending_vs_std_function", "BM_ThenPending", "BM_StdFunctionCall", std::nullopt},
       {"co_await_ready_vs_std_function", "BM_CoroutineReadyAwait", "BM_StdFunctionCall",
        std::nullopt},
       {"coroutine_resume_vs_std_function", "BM_CoroutineResume", "BM_StdFunctionCall",
        std::nullopt}});
}
