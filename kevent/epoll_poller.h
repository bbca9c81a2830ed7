// EpollPoller: the readiness-based Poller (the baseline, and the fallback when io_uring is
// unavailable). Internal to //kevent:poller; use Poller::Create(PollerBackend::kEpoll).
//
// How it emulates completion operations (docs/pollers.md has the full table):
//   * Every operation is tried at once, without blocking (MSG_DONTWAIT, RWF_NOWAIT,
//     SPLICE_F_NONBLOCK). A result is queued and delivered by the next Wait().
//   * On EAGAIN the operation is parked on its fd. Each fd has one epoll registration whose
//     interest is the union of its parked operations' directions (level-triggered, except a
//     drained socket's receive: see FdState); when epoll reports the fd, the parked operations
//     are retried in FIFO order per direction, and a new operation never overtakes a parked one
//     in the same direction (so sends stay in order).
//   * An fd that epoll cannot watch (EPERM: regular files) is never "not ready": its Read/Write
//     run blocking, like OpenAt/Statx/Fsync/Close always do, and complete at the next Wait().
//   * Timeouts sit in a binary heap whose earliest deadline bounds epoll_pwait2's timeout.
//   * Wake() writes an eventfd that is registered with the epoll set.
//   * RecvBufferSelect takes a buffer from the pool only when the socket is readable, most
//     recently returned first; when the shard idles, free buffers the load has not needed for
//     kDecayInterval give their pages back (the policy io_uring's pool uses: buffer_reserve.h).
//
// Files: epoll_poller.cc (creation, the operation calls, attempts, Wait), epoll_parking.cc
// (parked operations, their fds' registrations, epoll's reports), epoll_receive_pool.cc (the
// RecvBufferSelect pool's memory and its idle decay).
//
// Threading: as Poller; only Wake() is thread-safe.
#ifndef KEV_KEVENT_EPOLL_POLLER_H_
#define KEV_KEVENT_EPOLL_POLLER_H_

#include <poll.h>
#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "kevent/buffer_reserve.h"
#include "kevent/deadline_heap.h"
#include "kevent/poller.h"

namespace kev::internal {

class EpollPoller final : public Poller {
 public:
  // Returns nullptr and sets *error (negative errno) if epoll_create1 or eventfd fail.
  static std::unique_ptr<Poller> Create(const PollerOptions& options, int* error);
  ~EpollPoller() override;

  PollerBackend backend() const noexcept override { return PollerBackend::kEpoll; }
  std::string_view name() const noexcept override { return "epoll"; }

  void PollAdd(int fd, uint32_t poll_events, bool multishot, IoCompletion* c) override;
  void Read(int fd, std::span<std::byte> buf, int64_t offset, IoCompletion* c) override;
  void Write(int fd, std::span<const std::byte> buf, int64_t offset, IoCompletion* c) override;
  void Recv(int fd, std::span<std::byte> buf, int flags, IoCompletion* c) override;
  void Send(int fd, std::span<const std::byte> buf, int flags, IoCompletion* c) override;
  void RecvMsg(int fd, msghdr* msg, int flags, IoCompletion* c) override;
  void SendMsg(int fd, const msghdr* msg, int flags, IoCompletion* c) override;
  void Accept(int fd, sockaddr* addr, socklen_t* addrlen, int flags, bool multishot,
              IoCompletion* c) override;
  void Connect(int fd, const sockaddr* addr, socklen_t addrlen, IoCompletion* c) override;
  void Splice(int fd_in, int64_t off_in, int fd_out, int64_t off_out, unsigned len, unsigned flags,
              IoCompletion* c) override;
  void OpenAt(int dirfd, const char* path, int flags, mode_t mode, IoCompletion* c) override;
  void Statx(int dirfd, const char* path, int flags, unsigned mask, struct statx* out,
             IoCompletion* c) override;
  void Fsync(int fd, bool datasync, IoCompletion* c) override;
  void Close(int fd, IoCompletion* c) override;
  void Timeout(std::chrono::nanoseconds duration, IoCompletion* c) override;
  void Cancel(IoCompletion* target) override;
  bool SupportsBufferSelect() const noexcept override { return true; }
  void RecvBufferSelect(int fd, int flags, IoCompletion* c) override;
  std::span<std::byte> SelectedBuffer(uint16_t id) noexcept override {
    return {pool_ + size_t{id} * pool_buffer_size_, pool_buffer_size_};
  }
  // On top of the reserve, the next to be used; no syscall.
  void ReturnBuffer(uint16_t id) noexcept override { reserve_.Push(id); }
  size_t BuffersAvailable() const noexcept override { return reserve_.size(); }
  int Wait(std::optional<std::chrono::nanoseconds> timeout) override;
  void Wake() noexcept override;
  size_t InFlight() const noexcept override { return in_flight_; }

