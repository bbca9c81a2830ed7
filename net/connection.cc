#include "net/connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "net/internal/connection_state.h"
#include "net/internal/shard.h"
#include "net/internal/socket_util.h"

namespace kev::net {

using internal::ConnectionState;
using internal::SystemError;

namespace {
template <class T>
Future<T> Invalid() {
  return MakeExceptionFuture<T>(SystemError(EBADF, "kev::net::Connection: invalid connection"));
}
}  // namespace

Connection Connection::Adopt(int fd, const SocketOptions& options) {
  internal::MakeNonBlocking(fd);
  internal::ApplySocketOptions(fd, internal::SocketFamily(fd), options);
  internal::IgnoreSigpipeOnce();
  return Connection(new ConnectionState(internal::CurrentPoller(), fd, options));
}

Connection::Connection(Connection&& other) noexcept
    : state_(std::exchange(other.state_, nullptr)) {}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    Connection old(std::move(*this));
    state_ = std::exchange(other.state_, nullptr);
  }
  return *this;
}

Connection::~Connection() {
  if (state_ == nullptr) return;
  (void)state_->Close(/*want_future=*/false);
  state_->Release();
}

int Connection::fd() const noexcept { return state_ == nullptr ? -1 : state_->fd(); }

std::span<const std::byte> Connection::buffered() const noexcept {
  return state_ == nullptr ? std::span<const std::byte>() : state_->buffered();
}

size_t Connection::buffer_bytes() const noexcept {
  return state_ == nullptr ? 0 : state_->buffer_bytes();
}

Future<std::span<const std::byte>> Connection::ReadSome() {
  if (state_ == nullptr) return Invalid<std::span<const std::byte>>();
  return state_->ReadSome();
}

Future<std::span<const std::byte>> Connection::ReadExactly(size_t n) {
  if (state_ == nullptr) return Invalid<std::span<const std::byte>>();
  return state_->ReadExactly(n);
}

Future<std::span<const std::byte>> Connection::ReadUntil(std::string_view delimiter, size_t max) {
  if (state_ == nullptr) return Invalid<std::span<const std::byte>>();
  return state_->ReadUntil(delimiter, max);
}

void Connection::Consume(size_t n) noexcept {
  if (state_ != nullptr) state_->Consume(n);
}

Future<void> Connection::Write(std::span<const std::byte> data) {
  if (state_ == nullptr) return Invalid<void>();
  return state_->Write(data);
}

Future<void> Connection::Flush() {
  if (state_ == nullptr) return Invalid<void>();
  return state_->Flush();
}

Future<void> Connection::ShutdownOutput() {
  if (state_ == nullptr) return Invalid<void>();
  state_->AddRef();  // Released by the continuation: the handle may be gone by then.
  ConnectionState* state = state_;
  return state_->Flush().ThenWrapped([state](Future<void> flushed) {
    struct Unref {
      ConnectionState* s;
      ~Unref() { s->Release(); }
    } unref{state};
    flushed.Get();  // Rethrows a flush failure.
    if (state->closed()) throw std::system_error(ECANCELED, std::system_category());
    if (::shutdown(state->fd(), SHUT_WR) != 0) internal::ThrowErrno("shutdown(SHUT_WR)");
  });
}

void Connection::ShutdownInput() {
  if (state_ == nullptr || state_->closed()) return;
  // A recv in flight then completes with 0 (end of stream), as the contract says.
  ::shutdown(state_->fd(), SHUT_RD);
}

Future<void> Connection::Close() {
  if (state_ == nullptr) return MakeReadyFuture();
  return state_->Close(/*want_future=*/true);
}

namespace {
int OpenFd(const Connection& c) {
  if (!c.valid() || c.fd() < 0) internal::ThrowError(EBADF, "kev::net::Connection");
  return c.fd();
}
}  // namespace

void Connection::SetNoDelay(bool on) {
  internal::SetIntOption(OpenFd(*this), IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "TCP_NODELAY");
}
void Connection::SetKeepAlive(bool on) {
  internal::SetIntOption(OpenFd(*this), SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0, "SO_KEEPALIVE");
}
void Connection::SetSendBufferSize(int bytes) {
  internal::SetIntOption(OpenFd(*this), SOL_SOCKET, SO_SNDBUF, bytes, "SO_SNDBUF");
}
void Connection::SetReceiveBufferSize(int bytes) {
  internal::SetIntOption(OpenFd(*this), SOL_SOCKET, SO_RCVBUF, bytes, "SO_RCVBUF");
}
SocketAddress Connection::local_address() const { return internal::LocalAddress(OpenFd(*this)); }
SocketAddress Connection::peer_address() const { return internal::PeerAddress(OpenFd(*this)); }

Future<Connection> Connect(SocketAddress address, SocketOptions options) {
  if (address.family() == AF_UNSPEC) {
    return MakeExceptionFuture<Connection>(SystemError(EINVAL, "kev::net::Connect"));
  }
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return MakeExceptionFuture<Connection>(SystemError(errno, "kev::net::Connect"));
  try {
    // Before connecting, so the options also govern the handshake (buffer sizes, window).
    internal::ApplySocketOptions(fd, address.family(), options);
  } catch (...) {
    ::close(fd);
    return MakeExceptionFuture<Connection>(std::current_exception());
  }
  internal::IgnoreSigpipeOnce();
  auto* state = new ConnectionState(internal::CurrentPoller(), fd, options);
  Future<Connection> future = state->StartConnect(address);
  state->Release();  // The connect operation holds the state now.
  return future;
}

}  // namespace kev::net
