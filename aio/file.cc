#include "aio/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "kevent/poller.h"
#include "net/internal/shard.h"

namespace kev::aio {
namespace {

std::exception_ptr SystemError(int error, const char* what) {
  return std::make_exception_ptr(std::system_error(error, std::system_category(), what));
}

// One heap record per file operation: it is the IoCompletion and holds what the kernel reads
// or writes (path, statx buffer) until the final completion, even if the File or the future is
// gone by then. It deletes itself after resolving its promise.
template <class T, class Derived>
struct FileOp : IoCompletion {
  void OnComplete(int32_t result, uint32_t) noexcept override {
    if (result < 0) {
      promise.SetException(SystemError(-result, static_cast<Derived*>(this)->what));
    } else {
      static_cast<Derived*>(this)->Resolve(result);
    }
    delete static_cast<Derived*>(this);
  }
  Promise<T> promise;
};

struct OpenOp final : FileOp<File, OpenOp> {
  void Resolve(int32_t fd) { promise.SetValue(File(fd)); }
  const char* what = "kev::aio::File::Open";
  std::string path;
};

struct SizeOp final : FileOp<size_t, SizeOp> {
  void Resolve(int32_t n) { promise.SetValue(static_cast<size_t>(n)); }
  const char* what = "kev::aio::File I/O";
};

struct VoidOp final : FileOp<void, VoidOp> {
  void Resolve(int32_t) { promise.SetValue(); }
  const char* what = "kev::aio::File";
};

struct StatOp final : FileOp<struct statx, StatOp> {
  void Resolve(int32_t) { promise.SetValue(buffer); }
  const char* what = "kev::aio::Stat";
  std::string path;
  struct statx buffer {};
};

template <class T>
Future<T> BadFile() {
  return MakeExceptionFuture<T>(SystemError(EBADF, "kev::aio::File: not open"));
}

}  // namespace

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

File::~File() {
  if (fd_ >= 0) ::close(fd_);
}

Future<File> File::Open(std::string path, int flags, mode_t mode) {
  auto* op = new OpenOp;
  op->path = std::move(path);
  Future<File> future = op->promise.GetFuture();
  net::internal::CurrentPoller().OpenAt(AT_FDCWD, op->path.c_str(), flags | O_CLOEXEC, mode, op);
  return future;
}

Future<size_t> File::Read(uint64_t offset, std::span<std::byte> buf) {
  if (fd_ < 0) return BadFile<size_t>();
  auto* op = new SizeOp;
  Future<size_t> future = op->promise.GetFuture();
  net::internal::CurrentPoller().Read(fd_, buf, static_cast<int64_t>(offset), op);
  return future;
}

Future<size_t> File::Write(uint64_t offset, std::span<const std::byte> data) {
  if (fd_ < 0) return BadFile<size_t>();
  auto* op = new SizeOp;
  Future<size_t> future = op->promise.GetFuture();
  net::internal::CurrentPoller().Write(fd_, data, static_cast<int64_t>(offset), op);
  return future;
}

Future<struct statx> File::Stat() {
  if (fd_ < 0) return BadFile<struct statx>();
  auto* op = new StatOp;
  Future<struct statx> future = op->promise.GetFuture();
  net::internal::CurrentPoller().Statx(fd_, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &op->buffer, op);
  return future;
}

Future<void> File::Fsync(bool datasync) {
  if (fd_ < 0) return BadFile<void>();
  auto* op = new VoidOp;
  Future<void> future = op->promise.GetFuture();
  net::internal::CurrentPoller().Fsync(fd_, datasync, op);
  return future;
}

Future<void> File::Close() {
  if (fd_ < 0) return BadFile<void>();
  auto* op = new VoidOp;
  Future<void> future = op->promise.GetFuture();
  net::internal::CurrentPoller().Close(std::exchange(fd_, -1), op);
  return future;
}

Future<struct statx> Stat(std::string path, int flags) {
  auto* op = new StatOp;
  op->path = std::move(path);
  Future<struct statx> future = op->promise.GetFuture();
  net::internal::CurrentPoller().Statx(AT_FDCWD, op->path.c_str(), flags, STATX_BASIC_STATS,
                                       &op->buffer, op);
  return future;
}

Future<std::vector<DirectoryEntry>> ListDirectory(std::string path) {
  // Synchronous: io_uring has no getdents (see the header).
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) {
    return MakeExceptionFuture<std::vector<DirectoryEntry>>(
        SystemError(errno, "kev::aio::ListDirectory"));
  }
  std::vector<DirectoryEntry> entries;
  errno = 0;
  while (dirent* entry = ::readdir(dir)) {
    std::string_view name(entry->d_name);
    if (name == "." || name == "..") continue;
    entries.push_back(DirectoryEntry{std::string(name), entry->d_type});
  }
  int error = errno;
  ::closedir(dir);
  if (error != 0) {
    return MakeExceptionFuture<std::vector<DirectoryEntry>>(
        SystemError(error, "kev::aio::ListDirectory"));
  }
  std::sort(entries.begin(), entries.end(),
            [](const DirectoryEntry& a, const DirectoryEntry& b) { return a.name < b.name; });
  return MakeReadyFuture(std::move(entries));
}

}  // namespace kev::aio
