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
// consumed. The output state and its buffers are freed when everything is sent (Output).
//
// The pooled receive is a multishot one where the poller keeps it armed (io_uring): armed at
// the first read that waits, it delivers every arrival without a resubmission, also between
// reads; bytes that arrive while earlier ones are still buffered are appended (copied) and the
// pool buffer goes back at once. When bytes pile up with no read waiting (input_buffer_size or
// more), the receive is cancelled (PauseIfBehind) and the next read that needs bytes re-arms
// it; so a reader that falls behind holds what had already arrived when the pause took effect
// (at most about the socket's receive queue), then nothing more.
// So a keep-alive connection between requests holds no buffer beyond this object, and the
// pending read's future state is embedded in it too (ReadState).
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

// One IoCompletion base per kind of operation, so that the state is itself the completion
// record of its recv, send and close (one vptr each, no owner pointer, stable address: the
// state never moves). `Kind` only makes the three bases distinct types.
template <class Owner, class Kind>
class CompletionOf : public IoCompletion {
 public:
  void OnComplete(int32_t result, uint32_t flags) noexcept final {
    static_cast<Owner*>(this)->OnCompletion(Kind{}, result, flags);
  }

 protected:
  ~CompletionOf() = default;
};
struct RecvKind {};
struct SendKind {};
struct CloseKind {};

class ConnectionState;

// The shared state of a pending read's future, embedded in the ConnectionState so that a read
// that must wait allocates nothing (and an idle connection holds no separate heap state). A
// FutureState cannot be reset, so it is built in place for each read and destroyed when its
// last reference goes; while it lives it holds a reference to the connection (the future may
// outlive the Connection handle). When the embedded one is still held by an unconsumed future
// (a resolved read whose future the caller keeps), the next read's state is a heap one.
class ReadState final : public kev::internal::FutureState<std::span<const std::byte>> {
 public:
  // `owner` null: a heap state, deleted when released.
  explicit ReadState(ConnectionState* owner) noexcept : FutureState(/*refs=*/2), owner_(owner) {}

 private:
  ~ReadState() override = default;
  void Destroy() noexcept override;

  ConnectionState* owner_;
};

