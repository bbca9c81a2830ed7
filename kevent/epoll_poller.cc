// EpollPoller: completion operations emulated with readiness plus the plain syscall. This file:
// creation and destruction, the operation calls, their attempts (the syscalls), Wait() and
// delivery. Parked operations and their epoll registrations are in epoll_parking.cc, the
// receive pool's memory in epoll_receive_pool.cc. See epoll_poller.h for the design and
// docs/pollers.md for the per-operation table.
#include "kevent/epoll_poller.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <utility>

namespace kev::internal {
namespace {

constexpr size_t kMaxIo = 0x7ffff000;  // the kernel's MAX_RW_COUNT: results fit an int32_t
constexpr uint64_t kWakeKey = ~uint64_t{0};
// A multishot Accept takes at most this many connections per readiness report, so one
// flooded listener cannot starve the other fds of a Wait().
constexpr int kAcceptBatch = 64;

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// The syscall's result, or -errno (read right after the call).
int32_t Result(long r) { return r >= 0 ? static_cast<int32_t>(r) : -errno; }

// recv(2)/send(2) without glibc's wrappers: those are cancellation points, which in a process
// with more than one thread (every kev app) wrap each call in an atomic enable/disable of
// asynchronous cancellation (~2% of the echo server's time on this backend). kev never uses
// pthread_cancel. Both return -1 with errno set, as the wrappers do.
long SysRecv(int fd, void* buf, size_t len, int flags) {
  return syscall(SYS_recvfrom, fd, buf, len, flags, nullptr, nullptr);
}
long SysSend(int fd, const void* buf, size_t len, int flags) {
  return syscall(SYS_sendto, fd, buf, len, flags, nullptr, 0);
}

bool IsBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  return flags >= 0 && (flags & O_NONBLOCK) == 0;
}

}  // namespace

std::unique_ptr<Poller> EpollPoller::Create(const PollerOptions& options, int* error) {
  int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) {
    *error = -errno;
    return nullptr;
  }
  int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeKey;
  if (wake_fd < 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &ev) < 0) {
    *error = -errno;
    if (wake_fd >= 0) close(wake_fd);
    close(epoll_fd);
    return nullptr;
  }
  unsigned max_events = std::clamp(options.entries, 64u, 8192u);
  return std::unique_ptr<Poller>(new EpollPoller(epoll_fd, wake_fd, max_events, options));
}

EpollPoller::EpollPoller(int epoll_fd, int wake_fd, unsigned max_events,
                         const PollerOptions& options)
    : epoll_fd_(epoll_fd),
      wake_fd_(wake_fd),
      events_(max_events),
      pool_buffer_count_(std::bit_ceil(std::clamp(options.recv_buffer_count, 1u, 32768u))),
      pool_buffer_size_(std::clamp(options.recv_buffer_size, 1u, 1u << 24)) {}

EpollPoller::~EpollPoller() {
  destroying_ = true;  // from here on, new submissions complete with -ECANCELED unperformed
  std::vector<Op*> parked;
  while (!by_completion_.empty() || !ready_.empty()) {
    parked.clear();
    for (const auto& [c, head] : by_completion_) {
      for (Op* op = head; op != nullptr; op = op->next_same_completion) parked.push_back(op);
    }
    for (Op* op : parked) Finish(op, -ECANCELED);
    Dispatch();
  }
  if (pool_ != nullptr) munmap(pool_, size_t{pool_buffer_count_} * pool_buffer_size_);
  close(wake_fd_);
  close(epoll_fd_);
}

// --- Submission ------------------------------------------------------------------------------

void EpollPoller::PollAdd(int fd, uint32_t poll_events, bool multishot, IoCompletion* c) {
  if (Refuse(c)) return;
  ++in_flight_;
  Op proto{.kind = Kind::kPoll, .multishot = multishot, .c = c, .fd = fd};
  proto.events = poll_events & kPollBits;
  Op* op = NewOp(proto);
  int r = Park(op, fd, op->events);
  // epoll refuses regular files (EPERM); poll(2) calls them always ready, and so does
  // io_uring, whose poll on them completes once, finally. Do the same.
  if (r == -EPERM) r = static_cast<int>((POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM) & op->events);
  if (r != 0) Finish(op, r);
}

