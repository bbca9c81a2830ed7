// net/connection.h: a connected stream socket (TCP or Unix) with buffered input and output.
//
// A Connection owns its socket. Input lands in a buffer of the shard's receive pool (the
// poller picks it when bytes arrive, so a waiting connection holds none); the read calls hand
// out spans into it (no copy). Bytes a read must keep across arrivals (a request split across
// segments) move into a buffer of the connection's own, freed once consumed
// (net/internal/connection_state.h has the details). Output is appended to a per-connection
// buffer and sent with one send in flight at a time (io_uring may reorder concurrent sends on
// one socket), so bytes leave in the order they were written; Flush() waits until they are all
// with the kernel.
//
//   kev::Future<void> Echo(kev::net::Connection conn) {            // take it by value
//     while (true) {
//       std::span<const std::byte> data = co_await conn.ReadSome();
//       if (data.empty()) break;                                   // the peer closed
//       co_await conn.Write(data);                                 // copied; ready at once
//       conn.Consume(data.size());
//       co_await conn.Flush();
//     }
//     co_await conn.Close();
//   }
//
//   kev::net::Connection c = co_await
//   kev::net::Connect(*kev::net::SocketAddress::Parse("127.0.0.1:80")); std::span<const std::byte>
//   line = co_await c.ReadUntil("\r\n", 8192);   // includes "\r\n"
//
// Errors: OS errors fail the futures with std::system_error(errno, std::system_category());
// ECONNRESET / EPIPE when the peer is gone (SIGPIPE is ignored process-wide by net/, once, if
// its disposition was the default), ECANCELED for operations cut short by Close() or by the
// Connection being destroyed. After an output error, every later Write/Flush fails with it.
//
// Cost: a read satisfied by buffered bytes, and a Write below the high-water mark, return ready
// futures (no allocation). A read that must wait allocates nothing (its future's state is part
// of the connection) and, on io_uring, usually submits nothing: the pooled receive is multishot
// and stays armed across reads. A flush that must wait costs one send (an SQE on io_uring, a
// syscall under epoll) and the one allocation of a pending future.
//
// Threading: a Connection and its futures belong to the shard (reactor thread) that created or
// accepted it. All calls must be made there, inside a running reactor.
#ifndef KEV_NET_CONNECTION_H_
#define KEV_NET_CONNECTION_H_

#include <cstddef>
#include <span>
#include <string_view>

#include "net/socket_address.h"
#include "reactor/errors.h"
#include "reactor/future.h"

namespace kev::net {

namespace internal {
class ConnectionState;
}  // namespace internal

// Socket options applied to new connections (accepted or connected).
struct SocketOptions {
  // TCP_NODELAY: on by default; kev batches writes itself, Nagle would only add latency.
  bool tcp_nodelay = true;
  // SO_KEEPALIVE.
  bool keep_alive = false;
  // SO_SNDBUF / SO_RCVBUF in bytes; 0 leaves the kernel's default (and its autotuning).
  int send_buffer_size = 0;
  int receive_buffer_size = 0;
  // Size of the connection's own input buffer, used when a read needs more bytes than one
  // receive brought (and when the shard's receive pool is empty); ReadExactly / ReadUntil grow
  // it up to what they need. A connection waiting with nothing buffered holds no input buffer:
  // its data lands in the shard's pool (PollerOptions::recv_buffer_size). At most 4 GiB - 1
  // (larger values are clamped).
  size_t input_buffer_size = 16 * 1024;
  // Write() returns a pending future (backpressure) while more than this many bytes are
  // buffered and unsent; it resolves once the backlog drops below it. At most 4 GiB - 1
  // (larger values are clamped).
  size_t output_high_water = 256 * 1024;
};

// The peer closed the stream before ReadExactly/ReadUntil could be satisfied.
class EndOfStream : public kev::Error {
 public:
  const char* what() const noexcept override {
    return "kev::net::EndOfStream: the peer closed the stream before the read was satisfied";
  }
};

// ReadUntil found no delimiter within its `max` bytes.
class DelimiterNotFound : public kev::Error {
 public:
  const char* what() const noexcept override {
    return "kev::net::DelimiterNotFound: no delimiter within the allowed length";
  }
};

class Connection {
 public:
  // An invalid connection (valid() false). Every I/O call on it fails with EBADF.
  Connection() noexcept = default;
  // Adopts a connected stream socket `fd` (made non-blocking and CLOEXEC here) and applies
  // `options` (TCP options only if it is a TCP socket). Throws std::system_error if fcntl fails.
  static Connection Adopt(int fd, const SocketOptions& options = {});

