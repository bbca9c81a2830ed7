// echo_load: a ping-pong load generator for TCP echo servers, on plain io_uring or plain epoll
// (not kev, so the load side is the same whichever server is measured).
//
// Each connection keeps exactly one message in flight: send --message-bytes, wait until as many
// bytes came back, record the round-trip time, send the next. Runs --seconds, then prints one
// JSON line:
//   {"tool":"echo_load","engine":"epoll","connections":64,"message_bytes":64,"threads":1,
//    "seconds":5.000,"messages":812345,"messages_per_sec":162469.0,"p50_us":..,"p90_us":..,
//    "p99_us":..,"p999_us":..,"max_us":..,"errors":0}
// Latencies come from a log-linear histogram (1/64 relative resolution, no allocation per
// sample). Messages still in flight at the deadline are not counted.
//
// Engines (--engine):
//   epoll (default): edge-triggered epoll with send(2)/recv(2) per message, the classic loop.
//   io_uring: per message one send and one recv SQE, submitted together; every ready
//     connection of a loop iteration is answered with one io_uring_enter.
// Why two: ping-pong throughput is capped by whichever side saturates its core first, so the
// client's cost per message matters as much as the server's. Measured on the 2-core benchmark
// machine against raw_epoll_echo, both engines cost the client about 4 us of CPU per message
// (the loopback TCP path dominates, not the syscalls), so bench.py keeps the classic epoll one.
//
// Usage: echo_load --port N [--connections 64] [--message-bytes 64] [--seconds 5.0]
//                  [--threads 1] [--engine epoll|io_uring] [--verify]
//   --threads  load threads, connections split between them (pin the process with taskset).
//   --verify   compare every echoed byte with what was sent (costs a memcmp per read).
// Only 127.0.0.1. Exit status 1 if a connection cannot be made or no message completed.
#include <fcntl.h>
#include <liburing.h>
#include <sys/epoll.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <array>
#include <bit>
#include <memory>
#include <string>
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

// One load thread's connections and loop. Run() drives ping-pong until the deadline.
class Worker {
 public:
  virtual ~Worker() = default;
  virtual void Run(uint64_t deadline_ns) = 0;
  Result& result() { return result_; }

 protected:
  Result result_;
};

class EpollWorker final : public Worker {
 public:
  EpollWorker(const Options& options, int connections)
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
  ~EpollWorker() override {
    for (Conn& c : conns_) {
      if (c.fd >= 0) close(c.fd);
    }
    close(epfd_);
  }

  // Runs ping-pong on every connection until deadline_ns.
  void Run(uint64_t deadline_ns) override {
    for (uint32_t i = 0; i < conns_.size(); ++i) StartMessage(i);
    std::vector<epoll_event> events(std::min<size_t>(conns_.size(), 1024));
    for (;;) {
      const uint64_t now = NowNs();
      if (now >= deadline_ns) return;
      const int timeout_ms = static_cast<int>((deadline_ns - now + 999999) / 1000000);
      const int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()),
                               timeout_ms);
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
  int epfd_ = -1;
};

// The io_uring engine. Per connection at most one send and one recv are in flight; a message
// starts with both submitted at once (the recv waits for the echo), and the loop reaps every
// completion, queues the follow-ups and submits them with the next wait in one io_uring_enter.
class UringWorker final : public Worker {
 public:
  UringWorker(const Options& options, int connections)
      : options_(options), message_(options.message_bytes) {
    for (size_t i = 0; i < message_.size(); ++i) message_[i] = static_cast<char>('a' + i % 26);
    // Receive buffers: one per connection (recvs of different connections are in flight at
    // once), at most 64 KiB each; a larger message arrives in several recvs.
    chunk_ = std::min<size_t>(std::max<size_t>(message_.size(), 4096), 64 * 1024);
    buffers_.resize(chunk_ * connections);
    conns_.resize(connections);
    for (int i = 0; i < connections; ++i) conns_[i].fd = Connect(options.port);
    live_ = conns_.size();
  }
  ~UringWorker() override {
    if (ring_ready_) io_uring_queue_exit(&ring_);  // Cancels what is in flight first.
    for (Conn& c : conns_) {
      if (c.fd >= 0) close(c.fd);
    }
    for (int fd : failed_fds_) close(fd);
  }