// Write/Send/SendMsg/Connect arguments are stored without const but only ever read from.
void EpollPoller::Read(int fd, std::span<std::byte> buf, int64_t offset, IoCompletion* c) {
  Start({.kind = Kind::kRead,
         .c = c,
         .fd = fd,
         .events = EPOLLIN,
         .data = buf.data(),
         .len = std::min(buf.size(), kMaxIo),
         .offset = offset});
}

void EpollPoller::Write(int fd, std::span<const std::byte> buf, int64_t offset, IoCompletion* c) {
  Start({.kind = Kind::kWrite,
         .c = c,
         .fd = fd,
         .events = EPOLLOUT,
         .data = const_cast<std::byte*>(buf.data()),
         .len = std::min(buf.size(), kMaxIo),
         .offset = offset});
}

void EpollPoller::Recv(int fd, std::span<std::byte> buf, int flags, IoCompletion* c) {
  Start({.kind = Kind::kRecv,
         .c = c,
         .fd = fd,
         .events = EPOLLIN,
         .data = buf.data(),
         .len = std::min(buf.size(), kMaxIo),
         .flags = flags});
}

void EpollPoller::Send(int fd, std::span<const std::byte> buf, int flags, IoCompletion* c) {
  Start({.kind = Kind::kSend,
         .c = c,
         .fd = fd,
         .events = EPOLLOUT,
         .data = const_cast<std::byte*>(buf.data()),
         .len = std::min(buf.size(), kMaxIo),
         .flags = flags});
}

void EpollPoller::RecvMsg(int fd, msghdr* msg, int flags, IoCompletion* c) {
  Start({.kind = Kind::kRecvMsg, .c = c, .fd = fd, .events = EPOLLIN, .flags = flags, .msg = msg});
}

void EpollPoller::SendMsg(int fd, const msghdr* msg, int flags, IoCompletion* c) {
  Start({.kind = Kind::kSendMsg,
         .c = c,
         .fd = fd,
         .events = EPOLLOUT,
         .flags = flags,
         .msg = const_cast<msghdr*>(msg)});
}

void EpollPoller::Accept(int fd, sockaddr* addr, socklen_t* addrlen, int flags, bool multishot,
                         IoCompletion* c) {
  // One fcntl per Accept (not per connection): accept4 on a blocking listener would block the
  // loop, so such a listener is only accepted from after epoll reports it.
  Start({.kind = Kind::kAccept,
         .multishot = multishot,
         .fd_blocking = IsBlocking(fd),
         .c = c,
         .fd = fd,
         .events = EPOLLIN,
         .flags = flags,
         .addr = addr,
         .addrlen = addrlen});
}

void EpollPoller::Connect(int fd, const sockaddr* addr, socklen_t addrlen, IoCompletion* c) {
  if (IsBlocking(fd)) {  // a blocking connect cannot be made asynchronous; it runs here
    if (!Refuse(c)) RunSync(c, Result(connect(fd, addr, addrlen)));
    return;
  }
  Start({.kind = Kind::kConnect,
         .c = c,
         .fd = fd,
         .events = EPOLLOUT,
         .addr = const_cast<sockaddr*>(addr),
         .connect_len = addrlen});
}

void EpollPoller::Splice(int fd_in, int64_t off_in, int fd_out, int64_t off_out, unsigned len,
                         unsigned flags, IoCompletion* c) {
  Start({.kind = Kind::kSplice,
         .c = c,
         .fd = fd_in,
         .len = std::min<size_t>(len, kMaxIo),
         .offset = off_in,
         .flags = static_cast<int>(flags),
         .fd_out = fd_out,
         .off_out = off_out});
}

void EpollPoller::OpenAt(int dirfd, const char* path, int flags, mode_t mode, IoCompletion* c) {
  if (!Refuse(c)) RunSync(c, Result(openat(dirfd, path, flags, mode)));
}

void EpollPoller::Statx(int dirfd, const char* path, int flags, unsigned mask, struct statx* out,
                        IoCompletion* c) {
  if (!Refuse(c)) RunSync(c, Result(statx(dirfd, path, flags, mask, out)));
}

void EpollPoller::Fsync(int fd, bool datasync, IoCompletion* c) {
  if (!Refuse(c)) RunSync(c, Result(datasync ? fdatasync(fd) : fsync(fd)));
}

