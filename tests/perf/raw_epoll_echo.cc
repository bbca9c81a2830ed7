// raw_epoll_echo: a TCP echo server on plain edge-triggered epoll, the "no framework" baseline
// that kev's echo server is measured against (see tests/perf/README.md).
//
// Each readable edge: recv into the shard's buffer, send it straight back. Only when the socket
// cannot take it all does the rest go to the connection's own pending buffer (allocated once per
// connection, on first need, and reused), and reading stops until EPOLLOUT drained it: the
// server never holds more than one buffer per connection, whatever the client sends.
//
// Usage: raw_epoll_echo [--port N] [--threads N]
//   --port     TCP port on 127.0.0.1; 0 (default) picks a free one.
//   --threads  shared-nothing shards (SO_REUSEPORT), each pinned to one allowed CPU (default 1).
// Prints "listening on PORT" when ready; exits 0 on SIGINT/SIGTERM.
#include <sys/epoll.h>

#include <memory>
#include <vector>

#include "tests/perf/epoll_peer.h"

namespace kev::perf {
namespace {

constexpr size_t kBufferBytes = 64 * 1024;

struct Conn {
  bool open = false;
  std::unique_ptr<char[]> pending;  // kBufferBytes once needed; holds unsent echo bytes.
  size_t pending_off = 0;
  size_t pending_len = 0;
  // A new connection keeps a previous one's pending buffer for reuse.
  void Reset() { pending_off = pending_len = 0; }
};

class Shard : public EpollShard<Shard, Conn> {
 public:
  Shard(int listen_fd, int stop_fd) : EpollShard(listen_fd, stop_fd), buf_(kBufferBytes) {}

  void OnReady(int fd, Conn& c, uint32_t ev) {
    if ((ev & EPOLLOUT) && c.pending_len > 0) {
      if (!FlushPending(fd, c)) return;
      if (c.pending_len == 0) Read(fd, c);  // Reading was paused while bytes were pending.
      return;
    }
    if ((ev & (EPOLLIN | EPOLLRDHUP)) && c.pending_len == 0) Read(fd, c);
  }

 private:
  // Echoes everything readable. Stops (paused) when the client does not read its echoes.
  void Read(int fd, Conn& c) {
    for (;;) {
      const ssize_t n = recv(fd, buf_.data(), buf_.size(), 0);
      if (n == 0) return Close(fd);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) Close(fd);
        return;
      }
      ssize_t sent = send(fd, buf_.data(), n, MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno != EAGAIN && errno != EINTR) return Close(fd);
        sent = 0;
      }
      if (sent < n) {
        // Allocation once per connection lifetime, only for clients that outrun their reads.
        if (!c.pending) c.pending = std::make_unique<char[]>(kBufferBytes);
        std::memcpy(c.pending.get(), buf_.data() + sent, n - sent);
        c.pending_off = 0;
        c.pending_len = n - sent;
        return;  // Paused until EPOLLOUT drains pending.
      }
      // A short read drained the socket; the next arrival raises a new edge.
      if (static_cast<size_t>(n) < buf_.size()) return;
    }
  }

  // Sends pending bytes. Returns false if the connection closed.
  bool FlushPending(int fd, Conn& c) {
    while (c.pending_len > 0) {
      const ssize_t n = send(fd, c.pending.get() + c.pending_off, c.pending_len, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return true;
        Close(fd);
        return false;
      }
      c.pending_off += n;
      c.pending_len -= n;
    }
    return true;
  }

  std::vector<char> buf_;
};

}  // namespace
}  // namespace kev::perf

int main(int argc, char** argv) {
  kev::perf::Flags flags(argc, argv);
  const long long port = flags.Int("--port", 0);
  const long long threads = flags.Int("--threads", 1);
  flags.CheckAllUsed();
  if (port < 0 || port > 65535 || threads < 1 || threads > 256) {
    std::fprintf(stderr, "fatal: flag out of range\n");
    return 2;
  }
  return kev::perf::RunShards(
      static_cast<uint16_t>(port), static_cast<int>(threads),
      [](int listen_fd, int stop_fd) { kev::perf::Shard(listen_fd, stop_fd).Run(); });
}
