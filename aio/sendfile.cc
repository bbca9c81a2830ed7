#include "aio/sendfile.h"

#include <cerrno>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "aio/internal/sendfile_engine.h"
#include "net/internal/connection_state.h"
#include "net/internal/shard.h"
#include "reactor/internal/check.h"

namespace kev::aio {
namespace {

using net::internal::ConnectionState;

std::exception_ptr Error(int error) {
  const char* what = error == ENODATA ? "kev::aio::SendFile: the file ended before offset + count "
                                        "(truncated during the transfer?)"
                                      : "kev::aio::SendFile";
  return std::make_exception_ptr(std::system_error(error, std::system_category(), what));
}

// A SendFile transfer on one connection. Lives in the connection state's extension slot, so a
// connection that serves many files reuses one engine (and its header buffer) for all of them.
class ConnectionSendFile final : public net::internal::ConnectionExtension {
 public:
  // Begins after the bytes written before it are sent. Holds a reference on the state for the
  // transfer (the engine's operations point into the state's socket).
  Future<size_t> Start(ConnectionState* state, std::string_view head, int file_fd, off_t offset,
                       size_t count) {
    head_.assign(head);  // the caller's bytes may go away before the flush below resolves
    state_ = state;
    state_->AddRef();
    aborted_ = false;
    promise_ = {};  // A moved-from Promise still counts its future as taken.
    Future<size_t> result = promise_.GetFuture();
    (void)state_->BeginExclusiveOutput(this).ThenWrapped(
        [this, file_fd, offset, count](Future<void> flushed) {
          if (flushed.Failed()) {
            std::exception_ptr error = flushed.GetException();
            Complete(error, 0);
            return;
          }
          if (aborted_ || state_->closed()) return Complete(Error(ECANCELED), 0);
          engine_.Start(state_->poller(), state_->fd(), file_fd, offset, count,
                        std::as_bytes(std::span(head_)), &OnDone, this, /*inline_ok=*/true);
        });
    return result;
  }

  bool busy() const noexcept { return state_ != nullptr; }

  void Abort() noexcept override {
    aborted_ = true;
    engine_.Abort();  // Its completion finishes with ECANCELED; idle: the flush wait fails.
  }

 private:
  static void OnDone(internal::SendFileEngine*, int64_t result, void* arg) {
    auto* self = static_cast<ConnectionSendFile*>(arg);
    if (result < 0) {
      self->Complete(Error(static_cast<int>(-result)), static_cast<int>(-result));
    } else {
      // The engine counts the head too; the future promises file bytes.
      self->Complete(nullptr, 0, static_cast<size_t>(result) - self->head_.size());
    }
  }

  void Complete(std::exception_ptr error, int output_error, size_t bytes = 0) noexcept {
    ConnectionState* state = std::exchange(state_, nullptr);
    // A failed transfer leaves the peer with a partial body: the output is broken from here on.
    state->EndExclusiveOutput(error != nullptr && output_error == 0 ? ECANCELED : output_error);
    Promise<size_t> promise = std::move(promise_);
    if (error != nullptr) {
      promise.SetException(std::move(error));
    } else {
      promise.SetValue(bytes);
    }
    state->Release();  // May free the state and this object with it: nothing after this.
  }

  ConnectionState* state_ = nullptr;
  std::string head_;  // capacity reused by the connection's next transfers
  bool aborted_ = false;
  Promise<size_t> promise_;
  internal::SendFileEngine engine_;
};

}  // namespace

Future<size_t> SendFile(net::Connection& connection, int file_fd, off_t offset, size_t count) {
  return SendFile(connection, std::string_view(), file_fd, offset, count);
}

Future<size_t> SendFile(net::Connection& connection, std::string_view head, int file_fd,
                        off_t offset, size_t count) {
  ConnectionState* state = connection.state_for_internal_use();
  if (state == nullptr || state->closed()) {
    return MakeExceptionFuture<size_t>(Error(state == nullptr ? EBADF : ECANCELED));
  }
  if (file_fd < 0 || offset < 0)
    return MakeExceptionFuture<size_t>(Error(file_fd < 0 ? EBADF : EINVAL));
  if (count == 0) {
    if (head.empty()) return MakeReadyFuture<size_t>(0);
    // Nothing to coalesce the head with: it is an ordinary write.
    return connection.Write(head).Then([] { return size_t{0}; });
  }
  net::internal::IgnoreSigpipeOnce();
  std::unique_ptr<net::internal::ConnectionExtension>& slot = state->extension_slot();
  if (slot == nullptr) slot = std::make_unique<ConnectionSendFile>();  // once per connection
  auto* transfer = static_cast<ConnectionSendFile*>(slot.get());
  KEV_CHECK_MSG(!transfer->busy(), "kev::aio::SendFile: one transfer per connection at a time");
  return transfer->Start(state, head, file_fd, offset, count);
}

}  // namespace kev::aio
