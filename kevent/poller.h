// kevent/poller.h: the one narrow interface between kev and the operating system.
//
// A Poller submits operations (reads, writes, accepts, splices, polls, timeouts...) and reports
// their completions through intrusive `IoCompletion` callbacks. Two implementations exist, one
// file each: `IoUringPoller` (default) and `EpollPoller` (the baseline, and the fallback when
// io_uring is unavailable). The epoll backend emulates completion operations with readiness plus
// the plain syscall, so callers see the same results on both.
//
// Threading: a Poller belongs to one thread at a time (a reactor shard, or the one thread that
// drives a C-API queue while others sleep). Only `Wake()` may be called from any thread. With
// `PollerOptions::single_issuer` (the default) that thread is fixed by the first Wait().
//
// Completion delivery (both backends): `OnComplete` runs only inside `Wait()` (and inside the
// destructor), never from inside the call that submitted the operation, nor from `Cancel()`,
// even when the result is known at once (the epoll backend runs regular-file I/O synchronously
// and queues the result for the next Wait()). So a submitter never re-enters its own callback.
//
// Lifetimes: every pointer an operation takes (buffers, a msghdr and what it points to,
// addr/addrlen, path, the statx buffer) must stay valid until that operation's final completion.
//
// See docs/pollers.md for how each operation maps to io_uring and to epoll.
//
// Example:
//   auto poller = kev::Poller::Create(kev::PollerBackend::kDefault);
//   struct Done : kev::IoCompletion {
//     void OnComplete(int32_t res, uint32_t flags) noexcept override { result = res; }
//     int32_t result = 0;
//   } done;
//   poller->Recv(fd, buf, 0, &done);                // queued; submitted by the next Wait()
//   poller->Wait(std::chrono::milliseconds(100));   // done.result: bytes, or -errno
#ifndef KEV_KEVENT_POLLER_H_
#define KEV_KEVENT_POLLER_H_

#include <sys/socket.h>
#include <sys/stat.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

namespace kev {

// Flags passed to IoCompletion::OnComplete.
inline constexpr uint32_t kCompletionMore = 1u << 0;  // a multishot operation stays armed
// A RecvBufferSelect completion: the `result` bytes are at the start of the pool buffer whose id
// CompletionBufferId(flags) gives. The receiver owns that buffer until Poller::ReturnBuffer.
inline constexpr uint32_t kCompletionBuffer = 1u << 1;
// The pool buffer id of a completion with kCompletionBuffer (bits 16..31 of the flags, as in
// io_uring's CQE).
constexpr uint16_t CompletionBufferId(uint32_t flags) noexcept {
  return static_cast<uint16_t>(flags >> 16);
}

// The receiver of one operation's completion(s). The caller owns it; it must stay alive (and at
// the same address) until its final completion, i.e. one without kCompletionMore. Every
// submitted operation gets exactly one final completion, including after Cancel (-ECANCELED, or
// the real result if the operation won the race) and at Poller destruction (-ECANCELED, or the
// real result of an operation that had already finished). One completion may serve several
// operations at once (Cancel then cancels them all), except a multishot PollAdd, which must
// have its completion to itself.
class IoCompletion {
 public:
  // `result` is the syscall's result (>= 0) or a negative errno. Runs on the polling thread,
  // inside Poller::Wait. May submit new operations and cancel others; must not destroy the
  // Poller.
  virtual void OnComplete(int32_t result, uint32_t flags) noexcept = 0;

 protected:
  ~IoCompletion() = default;
};

enum class PollerBackend {
  kDefault,  // io_uring, or epoll when io_uring_setup fails (said once on stderr)
  kIoUring,
  kEpoll,
};

// Parses "io_uring" / "epoll" / "default"; nullopt for anything else.
std::optional<PollerBackend> ParsePollerBackend(std::string_view name);
// The backend named by the environment variable KEV_BACKEND, kDefault when unset. An invalid
// value is reported on stderr once and treated as kDefault.
PollerBackend PollerBackendFromEnvironment();

struct PollerOptions {
  // Submission queue entries; the completion queue is sized at twice this. Operations beyond
  // what fits are held and submitted as room frees up; none is dropped. (epoll: the most
  // readiness events fetched per Wait.)
  unsigned entries = 1024;
  // io_uring: ask for IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN, which bind the ring to the
  // first thread that drives it (its first Wait(), or a submission that overflows the SQ) for
  // the poller's whole life, destruction included. Set false when the driving thread may
  // change (e.g. a C-API queue driven by whichever thread waits). Ignored by epoll.
  bool single_issuer = true;
  // Test hook: when non-zero (a negative errno), io_uring setup fails with it, so tests can
  // drive kDefault's fallback to epoll. Never set outside tests.
  int io_uring_setup_error_for_testing = 0;
  // The per-poller (= per-shard) pool of receive buffers behind RecvBufferSelect: how many
  // (rounded up to a power of two, at most 32768) and how large. Allocated at the first
  // RecvBufferSelect; pages are touched only as buffers are used. 256 x 16 KiB = 4 MiB of
  // address space per shard, whatever the number of connections. Both backends keep what is
  // resident small: free buffers are reused most recent first, and once the shard is idle,
  // buffers the load has not needed for ~250 ms give their pages back (madvise). On io_uring
  // the kernel's ring holds a window of the pool that follows the load (32 buffers up to all
  // of them), so a quiet shard keeps about 32 buffers' first pages resident (128 KiB) instead
  // of every buffer's. A receive that finds no buffer is still reported as -ENOBUFS (see
  // RecvBufferSelect); the window then grows.
  unsigned recv_buffer_count = 256;
  unsigned recv_buffer_size = 16384;
  // io_uring: hand the pool to the kernel as a provided-buffer ring (IORING_REGISTER_PBUF_RING,
  // 5.19), so a pending receive holds no buffer. false (or a kernel without it) selects the
  // fallback: the buffer is taken from the pool when the receive is submitted.
  bool use_buffer_ring = true;
};

class Poller {
 public:
  // Creates a poller. kDefault tries io_uring (kernel >= 5.19) then epoll, saying once per
  // process on stderr when it falls back. Returns nullptr and sets *error (negative errno) when
  // the requested backend cannot be created.
  static std::unique_ptr<Poller> Create(PollerBackend backend, const PollerOptions& options = {},
                                        int* error = nullptr);

