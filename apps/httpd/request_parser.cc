#include "apps/httpd/request_parser.h"

#include <algorithm>
#include <cstdlib>

namespace kev::httpd {
namespace {

// Character classes as 256-entry tables: one load per byte in the scanning loops.
enum : uint8_t {
  kTchar = 1,       // token (RFC 9110 §5.6.2)
  kTargetChar = 2,  // visible ASCII; path normalisation applies the stricter rules later
  kFieldChar = 4,   // field-vchar: VCHAR / obs-text (RFC 9110 §5.5)
  kHostChar = 8,    // uri-host [":" port] (RFC 3986 reg-name, IP-literal, port)
};

constexpr std::array<uint8_t, 256> MakeClasses() {
  std::array<uint8_t, 256> t{};
  for (int c = 0x21; c <= 0x7e; ++c) t[c] |= kTargetChar | kFieldChar;
  for (int c = 0x80; c <= 0xff; ++c) t[c] |= kFieldChar;
  auto add = [&t](const char* s, uint8_t cls) {
    for (; *s; ++s) t[static_cast<unsigned char>(*s)] |= cls;
  };
  for (int c = '0'; c <= '9'; ++c) t[c] |= kTchar | kHostChar;
  for (int c = 'a'; c <= 'z'; ++c) t[c] |= kTchar | kHostChar;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] |= kTchar | kHostChar;
  add("!#$%&'*+-.^_`|~", kTchar);
  add("-._~%!$&'()*+,;=:[]", kHostChar);
  return t;
}
constexpr std::array<uint8_t, 256> kClasses = MakeClasses();

inline bool Is(unsigned char c, uint8_t cls) { return kClasses[c] & cls; }
inline bool IsWs(char c) { return c == ' ' || c == '\t'; }
inline char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::string_view TrimWs(std::string_view s) {
  while (!s.empty() && IsWs(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsWs(s.back())) s.remove_suffix(1);
  return s;
}

// Calls fn(element) for each comma-separated list element, trimmed, empty ones included.
template <typename Fn>
void ForEachListElement(std::string_view list, Fn fn) {
  for (;;) {
    size_t comma = list.find(',');
    fn(TrimWs(list.substr(0, comma)));
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

constexpr struct {
  std::string_view name;
  Method method;
} kMethods[] = {
    {"GET", Method::kGet},         {"HEAD", Method::kHead},     {"POST", Method::kPost},
    {"PUT", Method::kPut},         {"DELETE", Method::kDelete}, {"CONNECT", Method::kConnect},
    {"OPTIONS", Method::kOptions}, {"TRACE", Method::kTrace},   {"PATCH", Method::kPatch},
};

// Largest offset the parser will ever store: limits are clamped so positions fit in uint32_t.
constexpr uint32_t kMaxLimit = 1u << 24;

}  // namespace

std::string_view MethodName(Method m) {
  for (const auto& e : kMethods) {
    if (e.method == m) return e.name;
  }
  return {};
}

enum class RequestParser::State : uint8_t {
  kStart,    // before the request line; empty lines are skipped here
  kStartLf,  // after a CR of an empty leading line
  kMethod,
  kTarget,
  kVersion,
  kRequestLineLf,  // after the request line's CR
  kHeaderStart,    // at the start of a field line or of the final empty line
  kHeaderName,
  kValueLeadingWs,
  kValue,
  kHeaderLf,  // after a field line's CR
  kEndLf,     // after the final empty line's CR
};

RequestParser::RequestParser(const ParserLimits& limits) : limits_(limits) {
  limits_.max_target = std::min(limits_.max_target, kMaxLimit);
  limits_.max_header_bytes = std::min(limits_.max_header_bytes, kMaxLimit);
  limits_.max_headers = std::min(limits_.max_headers, kMaxHeaders);
  Reset();
}

void RequestParser::Reset() {
  base_ = nullptr;
  pos_ = 0;
  state_ = State::kStart;
  status_ = Status::kIncomplete;
  empty_lines_ = 0;
  version_minor_ = 1;
  method_ = Method::kOther;
  keep_alive_ = false;
  has_content_length_ = false;
  has_transfer_encoding_ = false;
  te_chunked_last_ = false;
  conn_close_ = false;
  conn_keep_alive_ = false;
  error_status_ = 0;
  error_reason_ = "";
  line_start_ = method_off_ = method_len_ = target_off_ = target_len_ = version_off_ = 0;
  headers_start_ = value_off_ = value_end_ = head_end_ = 0;
  content_length_ = 0;
  host_idx_ = connection_idx_ = range_idx_ = if_none_match_idx_ = if_modified_since_idx_ = kAbsent;
  header_count_ = 0;
}

RequestParser::Status RequestParser::Fail(int status, const char* reason) {
  status_ = Status::kError;
  error_status_ = status;
  error_reason_ = reason;
  return status_;
}

RequestParser::Status RequestParser::Parse(std::string_view data) {
  // A shorter buffer means the caller dropped bytes we hold offsets into: views would point
  // at the wrong bytes, so stop rather than serve a confused request.
  if (data.size() < pos_) std::abort();
  base_ = data.data();
  if (status_ != Status::kIncomplete) return status_;

  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  // Heads are bounded far below 4 GiB by the limits, so offsets fit in uint32_t.
  const uint32_t end = static_cast<uint32_t>(std::min<size_t>(data.size(), UINT32_MAX));
  uint32_t pos = pos_;
  Status result = Status::kIncomplete;

  while (result == Status::kIncomplete) {
    const bool in_headers = state_ >= State::kHeaderStart;
    const uint32_t header_limit = headers_start_ + limits_.max_header_bytes;
    const uint32_t stop = in_headers ? std::min(end, header_limit) : end;
    if (pos >= stop) {
      if (in_headers && pos >= header_limit) result = Fail(431, "header section too large");
      break;
    }
    const unsigned char c = p[pos];
    switch (state_) {
      case State::kStart:
        if (c == '\r' || (c == '\n' && limits_.accept_bare_lf)) {
          ++pos;
          if (c == '\r') {
            state_ = State::kStartLf;
          } else if (++empty_lines_ > kMaxLeadingEmptyLines) {
            result = Fail(400, "too many empty lines before request line");
          }
        } else if (Is(c, kTchar)) {
          method_off_ = pos;
          state_ = State::kMethod;
        } else {
          result = Fail(400, c == '\n' ? "bare LF" : "invalid character in method");
        }
        break;

      case State::kStartLf:
        if (c != '\n') {
          result = Fail(400, "bare CR");
        } else if (++empty_lines_ > kMaxLeadingEmptyLines) {
          result = Fail(400, "too many empty lines before request line");
        } else {
          ++pos;
          state_ = State::kStart;
        }
        break;

      case State::kMethod: {
        const uint32_t limit = std::min(end, method_off_ + kMaxMethodLength + 1);
        while (pos < limit && Is(p[pos], kTchar)) ++pos;
        if (pos - method_off_ > kMaxMethodLength) {
          result = Fail(501, "method too long");
        } else if (pos == end) {
          // Need more bytes.
        } else if (p[pos] == ' ') {
          method_len_ = pos - method_off_;
          target_off_ = ++pos;
          state_ = State::kTarget;
        } else {
          result = Fail(400, "invalid character in method");
        }
        break;
      }

      case State::kTarget: {
        const uint32_t limit =
            std::min<uint64_t>(end, uint64_t{target_off_} + limits_.max_target + 1);
        while (pos < limit && Is(p[pos], kTargetChar)) ++pos;
        if (pos - target_off_ > limits_.max_target) {
          result = Fail(414, "request-target too long");
        } else if (pos == end) {
          // Need more bytes.
        } else if (p[pos] != ' ') {
          result = Fail(400, "invalid character in request-target");
        } else if (pos == target_off_) {
          result = Fail(400, "empty request-target");
        } else {
          target_len_ = pos - target_off_;
          version_off_ = ++pos;
          state_ = State::kVersion;
        }
        break;
      }

      case State::kVersion:
        // "HTTP/x.y" is exactly 8 bytes; anything longer is malformed, so stop scanning there.
        while (pos < end && p[pos] != '\r' && p[pos] != '\n' && pos - version_off_ < 8) ++pos;
        if (pos == end) break;
        if (p[pos] != '\r' && p[pos] != '\n') {
          result = Fail(400, "malformed HTTP-version");
          break;
        }
        if (p[pos] == '\n' && !limits_.accept_bare_lf) {
          result = Fail(400, "bare LF");
          break;
        }
        result = FinishRequestLine(pos);
        if (result != Status::kIncomplete) break;
        if (p[pos++] == '\r') {
          state_ = State::kRequestLineLf;
        } else {
          headers_start_ = pos;
          state_ = State::kHeaderStart;
        }
        break;

      case State::kRequestLineLf:
        if (c != '\n') {
          result = Fail(400, "bare CR in request line");
        } else {
          headers_start_ = ++pos;
          state_ = State::kHeaderStart;
        }
        break;

      case State::kHeaderStart:
        line_start_ = pos;
        if (c == '\r') {
          ++pos;
          state_ = State::kEndLf;
        } else if (c == '\n') {
          if (!limits_.accept_bare_lf) {
            result = Fail(400, "bare LF");
          } else {
            head_end_ = ++pos;
            result = FinishHead();
          }
        } else if (IsWs(static_cast<char>(c))) {
          // RFC 9112 §2.2 and §5.2: whitespace before the first field line, and obs-fold,
          // must be rejected (or handled in ways that invite request smuggling).
          result = Fail(400, header_count_ == 0 ? "whitespace before first header field"
                                                : "obs-fold in header field");
        } else if (!Is(c, kTchar)) {
          result = Fail(400, "invalid character in field name");
        } else if (header_count_ >= limits_.max_headers) {
          result = Fail(431, "too many header fields");
        } else {
          state_ = State::kHeaderName;
        }
        break;

      case State::kHeaderName:
        while (pos < stop && Is(p[pos], kTchar)) ++pos;
        if (pos == stop) break;
        if (p[pos] == ':') {
          headers_[header_count_].name_off = line_start_;
          headers_[header_count_].name_len = pos - line_start_;
          ++pos;
          state_ = State::kValueLeadingWs;
        } else if (IsWs(static_cast<char>(p[pos]))) {
          result = Fail(400, "whitespace between field name and colon");
        } else {
          result = Fail(400, "invalid character in field name");
        }
        break;

      case State::kValueLeadingWs:
        while (pos < stop && IsWs(static_cast<char>(p[pos]))) ++pos;
        if (pos == stop) break;
        value_off_ = value_end_ = pos;
        state_ = State::kValue;
        break;

      case State::kValue: {
        uint32_t value_end = value_end_;
        for (; pos < stop; ++pos) {
          const unsigned char v = p[pos];
          if (Is(v, kFieldChar)) {
            value_end = pos + 1;
          } else if (!IsWs(static_cast<char>(v))) {
            break;
          }
        }
        value_end_ = value_end;
        if (pos == stop) break;
        if (p[pos] == '\r') {
          ++pos;
          state_ = State::kHeaderLf;
        } else if (p[pos] == '\n' && limits_.accept_bare_lf) {
          ++pos;
          result = FinishHeader(value_end_);
          state_ = State::kHeaderStart;
        } else {
          result = Fail(400, p[pos] == '\n' ? "bare LF" : "invalid character in field value");
        }
        break;
      }

      case State::kHeaderLf:
        if (c != '\n') {
          result = Fail(400, "bare CR in header field");
        } else {
          ++pos;
          result = FinishHeader(value_end_);
          state_ = State::kHeaderStart;
        }
        break;

      case State::kEndLf:
        if (c != '\n') {
          result = Fail(400, "bare CR");
        } else {
          head_end_ = ++pos;
          result = FinishHead();
        }
        break;
    }
  }
  pos_ = pos;
  return result;
}

RequestParser::Status RequestParser::FinishRequestLine(uint32_t version_end) {
  const std::string_view v = View(version_off_, version_end - version_off_);
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !digit(v[5]) || v[6] != '.' || !digit(v[7])) {
    return Fail(400, "malformed HTTP-version");
  }
  if (v[5] != '1') return Fail(505, "unsupported HTTP major version");
  version_minor_ = v[7] == '0' ? 0 : 1;  // 1.2+ is answered as 1.1 (RFC 9110 §2.5)

  const std::string_view name = View(method_off_, method_len_);
  method_ = Method::kOther;
  for (const auto& e : kMethods) {
    if (e.name == name) method_ = e.method;
  }
  return Status::kIncomplete;
}

RequestParser::Status RequestParser::FinishHeader(uint32_t value_end) {
  Span& span = headers_[header_count_];
  span.value_off = value_off_;
  span.value_len = value_end - value_off_;
  const auto idx = static_cast<int16_t>(header_count_++);
  const std::string_view name = View(span.name_off, span.name_len);
  const std::string_view value = View(span.value_off, span.value_len);

  // Dispatch on length first: most field lines are none of the names we extract.
  switch (name.size()) {
    case 4:
      if (!EqualsIgnoreCase(name, "host")) break;
      if (host_idx_ != kAbsent) return Fail(400, "more than one Host");
      for (char c : value) {
        if (!Is(static_cast<unsigned char>(c), kHostChar)) return Fail(400, "invalid Host");
      }
      host_idx_ = idx;
      break;
    case 5:
      if (!EqualsIgnoreCase(name, "range")) break;
      range_idx_ = range_idx_ == kAbsent ? idx : kInvalid;
      break;
    case 10:
      if (!EqualsIgnoreCase(name, "connection")) break;
      if (connection_idx_ == kAbsent) connection_idx_ = idx;
      ForEachListElement(value, [this](std::string_view option) {
        if (EqualsIgnoreCase(option, "close")) conn_close_ = true;
        if (EqualsIgnoreCase(option, "keep-alive")) conn_keep_alive_ = true;
      });
      break;
    case 13:
      if (!EqualsIgnoreCase(name, "if-none-match")) break;
      if (if_none_match_idx_ == kAbsent) if_none_match_idx_ = idx;
      break;
    case 14: {
      if (!EqualsIgnoreCase(name, "content-length")) break;
      // RFC 9110 §8.6: a list of identical values (or repeated identical lines) may be taken
      // as one value; anything else is an unrecoverable framing error.
      bool ok = true;
      ForEachListElement(value, [this, &ok](std::string_view element) {
        if (element.empty()) ok = false;
        uint64_t n = 0;
        for (char c : element) {
          if (c < '0' || c > '9') {
            ok = false;
            return;
          }
          // Saturate: any length this large is answered with 413, not misread.
          n = n > (UINT64_MAX - 9) / 10 ? UINT64_MAX : n * 10 + static_cast<uint64_t>(c - '0');
        }
        if (has_content_length_ && n != content_length_) ok = false;
        content_length_ = n;
        has_content_length_ = true;
      });
      if (!ok) return Fail(400, "invalid or conflicting Content-Length");
      break;
    }
    case 17:
      if (EqualsIgnoreCase(name, "if-modified-since")) {
        if_modified_since_idx_ = if_modified_since_idx_ == kAbsent ? idx : kInvalid;
      } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
        // Only the final coding matters for framing (RFC 9112 §6.3); codings split across
        // lines form one list, so the last non-empty element of the last line wins.
        has_transfer_encoding_ = true;
        bool any = false;
        ForEachListElement(value, [this, &any](std::string_view element) {
          if (element.empty()) return;
          any = true;
          const std::string_view coding = TrimWs(element.substr(0, element.find(';')));
          te_chunked_last_ = EqualsIgnoreCase(coding, "chunked");
        });
        if (!any) return Fail(400, "empty Transfer-Encoding");
      }
      break;
    default:
      break;
  }
  return Status::kIncomplete;
}

RequestParser::Status RequestParser::FinishHead() {
  if (has_transfer_encoding_) {
    if (version_minor_ == 0) return Fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (has_content_length_) return Fail(400, "both Content-Length and Transfer-Encoding");
    if (!te_chunked_last_) return Fail(400, "final transfer coding is not chunked");
    return Fail(411, "chunked request bodies are not accepted");
  }
  if (version_minor_ == 1 && host_idx_ == kAbsent) return Fail(400, "HTTP/1.1 without Host");
  if (content_length_ > limits_.max_body) return Fail(413, "request body too large");
  keep_alive_ = !conn_close_ && (version_minor_ == 1 || conn_keep_alive_);
  status_ = Status::kComplete;
  return status_;
}

std::optional<std::string_view> RequestParser::Field(int16_t idx) const {
  if (idx < 0) return std::nullopt;
  const Span& s = headers_[static_cast<size_t>(idx)];
  return View(s.value_off, s.value_len);
}

Header RequestParser::header(size_t i) const {
  const Span& s = headers_[i];
  return {View(s.name_off, s.name_len), View(s.value_off, s.value_len)};
}

std::optional<std::string_view> RequestParser::Find(std::string_view name) const {
  for (uint32_t i = 0; i < header_count_; ++i) {
    const Span& s = headers_[i];
    if (EqualsIgnoreCase(View(s.name_off, s.name_len), name)) {
      return View(s.value_off, s.value_len);
    }
  }
  return std::nullopt;
}

}  // namespace kev::httpd
