// Plumbing shared by the raw-epoll benchmark peers (raw_epoll_http, raw_epoll_echo) and the
// in-project load generator (echo_load). Plain C++ and Linux syscalls only, no kev: these
// programs are the baseline kev is measured against, so they must not inherit its costs or bugs.
//
// A peer server is a set of shared-nothing "shards": one thread each, one SO_REUSEPORT listener
// each, one edge-triggered epoll each, pinned to the n-th CPU of the process's affinity mask
// (so `taskset -c 0-3 raw_epoll_http --threads 4` gives one shard per core, like kev and
// nginx's worker_cpu_affinity). The default is one shard, i.e. a single-threaded server.
//
// Example:
//   int main(int argc, char** argv) {
//     kev::perf::Flags flags(argc, argv);
//     uint16_t port = flags.Int("--port", 0);
//     int threads = flags.Int("--threads", 1);
//     flags.CheckAllUsed();
//     return kev::perf::RunShards(port, threads, [](int listen_fd, int stop_fd) {
//       /* epoll loop until stop_fd is readable */
//     });
//   }
//
// Threading: Flags is for main() only. RunShards calls the loop once per shard thread; each
// loop owns its epoll and connections. StopFd() is written by the signal handler and read by all.
#ifndef KEV_TESTS_PERF_EPOLL_PEER_H_
#define KEV_TESTS_PERF_EPOLL_PEER_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace kev::perf {

// Prints `what: strerror(errno)` and exits 1. The peers are tools: any setup failure is fatal.
[[noreturn]] inline void Die(const char* what) {
  std::fprintf(stderr, "fatal: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

// Command-line flags of the form `--name=value` or `--name value`. Unknown or malformed flags
// are fatal (CheckAllUsed), so a typo in the harness cannot silently benchmark a default.
class Flags {
 public:
  Flags(int argc, char** argv) : args_(argv + 1, argv + argc), used_(args_.size(), false) {}

  // Returns the integer value of `name`, or `fallback` when absent. Exits on a malformed value.
  long long Int(const char* name, long long fallback) {
    const char* text = Find(name);
    if (text == nullptr) return fallback;
    char* end = nullptr;
    errno = 0;
    long long value = std::strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0') {
      std::fprintf(stderr, "fatal: bad value for %s: '%s'\n", name, text);
      std::exit(2);
    }
    return value;
  }

  // Returns the floating-point value of `name`, or `fallback` when absent.
  double Double(const char* name, double fallback) {
    const char* text = Find(name);
    if (text == nullptr) return fallback;
    char* end = nullptr;
    errno = 0;
    double value = std::strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0') {
      std::fprintf(stderr, "fatal: bad value for %s: '%s'\n", name, text);
      std::exit(2);
    }
    return value;
  }

  // Returns the text value of `name`, or `fallback` when absent.
  const char* String(const char* name, const char* fallback) {
    const char* text = Find(name);
    return text == nullptr ? fallback : text;
  }

  // Returns true when the bare switch `name` is present.
  bool Bool(const char* name) {
    for (size_t i = 0; i < args_.size(); ++i) {
      if (args_[i] == name) return used_[i] = true;
    }
    return false;
  }

  // Exits with status 2 if any argument was not consumed by Int/Double/String/Bool.
  void CheckAllUsed() const {
    for (size_t i = 0; i < args_.size(); ++i) {
      if (!used_[i]) {
        std::fprintf(stderr, "fatal: unknown argument '%s'\n", args_[i].c_str());
        std::exit(2);
      }
    }
  }

 private:
  const char* Find(const char* name) {
    const size_t len = std::strlen(name);
    for (size_t i = 0; i < args_.size(); ++i) {
      const std::string& a = args_[i];
      if (a.compare(0, len, name) != 0) continue;
      if (a.size() == len && i + 1 < args_.size()) {
        used_[i] = used_[i + 1] = true;
        return args_[i + 1].c_str();
      }
      if (a.size() > len && a[len] == '=') {
        used_[i] = true;
        return a.c_str() + len + 1;
      }
    }
    return nullptr;
  }

  std::vector<std::string> args_;
  std::vector<bool> used_;
};

// Raises RLIMIT_NOFILE's soft limit to the hard limit: 1024 connections plus the server side
// need more than Debian's default soft limit of 1024.
inline void RaiseFdLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

// Sets TCP_NODELAY: responses and echoes are small writes that must leave at once.
inline void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Returns a nonblocking listener on 127.0.0.1:port (0 = ephemeral) with SO_REUSEPORT, so
// that every shard can own one. Only loopback: these peers exist for local benchmarks.
inline int Listen(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) Die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) Die("SO_REUSEPORT");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) Die("bind");
  if (listen(fd, 4096) != 0) Die("listen");
  return fd;
}

// Returns the local port of a bound socket.
inline uint16_t LocalPort(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) Die("getsockname");
  return ntohs(addr.sin_port);
}

// The process-wide stop eventfd: readable once SIGINT or SIGTERM arrived. Every shard puts it in
// its epoll set, so a signal stops all loops without timeouts or EINTR games.
inline int& StopFdStorage() {
  static int fd = -1;
  return fd;
}
inline int StopFd() { return StopFdStorage(); }

