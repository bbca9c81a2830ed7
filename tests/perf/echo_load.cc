// echo_load: a ping-pong load generator for TCP echo servers, on plain epoll (not kev, so the
// load side is the same whichever server is measured).
//
// Each connection keeps exactly one message in flight: send --message-bytes, wait until as many
// bytes came back, record the round-trip time, send the next. Runs --seconds, then prints one
// JSON line:
//   {"tool":"echo_load","connections":64,"message_bytes":64,"threads":1,"seconds":5.000,
//    "messages":812345,"messages_per_sec":162469.0,"p50_us":..,"p90_us":..,"p99_us":..,
//    "p999_us":..,"max_us":..,"errors":0}
// Latencies come from a log-linear histogram (1/64 relative resolution, no allocation per
// sample). Messages still in flight at the deadline are not counted.
//
// Usage: echo_load --port N [--connections 64] [--message-bytes 64] [--seconds 5.0]
//                  [--threads 1] [--verify]
//   --threads  load threads, connections split between them (pin the process with taskset).
//   --verify   compare every echoed byte with what was sent (costs a memcmp per read).
// Only 127.0.0.1. Exit status 1 if a connection cannot be made or no message completed.
#include <fcntl.h>
#include <sys/epoll.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <memory>
#include <thread>
#include <vector>

#include "tests/perf/epoll_peer.h"

namespace kev::perf {
namespace {

inline uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO: no syscall per message.
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

// Log-linear latency histogram in nanoseconds: exact below 64 ns, then 64 sub-buckets per
// power of two (relative error under 1/64).
class Histogram {
 public:
  void Add(uint64_t ns) {
    ++counts_[Index(ns)];
    max_ = std::max(max_, ns);
  }
  void Merge(const Histogram& other) {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    max_ = std::max(max_, other.max_);
  }
  uint64_t Count() const {
    uint64_t n = 0;
    for (uint64_t c : counts_) n += c;
    return n;
  }
  uint64_t Max() const { return max_; }
  // Returns the smallest bucket midpoint with at least q of the samples at or below it.
  uint64_t Quantile(double q) const {
    const uint64_t total = Count();
    if (total == 0) return 0;
    const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(q * total + 0.5));
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(Midpoint(i), max_);
    }
    return max_;
  }

 private:
  static constexpr int kSubBits = 6;
  static constexpr size_t kBuckets = (64 - kSubBits + 1) << kSubBits;

  static size_t Index(uint64_t v) {
    if (v < (1u << kSubBits)) return v;
    const int exp = 63 - __builtin_clzll(v);  // >= kSubBits
    const uint64_t sub = (v >> (exp - kSubBits)) & ((1u << kSubBits) - 1);
    return (static_cast<size_t>(exp - kSubBits + 1) << kSubBits) + sub;
  }
  static uint64_t Midpoint(size_t i) {
    if (i < (1u << kSubBits)) return i;
    const int exp = static_cast<int>(i >> kSubBits) + kSubBits - 1;
    const uint64_t sub = i & ((1u << kSubBits) - 1);
    const uint64_t low = (1ull << exp) + (sub << (exp - kSubBits));
    return low + (1ull << (exp - kSubBits)) / 2;
  }

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t max_ = 0;
};

struct Conn {
  int fd = -1;
  size_t sent = 0;      // Bytes of the current message written.
  size_t received = 0;  // Bytes of the current message echoed back.
  uint64_t start_ns = 0;
};

struct Options {
  uint16_t port = 0;
  int connections = 64;
  size_t message_bytes = 64;
  double seconds = 5;
  bool verify = false;
};

struct Result {
  Histogram latency;
  uint64_t messages = 0;
  uint64_t errors = 0;
};

