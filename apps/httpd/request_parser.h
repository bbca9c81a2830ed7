// Strict, incremental HTTP/1.x request-head parser (RFC 9112), with no I/O and no allocation.
//
// The parser reads the request line and the header section of one request at a time from a
// buffer the caller owns and grows. It never copies the request: it records offsets, and its
// accessors return `std::string_view`s into the buffer most recently passed to `Parse()`.
// Because it keeps offsets rather than pointers, the caller may move or reallocate the buffer
// between calls (e.g. append to a `std::string`), as long as the bytes already passed stay the
// same at the same offsets.
//
// Each byte is examined exactly once, however the input is split (one call with the whole
// request, or one call per byte: the result is the same), so feeding costs O(bytes).
//
// Example (a connection loop, simplified):
//
//   kev::httpd::RequestParser parser;
//   std::string buf;                        // unconsumed bytes; starts at the current request
//   for (;;) {
//     buf += ReadSome();
//     switch (parser.Parse(buf)) {
//       case RequestParser::Status::kIncomplete:
//         continue;                         // need more bytes (limits are already enforced)
//       case RequestParser::Status::kError:
//         SendError(parser.error_status(), parser.error_reason());   // then close
//         return;
//       case RequestParser::Status::kComplete:
//         Serve(parser.method(), parser.target(), parser.host(), ...);
//         Drain(parser.content_length());   // body bytes follow the head
//         buf.erase(0, parser.consumed() + parser.content_length());
//         if (!parser.keep_alive()) return;
//         parser.Reset();                   // the rest of `buf` is the next (pipelined) request
//     }
//   }
//
// Error policy (every error is final for the request and for the connection: the caller sends
// the status with `Connection: close` and closes, because the framing of what follows can no
// longer be trusted):
//   400  bad request line or header syntax; whitespace between a field name and its colon;
//        obs-fold (a line starting with SP/HTAB); bare CR; bare LF (unless
//        `ParserLimits::accept_bare_lf`); invalid token, target or field-value characters
//        (a target may hold any visible ASCII here; NormalizeTarget() in path.h is stricter);
//        invalid or conflicting Content-Length; both Content-Length and Transfer-Encoding;
//        Transfer-Encoding whose final coding is not `chunked`, or any Transfer-Encoding in an
//        HTTP/1.0 request (RFC 9112 §6.1, §6.3); HTTP/1.1 without Host; more than one Host;
//        a Host with characters outside uri-host [":" port]; malformed HTTP-version.
//   411  Transfer-Encoding whose final coding is `chunked`: the request is well-formed but this
//        server reads no chunked bodies; 411 tells the client it may retry with a
//        Content-Length (RFC 9110 §15.5.12).
//   413  Content-Length larger than `ParserLimits::max_body` (it applies to every method: the
//        server only ever drains request bodies, and draining is bounded).
//   414  request-target longer than `ParserLimits::max_target`.
//   431  header section (after the request line) longer than `max_header_bytes`, or more than
//        `max_headers` field lines.
//   501  method longer than `kMaxMethodLength` (RFC 9112 §3: longer than any implemented).
//   505  well-formed HTTP-version whose major version is not 1 (HTTP/0.9, HTTP/2.0, ...).
//        HTTP/1.x with x > 1 is served as HTTP/1.1 (RFC 9110 §2.5).
// Limits are enforced as soon as the offending byte arrives, not at the end of the head, so an
// attacker cannot make the caller buffer more than about
// `kMaxMethodLength + max_target + max_header_bytes + 64` bytes for one request head.
//
// Not errors: up to `kMaxLeadingEmptyLines` empty lines before the request line are skipped
// (RFC 9112 §2.2); HTTP/1.0 without Host; unknown methods (reported as `Method::kOther`, so the
// server can answer 501, or 405 for known methods it does not allow); a Content-Length on
// GET/HEAD (reported so the server can drain it).
//
// Threading: a parser belongs to one connection on one shard; it has no shared state.

#ifndef KEV_APPS_HTTPD_REQUEST_PARSER_H_
#define KEV_APPS_HTTPD_REQUEST_PARSER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace kev::httpd {