 private:
  enum class Kind : uint8_t {
    kPoll,
    kRead,
    kWrite,
    kRecv,
    kRecvSelect,  // Recv into a pool buffer taken when the socket is readable
    kSend,
    kRecvMsg,
    kSendMsg,
    kAccept,
    kConnect,
    kSplice,
    kTimeout,
  };

  // Where a parked operation waits.
  enum class Where : uint8_t { kNowhere, kFd, kTimer, kRetry };

  // A parked operation (one that could not finish at once). Operations that finish at once
  // never get one. Pooled: parking allocates only when the pool is empty.
  struct Op {
    Kind kind = Kind::kRead;
    Where where = Where::kNowhere;
    bool multishot = false;
    bool fd_blocking = false;      // Accept/Connect on a blocking socket: poll first
    bool connect_started = false;  // Connect got EINPROGRESS; completion comes from SO_ERROR
    IoCompletion* c = nullptr;
    int fd = -1;          // the operation's fd (Splice: fd_in)
    int parked_fd = -1;   // the fd whose list holds it (Splice may wait on fd_out)
    uint32_t events = 0;  // PollAdd: the poll mask; others: EPOLLIN or EPOLLOUT
    Op* prev = nullptr;   // in the parked fd's FIFO
    Op* next = nullptr;
    Op* next_same_completion = nullptr;  // chain in by_completion_
    size_t heap_index = 0;               // Timeout: position in timers_
    int64_t deadline_ns = 0;             // Timeout: CLOCK_MONOTONIC
    // Arguments (by kind).
    std::byte* data = nullptr;  // Read/Recv buffer; Write/Send buffer (const_cast back)
    size_t len = 0;
    int64_t offset = -1;  // Read/Write; Splice: off_in
    int flags = 0;        // msg flags / accept flags / splice flags
    msghdr* msg = nullptr;
    sockaddr* addr = nullptr;  // Accept out; Connect in (const_cast back)
    socklen_t* addrlen = nullptr;
    socklen_t connect_len = 0;
    int fd_out = -1;
    int64_t off_out = -1;
  };

  // Deregistration is lazy: when the last parked operation leaves, the registration stays (the
  // next operation on the fd usually parks again at once) until epoll reports the fd with
  // nothing parked. A socket receive parking on an fd with an empty list and the same interest
  // reuses the registration without epoll_ctl (the echo hot path: one syscall of three per
  // message). The kernel drops a registration when the fd is closed behind our back (not
  // through Close()), and a new file with the same number would then wait forever; so such a
  // reuse stays "unverified" until epoll reports the fd, and one still unverified after
  // kVerifyAfterNs is re-registered with epoll_ctl (which repairs a dropped one). Every other
  // park on an empty list re-issues epoll_ctl at once.
  struct FdState {
    Op* head = nullptr;  // parked operations, FIFO
    Op* tail = nullptr;
    uint32_t mask = 0;            // the interest registered with epoll
    bool registered = false;      // whether epoll has this fd
    bool recv_drained = false;    // the last recv returned less than asked: queue empty
    uint64_t unverified_seq = 0;  // a reuse not yet confirmed (its unverified_ entry), or 0
    // Registered EPOLLET: an fd whose list was empty when a socket receive (EPOLLIN) parked.
    // A receive parks only after one came back short or EAGAIN, so the socket was drained and
    // the next arrival is an edge (a pooled one that found the pool empty parks untried: it
    // re-issues epoll_ctl, which reports bytes already there); level-triggering would also put the
    // fd back on epoll's ready list after each report, to be polled again (tcp_poll) at the next
    // epoll_wait. Any other interest re-registers level-triggered.
    bool edge = false;
  };
  // A registration reused without epoll_ctl, waiting for epoll to confirm it (FIFO, oldest
  // first). Stale once fds_[fd].unverified_seq no longer equals `seq`.
  struct Unverified {
    int fd;
    uint64_t seq;
    int64_t since = 0;  // CLOCK_MONOTONIC, stamped by the first Wait() after the park
  };
  // How long a reused registration may go unconfirmed before epoll_ctl re-registers it: the
  // worst extra latency of a receive on an fd number reused after a plain close(2). Round trips
  // under load are confirmed within microseconds; an idle keep-alive connection pays one
  // epoll_ctl per idle spell (before: one per receive).
  static constexpr int64_t kVerifyAfterNs = 10'000'000;

  // A result waiting for Wait() to deliver it.
  struct Ready {
    IoCompletion* c;
    int32_t result;
    uint32_t flags;
  };

