#include "apps/httpd/http_headers.h"

#include <algorithm>

namespace kev::httpd {
namespace {

constexpr std::string_view kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::string_view kLongDays[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                          "Thursday", "Friday", "Saturday"};
constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

constexpr int64_t kSecondsPerDay = 86400;
constexpr int64_t kMaxHttpDate = 253402300799;  // 9999-12-31T23:59:59Z

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// Inverse of DaysFromCivil for days >= 0.
void CivilFromDays(int64_t z, int64_t* y, int* m, int* d) {
  z += 719468;
  const int64_t era = z / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int64_t y, int m) {
  static constexpr int kDaysIn[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDaysIn[m - 1];
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Parses exactly `n` digits at s[0..n); -1 if any is not a digit or s is short.
int Digits(std::string_view s, size_t n) {
  if (s.size() < n) return -1;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!IsDigit(s[i])) return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

template <size_t N>
int IndexOf(const std::string_view (&names)[N], std::string_view name) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == name) return static_cast<int>(i);
  }
  return -1;
}

// "HH:MM:SS" → seconds of the day, or -1.
int64_t ParseTimeOfDay(std::string_view s) {
  if (s.size() != 8 || s[2] != ':' || s[5] != ':') return -1;
  const int h = Digits(s, 2), m = Digits(s.substr(3), 2), sec = Digits(s.substr(6), 2);
  if (h < 0 || m < 0 || sec < 0 || h > 23 || m > 59 || sec > 60) return -1;
  return h * 3600 + m * 60 + sec;
}

std::optional<int64_t> Combine(int64_t year, int month_index, int day, int64_t time_of_day) {
  if (month_index < 0 || day < 1 || time_of_day < 0) return std::nullopt;
  if (day > DaysInMonth(year, month_index + 1)) return std::nullopt;
  return DaysFromCivil(year, month_index + 1, day) * kSecondsPerDay + time_of_day;
}

// Appends decimal or hex digits of v to out.
template <size_t N>
void AppendUint(SmallString<N>* out, uint64_t v, unsigned base) {
  char tmp[20];
  size_t n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v != 0);
  while (n > 0) out->data[out->size++] = tmp[--n];
}

template <size_t N>
void Append(SmallString<N>* out, std::string_view s) {
  for (char c : s) out->data[out->size++] = c;
}

bool IsOws(char c) { return c == ' ' || c == '\t'; }

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

// Saturating parse of a non-empty run of digits that must span all of `s`.
bool ParseUint(std::string_view s, uint64_t* v) {
  if (s.empty()) return false;
  uint64_t n = 0;
  for (char c : s) {
    if (!IsDigit(c)) return false;
    n = n > (UINT64_MAX - 9) / 10 ? UINT64_MAX : n * 10 + static_cast<uint64_t>(c - '0');
  }
  *v = n;
  return true;
}

}  // namespace

SmallString<kHttpDateLength> FormatHttpDate(int64_t unix_seconds) {
  const int64_t t = std::clamp<int64_t>(unix_seconds, 0, kMaxHttpDate);
  const int64_t days = t / kSecondsPerDay;
  const int64_t secs = t % kSecondsPerDay;
  int64_t year;
  int month, day;
  CivilFromDays(days, &year, &month, &day);
  SmallString<kHttpDateLength> out;
  auto two = [&out](int64_t v) {
    out.data[out.size++] = static_cast<char>('0' + v / 10);
    out.data[out.size++] = static_cast<char>('0' + v % 10);
  };
  Append(&out, kDays[(days + 4) % 7]);  // 1970-01-01 was a Thursday
  Append(&out, ", ");
  two(day);
  out.data[out.size++] = ' ';
  Append(&out, kMonths[month - 1]);
  out.data[out.size++] = ' ';
  two(year / 100);
  two(year % 100);
  out.data[out.size++] = ' ';
  two(secs / 3600);
  out.data[out.size++] = ':';
  two(secs / 60 % 60);
  out.data[out.size++] = ':';
  two(secs % 60);
  Append(&out, " GMT");
  return out;
}

std::optional<int64_t> ParseHttpDate(std::string_view s, int64_t now_unix_seconds) {
  if (s.size() == kHttpDateLength && s[3] == ',') {
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    if (IndexOf(kDays, s.substr(0, 3)) < 0 || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || s.substr(25) != " GMT") {
      return std::nullopt;
    }
    const int day = Digits(s.substr(5), 2);
    const int year = Digits(s.substr(12), 4);
    if (year < 0) return std::nullopt;
    return Combine(year, IndexOf(kMonths, s.substr(8, 3)), day, ParseTimeOfDay(s.substr(17, 8)));
  }
  if (s.size() == 24 && s[3] == ' ') {
    // asctime: "Sun Nov  6 08:49:37 1994"
    if (IndexOf(kDays, s.substr(0, 3)) < 0 || s[7] != ' ' || s[10] != ' ' || s[19] != ' ') {
      return std::nullopt;
    }
    const int day = s[8] == ' ' ? Digits(s.substr(9), 1) : Digits(s.substr(8), 2);
    const int year = Digits(s.substr(20), 4);
    if (year < 0) return std::nullopt;
    return Combine(year, IndexOf(kMonths, s.substr(4, 3)), day, ParseTimeOfDay(s.substr(11, 8)));
  }
  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
  const size_t comma = s.find(',');
  if (comma == std::string_view::npos || IndexOf(kLongDays, s.substr(0, comma)) < 0) {
    return std::nullopt;
  }
  const std::string_view r = s.substr(comma + 1);
  if (r.size() != 23 || r[0] != ' ' || r[3] != '-' || r[7] != '-' || r[10] != ' ' ||
      r.substr(19) != " GMT") {
    return std::nullopt;
  }
  const int yy = Digits(r.substr(8), 2);
  if (yy < 0) return std::nullopt;
  // RFC 9110 §5.6.7: more than 50 years in the future means the previous century. The
  // years with these two digits form a window (now - 50, now + 50]: pick the one inside it.
  int64_t now_year;
  int unused_m, unused_d;
  CivilFromDays(std::clamp<int64_t>(now_unix_seconds, 0, kMaxHttpDate) / kSecondsPerDay, &now_year,
                &unused_m, &unused_d);
  int64_t year = now_year / 100 * 100 + yy;
  if (year > now_year + 50) year -= 100;
  if (year <= now_year - 50) year += 100;
  return Combine(year, IndexOf(kMonths, r.substr(4, 3)), Digits(r.substr(1), 2),
                 ParseTimeOfDay(r.substr(11, 8)));
}

