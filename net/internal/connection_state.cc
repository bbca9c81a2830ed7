#include "net/internal/connection_state.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <system_error>
#include <utility>

#include "net/internal/socket_util.h"
#include "reactor/internal/check.h"

namespace kev::net::internal {

std::exception_ptr SystemError(int error, const char* what) noexcept {
  return std::make_exception_ptr(std::system_error(error, std::system_category(), what));
}

void ReadState::Destroy() noexcept {
  if (owner_ == nullptr) {
    delete this;
    return;
  }
  ConnectionState* owner = owner_;
  this->~ReadState();
  owner->ReadStorageFreed();  // may free the owner, and with it this storage
}

ConnectionState::ConnectionState(Poller& poller, int fd, const SocketOptions& options) noexcept
    : poller_(&poller),
      input_buffer_size_(static_cast<uint32_t>(std::min<size_t>(options.input_buffer_size,
                                                                 UINT32_MAX))),
      output_high_water_(static_cast<uint32_t>(std::min<size_t>(options.output_high_water,
                                                                 UINT32_MAX))),
      fd_(fd) {
  use_pool_ = poller.SupportsBufferSelect();
  // io_uring: every send and receive on it then skips taking a file reference (one syscall
  // per connection). Close() goes through the poller, which unregisters it.
  poller.RegisterFile(fd);
}

ConnectionState::~ConnectionState() {
  // Only a state that never got a handle (a failed Connect) still has its descriptor here, and
  // then nothing is in flight on it (every operation holds a reference).
  if (fd_ >= 0) {
    poller_->UnregisterFile(fd_);  // the registration would keep the socket open
    ::close(fd_);
  }
  // Kept until now (not given back at Close) because spans the user holds point into it.
  if (pool_buf_ >= 0) poller_->ReturnBuffer(static_cast<uint16_t>(pool_buf_));
  else delete[] in_data_;
  // A pending read's state is failed at Close, which every handle runs before letting go.
  if (read_state_ != nullptr) read_state_->Release();
}

void ConnectionState::SetOwnBuffer(std::byte* buffer, size_t capacity) noexcept {
  if (pool_buf_ < 0) delete[] in_data_;
  in_data_ = buffer;
  in_cap_ = capacity;
}

// --- Input ---------------------------------------------------------------------------------

Future<std::span<const std::byte>> ConnectionState::StartRead(ReadKind kind) {
  KEV_CHECK_MSG(read_kind_ == ReadKind::kNone, "kev::net::Connection: two reads at once");
  if (closed_) return MakeExceptionFuture<std::span<const std::byte>>(SystemError(ECANCELED));
  read_kind_ = kind;
  // Two references: the future's and ours (the producer's, dropped when the read resolves).
  if (!read_storage_live_) {
    read_state_ = new (read_storage_) ReadState(this);  // no allocation: embedded
    read_storage_live_ = true;
    AddRef();  // for the embedded state: its future may outlive the handle
  } else {
    // The previous read's future still holds the embedded state (resolved, not yet consumed).
    read_state_ = new ReadState(nullptr);
  }
  Future<std::span<const std::byte>> future = kev::internal::FutureAccess::FromState(
      kev::internal::StateRef<std::span<const std::byte>>::Adopt(read_state_));
  AdvanceRead();
  return future;
}

Future<std::span<const std::byte>> ConnectionState::ReadSome() {
  // Fast paths: answer from the buffer (or the known end of stream) without a pending future.
  if (in_end_ > in_begin_) return MakeReadyFuture(buffered());
  if (closed_) return MakeExceptionFuture<std::span<const std::byte>>(SystemError(ECANCELED));
  if (input_error_ != 0) {
    return MakeExceptionFuture<std::span<const std::byte>>(SystemError(input_error_));
  }
  if (eof_) return MakeReadyFuture(std::span<const std::byte>());
  return StartRead(ReadKind::kSome);
}

Future<std::span<const std::byte>> ConnectionState::ReadExactly(size_t n) {
  if (in_end_ - in_begin_ >= n) return MakeReadyFuture(buffered().first(n));
  read_n_ = n;
  return StartRead(ReadKind::kExactly);
}

Future<std::span<const std::byte>> ConnectionState::ReadUntil(std::string_view delimiter,
                                                              size_t max) {
  KEV_CHECK_MSG(!delimiter.empty(), "kev::net::Connection::ReadUntil: empty delimiter");
  // Kept: the search resumes after every recv.
  if (delimiter.size() <= kInlineDelimiter) {
    std::memcpy(delimiter_, delimiter.data(), delimiter.size());
    delimiter_len_ = static_cast<uint8_t>(delimiter.size());
  } else {
    rare().long_delimiter.assign(delimiter);
    delimiter_len_ = kInlineDelimiter + 1;
  }
  read_n_ = max;
  scan_from_ = 0;
  return StartRead(ReadKind::kUntil);
}

void ConnectionState::Consume(size_t n) noexcept {
  KEV_CHECK_MSG(n <= in_end_ - in_begin_, "kev::net::Connection::Consume: more than buffered");
  in_begin_ += n;
  if (in_begin_ == in_end_) {
    in_begin_ = in_end_ = 0;  // Empty: restart at the front for free.
    // Hold no input buffer while idle (a plain recv in flight still writes into our own).
    if (use_pool_ && !(recv_in_flight_ && !recv_pooled_)) ReleaseInput();
  }
}

void ConnectionState::ReleaseInput() noexcept {
  if (pool_buf_ >= 0) {
    poller_->ReturnBuffer(static_cast<uint16_t>(pool_buf_));  // no syscall (ring or free list)
    pool_buf_ = -1;
    in_data_ = nullptr;
  }
  SetOwnBuffer(nullptr, 0);
}

void ConnectionState::AdvanceRead() noexcept {
  std::span<const std::byte> have = buffered();
  switch (read_kind_) {
    case ReadKind::kNone:
      return;
    case ReadKind::kSome:
      if (!have.empty()) return FinishRead(have);
      if (eof_) return FinishRead({});
      break;
    case ReadKind::kExactly:
      if (have.size() >= read_n_) return FinishRead(have.first(read_n_));
      if (eof_) return FailRead(std::make_exception_ptr(EndOfStream()));
      break;
    case ReadKind::kUntil: {
      std::string_view text(reinterpret_cast<const char*>(have.data()), have.size());
      std::string_view delim = delimiter();
      size_t found = text.find(delim, scan_from_);
      if (found != std::string_view::npos && found + delim.size() <= read_n_) {
        return FinishRead(have.first(found + delim.size()));
      }
      if (have.size() >= read_n_) return FailRead(std::make_exception_ptr(DelimiterNotFound()));
      if (eof_) return FailRead(std::make_exception_ptr(EndOfStream()));
      // Resume where a delimiter could still start.
      scan_from_ = have.size() >= delim.size() ? have.size() - delim.size() + 1 : 0;
      break;
    }
  }
  if (input_error_ != 0) return FailRead(SystemError(input_error_));
  size_t have_now = in_end_ - in_begin_;
  switch (read_kind_) {
    case ReadKind::kExactly:
      return StartRecv(read_n_, read_n_);
    case ReadKind::kUntil:
      // Room for one more byte, growing by doubling up to `max` (not to `max` at once: a large
      // limit must not cost a large buffer on every connection).
      return StartRecv(have_now + 1, std::min(read_n_, std::max(have_now + 1, 2 * in_cap_)));
    default:
      return StartRecv(1, 1);
  }
}

void ConnectionState::StartRecv(size_t need, size_t grow_to) noexcept {
  // In flight includes an armed multishot recv: its next arrival comes by itself.
  if (recv_in_flight_) return;
  size_t have = in_end_ - in_begin_;
  if (have == 0 && use_pool_ && !std::exchange(pool_empty_, false)) {
    // Nothing buffered: wait holding no buffer; the data lands in one of the shard's pool.
    // Multishot where the poller can (io_uring): armed once, not once per message.
    ReleaseInput();
    recv_in_flight_ = true;
    recv_pooled_ = true;
    AddRef();  // Until the final completion (with a pool buffer or not).
    poller_->RecvBufferSelectMultishot(fd_, 0,
                                       static_cast<CompletionOf<ConnectionState, RecvKind>*>(this));
    return;
  }
  MakeOwnRoom(need, grow_to);
  recv_in_flight_ = true;
  AddRef();  // The kernel writes into the buffer until the final completion.
  poller_->Recv(fd_, {in_data_ + in_end_, in_cap_ - in_end_}, 0,
                static_cast<CompletionOf<ConnectionState, RecvKind>*>(this));
}

void ConnectionState::MakeOwnRoom(size_t need, size_t grow_to) {
  size_t have = in_end_ - in_begin_;
  if (pool_buf_ >= 0) {
    // More bytes wanted than the pool buffer brought: move them to a buffer of our own (the
    // pool buffer must not stay pinned while this connection waits).
    size_t want = std::max({need, grow_to, size_t{input_buffer_size_}});
    auto* own = new std::byte[want];
    if (have > 0) std::memcpy(own, in_data_ + in_begin_, have);
    poller_->ReturnBuffer(static_cast<uint16_t>(std::exchange(pool_buf_, -1)));
    in_data_ = own;
    in_cap_ = want;
    in_begin_ = 0;
    in_end_ = have;
  } else if (in_cap_ < need) {
    // Grows to the working size (first read, or a larger ReadExactly/ReadUntil) and keeps it,
    // so steady-state reads allocate nothing.
    size_t want = std::max({need, grow_to, size_t{input_buffer_size_}});
    auto* bigger = new std::byte[want];
    if (have > 0) std::memcpy(bigger, in_data_ + in_begin_, have);
    SetOwnBuffer(bigger, want);
    in_begin_ = 0;
    in_end_ = have;
  } else if (in_end_ == in_cap_ || in_cap_ - in_begin_ < need) {
    std::memmove(in_data_, in_data_ + in_begin_, have);
    in_begin_ = 0;
    in_end_ = have;
  }
}

void ConnectionState::TakePoolBytes(uint16_t id, size_t n) {
  std::span<std::byte> buffer = poller_->SelectedBuffer(id);
  if (in_begin_ == in_end_ && pool_buf_ < 0) {
    // Zero copy: the pool buffer becomes the input until Consume empties it.
    SetOwnBuffer(nullptr, 0);
    pool_buf_ = id;
    in_data_ = buffer.data();
    in_cap_ = buffer.size();
    in_begin_ = 0;
    in_end_ = n;
    return;
  }
  // An arrival for a multishot recv while earlier bytes are still buffered (the reader is
  // behind, or wants more than it has): append. Doubling keeps a large read linear.
  size_t have = in_end_ - in_begin_;
  size_t grow_to = std::max(have + n, 2 * in_cap_);
  if (read_kind_ == ReadKind::kExactly) grow_to = std::max(grow_to, read_n_);
  MakeOwnRoom(have + n, grow_to);
  std::memcpy(in_data_ + in_end_, buffer.data(), n);
  in_end_ += n;
  poller_->ReturnBuffer(id);  // no syscall (ring or free list)
}

void ConnectionState::PauseIfBehind() noexcept {
  if (!recv_in_flight_ || recv_paused_ || read_kind_ != ReadKind::kNone ||
      in_end_ - in_begin_ < input_buffer_size_) {
    return;
  }
  recv_paused_ = true;
  poller_->Cancel(static_cast<CompletionOf<ConnectionState, RecvKind>*>(this));
}

void ConnectionState::OnCompletion(RecvKind, int32_t result, uint32_t flags) noexcept {
  const bool more = (flags & kCompletionMore) != 0;  // a multishot recv that stays armed
  bool pooled = recv_pooled_;
  bool paused = false;
  if (!more) {
    recv_in_flight_ = false;
    recv_pooled_ = false;
    paused = std::exchange(recv_paused_, false);
  }
  if ((flags & kCompletionBuffer) != 0) {
    uint16_t id = CompletionBufferId(flags);
    if (closed_) {
      poller_->ReturnBuffer(id);
    } else {
      // Bytes that arrive while nobody reads are what can pile up (a full buffer that a
      // waiting read takes is the normal case, even when it is input_buffer_size_ or more).
      const bool read_waiting = read_kind_ != ReadKind::kNone;
      TakePoolBytes(id, static_cast<size_t>(result));
      AdvanceRead();
      if (more && !read_waiting) PauseIfBehind();
    }
  } else if (!closed_) {
    if (pooled && result == -ENOBUFS) {
      pool_empty_ = true;  // the shard's pool is dry: the next recv uses our own buffer
    } else if (result > 0) {
      in_end_ += static_cast<size_t>(result);
    } else if (result == 0) {
      eof_ = true;
    } else if (result == -ECANCELED && paused) {
      // Our own PauseIfBehind: the next read that needs bytes re-arms.
    } else if (result != -EAGAIN && result != -EINTR) {
      input_error_ = -result;
    }
    AdvanceRead();
  }
  if (!more) Release();
}

void ConnectionState::FinishRead(std::span<const std::byte> result) noexcept {
  read_kind_ = ReadKind::kNone;
  ReadState* state = std::exchange(read_state_, nullptr);
  state->SetValue(result);  // Schedules the reader; runs nothing inline.
  state->Release();  // If the future is gone, frees the state (a caller holds a reference)
}

void ConnectionState::FailRead(std::exception_ptr error) noexcept {
  read_kind_ = ReadKind::kNone;
  ReadState* state = std::exchange(read_state_, nullptr);
  state->SetException(std::move(error));
  state->Release();
}

// --- Output --------------------------------------------------------------------------------

void ConnectionState::Output::Recycle(size_t keep_bytes) noexcept {
  if (sending.capacity() > keep_bytes) std::vector<std::byte>().swap(sending);
  if (pending.capacity() > keep_bytes) std::vector<std::byte>().swap(pending);
  if (waiters.capacity() > 4) std::vector<Waiter>().swap(waiters);
  sending.clear();
  pending.clear();
  send_offset = 0;
  written = sent = 0;
  barrier = UINT64_MAX;
  waiters.clear();
  waiters_head = 0;
}

// The shard's (thread's) freed output states, reused by the next burst of any connection: a
// request-response connection makes one per response, and a malloc/free pair for the state and
// one for its buffer per message was ~2% of the echo server's time. Sized for every connection
// that writes in one loop turn (64 echo connections all do, and all finish together), bounded
// in count and in the buffer capacity kept: at most ~0.5 MiB per shard (tens of KiB for small
// responses), not memory per connection.
std::vector<std::unique_ptr<ConnectionState::Output>>& ConnectionState::OutputCache() noexcept {
  thread_local std::vector<std::unique_ptr<Output>> cache;
  return cache;
}

ConnectionState::Output& ConnectionState::out() {
  if (out_ == nullptr) {
    std::vector<std::unique_ptr<Output>>& cache = OutputCache();
    if (!cache.empty()) {
      out_ = std::move(cache.back());
      cache.pop_back();
    } else {
      out_ = std::make_unique<Output>();  // once per burst while the cache is cold: see Output
    }
  }
  return *out_;
}

void ConnectionState::MaybeFreeOutput() noexcept {
  // The kernel reads `sending` until the send's final completion, even after Close.
  if (out_ != nullptr && !send_in_flight_ && out_->sent == out_->written &&
      out_->waiters_head == out_->waiters.size() && out_->barrier == UINT64_MAX) {
    std::vector<std::unique_ptr<Output>>& cache = OutputCache();
    if (cache.size() < kOutputCacheEntries) {
      // Small capacities are kept (a large buffer would be memory a later burst of small
      // writes never uses).
      out_->Recycle(kOutputCacheBytes);
      // The cache's capacity is reserved up front (no allocation while freeing: noexcept).
      if (cache.capacity() < kOutputCacheEntries) {
        try {
          cache.reserve(kOutputCacheEntries);
        } catch (...) {
          out_.reset();
          return;
        }
      }
      cache.push_back(std::move(out_));
    } else {
      out_.reset();
    }
  }
}

Future<void> ConnectionState::Write(std::span<const std::byte> data) {
  if (closed_) return MakeExceptionFuture<void>(SystemError(ECANCELED));
  if (output_error_ != 0) return MakeExceptionFuture<void>(SystemError(output_error_));
  Output& o = out();
  // Copy into the pending buffer; its capacity is reused within a burst.
  o.pending.insert(o.pending.end(), data.begin(), data.end());
  o.written += data.size();
  MaybeStartSend();
  uint64_t unsent = o.written - o.sent;
  if (unsent <= output_high_water_) {
    MaybeFreeOutput();  // (an empty write)
    return MakeReadyFuture();
  }
  return WaitSent(o.written - output_high_water_);
}

Future<void> ConnectionState::Flush() {
  if (closed_) return MakeExceptionFuture<void>(SystemError(ECANCELED));
  if (output_error_ != 0) return MakeExceptionFuture<void>(SystemError(output_error_));
  if (out_ == nullptr || out_->sent >= out_->written) return MakeReadyFuture();
  MaybeStartSend();
  return WaitSent(out_->written);
}

Future<void> ConnectionState::WaitSent(uint64_t target) {
  // Within a burst the capacity is reused: no allocation after the first waiter.
  out_->waiters.push_back(Output::Waiter{target, Promise<void>()});
  return out_->waiters.back().promise.GetFuture();
}

void ConnectionState::MaybeStartSend() noexcept {
  if (send_in_flight_ || closed_ || output_error_ != 0 || out_ == nullptr) return;
  Output& o = *out_;
  if (o.send_offset == o.sending.size()) {
    if (o.pending.empty()) return;
    o.sending.swap(o.pending);  // Double buffering: writes go on while this one sends.
    o.pending.clear();
    o.send_offset = 0;
  }
  size_t length = o.sending.size() - o.send_offset;
  if (o.barrier != UINT64_MAX) length = std::min<uint64_t>(length, o.barrier - o.sent);
  if (length == 0) return;
  send_in_flight_ = true;
  AddRef();  // The kernel reads `sending` until the final completion.
  poller_->Send(fd_, {o.sending.data() + o.send_offset, length}, MSG_NOSIGNAL,
                static_cast<CompletionOf<ConnectionState, SendKind>*>(this));
}

void ConnectionState::OnCompletion(SendKind, int32_t result, uint32_t) noexcept {
  send_in_flight_ = false;
  if (!closed_) {
    Output& o = *out_;  // kept while a send is in flight
    if (result >= 0) {
      o.send_offset += static_cast<size_t>(result);
      o.sent += static_cast<uint64_t>(result);
      if (o.send_offset == o.sending.size()) {
        o.sending.clear();
        o.send_offset = 0;
      }
      ResolveWaiters();
      MaybeStartSend();
      MaybeFreeOutput();  // all sent: an idle connection keeps no output buffer
    } else if (result != -EAGAIN && result != -EINTR) {
      output_error_ = -result;
      FailWaiters(SystemError(output_error_));
    } else {
      MaybeStartSend();
    }
  }
  Release();
}

void ConnectionState::ResolveWaiters() noexcept {
  // SetValue only schedules the waiter (nothing runs inline), so the waiters cannot change
  // under this loop.
  Output& o = *out_;
  while (o.waiters_head < o.waiters.size() && o.waiters[o.waiters_head].target <= o.sent) {
    Promise<void> promise = std::move(o.waiters[o.waiters_head++].promise);
    promise.SetValue();
  }
  if (o.waiters_head == o.waiters.size()) {
    o.waiters.clear();
    o.waiters_head = 0;
  }
}

void ConnectionState::FailWaiters(std::exception_ptr error) noexcept {
  if (out_ == nullptr) return;
  Output& o = *out_;
  while (o.waiters_head < o.waiters.size()) {
    Promise<void> promise = std::move(o.waiters[o.waiters_head++].promise);
    promise.SetException(error);
  }
  o.waiters.clear();
  o.waiters_head = 0;
}

Future<void> ConnectionState::BeginExclusiveOutput(ConnectionExtension* extension) {
  KEV_CHECK_MSG(rare().extension == nullptr,
                "kev::aio::SendFile: one transfer per connection at a time");
  if (closed_) return MakeExceptionFuture<void>(SystemError(ECANCELED));
  if (output_error_ != 0) return MakeExceptionFuture<void>(SystemError(output_error_));
  rare_->extension = extension;
  Output& o = out();
  o.barrier = o.written;
  if (o.sent < o.written) SendPendingInline();
  if (o.sent >= o.written) return MakeReadyFuture();
  MaybeStartSend();
  return WaitSent(o.written);
}

void ConnectionState::SendPendingInline() noexcept {
  Output& o = *out_;
  if (send_in_flight_ || o.send_offset != o.sending.size() || o.pending.empty()) return;
  // Direct syscall, not through the poller: the bytes before a file transfer (a response
  // header) usually fit the socket buffer, and sending them now lets the transfer start in
  // this turn instead of after a send completion one loop turn later.
  ssize_t n = ::send(fd_, o.pending.data(), o.pending.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n <= 0) return;  // EAGAIN or an error: the poller's send finds and reports it
  o.sent += static_cast<uint64_t>(n);
  if (static_cast<size_t>(n) == o.pending.size()) {
    o.pending.clear();
  } else {
    o.sending.swap(o.pending);
    o.pending.clear();
    o.sending.erase(o.sending.begin(), o.sending.begin() + n);
    o.send_offset = 0;
  }
  ResolveWaiters();
}

void ConnectionState::EndExclusiveOutput(int error) noexcept {
  if (rare_ != nullptr) rare_->extension = nullptr;
  if (out_ != nullptr) out_->barrier = UINT64_MAX;
  if (closed_) return;
  if (error != 0 && output_error_ == 0) {
    output_error_ = error;
    FailWaiters(SystemError(error));
  }
  MaybeStartSend();
  MaybeFreeOutput();
}

// --- Close and connect -----------------------------------------------------------------------

Future<void> ConnectionState::Close(bool want_future) {
  if (closed_) return MakeReadyFuture();
  closed_ = true;
  if (read_kind_ != ReadKind::kNone) FailRead(SystemError(ECANCELED));
  FailWaiters(SystemError(ECANCELED));
  // The transfer must stop before the descriptor number can be reused by someone else.
  if (rare_ != nullptr && rare_->extension != nullptr) {
    std::exchange(rare_->extension, nullptr)->Abort();
  }
  Future<void> future = MakeReadyFuture();
  if (want_future) {
    close_wanted_ = true;
    future = close_promise_.GetFuture();
  }
  AddRef();
  // Cancels recv/send in flight first.
  poller_->Close(std::exchange(fd_, -1), static_cast<CompletionOf<ConnectionState, CloseKind>*>(this));
  return future;
}

void ConnectionState::OnCompletion(CloseKind, int32_t, uint32_t) noexcept {
  // close(2) errors are not actionable (the descriptor is gone either way).
  if (std::exchange(close_wanted_, false)) {
    Promise<void> promise = std::move(close_promise_);
    promise.SetValue();
  }
  Release();
}

Future<Connection> ConnectionState::StartConnect(const SocketAddress& address) {
  connecting_ = std::make_unique<Connecting>();  // once per outgoing connection
  connecting_->owner = this;
  connecting_->address = address;  // The kernel reads it until the final completion.
  Future<Connection> future = connecting_->promise.GetFuture();
  AddRef();
  poller_->Connect(fd_, connecting_->address.sockaddr_ptr(), connecting_->address.length(),
                   connecting_.get());
  return future;
}

void ConnectionState::Connecting::OnComplete(int32_t result, uint32_t) noexcept {
  owner->OnConnect(result);
}

void ConnectionState::OnConnect(int32_t result) noexcept {
  Promise<Connection> promise = std::move(connecting_->promise);
  connecting_.reset();  // the op's final completion: nothing refers to it any more
  if (result < 0) {
    promise.SetException(SystemError(-result, "kev::net::Connect"));
  } else {
    AddRef();  // For the Connection handle.
    promise.SetValue(Connection::AdoptStateForInternalUse(this));
  }
  Release();
}

}  // namespace kev::net::internal