  void Run(uint64_t deadline_ns) override {
    InitRing();
    for (uint32_t i = 0; i < conns_.size(); ++i) StartMessage(i);
    for (;;) {
      const uint64_t now = NowNs();
      if (now >= deadline_ns || live_ == 0) return;
      __kernel_timespec timeout{};
      timeout.tv_sec = static_cast<int64_t>((deadline_ns - now) / 1000000000ull);
      timeout.tv_nsec = static_cast<int64_t>((deadline_ns - now) % 1000000000ull);
      io_uring_cqe* cqe = nullptr;
      const int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &timeout, nullptr);
      if (rc < 0 && rc != -ETIME && rc != -EINTR) {
        errno = -rc;
        Die("io_uring_submit_and_wait_timeout");
      }
      unsigned head;
      unsigned seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        OnCompletion(cqe->user_data, cqe->res);
      }
      io_uring_cq_advance(&ring_, seen);
    }
  }

 private:
  // Created on the thread that runs the loop: SINGLE_ISSUER rings reject other submitters.
  void InitRing() {
    const unsigned connections = static_cast<unsigned>(conns_.size());
    // Two operations per connection can be in flight; the SQ is flushed when full (Sqe()) and
    // CQEs beyond the CQ wait in the kernel's overflow list (IORING_FEAT_NODROP), so the ring
    // is capped at 4,096 entries (the kernel's limit is 32,768) instead of failing.
    const unsigned entries = std::clamp(std::bit_ceil(2u * connections), 8u, 4096u);
    io_uring_params params{};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    params.cq_entries = 2 * entries;
    params.flags |= IORING_SETUP_CQSIZE;
    if (io_uring_queue_init_params(entries, &ring_, &params) != 0) {
      params = {};  // Older kernels: no DEFER_TASKRUN.
      params.cq_entries = 2 * entries;
      params.flags = IORING_SETUP_CQSIZE;
      const int rc = io_uring_queue_init_params(entries, &ring_, &params);
      if (rc != 0) {
        errno = -rc;
        Die("io_uring_queue_init_params");
      }
    }
    ring_ready_ = true;
  }

  // user_data: connection index << 1 | (1 for a recv).
  static constexpr uint64_t kRecvBit = 1;

  io_uring_sqe* Sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {  // SQ full: flush it (at most 2 per connection, so rarely).
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
      if (sqe == nullptr) Die("io_uring_get_sqe");
    }
    return sqe;
  }

  void StartMessage(uint32_t index) {
    Conn& c = conns_[index];
    c.sent = c.received = 0;
    c.start_ns = NowNs();
    SubmitSend(index);
    SubmitRecv(index);
  }

  void SubmitSend(uint32_t index) {
    Conn& c = conns_[index];
    io_uring_sqe* sqe = Sqe();
    io_uring_prep_send(sqe, c.fd, message_.data() + c.sent, message_.size() - c.sent,
                       MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, static_cast<uint64_t>(index) << 1);
  }

  void SubmitRecv(uint32_t index) {
    Conn& c = conns_[index];
    io_uring_sqe* sqe = Sqe();
    io_uring_prep_recv(sqe, c.fd, buffers_.data() + chunk_ * index, chunk_, 0);
    io_uring_sqe_set_data64(sqe, static_cast<uint64_t>(index) << 1 | kRecvBit);
  }

  void OnCompletion(uint64_t data, int32_t res) {
    const uint32_t index = static_cast<uint32_t>(data >> 1);
    Conn& c = conns_[index];
    if (c.fd < 0) return;  // Failed already; this is the other operation's completion.
    if (res == -EINTR || res == -EAGAIN) {
      (data & kRecvBit) ? SubmitRecv(index) : SubmitSend(index);
      return;
    }
    if (res <= 0) return Fail(index);  // Error, or end of stream on a recv.
    if ((data & kRecvBit) == 0) {
      c.sent += static_cast<size_t>(res);
      if (c.sent < message_.size()) SubmitSend(index);  // Short send: the rest.
      return;
    }
    const char* got = buffers_.data() + chunk_ * index;
    if (c.received + res > c.sent ||
        (options_.verify && std::memcmp(got, message_.data() + c.received, res) != 0)) {
      return Fail(index);  // More bytes than sent, or wrong bytes: not an echo.
    }
    c.received += static_cast<size_t>(res);
    if (c.received < message_.size()) return SubmitRecv(index);
    result_.latency.Add(NowNs() - c.start_ns);
    ++result_.messages;
    StartMessage(index);
  }

  void Fail(uint32_t index) {
    ++result_.errors;
    // Shut down rather than close: the other operation may still be in flight on the fd, and
    // its number must not be reused under it. shutdown completes it; the fd closes at exit.
    shutdown(conns_[index].fd, SHUT_RDWR);
    failed_fds_.push_back(conns_[index].fd);
    conns_[index].fd = -1;
    --live_;
  }

  const Options options_;
  std::vector<char> message_;
  size_t chunk_ = 0;
  std::vector<char> buffers_;
  std::vector<Conn> conns_;
  std::vector<int> failed_fds_;
  size_t live_ = 0;
  io_uring ring_{};
  bool ring_ready_ = false;
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
  const std::string engine = flags.String("--engine", "epoll");
  options.verify = flags.Bool("--verify");
  flags.CheckAllUsed();
  if (port <= 0 || port > 65535 || connections < 1 || connections > 100000 || message_bytes < 1 ||
      message_bytes > (64 << 20) || !(seconds > 0 && seconds <= 3600) || threads < 1 ||
      threads > 256) {
    std::fprintf(stderr, "fatal: flag out of range (--port is required)\n");
    return 2;
  }
  if (engine != "io_uring" && engine != "epoll") {
    std::fprintf(stderr, "fatal: --engine must be io_uring or epoll, not '%s'\n", engine.c_str());
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
    if (engine == "epoll") {
      workers.push_back(std::make_unique<EpollWorker>(options, share));
    } else {
      workers.push_back(std::make_unique<UringWorker>(options, share));
    }
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
      "{\"tool\":\"echo_load\",\"engine\":\"%s\",\"connections\":%d,\"message_bytes\":%zu,\"threads\":%d,"
      "\"seconds\":%.3f,\"messages\":%llu,\"messages_per_sec\":%.1f,\"p50_us\":%.2f,"
      "\"p90_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f,\"errors\":%llu}\n",
      engine.c_str(), options.connections, options.message_bytes, thread_count, elapsed,
      static_cast<unsigned long long>(total.messages), total.messages / elapsed, us(0.50), us(0.90),
      us(0.99), us(0.999), total.latency.Max() / 1000.0,
      static_cast<unsigned long long>(total.errors));
  return total.messages > 0 ? 0 : 1;
}
