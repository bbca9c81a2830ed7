#include "net/udp.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "kevent/poller.h"
#include "net/internal/connection_state.h"
#include "net/internal/shard.h"
#include "net/internal/socket_util.h"
#include "reactor/internal/check.h"

namespace kev::net {
namespace internal {

// The heap state behind a UdpSocket: reference-counted, every operation in flight holds a
// reference (the kernel writes into the receive buffer and reads the send records until each
// operation's final completion).
class UdpState {
 public:
  UdpState(Poller& poller, int fd, size_t max_datagram)
      : poller_(&poller), fd_(fd), buffer_(max_datagram) {
    recv_op_.owner = this;
    close_op_.owner = this;
  }
  UdpState(const UdpState&) = delete;
  UdpState& operator=(const UdpState&) = delete;

  void AddRef() noexcept { ++refs_; }
  void Release() noexcept {
    if (--refs_ == 0) delete this;
  }
  int fd() const noexcept { return fd_; }

  Future<Datagram> Receive() {
    KEV_CHECK_MSG(!receiving_, "kev::net::UdpSocket: two Receive() calls at once");
    if (closed_) return MakeExceptionFuture<Datagram>(SystemError(ECANCELED));
    receiving_ = true;
    receive_promise_ = {};  // A moved-from Promise still counts its future as taken.
    Future<Datagram> future = receive_promise_.GetFuture();
    recv_iov_ = {buffer_.data(), buffer_.size()};
    recv_msg_ = {};
    recv_msg_.msg_name = &recv_from_;
    recv_msg_.msg_namelen = sizeof(recv_from_);
    recv_msg_.msg_iov = &recv_iov_;
    recv_msg_.msg_iovlen = 1;
    AddRef();
    poller_->RecvMsg(fd_, &recv_msg_, 0, &recv_op_);
    return future;
  }

  Future<void> SendTo(const SocketAddress& to, std::span<const std::byte> data) {
    if (closed_) return MakeExceptionFuture<void>(SystemError(ECANCELED));
    // Send records are pooled: one per datagram in flight, reused afterwards.
    std::unique_ptr<SendOp> op;
    if (free_sends_.empty()) {
      op = std::make_unique<SendOp>();
    } else {
      op = std::move(free_sends_.back());
      free_sends_.pop_back();
    }
    op->owner = this;
    op->to = to;
    op->iov = {const_cast<std::byte*>(data.data()), data.size()};
    op->msg = {};
    op->msg.msg_name = const_cast<sockaddr*>(op->to.sockaddr_ptr());
    op->msg.msg_namelen = op->to.length();
    op->msg.msg_iov = &op->iov;
    op->msg.msg_iovlen = 1;
    op->promise = Promise<void>();
    Future<void> future = op->promise.GetFuture();
    AddRef();
    SendOp* raw = op.release();  // Owned by the operation until OnSend returns it to the pool.
    poller_->SendMsg(fd_, &raw->msg, MSG_NOSIGNAL, raw);
    return future;
  }

  Future<void> Close(bool want_future) {
    if (closed_) return MakeReadyFuture();
    closed_ = true;
    Future<void> future = MakeReadyFuture();
    if (want_future) {
      close_promise_.emplace();
      future = close_promise_->GetFuture();
    }
    AddRef();
    poller_->Close(std::exchange(fd_, -1), &close_op_);  // In-flight ops end with ECANCELED.
    return future;
  }

 private:
  ~UdpState() = default;

  struct RecvOp final : IoCompletion {
    void OnComplete(int32_t result, uint32_t) noexcept override { owner->OnRecv(result); }
    UdpState* owner = nullptr;
  };
  struct CloseOp final : IoCompletion {
    void OnComplete(int32_t, uint32_t) noexcept override { owner->OnClose(); }
    UdpState* owner = nullptr;
  };
  struct SendOp final : IoCompletion {
    void OnComplete(int32_t result, uint32_t) noexcept override { owner->OnSend(this, result); }
    UdpState* owner = nullptr;
    SocketAddress to;
    iovec iov{};
    msghdr msg{};
    Promise<void> promise;
  };

