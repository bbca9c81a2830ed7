// App: the main() of a kev program. Parses the command line (Abseil flags: kev's own --smp,
// --cpuset, --backend, and every ABSL_FLAG the binary defines), starts one shard per core,
// runs the application's main on shard 0, stops cleanly on SIGINT/SIGTERM and returns main's
// exit code.
//
//   ABSL_FLAG(int, port, 8080, "port to listen on");
//
//   int main(int argc, char** argv) {
//     return kev::App::Run(argc, argv, []() -> kev::Future<int> {
//       Server server(absl::GetFlag(FLAGS_port));
//       co_await server.Start();
//       co_await kev::App::WaitForStop();   // SIGINT / SIGTERM / App::RequestStop()
//       co_await server.Stop();
//       co_return 0;
//     });
//   }
//
// Command line: flags as --name=value, --name value, -name=value; booleans also as --name and
// --noname; "--" ends the flags; other words are positional arguments (App::Args()). --help
// (or -h, --helpfull) prints the flags and exits with 2; so does an unknown flag or a bad value,
// with a one-line message. Flags of kev itself:
//   --smp N          shards (0, the default: one per CPU the process may use)
//   --cpuset LIST    CPUs to run on, e.g. 0-3,8 (default: all allowed by cpuset/affinity)
//   --backend NAME   io_uring | epoll | default (io_uring, falling back to epoll)
//
// Shutdown: the first SIGINT or SIGTERM (watched through the kevent SIGNAL origin on shard 0,
// NOMASK: the default action does not run) fires App::StopSource(); main is expected to finish
// its work and return. A second signal stops every shard at once (exit code 1).
//
// Exit codes: main's (int or Future<int>; 0 for void), 2 for a command-line error, 1 when main
// throws (the message is printed) or the shards are stopped by force.
//
// Threading: Run() from the process's main thread, once at a time. StopSource() on shard 0
// only; RequestStop() and Args() from any shard.
#ifndef KEV_REACTOR_APP_H_
#define KEV_REACTOR_APP_H_

#include <cstdio>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "reactor/abort_source.h"
#include "reactor/future.h"
#include "reactor/smp.h"

namespace kev {

namespace internal {

// The parsed command line, or the exit code to leave with.
struct AppConfig {
  SmpOptions smp;
  std::vector<std::string> args;  // positional arguments, argv[0] first
};
// Parses argv into every registered Abseil flag. On --help or an error, prints to stderr and
// returns nullopt with *exit_code = 2.
std::optional<AppConfig> ParseAppCommandLine(int argc, char** argv, int* exit_code);
// Runs `main` on shard 0 with the signal watch and the stop source set up around it.
Future<int> RunAppMain(std::function<Future<int>()> main);
// Runs the shards; maps failures to exit codes.
int RunApp(AppConfig config, std::function<Future<int>()> main);

template <class Main>
std::function<Future<int>()> WrapAppMain(Main& main) {
  return [&main]() -> Future<int> {
    using R = std::invoke_result_t<Main&>;
    if constexpr (std::is_same_v<R, Future<int>>) {
      return main();
    } else if constexpr (std::is_same_v<R, Future<void>>) {
      return main().Then([] { return 0; });
    } else if constexpr (std::is_void_v<R>) {
      main();
      return MakeReadyFuture(0);
    } else {
      static_assert(std::is_convertible_v<R, int>, "App main must return int, void or a future");
      return MakeReadyFuture(static_cast<int>(main()));
    }
  };
}

}  // namespace internal

class App {
 public:
  // Parses the command line, starts the shards, runs main() on shard 0 (main returns int,
  // void, Future<int> or Future<void>; it is called once and must stay valid until Run()
  // returns), and returns the exit code (see the file comment). main's exceptions are caught,
  // printed and turned into exit code 1.
  template <class Main>
  static int Run(int argc, char** argv, Main&& main) {
    int exit_code = 0;
    std::optional<internal::AppConfig> config =
        internal::ParseAppCommandLine(argc, argv, &exit_code);
    if (!config) return exit_code;
    return internal::RunApp(std::move(*config), internal::WrapAppMain(main));
  }

  // Asks the application to stop: fires StopSource() on shard 0 (through a message when called
  // on another shard). Later calls do nothing. From any shard thread while Run() runs.
  static void RequestStop();

  // Fires on the first SIGINT/SIGTERM or RequestStop(). Shard 0 only, while main runs.
  static AbortSource& StopSource();

  // Resolves (never fails) once StopSource() has fired: what a server's main awaits between
  // starting and draining its services. Shard 0 only, while main runs. Costs one timer.
  static Future<void> WaitForStop();

  // The positional command-line arguments, argv[0] first. Any thread while Run() runs.
  static const std::vector<std::string>& Args();
};

}  // namespace kev

#endif  // KEV_REACTOR_APP_H_