  // Runs on the owning thread. Cancels everything in flight and delivers each operation's
  // final completion before returning (see IoCompletion). Operations submitted from those
  // callbacks complete with -ECANCELED without being performed.
  virtual ~Poller() = default;
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // kIoUring or kEpoll: what this poller really is.
  virtual PollerBackend backend() const noexcept = 0;
  virtual std::string_view name() const noexcept = 0;

  // --- Readiness -------------------------------------------------------------------------
  // Reports poll(2) events (POLLIN, POLLOUT, ...; POLLERR/POLLHUP always) of `fd` as the result.
  // Multishot: every time the fd becomes ready (level-triggered: while the condition holds, each
  // Wait() reports it again, at most once per Wait()) with kCompletionMore, until cancelled.
  // One-shot: once. An fd that cannot be polled (a regular file) is reported ready once, finally.
  virtual void PollAdd(int fd, uint32_t poll_events, bool multishot, IoCompletion* c) = 0;

  // --- Operations (each completes once: result as the syscall's, or -errno) ---------------
  // Read/Write: `offset` -1 means the file's current position; use -1 for pipes and sockets.
  // Lengths above 0x7ffff000 are clamped (the kernel's own limit per call).
  virtual void Read(int fd, std::span<std::byte> buf, int64_t offset, IoCompletion* c) = 0;
  virtual void Write(int fd, std::span<const std::byte> buf, int64_t offset, IoCompletion* c) = 0;
  virtual void Recv(int fd, std::span<std::byte> buf, int flags, IoCompletion* c) = 0;
  virtual void Send(int fd, std::span<const std::byte> buf, int flags, IoCompletion* c) = 0;
  virtual void RecvMsg(int fd, msghdr* msg, int flags, IoCompletion* c) = 0;
  virtual void SendMsg(int fd, const msghdr* msg, int flags, IoCompletion* c) = 0;
  // Multishot: one completion (the new fd) per connection with kCompletionMore until cancelled
  // or failed. A multishot operation may also end by itself (its last completion lacks
  // kCompletionMore, e.g. when the kernel's CQ overflowed); re-arm it if still wanted.
  // `addr`/`addrlen` may be null.
  virtual void Accept(int fd, sockaddr* addr, socklen_t* addrlen, int flags, bool multishot,
                      IoCompletion* c) = 0;
  virtual void Connect(int fd, const sockaddr* addr, socklen_t addrlen, IoCompletion* c) = 0;
  // splice(2) of up to `len` bytes; offsets of -1 mean "current position / a pipe".
  virtual void Splice(int fd_in, int64_t off_in, int fd_out, int64_t off_out, unsigned len,
                      unsigned flags, IoCompletion* c) = 0;
  virtual void OpenAt(int dirfd, const char* path, int flags, mode_t mode, IoCompletion* c) = 0;
  virtual void Statx(int dirfd, const char* path, int flags, unsigned mask, struct statx* out,
                     IoCompletion* c) = 0;
  virtual void Fsync(int fd, bool datasync, IoCompletion* c) = 0;
  // Cancels every operation in flight on `fd` first (they get their final completion:
  // -ECANCELED, or the real result if they won the race), then closes it.
  virtual void Close(int fd, IoCompletion* c) = 0;
  // Completes with -ETIME after `duration` (CLOCK_MONOTONIC).
  virtual void Timeout(std::chrono::nanoseconds duration, IoCompletion* c) = 0;