  EpollPoller(int epoll_fd, int wake_fd, unsigned max_events, const PollerOptions& options);

  // Result value of Attempt() meaning "would block: park it".
  static constexpr int kWouldBlock = INT32_MIN;
  // The poll(2) bits a PollAdd may ask for (and that a registration may be reported for).
  static constexpr uint32_t kPollBits = POLLIN | POLLPRI | POLLOUT | POLLRDNORM | POLLRDBAND |
                                        POLLWRNORM | POLLWRBAND | POLLMSG | POLLRDHUP;

  void Start(Op proto);
  int Attempt(Op& op, bool after_readiness);
  void NoteRecv(const Op& op, int r);
  int AttemptAcceptLoop(Op& op);
  int RunBlocking(Op& op);
  int Park(Op* op, int fd, uint32_t events);
  void Unpark(Op* op);
  // Registers `fd` for `mask`, edge-triggered when `edge` (socket receives only: see FdState).
  int Control(int fd, uint32_t mask, bool edge = false);
  void Deregister(int fd);
  // Re-registers reuses unconfirmed for kVerifyAfterNs; returns the nanoseconds until the next
  // one is due, or -1 when none waits. `now_ns`: the current CLOCK_MONOTONIC time.
  int64_t VerifyReused(int64_t now_ns);
  uint32_t ParkedMask(int fd) const;
  bool HasParked(int fd, uint32_t direction) const;
  void OnFdEvents(int fd, uint32_t revents);
  void OnSpliceBlocked(Op* op);
  void ParkOrRunBlocking(Op* op);
  void Finish(Op* op, int32_t result);
  void Queue(IoCompletion* c, int32_t result, uint32_t flags) {
    ready_.push_back({c, result, flags});  // amortised: the vector keeps its capacity
  }
  bool Refuse(IoCompletion* c);
  void RunSync(IoCompletion* c, int32_t result);
  void ExpireTimers(int64_t now_ns);
  int Dispatch();

  // Maps the pool and fills the reserve (all buffers, none resident). Without memory (mmap
  // fails) there is no pool, and every pooled receive that finds data gets -ENOBUFS.
  void SetUpPool();
  // The shard is about to sleep for up to `timeout_ns` (-1: forever). At most every
  // kDecayInterval: gives back the pages of the reserve buffers the load has not needed since
  // the last time (BufferReserve::Release; never a buffer a receiver holds). Returns how long
  // to sleep: no longer than until the next decay while anything is left to give back.
  int64_t Decay(int64_t timeout_ns);

  Op* NewOp(const Op& proto);
  void FreeOp(Op* op);
  void IndexOp(Op* op);
  void UnindexOp(Op* op);

  // Constant after construction.
  const int epoll_fd_;
  const int wake_fd_;

  std::atomic<bool> wake_pending_{false};  // Wake() writes the eventfd only when not set
  bool destroying_ = false;
  size_t in_flight_ = 0;
  std::vector<epoll_event> events_;
  std::vector<FdState> fds_;  // indexed by fd; fds are small dense integers
  std::vector<Ready> ready_;
  std::vector<Ready> dispatching_;
  DeadlineHeap<Op> timers_;
  std::vector<Op*> retry_;              // splices to retry at the next Wait()
  std::vector<Unverified> unverified_;  // [unverified_head_, size): see FdState
  size_t unverified_head_ = 0;
  size_t unverified_unstamped_ = 0;  // entries from here on have no `since` yet
  uint64_t unverified_seq_ = 0;
  absl::flat_hash_map<IoCompletion*, Op*> by_completion_;  // parked ops, for Cancel
  std::vector<std::unique_ptr<Op[]>> op_chunks_;
  std::vector<Op*> free_ops_;

  // The RecvBufferSelect pool (epoll_receive_pool.cc): mapped at its first use (SetUpPool). A
  // receive takes a buffer only when its socket is readable, from the top of reserve_, a stack
  // (LIFO), so the hot buffers are reused and the untouched ones never become resident; every
  // free buffer is in reserve_, so the idle decay (Decay) may give any of their pages back.
  unsigned pool_buffer_count_;
  size_t pool_buffer_size_;
  bool pool_set_up_ = false;
  std::byte* pool_ = nullptr;  // mmap: count * size; null until set up, or if mmap failed
  BufferReserve reserve_;
  std::chrono::steady_clock::time_point next_decay_{};
  uint32_t attempt_flags_ = 0;  // completion flags of the last Attempt (kRecvSelect's buffer)
};

}  // namespace kev::internal

#endif  // KEV_KEVENT_EPOLL_POLLER_H_
