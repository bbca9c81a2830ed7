// Request-target → safe relative path, and opening that path confined to a document root.
//
// Two steps keep path traversal impossible:
//  1. `NormalizeTarget()` turns the raw request-target into a clean relative path: no query or
//     fragment, %XX decoded, no empty, "." or ".." segments, no NUL, no backslash, no slash that
//     came from %2F. It is pure string work and rejects what no conforming client sends.
//  2. `OpenBeneath()` opens that path under a directory fd with the kernel's guarantee
//     (openat2 RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), or with a component-wise O_NOFOLLOW
//     walk that enforces the same policy where openat2 is missing. Step 2 alone would be safe
//     against ".." and symlinks; step 1 makes the path canonical (for logs, MIME lookup and
//     directory redirects) and refuses encodings that other layers might decode differently.
//
// Example:
//   std::string rel;                                  // reused per connection: no allocation
//   kev::httpd::TargetPath t = kev::httpd::NormalizeTarget(parser.target(), false, &rel);
//   if (t.status != 0) return SendError(t.status);   // 400
//   int fd = kev::httpd::OpenBeneath(root_fd, rel, O_RDONLY | O_NONBLOCK);
//   if (fd < 0) return SendError(kev::httpd::StatusForOpenError(-fd));   // 403 / 404 / ...
//
// Symlink policy (both resolvers): a symlink is followed only if its target is relative and
// every step of its resolution stays beneath the root (e.g. `root/a -> b/c`, or
// `root/x/y -> ../z`). Absolute symlinks are refused even when they name a file inside the
// root (the kernel's RESOLVE_BENEATH does the same: an absolute target means the process root,
// not the served one). Escapes fail with EXDEV, /proc-style magic links with ELOOP (or EXDEV /
// ENOENT in the walk, which reads them as ordinary links), so both map to 403 or 404 and never
// to content outside the root. Hard links and bind mounts inside the root are not detectable
// and are the operator's responsibility.
//
// Threading: all functions are reentrant and may be called on any shard or thread.

#ifndef KEV_APPS_HTTPD_PATH_H_
#define KEV_APPS_HTTPD_PATH_H_

#include <string>
#include <string_view>

namespace kev::httpd {

// Result of NormalizeTarget().
struct TargetPath {
  // 0 on success; otherwise 400 and `reason` says why (for logs).
  int status = 0;
  const char* reason = "";
  // The target was "*" (asterisk-form, valid for OPTIONS only); the path is empty.
  bool asterisk = false;
  // The path named a directory syntactically ("/", "/a/", "/a/." or "/a/b/.."), so a server
  // can redirect "/dir" to "/dir/" and serve an index for the latter.
  bool trailing_slash = false;
  // The raw query (after '?', before any '#'), a view into the target; empty if none.
  std::string_view query;
};

// Normalises a request-target as the parser returned it.
//   origin-form   "/a/b?q"              → "a/b"
//   absolute-form "http://host/a/b"     → "a/b" (scheme http or https, any case; the
//                                          authority is not checked against Host here)
//   asterisk-form "*"                   → asterisk (only if `is_options`, else 400)
//   authority-form and anything else    → 400
// Decoding and normalisation, in order, per '/'-separated segment: %XX is decoded (a '%'
// without two hex digits → 400); a segment whose decoded bytes contain NUL, '/', '\', another
// control character, or whose raw bytes contain '\', a space, a control or non-ASCII byte →
// 400 (these never reach the filesystem); empty and "." segments are dropped (so "//" and
// "/./" collapse); ".." (also "%2e%2e", "%2E.", ...) removes the previous segment, and a ".."
// with nothing left to remove → 400. Climbing above the root is answered with 400 rather than
// 403 because conforming clients remove dot segments before sending (RFC 3986 §5.2.4): such a
// request is malformed, not a request for a forbidden resource.
// On success `*path` holds the relative path without leading or trailing slash ("" for the
// root), never longer than the target; on failure its contents are unspecified. `path` is
// cleared first, so reusing one string per connection allocates only while it grows.
TargetPath NormalizeTarget(std::string_view target, bool is_options, std::string* path);

// Which resolver OpenBeneath() uses. kAuto is for production: openat2, falling back to the
// walk if the kernel lacks it (ENOSYS, remembered process-wide) or keeps reporting a rename
// race (EAGAIN). The others exist so tests can prove both resolvers enforce the same policy.
enum class Resolver { kAuto, kOpenat2, kWalk };

// Opens `relative_path` beneath the directory `root_fd` with open(2) `flags` (O_CLOEXEC is
// always added; O_CREAT and O_TMPFILE are refused with -EINVAL: this serves existing files).
// "" opens the root itself. The path should come from NormalizeTarget(), but any path is safe:
// "..", absolute paths and symlinks are confined by the policy in the file comment.
// Returns a new fd (the caller owns it and must close it) or -errno: -ENOENT / -ENOTDIR when
// nothing is there, -EXDEV for an escape or an absolute symlink, -ELOOP for a loop or a magic
// link, -ENAMETOOLONG, -EACCES, ... as the kernel reports them.
// Cost: one openat2 syscall; the fallback walk makes two or three syscalls per component.
int OpenBeneath(int root_fd, std::string_view relative_path, int flags,
                Resolver resolver = Resolver::kAuto);

// The HTTP status for a failed OpenBeneath (`err` is the positive errno): 404 for ENOENT /
// ENOTDIR, 403 for EXDEV / ELOOP / EACCES / EPERM, 414 for ENAMETOOLONG, 503 for EMFILE /
// ENFILE / ENOMEM, 500 otherwise.
int StatusForOpenError(int err);

}  // namespace kev::httpd

#endif  // KEV_APPS_HTTPD_PATH_H_