  void OnRecv(int32_t result) noexcept {
    receiving_ = false;
    Promise<Datagram> promise = std::move(receive_promise_);
    if (result < 0) {
      promise.SetException(SystemError(closed_ ? ECANCELED : -result));
    } else if (closed_) {
      promise.SetException(SystemError(ECANCELED));
    } else {
      Datagram d;
      d.from = SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&recv_from_),
                                           recv_msg_.msg_namelen);
      d.data = {buffer_.data(), static_cast<size_t>(result)};
      d.truncated = (recv_msg_.msg_flags & MSG_TRUNC) != 0;
      promise.SetValue(std::move(d));
    }
    Release();
  }

  void OnSend(SendOp* op, int32_t result) noexcept {
    Promise<void> promise = std::move(op->promise);
    free_sends_.emplace_back(op);
    if (result < 0) {
      promise.SetException(SystemError(-result, "kev::net::UdpSocket::SendTo"));
    } else {
      promise.SetValue();
    }
    Release();  // May free the state and the pooled records with it.
  }

  void OnClose() noexcept {
    if (close_promise_) close_promise_->SetValue();
    close_promise_.reset();
    Release();
  }

  uint32_t refs_ = 1;
  Poller* poller_;
  int fd_;
  bool closed_ = false;
  std::vector<std::byte> buffer_;
  bool receiving_ = false;
  sockaddr_storage recv_from_{};
  iovec recv_iov_{};
  msghdr recv_msg_{};
  Promise<Datagram> receive_promise_;
  RecvOp recv_op_;
  std::vector<std::unique_ptr<SendOp>> free_sends_;
  CloseOp close_op_;
  std::optional<Promise<void>> close_promise_;
};

}  // namespace internal

UdpSocket UdpSocket::Bind(const SocketAddress& address, size_t max_datagram) {
  if (address.family() == AF_UNSPEC) internal::ThrowError(EINVAL, "kev::net::UdpSocket::Bind");
  int fd = ::socket(address.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) internal::ThrowErrno("kev::net::UdpSocket: socket");
  if (::bind(fd, address.sockaddr_ptr(), address.length()) != 0) {
    int error = errno;
    ::close(fd);
    internal::ThrowError(error, "kev::net::UdpSocket: bind");
  }
  return UdpSocket(new internal::UdpState(internal::CurrentPoller(), fd, max_datagram));
}

UdpSocket::UdpSocket(UdpSocket&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}

UdpSocket& UdpSocket::operator=(UdpSocket&& other) noexcept {
  if (this != &other) {
    UdpSocket old(std::move(*this));
    state_ = std::exchange(other.state_, nullptr);
  }
  return *this;
}

UdpSocket::~UdpSocket() {
  if (state_ == nullptr) return;
  (void)state_->Close(/*want_future=*/false);
  state_->Release();
}

int UdpSocket::fd() const noexcept { return state_ == nullptr ? -1 : state_->fd(); }

SocketAddress UdpSocket::local_address() const {
  if (fd() < 0) internal::ThrowError(EBADF, "kev::net::UdpSocket::local_address");
  return internal::LocalAddress(fd());
}

Future<Datagram> UdpSocket::Receive() {
  if (state_ == nullptr) return MakeExceptionFuture<Datagram>(internal::SystemError(EBADF));
  return state_->Receive();
}

Future<void> UdpSocket::SendTo(const SocketAddress& to, std::span<const std::byte> data) {
  if (state_ == nullptr) return MakeExceptionFuture<void>(internal::SystemError(EBADF));
  return state_->SendTo(to, data);
}

Future<void> UdpSocket::Close() {
  if (state_ == nullptr) return MakeReadyFuture();
  return state_->Close(/*want_future=*/true);
}

}  // namespace kev::net
