#include "apps/httpd/http_headers.h"

#include <gtest/gtest.h>
#include <time.h>

#include <random>
#include <string>

namespace kev::httpd {
namespace {

constexpr int64_t kNow = 1750000000;        // 2025-06-15
constexpr int64_t kRfcExample = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT

std::string Fmt(int64_t t) { return std::string(FormatHttpDate(t).view()); }

TEST(HttpDateTest, FormatsImfFixdate) {
  EXPECT_EQ(Fmt(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(Fmt(kRfcExample), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(Fmt(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
  EXPECT_EQ(Fmt(2147483648), "Tue, 19 Jan 2038 03:14:08 GMT");
  EXPECT_EQ(Fmt(-1), "Thu, 01 Jan 1970 00:00:00 GMT");  // clamped
  EXPECT_EQ(Fmt(INT64_MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
  EXPECT_EQ(FormatHttpDate(kNow).size, kHttpDateLength);
}

TEST(HttpDateTest, FormatAgreesWithGmtimeAndRoundTrips) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    const auto t = static_cast<int64_t>(rng() % 253402300800ULL);
    const time_t tt = static_cast<time_t>(t);
    struct tm tm;
    ASSERT_NE(gmtime_r(&tt, &tm), nullptr);
    char expect[64];
    strftime(expect, sizeof(expect), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    ASSERT_EQ(Fmt(t), expect) << t;
    ASSERT_EQ(ParseHttpDate(Fmt(t), kNow), t) << t;
  }
}

TEST(HttpDateTest, ParsesAllThreeForms) {
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT", kNow), kRfcExample);
  EXPECT_EQ(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT", kNow), kRfcExample);
  EXPECT_EQ(ParseHttpDate("Sun Nov  6 08:49:37 1994", kNow), kRfcExample);
  EXPECT_EQ(ParseHttpDate("Sun Nov 06 08:49:37 1994", kNow), kRfcExample);
  EXPECT_EQ(ParseHttpDate("Tue, 29 Feb 2000 00:00:00 GMT", kNow), 951782400);
  EXPECT_EQ(ParseHttpDate("Wed, 31 Dec 1969 23:59:59 GMT", kNow), -1);
  // The weekday is not cross-checked (a valid name is enough).
  EXPECT_EQ(ParseHttpDate("Mon, 06 Nov 1994 08:49:37 GMT", kNow), kRfcExample);
  // A leap second is accepted.
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:60 GMT", kNow), kRfcExample + 23);
}

TEST(HttpDateTest, Rfc850TwoDigitYears) {
  // From 2025: "30" is 2030 (5 years ahead), "94" would be 2094 (69 ahead) so 1994.
  EXPECT_EQ(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT", kNow), kRfcExample);
  EXPECT_EQ(ParseHttpDate("Sunday, 06-Nov-30 00:00:00 GMT", kNow),
            ParseHttpDate("Wed, 06 Nov 2030 00:00:00 GMT", kNow));
  // From 1994: "45" would be 2045, 51 years ahead → 1945; "44" stays 2044.
  EXPECT_EQ(ParseHttpDate("Tuesday, 06-Nov-45 08:49:37 GMT", kRfcExample), -762189023);
  EXPECT_EQ(ParseHttpDate("Sunday, 06-Nov-44 00:00:00 GMT", kRfcExample),
            ParseHttpDate("Sun, 06 Nov 2044 00:00:00 GMT", kNow));
}

TEST(HttpDateTest, RejectsInvalidDates) {
  for (const char* s : {
           "",
           "Sun, 06 Nov 1994 08:49:37 UTC",
           "sun, 06 Nov 1994 08:49:37 GMT",  // case-sensitive
           "Sun, 06 nov 1994 08:49:37 GMT",
           "Sun, 06 Nov 1994 08:49:37 gmt",
           "Sun, 6 Nov 1994 08:49:37 GMT",  // IMF day has two digits
           "Sun, 06 Nov 94 08:49:37 GMT",
           "Sun, 06 Nov 1994 08:49:37 GMT ",
           " Sun, 06 Nov 1994 08:49:37 GMT",
           "Sun,  06 Nov 1994 08:49:37 GMT",
           "Sux, 06 Nov 1994 08:49:37 GMT",
           "Sun, 06 Nox 1994 08:49:37 GMT",
           "Sun, 31 Feb 1994 08:49:37 GMT",
           "Sun, 29 Feb 1900 08:49:37 GMT",  // 1900 is not a leap year
           "Sun, 00 Nov 1994 08:49:37 GMT",
           "Sun, 31 Nov 1994 08:49:37 GMT",
           "Sun, 06 Nov 1994 24:00:00 GMT",
           "Sun, 06 Nov 1994 08:60:00 GMT",
           "Sun, 06 Nov 1994 08:49:61 GMT",
           "Sun, 06 Nov 1994 08-49-37 GMT",
           "Sun, 06 Nov 199a 08:49:37 GMT",
           "Sun, 06 Nov 1994 8:49:37 GMT",
           "Sun, 06 Nov 1994 +8:49:37 GMT",
           "Sun, 06-Nov-94 08:49:37 GMT",  // RFC 850 needs the long day name
           "Sunday, 06-Nov-1994 08:49:37 GMT",
           "Sunday, 06 Nov 94 08:49:37 GMT",
           "Sunny, 06-Nov-94 08:49:37 GMT",
           "Sunday, 06-Nov-94 08:49:37",
           "Sun Nov  6 08:49:37 94",
           "Sun Nov 6 08:49:37 1994",
           "Sun Nov  6 08:49:37 1994 ",
           "Sun Nov 31 08:49:37 1994",
           "1994-11-06T08:49:37Z",
           "784111777",
       }) {
    EXPECT_FALSE(ParseHttpDate(s, kNow).has_value()) << s;
  }
}

TEST(RangeTest, SingleRanges) {
  ByteRange r;
  auto ok = [&r](std::string_view v, uint64_t size, uint64_t first, uint64_t last) {
    r = {};
    ASSERT_EQ(ParseRange(v, size, &r), RangeStatus::kSatisfiable) << v;
    EXPECT_EQ(r.first, first) << v;
    EXPECT_EQ(r.last, last) << v;
  };
  ok("bytes=0-0", 100, 0, 0);
  ok("bytes=0-99", 100, 0, 99);
  ok("bytes=10-19", 100, 10, 19);
  ok("bytes=10-1000", 100, 10, 99);
  ok("bytes=99-", 100, 99, 99);
  ok("bytes=0-", 100, 0, 99);
  ok("bytes=-1", 100, 99, 99);
  ok("bytes=-10", 100, 90, 99);
  ok("bytes=-100", 100, 0, 99);
  ok("bytes=-1000", 100, 0, 99);
  ok("BYTES=1-2", 100, 1, 2);
  ok("Bytes= 1-2 ", 100, 1, 2);
  ok("bytes=1-2,", 100, 1, 2);  // empty list elements are tolerated
  ok("bytes=, ,1-2", 100, 1, 2);
  ok("bytes=0-99999999999999999999999", 100, 0, 99);  // saturates
  ok("bytes=-99999999999999999999999", 100, 0, 99);
  EXPECT_EQ(r.length(), 100u);
}

TEST(RangeTest, Unsatisfiable) {
  ByteRange r{7, 7};
  EXPECT_EQ(ParseRange("bytes=100-", 100, &r), RangeStatus::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=100-200", 100, &r), RangeStatus::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=-0", 100, &r), RangeStatus::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=99999999999999999999999-", 100, &r), RangeStatus::kUnsatisfiable);
  // A zero-length representation has no satisfiable range.
  EXPECT_EQ(ParseRange("bytes=0-", 0, &r), RangeStatus::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=0-0", 0, &r), RangeStatus::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=-5", 0, &r), RangeStatus::kUnsatisfiable);
  EXPECT_EQ(r.first, 7u);  // untouched
}

TEST(RangeTest, IgnoredRanges) {
  ByteRange r;
  for (const char* v : {"",
                        "bytes",
                        "bytes=",
                        "bytes=,",
                        "items=0-1",
                        "byte=0-1",
                        "bytes =0-1",
                        "bytes=5-4",  // last < first: invalid, not 416
                        "bytes=a-b",
                        "bytes=1-b",
                        "bytes=-",
                        "bytes=--1",
                        "bytes=1--2",
                        "bytes=+1-2",
                        "bytes=1 -2",
                        "bytes=0x1-2",
                        "bytes=1",
                        "bytes=-1-2",
                        "bytes=0-1,2-3",  // several ranges: policy is a full 200
                        "bytes=0-1, 0-1",
                        "bytes=-1,-1",
                        "bytes=0-0,500-600"}) {
    EXPECT_EQ(ParseRange(v, 100, &r), RangeStatus::kIgnore) << v;
  }
}

TEST(RangeTest, ContentRangeFormatting) {
  EXPECT_EQ(FormatContentRange({0, 99}, 100).view(), "bytes 0-99/100");
  EXPECT_EQ(FormatContentRange({UINT64_MAX - 1, UINT64_MAX - 1}, UINT64_MAX).view(),
            "bytes 18446744073709551614-18446744073709551614/18446744073709551615");
  EXPECT_EQ(FormatUnsatisfiedRange(0).view(), "bytes */0");
  EXPECT_EQ(FormatUnsatisfiedRange(12345).view(), "bytes */12345");
}

TEST(ETagTest, Format) {
  EXPECT_EQ(MakeETag(0, 0, 0).view(), "\"0-0-0\"");
  EXPECT_EQ(MakeETag(0x1234, 0x5f00, 0xab).view(), "\"ab-1234-5f00\"");
  const auto max = MakeETag(UINT64_MAX, -1, UINT64_MAX);
  EXPECT_EQ(max.size, 52u);
  EXPECT_EQ(max.view(), "\"ffffffffffffffff-ffffffffffffffff-ffffffffffffffff\"");
  // Any change of identity changes the tag.
  EXPECT_NE(MakeETag(1, 2, 3).view(), MakeETag(1, 2, 4).view());
  EXPECT_NE(MakeETag(1, 2, 3).view(), MakeETag(1, 3, 3).view());
  EXPECT_NE(MakeETag(1, 2, 3).view(), MakeETag(2, 2, 3).view());
}

TEST(ETagTest, IfNoneMatch) {
  const std::string etag(MakeETag(10, 20, 30).view());  // "1e-a-14"
  EXPECT_TRUE(IfNoneMatchMatches(etag, etag));
  EXPECT_TRUE(IfNoneMatchMatches("*", etag));
  EXPECT_TRUE(IfNoneMatchMatches(" * ", etag));
  EXPECT_TRUE(IfNoneMatchMatches("W/" + etag, etag));  // weak comparison
  EXPECT_TRUE(IfNoneMatchMatches(etag, "W/" + etag));
  EXPECT_TRUE(IfNoneMatchMatches("\"x\", " + etag, etag));
  EXPECT_TRUE(IfNoneMatchMatches("\"x\",W/" + etag + " , \"y\"", etag));
  EXPECT_TRUE(IfNoneMatchMatches(",," + etag + ",", etag));
  EXPECT_FALSE(IfNoneMatchMatches("\"x\"", etag));
  EXPECT_FALSE(IfNoneMatchMatches("", etag));
  EXPECT_FALSE(IfNoneMatchMatches("\"1E-A-14\"", etag));              // opaque, exact
  EXPECT_FALSE(IfNoneMatchMatches("1e-a-14", etag));                  // unquoted: invalid
  EXPECT_FALSE(IfNoneMatchMatches(etag + " junk", etag));             // invalid list
  EXPECT_FALSE(IfNoneMatchMatches(etag + ", \"unterminated", etag));  // invalid anywhere
  EXPECT_FALSE(IfNoneMatchMatches("w/" + etag, etag));                // W is case-sensitive
  EXPECT_FALSE(IfNoneMatchMatches("*, " + etag, etag));               // "*" stands alone
  EXPECT_FALSE(IfNoneMatchMatches("\"a\"b\"", "\"a\"b\""));
  EXPECT_TRUE(IfNoneMatchMatches("\"\"", "\"\""));
  EXPECT_TRUE(IfNoneMatchMatches("\"caf\xc3\xa9\"", "\"caf\xc3\xa9\""));  // obs-text
  EXPECT_FALSE(IfNoneMatchMatches("\"a b\"", "\"a b\""));                 // SP is not an etagc
}

TEST(ConditionalTest, IfModifiedSince) {
  const std::string ims = "Sun, 06 Nov 1994 08:49:37 GMT";
  EXPECT_TRUE(NotModifiedSince(ims, kRfcExample, kNow));
  EXPECT_TRUE(NotModifiedSince(ims, kRfcExample - 1, kNow));
  EXPECT_FALSE(NotModifiedSince(ims, kRfcExample + 1, kNow));
  EXPECT_TRUE(NotModifiedSince("Sunday, 06-Nov-94 08:49:37 GMT", kRfcExample, kNow));
  EXPECT_FALSE(NotModifiedSince("yesterday", 0, kNow));
  EXPECT_FALSE(NotModifiedSince("", 0, kNow));
}

TEST(ConditionalTest, PrecedenceFollowsRfc9110) {
  const std::string etag(MakeETag(1, 2, 3).view());
  const std::string old_date = "Sun, 06 Nov 1994 08:49:37 GMT";
  const std::string new_date(FormatHttpDate(kNow).view());
  const int64_t mtime = kNow - 100;
  EXPECT_FALSE(IsNotModified(std::nullopt, std::nullopt, etag, mtime, kNow));
  EXPECT_TRUE(IsNotModified(etag, std::nullopt, etag, mtime, kNow));
  EXPECT_FALSE(IsNotModified("\"other\"", std::nullopt, etag, mtime, kNow));
  EXPECT_TRUE(IsNotModified(std::nullopt, new_date, etag, mtime, kNow));
  EXPECT_FALSE(IsNotModified(std::nullopt, old_date, etag, mtime, kNow));
  // If-None-Match present: If-Modified-Since is ignored either way.
  EXPECT_FALSE(IsNotModified("\"other\"", new_date, etag, mtime, kNow));
  EXPECT_TRUE(IsNotModified(etag, old_date, etag, mtime, kNow));
  EXPECT_FALSE(IsNotModified("garbage", new_date, etag, mtime, kNow));
}

TEST(ReasonPhraseTest, KnownAndUnknown) {
  EXPECT_EQ(ReasonPhrase(200), "OK");
  EXPECT_EQ(ReasonPhrase(206), "Partial Content");
  EXPECT_EQ(ReasonPhrase(304), "Not Modified");
  EXPECT_EQ(ReasonPhrase(400), "Bad Request");
  EXPECT_EQ(ReasonPhrase(403), "Forbidden");
  EXPECT_EQ(ReasonPhrase(404), "Not Found");
  EXPECT_EQ(ReasonPhrase(405), "Method Not Allowed");
  EXPECT_EQ(ReasonPhrase(411), "Length Required");
  EXPECT_EQ(ReasonPhrase(413), "Content Too Large");
  EXPECT_EQ(ReasonPhrase(414), "URI Too Long");
  EXPECT_EQ(ReasonPhrase(416), "Range Not Satisfiable");
  EXPECT_EQ(ReasonPhrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(ReasonPhrase(501), "Not Implemented");
  EXPECT_EQ(ReasonPhrase(505), "HTTP Version Not Supported");
  EXPECT_EQ(ReasonPhrase(299), "Unknown");
}

}  // namespace
}  // namespace kev::httpd
