// Messages per second through kev::SpscRing versus boost::lockfree::spsc_queue of the same
// capacity, between two threads pinned to different CPUs, single-item and batched, printed side
// by side; micro_ratio.h prints the kev/boost ratios at the end (bench.py: micro_spsc_ring).
//
//   bazel run -c opt //tests/perf:spsc_ring_bench -- --benchmark_min_time=0.2
//
// Each benchmark iteration moves kBatch items (one PushBatch, or kBatch single pushes); the
// consumer pops (batched or single, like the producer) and sums what it gets, and the run ends
// with a sentinel. Item values are non-zero pointers-sized integers, like kev's message
// pointers. On a shared 2-core machine numbers are noisy: compare ratios within one run.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <thread>
#include <vector>

#include <boost/lockfree/spsc_queue.hpp>

#include "benchmark/benchmark.h"
#include "reactor/spsc_ring.h"
#include "reactor/topology.h"
#include "tests/perf/micro_ratio.h"

namespace {

// Same capacity as a kev SMP ring is likely to have; small enough to hit "full" under load.
constexpr std::size_t kCapacity = 1024;
constexpr std::size_t kBatch = 32;
constexpr std::uintptr_t kStop = 0;  // sentinel; real items are >= 1

// Where the two threads run; empty if the machine has fewer than two CPUs (then unpinned).
std::vector<kev::ShardPlacement> g_plan;

inline void CpuRelax() { __builtin_ia32_pause(); }

struct KevQueue {
  kev::SpscRing<std::uintptr_t> ring{kCapacity};
  bool Push(std::uintptr_t v) { return ring.TryPush(v); }
  bool Pop(std::uintptr_t* v) { return ring.TryPop(v); }
  std::size_t PushMany(const std::uintptr_t* v, std::size_t n) {
    return ring.PushBatch(std::span<const std::uintptr_t>(v, n));
  }
  std::size_t PopMany(std::uintptr_t* v, std::size_t n) {
    return ring.PopBatch(std::span<std::uintptr_t>(v, n));
  }
};

struct BoostQueue {
  boost::lockfree::spsc_queue<std::uintptr_t, boost::lockfree::capacity<kCapacity>> queue;
  bool Push(std::uintptr_t v) { return queue.push(v); }
  bool Pop(std::uintptr_t* v) { return queue.pop(*v); }
  std::size_t PushMany(const std::uintptr_t* v, std::size_t n) { return queue.push(v, n); }
  std::size_t PopMany(std::uintptr_t* v, std::size_t n) { return queue.pop(v, n); }
};

// Consumes until the sentinel; returns the sum of the items (checked by the producer).
template <typename Queue>
std::uint64_t Consume(Queue& q, bool batched) {
  if (g_plan.size() >= 2) kev::PinCurrentThread(g_plan[1]);
  std::uint64_t sum = 0;
  std::uintptr_t buf[kBatch * 2];
  while (true) {
    std::size_t n = batched ? q.PopMany(buf, kBatch * 2) : (q.Pop(&buf[0]) ? 1 : 0);
    if (n == 0) {
      CpuRelax();
      continue;
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (buf[i] == kStop) return sum;
      sum += buf[i];
    }
  }
}

template <typename Queue>
void BM_Transfer(benchmark::State& state) {
  const bool batched = state.range(0) != 0;
  auto q = std::make_unique<Queue>();
  std::uint64_t consumed = 0;
  std::thread consumer([&] { consumed = Consume(*q, batched); });

  std::uint64_t expected = 0;
  std::uintptr_t next = 1;
  std::uintptr_t items[kBatch];
  for (auto _ : state) {
    for (std::size_t i = 0; i < kBatch; ++i) items[i] = next + i;
    if (batched) {
      for (std::size_t done = 0; done < kBatch;) {
        const std::size_t n = q->PushMany(items + done, kBatch - done);
        if (n == 0) CpuRelax();
        done += n;
      }
    } else {
      for (std::size_t i = 0; i < kBatch; ++i) {
        while (!q->Push(items[i])) CpuRelax();
      }
    }
    for (std::size_t i = 0; i < kBatch; ++i) expected += items[i];
    next += kBatch;
  }
  while (!q->Push(kStop)) CpuRelax();
  consumer.join();
  if (consumed != expected) state.SkipWithError("consumer saw different items");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}

BENCHMARK_TEMPLATE(BM_Transfer, KevQueue)->ArgName("batched")->Arg(0)->Arg(1)->UseRealTime();
BENCHMARK_TEMPLATE(BM_Transfer, BoostQueue)->ArgName("batched")->Arg(0)->Arg(1)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const std::vector<unsigned> cpus = kev::Topology::System().AvailableCpus();
  if (cpus.size() >= 2) {
    g_plan = kev::PlanShards(2, {});
    kev::PinCurrentThread(g_plan[0]);  // the producer is the benchmark thread
    std::printf("producer on CPU %u, consumer on CPU %u, capacity %zu, batch %zu\n",
                g_plan[0].cpu, g_plan[1].cpu, kCapacity, kBatch);
  } else {
    std::printf("fewer than 2 CPUs available: threads unpinned\n");
  }
  // Ratios through micro_ratio.h (bench.py parses its JSON lines): with
  // --benchmark_repetitions=N --benchmark_enable_random_interleaving=true the kev and boost
  // repetitions alternate and each ratio is the median of per-repetition ratios. Target (issue 7):
  // messages/s >= 1.0 x boost::lockfree::spsc_queue of the same capacity.
  kev::perf::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios({
      {"spsc_single_vs_boost", "BM_Transfer<KevQueue>/batched:0/real_time",
       "BM_Transfer<BoostQueue>/batched:0/real_time", 1.0},
      {"spsc_batched_vs_boost", "BM_Transfer<KevQueue>/batched:1/real_time",
       "BM_Transfer<BoostQueue>/batched:1/real_time", 1.0},
  });
  benchmark::Shutdown();
  return 0;
}
