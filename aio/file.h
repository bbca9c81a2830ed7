// aio/file.h: files through the poller (io_uring openat/read/write/statx/fsync/close, or the
// epoll backend's synchronous equivalents), and directory listing.
//
//   kev::Future<size_t> CountBytes(std::string path) {         // path by value: see coroutines.md
//     kev::aio::File f = co_await kev::aio::File::Open(path, O_RDONLY);
//     struct statx st = co_await f.Stat();
//     std::vector<std::byte> buf(st.stx_size);
//     size_t n = co_await f.Read(0, buf);                      // buf lives until the future
//     resolves co_await f.Close(); co_return n;
//   }
//
// Errors: std::system_error(errno, std::system_category()) on the future (ENOENT, EACCES, ...).
// Each operation allocates one small record (it must outlive the kernel's use of it even if the
// File is destroyed first); file I/O is not the per-packet hot path, sockets are.
//
// Threading: a File belongs to the shard that opened it; call everything there, inside a
// running reactor.
#ifndef KEV_AIO_FILE_H_
#define KEV_AIO_FILE_H_

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "reactor/future.h"

namespace kev::aio {

class File {
 public:
  // An invalid file (fd() -1).
  File() noexcept = default;
  // Adopts an open descriptor; the File closes it.
  explicit File(int fd) noexcept : fd_(fd) {}
  File(File&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  // Closes the descriptor if still open (a plain close(2): do not destroy a File with
  // operations in flight; co_await them or Close() first).
  ~File();

  // openat(AT_FDCWD, path, flags | O_CLOEXEC, mode). Fails with std::system_error.
  static Future<File> Open(std::string path, int flags, mode_t mode = 0644);

  bool valid() const noexcept { return fd_ >= 0; }
  int fd() const noexcept { return fd_; }
  // Gives up ownership of the descriptor.
  int Release() noexcept { return std::exchange(fd_, -1); }

  // pread at `offset` into `buf` (which must stay valid until the future resolves). Resolves
  // with the byte count (0 at end of file; may be short).
  Future<size_t> Read(uint64_t offset, std::span<std::byte> buf);
  // pwrite of `data` at `offset` (valid until resolved). Resolves with the byte count.
  Future<size_t> Write(uint64_t offset, std::span<const std::byte> data);
  // statx of the open file (STATX_BASIC_STATS).
  Future<struct statx> Stat();
  // fsync / fdatasync.
  Future<void> Fsync(bool datasync = false);
  // Closes the descriptor through the poller. The File is invalid afterwards.
  Future<void> Close();

 private:
  int fd_ = -1;
};

// statx of a path (relative to the working directory) without opening it; `flags` as for
// statx (e.g. AT_SYMLINK_NOFOLLOW). Fails with std::system_error.
Future<struct statx> Stat(std::string path, int flags = 0);

struct DirectoryEntry {
  std::string name;    // not "." or ".."
  unsigned char type;  // DT_REG, DT_DIR, DT_LNK, ... (DT_UNKNOWN on some file systems)
};

// The entries of directory `path`, sorted by name. io_uring has no getdents, so this runs the
// getdents64 calls on the calling thread (one syscall per 32 KiB of entries): fine for the
// directory listings of a web server, not for huge directories on slow storage.
Future<std::vector<DirectoryEntry>> ListDirectory(std::string path);

}  // namespace kev::aio

#endif  // KEV_AIO_FILE_H_
