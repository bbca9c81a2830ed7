#include "apps/httpd/mime.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace kev::httpd {
namespace {

TEST(MimeTest, CommonTypes) {
  struct Case {
    const char* ext;
    const char* type;
  } cases[] = {
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"json", "application/json"},
      {"xml", "application/xml"},
      {"txt", "text/plain; charset=utf-8"},
      {"csv", "text/csv; charset=utf-8"},
      {"md", "text/markdown; charset=utf-8"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"avif", "image/avif"},
      {"ico", "image/x-icon"},
      {"bmp", "image/bmp"},
      {"tif", "image/tiff"},
      {"tiff", "image/tiff"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"ttf", "font/ttf"},
      {"otf", "font/otf"},
      {"eot", "application/vnd.ms-fontobject"},
      {"mp3", "audio/mpeg"},
      {"ogg", "audio/ogg"},
      {"wav", "audio/wav"},
      {"flac", "audio/flac"},
      {"mp4", "video/mp4"},
      {"webm", "video/webm"},
      {"mkv", "video/x-matroska"},
      {"avi", "video/x-msvideo"},
      {"mov", "video/quicktime"},
      {"pdf", "application/pdf"},
      {"zip", "application/zip"},
      {"gz", "application/gzip"},
      {"tgz", "application/gzip"},
      {"bz2", "application/x-bzip2"},
      {"xz", "application/x-xz"},
      {"zst", "application/zstd"},
      {"tar", "application/x-tar"},
      {"7z", "application/x-7z-compressed"},
      {"rar", "application/vnd.rar"},
      {"wasm", "application/wasm"},
      {"map", "application/json"},
      {"webmanifest", "application/manifest+json"},
      {"ics", "text/calendar; charset=utf-8"},
      {"epub", "application/epub+zip"},
      {"doc", "application/msword"},
      {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
      {"xls", "application/vnd.ms-excel"},
      {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
      {"ppt", "application/vnd.ms-powerpoint"},
      {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
      {"odt", "application/vnd.oasis.opendocument.text"},
      {"rtf", "application/rtf"},
  };
  for (const Case& c : cases) EXPECT_EQ(MimeTypeForExtension(c.ext), c.type) << c.ext;
}

TEST(MimeTest, CaseInsensitive) {
  EXPECT_EQ(MimeTypeForExtension("HTML"), "text/html; charset=utf-8");
  EXPECT_EQ(MimeTypeForExtension("Png"), "image/png");
  EXPECT_EQ(MimeTypeForPath("a/B.WOFF2"), "font/woff2");
}

TEST(MimeTest, Defaults) {
  EXPECT_EQ(MimeTypeForExtension(""), kDefaultMimeType);
  EXPECT_EQ(MimeTypeForExtension("exe"), "application/octet-stream");
  EXPECT_EQ(MimeTypeForExtension("htmlx"), kDefaultMimeType);
  EXPECT_EQ(MimeTypeForExtension("ht"), kDefaultMimeType);
  EXPECT_EQ(MimeTypeForExtension(std::string(100, 'a')), kDefaultMimeType);
  EXPECT_EQ(MimeTypeForExtension(std::string_view("html\0", 5)), kDefaultMimeType);
}

TEST(MimeTest, ByPath) {
  EXPECT_EQ(MimeTypeForPath("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(MimeTypeForPath("a/b/c/app.min.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(MimeTypeForPath("archive.tar.gz"), "application/gzip");
  EXPECT_EQ(MimeTypeForPath("Makefile"), kDefaultMimeType);
  EXPECT_EQ(MimeTypeForPath(".bashrc"), kDefaultMimeType);
  EXPECT_EQ(MimeTypeForPath("dir/.hidden"), kDefaultMimeType);
  EXPECT_EQ(MimeTypeForPath("dir.d/file"), kDefaultMimeType);
  EXPECT_EQ(MimeTypeForPath("file."), kDefaultMimeType);
  EXPECT_EQ(MimeTypeForPath(""), kDefaultMimeType);
  EXPECT_EQ(MimeTypeForPath("dir/"), kDefaultMimeType);
  EXPECT_EQ(MimeTypeForPath(".config/x.json"), "application/json");
}

TEST(MimeTest, TableIsConsistent) {
  std::set<std::string_view> seen;
  std::string_view prev;
  for (const MimeEntry& e : MimeTable()) {
    EXPECT_LT(prev, e.extension);
    prev = e.extension;
    EXPECT_TRUE(seen.insert(e.extension).second) << e.extension;
    for (char c : e.extension) EXPECT_FALSE(c >= 'A' && c <= 'Z') << e.extension;
    // Every entry is reachable through the lookup.
    EXPECT_EQ(MimeTypeForExtension(e.extension), e.type);
    // text/* always declares UTF-8; nothing else declares a charset.
    const bool text = e.type.substr(0, 5) == "text/";
    const bool charset = e.type.find("; charset=utf-8") != std::string_view::npos;
    EXPECT_EQ(text, charset) << e.extension << " " << e.type;
  }
  EXPECT_GE(MimeTable().size(), 90u);
}

}  // namespace
}  // namespace kev::httpd
