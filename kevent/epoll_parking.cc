// EpollPoller's parked operations: their records (pooled, indexed by completion for Cancel), the
// per-fd FIFOs they wait in, each fd's epoll registration (lazy deregistration, reuse without
// epoll_ctl, edge-triggered socket receives) and the handling of epoll's readiness reports,
// which retry them. The design is in epoll_poller.h (FdState's comment) and docs/pollers.md; the
// rest of the backend is in epoll_poller.cc, its receive pool in epoll_receive_pool.cc.
#include "kevent/epoll_poller.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

namespace kev::internal {
namespace {

constexpr uint32_t kAlways = EPOLLERR | EPOLLHUP;  // reported whatever the interest
constexpr size_t kOpsPerChunk = 64;

}  // namespace

// --- Parking ---------------------------------------------------------------------------------

bool EpollPoller::HasParked(int fd, uint32_t direction) const {
  if (fd < 0 || static_cast<size_t>(fd) >= fds_.size()) return false;
  for (const Op* op = fds_[fd].head; op != nullptr; op = op->next) {
    if (op->kind != Kind::kPoll && (op->events & direction) != 0) return true;
  }
  return false;
}

uint32_t EpollPoller::ParkedMask(int fd) const {
  uint32_t mask = 0;
  for (const Op* op = fds_[fd].head; op != nullptr; op = op->next) mask |= op->events;
  return mask;
}

// Appends `op` to `fd`'s FIFO and makes sure epoll watches `events`. 0, or -errno (EPERM: the
// fd cannot be polled) with `op` left unparked.
int EpollPoller::Park(Op* op, int fd, uint32_t events) {
  if (fd < 0) return -EBADF;
  if (static_cast<size_t>(fd) >= fds_.size()) fds_.resize(fd + 1);  // fds are dense
  FdState& s = fds_[fd];
  bool was_empty = s.head == nullptr;
  // Not a pooled receive that found the pool empty: it parked without trying its recv, so
  // bytes may be waiting with their edge already reported; epoll_ctl re-checks readiness.
  if (was_empty && s.registered && s.mask == events &&
      (op->kind == Kind::kRecv || (op->kind == Kind::kRecvSelect && !reserve_.empty()))) {
    // A socket receive reuses the registration without epoll_ctl, unverified (see FdState).
    if (s.unverified_seq == 0) {
      s.unverified_seq = ++unverified_seq_;
      unverified_.push_back({fd, s.unverified_seq});  // amortised: the vector keeps capacity
    }
  } else {
    // Any other empty list re-issues epoll_ctl (see FdState); a busy one only when it grows,
    // or when an operation that is not a receive joins an edge-triggered registration made for
    // one (a PollAdd must be reported at every Wait() while the fd is ready: level-triggered).
    const bool recv = op->kind == Kind::kRecv || op->kind == Kind::kRecvSelect;
    if (was_empty || !s.registered || (events & ~s.mask) != 0 || (s.edge && !recv)) {
      int r =
          was_empty ? Control(fd, events, recv && events == EPOLLIN) : Control(fd, s.mask | events);
      if (r < 0) return r;
    }
  }
  op->prev = s.tail;
  op->next = nullptr;
  (s.tail != nullptr ? s.tail->next : s.head) = op;
  s.tail = op;
  op->parked_fd = fd;
  op->where = Where::kFd;
  return 0;
}

int EpollPoller::Control(int fd, uint32_t mask, bool edge) {
  FdState& s = fds_[fd];
  epoll_event ev{};
  // Level-triggered (a multishot PollAdd is reported at every Wait()), except a drained
  // socket's receive (FdState::edge).
  ev.events = mask | (edge ? EPOLLET : 0u);
  ev.data.u64 = static_cast<uint64_t>(fd);
  int r = epoll_ctl(epoll_fd_, s.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
  if (r < 0 && errno == ENOENT) r = epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);  // closed
  if (r < 0 && errno == EEXIST) r = epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
  if (r < 0) return -errno;
  s.registered = true;
  s.mask = mask;
  s.edge = edge;
  s.unverified_seq = 0;  // just registered: nothing to verify
  return 0;
}

int64_t EpollPoller::VerifyReused(int64_t now_ns) {
  for (size_t i = unverified_unstamped_; i < unverified_.size(); ++i) {
    unverified_[i].since = now_ns;
  }
  unverified_unstamped_ = unverified_.size();
  int64_t due_in = -1;
  while (unverified_head_ < unverified_.size()) {
    const Unverified u = unverified_[unverified_head_];
    FdState& s = fds_[u.fd];
    if (s.unverified_seq == u.seq) {  // still unconfirmed
      if (now_ns - u.since < kVerifyAfterNs) {
        due_in = u.since + kVerifyAfterNs - now_ns;
        break;
      }
      s.unverified_seq = 0;
      // Re-registers (MOD, or ADD when the kernel dropped it); fails the parked operations if
      // even that is refused (the fd is gone).
      if (s.head != nullptr) {
        if (int r = Control(u.fd, s.mask, s.edge); r < 0) {
          while (Op* op = fds_[u.fd].head) Finish(op, r);
        }
      }
    }
    ++unverified_head_;
  }
  if (unverified_head_ == unverified_.size()) {
    unverified_.clear();
    unverified_head_ = unverified_unstamped_ = 0;
  } else if (unverified_head_ >= 4096 && 2 * unverified_head_ >= unverified_.size()) {
    // Never empty under steady load: drop the consumed front now and then.
    unverified_.erase(unverified_.begin(), unverified_.begin() + unverified_head_);
    unverified_unstamped_ -= unverified_head_;
    unverified_head_ = 0;
  }
  return due_in;
}

void EpollPoller::Deregister(int fd) {
  FdState& s = fds_[fd];
  s.recv_drained = false;
  s.unverified_seq = 0;
  if (!s.registered) return;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);  // ENOENT/EBADF: already gone; fine
  s.registered = false;
  s.mask = 0;
}

