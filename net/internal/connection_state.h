// net/internal/connection_state.h: the heap state behind a net::Connection.
//
// Why a separate, reference-counted object: the kernel (io_uring) writes into the input buffer
// and reads the output buffer until each operation's final completion, which may come after the
// Connection handle is gone. So the buffers and the IoCompletion records live here, and every
// operation in flight holds a reference; the state is freed when the handle and the last
// operation have let go. The IoCompletion records are members, reused for the connection's whole
// life.
//
// Memory of an idle connection: when the poller has buffer selection (both real backends), a
// read that must wait with nothing buffered uses Poller::RecvBufferSelect, so the data lands in
// a buffer of the shard's pool and the connection holds none while it waits. The connection
// keeps that pool buffer as its input (no copy) until the bytes are consumed, then gives it
// back; only when a read needs more bytes than it has (a request split across segments) are
// the buffered bytes copied into a buffer of the connection's own, which is freed again once
// consumed. Output buffers are freed when everything is sent (kIdleOutputCapacity).
// So a keep-alive connection between requests holds no buffer beyond this object.
//
// aio::SendFile uses the "exclusive output" hooks at the bottom to put a file transfer in the
// byte stream after what was written before it. Not part of the public API.
#ifndef KEV_NET_INTERNAL_CONNECTION_STATE_H_
#define KEV_NET_INTERNAL_CONNECTION_STATE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kevent/poller.h"
#include "net/connection.h"
#include "net/socket_address.h"
#include "reactor/future.h"

namespace kev::net::internal {

// Something running on the connection's socket outside this class (a SendFile transfer) that
// Close() must stop before the descriptor is closed and its number reused.
class ConnectionExtension {
 public:
  // Stops the operation: it must submit nothing more on the socket, cancel what it has in
  // flight, and fail its future with ECANCELED.
  virtual void Abort() noexcept = 0;
  virtual ~ConnectionExtension() = default;
};

class ConnectionState {
 public:
  ConnectionState(Poller& poller, int fd, const SocketOptions& options) noexcept;
  ConnectionState(const ConnectionState&) = delete;
  ConnectionState& operator=(const ConnectionState&) = delete;

  void AddRef() noexcept { ++refs_; }
  void Release() noexcept {
    if (--refs_ == 0) delete this;
  }

  int fd() const noexcept { return fd_; }
  Poller& poller() const noexcept { return *poller_; }
  bool closed() const noexcept { return closed_; }

  // Connection's API (see net/connection.h for the contracts).
  std::span<const std::byte> buffered() const noexcept {
    return {in_data_ + in_begin_, in_end_ - in_begin_};
  }
  size_t buffer_bytes() const noexcept {
    return in_cap_ + out_sending_.capacity() + out_pending_.capacity();
  }
  Future<std::span<const std::byte>> ReadSome();
  Future<std::span<const std::byte>> ReadExactly(size_t n);
  Future<std::span<const std::byte>> ReadUntil(std::string_view delimiter, size_t max);
  void Consume(size_t n) noexcept;
  Future<void> Write(std::span<const std::byte> data);
  Future<void> Flush();
  Future<void> Close(bool want_future);

  // Connect(): starts a connect on this (fresh) state; resolves with a Connection holding it.
  Future<Connection> StartConnect(const SocketAddress& address);

  // --- Exclusive output (aio::SendFile) ---------------------------------------------------
  // Holds back bytes written from now on and resolves when everything written before is sent.
  // Fails with the output error, or ECANCELED if the connection closes. Only one at a time.
  Future<void> BeginExclusiveOutput(ConnectionExtension* extension);
  // Releases the held bytes. `error` (an errno, or 0) becomes the sticky output error.
  void EndExclusiveOutput(int error) noexcept;
  // Reusable storage for the extension (the SendFile engine), owned by and freed with the state.
  std::unique_ptr<ConnectionExtension>& extension_slot() noexcept { return extension_slot_; }

 private:
  ~ConnectionState();

  enum class ReadKind : uint8_t { kNone, kSome, kExactly, kUntil };

  // One IoCompletion per kind of operation, forwarding to the state. Embedded: their address
  // is stable because the state never moves.
  template <void (ConnectionState::*kHandler)(int32_t, uint32_t)>
  struct Op final : IoCompletion {
    void OnComplete(int32_t result, uint32_t flags) noexcept override {
      (owner->*kHandler)(result, flags);
    }
    ConnectionState* owner = nullptr;
  };

  void OnRecv(int32_t result, uint32_t flags) noexcept;
  void OnSend(int32_t result, uint32_t flags) noexcept;
  void OnClose(int32_t result, uint32_t flags) noexcept;
  void OnConnect(int32_t result, uint32_t flags) noexcept;