// Request methods the server may care about. Method names are case-sensitive (RFC 9110 §9.1):
// "get" is `kOther`.
enum class Method : uint8_t {
  kGet,
  kHead,
  kPost,
  kPut,
  kDelete,
  kConnect,
  kOptions,
  kTrace,
  kPatch,
  kOther,  // any other token; `RequestParser::method_name()` has it
};

// Returns the canonical name of `m` ("GET", ...); "" for kOther.
std::string_view MethodName(Method m);

// Per-server limits. Copied into each parser; all fields are plain values.
struct ParserLimits {
  // Longest request-target in bytes; longer → 414. 8 KiB matches common servers' defaults.
  uint32_t max_target = 8192;
  // Largest header section in bytes (from the first field line through the final CRLF);
  // larger → 431.
  uint32_t max_header_bytes = 16384;
  // Most field lines; more → 431. Values above kMaxHeaders are clamped to it.
  uint32_t max_headers = 64;
  // Largest Content-Length accepted (the server drains, never stores, request bodies);
  // larger → 413.
  uint64_t max_body = 1 << 20;
  // Accept a lone LF as a line terminator (RFC 9112 §2.2 permits it). Off by default: strict
  // CRLF avoids framing disagreements with proxies in front of the server.
  bool accept_bare_lf = false;
};

// One field line, as views into the caller's buffer. `value` has leading and trailing
// whitespace removed and may be empty.
struct Header {
  std::string_view name;
  std::string_view value;
};

// Parses one request head at a time; Reset() between pipelined requests. Not copyable (the
// views it hands out are tied to it). Holds ~1.7 KiB inline, no heap memory.
class RequestParser {
 public:
  // Inline capacity for field lines: the parser never allocates, so this bounds max_headers.
  static constexpr uint32_t kMaxHeaders = 100;
  // Longest method token accepted; longer → 501.
  static constexpr uint32_t kMaxMethodLength = 32;
  // Most empty lines skipped before a request line; more → 400.
  static constexpr uint32_t kMaxLeadingEmptyLines = 4;

  enum class Status : uint8_t {
    kIncomplete,  // all bytes so far are valid; call Parse() again with more
    kComplete,    // the head is complete: accessors are valid, consumed() says where it ended
    kError,       // error_status() / error_reason() say why; the parser stays in this state
  };

  explicit RequestParser(const ParserLimits& limits = {});

  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses as much of the request head in `data` as it can.
  // Precondition: `data` begins at the first byte of the current request (the first call after
  // construction or Reset(), and every later call, pass the same start) and holds at least the
  // bytes passed to the previous call, unchanged; it may live at a different address. Violating
  // this aborts the process (it would otherwise return views into the wrong bytes).
  // Bytes past the end of the head are not examined: they are the body or the next request.
  // Once kComplete or kError is returned, further calls return the same status without
  // reading `data`, except that kComplete rebinds the accessors to the new `data`.
  Status Parse(std::string_view data);

  // Forgets the current request so the next Parse() starts a new one (keeps the limits).
  void Reset();

  // The status the last Parse() returned (kIncomplete before the first call).
  Status status() const { return status_; }

  // --- Valid after kError. ---
  // HTTP status to answer with: 400, 411, 413, 414, 431, 501 or 505 (see the file comment).
  int error_status() const { return error_status_; }
  // Short static description for logs (never sent to clients verbatim by necessity).
  const char* error_reason() const { return error_reason_; }

  // --- Valid after kComplete; views point into the buffer last passed to Parse() and live as
  // long as that buffer's bytes stay put. ---

  // Bytes of the request head, from the first byte of `data` (including skipped leading empty
  // lines) through the blank line. The body, if any, starts here.
  size_t consumed() const { return head_end_; }
  // The method, and its token exactly as sent (for kOther, to log or to answer 501).
  Method method() const { return method_; }
  std::string_view method_name() const { return View(method_off_, method_len_); }
  // The request-target exactly as sent (origin-, absolute-, authority- or asterisk-form).
  std::string_view target() const { return View(target_off_, target_len_); }
  // Always 1: other major versions are rejected with 505.
  int version_major() const { return 1; }
  // 0 or 1; a request that said HTTP/1.2+ reports 1.
  int version_minor() const { return version_minor_; }