RangeStatus ParseRange(std::string_view value, uint64_t size, ByteRange* range) {
  const size_t eq = value.find('=');
  if (eq == std::string_view::npos) return RangeStatus::kIgnore;
  const std::string_view unit = value.substr(0, eq);
  if (unit.size() != 5) return RangeStatus::kIgnore;
  for (size_t i = 0; i < 5; ++i) {
    const char c = unit[i];
    if ((c >= 'A' && c <= 'Z' ? c + 32 : c) != "bytes"[i]) return RangeStatus::kIgnore;
  }

  // Find the single non-empty element; a second one means "several ranges": ignored.
  std::string_view spec;
  std::string_view rest = value.substr(eq + 1);
  for (;;) {
    const size_t comma = rest.find(',');
    const std::string_view element = TrimOws(rest.substr(0, comma));
    if (!element.empty()) {
      if (!spec.empty()) return RangeStatus::kIgnore;
      spec = element;
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return RangeStatus::kIgnore;

  ByteRange r;
  if (dash == 0) {
    uint64_t suffix;
    if (!ParseUint(spec.substr(1), &suffix)) return RangeStatus::kIgnore;
    if (suffix == 0 || size == 0) return RangeStatus::kUnsatisfiable;
    r.first = size - std::min(suffix, size);
    r.last = size - 1;
  } else {
    uint64_t first, last = UINT64_MAX;
    if (!ParseUint(spec.substr(0, dash), &first)) return RangeStatus::kIgnore;
    if (dash + 1 < spec.size() && !ParseUint(spec.substr(dash + 1), &last)) {
      return RangeStatus::kIgnore;
    }
    if (last < first) return RangeStatus::kIgnore;  // invalid, not unsatisfiable (§14.1.1)
    if (first >= size) return RangeStatus::kUnsatisfiable;
    r.first = first;
    r.last = std::min(last, size - 1);
  }
  *range = r;
  return RangeStatus::kSatisfiable;
}

SmallString<80> FormatContentRange(const ByteRange& range, uint64_t size) {
  SmallString<80> out;
  Append(&out, "bytes ");
  AppendUint(&out, range.first, 10);
  out.data[out.size++] = '-';
  AppendUint(&out, range.last, 10);
  out.data[out.size++] = '/';
  AppendUint(&out, size, 10);
  return out;
}

SmallString<80> FormatUnsatisfiedRange(uint64_t size) {
  SmallString<80> out;
  Append(&out, "bytes */");
  AppendUint(&out, size, 10);
  return out;
}

SmallString<64> MakeETag(uint64_t size, int64_t mtime_ns, uint64_t inode) {
  SmallString<64> out;
  out.data[out.size++] = '"';
  AppendUint(&out, inode, 16);
  out.data[out.size++] = '-';
  AppendUint(&out, size, 16);
  out.data[out.size++] = '-';
  AppendUint(&out, static_cast<uint64_t>(mtime_ns), 16);
  out.data[out.size++] = '"';
  return out;
}

bool IfNoneMatchMatches(std::string_view value, std::string_view etag) {
  if (TrimOws(value) == "*") return true;
  if (etag.substr(0, 2) == "W/") etag.remove_prefix(2);  // weak comparison ignores W/
  auto etagc = [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c == 0x21 || (c >= 0x23 && c != 0x7f);
  };
  bool matched = false;
  size_t i = 0;
  const size_t n = value.size();
  for (;;) {
    while (i < n && (IsOws(value[i]) || value[i] == ',')) ++i;  // empty elements are allowed
    if (i == n) break;
    if (value.substr(i, 2) == "W/") i += 2;
    if (i >= n || value[i] != '"') return false;
    size_t j = i + 1;
    while (j < n && etagc(value[j])) ++j;
    if (j >= n || value[j] != '"') return false;
    if (value.substr(i, j + 1 - i) == etag) matched = true;
    i = j + 1;
    while (i < n && IsOws(value[i])) ++i;
    if (i < n && value[i] != ',') return false;
  }
  return matched;
}

bool NotModifiedSince(std::string_view value, int64_t mtime_seconds, int64_t now_unix_seconds) {
  const std::optional<int64_t> since = ParseHttpDate(value, now_unix_seconds);
  return since.has_value() && mtime_seconds <= *since;
}

bool IsNotModified(std::optional<std::string_view> if_none_match,
                   std::optional<std::string_view> if_modified_since, std::string_view etag,
                   int64_t mtime_seconds, int64_t now_unix_seconds) {
  if (if_none_match) return IfNoneMatchMatches(*if_none_match, etag);
  if (if_modified_since)
    return NotModifiedSince(*if_modified_since, mtime_seconds, now_unix_seconds);
  return false;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

}  // namespace kev::httpd
