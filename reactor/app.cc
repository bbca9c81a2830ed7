#include "reactor/app.h"

#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "kevent/ukevent.h"
#include "reactor/reactor.h"
#include "reactor/timer.h"
#include "reactor/topology.h"

ABSL_FLAG(uint32_t, smp, 0, "number of shards (0: one per CPU the process may use)");
ABSL_FLAG(std::string, cpuset, "",
          "CPUs to run shards on, e.g. 0-3,8 (default: all allowed by cpuset/affinity)");
ABSL_FLAG(std::string, backend, "default", "I/O backend: io_uring | epoll | default");
ABSL_FLAG(uint32_t, idle_poll_us, 0,
          "microseconds a shard with nothing to do keeps polling before it sleeps (0: sleep at "
          "once; at most 1000000); costs CPU, saves wake-ups (see ReactorOptions::idle_poll)");

namespace kev {
namespace internal {
namespace {

// Names that ask for help, whatever Abseil's own usage flags are linked in or not.
bool IsHelpFlag(std::string_view name) {
  return name == "help" || name == "helpfull" || name == "helpshort" || name == "helppackage" ||
         name == "h" || name == "?" || name == "version";
}

void PrintUsage(const char* program) {
  std::fprintf(stderr, "Usage: %s [flags] [args]\n", program);
  const absl::string_view usage = absl::ProgramUsageMessage();
  const std::string_view message(usage.data(), usage.size());
  if (!message.empty() &&
      message.find("Warning: SetProgramUsageMessage") == std::string_view::npos) {
    std::fprintf(stderr, "%.*s\n", static_cast<int>(message.size()), message.data());
  }
  std::vector<absl::CommandLineFlag*> flags;
  for (auto& [name, flag] : absl::GetAllFlags()) {
    // Abseil's own flags (flagfile, fromenv...) are not supported by this parser.
    if (flag->Filename().find("absl/") != std::string::npos) continue;
    flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(), [](auto* a, auto* b) { return a->Name() < b->Name(); });
  std::fprintf(stderr, "Flags:\n");
  for (absl::CommandLineFlag* f : flags) {
    std::fprintf(stderr, "  --%.*s (default: \"%s\")\n      %s\n",
                 static_cast<int>(f->Name().size()), f->Name().data(), f->DefaultValue().c_str(),
                 f->Help().c_str());
  }
}

// Abseil here is built with its own string_view type.
absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

int Fail(const char* program, const std::string& message) {
  std::fprintf(stderr, "%s: %s (try --help)\n", program, message.c_str());
  return 2;
}

// The stop machinery of a running App, on shard 0.
struct AppState {
  AbortSource stop;
  int signals = 0;
};
AppState* g_app = nullptr;  // Shard 0 reads and writes it; other shards only test it through
                            // SubmitTo(0), never directly.
const std::vector<std::string>* g_args = nullptr;  // Set before the shards start.

// Watches one signal through the SIGNAL origin; persistent, so every arrival is delivered.
class SignalWatch final : public KeventHandler {
 public:
  explicit SignalWatch(int signo) : KeventHandler(Request(signo)) {}

