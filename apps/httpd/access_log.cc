#include "apps/httpd/access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <system_error>
#include <utility>

namespace kev::httpd {
namespace {

// Client-controlled text: printable ASCII except '"' and '\\' as is, the rest as \xHH.
void AppendEscaped(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out->push_back(static_cast<char>(c));
    } else {
      out->append("\\x");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    }
  }
}

void AppendQuotedOrDash(std::optional<std::string_view> v, std::string* out) {
  out->push_back('"');
  if (v && !v->empty()) {
    AppendEscaped(*v, out);
  } else {
    out->push_back('-');
  }
  out->push_back('"');
}

}  // namespace

void AppendAccessLogLine(const AccessLogEntry& e, std::string* out) {
  AppendEscaped(e.peer.empty() ? std::string_view("-") : e.peer, out);
  out->append(" - - [");
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  // Civil date from days (H. Hinnant's algorithm): gmtime_r would take glibc's tz lock,
  // shared by all shards, on every request.
  const int64_t t = e.time < 0 ? 0 : e.time;
  const int64_t secs = t % 86400;
  const int64_t z = t / 86400 + 719468;
  const int64_t era = z / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  const int64_t year = yoe + era * 400 + (month <= 2);
  char date[48];
  std::snprintf(date, sizeof(date), "%02d/%s/%04d:%02d:%02d:%02d +0000", day, kMonths[month - 1],
                static_cast<int>(year), static_cast<int>(secs / 3600),
                static_cast<int>(secs / 60 % 60), static_cast<int>(secs % 60));
  out->append(date);
  out->append("] \"");
  if (e.version_minor >= 0) {
    AppendEscaped(e.method, out);
    out->push_back(' ');
    AppendEscaped(e.target, out);
    out->append(e.version_minor == 0 ? " HTTP/1.0" : " HTTP/1.1");
  } else {
    out->push_back('-');
  }
  out->append("\" ");
  out->append(std::to_string(e.status));
  out->push_back(' ');
  out->append(std::to_string(e.body_bytes));
  out->push_back(' ');
  AppendQuotedOrDash(e.referer, out);
  out->push_back(' ');
  AppendQuotedOrDash(e.user_agent, out);
  out->push_back('\n');
}

std::shared_ptr<AccessLogSink> AccessLogSink::Open(const std::string& path,
                                                   uint64_t max_pending_bytes) {
  if (path == "-") return std::make_shared<AccessLogSink>(STDOUT_FILENO, false, max_pending_bytes);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::system_error(errno, std::system_category(), "open " + path);
  return std::make_shared<AccessLogSink>(fd, true, max_pending_bytes);
}

AccessLogSink::AccessLogSink(int fd, bool owns_fd, uint64_t max_pending_bytes)
    : fd_(fd), owns_fd_(owns_fd), max_pending_bytes_(max_pending_bytes) {
  thread_ = std::thread([this] { Run(); });
}

AccessLogSink::~AccessLogSink() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (owns_fd_) ::close(fd_);
}

bool AccessLogSink::Submit(std::string* buf) {
  if (buf->empty()) return true;
  {
    // Lock held for an append (or a swap), never across I/O.
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.size() + buf->size() > max_pending_bytes_) {
      buf->clear();
      return false;
    }
    if (pending_.empty()) {
      pending_.swap(*buf);  // the common case: hand over the buffer, keep the spare's capacity
      buf->swap(spare_);
      spare_.clear();
    } else {
      pending_.append(*buf);
      buf->clear();
    }
    submitted_ += 1;
  }
  cv_.notify_one();
  return true;
}

void AccessLogSink::Sync() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = submitted_;
  cv_.wait(lock, [&] { return written_ >= target; });
}

uint64_t AccessLogSink::write_errors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return write_errors_;
}

void AccessLogSink::Run() {
  // Process-directed signals (SIGTERM...) belong to the reactor threads, whose handlers feed
  // the kevent SIGNAL origin; this thread never takes them.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::string writing;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !pending_.empty(); });
    if (pending_.empty() && stop_) return;
    writing.swap(pending_);
    const uint64_t batch_end = submitted_;
    lock.unlock();
    bool failed = false;
    for (size_t done = 0; done < writing.size();) {
      ssize_t n = ::write(fd_, writing.data() + done, writing.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        failed = true;  // disk full, EIO...: count it, drop the batch, keep serving
        break;
      }
      done += static_cast<size_t>(n);
    }
    writing.clear();
    lock.lock();
    if (failed) ++write_errors_;
    if (spare_.capacity() < writing.capacity()) spare_.swap(writing);
    written_ = batch_end;
    cv_.notify_all();
  }
}

AccessLog::AccessLog(std::shared_ptr<AccessLogSink> sink, size_t flush_bytes)
    : sink_(std::move(sink)), flush_bytes_(flush_bytes) {
  buf_.reserve(flush_bytes_ + 1024);
}

void AccessLog::Flush() {
  if (buf_.empty() || sink_ == nullptr) return;
  if (!sink_->Submit(&buf_)) dropped_lines_ += lines_;
  lines_ = 0;
}

}  // namespace kev::httpd