int Connect(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Die("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) Die("connect");
  SetNoDelay(fd);
  const int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  return fd;
}

class Worker {
 public:
  Worker(const Options& options, int connections)
      : options_(options), message_(options.message_bytes), buf_(64 * 1024) {
    for (size_t i = 0; i < message_.size(); ++i) message_[i] = static_cast<char>('a' + i % 26);
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) Die("epoll_create1");
    conns_.resize(connections);
    for (int i = 0; i < connections; ++i) {
      conns_[i].fd = Connect(options.port);
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.u32 = static_cast<uint32_t>(i);
      if (epoll_ctl(epfd_, EPOLL_CTL_ADD, conns_[i].fd, &ev) != 0) Die("epoll_ctl");
    }
  }
  ~Worker() {
    for (Conn& c : conns_) {
      if (c.fd >= 0) close(c.fd);
    }
    close(epfd_);
  }

  // Runs ping-pong on every connection until deadline_ns.
  void Run(uint64_t deadline_ns) {
    for (uint32_t i = 0; i < conns_.size(); ++i) StartMessage(i);
    std::vector<epoll_event> events(std::min<size_t>(conns_.size(), 1024));
    for (;;) {
      const uint64_t now = NowNs();
      if (now >= deadline_ns) return;
      const int timeout_ms = static_cast<int>((deadline_ns - now + 999999) / 1000000);
      const int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), timeout_ms);
      if (n < 0) {
        if (errno == EINTR) continue;
        Die("epoll_wait");
      }
      for (int i = 0; i < n; ++i) {
        const uint32_t index = events[i].data.u32;
        if (conns_[index].fd < 0) continue;
        if (events[i].events & (EPOLLERR | EPOLLHUP)) {
          Fail(index);
          continue;
        }
        if (events[i].events & EPOLLOUT) Write(index);
        if (conns_[index].fd >= 0 && (events[i].events & (EPOLLIN | EPOLLRDHUP))) Read(index);
      }
    }
  }

  Result& result() { return result_; }

 private:
  void StartMessage(uint32_t index) {
    Conn& c = conns_[index];
    c.sent = c.received = 0;
    c.start_ns = NowNs();
    Write(index);
  }

  void Write(uint32_t index) {
    Conn& c = conns_[index];
    while (c.sent < message_.size()) {
      const ssize_t n =
          send(c.fd, message_.data() + c.sent, message_.size() - c.sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) Fail(index);
        return;  // EPOLLOUT's next edge resumes.
      }
      c.sent += n;
    }
  }

  void Read(uint32_t index) {
    Conn& c = conns_[index];
    for (;;) {
      const ssize_t n = recv(c.fd, buf_.data(), buf_.size(), 0);
      if (n == 0) return Fail(index);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) Fail(index);
        return;
      }
      if (c.received + n > c.sent ||
          (options_.verify && std::memcmp(buf_.data(), message_.data() + c.received, n) != 0)) {
        return Fail(index);  // More bytes than sent, or wrong bytes: not an echo.
      }
      c.received += n;
      if (c.received == message_.size()) {
        result_.latency.Add(NowNs() - c.start_ns);
        ++result_.messages;
        StartMessage(index);
        if (c.fd < 0) return;
      }
      // A short read drained the socket; the echo of the next message raises a new edge.
      if (static_cast<size_t>(n) < buf_.size()) return;
    }
  }

  void Fail(uint32_t index) {
    ++result_.errors;
    close(conns_[index].fd);
    conns_[index].fd = -1;
  }

  const Options options_;
  std::vector<char> message_;
  std::vector<char> buf_;
  std::vector<Conn> conns_;
  Result result_;
  int epfd_ = -1;
};

}  // namespace
}  // namespace kev::perf

int main(int argc, char** argv) {
  using namespace kev::perf;
  Flags flags(argc, argv);
  Options options;
  const long long port = flags.Int("--port", 0);
  const long long connections = flags.Int("--connections", 64);
  const long long message_bytes = flags.Int("--message-bytes", 64);
  const double seconds = flags.Double("--seconds", 5);
  const long long threads = flags.Int("--threads", 1);
  options.verify = flags.Bool("--verify");
  flags.CheckAllUsed();
  if (port <= 0 || port > 65535 || connections < 1 || connections > 100000 || message_bytes < 1 ||
      message_bytes > (64 << 20) || !(seconds > 0 && seconds <= 3600) || threads < 1 ||
      threads > 256) {
    std::fprintf(stderr, "fatal: flag out of range (--port is required)\n");
    return 2;
  }
  options.port = static_cast<uint16_t>(port);
  options.connections = static_cast<int>(connections);
  options.message_bytes = static_cast<size_t>(message_bytes);
  options.seconds = seconds;
  const int thread_count = static_cast<int>(std::min(threads, connections));
  RaiseFdLimit();
  signal(SIGPIPE, SIG_IGN);

  // Connect everything first, so the measured window holds only ping-pong.
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < thread_count; ++t) {
    const int share = options.connections / thread_count + (t < options.connections % thread_count);
    workers.push_back(std::make_unique<Worker>(options, share));
  }
  const uint64_t start = NowNs();
  const uint64_t deadline = start + static_cast<uint64_t>(options.seconds * 1e9);
  std::vector<std::thread> pool;
  for (int t = 1; t < thread_count; ++t) {
    pool.emplace_back([&, t] { workers[t]->Run(deadline); });
  }
  workers[0]->Run(deadline);
  for (auto& th : pool) th.join();
  const double elapsed = (NowNs() - start) / 1e9;

  Result total;
  for (auto& w : workers) {
    total.latency.Merge(w->result().latency);
    total.messages += w->result().messages;
    total.errors += w->result().errors;
  }
  auto us = [&](double q) { return total.latency.Quantile(q) / 1000.0; };
  std::printf(
      "{\"tool\":\"echo_load\",\"connections\":%d,\"message_bytes\":%zu,\"threads\":%d,"
      "\"seconds\":%.3f,\"messages\":%llu,\"messages_per_sec\":%.1f,\"p50_us\":%.2f,"
      "\"p90_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f,\"errors\":%llu}\n",
      options.connections, options.message_bytes, thread_count, elapsed,
      static_cast<unsigned long long>(total.messages), total.messages / elapsed, us(0.50), us(0.90),
      us(0.99), us(0.999), total.latency.Max() / 1000.0,
      static_cast<unsigned long long>(total.errors));
  return total.messages > 0 ? 0 : 1;
}
