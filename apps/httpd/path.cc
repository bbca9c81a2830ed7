#include "apps/httpd/path.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

namespace kev::httpd {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    if (c != prefix[i]) return false;
  }
  return true;
}

TargetPath Bad(const char* reason) {
  TargetPath t;
  t.status = 400;
  t.reason = reason;
  return t;
}

}  // namespace

TargetPath NormalizeTarget(std::string_view target, bool is_options, std::string* path) {
  path->clear();
  TargetPath result;
  if (target == "*") {
    if (!is_options) return Bad("asterisk-form is only valid for OPTIONS");
    result.asterisk = true;
    return result;
  }

  std::string_view p = target;
  if (p.empty()) return Bad("empty request-target");
  if (p[0] != '/') {
    // absolute-form: scheme "://" authority path-abempty [ "?" query ].
    size_t scheme_len = 0;
    if (StartsWithIgnoreCase(p, "http://")) {
      scheme_len = 7;
    } else if (StartsWithIgnoreCase(p, "https://")) {
      scheme_len = 8;
    } else {
      return Bad("request-target is neither origin-form nor absolute-form");
    }
    p.remove_prefix(scheme_len);
    const size_t authority_end = p.find_first_of("/?#");
    const std::string_view authority = p.substr(0, authority_end);
    if (authority.empty()) return Bad("absolute-form without a host");
    // RFC 9110 §4.2.4: userinfo in an http(s) URI is to be treated as an error.
    if (authority.find('@') != std::string_view::npos) return Bad("userinfo in request-target");
    p.remove_prefix(authority.size());
    // "http://h" and "http://h?q" mean the root (RFC 9112 §3.2.2 origin-form "/" equivalent).
  }

  // Split off the fragment (clients should not send one, but it is never part of the path)
  // and the query.
  p = p.substr(0, p.find('#'));
  const size_t q = p.find('?');
  if (q != std::string_view::npos) {
    result.query = p.substr(q + 1);
    p = p.substr(0, q);
  }

  path->reserve(p.size());   // the output is never longer than the input
  bool last_was_dir = true;  // "" (the root) names a directory
  size_t i = 0;
  while (i < p.size()) {
    if (p[i] == '/') {
      ++i;
      last_was_dir = true;  // an empty segment after a '/' means the path ends in '/'
      continue;
    }
    // Decode one segment straight into *path after a separator, then inspect it.
    const size_t mark = path->size();
    if (mark != 0) path->push_back('/');
    const size_t seg_start = path->size();
    for (; i < p.size() && p[i] != '/'; ++i) {
      unsigned char c = static_cast<unsigned char>(p[i]);
      if (c <= 0x20 || c >= 0x7f || c == '\\') return Bad("invalid character in path");
      if (c == '%') {
        if (i + 2 >= p.size()) return Bad("truncated percent-escape");
        const int hi = HexValue(p[i + 1]);
        const int lo = HexValue(p[i + 2]);
        if (hi < 0 || lo < 0) return Bad("invalid percent-escape");
        c = static_cast<unsigned char>(hi * 16 + lo);
        i += 2;
        if (c == 0) return Bad("NUL in path");
        if (c == '/') return Bad("encoded '/' in path segment");
        if (c == '\\') return Bad("encoded '\\' in path segment");
        if (c < 0x20 || c == 0x7f) return Bad("control character in path");
      }
      path->push_back(static_cast<char>(c));
    }
    const std::string_view seg(path->data() + seg_start, path->size() - seg_start);
    if (seg == "." || seg == "..") {
      const bool up = seg.size() == 2;
      path->resize(mark);
      if (up) {
        if (mark == 0) return Bad("path climbs above the root");
        const size_t slash = path->rfind('/');
        path->resize(slash == std::string::npos ? 0 : slash);
      }
      last_was_dir = true;
    } else {
      last_was_dir = false;
    }
  }
  result.trailing_slash = last_was_dir;
  return result;
}

namespace {

// Set once openat2 returned ENOSYS; relaxed is enough: the worst case is one more ENOSYS.
std::atomic<bool> g_openat2_missing{false};

// Returns fd or -errno; -ENOSYS if the kernel lacks openat2.
int OpenWithOpenat2(int root_fd, const char* path, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const long fd = syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
    if (fd >= 0) return static_cast<int>(fd);
    // EAGAIN: a concurrent rename might have let ".." escape; the kernel asks us to retry.
    if (errno != EAGAIN && errno != EINTR) return -errno;
  }
  return -EAGAIN;
}

class FdStack {
 public:
  ~FdStack() {
    for (int fd : fds_) close(fd);
  }
  bool empty() const { return fds_.empty(); }
  int top(int root) const { return fds_.empty() ? root : fds_.back(); }
  void Push(int fd) { fds_.push_back(fd); }
  void Pop() {
    close(fds_.back());
    fds_.pop_back();
  }

 private:
  std::vector<int> fds_;  // fallback path only: an allocation per walk is acceptable here
};

