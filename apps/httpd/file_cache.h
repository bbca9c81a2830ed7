// A per-shard cache of small static files: their bytes plus the pre-rendered response head.
//
// Small responses are dominated by syscalls, not by bytes: open + fstat + sendfile + close for
// a 14-byte file costs far more than the copy. A cache hit costs at most one fstatat (to prove
// the file is unchanged) and lets the connection send head and body in a single write.
//
// Validity: an entry remembers the (device, inode, size, mtime) of the file it was read from.
// A Lookup() more than `revalidate_after` after the entry's last check (every Lookup when it is
// 0) re-stats the resolved path beneath the root with AT_SYMLINK_NOFOLLOW and
// drops the entry when any of the four differ (a rewrite changes mtime or size; an atomic
// rename-over changes the inode; a deletion or a directory change fails the stat). Like every
// mtime-based cache (and the ETag), two same-size writes within one filesystem timestamp tick
// are not told apart. The stat follows symlinks in intermediate directories, but a hit
// requires the very inode that OpenBeneath() confined to the root when the entry was filled,
// so a hit never serves bytes that were not legitimately served before. Within the
// `revalidate_after` window a changed file may still be served as it was (like nginx's
// open_file_cache_valid): the price of a hit without any syscall.
//
// Bounds: entries larger than `max_file_bytes` are never cached; the total of the cached
// contents stays <= `capacity_bytes`, evicting least-recently-used entries.
//
// Example:
//   FileCache cache({.capacity_bytes = 16 << 20, .max_file_bytes = 16 << 10});
//   if (const CachedFile* f = cache.Lookup(root_fd, "index.html")) { /* send f->head ... */ }
//
// Threading: a FileCache belongs to one shard; it has no locks.

#ifndef KEV_APPS_HTTPD_FILE_CACHE_H_
#define KEV_APPS_HTTPD_FILE_CACHE_H_

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"

namespace kev::httpd {

// One cached file. Immutable once inserted.
struct CachedFile {
  // Identity of the file the bytes came from (see the file comment).
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  // Path beneath the root that was opened (e.g. "docs/index.html" for the key "docs/").
  std::string resolved;
  // The whole file.
  std::string content;
  // Validators and type, ready for headers.
  std::string etag;           // with quotes
  std::string last_modified;  // IMF-fixdate
  std::string_view content_type;
  // "HTTP/1.1 200 OK\r\n...Content-Length: n\r\n" up to, not including, the Date and
  // Connection lines and the blank line (the handler appends those per response).
  std::string head_200;
};

// Fills the identity fields of `f` from `st`.
void SetIdentity(const struct stat& st, CachedFile* f);

struct FileCacheOptions {
  // Total bytes of cached contents; 0 disables the cache.
  uint64_t capacity_bytes = 16 << 20;
  // Largest file cached; bigger files always take the sendfile path (cheaper past ~16 KiB: a
  // hit copies the body in user space, sendfile does not).
  uint64_t max_file_bytes = 16 << 10;
  // A hit within this long of the entry's last check (its fill or its last fstatat) is served
  // without re-stating the file; 0 re-stats on every hit (changes are seen at once).
  std::chrono::nanoseconds revalidate_after{0};
};

class FileCache {
 public:
  explicit FileCache(const FileCacheOptions& options);
  FileCache(const FileCache&) = delete;
  FileCache& operator=(const FileCache&) = delete;

  // Whether a file of `size` bytes may be inserted.
  bool Eligible(uint64_t size) const {
    return size <= options_.max_file_bytes && size <= options_.capacity_bytes;
  }

  // The entry for `key` if it is still valid, else nullptr (and a stale entry is dropped).
  // Costs one fstatat syscall when an entry exists and was last checked more than
  // `revalidate_after` ago (CLOCK_MONOTONIC_COARSE, so up to a tick later), none otherwise.
  // The pointer stays valid until the next call of a non-const method.
  const CachedFile* Lookup(int root_fd, std::string_view key);

  // Inserts (or replaces) the entry for `key`, evicting LRU entries to make room. Returns the
  // stored entry, or nullptr if it is not Eligible (then `file` is dropped).
  const CachedFile* Insert(std::string_view key, std::unique_ptr<CachedFile> file);

  // Drops everything.
  void Clear();

  uint64_t bytes() const { return bytes_; }
  size_t entries() const { return map_.size(); }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }
  uint64_t evictions() const { return evictions_; }

 private:
  struct Node {
    std::string key;
    std::unique_ptr<CachedFile> file;
    int64_t checked_ns = 0;  // CLOCK_MONOTONIC_COARSE time of the last proof of validity
  };
  using Lru = std::list<Node>;  // front = most recently used

  void Erase(Lru::iterator it);

  FileCacheOptions options_;
  Lru lru_;
  absl::flat_hash_map<std::string_view, Lru::iterator> map_;  // keys view Node::key
  uint64_t bytes_ = 0;
  uint64_t hits_ = 0, misses_ = 0, evictions_ = 0;
};

}  // namespace kev::httpd

#endif  // KEV_APPS_HTTPD_FILE_CACHE_H_
