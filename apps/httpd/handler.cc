#include "apps/httpd/handler.h"

#include <errno.h>
#include <fcntl.h>

#include <charconv>
#include <memory>
#include <utility>

#include "apps/httpd/http_headers.h"
#include "apps/httpd/mime.h"
#include "apps/httpd/path.h"

namespace kev::httpd {
namespace {

constexpr std::string_view kServerLine = "Server: kev\r\n";
constexpr int kOpenFlags = O_RDONLY | O_NONBLOCK | O_NOCTTY;  // O_NONBLOCK: a FIFO never blocks

void AppendNumber(uint64_t n, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), n);
  out->append(buf, end);
}

void AppendField(std::string_view name, std::string_view value, std::string* out) {
  out->append(name);
  out->append(": ");
  out->append(value);
  out->append("\r\n");
}

void AppendLength(uint64_t n, std::string* out) {
  out->append("Content-Length: ");
  AppendNumber(n, out);
  out->append("\r\n");
}

int64_t MtimeSeconds(int64_t mtime_ns) {
  return mtime_ns >= 0 ? mtime_ns / 1000000000 : -((-mtime_ns + 999999999) / 1000000000);
}

// Reads the whole of a small file into `*content`. False if it changed size under us.
bool ReadAll(int fd, uint64_t size, std::string* content) {
  content->resize(size);
  uint64_t done = 0;
  while (done < size) {
    // Blocking read on the shard: bounded by max_file_bytes and only on a cache fill.
    ssize_t n = ::pread(fd, content->data() + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<uint64_t>(n);
  }
  return true;
}

}  // namespace

void AppendUrlPath(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : s) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
    if (keep) {
      out->push_back(static_cast<char>(c));
    } else {
      out->push_back('%');
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    }
  }
}

void AppendHtmlEscaped(std::string_view s, std::string* out) {
  for (char c : s) {
    switch (c) {
      case '&':
        out->append("&amp;");
        break;
      case '<':
        out->append("&lt;");
        break;
      case '>':
        out->append("&gt;");
        break;
      case '"':
        out->append("&quot;");
        break;
      case '\'':
        out->append("&#39;");
        break;
      default:
        out->push_back(c);
    }
  }
}

Handler::Handler(const HandlerOptions& options, FileCache* cache)
    : options_(options), cache_(cache), plans_(new PlanLease::Counter{.cache = cache}) {}

Handler::~Handler() {
  plans_->cache = nullptr;  // plans still alive must not touch the cache any more
  PlanLease::Release(plans_);
}

std::string_view Handler::DateLine(int64_t now) {
  if (now != date_sec_) {  // once per second: the formatted date is shared by all responses
    date_sec_ = now;
    date_line_.assign("Date: ");
    date_line_.append(FormatHttpDate(now).view());
    date_line_.append("\r\n");
  }
  return date_line_;
}

void Handler::AppendStatusLine(int status, std::string* out) {
  out->append("HTTP/1.1 ");
  AppendNumber(static_cast<uint64_t>(status), out);
  out->push_back(' ');
  out->append(ReasonPhrase(status));
  out->append("\r\n");
  out->append(kServerLine);
  out->append(DateLine(now_));
}

void Handler::AppendConnectionAndEnd(const ResponsePlan& plan, std::string* out) {
  if (!plan.keep_alive) {
    out->append("Connection: close\r\n\r\n");
  } else if (minor_ == 0) {  // HTTP/1.0 keep-alive must be echoed
    out->append("Connection: keep-alive\r\n\r\n");
  } else {
    out->append("\r\n");
  }
}

