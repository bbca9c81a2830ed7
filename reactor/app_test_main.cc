// A small App for app_test: flags of its own, waits for a stop when asked to, exits with a
// chosen code.
#include <chrono>
#include <cstdio>
#include <functional>

#include "absl/flags/flag.h"
#include "reactor/app.h"
#include "reactor/errors.h"
#include "reactor/future.h"
#include "reactor/smp.h"
#include "reactor/timer.h"

ABSL_FLAG(int, exit_code, 0, "the exit code main returns");
ABSL_FLAG(bool, wait_for_stop, false, "print \"ready\" and wait for SIGINT/SIGTERM");
ABSL_FLAG(bool, throw_in_main, false, "main throws");
ABSL_FLAG(bool, stop_from_shard1, false, "shard 1 calls App::RequestStop(); main waits for it");
ABSL_FLAG(bool, ignore_stop, false, "print \"ready\" and never return (a second signal ends it)");

int main(int argc, char** argv) {
  return kev::App::Run(argc, argv, []() -> kev::Future<int> {
    if (absl::GetFlag(FLAGS_throw_in_main)) throw std::runtime_error("main threw");
    std::printf("shards %u args %zu\n", kev::smp_count(), kev::App::Args().size());
    if (absl::GetFlag(FLAGS_ignore_stop)) {
      std::printf("ready\n");
      std::fflush(stdout);
      auto seen = kev::App::StopSource().Subscribe([] {
        std::printf("stop seen\n");
        std::fflush(stdout);
      });
      kev::Promise<int> never;
      co_return co_await never.GetFuture();
    }
    if (absl::GetFlag(FLAGS_stop_from_shard1)) {
      co_await kev::SubmitTo(1, [] { kev::App::RequestStop(); });
      co_await kev::App::WaitForStop();
      const bool stopped = kev::App::StopSource().Aborted();
      std::printf("stopped by shard 1: %d\n", stopped);
    }
    if (absl::GetFlag(FLAGS_wait_for_stop)) {
      std::printf("ready\n");
      std::fflush(stdout);
      co_await kev::App::WaitForStop();
      const bool stopped = kev::App::StopSource().Aborted();
      if (stopped) {
        // The shards still work while main winds down.
        int n = co_await kev::MapReduce([] { return 1; }, 0, std::plus<int>());
        std::printf("stopping with %d shards\n", n);
      }
    }
    std::fflush(stdout);
    co_return absl::GetFlag(FLAGS_exit_code);
  });
}
