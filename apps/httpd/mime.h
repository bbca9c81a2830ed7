// Media types by file extension, for the Content-Type of static files.
//
// A fixed, sorted table of the formats a static site serves (web pages and assets, images,
// fonts, audio, video, archives, documents). Lookups are case-insensitive, allocate nothing
// and return views of static strings. Unknown extensions get application/octet-stream, so a
// browser downloads rather than renders (the server should also send
// X-Content-Type-Options: nosniff). Every text/* type carries "; charset=utf-8", as the server
// cannot know the encoding and UTF-8 is the web's default; non-text types carry no charset.
//
// Example:
//   std::string_view type = kev::httpd::MimeTypeForPath("assets/App.JS");
//   // "text/javascript; charset=utf-8"
//
// Threading: all functions are pure and may be called from any thread.

#ifndef KEV_APPS_HTTPD_MIME_H_
#define KEV_APPS_HTTPD_MIME_H_

#include <span>
#include <string_view>

namespace kev::httpd {

inline constexpr std::string_view kDefaultMimeType = "application/octet-stream";

struct MimeEntry {
  std::string_view extension;  // lower case, without the dot
  std::string_view type;       // full Content-Type value
};

// Content-Type for `extension` (without the dot, any case); kDefaultMimeType if unknown.
std::string_view MimeTypeForExtension(std::string_view extension);

// Content-Type for a file name or '/'-separated path, by the extension of its last segment:
// the part after the last '.', unless that dot starts the name (".bashrc" has none).
// "archive.tar.gz" is application/gzip; "Makefile" and "dir.d/file" get kDefaultMimeType.
std::string_view MimeTypeForPath(std::string_view path);

// The whole table, sorted by extension with no duplicates (for tests and diagnostics).
std::span<const MimeEntry> MimeTable();

}  // namespace kev::httpd

#endif  // KEV_APPS_HTTPD_MIME_H_