void Handler::Error(int status, std::string* out, ResponsePlan* plan,
                    std::string_view extra_headers) {
  plan->status = status;
  plan->file.Reset();
  // Errors that leave the request stream in doubt close the connection.
  if (status == 400 || status >= 500) plan->keep_alive = false;
  std::string_view reason = ReasonPhrase(status);
  // "<html>...<h1>404 Not Found</h1>...": tiny, fixed, no user input echoed.
  char code[4] = {static_cast<char>('0' + status / 100), static_cast<char>('0' + status / 10 % 10),
                  static_cast<char>('0' + status % 10), 0};
  const std::string_view open = "<!DOCTYPE html>\n<html><head><title>";
  const std::string_view mid = "</title></head><body><h1>";
  const std::string_view close = "</h1></body></html>\n";
  const uint64_t length = open.size() + mid.size() + close.size() + 2 * (4 + reason.size());
  AppendStatusLine(status, out);
  out->append("Content-Type: text/html; charset=utf-8\r\n");
  AppendLength(length, out);
  out->append(extra_headers);
  AppendConnectionAndEnd(*plan, out);
  if (plan->head_only) return;
  plan->body_bytes = length;
  out->append(open);
  out->append(code, 3);
  out->push_back(' ');
  out->append(reason);
  out->append(mid);
  out->append(code, 3);
  out->push_back(' ');
  out->append(reason);
  out->append(close);
}

void Handler::HandleParseError(int status, int64_t now, std::string* out, ResponsePlan* plan) {
  plan->Clear();
  plan->lease.Attach(plans_);  // once per plan: a pointer compare afterwards
  now_ = now;
  minor_ = 1;
  plan->keep_alive = false;
  Error(status, out, plan);
}

void Handler::AppendPage(std::string_view content_type, std::string_view body, int64_t now,
                         std::string* out, ResponsePlan* plan) {
  now_ = now;
  plan->status = 200;
  plan->special = Special::kNone;
  AppendStatusLine(200, out);
  AppendField("Content-Type", content_type, out);
  AppendLength(body.size(), out);
  out->append("Cache-Control: no-store\r\n");
  AppendConnectionAndEnd(*plan, out);
  if (plan->head_only) return;
  plan->body_bytes = body.size();
  out->append(body);
}

void Handler::Handle(const RequestParser& req, int64_t now, bool allow_keep_alive, std::string* out,
                     ResponsePlan* plan) {
  plan->Clear();
  plan->lease.Attach(plans_);  // once per plan: a pointer compare afterwards
  now_ = now;
  minor_ = req.version_minor();
  plan->keep_alive = allow_keep_alive && req.keep_alive();
  const Method method = req.method();
  plan->head_only = method == Method::kHead;
  if (method != Method::kGet && method != Method::kHead) {
    if (method == Method::kOther) return Error(501, out, plan);
    return Error(405, out, plan, "Allow: GET, HEAD\r\n");
  }
  const TargetPath t = NormalizeTarget(req.target(), /*is_options=*/false, &rel_);
  if (t.status != 0) return Error(t.status, out, plan);
  if ((options_.metrics && rel_ == "_kev/metrics") ||
      (options_.status_page && rel_ == "_kev/status")) {
    plan->special = rel_ == "_kev/metrics" ? Special::kMetrics : Special::kStatus;
    return;
  }
  const bool dir_syntax = t.trailing_slash || rel_.empty();
  if (cache_ != nullptr) {
    key_.assign(rel_);
    if (dir_syntax) key_.push_back('/');
    if (const CachedFile* f = cache_->Lookup(options_.root_fd, key_)) {
      plan->cache_hit = true;
      return ServeCached(req, *f, out, plan);
    }
  }
  UniqueFd fd(OpenBeneath(options_.root_fd, rel_, kOpenFlags));
  if (!fd.valid()) return Error(StatusForOpenError(-fd.get()), out, plan);
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return Error(500, out, plan);
  if (S_ISDIR(st.st_mode)) {
    if (!dir_syntax) {
      // "/dir" → "/dir/", so relative links inside the index resolve against the directory.
      std::string location = "Location: /";
      AppendUrlPath(rel_, &location);
      location.push_back('/');
      if (!t.query.empty()) {
        location.push_back('?');
        location.append(t.query);  // already valid target characters
      }
      location.append("\r\n");
      return Error(301, out, plan, location);
    }
    return ServeDirectory(req, fd.get(), rel_, out, plan);
  }
  if (!S_ISREG(st.st_mode)) return Error(403, out, plan);  // FIFOs, devices, sockets
  if (dir_syntax) return Error(404, out, plan);            // "/file.txt/"
  ServeFile(req, std::move(fd), st, rel_, out, plan);
}

