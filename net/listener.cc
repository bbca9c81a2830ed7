#include "net/listener.h"

#include <sys/resource.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <deque>
#include <optional>
#include <utility>

#include "kevent/poller.h"
#include "net/internal/connection_state.h"
#include "net/internal/shard.h"
#include "net/internal/socket_util.h"

namespace kev::net {
namespace internal {

// The heap state behind a Listener; reference-counted like ConnectionState, for the same
// reason (the multishot accept and the back-off timer complete after the handle may be gone).
class ListenerState {
 public:
  ListenerState(Poller& poller, int fd, const ListenOptions& options) noexcept
      : poller_(&poller), fd_(fd), options_(options) {
    accept_op_.owner = this;
    backoff_op_.owner = this;
    close_op_.owner = this;
  }
  ListenerState(const ListenerState&) = delete;
  ListenerState& operator=(const ListenerState&) = delete;

  void AddRef() noexcept { ++refs_; }
  void Release() noexcept {
    if (--refs_ == 0) delete this;
  }
  int fd() const noexcept { return fd_; }

  Future<Connection> Accept() {
    if (closed_) return MakeExceptionFuture<Connection>(SystemError(ECANCELED, "Accept"));
    if (!ready_.empty()) {
      int fd = ready_.front();
      ready_.pop_front();
      MaybeArm();  // The queue may have been full (accept paused).
      return MakeReadyFuture(MakeConnection(fd));
    }
    if (broken_error_ != 0) return MakeExceptionFuture<Connection>(SystemError(broken_error_));
    waiters_.emplace_back();
    Future<Connection> future = waiters_.back().GetFuture();
    MaybeArm();
    return future;
  }

  Future<void> Close(bool want_future) {
    if (closed_) return MakeReadyFuture();
    closed_ = true;
    while (!waiters_.empty()) {
      Promise<Connection> promise = std::move(waiters_.front());
      waiters_.pop_front();
      promise.SetException(SystemError(ECANCELED, "kev::net::Listener closed"));
    }
    for (int fd : ready_) ::close(fd);  // Never seen by the poller: a plain close is right.
    ready_.clear();
    if (backoff_in_flight_) poller_->Cancel(&backoff_op_);
    Future<void> future = MakeReadyFuture();
    if (want_future) {
      close_promise_.emplace();
      future = close_promise_->GetFuture();
    }
    AddRef();
    poller_->Close(std::exchange(fd_, -1), &close_op_);  // Cancels the multishot accept.
    return future;
  }

 private:
  ~ListenerState() = default;

  template <void (ListenerState::*kHandler)(int32_t, uint32_t)>
  struct Op final : IoCompletion {
    void OnComplete(int32_t result, uint32_t flags) noexcept override {
      (owner->*kHandler)(result, flags);
    }
    ListenerState* owner = nullptr;
  };

  // The accepted socket inherits TCP_NODELAY, SO_KEEPALIVE and the buffer sizes from the
  // listener (Linux copies them at accept), so accepting costs no setsockopt.
  Connection MakeConnection(int fd) {
    return Connection::AdoptStateForInternalUse(
        new ConnectionState(*poller_, fd, options_.connection_options));
  }

  // Arms the multishot accept when someone may want a connection and nothing stops us.
  void MaybeArm() noexcept {
    if (armed_ || closed_ || backoff_in_flight_ || broken_error_ != 0) return;
    if (ready_.size() >= options_.max_queued) return;
    armed_ = true;
    AddRef();
    poller_->Accept(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC, /*multishot=*/true,
                    &accept_op_);
  }

  void OnAccept(int32_t result, uint32_t flags) noexcept {
    bool final = (flags & kCompletionMore) == 0;
    if (final) armed_ = false;
    if (result >= 0) {
      backoff_ = kMinBackoff;
      if (closed_) {
        ::close(result);
      } else if (!waiters_.empty()) {
        Promise<Connection> promise = std::move(waiters_.front());
        waiters_.pop_front();
        promise.SetValue(MakeConnection(result));
      } else {
        ready_.push_back(result);
        // Nobody is accepting: stop taking connections, the kernel's backlog holds the rest.
        if (!final && ready_.size() >= options_.max_queued) poller_->Cancel(&accept_op_);
      }
    } else if (!closed_ && final) {
      switch (-result) {
        case EMFILE:
        case ENFILE:
        case ENOMEM:
        case ENOBUFS:
          // Out of descriptors or memory: the connection stays in the backlog, so retrying now
          // would fail again at once. Wait, then retry (10 ms doubling to 100 ms).
          backoff_in_flight_ = true;
          AddRef();
          poller_->Timeout(backoff_, &backoff_op_);
          backoff_ = std::min(backoff_ * 2, kMaxBackoff);
          break;
        case EBADF:
        case EINVAL:
        case ENOTSOCK:
        case EOPNOTSUPP:
          // The listening socket itself is unusable: fail everyone rather than spin.
          broken_error_ = -result;
          while (!waiters_.empty()) {
            Promise<Connection> promise = std::move(waiters_.front());
            waiters_.pop_front();
            promise.SetException(SystemError(broken_error_, "kev::net::Listener::Accept"));
          }
          break;
        default:
          break;  // ECANCELED (paused), ECONNABORTED, EPROTO...: transient, re-armed below.
      }
    }
    if (final && !waiters_.empty()) MaybeArm();
    if (final) Release();
  }