  // --- Receive into a pool buffer (buffer selection) ---------------------------------------
  // Whether RecvBufferSelect and the calls below are available (both real backends: yes; a
  // wrapper poller may say no, and callers then use Recv).
  virtual bool SupportsBufferSelect() const noexcept { return false; }
  // recv(2) into a buffer the poller picks from its pool when data arrives, so a receive that
  // waits holds no memory of the caller's or the pool's (io_uring: a provided-buffer ring;
  // epoll: readiness, then recv into a pool buffer; io_uring without the ring: a pool buffer
  // taken at submission). Completes once. result > 0: the bytes are in the buffer of id
  // CompletionBufferId(flags), and flags has kCompletionBuffer: the receiver owns that buffer
  // and must ReturnBuffer it (the pool is small and shared by the shard). result 0 (end of
  // stream) or -errno: no buffer. -ENOBUFS: the pool was empty when data was there; the caller
  // should fall back to Recv into its own memory (or retry after returning buffers). While this
  // is in flight, `c` must not serve another operation.
  virtual void RecvBufferSelect(int fd, int flags, IoCompletion* c);
  // Buffer `id` of the pool (its whole capacity, recv_buffer_size bytes). Valid while owned.
  virtual std::span<std::byte> SelectedBuffer(uint16_t id) noexcept;
  // Gives buffer `id` back to the pool. Call once per kCompletionBuffer completion, on the
  // polling thread; also allowed from callbacks run by the destructor.
  virtual void ReturnBuffer(uint16_t id) noexcept;
  // Pool buffers not owned by any receiver right now (for tests and metrics; 0 before the
  // first RecvBufferSelect allocates the pool).
  virtual size_t BuffersAvailable() const noexcept { return 0; }
  // Whether the kernel picks the buffers (io_uring provided-buffer ring). For tests.
  virtual bool UsesBufferRing() const noexcept { return false; }

  // Cancels the operation(s) whose completion is `target`. `target` then gets its final
  // completion (-ECANCELED or its real result), in a later Wait(). No-op if nothing is in
  // flight for it. A multishot PollAdd reports nothing more after Cancel but its final.
  virtual void Cancel(IoCompletion* target) = 0;

  // --- Driving ------------------------------------------------------------------------------
  // Submits what is queued, waits up to `timeout` (nullopt: forever; zero: never blocks) for at
  // least one completion or a Wake(), and dispatches every completion available. Returns the
  // number dispatched, or a negative errno for a failure of the poller itself (EINTR is handled
  // inside: a signal ends the wait early, and what is available is dispatched and counted).
  // It may also return 0 before `timeout` with nothing done: a sleep ends at the receive pool's
  // next idle decay (every 250 ms, only while it has pages to give back) and, on epoll, when a
  // reused registration is due for verification. Callers loop until what they wait for.
  virtual int Wait(std::optional<std::chrono::nanoseconds> timeout) = 0;

  // Makes a concurrent or the next Wait() return promptly. Any thread; async-signal-safe.
  virtual void Wake() noexcept = 0;

  // Operations submitted and not yet finally completed (for tests and metrics).
  virtual size_t InFlight() const noexcept = 0;

  // --- Registered descriptors ---------------------------------------------------------------
  // Lets the backend make every later operation on `fd` cheaper while it stays open (io_uring:
  // a registered file, so an operation takes no file reference of its own: no fget/fput per
  // send). One syscall; call once per descriptor (e.g. per accepted connection), not per
  // operation. Returns whether it registered; false (epoll, the table is full or the kernel
  // refused) changes nothing and operations work as before. A registered fd must be closed with
  // Close(), which unregisters it in order with the close, or UnregisterFile()d before a
  // close(2): the registration holds the open file, so a bare close(2) would leave the socket
  // open. Polling thread only.
  virtual bool RegisterFile(int fd) noexcept {
    (void)fd;
    return false;
  }
  // Undoes RegisterFile(fd) now (one syscall; a no-op when fd is not registered). Operations
  // already in flight on it keep working. Polling thread only.
  virtual void UnregisterFile(int fd) noexcept { (void)fd; }

  // --- Multishot receive into pool buffers ---------------------------------------------------
  // RecvBufferSelect that may stay armed: each arrival completes with kCompletionMore and its
  // bytes in a pool buffer (result > 0, kCompletionBuffer; the receiver owns the buffer until
  // ReturnBuffer), with nothing resubmitted per message, until one final completion (without
  // kCompletionMore): 0 at end of stream, -errno, -ENOBUFS when the pool ran dry (re-arm after
  // returning buffers, or Recv into own memory), -ECANCELED after Cancel or Close, or an end the
  // poller chose (e.g. io_uring's CQ overflowed); a final completion may carry bytes like any
  // other. So completions come whenever bytes arrive, not only while the caller wants them; a
  // caller that stops wanting them cancels. `c` serves only this operation until its final
  // completion. The default (pollers that cannot keep a receive armed, e.g. epoll) is
  // RecvBufferSelect: one arrival, final.
  virtual void RecvBufferSelectMultishot(int fd, int flags, IoCompletion* c) {
    RecvBufferSelect(fd, flags, c);
  }

 protected:
  Poller() = default;
};

}  // namespace kev

#endif  // KEV_KEVENT_POLLER_H_
