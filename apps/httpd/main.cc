// kev httpd: a static-file HTTP/1.1 server, one shard per core. With no flags it serves the
// bundled demo site on http://127.0.0.1:8080/. docs/httpd.md describes every flag.

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "apps/httpd/access_log.h"
#include "apps/httpd/server.h"
#include "net/listener.h"
#include "reactor/app.h"
#include "reactor/smp.h"
#include "reactor/timer.h"

ABSL_FLAG(std::string, address, "127.0.0.1",
          "Address to listen on (IPv4 or IPv6 literal; 0.0.0.0 or :: for every interface).");
ABSL_FLAG(int, port, 8080, "TCP port to listen on; 0 picks a free one (printed at start).");
ABSL_FLAG(std::string, root, "",
          "Directory to serve. Default: the bundled demo site (apps/httpd/www).");
ABSL_FLAG(bool, autoindex, false, "List directories that have no index.html (else 403).");
ABSL_FLAG(std::string, access_log, "",
          "Access log file (Combined Log Format, appended; '-' for stdout). Off when empty.");
ABSL_FLAG(int, max_header_bytes, 16384,
          "Largest request header section in bytes; larger gets 431.");
ABSL_FLAG(int, max_uri_bytes, 8192, "Longest request-target in bytes; longer gets 414.");
ABSL_FLAG(absl::Duration, header_timeout, absl::Seconds(10),
          "Time allowed for a request head to arrive once it has started (slowloris guard); "
          "also for a new connection's first byte.");
ABSL_FLAG(absl::Duration, keepalive_timeout, absl::Seconds(60),
          "Idle time allowed on a persistent connection between requests.");
ABSL_FLAG(absl::Duration, send_timeout, absl::Seconds(60),
          "Time allowed for the client to take each write (1 MiB of a file body).");
ABSL_FLAG(int, max_connections, 10000,
          "Open connections per shard; beyond it new connections are closed at once.");
ABSL_FLAG(int, max_pipelined, 16, "Pipelined responses batched into one write before it is sent.");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(10),
          "On SIGINT/SIGTERM, how long in-flight responses may take before being cut off.");
ABSL_FLAG(bool, metrics, true, "Serve Prometheus metrics at /_kev/metrics.");
ABSL_FLAG(bool, status, true, "Serve an HTML status page at /_kev/status.");
ABSL_FLAG(int64_t, file_cache_bytes, 16 << 20,
          "Per-shard small-file cache size in bytes; 0 disables it.");
// 16 KiB: measured crossover (server CPU per request) between a cache hit, which copies the
// body twice in user space, and open+fstat+sendfile+close, which copies nothing.
ABSL_FLAG(int64_t, file_cache_max_file, 16 << 10, "Largest file the cache holds, in bytes.");
ABSL_FLAG(int64_t, file_cache_open_files, 256,
          "Files over --file_cache_max_file kept open per shard (like nginx's open_file_cache: a "
          "hit skips open+fstat+close); 0 opens every file per request.");
ABSL_FLAG(int64_t, file_cache_valid_ms, 1000,
          "A cached file checked (fstatat) within this many milliseconds is served without "
          "re-checking; 0 re-checks on every hit.");

namespace {

using kev::httpd::ServerOptions;

// The directory of `probe` (a file inside the bundled site) with every symlink resolved,
// or "" if it does not exist. Runfiles are symlinks to the source tree, and the server refuses
// to follow absolute symlinks, so the real directory must be served.
std::string RealDirOf(const std::string& probe) {
  char buf[PATH_MAX];
  if (realpath(probe.c_str(), buf) == nullptr) return "";
  std::string path = buf;
  return path.substr(0, path.rfind('/'));
}

std::string FindBundledRoot() {
  const std::string rel = "apps/httpd/www/index.html";
  std::string candidates[4];
  if (const char* dir = getenv("RUNFILES_DIR")) candidates[0] = std::string(dir) + "/kev/" + rel;
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = '\0';
    candidates[1] = std::string(exe) + ".runfiles/kev/" + rel;
  }
  candidates[2] = rel;  // the repository root as working directory
  if (const char* dir = getenv("BUILD_WORKSPACE_DIRECTORY")) {  // bazel run
    candidates[3] = std::string(dir) + "/" + rel;
  }
  for (const std::string& c : candidates) {
    if (c.empty()) continue;
    if (std::string dir = RealDirOf(c); !dir.empty()) return dir;
  }
  return "";
}