 private:
  static ukevent Request(int signo) {
    ukevent uk{};
    uk.type = KEVENT_SIGNAL;
    uk.event = KEVENT_SIGNAL_DELIVERY;
    // NOMASK: the signal reaches only the queue; the default action (terminate) never runs.
    uk.id.raw_u64 = KEVENT_SIGNAL_NOMASK | static_cast<uint64_t>(signo);
    return uk;
  }
  void OnEvent(const ukevent& event) noexcept override {
    if (g_app == nullptr) return;
    if (++g_app->signals == 1) {
      g_app->stop.RequestAbort();
    } else if (Smp* smp = Smp::CurrentOrNull()) {
      std::fprintf(stderr, "kev: second signal, stopping every shard now\n");
      smp->Stop();
    }
  }
};

}  // namespace

std::optional<AppConfig> ParseAppCommandLine(int argc, char** argv, int* exit_code) {
  const char* program = argc > 0 ? argv[0] : "kev";
  AppConfig config;
  config.args.push_back(program);
  bool flags_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-') {
      config.args.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    arg.remove_prefix(arg[1] == '-' ? 2 : 1);
    std::optional<std::string_view> value;
    std::string name_storage(arg);
    if (size_t eq = arg.find('='); eq != std::string_view::npos) {
      name_storage.resize(eq);
      value = arg.substr(eq + 1);
    }
    // Flags are declared with underscores (C++ identifiers); --access-log and --access_log
    // name the same flag, as users of other servers expect.
    std::replace(name_storage.begin(), name_storage.end(), '-', '_');
    std::string_view name = name_storage;
    if (IsHelpFlag(name)) {
      PrintUsage(program);
      *exit_code = 2;
      return std::nullopt;
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(AbslView(name));
    bool negated = false;
    if (flag == nullptr && !value && name.size() > 2 && name.substr(0, 2) == "no") {
      flag = absl::FindCommandLineFlag(AbslView(name.substr(2)));
      negated = flag != nullptr && flag->IsOfType<bool>();
      if (!negated) flag = nullptr;
    }
    if (flag == nullptr || flag->Filename().find("absl/") != std::string::npos) {
      *exit_code = Fail(program, "unknown flag --" + std::string(name));
      return std::nullopt;
    }
    std::string text;
    if (negated) {
      text = "false";
    } else if (value) {
      text = std::string(*value);
    } else if (flag->IsOfType<bool>()) {
      text = "true";
    } else if (i + 1 < argc) {
      text = argv[++i];
    } else {
      *exit_code = Fail(program, "flag --" + std::string(name) + " needs a value");
      return std::nullopt;
    }
    std::string error;
    if (!flag->ParseFrom(text, &error)) {
      *exit_code = Fail(program, "bad value for --" + std::string(name) + ": " + error);
      return std::nullopt;
    }
  }

  config.smp.shards = absl::GetFlag(FLAGS_smp);
  std::optional<PollerBackend> backend = ParsePollerBackend(absl::GetFlag(FLAGS_backend));
  if (!backend) {
    *exit_code = Fail(program, "bad value for --backend: \"" + absl::GetFlag(FLAGS_backend) +
                                   "\" (io_uring, epoll or default)");
    return std::nullopt;
  }
  config.smp.backend = *backend;
  const uint32_t idle_poll_us = absl::GetFlag(FLAGS_idle_poll_us);
  if (idle_poll_us > 1000000) {
    *exit_code = Fail(program, "bad value for --idle_poll_us: " + std::to_string(idle_poll_us) +
                                   " (at most 1000000)");
    return std::nullopt;
  }
  config.smp.idle_poll = std::chrono::microseconds(idle_poll_us);
  const std::string cpuset = absl::GetFlag(FLAGS_cpuset);
  if (!cpuset.empty()) {
    try {
      config.smp.cpuset = ParseCpuset(cpuset);
    } catch (const std::invalid_argument& e) {
      *exit_code = Fail(program, std::string("bad value for --cpuset: ") + e.what());
      return std::nullopt;
    }
  }
  return config;
}

Future<int> RunAppMain(std::function<Future<int>()> main) {
  AppState state;
  g_app = &state;
  std::optional<SignalWatch> sigint, sigterm;
  try {
    sigint.emplace(SIGINT);
    sigint->Register();
    sigterm.emplace(SIGTERM);
    sigterm->Register();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kev: cannot watch SIGINT/SIGTERM (%s); signals keep their default\n",
                 e.what());
  }
  std::exception_ptr error;
  int code = 0;
  try {
    code = co_await main();
  } catch (...) {
    error = std::current_exception();
  }
  // Unregistering the last request for a signal restores its previous disposition.
  sigint.reset();
  sigterm.reset();
  g_app = nullptr;
  if (error != nullptr) std::rethrow_exception(error);
  co_return code;
}

int RunApp(AppConfig config, std::function<Future<int>()> main) {
  const char* program = config.args[0].c_str();
  std::optional<Smp> smp;
  try {
    smp.emplace(config.smp);
  } catch (const std::invalid_argument& e) {
    return Fail(program, e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: cannot start: %s\n", program, e.what());
    return 1;
  }
  g_args = &config.args;
  int code = 1;
  try {
    code = smp->Run([&main] { return RunAppMain(std::move(main)); });
  } catch (const AbortRequested&) {
    std::fprintf(stderr, "%s: stopped before main finished\n", program);
    code = 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    code = 1;
  } catch (...) {
    std::fprintf(stderr, "%s: main failed with an unknown exception\n", program);
    code = 1;
  }
  g_args = nullptr;
  return code;
}

}  // namespace internal

void App::RequestStop() {
  if (this_shard_id() != 0) {
    Future<void> sent = SubmitTo(0, [] { RequestStop(); });
    return;
  }
  if (internal::g_app != nullptr) internal::g_app->stop.RequestAbort();
}

AbortSource& App::StopSource() {
  KEV_CHECK_MSG(this_shard_id() == 0 && internal::g_app != nullptr,
                "kev::App::StopSource() outside shard 0 or outside App::Run()");
  return internal::g_app->stop;
}

Future<void> App::WaitForStop() {
  // A sleep of a century that the stop source cuts short: the timer origin already links
  // sleeps to abort sources, so no second wake-up mechanism is needed here.
  try {
    co_await Sleep(std::chrono::hours(24 * 365 * 100), StopSource());
  } catch (const AbortRequested&) {
  }
}

const std::vector<std::string>& App::Args() {
  KEV_CHECK_MSG(internal::g_args != nullptr, "kev::App::Args() outside App::Run()");
  return *internal::g_args;
}

}  // namespace kev