void Handler::ServeDirectory(const RequestParser& req, int dir_fd, const std::string& rel,
                             std::string* out, ResponsePlan* plan) {
  std::string index = rel.empty() ? std::string("index.html") : rel + "/index.html";
  // Beneath the root, not the directory: an index symlink to a sibling stays legal.
  UniqueFd fd(OpenBeneath(options_.root_fd, index, kOpenFlags));
  struct stat st;
  if (fd.valid() && fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode)) {
    return ServeFile(req, std::move(fd), st, index, out, plan);
  }
  const int err = fd.valid() ? 0 : -fd.get();
  if (!options_.autoindex || (err != ENOENT && err != 0)) {
    return Error(err == ENOENT || err == 0 ? 403 : StatusForOpenError(err), out, plan);
  }
  std::string url = "/";
  url.append(rel);
  if (!rel.empty()) url.push_back('/');
  std::string html;
  if (!RenderDirectoryListing(dir_fd, url, &html)) return Error(403, out, plan);
  plan->status = 200;
  AppendStatusLine(200, out);
  out->append("Content-Type: text/html; charset=utf-8\r\n");
  AppendLength(html.size(), out);
  out->append("Cache-Control: no-cache\r\n");
  AppendConnectionAndEnd(*plan, out);
  if (plan->head_only) return;
  plan->body_bytes = html.size();
  out->append(html);
}

int Handler::Evaluate(const RequestParser& req, std::string_view etag, int64_t mtime_sec,
                      uint64_t size, uint64_t* first, uint64_t* length) {
  if (IsNotModified(req.if_none_match(), req.if_modified_since(), etag, mtime_sec, now_)) {
    return 304;
  }
  *first = 0;
  *length = size;
  // Range is defined for GET only (RFC 9110 §14.2); HEAD gets the 200 head.
  if (req.method() != Method::kGet || !req.range()) return 200;
  if (auto if_range = req.Find("If-Range")) {
    // If-Range: a strong ETag must match exactly, a date must equal Last-Modified; otherwise
    // the whole representation is sent (RFC 9110 §13.1.5).
    bool match;
    if (!if_range->empty() && (if_range->front() == '"' || if_range->starts_with("W/"))) {
      match = *if_range == etag;
    } else {
      auto date = ParseHttpDate(*if_range, now_);
      match = date && *date == mtime_sec;
    }
    if (!match) return 200;
  }
  ByteRange r;
  switch (ParseRange(*req.range(), size, &r)) {
    case RangeStatus::kIgnore:
      return 200;
    case RangeStatus::kUnsatisfiable:
      return 416;
    case RangeStatus::kSatisfiable:
      *first = r.first;
      *length = r.length();
      return 206;
  }
  return 200;
}

