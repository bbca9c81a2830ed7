// The static-file request handler: one parsed request + the document root → one response.
//
// The handler is pure of I/O on the client socket: it appends the response head (and any body
// small enough to live in memory) to the connection's output buffer and fills a ResponsePlan
// telling the connection what else to do (send a file range through the sendfile pipeline,
// render a metrics page, close afterwards). Filesystem syscalls (openat2, fstat, and for a
// cache fill a pread of at most FileCacheOptions::max_file_bytes) happen here, synchronously
// on the shard: they hit the page cache for a served site, as nginx's do. With a cache, a hit
// makes none of them (at most one fstatat per revalidation window): small files come from
// memory, bigger ones from a descriptor the cache keeps open (plan.file then shares it).
//
// Responses it produces (all with Date and Server; bodies of errors are tiny HTML pages):
//   200 / 206 (single range) / 304 (If-None-Match, If-Modified-Since; If-Range honoured) for
//   GET and HEAD of regular files, with Content-Type, Content-Length, Last-Modified, ETag,
//   Accept-Ranges; 416 with "Content-Range: bytes */size";
//   301 "/dir" → "/dir/"; a directory serves its index.html, else a listing (autoindex) or 403;
//   400 for a target NormalizeTarget() refuses (traversal, bad encoding...); 403 / 404 / 500 /
//   503 from OpenBeneath() errors (symlinks out of the root are 403, never the file);
//   405 with "Allow: GET, HEAD" for other known methods, 501 for unknown ones;
//   and, for parser errors, the parser's status with Connection: close.
// Query strings are ignored for files. Connection handling: HTTP/1.1 is persistent unless the
// client (or the server, via `allow_keep_alive`) says close; HTTP/1.0 only with
// "Connection: keep-alive", which is then echoed.
//
// Example (inside a connection loop):
//   Handler handler(options, &cache);                 // one per shard
//   ResponsePlan plan;
//   handler.Handle(parser, NowSeconds(), /*allow_keep_alive=*/true, &out, &plan);
//   if (plan.special != Special::kNone) handler.AppendPage(... rendered page ..., &out, &plan);
//   co_await conn.Write(out); out.clear();
//   if (plan.file.valid()) co_await aio::SendFile(conn, plan.file.get(), plan.file_offset,
//                                                 plan.file_length);
//   if (!plan.keep_alive) close;
//
// Threading: a Handler belongs to one shard (it holds that shard's cache and scratch buffers).

#ifndef KEV_APPS_HTTPD_HANDLER_H_
#define KEV_APPS_HTTPD_HANDLER_H_

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "apps/httpd/file_cache.h"
#include "apps/httpd/request_parser.h"

namespace kev::httpd {

// The file a response body is sent from: owned by the plan alone (a file opened for this
// request) or shared with the file cache (SharedFd; the cache may drop the entry meanwhile, the
// descriptor stays open until the plan lets go). Move-only.
class FileRef {
 public:
  FileRef() = default;
  FileRef(UniqueFd fd) : owned_(std::move(fd)) {}    // NOLINT: implicit, as a plain fd would be
  FileRef(SharedFd fd) : shared_(std::move(fd)) {}   // NOLINT
  FileRef(FileRef&&) noexcept = default;
  FileRef& operator=(FileRef&&) noexcept = default;

  bool valid() const { return owned_.valid() || shared_.valid(); }
  int get() const { return owned_.valid() ? owned_.get() : shared_.get(); }
  // Closes an owned descriptor; releases a shared one.
  void Reset() {
    owned_.Reset();
    shared_.Reset();
  }

 private:
  UniqueFd owned_;
  SharedFd shared_;
};

// The shard's count of live ResponsePlans a Handler has used, plus leases from
// Handler::Lease(). When the last one is destroyed the shard has no request in progress (and,
// if the server holds a lease per connection, no connection), and the file cache's open files
// are closed: an idle server holds no file open (a test looking for leaked fds after its
// clients left finds none). Shared by the Handler and the plans, so either may go first.
class PlanLease {
 public:
  struct Counter {
    uint32_t refs = 1;  // the handler + attached plans
    uint32_t plans = 0;
    FileCache* cache = nullptr;  // null once the handler is gone
  };
  PlanLease() = default;
  PlanLease(PlanLease&& o) noexcept : counter_(std::exchange(o.counter_, nullptr)) {}
  PlanLease& operator=(PlanLease&& o) noexcept {
    if (this != &o) {
      Detach();
      counter_ = std::exchange(o.counter_, nullptr);
    }
    return *this;
  }
  ~PlanLease() { Detach(); }

  // Counts this plan in `counter` (once: a plan keeps its lease across requests).
  void Attach(Counter* counter) {
    if (counter_ == counter) return;
    Detach();
    counter_ = counter;
    ++counter_->refs;
    ++counter_->plans;
  }
  static void Release(Counter* counter) {
    if (--counter->refs == 0) delete counter;
  }