  // Move-only; moving leaves `other` invalid. Pending futures stay attached to the connection's
  // shared state, not to the handle, so moving a Connection with operations in flight is fine.
  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  // Same as Close() with nobody waiting: in-flight operations fail with ECANCELED, the socket is
  // closed, buffered unsent output is dropped (call Flush() first to keep it). The internal
  // state is freed after the last operation's final completion.
  ~Connection();

  bool valid() const noexcept { return state_ != nullptr; }
  // The socket, or -1. Do not close it yourself; use it for getsockopt-style queries.
  int fd() const noexcept;

  // --- Input -----------------------------------------------------------------------------
  // At most one read (ReadSome / ReadExactly / ReadUntil) may be pending at a time (checked).
  // The returned span points into the input buffer and stays valid until the next read call,
  // Consume(), or the Connection's destruction. Reads do not consume: call Consume(n).

  // The bytes buffered now (possibly empty); never waits.
  std::span<const std::byte> buffered() const noexcept;
  // Bytes of buffer memory the connection holds right now: input (its own buffer, or a shard
  // pool buffer it is reading from) plus output capacity. 0 for a connection whose input is
  // consumed and whose output is all sent. For metrics and tests.
  size_t buffer_bytes() const noexcept;
  // Everything buffered, at least one byte, waiting for the socket if nothing is. An empty
  // span means end of stream (the peer shut down its output) with nothing buffered.
  Future<std::span<const std::byte>> ReadSome();
  // Exactly the first `n` buffered bytes, waiting as needed. Fails with EndOfStream if the
  // stream ends first.
  Future<std::span<const std::byte>> ReadExactly(size_t n);
  // The buffered bytes up to and including the first `delimiter` (non-empty), waiting as
  // needed. Fails with DelimiterNotFound if `max` bytes are buffered without one, EndOfStream
  // if the stream ends first.
  Future<std::span<const std::byte>> ReadUntil(std::string_view delimiter, size_t max);
  // Drops the first `n` buffered bytes (n <= buffered().size(), checked).
  void Consume(size_t n) noexcept;

  // --- Output ----------------------------------------------------------------------------
  // Appends `data` to the output buffer (copied; the caller's buffer is free on return) and
  // starts sending if no send is in flight. Ready at once unless more than
  // SocketOptions::output_high_water bytes are unsent, then resolves when the backlog drops
  // below it. Fails with the connection's output error, if any.
  Future<void> Write(std::span<const std::byte> data);
  Future<void> Write(std::string_view data) {
    return Write(std::as_bytes(std::span<const char>(data.data(), data.size())));
  }
  // Resolves when every byte written before this call has been accepted by the kernel.
  Future<void> Flush();

  // shutdown(SHUT_WR) after everything written so far is sent: the peer reads end of stream.
  Future<void> ShutdownOutput();
  // shutdown(SHUT_RD): later reads see end of stream.
  void ShutdownInput();

  // Cancels in-flight operations (their futures fail with ECANCELED), drops unsent output and
  // closes the socket. Resolves when the socket is closed. Idempotent; the Connection stays
  // valid() (fd() -1) until destroyed, and further I/O fails with ECANCELED.
  Future<void> Close();

  // --- Options and addresses (throw std::system_error on failure) ------------------------
  void SetNoDelay(bool on);
  void SetKeepAlive(bool on);
  void SetSendBufferSize(int bytes);
  void SetReceiveBufferSize(int bytes);
  SocketAddress local_address() const;
  SocketAddress peer_address() const;

  // For kev's own machinery (net/, aio::SendFile): the shared state, and a handle adopting
  // one reference to a state. Not for users.
  internal::ConnectionState* state_for_internal_use() const noexcept { return state_; }
  static Connection AdoptStateForInternalUse(internal::ConnectionState* state) noexcept {
    return Connection(state);
  }

 private:
  explicit Connection(internal::ConnectionState* state) noexcept : state_(state) {}

  internal::ConnectionState* state_ = nullptr;  // One reference, owned by this handle.
};

// Connects a new non-blocking stream socket to `address` (TCP or Unix). Fails with
// std::system_error (ECONNREFUSED, ENOENT, ...). Runs on the calling shard.
Future<Connection> Connect(SocketAddress address, SocketOptions options = {});

}  // namespace kev::net

#endif  // KEV_NET_CONNECTION_H_