void EpollPoller::Close(int fd, IoCompletion* c) {
  if (Refuse(c)) return;
  if (fd >= 0 && static_cast<size_t>(fd) < fds_.size()) {
    while (Op* op = fds_[fd].head) Finish(op, -ECANCELED);
    Deregister(fd);  // before close: afterwards the fd number may name another file
  }
  for (size_t i = 0; i < retry_.size();) {  // splices waiting for a retry on either end
    Op* op = retry_[i];
    if (op->fd == fd || op->fd_out == fd) {
      Finish(op, -ECANCELED);  // removes it from retry_
    } else {
      ++i;
    }
  }
  RunSync(c, Result(close(fd)));
}

void EpollPoller::Timeout(std::chrono::nanoseconds duration, IoCompletion* c) {
  if (Refuse(c)) return;
  ++in_flight_;
  Op* op = NewOp(Op{.kind = Kind::kTimeout, .c = c});
  op->deadline_ns = NowNs() + std::max<int64_t>(duration.count(), 0);
  op->where = Where::kTimer;
  timers_.Push(op);
}

void EpollPoller::Cancel(IoCompletion* target) {
  auto it = by_completion_.find(target);
  if (it == by_completion_.end()) return;  // nothing parked: finished or never submitted
  Op* op = it->second;
  while (op != nullptr) {
    Op* next = op->next_same_completion;
    Finish(op, -ECANCELED);
    op = next;
  }
}

void EpollPoller::Wake() noexcept {
  // Only the first Wake() since the last drain writes: the eventfd is already readable.
  if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
    uint64_t one = 1;
    ssize_t r = write(wake_fd_, &one, sizeof one);  // async-signal-safe
    (void)r;  // EAGAIN only at a counter of 2^64-2: then it is readable anyway
  }
}

bool EpollPoller::Refuse(IoCompletion* c) {
  if (!destroying_) return false;
  ++in_flight_;
  Queue(c, -ECANCELED, 0);
  return true;
}

void EpollPoller::RunSync(IoCompletion* c, int32_t result) {
  ++in_flight_;
  Queue(c, result, 0);  // delivered by the next Wait(), never from inside the submitting call
}

// Tries a non-pollable-or-ready operation at once; parks it otherwise.
void EpollPoller::Start(Op proto) {
  if (Refuse(proto.c)) return;
  ++in_flight_;
  int r = kWouldBlock;
  // Never overtake an operation already parked in the same direction (keeps sends in order);
  // a blocking listener is not accepted from before epoll says it is ready.
  // A socket whose last recv came back short is (almost surely) empty: parking without the
  // attempt saves a recv that would fail with EAGAIN (about half of them in an echo workload).
  // Safe because registrations are level-triggered: data already there is reported at once.
  const bool is_recv = proto.kind == Kind::kRecv || proto.kind == Kind::kRecvSelect;
  const bool drained = is_recv && proto.fd >= 0 && static_cast<size_t>(proto.fd) < fds_.size() &&
                       fds_[proto.fd].recv_drained;
  if (!drained && !proto.fd_blocking && !HasParked(proto.fd, proto.events)) {
    r = (proto.kind == Kind::kAccept && proto.multishot) ? AttemptAcceptLoop(proto)
                                                         : Attempt(proto, false);
    if (is_recv) NoteRecv(proto, r);
  }
  if (r != kWouldBlock) {
    Queue(proto.c, r, std::exchange(attempt_flags_, 0));
    return;
  }
  Op* op = NewOp(proto);
  if (op->kind == Kind::kSplice) {
    OnSpliceBlocked(op);
  } else {
    ParkOrRunBlocking(op);
  }
}

void EpollPoller::ParkOrRunBlocking(Op* op) {
  int r = Park(op, op->fd, op->events);
  if (r == 0) return;
  // EPERM: epoll cannot watch this fd (a regular file), so it is never "not ready": run the
  // operation blocking, as a regular-file read would under io_uring's io-wq.
  Finish(op, r == -EPERM ? RunBlocking(*op) : r);
}

