// The C sendfile calls of aio/aio.h: the SendFileEngine run as a KEVENT_AIO operation on a
// C-API queue, through the AIO origin's StartAio hook (kevent/internal/aio_origin.h).
#include "aio/aio.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <memory>
#include <new>
#include <span>

#include "aio/internal/sendfile_engine.h"
#include "kevent/internal/aio_origin.h"

namespace kev::aio::internal {
namespace {

// One aio_sendfile / aio_sendfile_path call. Owned by the queue from StartAio until Finish.
class SendFileAio final : public kevent_internal::AioOperation {
 public:
  SendFileAio(int sock, int file, bool owns_file, off_t offset, size_t count, const void* header,
              size_t header_size)
      : sock_(sock), file_(file), owns_file_(owns_file), offset_(offset), count_(count) {
    const auto* bytes = static_cast<const std::byte*>(header);
    header_.assign(bytes, bytes + header_size);  // copied before the call returns
  }
  ~SendFileAio() override {
    if (owns_file_) ::close(file_);
  }

  void Start(Poller& poller) override {
    // The caller's socket may be blocking, where sendfile(2) would block the thread driving
    // the queue; on io_uring the splice mode lets the kernel's workers wait instead. One fcntl
    // per call: the C calls are not the per-request path of kev's own servers. A bad socket
    // fails the F_GETFL and is reported by the transfer's first operation.
    SendFileEngine::Mode mode = SendFileEngine::Mode::kAuto;
    if (poller.backend() == PollerBackend::kIoUring) {
      const int flags = ::fcntl(sock_, F_GETFL);
      if (flags >= 0 && (flags & O_NONBLOCK) == 0) mode = SendFileEngine::Mode::kSplice;
    }
    // inline_ok=false: the result must come from a completion, never from inside Start.
    engine_.Start(poller, sock_, file_, offset_, count_, header_, &OnDone, this,
                  /*inline_ok=*/false, mode);
  }
  void Cancel(Poller&) override { engine_.Abort(); }

 private:
  static void OnDone(SendFileEngine*, int64_t result, void* arg) {
    // Finish deletes this operation (and the engine inside it); the engine touches nothing
    // after calling us.
    static_cast<SendFileAio*>(arg)->Finish(result);
  }

  int sock_;
  int file_;
  bool owns_file_;
  off_t offset_;
  size_t count_;
  std::vector<std::byte> header_;
  SendFileEngine engine_;
};

long Submit(int kevent_fd, int sock_fd, int in_fd, bool owns_file, off_t offset, size_t count,
            const void* header, size_t header_size) {
  std::unique_ptr<SendFileAio> op;
  try {
    op = std::make_unique<SendFileAio>(sock_fd, in_fd, owns_file, offset, count, header,
                                       header_size);
  } catch (const std::bad_alloc&) {
    if (owns_file) ::close(in_fd);
    return -ENOMEM;
  }
  // On failure StartAio destroys op, which closes an owned file.
  return kevent_internal::StartAio(kevent_fd, std::move(op));
}

}  // namespace
}  // namespace kev::aio::internal

extern "C" {

long aio_sendfile(int kevent_fd, int sock_fd, int in_fd, off_t offset, size_t count) {
  if (kevent_fd < 0 || sock_fd < 0 || in_fd < 0) return -EBADF;
  if (offset < 0) return -EINVAL;
  return kev::aio::internal::Submit(kevent_fd, sock_fd, in_fd, /*owns_file=*/false, offset, count,
                                    nullptr, 0);
}

long aio_sendfile_path(int kevent_fd, int sock_fd, void* header, size_t header_size, char* filename,
                       off_t offset, size_t count) {
  if (kevent_fd < 0 || sock_fd < 0) return -EBADF;
  if (offset < 0 || filename == nullptr || (header == nullptr && header_size > 0)) return -EINVAL;
  // Opened here, synchronously, so that a missing or unreadable file is an immediate error.
  int fd = ::open(filename, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  return kev::aio::internal::Submit(kevent_fd, sock_fd, fd, /*owns_file=*/true, offset, count,
                                    header, header_size);
}

}  // extern "C"
