#include "aio/internal/sendfile_engine.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace kev::aio::internal {
namespace {

// Pipes are reused: creating one (pipe2 + F_SETPIPE_SZ) per response would be two syscalls and
// a page-sized allocation in the kernel for every transfer. One pool per thread, so no lock.
class PipePool {
 public:
  ~PipePool() {
    for (auto [r, w] : pipes_) {
      ::close(r);
      ::close(w);
    }
  }
  // A clean pipe, or false (errno set) if none could be made.
  bool Take(int fds[2], size_t* capacity) {
    if (!pipes_.empty()) {
      fds[0] = pipes_.back().first;
      fds[1] = pipes_.back().second;
      pipes_.pop_back();
    } else if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
      return false;
    } else {
      // Bigger pipes mean fewer splice pairs per transfer. 1 MiB is the unprivileged maximum
      // (fs.pipe-max-size); fall back to the default 64 KiB if refused.
      ::fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
    }
    int size = ::fcntl(fds[1], F_GETPIPE_SZ);
    *capacity = size > 0 ? static_cast<size_t>(size) : 65536;
    return true;
  }
  void Give(int fds[2]) {
    if (pipes_.size() < kMaxCached) {
      pipes_.emplace_back(fds[0], fds[1]);
    } else {
      ::close(fds[0]);
      ::close(fds[1]);
    }
  }

 private:
  // Enough for the transfers one shard runs at once in practice; more are closed after use.
  static constexpr size_t kMaxCached = 64;
  std::vector<std::pair<int, int>> pipes_;
};

PipePool& ThreadPipePool() {
  static thread_local PipePool pool;
  return pool;
}

// splice(2) and sendfile(2) into a socket whose peer is gone raise SIGPIPE (they cannot take
// MSG_NOSIGNAL). Ignore it process-wide, once, unless the program installed its own handler.
void IgnoreSigpipeOnce() {
  static const bool done = [] {
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL &&
        (current.sa_flags & SA_SIGINFO) == 0) {
      signal(SIGPIPE, SIG_IGN);
    }
    return true;
  }();
  (void)done;
}

// Linux caps one splice/sendfile call at this many bytes.
constexpr size_t kMaxChunk = 0x7ffff000;

}  // namespace

SendFileEngine::~SendFileEngine() {
  if (pipe_[0] >= 0) {
    ::close(pipe_[0]);
    ::close(pipe_[1]);
  }
}

void SendFileEngine::Start(Poller& poller, int sock, int file, off_t offset, size_t count,
                           std::span<const std::byte> header, DoneFn done, void* arg,
                           bool inline_ok, Mode mode) {
  IgnoreSigpipeOnce();
  poller_ = &poller;
  sock_ = sock;
  file_ = file;
  offset_ = offset;
  remaining_ = count;
  in_pipe_ = 0;
  sent_ = 0;
  header_.assign(header.begin(), header.end());
  header_sent_ = 0;
  aborted_ = false;
  inline_ok_ = inline_ok;
  done_ = done;
  arg_ = arg;
  // The header explains why sendfile(2) on readiness is the default on both backends.
  splice_ = mode == Mode::kSplice;
  phase_ = Phase::kWaitWritable;  // running() from here on
  if (splice_ && remaining_ > 0 && pipe_[0] < 0 && !ThreadPipePool().Take(pipe_, &pipe_capacity_)) {
    pipe_[0] = pipe_[1] = -1;
    if (inline_ok_) return Finish(-errno);
    // Report it from a completion, as promised: a zero timeout carries it.
    pending_error_ = errno;
    phase_ = Phase::kFailLater;
    return poller_->Timeout(std::chrono::nanoseconds(0), this);
  }
  if (!header_.empty() && inline_ok_ && !splice_) {
    // Direct syscall, like TrySendfile: a response head usually fits the socket buffer, and
    // MSG_MORE holds it back so that it leaves in the same segments as the first file bytes
    // (one packet and one wake-up of the reader fewer per response; nginx gets the same from
    // TCP_CORK at the price of two setsockopt calls).
    ssize_t n = ::send(sock_, header_.data(), header_.size(), HeaderFlags() | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EINTR) return Finish(-errno);
    if (n > 0) {
      header_sent_ = static_cast<size_t>(n);
      sent_ = static_cast<uint64_t>(n);
    }
  }
  if (header_sent_ < header_.size()) return SendHeader();
  if (!splice_ && remaining_ > 0 && inline_ok_) return TrySendfile();
  if (!splice_ || remaining_ == 0) return WaitWritable();  // completes from the poller
  Fill();
}