// The component-wise walk: each component is opened with O_NOFOLLOW relative to the previous
// one, so the kernel never follows a link we have not inspected; symlinks are read and their
// targets spliced into the remaining path; ".." pops a directory we opened ourselves and fails
// at the root. Returns fd or -errno.
int OpenWithWalk(int root_fd, std::string_view relative_path, int flags) {
  if (!relative_path.empty() && relative_path[0] == '/') return -EXDEV;
  FdStack dirs;
  std::string pending(relative_path);  // remaining components; link targets go in front
  size_t pos = 0;
  int links = 0;
  char name[NAME_MAX + 1];
  char link[PATH_MAX];

  // Splices a link target in place of the component that ended at `rest`.
  auto follow = [&](std::string_view target, size_t rest) -> int {
    if (++links > 40) return -ELOOP;  // the kernel's MAXSYMLINKS
    if (target.empty()) return -ENOENT;
    if (target[0] == '/') return -EXDEV;  // absolute links are refused, as RESOLVE_BENEATH does
    std::string next(target);
    next.append(pending, rest, std::string::npos);
    pending.swap(next);
    pos = 0;
    return 0;
  };

  for (;;) {
    while (pos < pending.size() && pending[pos] == '/') ++pos;
    const int dir = dirs.top(root_fd);
    if (pos >= pending.size()) {
      // Nothing left: the result is the directory we are in (the root for "").
      const int fd = openat(dir, ".", flags);
      return fd >= 0 ? fd : -errno;
    }
    size_t end = pending.find('/', pos);
    if (end == std::string::npos) end = pending.size();
    const std::string_view comp(pending.data() + pos, end - pos);
    size_t next = end;
    while (next < pending.size() && pending[next] == '/') ++next;
    const bool last = next >= pending.size();
    pos = end;

    if (comp == ".") continue;
    if (comp == "..") {
      if (dirs.empty()) return -EXDEV;
      dirs.Pop();
      continue;
    }
    if (comp.size() > NAME_MAX) return -ENAMETOOLONG;
    if (comp.find('\0') != std::string_view::npos) return -EINVAL;
    std::memcpy(name, comp.data(), comp.size());
    name[comp.size()] = '\0';

    if (last) {
      const int fd = openat(dir, name, flags | O_NOFOLLOW);
      if (fd >= 0) return fd;
      if (errno != ELOOP) return -errno;
      // O_NOFOLLOW said it is a symlink: read it (if it changed meanwhile, readlinkat fails
      // with EINVAL and the next pass retries within the link budget).
      const ssize_t n = readlinkat(dir, name, link, sizeof(link));
      if (n < 0 && errno != EINVAL) return -errno;
      if (n >= static_cast<ssize_t>(sizeof(link))) return -ENAMETOOLONG;
      const int rc = follow(n < 0 ? std::string_view(name) : std::string_view(link, n), end);
      if (rc < 0) return rc;
      continue;
    }

    const int fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
      const int err = errno;
      close(fd);
      return -err;
    }
    if (S_ISDIR(st.st_mode)) {
      dirs.Push(fd);
      continue;
    }
    if (!S_ISLNK(st.st_mode)) {
      close(fd);
      return -ENOTDIR;
    }
    // Reading through the O_PATH fd reads exactly the link we inspected.
    const ssize_t n = readlinkat(fd, "", link, sizeof(link));
    const int err = errno;
    close(fd);
    if (n < 0) return -err;
    if (n >= static_cast<ssize_t>(sizeof(link))) return -ENAMETOOLONG;
    const int rc = follow(std::string_view(link, n), end);
    if (rc < 0) return rc;
  }
}

}  // namespace

int OpenBeneath(int root_fd, std::string_view relative_path, int flags, Resolver resolver) {
  if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) return -EINVAL;
  flags |= O_CLOEXEC;  // a server must not leak file fds into anything it spawns
  if (relative_path.find('\0') != std::string_view::npos) return -EINVAL;

  const bool try_openat2 =
      resolver == Resolver::kOpenat2 ||
      (resolver == Resolver::kAuto && !g_openat2_missing.load(std::memory_order_relaxed));
  if (try_openat2) {
    // openat2 needs a C string; a stack copy avoids an allocation per request.
    char buf[PATH_MAX];
    if (relative_path.size() >= sizeof(buf)) return -ENAMETOOLONG;
    if (relative_path.empty()) {
      buf[0] = '.';
      buf[1] = '\0';
    } else {
      std::memcpy(buf, relative_path.data(), relative_path.size());
      buf[relative_path.size()] = '\0';
    }
    const int fd = OpenWithOpenat2(root_fd, buf, flags);
    if (resolver == Resolver::kOpenat2) return fd;
    if (fd == -ENOSYS) {
      g_openat2_missing.store(true, std::memory_order_relaxed);
    } else if (fd != -EAGAIN) {
      return fd;
    }
  }
  return OpenWithWalk(root_fd, relative_path, flags);
}

int StatusForOpenError(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return 404;
    case EXDEV:
    case ELOOP:
    case EACCES:
    case EPERM:
      return 403;
    case ENAMETOOLONG:
      return 414;
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return 503;
    default:
      return 500;
  }
}

}  // namespace kev::httpd