class ConnectionState final : public CompletionOf<ConnectionState, RecvKind>,
                              public CompletionOf<ConnectionState, SendKind>,
                              public CompletionOf<ConnectionState, CloseKind> {
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
    return in_cap_ + (out_ == nullptr ? 0 : out_->sending.capacity() + out_->pending.capacity());
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
  std::unique_ptr<ConnectionExtension>& extension_slot() noexcept { return rare().extension_slot; }

  // The completions (CompletionOf), one per kind of operation.
  void OnCompletion(RecvKind, int32_t result, uint32_t flags) noexcept;
  void OnCompletion(SendKind, int32_t result, uint32_t flags) noexcept;
  void OnCompletion(CloseKind, int32_t result, uint32_t flags) noexcept;
  // For ReadState::Destroy: the embedded read state has been destroyed; drops its reference.
  void ReadStorageFreed() noexcept {
    read_storage_live_ = false;
    Release();
  }

 private:
  ~ConnectionState();

  enum class ReadKind : uint8_t { kNone, kSome, kExactly, kUntil };

  // The outgoing connect's completion record, out of line (see connecting_).
  struct Connecting final : IoCompletion {
    void OnComplete(int32_t result, uint32_t flags) noexcept override;
    ConnectionState* owner = nullptr;
    SocketAddress address;
    Promise<Connection> promise;
  };
  // What few connections use, out of line: a file transfer's state, and a ReadUntil delimiter
  // too long for delimiter_. Allocated on first use, freed with the state.
  struct Rare {
    ConnectionExtension* extension = nullptr;  // running exclusive output, if any
    std::unique_ptr<ConnectionExtension> extension_slot;
    std::string long_delimiter;
  };
  Rare& rare() {
    if (rare_ == nullptr) rare_ = std::make_unique<Rare>();  // once per connection, if ever
    return *rare_;
  }

  void OnConnect(int32_t result) noexcept;

  Future<std::span<const std::byte>> StartRead(ReadKind kind);
  // Resolves the pending read if it can be, otherwise submits the next recv.
  void AdvanceRead() noexcept;
  // Submits a recv, first making sure the buffer can hold `need` bytes from in_begin_ (growing
  // it to at least `grow_to` when it must grow). With nothing buffered and a pool, the recv is
  // a multishot one that stays armed across reads (OnCompletion, PauseIfBehind).
  void StartRecv(size_t need, size_t grow_to) noexcept;
  // Makes the input a buffer of our own that holds `need` bytes from in_begin_ (growing it to at
  // least `grow_to` when it must grow): moves bytes out of a pool buffer, grows, or compacts.
  void MakeOwnRoom(size_t need, size_t grow_to);
  // Takes the `n` bytes of pool buffer `id` as input: the buffer itself when nothing is
  // buffered (no copy), else appended to what is (and the pool buffer given back).
  void TakePoolBytes(uint16_t id, size_t n);
  // An armed multishot recv delivers whenever bytes arrive: when they pile up with no read
  // waiting (input_buffer_size_ or more), cancel it; the next read that needs bytes re-arms.
  void PauseIfBehind() noexcept;
  void FailRead(std::exception_ptr error) noexcept;
  void FinishRead(std::span<const std::byte> result) noexcept;
  // Replaces the own input buffer (if any) with `buffer` of `capacity` bytes (or none).
  void SetOwnBuffer(std::byte* buffer, size_t capacity) noexcept;
  // With nothing buffered: frees the own input buffer / gives the pool buffer back.
  void ReleaseInput() noexcept;
  // The output state, made on first use.
  struct Output;
  Output& out();
  // Frees the output state once nothing needs it: all sent, nothing in flight or waiting, no
  // transfer holding the stream.
  void MaybeFreeOutput() noexcept;
  std::string_view delimiter() const noexcept {
    return delimiter_len_ <= kInlineDelimiter ? std::string_view(delimiter_, delimiter_len_)
                                              : std::string_view(rare_->long_delimiter);
  }

  void MaybeStartSend() noexcept;
  // With nothing in flight, sends the pending bytes with one non-blocking send(2) right now.
  void SendPendingInline() noexcept;
  void ResolveWaiters() noexcept;
  void FailWaiters(std::exception_ptr error) noexcept;
  Future<void> WaitSent(uint64_t target);

  // ReadUntil delimiters up to this long are kept inline ("\r\n\r\n" is 4).
  static constexpr size_t kInlineDelimiter = 8;

  // Fields are ordered by size so that the state packs without holes: it is most of what an
  // idle connection costs (net/connection_memory_test.cc bounds its size).
  Poller* poller_;
  // Input: bytes [in_begin_, in_end_) of in_data_ (capacity in_cap_) are buffered. in_data_ is
  // the connection's own buffer (owned, new[]'d) when pool_buf_ < 0, else the poller's pool
  // buffer pool_buf_; or null.
  std::byte* in_data_ = nullptr;
  size_t in_cap_ = 0;
  size_t in_begin_ = 0;
  size_t in_end_ = 0;
  size_t read_n_ = 0;     // kExactly: bytes wanted; kUntil: max
  size_t scan_from_ = 0;  // kUntil: offset (from in_begin_) where the search resumes
  // The pending read's state (one reference), or null. Usually read_storage_.
  ReadState* read_state_ = nullptr;

  // Output, out of line: only a connection with bytes unsent, a flush waiting or a transfer
  // holding the stream has one, so an idle connection holds neither this nor output buffers.
  // A freed one goes to a small per-thread cache (OutputCache) with its buffers' capacity, so a
  // burst usually costs no malloc/free at all.
  struct Output {
    // sending[send_offset..] is being sent; pending collects later writes.
    std::vector<std::byte> sending;
    std::vector<std::byte> pending;
    size_t send_offset = 0;
    // Stream positions since this Output was made: written appended, sent accepted by the
    // kernel.
    uint64_t written = 0;
    uint64_t sent = 0;
    uint64_t barrier = UINT64_MAX;  // exclusive output: bytes at or past this are held
    struct Waiter {
      uint64_t target;  // resolves when sent >= target
      Promise<void> promise;
    };
    // Targets non-decreasing; [waiters_head, size) wait. A vector, not a deque: an empty
    // std::deque still allocates ~600 bytes.
    std::vector<Waiter> waiters;
    size_t waiters_head = 0;

    // Ready for the next burst of any connection (MaybeFreeOutput's cache): fully sent, so
    // only counters and offsets hold anything. Buffers of at most `keep_bytes` capacity stay.
    void Recycle(size_t keep_bytes) noexcept;
  };
  std::unique_ptr<Output> out_;
  // Freed output states kept for reuse (see out() and MaybeFreeOutput()): at most this many per
  // thread, each keeping buffers of at most kOutputCacheBytes capacity.
  static constexpr size_t kOutputCacheEntries = 256;
  static constexpr size_t kOutputCacheBytes = 1024;
  static std::vector<std::unique_ptr<Output>>& OutputCache() noexcept;
  Promise<void> close_promise_;  // Close(want_future=true) waits on it; see close_wanted_
  // Only outgoing connections connect: kept out of line so an accepted connection (the many,
  // on a server) does not carry ~170 bytes it never uses. Freed when the connect completes.
  std::unique_ptr<Connecting> connecting_;
  std::unique_ptr<Rare> rare_;

  // SocketOptions::input_buffer_size and output_high_water, clamped to 4 GiB - 1 (32 bits:
  // 8 bytes less on every connection).
  uint32_t input_buffer_size_;
  uint32_t output_high_water_;
  uint32_t refs_ = 1;
  int fd_;
  int32_t pool_buf_ = -1;  // the poller's buffer id held as input, or -1
  int input_error_ = 0;
  int output_error_ = 0;
  ReadKind read_kind_ = ReadKind::kNone;
  uint8_t delimiter_len_ = 0;     // kUntil; > kInlineDelimiter: in rare_->long_delimiter
  char delimiter_[kInlineDelimiter];
  bool closed_ = false;
  bool use_pool_ = false;         // the poller has RecvBufferSelect
  bool recv_pooled_ = false;      // the recv in flight is a RecvBufferSelect(Multishot)
  bool recv_paused_ = false;      // we cancelled the armed multishot recv: its end is no error
  bool pool_empty_ = false;       // the last RecvBufferSelect found the pool empty: use Recv once
  bool eof_ = false;
  bool recv_in_flight_ = false;
  bool send_in_flight_ = false;
  bool close_wanted_ = false;     // close_promise_'s future was taken
  bool read_storage_live_ = false;  // a ReadState lives in read_storage_

  alignas(ReadState) std::byte read_storage_[sizeof(ReadState)];
};

// std::system_error(error, std::system_category()) as an exception_ptr.
std::exception_ptr SystemError(int error, const char* what = "kev::net") noexcept;

}  // namespace kev::net::internal

#endif  // KEV_NET_INTERNAL_CONNECTION_STATE_H_