  Future<std::span<const std::byte>> StartRead(ReadKind kind);
  // Resolves the pending read if it can be, otherwise submits the next recv.
  void AdvanceRead() noexcept;
  // Submits a recv, first making sure the buffer can hold `need` bytes from in_begin_ (growing
  // it to at least `grow_to` when it must grow).
  void StartRecv(size_t need, size_t grow_to) noexcept;
  void FailRead(std::exception_ptr error) noexcept;
  void FinishRead(std::span<const std::byte> result) noexcept;
  // With nothing buffered: frees the own input buffer / gives the pool buffer back.
  void ReleaseInput() noexcept;
  // Frees output buffers larger than kIdleOutputCapacity; called when everything is sent.
  void TrimOutput() noexcept;

  void MaybeStartSend() noexcept;
  // With nothing in flight, sends the pending bytes with one non-blocking send(2) right now.
  void SendPendingInline() noexcept;
  void ResolveWaiters() noexcept;
  void FailWaiters(std::exception_ptr error) noexcept;
  Future<void> WaitSent(uint64_t target);

  uint32_t refs_ = 1;
  Poller* poller_;
  int fd_;
  bool closed_ = false;
  SocketOptions options_;

  // Output capacity kept by a connection whose output is all sent: none, so an idle connection
  // holds no output buffer. The price is one malloc/free per burst of writes (tcache-sized for
  // small responses: tens of ns against the microseconds of the send).
  static constexpr size_t kIdleOutputCapacity = 0;

  // Input: bytes [in_begin_, in_end_) of in_data_ (capacity in_cap_) are buffered. in_data_ is
  // in_buf_ (the connection's own), or the pool buffer pool_buf_ of the poller, or null.
  std::byte* in_data_ = nullptr;
  std::unique_ptr<std::byte[]> in_buf_;
  int32_t pool_buf_ = -1;     // the poller's buffer id held as input, or -1
  bool use_pool_ = false;     // the poller has RecvBufferSelect
  bool recv_pooled_ = false;  // the recv in flight is a RecvBufferSelect
  bool pool_empty_ = false;   // the last RecvBufferSelect found the pool empty: use Recv once
  size_t in_cap_ = 0;
  size_t in_begin_ = 0;
  size_t in_end_ = 0;
  bool eof_ = false;
  int input_error_ = 0;
  bool recv_in_flight_ = false;
  ReadKind read_kind_ = ReadKind::kNone;
  size_t read_n_ = 0;      // kExactly: bytes wanted; kUntil: max
  size_t scan_from_ = 0;   // kUntil: offset (from in_begin_) where the search resumes
  std::string delimiter_;  // kUntil; capacity reused
  Promise<std::span<const std::byte>> read_promise_;
  Op<&ConnectionState::OnRecv> recv_op_;

  // Output: out_sending_[send_offset_..] is being sent; out_pending_ collects later writes.
  // Byte counters are stream positions: written_ appended so far, sent_ accepted by the kernel.
  std::vector<std::byte> out_sending_;
  std::vector<std::byte> out_pending_;
  size_t send_offset_ = 0;
  uint64_t written_ = 0;
  uint64_t sent_ = 0;
  uint64_t barrier_ = UINT64_MAX;  // exclusive output: bytes at or past this are held
  bool send_in_flight_ = false;
  int output_error_ = 0;
  struct Waiter {
    uint64_t target;  // resolves when sent_ >= target
    Promise<void> promise;
  };
  // Targets non-decreasing; [waiters_head_, size) wait. A vector, not a deque: an empty
  // std::deque still allocates ~600 bytes, which an idle connection should not hold.
  std::vector<Waiter> waiters_;
  size_t waiters_head_ = 0;
  Op<&ConnectionState::OnSend> send_op_;

  ConnectionExtension* extension_ = nullptr;  // running exclusive output, if any
  std::unique_ptr<ConnectionExtension> extension_slot_;

  Op<&ConnectionState::OnClose> close_op_;
  std::optional<Promise<void>> close_promise_;

  // Only outgoing connections connect: kept out of line so an accepted connection (the many,
  // on a server) does not carry ~170 bytes it never uses. Freed when the connect completes.
  struct Connecting {
    Op<&ConnectionState::OnConnect> op;
    SocketAddress address;
    Promise<Connection> promise;
  };
  std::unique_ptr<Connecting> connecting_;
};

// std::system_error(error, std::system_category()) as an exception_ptr.
std::exception_ptr SystemError(int error, const char* what = "kev::net") noexcept;

}  // namespace kev::net::internal

#endif  // KEV_NET_INTERNAL_CONNECTION_STATE_H_
