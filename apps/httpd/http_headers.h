// HTTP field values a static file server produces and evaluates (RFC 9110): dates, byte
// ranges, entity tags and conditional requests, plus reason phrases.
//
// Everything here is pure string work on values the parser extracted; nothing allocates:
// formatted values come back in `SmallString`s, small fixed buffers returned by value.
//
// Example (the part of a GET handler after fstat):
//   using namespace kev::httpd;
//   SmallString<64> etag = MakeETag(st.st_size, mtime_ns, st.st_ino);
//   if (IsNotModified(parser.if_none_match(), parser.if_modified_since(), etag.view(),
//                     st.st_mtime, now)) {
//     return Send304(etag);
//   }
//   ByteRange r;
//   switch (parser.range() ? ParseRange(*parser.range(), st.st_size, &r)
//                          : RangeStatus::kIgnore) {
//     case RangeStatus::kIgnore:        return Send200(whole file);
//     case RangeStatus::kSatisfiable:   return Send206(r, FormatContentRange(r, size));
//     case RangeStatus::kUnsatisfiable: return Send416(FormatUnsatisfiedRange(size));
//   }
//
// Threading: all functions are pure and may be called from any thread.

#ifndef KEV_APPS_HTTPD_HTTP_HEADERS_H_
#define KEV_APPS_HTTPD_HTTP_HEADERS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace kev::httpd {

// A short string in a fixed inline buffer, so formatting never allocates.
template <size_t N>
struct SmallString {
  char data[N];
  size_t size = 0;
  std::string_view view() const { return {data, size}; }
};

// ---- Dates (RFC 9110 §5.6.7) ----

// Length of an IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
inline constexpr size_t kHttpDateLength = 29;

// Formats `unix_seconds` as IMF-fixdate. Times outside 1970-01-01 .. 9999-12-31T23:59:59 are
// clamped to that range (the format has a 4-digit year; pre-1970 mtimes are not worth a
// negative-year code path).
SmallString<kHttpDateLength> FormatHttpDate(int64_t unix_seconds);

// Parses an HTTP-date in any of the three forms recipients must accept:
//   IMF-fixdate  "Sun, 06 Nov 1994 08:49:37 GMT"
//   RFC 850      "Sunday, 06-Nov-94 08:49:37 GMT"
//   asctime      "Sun Nov  6 08:49:37 1994"
// Case-sensitive as the grammar says; the weekday must be a valid name but is not checked
// against the date; day, hour, minute and second are range-checked (second 60, a leap second,
// is accepted). RFC 850's two-digit year is resolved against `now_unix_seconds` to the year
// in (now - 50, now + 50] with those last two digits, so a year that would be more than 50
// years in the future is taken from the previous century, as RFC 9110 requires.
// Returns Unix seconds, or nullopt if `text` is not exactly one HTTP-date.
std::optional<int64_t> ParseHttpDate(std::string_view text, int64_t now_unix_seconds);

// ---- Byte ranges (RFC 9110 §14) ----

// An inclusive byte range [first, last] of a representation.
struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;
  uint64_t length() const { return last - first + 1; }
};

enum class RangeStatus {
  kIgnore,         // no usable Range: send 200 with the whole representation
  kSatisfiable,    // send 206 with *range
  kUnsatisfiable,  // send 416 with "Content-Range: bytes */size"
};

// Evaluates a Range field value against a representation of `size` bytes.
//   "bytes=a-b"  → [a, min(b, size-1)] if a < size; 416 if a >= size; ignored if b < a
//   "bytes=a-"   → [a, size-1] if a < size; else 416
//   "bytes=-n"   → the last min(n, size) bytes; 416 if n == 0
// The unit is case-insensitive; OWS around list elements and empty elements are tolerated.
// Policy for several ranges ("bytes=0-1,5-9"): the whole Range is ignored and a 200 sent.
// RFC 9110 §14.2 lets a server ignore Range, and answering multipart/byteranges would let a
// small request ask for many overlapping copies of a file (amplification).
// Any other unit or syntax error → kIgnore (RFC 9110 §14.2). A zero-length representation has
// no satisfiable range: every well-formed single range gets 416. Numbers that overflow 64 bits
// saturate (so a huge first-pos is 416 and a huge last-pos or suffix means "to the end").
// `range` is written only for kSatisfiable.
RangeStatus ParseRange(std::string_view value, uint64_t size, ByteRange* range);

// "bytes first-last/size" for a 206 Content-Range.
SmallString<80> FormatContentRange(const ByteRange& range, uint64_t size);
// "bytes */size" for a 416 Content-Range.
SmallString<80> FormatUnsatisfiedRange(uint64_t size);

// ---- Entity tags and conditional requests (RFC 9110 §8.8.3, §13) ----

// A strong ETag from the file's identity: "\"<inode>-<size>-<mtime ns>\"" in lower-case hex.
// Any write through the normal file APIs changes the mtime (or the size), and a replaced file
// gets a new inode; strong, so a later If-Range can use it. Two writes of equal size within one
// filesystem timestamp tick would share an ETag: the same caveat as every mtime-based server.
// At most 2 + 3 * 16 + 2 = 52 bytes.
SmallString<64> MakeETag(uint64_t size, int64_t mtime_ns, uint64_t inode);

// Whether an If-None-Match field value matches `etag` (a complete entity-tag such as
// MakeETag() returns, optionally W/-prefixed) under weak comparison (§8.8.3.2: opaque-tags
// equal, W/ ignored on both sides). "*" matches (the caller only asks for existing files).
// A list matches if any member does. A syntactically invalid value matches nothing, so the
// server falls back to a full 200, which is always safe.
bool IfNoneMatchMatches(std::string_view value, std::string_view etag);

// Whether an If-Modified-Since value says the client's copy is current: the value is a valid
// HTTP-date and `mtime_seconds` <= it (Last-Modified has one-second resolution, so the mtime's
// fractional part must be dropped by the caller). Invalid dates → false (ignored, §13.1.3).
bool NotModifiedSince(std::string_view value, int64_t mtime_seconds, int64_t now_unix_seconds);

// RFC 9110 §13.2.2 for a GET or HEAD of an existing file (the caller checks the method: the
// conditions are ignored for others): true means answer 304. If If-None-Match is present it
// decides alone and If-Modified-Since is ignored; otherwise If-Modified-Since decides; neither
// present → false.
bool IsNotModified(std::optional<std::string_view> if_none_match,
                   std::optional<std::string_view> if_modified_since, std::string_view etag,
                   int64_t mtime_seconds, int64_t now_unix_seconds);

// ---- Status lines ----

// The RFC 9110 reason phrase for `status` ("OK", "Not Found", ...), or "Unknown".
std::string_view ReasonPhrase(int status);

}  // namespace kev::httpd

#endif  // KEV_APPS_HTTPD_HTTP_HEADERS_H_