void EpollPoller::Unpark(Op* op) {
  switch (op->where) {
    case Where::kFd: {  // lazy: the registration shrinks when epoll next reports the fd
      FdState& s = fds_[op->parked_fd];
      (op->prev != nullptr ? op->prev->next : s.head) = op->next;
      (op->next != nullptr ? op->next->prev : s.tail) = op->prev;
      op->prev = op->next = nullptr;
      op->parked_fd = -1;
      break;
    }
    case Where::kTimer:
      timers_.Remove(op);
      break;
    case Where::kRetry:
      retry_.erase(std::find(retry_.begin(), retry_.end(), op));
      break;
    case Where::kNowhere:
      break;
  }
  op->where = Where::kNowhere;
}

// --- Readiness reports -----------------------------------------------------------------------

void EpollPoller::NoteRecv(const Op& op, int r) {
  if (op.fd < 0) return;
  if (static_cast<size_t>(op.fd) >= fds_.size()) fds_.resize(op.fd + 1);
  fds_[op.fd].recv_drained = r > 0 && static_cast<size_t>(r) < op.len;
}

void EpollPoller::OnFdEvents(int fd, uint32_t revents) {
  if (static_cast<size_t>(fd) >= fds_.size()) return;
  fds_[fd].unverified_seq = 0;  // reported: the registration is alive
  uint32_t wanted = ParkedMask(fd);
  bool in_blocked = false;
  bool out_blocked = false;
  // fds_ may grow inside the loop (a splice re-parking on its other end): index, don't hold.
  for (Op* op = fds_[fd].head; op != nullptr;) {
    Op* next = op->next;
    if (op->kind == Kind::kPoll) {
      if (uint32_t mask = revents & (op->events | kAlways); mask != 0) {
        if (op->multishot) {
          Queue(op->c, static_cast<int32_t>(mask), kCompletionMore);
        } else {
          Finish(op, static_cast<int32_t>(mask));
        }
      }
    } else if ((revents & (op->events | kAlways)) != 0) {
      bool& blocked = (op->events & EPOLLIN) != 0 ? in_blocked : out_blocked;
      if (!blocked) {
        int r = (op->kind == Kind::kAccept && op->multishot) ? AttemptAcceptLoop(*op)
                                                             : Attempt(*op, true);
        if (op->kind == Kind::kRecv || op->kind == Kind::kRecvSelect) NoteRecv(*op, r);
        if (r != kWouldBlock) {
          Finish(op, r);
        } else {
          blocked = true;  // later operations in this direction would block too
          if (op->kind == Kind::kSplice) {
            Unpark(op);
            OnSpliceBlocked(op);  // the other end may be the one to wait for now
          }
        }
      }
    }
    op = next;
  }
  // Reported with nothing parked, or for bits nobody wants (POLLOUT after the last send
  // finished): shrink the registration now, or level-triggering would repeat it forever.
  if (wanted == 0 || (revents & kPollBits & ~wanted) != 0) {
    uint32_t mask = ParkedMask(fd);
    if (fds_[fd].head == nullptr) {
      Deregister(fd);
    } else if (mask != fds_[fd].mask) {
      Control(fd, mask);
    }
  }
}

// --- Operation records -----------------------------------------------------------------------

void EpollPoller::Finish(Op* op, int32_t result) {
  Unpark(op);
  Queue(op->c, result, std::exchange(attempt_flags_, 0));  // a kRecvSelect's buffer, if any
  UnindexOp(op);
  FreeOp(op);
}

EpollPoller::Op* EpollPoller::NewOp(const Op& proto) {
  if (free_ops_.empty()) {  // the pool grows in chunks; records are reused, never freed early
    op_chunks_.push_back(std::make_unique<Op[]>(kOpsPerChunk));
    for (size_t i = 0; i < kOpsPerChunk; ++i) free_ops_.push_back(&op_chunks_.back()[i]);
  }
  Op* op = free_ops_.back();
  free_ops_.pop_back();
  *op = proto;
  op->where = Where::kNowhere;
  op->prev = op->next = nullptr;
  IndexOp(op);
  return op;
}

void EpollPoller::FreeOp(Op* op) { free_ops_.push_back(op); }

void EpollPoller::IndexOp(Op* op) {
  // Only parked operations are indexed; the map keeps its capacity, so this rarely allocates.
  auto [it, inserted] = by_completion_.try_emplace(op->c, op);
  op->next_same_completion = inserted ? nullptr : it->second;
  if (!inserted) it->second = op;
}

void EpollPoller::UnindexOp(Op* op) {
  auto it = by_completion_.find(op->c);
  if (it == by_completion_.end()) return;
  Op** link = &it->second;
  while (*link != nullptr && *link != op) link = &(*link)->next_same_completion;
  if (*link == op) *link = op->next_same_completion;
  if (it->second == nullptr) by_completion_.erase(it);
}

}  // namespace kev::internal
