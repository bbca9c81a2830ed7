// raw_epoll_http: the fastest HTTP/1.1 responder plain edge-triggered epoll allows, used as the
// "no framework" baseline that kev's httpd is measured against (see tests/perf/README.md).
//
// Every request gets the same fixed 200 response (default body "Hello, world!\n", 14 bytes).
// Requests are counted, not parsed: each "\r\n\r\n" ends one request (GET/HEAD without a body,
// which is all wrk sends). Keep-alive always; pipelining by answering all requests of a read in
// one send. No allocation per request: responses come from one prebuilt buffer holding several
// copies of the response back to back, so k pipelined responses are one contiguous slice.
//
// Usage: raw_epoll_http [--port N] [--body-bytes N] [--threads N]
//   --port        TCP port on 127.0.0.1; 0 (default) picks a free one.
//   --body-bytes  body size; the body repeats "Hello, world!\n" (default 14).
//   --threads     shared-nothing shards (SO_REUSEPORT), each pinned to one allowed CPU (default 1).
// Prints "listening on PORT" when ready; exits 0 on SIGINT/SIGTERM.
#include <sys/epoll.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/perf/epoll_peer.h"

namespace kev::perf {
namespace {

constexpr size_t kReadBufferBytes = 64 * 1024;
// Prebuilt response copies: enough for a deep pipeline of small responses in one send, capped
// so large bodies keep one copy.
constexpr size_t kBatchBytes = 256 * 1024;
constexpr size_t kMaxCopies = 256;
// Stop reading a connection that owes more than this (a client pipelining without reading).
constexpr uint64_t kMaxOwedBytes = 8 * 1024 * 1024;

// The response stream: `copies` responses back to back. Sending from any offset inside the first
// copy for up to size() - offset bytes is a valid continuation of the stream.
struct ResponseBatch {
  std::string bytes;
  size_t one = 0;  // Size of one response.

  static ResponseBatch Make(size_t body_bytes) {
    static constexpr char kHello[] = "Hello, world!\n";
    std::string body;
    body.reserve(body_bytes);
    while (body.size() < body_bytes) body += kHello;
    body.resize(body_bytes);
    std::string response =
        "HTTP/1.1 200 OK\r\nServer: raw_epoll_http\r\n"
        "Content-Type: text/plain\r\nContent-Length: " +
        std::to_string(body_bytes) + "\r\n\r\n" + body;
    ResponseBatch batch;
    batch.one = response.size();
    const size_t copies = std::clamp<size_t>(kBatchBytes / batch.one, 1, kMaxCopies);
    batch.bytes.reserve(copies * batch.one);
    for (size_t i = 0; i < copies; ++i) batch.bytes += response;
    return batch;
  }
};

// Counts complete requests ("\r\n\r\n" terminators) in [p, end). `state` carries how much of the
// terminator the previous read ended with, so terminators split across reads count once.
inline uint64_t CountRequests(const char* p, const char* end, uint8_t* state) {
  uint64_t n = 0;
  uint8_t s = *state;
  while (p < end) {
    if (s == 0) {  // Skip to the next '\r' with memchr: most bytes are not part of a terminator.
      p = static_cast<const char*>(std::memchr(p, '\r', end - p));
      if (p == nullptr) break;
      ++p;
      s = 1;
      continue;
    }
    const char c = *p++;
    if (c == '\r') {
      s = (s == 2) ? 3 : 1;
    } else if (c == '\n' && (s == 1 || s == 3)) {
      if (s == 3) {
        ++n;
        s = 0;
      } else {
        s = 2;
      }
    } else {
      s = 0;
    }
  }
  *state = s;
  return n;
}

struct Conn {
  bool open = false;
  bool read_paused = false;  // Stopped reading because too many response bytes are owed.
  uint8_t match = 0;         // CountRequests state.
  size_t offset = 0;         // Offset of the next byte to send within one response.
  uint64_t owed = 0;         // Response bytes not yet sent.
  void Reset() { *this = Conn{}; }
};

class Shard : public EpollShard<Shard, Conn> {
 public:
  Shard(int listen_fd, int stop_fd, const ResponseBatch& batch)
      : EpollShard(listen_fd, stop_fd), batch_(batch), buf_(kReadBufferBytes) {}

  void OnReady(int fd, Conn& c, uint32_t ev) {
    if ((ev & EPOLLOUT) && c.owed > 0) {
      if (!Flush(fd, c)) return;
      if (c.owed == 0 && c.read_paused) Read(fd, c);
      if (!c.open) return;
    }
    if ((ev & (EPOLLIN | EPOLLRDHUP)) && !c.read_paused) Read(fd, c);
  }

 private:
  // Reads everything available, counts requests, answers them with one send. Closes on EOF.
  void Read(int fd, Conn& c) {
    c.read_paused = false;
    for (;;) {
      const ssize_t n = recv(fd, buf_.data(), buf_.size(), 0);
      if (n > 0) {
        c.owed += CountRequests(buf_.data(), buf_.data() + n, &c.match) * batch_.one;
        // A short read drained the socket; the next arrival raises a new edge, so no EAGAIN
        // round trip is needed.
        if (static_cast<size_t>(n) < buf_.size()) break;
        if (c.owed > kMaxOwedBytes) {  // Deep pipeline: answer before reading on.
          if (!Flush(fd, c)) return;
          if (c.owed > 0) {  // The client is not reading; EPOLLOUT resumes us.
            c.read_paused = true;
            return;
          }
        }
        continue;
      }
      if (n == 0) return Close(fd);
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      return Close(fd);
    }
    if (c.owed > 0) Flush(fd, c);
  }

  // Sends owed response bytes until done or EAGAIN. Returns false if the connection closed.
  bool Flush(int fd, Conn& c) {
    while (c.owed > 0) {
      const size_t len = std::min<uint64_t>(c.owed, batch_.bytes.size() - c.offset);
      const ssize_t n = send(fd, batch_.bytes.data() + c.offset, len, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return true;  // EPOLLOUT's next edge resumes.
        Close(fd);
        return false;
      }
      c.owed -= n;
      c.offset = (c.offset + n) % batch_.one;
    }
    return true;
  }

  const ResponseBatch& batch_;
  std::vector<char> buf_;
};

}  // namespace
}  // namespace kev::perf

int main(int argc, char** argv) {
  kev::perf::Flags flags(argc, argv);
  const long long port = flags.Int("--port", 0);
  const long long body_bytes = flags.Int("--body-bytes", 14);
  const long long threads = flags.Int("--threads", 1);
  flags.CheckAllUsed();
  if (port < 0 || port > 65535 || body_bytes < 0 || body_bytes > (1LL << 30) || threads < 1 ||
      threads > 256) {
    std::fprintf(stderr, "fatal: flag out of range\n");
    return 2;
  }
  const auto batch = kev::perf::ResponseBatch::Make(static_cast<size_t>(body_bytes));
  return kev::perf::RunShards(
      static_cast<uint16_t>(port), static_cast<int>(threads),
      [&](int listen_fd, int stop_fd) { kev::perf::Shard(listen_fd, stop_fd, batch).Run(); });
}
