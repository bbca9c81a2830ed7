// libFuzzer target for kev's HTTP request parsing: the request-head parser (whole input vs.
// random splits, pipelined), the request-target normaliser, and the field-value helpers the
// server applies to parsed headers. Built outside Bazel by `tools/fuzz.sh http_parser`.
//
// Input layout: byte 0 selects options (bit 0: accept bare LF; bit 1: tiny limits, so the
// 414/431/413 paths are reachable; bit 2: the normaliser's OPTIONS mode), byte 1 seeds the
// split pattern, the rest is the byte stream a client sent on one connection.
//
// Properties checked (any violation aborts, which libFuzzer reports as a crash):
//  - parsing is split-independent: the same sequence of outcomes whatever the chunking, with
//    the buffer reallocated between calls;
//  - every completed request satisfies the parser's contracts (consumed within the input,
//    content_length <= max_body, views inside the buffer);
//  - a normalised path is clean: relative, no empty/"."/".." segment, no '\', NUL or control
//    byte, never longer than the target;
//  - a satisfiable range lies inside the representation; dates round-trip.

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "apps/httpd/http_headers.h"
#include "apps/httpd/mime.h"
#include "apps/httpd/path.h"
#include "apps/httpd/request_parser.h"

namespace {

using kev::httpd::ParserLimits;
using kev::httpd::RequestParser;
using Status = RequestParser::Status;

#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                 \
    }                                                                          \
  } while (0)

struct Outcome {
  Status status;
  int error = 0;
  size_t consumed = 0;
  uint64_t content_length = 0;
  bool keep_alive = false;
  int minor = 0;
  std::string method, target, host;
  std::vector<std::string> headers;  // "name\0value"

  bool operator==(const Outcome&) const = default;
};

constexpr int64_t kNow = 1750000000;

// Normalises `target` and checks the result is a clean relative path.
void CheckPath(std::string_view target, bool options_mode, std::string* scratch) {
  const kev::httpd::TargetPath t = kev::httpd::NormalizeTarget(target, options_mode, scratch);
  if (t.status != 0) {
    FUZZ_CHECK(t.status == 400 && t.reason[0] != '\0');
    return;
  }
  const std::string& path = *scratch;
  FUZZ_CHECK(path.size() <= target.size());
  FUZZ_CHECK(!t.asterisk || (options_mode && path.empty() && target == "*"));
  FUZZ_CHECK(path.find('\\') == std::string::npos);
  for (unsigned char c : path) FUZZ_CHECK(c >= 0x20 && c != 0x7f);
  // Every segment is a real name: no empty (leading, trailing or double slash), ".", "..".
  size_t start = 0;
  while (!path.empty() && start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string_view seg(path.data() + start, end - start);
    FUZZ_CHECK(!seg.empty() && seg != "." && seg != "..");
    start = end + 1;
  }
  FUZZ_CHECK(!kev::httpd::MimeTypeForPath(path).empty());
}

// Exercises everything downstream of a completed parse, checking its contracts.
void CheckRequest(const RequestParser& p, std::string_view buf, const ParserLimits& limits,
                  bool options_mode, std::string* scratch) {
  FUZZ_CHECK(p.consumed() <= buf.size());
  FUZZ_CHECK(p.content_length() <= limits.max_body);
  const std::string_view target = p.target();
  FUZZ_CHECK(target.data() >= buf.data() &&
             target.data() + target.size() <= buf.data() + p.consumed());
  FUZZ_CHECK(!target.empty() && target.size() <= limits.max_target);

  CheckPath(target, options_mode, scratch);

  const uint64_t size = p.content_length() * 7 + (target.size() & 3);  // varied, reproducible
  if (auto range = p.range()) {
    kev::httpd::ByteRange r;
    if (kev::httpd::ParseRange(*range, size, &r) == kev::httpd::RangeStatus::kSatisfiable) {
      FUZZ_CHECK(r.first <= r.last && r.last < size);
      FUZZ_CHECK(!kev::httpd::FormatContentRange(r, size).view().empty());
    }
  }
  const auto etag = kev::httpd::MakeETag(size, kNow, target.size());
  if (auto inm = p.if_none_match()) (void)kev::httpd::IfNoneMatchMatches(*inm, etag.view());
  if (auto ims = p.if_modified_since()) {
    if (auto when = kev::httpd::ParseHttpDate(*ims, kNow)) {
      if (*when >= 0 && *when <= 253402300799) {
        const auto text = kev::httpd::FormatHttpDate(*when);
        FUZZ_CHECK(kev::httpd::ParseHttpDate(text.view(), kNow) == when);
      }
    }
  }
  (void)kev::httpd::IsNotModified(p.if_none_match(), p.if_modified_since(), etag.view(), kNow,
                                  kNow);
}

