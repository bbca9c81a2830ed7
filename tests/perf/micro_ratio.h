// tests/perf/micro_ratio.h: the main() of kev's Google Benchmark microbenchmarks, which turns
// pairs of benchmarks (kev's way A, the baseline B) into ratios measured in the same run.
//
// Every benchmark sets items_per_second (SetItemsProcessed): a notification, a timer, a step.
// Run with --benchmark_repetitions=N --benchmark_enable_random_interleaving=true (bench.py
// does), the repetitions of A and B alternate in a shuffled order, and each ratio is the median
// over repetitions i of rate(A_i) / rate(B_i), with its min and max: the same "median of
// alternating rounds" rule as the server benchmarks, on a noisy shared machine.
//
// After the usual console table, each ratio is printed as a human line and as one JSON line
// (parsed by bench.py):
//   ratio unotify: 6.10 (min 5.80, max 6.40, 5 rounds; 60.0 vs 366.0 ns/item) target >= 5 PASS
//   {"micro": "unotify", "ratio": 6.1, "min": 5.8, "max": 6.4, "a_rate": ..., "b_rate": ...,
//    "target": 5, "a": "BM_...", "b": "BM_..."}
//
// Example:
//   int main(int argc, char** argv) {
//     return kev::perf::RunWithRatios(argc, argv, {{"unotify", "BM_Unotify", "BM_Eventfd", 5}});
//   }
#ifndef KEV_TESTS_PERF_MICRO_RATIO_H_
#define KEV_TESTS_PERF_MICRO_RATIO_H_

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"

namespace kev::perf {

struct Ratio {
  std::string name;              // what bench.py and the reader call it
  std::string a;                 // benchmark name (as reported, args included) of kev's way
  std::string b;                 // the baseline
  std::optional<double> target;  // PASS when the median ratio >= target; nullopt: report only
};

// Console output as usual; collects items_per_second per repetition and benchmark name.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration || run.error_occurred) continue;
      const auto it = run.counters.find("items_per_second");
      if (it != run.counters.end()) rates_[run.benchmark_name()].push_back(it->second.value);
    }
  }

  // Prints every ratio whose two sides ran; returns false if a target was missed.
  bool PrintRatios(const std::vector<Ratio>& ratios) const {
    bool ok = true;
    for (const Ratio& r : ratios) {
      const auto a = rates_.find(r.a);
      const auto b = rates_.find(r.b);
      if (a == rates_.end() || b == rates_.end()) continue;  // filtered out
      std::vector<double> per_round;
      for (size_t i = 0; i < std::min(a->second.size(), b->second.size()); ++i) {
        if (b->second[i] > 0) per_round.push_back(a->second[i] / b->second[i]);
      }
      if (per_round.empty()) continue;
      std::sort(per_round.begin(), per_round.end());
      const size_t n = per_round.size();
      const double median =
          n % 2 == 1 ? per_round[n / 2] : (per_round[n / 2 - 1] + per_round[n / 2]) / 2;
      const bool pass = !r.target || median >= *r.target;
      ok = ok && pass;
      const double a_rate = Median(a->second), b_rate = Median(b->second);
      std::printf("ratio %s: %.2f (min %.2f, max %.2f, %zu rounds; %.1f vs %.1f ns/item)",
                  r.name.c_str(), median, per_round.front(), per_round.back(), n, 1e9 / a_rate,
                  1e9 / b_rate);
      if (r.target) {
        std::printf(" target >= %g %s\n", *r.target, pass ? "PASS" : "FAIL");
      } else {
        std::printf(" (report only)\n");
      }
      std::printf(
          "{\"micro\": \"%s\", \"ratio\": %.4f, \"min\": %.4f, \"max\": %.4f, \"rounds\": %zu, "
          "\"a_rate\": %.1f, \"b_rate\": %.1f, \"target\": %s, \"a\": \"%s\", \"b\": \"%s\"}\n",
          r.name.c_str(), median, per_round.front(), per_round.back(), n, a_rate, b_rate,
          r.target ? std::to_string(*r.target).c_str() : "null", r.a.c_str(), r.b.c_str());
    }
    std::fflush(stdout);
    return ok;
  }

 private:
  static double Median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  }
  std::map<std::string, std::vector<double>> rates_;
};

// Runs the registered benchmarks (honouring the usual --benchmark_* flags) and prints the
// ratios. Exit status 0 even when a target is missed (bench.py judges); 1 on bad flags.
inline int RunWithRatios(int argc, char** argv, const std::vector<Ratio>& ratios) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios(ratios);
  benchmark::Shutdown();
  return 0;
}

}  // namespace kev::perf

#endif  // KEV_TESTS_PERF_MICRO_RATIO_H_
