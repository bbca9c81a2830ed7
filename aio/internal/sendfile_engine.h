// aio/internal/sendfile_engine.h: the one sendfile engine behind aio::SendFile and the C
// aio_sendfile / aio_sendfile_path calls. Not part of the public API.
//
// A SendFileEngine moves `count` bytes of a file, from `offset`, to a stream socket, optionally
// preceded by a header, as a chain of poller operations with exactly one in flight at a time:
//
//   header:   Send(sock, header, MSG_MORE), inline send(2) first when inline_ok
//   sendfile: sendfile(2) until EAGAIN, then PollAdd(sock, POLLOUT), repeated   (Mode::kAuto)
//   splice:   Splice(file@off -> pipe) then Splice(pipe -> sock), repeated   (Mode::kSplice)
//
// Why sendfile(2) on readiness is the default on io_uring too: io_uring has no sendfile opcode
// and runs splice in its io-wq worker threads, so a splice pair costs two worker hand-offs and
// two loop turns per chunk, and on a 2-core machine the workers compete with the shard for the
// CPU. sendfile(2) from the shard's thread moves what the socket buffer takes in one syscall.
// Measured with tests/perf/bench.py (1 shard vs nginx, A/B rounds, noisy shared machine):
// kev/nginx for 1 MiB files 0.86 -> 1.82, for 64 KiB files 0.78 -> 0.92, from this alone
// (docs/aio.md has the commands). kSplice stays for blocking sockets, where sendfile(2) would
// block the thread and io-wq would not.
//
// Short transfers are resumed; EAGAIN from a non-blocking socket waits for POLLOUT. A file that
// ends early (splice or sendfile returning 0) fails with ENODATA instead of waiting forever.
// The pipe comes from a per-thread pool (reused, no pipe(2) per transfer) and goes back only
// if it is empty; a pipe left holding bytes by a failure is closed.
//
//   engine.Start(poller, sock, file, offset, count, {}, &OnDone, arg, /*inline_ok=*/true);
//   // ... OnDone(engine, bytes_or_minus_errno, arg) runs once, from a completion (or from
//   // Start itself when inline_ok and the transfer finished at once).
//
// Lifetime: the engine must stay alive (not moved) from Start until its done callback has
// begun; the callback may destroy it or Start it again. Single-threaded: the thread driving the
// poller.
#ifndef KEV_AIO_INTERNAL_SENDFILE_ENGINE_H_
#define KEV_AIO_INTERNAL_SENDFILE_ENGINE_H_

#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "kevent/poller.h"

namespace kev::aio::internal {

class SendFileEngine final : public IoCompletion {
 public:
  // result: bytes sent (header included), or a negative errno.
  using DoneFn = void (*)(SendFileEngine* engine, int64_t result, void* arg);

  enum class Mode : uint8_t {
    // sendfile(2) until EAGAIN, then wait for POLLOUT, on both backends. The socket must be
    // non-blocking (else sendfile(2) blocks the thread that drives the poller).
    kAuto,
    // Splice through a pooled pipe, on io_uring: works with a blocking socket too, since the
    // kernel's workers do the waiting. On epoll it is the same syscalls made on readiness.
    kSplice,
  };

  SendFileEngine() = default;
  ~SendFileEngine();
  SendFileEngine(const SendFileEngine&) = delete;
  SendFileEngine& operator=(const SendFileEngine&) = delete;

  // Starts a transfer. `header` is copied. With `inline_ok`, work that can be done at once
  // (sendfile mode: the header's send(2) and sendfile(2) until EAGAIN) is done inside Start,
  // and `done` may run before Start returns; without it
  // `done` always runs from a poller completion (what the C API needs: no re-entry into the
  // queue from inside aio_sendfile).
  void Start(Poller& poller, int sock, int file, off_t offset, size_t count,
             std::span<const std::byte> header, DoneFn done, void* arg, bool inline_ok,
             Mode mode = Mode::kAuto);

  // Stops the transfer: nothing more is submitted, what is in flight is cancelled, and `done`
  // runs with -ECANCELED from that operation's final completion. No-op when idle.
  void Abort() noexcept;

  bool running() const noexcept { return phase_ != Phase::kIdle; }

  void OnComplete(int32_t result, uint32_t flags) noexcept override;

 private:
  enum class Phase : uint8_t {
    kIdle,
    kHeader,
    kFill,
    kDrain,
    kWaitWritable,
    kSendfile,
    kFailLater
  };

  void Next() noexcept;  // submits the next operation, or finishes
  void SendHeader() noexcept;
  // MSG_MORE while file bytes follow: the header then shares segments with the file's first
  // bytes, and the transfer's last sendfile/splice (without MORE) pushes everything out.
  int HeaderFlags() const noexcept { return MSG_NOSIGNAL | (remaining_ > 0 ? MSG_MORE : 0); }
  void Fill() noexcept;
  void Drain() noexcept;
  void WaitWritable() noexcept;
  // sendfile(2) until EAGAIN (then waits) or done; only in sendfile mode.
  void TrySendfile() noexcept;
  void Finish(int64_t result) noexcept;

  Poller* poller_ = nullptr;
  int sock_ = -1;
  int file_ = -1;
  off_t offset_ = 0;
  size_t remaining_ = 0;  // file bytes not yet read into the pipe / sent
  size_t in_pipe_ = 0;    // bytes in the pipe, not yet sent
  uint64_t sent_ = 0;
  std::vector<std::byte> header_;  // capacity reused across transfers
  size_t header_sent_ = 0;
  bool splice_ = true;
  bool aborted_ = false;
  int pending_error_ = 0;  // kFailLater: reported from a zero timeout's completion
  bool inline_ok_ = false;
  Phase phase_ = Phase::kIdle;
  int pipe_[2] = {-1, -1};
  size_t pipe_capacity_ = 0;
  DoneFn done_ = nullptr;
  void* arg_ = nullptr;
};

}  // namespace kev::aio::internal

#endif  // KEV_AIO_INTERNAL_SENDFILE_ENGINE_H_
