#include "apps/httpd/file_cache.h"

#include <fcntl.h>
#include <time.h>

#include <utility>

namespace kev::httpd {
namespace {

int64_t CoarseNowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);  // vDSO: no syscall
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace

void SetIdentity(const struct stat& st, CachedFile* f) {
  f->dev = st.st_dev;
  f->ino = st.st_ino;
  f->size = static_cast<uint64_t>(st.st_size);
  f->mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

FileCache::FileCache(const FileCacheOptions& options) : options_(options) {}

const CachedFile* FileCache::Lookup(int root_fd, std::string_view key) {
  auto found = map_.find(key);
  if (found == map_.end()) {
    ++misses_;
    return nullptr;
  }
  Lru::iterator it = found->second;
  const CachedFile& f = *it->file;
  const int64_t window = options_.revalidate_after.count();
  const int64_t now = window > 0 ? CoarseNowNs() : 0;
  Lru& list = ListOf(*it);
  if (window > 0 && now - it->checked_ns < window) {
    list.splice(list.begin(), list, it);  // checked recently: no syscall
    ++hits_;
    return it->file.get();
  }
  struct stat st;
  // Syscall per hit outside the window: the validity check (see the header); no allocation,
  // the path is NUL-terminated by std::string.
  if (fstatat(root_fd, f.resolved.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<uint64_t>(st.st_dev) != f.dev || static_cast<uint64_t>(st.st_ino) != f.ino ||
      static_cast<uint64_t>(st.st_size) != f.size ||
      static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec != f.mtime_ns) {
    Erase(it);
    ++misses_;
    return nullptr;
  }
  it->checked_ns = now;
  list.splice(list.begin(), list, it);
  ++hits_;
  return it->file.get();
}

const CachedFile* FileCache::Insert(std::string_view key, std::unique_ptr<CachedFile> file) {
  if (file == nullptr) return nullptr;
  const bool open_file = file->fd.valid();
  if (open_file ? !KeepsFilesOpen() || !file->content.empty() : !Eligible(file->content.size())) {
    return nullptr;
  }
  if (auto found = map_.find(key); found != map_.end()) Erase(found->second);
  const uint64_t size = file->content.size();
  Lru& list = open_file ? fd_lru_ : lru_;
  while (!list.empty() && (open_file ? list.size() >= options_.max_open_files
                                     : bytes_ + size > options_.capacity_bytes)) {
    Erase(std::prev(list.end()));
    ++evictions_;
  }
  // The filler stat'ed the file just now, which is a check.
  const int64_t now = options_.revalidate_after.count() > 0 ? CoarseNowNs() : 0;
  list.push_front(Node{std::string(key), std::move(file), now});
  map_.emplace(list.front().key, list.begin());
  bytes_ += size;
  return list.front().file.get();
}

void FileCache::Clear() {
  map_.clear();
  lru_.clear();
  fd_lru_.clear();
  bytes_ = 0;
}

void FileCache::CloseOpenFiles() {
  while (!fd_lru_.empty()) Erase(fd_lru_.begin());
}

void FileCache::Erase(Lru::iterator it) {
  bytes_ -= it->file->content.size();
  map_.erase(std::string_view(it->key));
  ListOf(*it).erase(it);
}

}  // namespace kev::httpd