Outcome Capture(const RequestParser& p, Status st) {
  Outcome o{st};
  if (st == Status::kError) {
    o.error = p.error_status();
    FUZZ_CHECK(o.error >= 400 && o.error <= 505);
    FUZZ_CHECK(p.error_reason() != nullptr && p.error_reason()[0] != '\0');
  }
  if (st != Status::kComplete) return o;
  o.consumed = p.consumed();
  o.content_length = p.content_length();
  o.keep_alive = p.keep_alive();
  o.minor = p.version_minor();
  o.method = std::string(p.method_name());
  o.target = std::string(p.target());
  o.host = std::string(p.host().value_or("<none>"));
  for (size_t i = 0; i < p.header_count(); ++i) {
    o.headers.push_back(std::string(p.header(i).name) + '\0' + std::string(p.header(i).value));
  }
  return o;
}

// The whole stream at once; pipelined requests are parsed in place.
std::vector<Outcome> ParseWhole(std::string_view in, const ParserLimits& limits, bool options,
                                std::string* scratch) {
  std::vector<Outcome> out;
  RequestParser p(limits);
  size_t off = 0;
  while (off < in.size()) {
    const std::string_view rest = in.substr(off);
    const Status st = p.Parse(rest);
    out.push_back(Capture(p, st));
    if (st != Status::kComplete) break;
    CheckRequest(p, rest, limits, options, scratch);
    const uint64_t total = p.consumed() + p.content_length();
    if (total > rest.size()) break;  // the body is cut off by the end of the input
    off += total;
    p.Reset();
  }
  return out;
}

// The same stream in pseudo-random chunks appended to a growing std::string.
std::vector<Outcome> ParseChunked(std::string_view in, const ParserLimits& limits, uint32_t seed) {
  std::vector<Outcome> out;
  RequestParser p(limits);
  std::string buf;
  size_t fed = 0;
  uint32_t x = seed * 2654435761u + 1;
  for (;;) {
    // Parse whatever is buffered; serve complete requests.
    Status st = Status::kIncomplete;
    bool stop = false;
    while (!buf.empty()) {
      st = p.Parse(buf);
      if (st == Status::kError) {
        out.push_back(Capture(p, st));
        return out;
      }
      if (st == Status::kIncomplete) break;
      const uint64_t total = p.consumed() + p.content_length();
      if (total > buf.size()) {
        if (fed == in.size()) {
          out.push_back(Capture(p, st));
          stop = true;
        }
        break;
      }
      out.push_back(Capture(p, st));
      buf.erase(0, total);
      p.Reset();
    }
    if (stop) return out;
    if (fed == in.size()) {
      if (!buf.empty()) out.push_back(Capture(p, Status::kIncomplete));
      return out;
    }
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    size_t take = (x % 4 == 0) ? 1 : 1 + x % 23;
    take = std::min(take, in.size() - fed);
    buf.append(in.substr(fed, take));
    buf.shrink_to_fit();  // move the buffer: views must follow it
    fed += take;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t flags = data[0];
  const uint8_t seed = data[1];
  const std::string_view in(reinterpret_cast<const char*>(data) + 2, size - 2);

  ParserLimits limits;
  limits.accept_bare_lf = flags & 1;
  if (flags & 2) {
    limits.max_target = 48;
    limits.max_header_bytes = 192;
    limits.max_headers = 6;
    limits.max_body = 64;
  }
  const bool options = flags & 4;

  std::string scratch;
  const std::vector<Outcome> whole = ParseWhole(in, limits, options, &scratch);
  const std::vector<Outcome> chunked = ParseChunked(in, limits, seed);
  FUZZ_CHECK(whole == chunked);

  // The normaliser must also hold up on arbitrary bytes, not only on parser-vetted targets.
  CheckPath(in, options, &scratch);
  (void)kev::httpd::MimeTypeForPath(in);
  kev::httpd::ByteRange r;
  if (kev::httpd::ParseRange(in, size, &r) == kev::httpd::RangeStatus::kSatisfiable) {
    FUZZ_CHECK(r.first <= r.last && r.last < size);
  }
  (void)kev::httpd::ParseHttpDate(in, kNow);
  return 0;
}
