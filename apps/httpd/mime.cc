#include "apps/httpd/mime.h"

#include <algorithm>
#include <array>

namespace kev::httpd {
namespace {

#define KEV_TEXT(t) t "; charset=utf-8"

// Sorted by extension (checked at compile time below). Types follow IANA registrations where
// they exist, otherwise the de-facto types that browsers and major servers use.
constexpr MimeEntry kTable[] = {
    {"3gp", "video/3gpp"},
    {"7z", "application/x-7z-compressed"},
    {"aac", "audio/aac"},
    {"apng", "image/apng"},
    {"atom", "application/atom+xml"},
    {"avi", "video/x-msvideo"},
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"bz2", "application/x-bzip2"},
    {"c", KEV_TEXT("text/plain")},
    {"cc", KEV_TEXT("text/plain")},
    {"cjs", KEV_TEXT("text/javascript")},
    {"cpp", KEV_TEXT("text/plain")},
    {"css", KEV_TEXT("text/css")},
    {"csv", KEV_TEXT("text/csv")},
    {"doc", "application/msword"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"eot", "application/vnd.ms-fontobject"},
    {"epub", "application/epub+zip"},
    {"flac", "audio/flac"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"h", KEV_TEXT("text/plain")},
    {"heic", "image/heic"},
    {"hpp", KEV_TEXT("text/plain")},
    {"htm", KEV_TEXT("text/html")},
    {"html", KEV_TEXT("text/html")},
    {"ico", "image/x-icon"},
    {"ics", KEV_TEXT("text/calendar")},
    {"jar", "application/java-archive"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", KEV_TEXT("text/javascript")},  // RFC 9239
    {"json", "application/json"},         // always UTF-8 (RFC 8259): no charset parameter
    {"jsonld", "application/ld+json"},
    {"jxl", "image/jxl"},
    {"log", KEV_TEXT("text/plain")},
    {"m3u8", "application/vnd.apple.mpegurl"},
    {"m4a", "audio/mp4"},
    {"m4v", "video/mp4"},
    {"map", "application/json"},  // source maps
    {"md", KEV_TEXT("text/markdown")},
    {"mid", "audio/midi"},
    {"midi", "audio/midi"},
    {"mjs", KEV_TEXT("text/javascript")},
    {"mkv", "video/x-matroska"},
    {"mov", "video/quicktime"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"mpd", "application/dash+xml"},
    {"mpeg", "video/mpeg"},
    {"mpg", "video/mpeg"},
    {"odp", "application/vnd.oasis.opendocument.presentation"},
    {"ods", "application/vnd.oasis.opendocument.spreadsheet"},
    {"odt", "application/vnd.oasis.opendocument.text"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"opus", "audio/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"ppt", "application/vnd.ms-powerpoint"},
    {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"py", KEV_TEXT("text/plain")},
    {"rar", "application/vnd.rar"},
    {"rss", "application/rss+xml"},
    {"rtf", "application/rtf"},
    {"sh", KEV_TEXT("text/plain")},
    {"svg", "image/svg+xml"},
    {"svgz", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"tgz", "application/gzip"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"toml", "application/toml"},
    {"tsv", KEV_TEXT("text/tab-separated-values")},
    {"ttf", "font/ttf"},
    {"txt", KEV_TEXT("text/plain")},
    {"vtt", KEV_TEXT("text/vtt")},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"weba", "audio/webm"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xhtml", "application/xhtml+xml"},
    {"xls", "application/vnd.ms-excel"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"xml", "application/xml"},
    {"xz", "application/x-xz"},
    {"yaml", "application/yaml"},  // RFC 9512
    {"yml", "application/yaml"},
    {"zip", "application/zip"},
    {"zst", "application/zstd"},
};

#undef KEV_TEXT

constexpr bool IsSortedAndUnique() {
  for (size_t i = 1; i < std::size(kTable); ++i) {
    if (!(kTable[i - 1].extension < kTable[i].extension)) return false;
  }
  return true;
}
static_assert(IsSortedAndUnique(), "kTable must stay sorted for the binary search");

// Longer than any extension in the table: anything longer is unknown without a lookup.
constexpr size_t kMaxExtension = 16;

}  // namespace

std::string_view MimeTypeForExtension(std::string_view extension) {
  if (extension.empty() || extension.size() > kMaxExtension) return kDefaultMimeType;
  char lower[kMaxExtension];  // a stack copy: lookups never allocate
  for (size_t i = 0; i < extension.size(); ++i) {
    const char c = extension[i];
    lower[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  }
  const std::string_view key(lower, extension.size());
  const auto* it =
      std::lower_bound(std::begin(kTable), std::end(kTable), key,
                       [](const MimeEntry& e, std::string_view k) { return e.extension < k; });
  if (it == std::end(kTable) || it->extension != key) return kDefaultMimeType;
  return it->type;
}

std::string_view MimeTypeForPath(std::string_view path) {
  const size_t slash = path.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return kDefaultMimeType;
  return MimeTypeForExtension(name.substr(dot + 1));
}

std::span<const MimeEntry> MimeTable() { return kTable; }

}  // namespace kev::httpd
