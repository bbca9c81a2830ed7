// The access log: Combined Log Format lines, buffered per shard and written by a background
// thread, so a slow disk never stalls a reactor.
//
// Each shard owns an AccessLog. Append() formats one line into the shard's buffer (no lock, no
// syscall). When the buffer passes `flush_bytes`, or when the server calls Flush() (once a
// second from a timer, and at shutdown), the buffer is handed to the writer thread with one
// short mutex section (a pointer swap, never held across I/O). If the writer has fallen more than
// `max_pending_bytes` behind, the handed-over lines are dropped and counted instead: logging
// must never apply backpressure to serving. The writer write(2)s whole buffers to a file
// opened with O_APPEND, so lines from several shards never interleave mid-line.
//
// Line format (Combined Log Format, UTC):
//   127.0.0.1 - - [15/Jun/2025:15:06:40 +0000] "GET /index.html HTTP/1.1" 200 1399 "-" "curl/8"
// Request line, Referer and User-Agent are client bytes: '"', '\\', control and non-ASCII bytes
// are written as \xHH, so a client cannot forge lines or terminal escapes.
//
// Example:
//   auto sink = AccessLogSink::Open("/var/log/kev-access.log");   // shared by the shards
//   AccessLog log(sink);                                           // one per shard
//   log.Append({.peer = "127.0.0.1", .time = now, .method = "GET", ...});
//
// Threading: AccessLogSink is thread-safe (shared by all shards); an AccessLog belongs to one
// shard.

#ifndef KEV_APPS_HTTPD_ACCESS_LOG_H_
#define KEV_APPS_HTTPD_ACCESS_LOG_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace kev::httpd {

struct AccessLogEntry {
  std::string_view peer;  // client address without port
  int64_t time = 0;       // Unix seconds
  std::string_view method;
  std::string_view target;
  int version_minor = 1;  // HTTP/1.x; < 0 when the request line was not parsed
  int status = 0;
  uint64_t body_bytes = 0;
  std::optional<std::string_view> referer;
  std::optional<std::string_view> user_agent;
};

// Appends one Combined Log Format line (with '\n') for `e` to `*out`.
void AppendAccessLogLine(const AccessLogEntry& e, std::string* out);

// The shared destination: a file and the thread writing to it.
class AccessLogSink {
 public:
  // Opens (creates, appends to) `path`; "-" means standard output. Throws std::system_error.
  static std::shared_ptr<AccessLogSink> Open(const std::string& path,
                                             uint64_t max_pending_bytes = 8 << 20);
  ~AccessLogSink();  // writes what is pending, then joins the thread

  // Queues `*buf` for writing and leaves `*buf` empty (its capacity may be swapped with a
  // written buffer's). Returns false, dropping the bytes, if more than max_pending_bytes are
  // already waiting. Any thread.
  bool Submit(std::string* buf);
  // Blocks until everything submitted so far is written (tests and shutdown only).
  void Sync();
  uint64_t write_errors() const;

  AccessLogSink(int fd, bool owns_fd, uint64_t max_pending_bytes);  // use Open()

 private:
  void Run();

  const int fd_;
  const bool owns_fd_;
  const uint64_t max_pending_bytes_;
  mutable std::mutex mu_;  // guards the fields below; held only to swap buffers
  std::condition_variable cv_;
  std::string pending_;
  std::string spare_;  // a written buffer, kept for its capacity
  uint64_t submitted_ = 0, written_ = 0, write_errors_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

// One shard's buffer in front of a sink.
class AccessLog {
 public:
  explicit AccessLog(std::shared_ptr<AccessLogSink> sink, size_t flush_bytes = 32 << 10);
  ~AccessLog() { Flush(); }
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Formats `e` into the shard's buffer; hands the buffer over once it is flush_bytes long.
  void Append(const AccessLogEntry& e) {
    AppendAccessLogLine(e, &buf_);
    ++lines_;
    if (buf_.size() >= flush_bytes_) Flush();
  }
  // Hands the buffer to the sink (no-op when empty).
  void Flush();
  // Lines dropped so far because the sink was full.
  uint64_t dropped_lines() const { return dropped_lines_; }

 private:
  std::shared_ptr<AccessLogSink> sink_;
  size_t flush_bytes_;
  std::string buf_;
  uint64_t lines_ = 0;  // lines in buf_
  uint64_t dropped_lines_ = 0;
};

}  // namespace kev::httpd

#endif  // KEV_APPS_HTTPD_ACCESS_LOG_H_