void Handler::ServeFile(const RequestParser& req, UniqueFd fd, const struct stat& st,
                        std::string_view resolved, std::string* out, ResponsePlan* plan) {
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const int64_t mtime_ns =
      static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  const std::string_view type = MimeTypeForPath(resolved);
  const bool by_content = cache_ != nullptr && cache_->Eligible(size);
  SharedFd shared;  // the open file, when it goes into the cache as such
  if (by_content || (cache_ != nullptr && cache_->KeepsFilesOpen())) {
    auto f = std::make_unique<CachedFile>();  // once per cache fill, not per hit
    if (by_content ? ReadAll(fd.get(), size, &f->content) : true) {
      if (!by_content) {
        shared = SharedFd::Adopt(fd.Release());
        f->fd = shared;
      }
      SetIdentity(st, f.get());
      f->resolved.assign(resolved);
      f->etag.assign(MakeETag(size, mtime_ns, st.st_ino).view());
      f->last_modified.assign(FormatHttpDate(st.st_mtim.tv_sec).view());
      f->content_type = type;
      std::string& h = f->head_200;
      h.append("HTTP/1.1 200 OK\r\n");
      h.append(kServerLine);
      AppendField("Content-Type", type, &h);
      AppendLength(size, &h);
      AppendField("Last-Modified", f->last_modified, &h);
      AppendField("ETag", f->etag, &h);
      h.append("Accept-Ranges: bytes\r\nX-Content-Type-Options: nosniff\r\n");
      if (const CachedFile* stored = cache_->Insert(key_, std::move(f))) {
        return ServeCached(req, *stored, out, plan);
      }
      // Refused: served below from `shared` (or `fd`), which closes once the plan is done.
    }
  }
  const SmallString<64> etag = MakeETag(size, mtime_ns, st.st_ino);
  const SmallString<kHttpDateLength> last_modified = FormatHttpDate(st.st_mtim.tv_sec);
  uint64_t first = 0, length = 0;
  const int status = Evaluate(req, etag.view(), st.st_mtim.tv_sec, size, &first, &length);
  if (status == 416) {
    std::string cr = "Content-Range: ";
    cr.append(FormatUnsatisfiedRange(size).view());
    cr.append("\r\n");
    return Error(416, out, plan, cr);
  }
  plan->status = status;
  AppendStatusLine(status, out);
  if (status != 304) {
    AppendField("Content-Type", type, out);
    AppendLength(length, out);
    if (status == 206) {
      AppendField("Content-Range", FormatContentRange({first, first + length - 1}, size).view(),
                  out);
    }
    out->append("Accept-Ranges: bytes\r\nX-Content-Type-Options: nosniff\r\n");
  }
  AppendField("Last-Modified", last_modified.view(), out);
  AppendField("ETag", etag.view(), out);
  AppendConnectionAndEnd(*plan, out);
  if (plan->head_only || status == 304 || length == 0) return;
  plan->body_bytes = length;
  if (shared.valid()) {
    plan->file = std::move(shared);
  } else {
    plan->file = std::move(fd);
  }
  plan->file_offset = first;
  plan->file_length = length;
}

void Handler::ServeCached(const RequestParser& req, const CachedFile& f, std::string* out,
                          ResponsePlan* plan) {
  uint64_t first = 0, length = 0;
  const int status = Evaluate(req, f.etag, MtimeSeconds(f.mtime_ns), f.size, &first, &length);
  plan->status = status;
  if (status == 200) {
    // The hot path: pre-rendered head + Date + Connection + body, appended into one buffer
    // (or, for an open-file entry, the body sent from its shared descriptor).
    out->append(f.head_200);
    out->append(DateLine(now_));
    AppendConnectionAndEnd(*plan, out);
    if (plan->head_only) return;
    plan->body_bytes = f.size;
    if (f.fd.valid()) {
      if (f.size == 0) return;
      plan->file = f.fd;  // one more owner: an eviction meanwhile does not close it
      plan->file_offset = 0;
      plan->file_length = f.size;
      return;
    }
    out->append(f.content);
    return;
  }
  if (status == 416) {
    std::string cr = "Content-Range: ";
    cr.append(FormatUnsatisfiedRange(f.size).view());
    cr.append("\r\n");
    return Error(416, out, plan, cr);
  }
  AppendStatusLine(status, out);
  if (status == 206) {
    AppendField("Content-Type", f.content_type, out);
    AppendLength(length, out);
    AppendField("Content-Range", FormatContentRange({first, first + length - 1}, f.size).view(),
                out);
    out->append("Accept-Ranges: bytes\r\nX-Content-Type-Options: nosniff\r\n");
  }
  AppendField("Last-Modified", f.last_modified, out);
  AppendField("ETag", f.etag, out);
  AppendConnectionAndEnd(*plan, out);
  if (status != 206) return;  // 304
  plan->body_bytes = length;
  if (f.fd.valid()) {
    plan->file = f.fd;
    plan->file_offset = first;
    plan->file_length = length;
    return;
  }
  out->append(std::string_view(f.content).substr(first, length));
}

}  // namespace kev::httpd