  // Persistence per RFC 9112 §9.3: false if Connection has "close"; else true for HTTP/1.1;
  // for HTTP/1.0 true only with "Connection: keep-alive" (the server must then echo it).
  bool keep_alive() const { return keep_alive_; }
  // Body length from Content-Length, 0 without one. Always <= limits.max_body.
  uint64_t content_length() const { return content_length_; }
  // Whether a Content-Length field was present (even "0").
  bool has_content_length() const { return has_content_length_; }

  // Pre-extracted fields: the first field line of each name (Host is unique by then; for
  // Range and If-Modified-Since a second line makes the field invalid, so nullopt is
  // returned and the server ignores it, as RFC 9110 §14.2/§13.1.3 direct; for If-None-Match
  // only the first line is returned, and missing a later line only costs a 200 for a 304).
  std::optional<std::string_view> host() const { return Field(host_idx_); }
  std::optional<std::string_view> connection() const { return Field(connection_idx_); }
  std::optional<std::string_view> range() const { return Field(range_idx_); }
  std::optional<std::string_view> if_none_match() const { return Field(if_none_match_idx_); }
  std::optional<std::string_view> if_modified_since() const {
    return Field(if_modified_since_idx_);
  }

  // All field lines in arrival order; `header(i)` requires i < header_count().
  size_t header_count() const { return header_count_; }
  Header header(size_t i) const;
  // Value of the first field line named `name` (ASCII case-insensitive), or nullopt.
  std::optional<std::string_view> Find(std::string_view name) const;

 private:
  enum class State : uint8_t;
  struct Span {
    uint32_t name_off, name_len, value_off, value_len;
  };
  static constexpr int16_t kAbsent = -1;
  static constexpr int16_t kInvalid = -2;  // present but must be ignored (duplicate)

  Status Fail(int status, const char* reason);
  Status FinishRequestLine(uint32_t version_end);
  Status FinishHeader(uint32_t value_end);
  Status FinishHead();
  std::string_view View(uint32_t off, uint32_t len) const { return {base_ + off, len}; }
  std::optional<std::string_view> Field(int16_t idx) const;

  ParserLimits limits_;
  const char* base_ = nullptr;  // start of the buffer last passed to Parse()
  // Scan position (offset of the next byte to examine) and the per-state bookkeeping.
  uint32_t pos_ = 0;
  State state_;
  Status status_ = Status::kIncomplete;
  uint8_t empty_lines_ = 0;
  uint8_t version_minor_ = 1;
  Method method_ = Method::kOther;
  bool keep_alive_ = false;
  bool has_content_length_ = false;
  bool has_transfer_encoding_ = false;
  bool te_chunked_last_ = false;
  bool conn_close_ = false;
  bool conn_keep_alive_ = false;
  int error_status_ = 0;
  const char* error_reason_ = "";
  uint32_t line_start_ = 0;  // first byte of the current line
  uint32_t method_off_ = 0, method_len_ = 0;
  uint32_t target_off_ = 0, target_len_ = 0;
  uint32_t version_off_ = 0;
  uint32_t headers_start_ = 0;  // first byte of the header section
  uint32_t value_off_ = 0;      // first non-whitespace byte of the current field value
  uint32_t value_end_ = 0;      // one past the last non-whitespace byte of that value
  uint32_t head_end_ = 0;
  uint64_t content_length_ = 0;
  int16_t host_idx_ = kAbsent, connection_idx_ = kAbsent, range_idx_ = kAbsent;
  int16_t if_none_match_idx_ = kAbsent, if_modified_since_idx_ = kAbsent;
  uint32_t header_count_ = 0;
  std::array<Span, kMaxHeaders> headers_;  // inline: no allocation per request
};

}  // namespace kev::httpd

#endif  // KEV_APPS_HTTPD_REQUEST_PARSER_H_
