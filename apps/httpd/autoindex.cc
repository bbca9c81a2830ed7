// RenderDirectoryListing() (declared in handler.h): the --autoindex page.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "apps/httpd/handler.h"
#include "apps/httpd/http_headers.h"

namespace kev::httpd {

bool RenderDirectoryListing(int dir_fd, std::string_view url_path, std::string* html) {
  // Listings are rare and small: a fresh fd for readdir and a vector are fine here.
  int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    close(fd);
    return false;
  }
  struct Entry {
    std::string name;
    bool is_dir;
    uint64_t size;
    int64_t mtime;
  };
  std::vector<Entry> entries;
  while (struct dirent* d = readdir(dir)) {
    std::string_view name = d->d_name;
    if (name.empty() || name.front() == '.') continue;  // ".", ".." and hidden files
    struct stat st;
    // NOFOLLOW: a listing never reveals anything about a symlink's target.
    if (fstatat(dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    entries.push_back({std::string(name), S_ISDIR(st.st_mode), static_cast<uint64_t>(st.st_size),
                       st.st_mtim.tv_sec});
  }
  closedir(dir);
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.is_dir != b.is_dir) return a.is_dir;
    return a.name < b.name;
  });
  html->assign("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ");
  AppendHtmlEscaped(url_path, html);
  html->append("</title></head>\n<body><h1>Index of ");
  AppendHtmlEscaped(url_path, html);
  html->append("</h1>\n<table>\n");
  if (url_path != "/")
    html->append("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
  for (const Entry& e : entries) {
    html->append("<tr><td><a href=\"");
    std::string href;
    AppendUrlPath(e.name, &href);
    if (e.is_dir) href.push_back('/');
    // A name like "a:b" would read as a URL scheme; "./" keeps every link relative.
    html->append("./");
    AppendHtmlEscaped(href, html);
    html->append("\">");
    AppendHtmlEscaped(e.name, html);
    if (e.is_dir) html->push_back('/');
    html->append("</a></td><td>");
    html->append(FormatHttpDate(e.mtime).view());
    html->append("</td><td>");
    if (e.is_dir) {
      html->append("-");
    } else {
      html->append(std::to_string(e.size));
    }
    html->append("</td></tr>\n");
  }
  html->append("</table>\n</body></html>\n");
  return true;
}

}  // namespace kev::httpd