  void OnBackoff(int32_t, uint32_t) noexcept {
    backoff_in_flight_ = false;
    if (!waiters_.empty()) MaybeArm();
    Release();
  }

  void OnClose(int32_t, uint32_t) noexcept {
    if (close_promise_) close_promise_->SetValue();
    close_promise_.reset();
    Release();
  }

  static constexpr std::chrono::milliseconds kMinBackoff{10};
  static constexpr std::chrono::milliseconds kMaxBackoff{100};

  uint32_t refs_ = 1;
  Poller* poller_;
  int fd_;
  ListenOptions options_;
  bool closed_ = false;
  bool armed_ = false;
  bool backoff_in_flight_ = false;
  int broken_error_ = 0;
  std::chrono::milliseconds backoff_ = kMinBackoff;
  std::deque<int> ready_;                    // accepted, not yet handed out
  std::deque<Promise<Connection>> waiters_;  // Accept() calls waiting, in order
  Op<&ListenerState::OnAccept> accept_op_;
  Op<&ListenerState::OnBackoff> backoff_op_;
  Op<&ListenerState::OnClose> close_op_;
  std::optional<Promise<void>> close_promise_;
};

}  // namespace internal

Listener Listen(const SocketAddress& address, const ListenOptions& options) {
  if (address.family() == AF_UNSPEC) internal::ThrowError(EINVAL, "kev::net::Listen");
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) internal::ThrowErrno("kev::net::Listen: socket");
  try {
    if (address.is_ip()) {
      if (options.reuse_address)
        internal::SetIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
      if (options.reuse_port)
        internal::SetIntOption(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
      if (address.family() == AF_INET6) {
        internal::SetIntOption(fd, IPPROTO_IPV6, IPV6_V6ONLY, options.v6_only ? 1 : 0,
                               "IPV6_V6ONLY");
      }
    }
    // Set on the listener so that every accepted socket inherits them.
    internal::ApplySocketOptions(fd, address.family(), options.connection_options);
    if (::bind(fd, address.sockaddr_ptr(), address.length()) != 0) {
      internal::ThrowErrno("kev::net::Listen: bind");
    }
    if (::listen(fd, options.backlog) != 0) internal::ThrowErrno("kev::net::Listen: listen");
  } catch (...) {
    ::close(fd);
    throw;
  }
  internal::IgnoreSigpipeOnce();
  return Listener(new internal::ListenerState(internal::CurrentPoller(), fd, options));
}

Listener::Listener(Listener&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}

Listener& Listener::operator=(Listener&& other) noexcept {
  if (this != &other) {
    Listener old(std::move(*this));
    state_ = std::exchange(other.state_, nullptr);
  }
  return *this;
}

Listener::~Listener() {
  if (state_ == nullptr) return;
  (void)state_->Close(/*want_future=*/false);
  state_->Release();
}

int Listener::fd() const noexcept { return state_ == nullptr ? -1 : state_->fd(); }

SocketAddress Listener::local_address() const {
  if (fd() < 0) internal::ThrowError(EBADF, "kev::net::Listener::local_address");
  return internal::LocalAddress(fd());
}

Future<Connection> Listener::Accept() {
  if (state_ == nullptr) {
    return MakeExceptionFuture<Connection>(internal::SystemError(EBADF, "kev::net::Listener"));
  }
  return state_->Accept();
}

Future<void> Listener::Close() {
  if (state_ == nullptr) return MakeReadyFuture();
  return state_->Close(/*want_future=*/true);
}

uint64_t RaiseOpenFileLimit() {
  struct rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) != 0) return 0;
  if (nofile.rlim_cur < nofile.rlim_max) {
    rlimit raised = nofile;
    raised.rlim_cur = nofile.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) nofile = raised;
  }
  return nofile.rlim_cur;
}

}  // namespace kev::net