 private:
  void Detach() {
    if (counter_ == nullptr) return;
    if (--counter_->plans == 0 && counter_->cache != nullptr) counter_->cache->CloseOpenFiles();
    Release(std::exchange(counter_, nullptr));
  }
  Counter* counter_ = nullptr;
};

// Built-in pages the connection renders itself (they need data from every shard).
enum class Special : uint8_t { kNone, kMetrics, kStatus };

// What the connection must do after writing the bytes Handle() appended.
struct ResponsePlan {
  int status = 0;
  // Keep the connection open after this response (else close once it is sent).
  bool keep_alive = false;
  // HEAD request: send no body (the head still describes it).
  bool head_only = false;
  // The response was served from the file cache.
  bool cache_hit = false;
  // Body bytes this response carries (in the appended buffer or from `file`); for logs and
  // metrics. 0 for HEAD and 304.
  uint64_t body_bytes = 0;
  // Set when the body must be sent from a file after the buffered head: `file_length` bytes
  // at `file_offset`. The plan owns the fd, or one share of a cached one: keep the plan (or
  // move `file` out) until the transfer ends, then Reset() it.
  FileRef file;
  uint64_t file_offset = 0;
  uint64_t file_length = 0;
  // Set for built-in pages: nothing was appended; render the page and call AppendPage().
  Special special = Special::kNone;
  // Counts this plan as a live connection of the handler's shard (see PlanLease); kept by
  // Clear(). Keep one plan per connection for its lifetime, as the example does.
  PlanLease lease;

  void Clear() {
    status = 0;
    keep_alive = head_only = cache_hit = false;
    body_bytes = file_offset = file_length = 0;
    file.Reset();
    special = Special::kNone;
  }
};

struct HandlerOptions {
  // Directory fd of the document root (not owned; must outlive the handler).
  int root_fd = -1;
  // List directories without an index.html instead of answering 403.
  bool autoindex = false;
  // Serve /_kev/metrics and /_kev/status (as Special pages); when off they are ordinary paths.
  bool metrics = true;
  bool status_page = true;
};

class Handler {
 public:
  // `cache` may be null (no caching); it must outlive the handler. The cache's open files
  // (FileCache::KeepsFilesOpen) are kept while plans this handler has filled are alive, and
  // closed when the last of them is destroyed (PlanLease): plans may outlive the handler.
  Handler(const HandlerOptions& options, FileCache* cache);
  ~Handler();
  Handler(const Handler&) = delete;
  Handler& operator=(const Handler&) = delete;

  // Answers the complete request in `req` (Status::kComplete): appends the response head and
  // any in-memory body to `*out` and fills `*plan` (cleared first). `now` is Unix seconds
  // (the Date field is re-rendered only when it changes). `allow_keep_alive` = false forces
  // Connection: close (e.g. while draining). Never throws on client input.
  void Handle(const RequestParser& req, int64_t now, bool allow_keep_alive, std::string* out,
              ResponsePlan* plan);

  // Answers a request the parser rejected (`status` from error_status()), always with
  // Connection: close (the framing of what follows cannot be trusted).
  void HandleParseError(int status, int64_t now, std::string* out, ResponsePlan* plan);

  // Completes a Special plan: appends a 200 with `body` of `content_type` (Cache-Control:
  // no-store; no body for HEAD), keeping plan->keep_alive.
  void AppendPage(std::string_view content_type, std::string_view body, int64_t now,
                  std::string* out, ResponsePlan* plan);

  // A lease that counts as one live plan (see PlanLease) until destroyed. A server whose
  // plans live per burst of requests, not per connection, holds one per connection, so the
  // cache's open files are not closed between bursts while connections are alive.
  PlanLease Lease() {
    PlanLease lease;
    lease.Attach(plans_);
    return lease;
  }

  // The current "Date: ...\r\n" line for `now`.
  std::string_view DateLine(int64_t now);

 private:
  void Error(int status, std::string* out, ResponsePlan* plan, std::string_view extra_headers = {});
  void AppendStatusLine(int status, std::string* out);
  void AppendConnectionAndEnd(const ResponsePlan& plan, std::string* out);
  void ServeDirectory(const RequestParser& req, int dir_fd, const std::string& rel,
                      std::string* out, ResponsePlan* plan);
  void ServeFile(const RequestParser& req, UniqueFd fd, const struct stat& st,
                 std::string_view resolved, std::string* out, ResponsePlan* plan);
  void ServeCached(const RequestParser& req, const CachedFile& f, std::string* out,
                   ResponsePlan* plan);
  // Shared by cached and uncached files: evaluates conditionals and Range. Returns the
  // status (200, 206, 304, 416) and sets *first / *length for 200/206.
  int Evaluate(const RequestParser& req, std::string_view etag, int64_t mtime_sec, uint64_t size,
               uint64_t* first, uint64_t* length);

  HandlerOptions options_;
  FileCache* cache_;
  PlanLease::Counter* plans_;  // shared with the plans (PlanLease)
  int64_t now_ = 0;
  int minor_ = 1;  // HTTP minor version of the request being answered
  int64_t date_sec_ = -1;
  std::string date_line_;
  // Scratch buffers reused across requests (grow once, then no allocation).
  std::string rel_;
  std::string key_;
};

// Appends `s` percent-encoded for use in a URL path: unreserved characters and '/' stay,
// everything else becomes %XX.
void AppendUrlPath(std::string_view s, std::string* out);

// Appends `s` with &, <, >, " and ' escaped for HTML text and attribute values.
void AppendHtmlEscaped(std::string_view s, std::string* out);

// Renders an HTML listing of the directory `dir_fd` (not consumed) whose URL path is
// `url_path` (ending in '/'): entries sorted by name, directories first with a trailing '/',
// names HTML-escaped and links percent-encoded, dot-files hidden. Returns false (and leaves
// `*html` unspecified) if the directory cannot be read.
bool RenderDirectoryListing(int dir_fd, std::string_view url_path, std::string* html);

}  // namespace kev::httpd

#endif  // KEV_APPS_HTTPD_HANDLER_H_
