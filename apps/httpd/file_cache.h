// A per-shard cache of static files: small ones as their bytes, bigger ones as an open file
// descriptor, each with its validators and the pre-rendered response head.
//
// Small responses are dominated by syscalls, not by bytes: open + fstat + sendfile + close for
// a 14-byte file costs far more than the copy. A cache hit costs at most one fstatat (to prove
// the file is unchanged) and lets the connection send head and body in a single write.
// A file too big to copy (over `max_file_bytes`) is kept open instead (like nginx's
// open_file_cache): a hit saves the open, fstat and close of every request and the rendering
// of its ETag and Last-Modified, and the body goes out with sendfile from the shared fd.
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
// Bounds: the total of the cached contents stays <= `capacity_bytes` and at most
// `max_open_files` descriptors are kept open, each evicting its least-recently-used entries.
// An evicted or replaced descriptor is closed only when the last response sending from it lets
// go of it (SharedFd), so a transfer never loses its file to the cache. CloseOpenFiles() drops
// all open-file entries; the Handler calls it when the shard's last connection ends, so an
// idle server holds no file open.
//
// Example:
//   FileCache cache({.capacity_bytes = 16 << 20, .max_file_bytes = 16 << 10});
//   if (const CachedFile* f = cache.Lookup(root_fd, "index.html")) { /* send f->head ... */ }
//
// Threading: a FileCache belongs to one shard; it has no locks.

#ifndef KEV_APPS_HTTPD_FILE_CACHE_H_
#define KEV_APPS_HTTPD_FILE_CACHE_H_

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"

namespace kev::httpd {

// An owned file descriptor (closed on destruction). Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.Release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) Reset(o.Release());
    return *this;
  }
  ~UniqueFd() { Reset(); }
  bool valid() const { return fd_ >= 0; }
  int get() const { return fd_; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// A file descriptor with several owners (a cache entry and the responses sending from it); the
// last owner to let go closes it. Copying adds an owner. Shard-local: the count is a plain
// integer, so a SharedFd and its copies must stay on the shard that made them.
class SharedFd {
 public:
  SharedFd() = default;
  // Takes ownership of `fd` (>= 0). Allocates the owner count: once per cache fill.
  static SharedFd Adopt(int fd) { return SharedFd(new Box{fd, 1}); }
  SharedFd(const SharedFd& o) noexcept : box_(o.box_) {
    if (box_ != nullptr) ++box_->owners;
  }
  SharedFd& operator=(const SharedFd& o) noexcept {
    if (this != &o) {
      Reset();
      box_ = o.box_;
      if (box_ != nullptr) ++box_->owners;
    }
    return *this;
  }
  // A moved-from SharedFd is empty (!valid()).
  SharedFd(SharedFd&& o) noexcept : box_(std::exchange(o.box_, nullptr)) {}
  SharedFd& operator=(SharedFd&& o) noexcept {
    if (this != &o) {
      Reset();
      box_ = std::exchange(o.box_, nullptr);
    }
    return *this;
  }
  ~SharedFd() { Reset(); }

  bool valid() const { return box_ != nullptr; }
  int get() const { return box_ != nullptr ? box_->fd : -1; }
  // How many SharedFd hold this descriptor (0 when empty); for tests.
  uint32_t owners() const { return box_ != nullptr ? box_->owners : 0; }
  // Lets go; closes the descriptor if this was the last owner.
  void Reset() {
    if (box_ != nullptr && --box_->owners == 0) {
      ::close(box_->fd);
      delete box_;
    }
    box_ = nullptr;
  }

 private:
  struct Box {
    int fd;
    uint32_t owners;
  };
  explicit SharedFd(Box* box) : box_(box) {}
  Box* box_ = nullptr;
};

// One cached file. Immutable once inserted.
struct CachedFile {
  // Identity of the file the bytes came from (see the file comment).
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  // Path beneath the root that was opened (e.g. "docs/index.html" for the key "docs/").
  std::string resolved;
  // The whole file (a small file), or empty when `fd` is set.
  std::string content;
  // The open file (a file over max_file_bytes): responses send from it. Opened read-only.
  SharedFd fd;
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
  // Files over max_file_bytes kept open at most (each is one descriptor of the process);
  // 0 keeps none open. nginx's open_file_cache in the benchmarks holds up to 1000.
  size_t max_open_files = 256;
};

class FileCache {
 public:
  explicit FileCache(const FileCacheOptions& options);
  FileCache(const FileCache&) = delete;
  FileCache& operator=(const FileCache&) = delete;

  // Whether a file of `size` bytes may be inserted by content.
  bool Eligible(uint64_t size) const {
    return size <= options_.max_file_bytes && size <= options_.capacity_bytes;
  }
  // Whether a file may be inserted as an open descriptor (`fd` set, `content` empty).
  bool KeepsFilesOpen() const { return options_.max_open_files > 0; }

  // The entry for `key` if it is still valid, else nullptr (and a stale entry is dropped).
  // Costs one fstatat syscall when an entry exists and was last checked more than
  // `revalidate_after` ago (CLOCK_MONOTONIC_COARSE, so up to a tick later), none otherwise.
  // The pointer stays valid until the next call of a non-const method.
  const CachedFile* Lookup(int root_fd, std::string_view key);

  // Inserts (or replaces) the entry for `key`, evicting LRU entries of the same kind (content or
  // open file) to make room. Returns the stored entry, or nullptr if it is not Eligible by
  // content (or, with `fd` set, if !KeepsFilesOpen()); then `file` is dropped. Inserting an fd
  // entry takes one owner of its SharedFd; a replaced or evicted one is released, not closed
  // under a response that still holds it.
  const CachedFile* Insert(std::string_view key, std::unique_ptr<CachedFile> file);

  // Drops everything.
  void Clear();
  // Drops the open-file entries (their descriptors close once no response holds them), keeps
  // the content entries. The Handler calls it when its shard has no connection left.
  void CloseOpenFiles();

  uint64_t bytes() const { return bytes_; }
  size_t entries() const { return map_.size(); }
  size_t open_files() const { return fd_lru_.size(); }
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

  Lru& ListOf(const Node& node) { return node.file->fd.valid() ? fd_lru_ : lru_; }
  void Erase(Lru::iterator it);

  FileCacheOptions options_;
  Lru lru_;     // content entries
  Lru fd_lru_;  // open-file entries (own bound: max_open_files)
  absl::flat_hash_map<std::string_view, Lru::iterator> map_;  // keys view Node::key
  uint64_t bytes_ = 0;
  uint64_t hits_ = 0, misses_ = 0, evictions_ = 0;
};

}  // namespace kev::httpd

#endif  // KEV_APPS_HTTPD_FILE_CACHE_H_