inline void OnStopSignal(int) {
  uint64_t one = 1;
  // write(2) is async-signal-safe; the result is irrelevant (the counter cannot overflow here).
  ssize_t ignored = write(StopFdStorage(), &one, sizeof(one));
  (void)ignored;
}

// Creates the stop eventfd and routes SIGINT/SIGTERM to it; ignores SIGPIPE (sends use
// MSG_NOSIGNAL, but be safe for writev).
inline void InstallStopHandler() {
  StopFdStorage() = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (StopFd() < 0) Die("eventfd");
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

// Pins the calling thread to the n-th CPU (modulo count) of the process's affinity mask. The
// harness chooses the cores with taskset; the shards spread over exactly those.
inline void PinToNthAllowedCpu(int n) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return;
  const int count = CPU_COUNT(&allowed);
  if (count <= 1) return;  // Nothing to choose.
  int want = n % count;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    if (want-- == 0) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      sched_setaffinity(0, sizeof(one), &one);
      return;
    }
  }
}

// Starts `threads` shards on `port` (0 = pick one), prints "listening on PORT" once every
// listener is bound, runs loop(listen_fd, stop_fd) on each shard thread (shard 0 on the calling
// thread) and returns 0 after all loops returned. Each loop must return once stop_fd is
// readable and close its own connections.
inline int RunShards(uint16_t port, int threads, const std::function<void(int, int)>& loop) {
  RaiseFdLimit();
  InstallStopHandler();
  if (threads < 1) threads = 1;
  std::vector<int> listeners;
  listeners.push_back(Listen(port));
  port = LocalPort(listeners[0]);
  for (int i = 1; i < threads; ++i) listeners.push_back(Listen(port));
  std::printf("listening on %u\n", static_cast<unsigned>(port));
  std::fflush(stdout);
  std::vector<std::thread> shards;
  for (int i = 1; i < threads; ++i) {
    shards.emplace_back([&, i] {
      if (threads > 1) PinToNthAllowedCpu(i);
      loop(listeners[i], StopFd());
    });
  }
  if (threads > 1) PinToNthAllowedCpu(0);
  loop(listeners[0], StopFd());
  for (auto& t : shards) t.join();
  for (int fd : listeners) close(fd);
  return 0;
}

// The loop every peer server shard runs, with the per-connection work left to Derived (CRTP:
// the hooks are resolved at compile time, so the baseline pays no virtual call per event).
// One edge-triggered epoll set holds the listener, the stop fd and every connection (registered
// once for EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, so no epoll_ctl per message); connection
// state lives in conns_[fd].
//
// Derived provides:
//   void OnReady(int fd, Conn& c, uint32_t events);  // readiness of an open connection
// and Conn provides `bool open` and `void Reset()` (called when a new connection takes the fd
// slot; it may keep buffers of the previous one for reuse).
template <class Derived, class Conn>
class EpollShard {
 public:
  EpollShard(int listen_fd, int stop_fd) : listen_fd_(listen_fd), stop_fd_(stop_fd) {}

  // Serves until stop_fd is readable, then closes every connection and returns.
  void Run() {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) Die("epoll_create1");
    Add(listen_fd_, EPOLLIN | EPOLLET);
    Add(stop_fd_, EPOLLIN);  // Level-triggered: every shard sees the one stop write.
    epoll_event events[512];
    for (;;) {
      const int n = epoll_wait(epfd_, events, 512, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        Die("epoll_wait");
      }
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == stop_fd_) return Shutdown();
        if (fd == listen_fd_) {
          Accept();
          continue;
        }
        if (events[i].events & (EPOLLERR | EPOLLHUP)) {
          Close(fd);
          continue;
        }
        static_cast<Derived*>(this)->OnReady(fd, conns_[fd], events[i].events);
      }
    }
  }

 protected:
  // Closes the connection (which also leaves the epoll set).
  void Close(int fd) {
    conns_[fd].open = false;
    close(fd);
  }

 private:
  void Add(int fd, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) Die("epoll_ctl");
  }

  void Accept() {
    for (;;) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EAGAIN) return;
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE) return;  // Retry on the next edge.
        Die("accept4");
      }
      SetNoDelay(fd);
      // Grows only when a new highest fd appears: allocation per connection, never per message.
      if (static_cast<size_t>(fd) >= conns_.size()) conns_.resize(fd + 64);
      Conn& c = conns_[fd];
      c.Reset();
      c.open = true;
      // Both directions edge-triggered once: no epoll_ctl per message.
      Add(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
    }
  }

  void Shutdown() {
    for (size_t fd = 0; fd < conns_.size(); ++fd) {
      if (conns_[fd].open) Close(static_cast<int>(fd));
    }
    close(epfd_);
  }

  const int listen_fd_;
  const int stop_fd_;
  std::vector<Conn> conns_;  // By fd; references stay valid between Accept()s.
  int epfd_ = -1;
};

}  // namespace kev::perf

#endif  // KEV_TESTS_PERF_EPOLL_PEER_H_