void SendFileEngine::Abort() noexcept {
  if (phase_ == Phase::kIdle || aborted_) return;
  aborted_ = true;
  poller_->Cancel(this);
}

void SendFileEngine::Next() noexcept {
  if (aborted_) return Finish(-ECANCELED);
  if (header_sent_ < header_.size()) return SendHeader();
  if (in_pipe_ > 0) return Drain();
  if (remaining_ == 0) return Finish(static_cast<int64_t>(sent_));
  if (splice_) return Fill();
  TrySendfile();
}

void SendFileEngine::SendHeader() noexcept {
  phase_ = Phase::kHeader;
  poller_->Send(sock_, {header_.data() + header_sent_, header_.size() - header_sent_},
                HeaderFlags(), this);
}

void SendFileEngine::Fill() noexcept {
  phase_ = Phase::kFill;
  unsigned length = static_cast<unsigned>(std::min({remaining_, pipe_capacity_, kMaxChunk}));
  poller_->Splice(file_, offset_, pipe_[1], -1, length, SPLICE_F_MOVE, this);
}

void SendFileEngine::Drain() noexcept {
  phase_ = Phase::kDrain;
  unsigned length = static_cast<unsigned>(std::min(in_pipe_, kMaxChunk));
  poller_->Splice(pipe_[0], -1, sock_, -1, length, SPLICE_F_MOVE | SPLICE_F_NONBLOCK, this);
}

void SendFileEngine::WaitWritable() noexcept {
  phase_ = Phase::kWaitWritable;
  poller_->PollAdd(sock_, POLLOUT, /*multishot=*/false, this);
}

void SendFileEngine::TrySendfile() noexcept {
  phase_ = Phase::kSendfile;
  while (remaining_ > 0) {
    // Direct syscall, not through the poller: under epoll the poller would make this same call
    // on readiness anyway, and sendfile(2) has no io_uring opcode.
    ssize_t n = ::sendfile(sock_, file_, &offset_, std::min(remaining_, kMaxChunk));
    if (n > 0) {
      remaining_ -= static_cast<size_t>(n);
      sent_ += static_cast<uint64_t>(n);
      continue;
    }
    if (n == 0) return Finish(-ENODATA);  // the file ended early (truncated)
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return WaitWritable();
    return Finish(-errno);
  }
  Finish(static_cast<int64_t>(sent_));
}

void SendFileEngine::OnComplete(int32_t result, uint32_t) noexcept {
  if (aborted_) return Finish(-ECANCELED);
  switch (phase_) {
    case Phase::kHeader:
      if (result < 0) return Finish(result);
      header_sent_ += static_cast<size_t>(result);
      sent_ += static_cast<uint64_t>(result);
      return Next();
    case Phase::kFill:
      if (result == 0) return Finish(-ENODATA);  // the file ended early (truncated)
      if (result == -EAGAIN || result == -EINTR) return Fill();
      if (result < 0) return Finish(result);
      in_pipe_ = static_cast<size_t>(result);
      remaining_ -= in_pipe_;
      offset_ += result;
      return Drain();
    case Phase::kDrain:
      if (result == -EAGAIN) return WaitWritable();
      if (result == -EINTR) return Drain();
      if (result <= 0) return Finish(result == 0 ? -EPIPE : result);
      in_pipe_ -= static_cast<size_t>(result);
      sent_ += static_cast<uint64_t>(result);
      return Next();
    case Phase::kWaitWritable:
      if (result < 0) return Finish(result);
      // Writable, or POLLERR/POLLHUP: the next attempt reports the real error (EPIPE...).
      if (remaining_ == 0 && in_pipe_ == 0 && header_sent_ == header_.size()) {
        return Finish(static_cast<int64_t>(sent_));
      }
      if (in_pipe_ > 0) return Drain();
      return splice_ ? Fill() : TrySendfile();
    case Phase::kFailLater:
      return Finish(-pending_error_);
    case Phase::kSendfile:
    case Phase::kIdle:
      return Finish(-EINVAL);  // no operation is submitted in these phases
  }
}

void SendFileEngine::Finish(int64_t result) noexcept {
  phase_ = Phase::kIdle;
  if (pipe_[0] >= 0) {
    if (in_pipe_ == 0) {
      ThreadPipePool().Give(pipe_);
    } else {
      ::close(pipe_[0]);  // holds bytes of a failed transfer: unusable for the next one
      ::close(pipe_[1]);
    }
    pipe_[0] = pipe_[1] = -1;
  }
  in_pipe_ = 0;
  done_(this, result, arg_);  // May destroy or restart this engine: touch nothing after.
}

}  // namespace kev::aio::internal