std::chrono::milliseconds Ms(absl::Duration d) {
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

ServerOptions OptionsFromFlags() {
  ServerOptions o;
  o.address = absl::GetFlag(FLAGS_address);
  const int port = absl::GetFlag(FLAGS_port);
  if (port < 0 || port > 65535) throw std::invalid_argument("--port out of range");
  o.port = static_cast<uint16_t>(port);
  o.root = absl::GetFlag(FLAGS_root);
  if (o.root.empty()) {
    o.root = FindBundledRoot();
    if (o.root.empty()) throw std::invalid_argument("bundled site not found; pass --root=DIR");
  } else {
    char buf[PATH_MAX];
    if (realpath(o.root.c_str(), buf) == nullptr) {
      throw std::invalid_argument("--root " + o.root + ": no such directory");
    }
    o.root = buf;
  }
  o.autoindex = absl::GetFlag(FLAGS_autoindex);
  o.access_log = absl::GetFlag(FLAGS_access_log);
  const int header_bytes = absl::GetFlag(FLAGS_max_header_bytes);
  const int uri_bytes = absl::GetFlag(FLAGS_max_uri_bytes);
  if (header_bytes < 64 || uri_bytes < 16) {
    throw std::invalid_argument("--max_header_bytes >= 64 and --max_uri_bytes >= 16 required");
  }
  o.limits.max_header_bytes = static_cast<uint32_t>(header_bytes);
  o.limits.max_target = static_cast<uint32_t>(uri_bytes);
  o.header_timeout = Ms(absl::GetFlag(FLAGS_header_timeout));
  o.keepalive_timeout = Ms(absl::GetFlag(FLAGS_keepalive_timeout));
  o.send_timeout = Ms(absl::GetFlag(FLAGS_send_timeout));
  o.drain_timeout = Ms(absl::GetFlag(FLAGS_drain_timeout));
  o.max_connections = static_cast<uint32_t>(std::max(1, absl::GetFlag(FLAGS_max_connections)));
  o.max_pipelined = static_cast<uint32_t>(std::max(1, absl::GetFlag(FLAGS_max_pipelined)));
  o.metrics = absl::GetFlag(FLAGS_metrics);
  o.status_page = absl::GetFlag(FLAGS_status);
  o.file_cache.capacity_bytes =
      static_cast<uint64_t>(std::max<int64_t>(0, absl::GetFlag(FLAGS_file_cache_bytes)));
  o.file_cache.max_file_bytes =
      static_cast<uint64_t>(std::max<int64_t>(0, absl::GetFlag(FLAGS_file_cache_max_file)));
  o.file_cache.max_open_files =
      static_cast<size_t>(std::max<int64_t>(0, absl::GetFlag(FLAGS_file_cache_open_files)));
  o.file_cache.revalidate_after =
      std::chrono::milliseconds(std::max<int64_t>(0, absl::GetFlag(FLAGS_file_cache_valid_ms)));
  return o;
}

kev::Future<int> Serve() {
  using kev::httpd::ShardServer;
  const ServerOptions options = OptionsFromFlags();
  // One fd for the root, shared by the shards (it is only ever a dirfd for openat2).
  const int root_fd = open(options.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) {
    throw std::system_error(errno, std::system_category(), "open --root " + options.root);
  }
  std::shared_ptr<kev::httpd::AccessLogSink> sink;
  if (!options.access_log.empty()) sink = kev::httpd::AccessLogSink::Open(options.access_log);

  auto servers = std::make_unique<kev::Sharded<ShardServer>>();
  co_await servers->Start(options, root_fd, sink, servers.get());
  std::exception_ptr error;
  try {
    // Shard 0 binds first, so --port=0 resolves to one port that every shard then shares.
    const uint16_t port = co_await servers->InvokeOn(
        0, [port = options.port](ShardServer& s) { return s.Listen(port); });
    co_await servers->InvokeOnAll([port](ShardServer& s) {
      if (kev::this_shard_id() != 0) s.Listen(port);
      s.StartAccepting();
    });
    const std::string host = options.address == "0.0.0.0" ? "127.0.0.1"
                             : options.address == "::"    ? "[::1]"
                             : options.address.find(':') != std::string::npos
                                 ? "[" + options.address + "]"
                                 : options.address;
    std::printf("kev httpd serving %s at http://%s:%u/ on %u shard%s\n", options.root.c_str(),
                host.c_str(), port, kev::smp_count(), kev::smp_count() == 1 ? "" : "s");
    std::fflush(stdout);
    co_await kev::App::WaitForStop();
    std::fprintf(stderr, "kev httpd: draining (up to %lld ms)\n",
                 static_cast<long long>(options.drain_timeout.count()));
    co_await servers->InvokeOnAll([](ShardServer& s) { return s.Drain(); });
  } catch (...) {
    error = std::current_exception();
  }
  co_await servers->Stop();
  if (sink) sink->Sync();
  close(root_fd);
  if (error) std::rethrow_exception(error);
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  kev::net::RaiseOpenFileLimit();  // one descriptor per connection
  return kev::App::Run(argc, argv, [] { return Serve(); });
}