int EpollPoller::Attempt(Op& op, bool after_readiness) {
  long r = 0;
  switch (op.kind) {
    case Kind::kRead:
    case Kind::kWrite: {
      iovec iov{op.data, op.len};
      auto io = [&](int64_t off) {
        return op.kind == Kind::kRead ? preadv2(op.fd, &iov, 1, off, RWF_NOWAIT)
                                      : pwritev2(op.fd, &iov, 1, off, RWF_NOWAIT);
      };
      r = io(op.offset);
      if (r < 0 && errno == ESPIPE && op.offset != -1) {
        op.offset = -1;  // io_uring ignores the offset of a stream; so do we
        r = io(-1);
      }
      if (r >= 0) return static_cast<int>(r);
      if (errno == EAGAIN) return kWouldBlock;
      // No RWF_NOWAIT support for this file: wait for readiness, then use the plain call
      // (non-pollable files end up in RunBlocking instead).
      if (errno == EOPNOTSUPP) return after_readiness ? RunBlocking(op) : kWouldBlock;
      return -errno;
    }
    case Kind::kRecv:
      r = SysRecv(op.fd, op.data, op.len, op.flags | MSG_DONTWAIT);
      break;
    case Kind::kRecvSelect: {
      // The buffer is taken only now, with the socket (probably) readable: a waiting receive
      // holds none. An empty pool fails like io_uring's ring: when data is there to receive.
      if (reserve_.empty()) return after_readiness ? -ENOBUFS : kWouldBlock;
      uint16_t id = reserve_.Top();
      r = SysRecv(op.fd, SelectedBuffer(id).data(), pool_buffer_size_, op.flags | MSG_DONTWAIT);
      if (r > 0) {  // the buffer stays in the pool unless bytes landed in it
        reserve_.Pop();
        attempt_flags_ = kCompletionBuffer | (uint32_t{id} << 16);
      }
      break;
    }
    case Kind::kSend:
      r = SysSend(op.fd, op.data, op.len, op.flags | MSG_DONTWAIT);
      break;
    case Kind::kRecvMsg:
      r = recvmsg(op.fd, op.msg, op.flags | MSG_DONTWAIT);
      break;
    case Kind::kSendMsg:
      r = sendmsg(op.fd, op.msg, op.flags | MSG_DONTWAIT);
      break;
    case Kind::kAccept:
      r = accept4(op.fd, op.addr, op.addrlen, op.flags);
      break;
    case Kind::kConnect:
      if (op.connect_started) {  // epoll said writable: the handshake is over, one way or other
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(op.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
        return -err;
      }
      r = connect(op.fd, op.addr, op.connect_len);
      if (r < 0 && (errno == EINPROGRESS || errno == EINTR)) {  // EINTR: it goes on regardless
        op.connect_started = true;
        return kWouldBlock;
      }
      break;
    case Kind::kSplice: {
      loff_t off_in = op.offset;
      loff_t off_out = op.off_out;
      r = splice(op.fd, op.offset == -1 ? nullptr : &off_in, op.fd_out,
                 op.off_out == -1 ? nullptr : &off_out, op.len,
                 static_cast<unsigned>(op.flags) | SPLICE_F_NONBLOCK);
      break;
    }
    case Kind::kPoll:
    case Kind::kTimeout:
      return -EINVAL;  // never attempted
  }
  if (r >= 0) return static_cast<int>(r);
  return errno == EAGAIN ? kWouldBlock : -errno;
}

// Multishot Accept: takes connections until EAGAIN (or the batch is spent), each delivered
// with kCompletionMore. Returns kWouldBlock to stay parked, or the final error.
int EpollPoller::AttemptAcceptLoop(Op& op) {
  for (int i = 0; i < kAcceptBatch; ++i) {
    int r = Attempt(op, true);
    if (r < 0) return r;  // kWouldBlock included
    Queue(op.c, r, kCompletionMore);
    if (op.fd_blocking) break;  // one per readiness report: the next accept could block
  }
  return kWouldBlock;  // level-triggered: epoll reports the listener again if more wait
}

int EpollPoller::RunBlocking(Op& op) {
  switch (op.kind) {
    case Kind::kRead:
      return Result(op.offset == -1 ? read(op.fd, op.data, op.len)
                                    : pread(op.fd, op.data, op.len, op.offset));
    case Kind::kWrite:
      return Result(op.offset == -1 ? write(op.fd, op.data, op.len)
                                    : pwrite(op.fd, op.data, op.len, op.offset));
    default: {  // sockets are always pollable: this is a misuse, and the call says why
      int r = Attempt(op, true);
      return r == kWouldBlock ? -EAGAIN : r;
    }
  }
}

// A splice said EAGAIN: one poll(2) finds the end that is not ready, and the operation parks on
// it (a pipe end, or a socket).
void EpollPoller::OnSpliceBlocked(Op* op) {
  pollfd ends[2] = {{op->fd, POLLIN, 0}, {op->fd_out, POLLOUT, 0}};
  if (poll(ends, 2, 0) < 0) {
    Finish(op, -errno);
    return;
  }
  constexpr short kDone = POLLERR | POLLHUP | POLLNVAL;
  int r;
  if ((ends[0].revents & (POLLIN | kDone)) == 0) {
    op->events = EPOLLIN;
    r = Park(op, op->fd, EPOLLIN);
  } else if ((ends[1].revents & (POLLOUT | kDone)) == 0) {
    op->events = EPOLLOUT;
    r = Park(op, op->fd_out, EPOLLOUT);
  } else {
    op->where = Where::kRetry;  // both ends look ready: try again at the next Wait()
    retry_.push_back(op);
    return;
  }
  if (r != 0) Finish(op, r);
}

// --- Driving ---------------------------------------------------------------------------------

void EpollPoller::ExpireTimers(int64_t now_ns) {
  while (!timers_.empty() && timers_.top()->deadline_ns <= now_ns) Finish(timers_.top(), -ETIME);
}

int EpollPoller::Wait(std::optional<std::chrono::nanoseconds> timeout) {
  int64_t timeout_ns = timeout ? std::max<int64_t>(timeout->count(), 0) : -1;
  if (unverified_head_ != unverified_.size()) {  // one clock read per Wait() while any waits
    // First: a failed re-registration queues results, which make this Wait() only look.
    if (int64_t due_in = VerifyReused(NowNs()); due_in >= 0 && timeout_ns != 0) {
      timeout_ns = timeout_ns < 0 ? due_in : std::min(timeout_ns, due_in);
    }
  }
  if (!ready_.empty() || !retry_.empty()) timeout_ns = 0;  // work in hand: only look
  if (!timers_.empty() && timeout_ns != 0) {
    int64_t until = std::max<int64_t>(timers_.top()->deadline_ns - NowNs(), 0);
    timeout_ns = timeout_ns < 0 ? until : std::min(timeout_ns, until);
  }
  if (pool_ != nullptr && timeout_ns != 0) {
    timeout_ns = Decay(timeout_ns);  // about to sleep: no cost on a busy shard's turns
  }
  timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000),
              static_cast<long>(timeout_ns % 1'000'000'000)};
  int n = epoll_pwait2(epoll_fd_, events_.data(), static_cast<int>(events_.size()),
                       timeout_ns < 0 ? nullptr : &ts, nullptr);
  if (n < 0 && errno == ENOSYS) {  // kernel < 5.11: millisecond resolution, rounded up
    int ms = timeout_ns < 0
                 ? -1
                 : static_cast<int>(std::min<int64_t>((timeout_ns + 999'999) / 1'000'000, INT_MAX));
    n = epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), ms);
  }
  if (n < 0) {
    if (errno != EINTR) return -errno;
    n = 0;  // a signal ends the wait early; still deliver what is ready
  }
  for (int i = 0; i < n; ++i) {
    uint64_t key = events_[i].data.u64;
    if (key == kWakeKey) {
      uint64_t count;
      ssize_t r = read(wake_fd_, &count, sizeof count);
      (void)r;  // EAGAIN: a concurrent drain got it; nothing to do
      // After the read: a Wake() racing with it is absorbed by this Wait(), which returns.
      wake_pending_.store(false, std::memory_order_release);
    } else {
      OnFdEvents(static_cast<int>(key), events_[i].events);
    }
  }
  if (!retry_.empty()) {
    std::vector<Op*> retry;
    retry.swap(retry_);
    for (Op* op : retry) {
      op->where = Where::kNowhere;
      int r = Attempt(*op, true);
      if (r == kWouldBlock) {
        OnSpliceBlocked(op);
      } else {
        Finish(op, r);
      }
    }
  }
  if (!timers_.empty()) ExpireTimers(NowNs());
  return Dispatch();
}

int EpollPoller::Dispatch() {
  // Results queued by these callbacks wait for the next Wait(), as io_uring submissions do.
  dispatching_.swap(ready_);
  int n = 0;
  for (const Ready& r : dispatching_) {
    if ((r.flags & kCompletionMore) == 0) --in_flight_;
    r.c->OnComplete(r.result, r.flags);
    ++n;
  }
  dispatching_.clear();
  return n;
}

}  // namespace kev::internal
