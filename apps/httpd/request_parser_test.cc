#include "apps/httpd/request_parser.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

namespace kev::httpd {
namespace {

using Status = RequestParser::Status;

// Everything observable about one parse, copied out so results of different splits compare.
struct Outcome {
  Status status = Status::kIncomplete;
  int error = 0;
  size_t consumed = 0;
  std::string method, target;
  int minor = -1;
  bool keep_alive = false;
  uint64_t content_length = 0;
  std::vector<std::pair<std::string, std::string>> headers;

  bool operator==(const Outcome&) const = default;
};

Outcome Capture(const RequestParser& p, Status st) {
  Outcome o;
  o.status = st;
  if (st == Status::kError) o.error = p.error_status();
  if (st != Status::kComplete) return o;
  o.consumed = p.consumed();
  o.method = std::string(p.method_name());
  o.target = std::string(p.target());
  o.minor = p.version_minor();
  o.keep_alive = p.keep_alive();
  o.content_length = p.content_length();
  for (size_t i = 0; i < p.header_count(); ++i) {
    o.headers.emplace_back(p.header(i).name, p.header(i).value);
  }
  return o;
}

// Feeds `in` growing a std::string by `step` bytes at a time (0 = all at once), so the buffer
// is reallocated between calls, as a real connection buffer may be.
Outcome ParseInSteps(std::string_view in, size_t step, const ParserLimits& limits = {}) {
  RequestParser p(limits);
  std::string buf;
  Status st = Status::kIncomplete;
  if (step == 0) step = in.size();
  for (size_t i = 0; i < in.size() && st == Status::kIncomplete; i += step) {
    buf.append(in.substr(i, step));
    buf.shrink_to_fit();
    st = p.Parse(buf);
  }
  return Capture(p, st);
}

// Parses whole and byte by byte; both must agree. Returns the outcome.
Outcome ParseBoth(std::string_view in, const ParserLimits& limits = {}) {
  Outcome whole = ParseInSteps(in, 0, limits);
  Outcome bytes = ParseInSteps(in, 1, limits);
  EXPECT_EQ(whole, bytes) << "split-dependent result for: " << in;
  return whole;
}

int ErrorOf(std::string_view in, const ParserLimits& limits = {}) {
  Outcome o = ParseBoth(in, limits);
  EXPECT_EQ(o.status, Status::kError) << in;
  return o.error;
}

TEST(RequestParserTest, SimpleGet) {
  const std::string req = "GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n";
  RequestParser p;
  ASSERT_EQ(p.Parse(req), Status::kComplete);
  EXPECT_EQ(p.method(), Method::kGet);
  EXPECT_EQ(p.method_name(), "GET");
  EXPECT_EQ(p.target(), "/index.html?x=1");
  EXPECT_EQ(p.version_major(), 1);
  EXPECT_EQ(p.version_minor(), 1);
  EXPECT_EQ(p.host(), "example.com");
  EXPECT_TRUE(p.keep_alive());
  EXPECT_EQ(p.consumed(), req.size());
  EXPECT_FALSE(p.has_content_length());
  EXPECT_EQ(p.content_length(), 0u);
  EXPECT_FALSE(p.range().has_value());
  EXPECT_FALSE(p.if_none_match().has_value());
  EXPECT_FALSE(p.if_modified_since().has_value());
  EXPECT_FALSE(p.connection().has_value());
}

TEST(RequestParserTest, ExtractsFieldsAndTrimsWhitespace) {
  const std::string req =
      "HEAD /a HTTP/1.1\r\n"
      "hOsT:\t h:8080 \t\r\n"
      "Range: bytes=0-9\r\n"
      "If-None-Match: \"abc\", W/\"def\"\r\n"
      "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
      "X-Empty:\r\n"
      "X-Obs-Text: caf\xc3\xa9\r\n"
      "X-Inner:  a  b  \r\n"
      "\r\n";
  RequestParser p;
  ASSERT_EQ(p.Parse(req), Status::kComplete);
  EXPECT_EQ(p.method(), Method::kHead);
  EXPECT_EQ(p.host(), "h:8080");
  EXPECT_EQ(p.range(), "bytes=0-9");
  EXPECT_EQ(p.if_none_match(), "\"abc\", W/\"def\"");
  EXPECT_EQ(p.if_modified_since(), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(p.Find("x-empty"), "");
  EXPECT_EQ(p.Find("X-OBS-TEXT"), "caf\xc3\xa9");
  EXPECT_EQ(p.Find("x-inner"), "a  b");
  EXPECT_FALSE(p.Find("x-missing").has_value());
  ASSERT_EQ(p.header_count(), 7u);
  EXPECT_EQ(p.header(0).name, "hOsT");
  EXPECT_EQ(p.header(6).value, "a  b");
}

TEST(RequestParserTest, MethodsAreCaseSensitiveTokens) {
  struct Case {
    const char* name;
    Method m;
  } cases[] = {
      {"GET", Method::kGet},     {"HEAD", Method::kHead},     {"POST", Method::kPost},
      {"PUT", Method::kPut},     {"DELETE", Method::kDelete}, {"OPTIONS", Method::kOptions},
      {"TRACE", Method::kTrace}, {"PATCH", Method::kPatch},   {"CONNECT", Method::kConnect},
      {"get", Method::kOther},   {"BREW", Method::kOther},    {"M-SEARCH", Method::kOther}};
  for (const Case& c : cases) {
    RequestParser p;
    std::string req = std::string(c.name) + " * HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(p.Parse(req), Status::kComplete) << c.name;
    EXPECT_EQ(p.method(), c.m) << c.name;
    EXPECT_EQ(p.method_name(), c.name);
    if (c.m != Method::kOther) {
      EXPECT_EQ(MethodName(c.m), c.name);
    }
  }
  EXPECT_EQ(MethodName(Method::kOther), "");
}

TEST(RequestParserTest, KeepAlivePerRfc9112) {
  auto ka = [](std::string_view head) {
    RequestParser p;
    std::string req = std::string(head) + "\r\n";
    EXPECT_EQ(p.Parse(req), Status::kComplete) << head;
    return p.keep_alive();
  };
  EXPECT_TRUE(ka("GET / HTTP/1.1\r\nHost: a\r\n"));
  EXPECT_FALSE(ka("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"));
  EXPECT_FALSE(ka("GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n"));
  EXPECT_FALSE(ka("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nConnection: close\r\n"));
  EXPECT_TRUE(ka("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n"));
  EXPECT_FALSE(ka("GET / HTTP/1.0\r\n"));
  EXPECT_TRUE(ka("GET / HTTP/1.0\r\nConnection: keep-alive\r\n"));
  EXPECT_TRUE(ka("GET / HTTP/1.0\r\nconnection: foo ,  KEEP-ALIVE\r\n"));
  EXPECT_FALSE(ka("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n"));
  EXPECT_TRUE(ka("GET / HTTP/1.2\r\nHost: a\r\n"));  // 1.2 is served as 1.1
}

TEST(RequestParserTest, Http10WithoutHostIsFine) {
  Outcome o = ParseBoth("GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(o.status, Status::kComplete);
  EXPECT_EQ(o.minor, 0);
}

TEST(RequestParserTest, ByteByByteEqualsWholeForRichRequest) {
  const std::string req =
      "\r\n\r\nGET http://h/p%20q?x#f HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
      "Connection: keep-alive\r\nRange: bytes=-5\r\nX: \xff\r\n\r\nabc";
  Outcome whole = ParseInSteps(req, 0);
  ASSERT_EQ(whole.status, Status::kComplete);
  EXPECT_EQ(whole.consumed, req.size() - 3);
  EXPECT_EQ(whole.content_length, 3u);
  EXPECT_EQ(whole.target, "http://h/p%20q?x#f");
  for (size_t step = 1; step <= 7; ++step) EXPECT_EQ(ParseInSteps(req, step), whole) << step;
  // Every two-chunk split.
  for (size_t cut = 0; cut <= req.size(); ++cut) {
    RequestParser p;
    Status st = p.Parse(std::string_view(req).substr(0, cut));
    if (st == Status::kIncomplete) st = p.Parse(req);
    EXPECT_EQ(Capture(p, st), whole) << cut;
  }
}

TEST(RequestParserTest, ViewsFollowTheBufferWhenItMoves) {
  const std::string req = "GET /moved HTTP/1.1\r\nHost: h\r\n\r\n";
  RequestParser p;
  std::string first = req.substr(0, 10);
  EXPECT_EQ(p.Parse(first), Status::kIncomplete);
  std::string second = req;  // a different allocation with the same prefix
  ASSERT_EQ(p.Parse(second), Status::kComplete);
  first.assign(first.size(), 'Z');  // the old buffer no longer matters
  EXPECT_EQ(p.target(), "/moved");
  EXPECT_EQ(p.target().data(), second.data() + 4);
  EXPECT_EQ(p.host(), "h");
}

TEST(RequestParserTest, PipelinedRequestsWithBodies) {
  const std::string stream =
      "GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
      "GET /two HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nHELLO"
      "HEAD /three HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
      "GET /never";
  std::vector<std::string> targets;
  RequestParser p;
  std::string buf;
  size_t fed = 0;
  bool closed = false;
  // Feed 3 bytes at a time and serve whatever completes, like a connection loop.
  while (!closed && fed < stream.size()) {
    buf.append(stream.substr(fed, 3));
    fed += 3;
    for (;;) {
      Status st = p.Parse(buf);
      ASSERT_NE(st, Status::kError) << p.error_reason();
      if (st == Status::kIncomplete) break;
      const size_t total = p.consumed() + p.content_length();
      if (buf.size() < total) break;  // body not fully here yet: wait (parser stays complete)
      targets.emplace_back(p.target());
      const bool keep = p.keep_alive();
      buf.erase(0, total);
      p.Reset();
      if (!keep) {
        closed = true;
        break;
      }
    }
  }
  EXPECT_EQ(targets, (std::vector<std::string>{"/one", "/two", "/three"}));
  EXPECT_TRUE(closed);
}

TEST(RequestParserTest, DoesNotReadPastTheHead) {
  // The bytes after the head are garbage for a parser, but they are the body: untouched.
  const std::string req =
      "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n" + std::string("\x01\r\n\0", 4);
  RequestParser p;
  ASSERT_EQ(p.Parse(req), Status::kComplete);
  EXPECT_EQ(p.consumed(), req.size() - 4);
}

TEST(RequestParserTest, LeadingEmptyLines) {
  Outcome o = ParseBoth("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(o.status, Status::kComplete);
  EXPECT_EQ(o.consumed, 31u);
  std::string many;
  for (uint32_t i = 0; i <= RequestParser::kMaxLeadingEmptyLines; ++i) many += "\r\n";
  EXPECT_EQ(ErrorOf(many + "GET / HTTP/1.0\r\n\r\n"), 400);
}

TEST(RequestParserTest, RequestLineErrors) {
  EXPECT_EQ(ErrorOf("GET /\r\n\r\n"), 400);        // HTTP/0.9 form
  EXPECT_EQ(ErrorOf("GET  / HTTP/1.1\r\n"), 400);  // empty target
  EXPECT_EQ(ErrorOf("GET / HTTP/1.1 \r\n"), 400);  // trailing space
  EXPECT_EQ(ErrorOf("GET / http/1.1\r\n"), 400);
  EXPECT_EQ(ErrorOf("GET / HTTP/1.10\r\n"), 400);
  EXPECT_EQ(ErrorOf("GET / HTTP/1\r\n"), 400);
  EXPECT_EQ(ErrorOf("GET / HTTP/a.1\r\n"), 400);
  EXPECT_EQ(ErrorOf("GET / HTTP/1.1\rX"), 400);      // bare CR
  EXPECT_EQ(ErrorOf("GET / HTTP/1.1\n\n"), 400);     // bare LF (strict default)
  EXPECT_EQ(ErrorOf("GET /a b HTTP/1.1\r\n"), 400);  // space in target
  EXPECT_EQ(ErrorOf("GET /a\tb HTTP/1.1\r\n"), 400);
  EXPECT_EQ(ErrorOf("GET /a\x7f HTTP/1.1\r\n"), 400);
  EXPECT_EQ(ErrorOf("GET /caf\xc3\xa9 HTTP/1.1\r\n"), 400);  // raw 8-bit in target
  EXPECT_EQ(ErrorOf(std::string("GET /a\0 HTTP/1.1\r\n", 19)), 400);
  EXPECT_EQ(ErrorOf("G(T / HTTP/1.1\r\n"), 400);  // '(' is not a tchar
  EXPECT_EQ(ErrorOf("GET\t/ HTTP/1.1\r\n"), 400);
  EXPECT_EQ(ErrorOf(" GET / HTTP/1.1\r\n"), 400);
  EXPECT_EQ(ErrorOf("\r\r\n"), 400);
  EXPECT_EQ(ErrorOf("\n"), 400);
}

TEST(RequestParserTest, UnsupportedVersionIs505) {
  EXPECT_EQ(ErrorOf("GET / HTTP/2.0\r\n"), 505);
  EXPECT_EQ(ErrorOf("GET / HTTP/0.9\r\n"), 505);
  EXPECT_EQ(ErrorOf("GET / HTTP/3.1\r\n"), 505);
}

TEST(RequestParserTest, LongMethodIs501) {
  const std::string ok(RequestParser::kMaxMethodLength, 'A');
  EXPECT_EQ(ParseBoth(ok + " / HTTP/1.0\r\n\r\n").status, Status::kComplete);
  // Detected before the request line ends.
  EXPECT_EQ(ErrorOf(ok + "A"), 501);
}

TEST(RequestParserTest, LongTargetIs414AsSoonAsItIsTooLong) {
  ParserLimits limits;
  limits.max_target = 64;
  const std::string ok = "/" + std::string(63, 'a');
  EXPECT_EQ(ParseBoth("GET " + ok + " HTTP/1.0\r\n\r\n", limits).status, Status::kComplete);
  EXPECT_EQ(ErrorOf("GET " + ok + "a", limits), 414);  // no SP yet: still rejected
  EXPECT_EQ(ErrorOf("GET " + ok + "a HTTP/1.0\r\n\r\n", limits), 414);
}

TEST(RequestParserTest, HeaderSyntaxErrors) {
  const std::string rl = "GET / HTTP/1.1\r\nHost: a\r\n";
  EXPECT_EQ(ErrorOf(rl + "X : y\r\n\r\n"), 400);  // whitespace before colon
  EXPECT_EQ(ErrorOf(rl + "X\t: y\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf(rl + "X: y\r\n z\r\n\r\n"), 400);             // obs-fold
  EXPECT_EQ(ErrorOf(rl + "X: y\r\n\tz\r\n\r\n"), 400);            // obs-fold with HTAB
  EXPECT_EQ(ErrorOf("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400);  // ws before first field
  EXPECT_EQ(ErrorOf(rl + ": y\r\n\r\n"), 400);                    // empty name
  EXPECT_EQ(ErrorOf(rl + "X(: y\r\n\r\n"), 400);                  // invalid token char
  EXPECT_EQ(ErrorOf(rl + "X y\r\n\r\n"), 400);                    // no colon
  EXPECT_EQ(ErrorOf(rl + "Xy\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf(rl + "X: a\rb\r\n\r\n"), 400);                   // bare CR in value
  EXPECT_EQ(ErrorOf(rl + "X: a\nY: b\r\n\r\n"), 400);                // bare LF in value
  EXPECT_EQ(ErrorOf(rl + "X: a\r\n\r\r\n"), 400);                    // bare CR at the end
  EXPECT_EQ(ErrorOf(rl + "X: a\r\n\n"), 400);                        // bare LF at the end
  EXPECT_EQ(ErrorOf(rl + std::string("X: a\0b\r\n\r\n", 10)), 400);  // NUL
  EXPECT_EQ(ErrorOf(rl + "X: a\x01\r\n\r\n"), 400);                  // CTL
  EXPECT_EQ(ErrorOf(rl + "X: a\x7f\r\n\r\n"), 400);                  // DEL
  EXPECT_EQ(ErrorOf(rl + "X\x80: a\r\n\r\n"), 400);                  // 8-bit in name
}

TEST(RequestParserTest, BareLfAcceptedWhenAllowed) {
  ParserLimits limits;
  limits.accept_bare_lf = true;
  Outcome o = ParseBoth("\nGET / HTTP/1.1\nHost: a\nX: b\r\n\n", limits);
  ASSERT_EQ(o.status, Status::kComplete);
  EXPECT_EQ(o.headers.size(), 2u);
  EXPECT_EQ(o.headers[0].second, "a");
  // A bare CR is still an error.
  EXPECT_EQ(ErrorOf("GET / HTTP/1.1\nHost: a\rb\n\n", limits), 400);
}

TEST(RequestParserTest, HeaderSectionLimitIs431) {
  ParserLimits limits;
  limits.max_header_bytes = 100;
  const std::string rl = "GET / HTTP/1.1\r\n";
  // Exactly 100 bytes of header section (98 + final CRLF) is accepted.
  const std::string fill = "Host: a\r\nX: " + std::string(98 - 9 - 5, 'v') + "\r\n";
  ASSERT_EQ(fill.size(), 98u);
  EXPECT_EQ(ParseBoth(rl + fill + "\r\n", limits).status, Status::kComplete);
  EXPECT_EQ(ErrorOf(rl + "Host: a\r\nX: " + std::string(98 - 9 - 4, 'v') + "\r\n\r\n", limits),
            431);
  // A never-ending field line is rejected without waiting for its end.
  EXPECT_EQ(ErrorOf(rl + "X: " + std::string(200, 'v'), limits), 431);
  EXPECT_EQ(ErrorOf(rl + std::string(200, 'X'), limits), 431);
}

TEST(RequestParserTest, TooManyFieldsIs431) {
  ParserLimits limits;
  limits.max_headers = 3;
  std::string req = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n";
  EXPECT_EQ(ParseBoth(req + "\r\n", limits).status, Status::kComplete);
  EXPECT_EQ(ErrorOf(req + "C: 3\r\n\r\n", limits), 431);
  // The default limit is clamped to the inline capacity.
  limits.max_headers = 1000;
  req = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (uint32_t i = 1; i < RequestParser::kMaxHeaders; ++i) req += "A: 1\r\n";
  EXPECT_EQ(ParseBoth(req + "\r\n", limits).status, Status::kComplete);
  EXPECT_EQ(ErrorOf(req + "B: 2\r\n\r\n", limits), 431);
}

TEST(RequestParserTest, HostRules) {
  EXPECT_EQ(ErrorOf("GET / HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf("GET http://a/ HTTP/1.1\r\n\r\n"), 400);  // absolute-form still needs it
  EXPECT_EQ(ErrorOf("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf("GET / HTTP/1.1\r\nHost: a@b\r\n\r\n"), 400);
  EXPECT_EQ(ParseBoth("GET / HTTP/1.1\r\nHost:\r\n\r\n").status, Status::kComplete);
  EXPECT_EQ(ParseBoth("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n").status, Status::kComplete);
}

TEST(RequestParserTest, ContentLength) {
  auto cl = [](std::string_view fields) {
    return ParseBoth("POST / HTTP/1.1\r\nHost: a\r\n" + std::string(fields) + "\r\n");
  };
  Outcome o = cl("Content-Length: 42\r\n");
  ASSERT_EQ(o.status, Status::kComplete);
  EXPECT_EQ(o.content_length, 42u);
  EXPECT_EQ(cl("Content-Length: 0\r\n").content_length, 0u);
  EXPECT_EQ(cl("Content-Length: 5, 5\r\n").content_length, 5u);
  EXPECT_EQ(cl("Content-Length: 5\r\ncontent-length: 5\r\n").content_length, 5u);
  EXPECT_EQ(cl("Content-Length: 007\r\n").content_length, 7u);
  const int kBad = 400;
  EXPECT_EQ(cl("Content-Length: 5, 6\r\n").error, kBad);
  EXPECT_EQ(cl("Content-Length: 5\r\nContent-Length: 6\r\n").error, kBad);
  EXPECT_EQ(cl("Content-Length:\r\n").error, kBad);
  EXPECT_EQ(cl("Content-Length: -1\r\n").error, kBad);
  EXPECT_EQ(cl("Content-Length: +1\r\n").error, kBad);
  EXPECT_EQ(cl("Content-Length: 1 2\r\n").error, kBad);
  EXPECT_EQ(cl("Content-Length: 0x10\r\n").error, kBad);
  EXPECT_EQ(cl("Content-Length: 5,\r\n").error, kBad);
  // Too large for the limit, or for 64 bits: 413, never a wrapped-around small number.
  EXPECT_EQ(cl("Content-Length: 1048577\r\n").error, 413);
  EXPECT_EQ(cl("Content-Length: 1048576\r\n").status, Status::kComplete);
  EXPECT_EQ(cl("Content-Length: 99999999999999999999999999999\r\n").error, 413);
  EXPECT_EQ(cl("Content-Length: 18446744073709551616\r\n").error, 413);
}

TEST(RequestParserTest, BodyOnGetIsReportedForDraining) {
  RequestParser p;
  std::string req = "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789";
  ASSERT_EQ(p.Parse(req), Status::kComplete);
  EXPECT_TRUE(p.has_content_length());
  EXPECT_EQ(p.content_length(), 10u);
  EXPECT_EQ(p.consumed() + p.content_length(), req.size());
}

TEST(RequestParserTest, TransferEncoding) {
  const std::string rl = "POST / HTTP/1.1\r\nHost: a\r\n";
  EXPECT_EQ(ErrorOf(rl + "Transfer-Encoding: chunked\r\n\r\n"), 411);
  EXPECT_EQ(ErrorOf(rl + "Transfer-Encoding: gzip, Chunked\r\n\r\n"), 411);
  EXPECT_EQ(ErrorOf(rl + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"), 411);
  EXPECT_EQ(ErrorOf(rl + "Transfer-Encoding: chunked;x=1\r\n\r\n"), 411);
  EXPECT_EQ(ErrorOf(rl + "Transfer-Encoding: chunked, gzip\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf(rl + "Transfer-Encoding: gzip\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf(rl + "Transfer-Encoding: chunkedx\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf(rl + "Transfer-Encoding:\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf(rl + "Transfer-Encoding: ,\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf(rl + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf(rl + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"), 400);
  EXPECT_EQ(ErrorOf("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
}

TEST(RequestParserTest, DuplicateRangeOrImsIsIgnored) {
  RequestParser p;
  std::string req =
      "GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=0-1\r\nRange: bytes=2-3\r\n"
      "If-Modified-Since: a\r\nIf-Modified-Since: b\r\n"
      "If-None-Match: \"x\"\r\nIf-None-Match: \"y\"\r\n\r\n";
  ASSERT_EQ(p.Parse(req), Status::kComplete);
  EXPECT_FALSE(p.range().has_value());
  EXPECT_FALSE(p.if_modified_since().has_value());
  EXPECT_EQ(p.if_none_match(), "\"x\"");
}

TEST(RequestParserTest, ErrorsAndCompletionAreSticky) {
  RequestParser p;
  ASSERT_EQ(p.Parse("GET / HTTP/9.9\r\n"), Status::kError);
  EXPECT_EQ(p.error_status(), 505);
  EXPECT_STRNE(p.error_reason(), "");
  EXPECT_EQ(p.Parse("GET / HTTP/9.9\r\nmore"), Status::kError);
  p.Reset();
  std::string req = "GET / HTTP/1.0\r\n\r\n";
  ASSERT_EQ(p.Parse(req), Status::kComplete);
  req += "garbage";
  EXPECT_EQ(p.Parse(req), Status::kComplete);
  EXPECT_EQ(p.consumed(), 18u);
}

TEST(RequestParserDeathTest, ShrunkenBufferAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        RequestParser p;
        (void)p.Parse("GET /abc");
        (void)p.Parse("GET");
      },
      "");
}

// Deterministic mini-fuzz: random requests built from valid and invalid pieces must give the
// same outcome under random splits.
TEST(RequestParserTest, RandomSplitsAgree) {
  std::mt19937 rng(12345);
  const std::vector<std::string> pieces = {"GET ",
                                           "HEAD ",
                                           "/a",
                                           "/%2e",
                                           " ",
                                           "HTTP/1.1",
                                           "HTTP/1.0",
                                           "\r\n",
                                           "\r",
                                           "\n",
                                           "Host: h",
                                           "Content-Length: 3",
                                           "Transfer-Encoding: chunked",
                                           ":",
                                           " x",
                                           "\t",
                                           "Connection: close",
                                           std::string(1, '\0'),
                                           "\x80",
                                           "Range: bytes=1-"};
  for (int iter = 0; iter < 20000; ++iter) {
    std::string req;
    const int n = static_cast<int>(rng() % 16);
    if (rng() % 2) req = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < n; ++i) req += pieces[rng() % pieces.size()];
    if (rng() % 2) req += "\r\n\r\n";
    Outcome whole = ParseInSteps(req, 0);
    RequestParser p;
    std::string buf;
    Status st = Status::kIncomplete;
    size_t i = 0;
    while (i < req.size() && st == Status::kIncomplete) {
      size_t take = 1 + rng() % 5;
      buf.append(req.substr(i, take));
      i += take;
      st = p.Parse(buf);
    }
    ASSERT_EQ(Capture(p, st), whole) << req;
  }
}

}  // namespace
}  // namespace kev::httpd
