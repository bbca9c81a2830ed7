// IoUringPoller: the default Poller, on one io_uring (liburing 2.3). Internal to
// //kevent:poller; use Poller::Create(PollerBackend::kIoUring or kDefault).
//
// Design (docs/pollers.md has the details):
//   * Every operation becomes one SQE whose user_data is its IoCompletion pointer, so Cancel is
//     IORING_OP_ASYNC_CANCEL with IORING_ASYNC_CANCEL_ALL keyed by that pointer. Completions
//     are 8-byte aligned (they have a vtable), which leaves the low three bits for tags: internal
//     requests (the wake poll, cancels) have bit 0 or 1 set and never reach a user completion;
//     bit 2 marks a multishot PollAdd.
//   * SQEs are only prepared by the operation calls; Wait() submits them all with one
//     io_uring_enter (io_uring_submit_and_wait_timeout or io_uring_submit_and_get_events) and
//     drains the CQ in bulk (io_uring_for_each_cqe + io_uring_cq_advance). When the SQ is full
//     an operation call submits the batch early; if that fails, the prepared SQE waits in an
//     overflow list, in order, and Wait() moves it in as room frees up. Nothing is dropped.
//   * The CQ has twice the SQ's entries. A CQ overflow is absorbed by the kernel
//     (IORING_FEAT_NODROP, required) and flushed by the reaping loop; -EBUSY from a submit
//     makes Wait() reap first and submit again.
//   * Multishot PollAdd uses IORING_POLL_ADD_MULTI, which reports wake-ups (edge-like): a
//     still-readable fd is not reported again. The kernel rejects IORING_POLL_ADD_LEVEL for
//     POLL_ADD (-EINVAL, checked on 6.x), so level-triggering is emulated: every multishot poll
//     reported in one Wait() is re-checked with a single poll(2) over all of them at the start
//     of the next, and reported again while its condition holds.
//   * Wake() writes an eventfd that the ring polls (multishot, internal tag).
//   * Registered files (RegisterFile): a sparse fixed-file table whose slot is the descriptor
//     number; Send and Recv on a registered fd use IOSQE_FIXED_FILE, and Close() empties the
//     slot (IORING_OP_FILES_UPDATE) between its cancel and its close.
//   * The RecvBufferSelect pool is a provided-buffer ring holding a window of the pool that
//     grows with the load and shrinks when the shard idles; free buffers outside it give their
//     pages back (see the pool's members below).
//
// Threading: as Poller; only Wake() is thread-safe. With single_issuer the ring is bound to the
// thread that first submits (IORING_SETUP_R_DISABLED until then), so it may be created on
// another thread.
#ifndef KEV_KEVENT_IO_URING_POLLER_H_
#define KEV_KEVENT_IO_URING_POLLER_H_

#include <liburing.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "kevent/buffer_reserve.h"
#include "kevent/poller.h"

namespace kev::internal {

class IoUringPoller final : public Poller {
 public:
  // Returns nullptr and sets *error (negative errno) when the ring cannot be set up, or
  // -EOPNOTSUPP when the kernel lacks what kev needs (NODROP, EXT_ARG, FAST_POLL, 5.19 ops).
  static std::unique_ptr<Poller> Create(const PollerOptions& options, int* error);
  ~IoUringPoller() override;

  PollerBackend backend() const noexcept override { return PollerBackend::kIoUring; }
  std::string_view name() const noexcept override { return "io_uring"; }

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
  void ReturnBuffer(uint16_t id) noexcept override;
  size_t BuffersAvailable() const noexcept override;
  bool UsesBufferRing() const noexcept override { return buf_ring_ != nullptr; }
  bool RegisterFile(int fd) noexcept override;
  void UnregisterFile(int fd) noexcept override;
  int Wait(std::optional<std::chrono::nanoseconds> timeout) override;
  void Wake() noexcept override;
  size_t InFlight() const noexcept override { return in_flight_; }

  // The IORING_SETUP_* flags the ring was created with (for tests and diagnostics).
  unsigned setup_flags() const noexcept { return setup_flags_; }

  // Test hooks. A real kernel sends an SQE to the overflow list only when io_uring_submit fails
  // (e.g. -EBUSY on older kernels); with early submission disabled, operation calls that find
  // the SQ full always use it, so tests can drive that path.
  void DisableEarlySubmitForTesting() { early_submit_ = false; }
  size_t overflow_size_for_testing() const { return overflow_.size(); }
  // Pool buffers handed to the kernel's ring right now (at most ring_window_for_testing()).
  size_t ring_buffers_for_testing() const { return ring_available_; }
  unsigned ring_window_for_testing() const { return ring_window_; }
  // Whether `fd` is in the registered-file table right now.
  bool registered_for_testing(int fd) const { return IsRegistered(fd); }
  // Buffers whose pages have been given back (BufferReserve::Release) so far.
  size_t buffers_released_for_testing() const { return buffers_released_; }

 private:
  // user_data tags (low bits; IoCompletion pointers are 8-byte aligned). kInternalMask: any of
  // the first three (and LIBURING_UDATA_TIMEOUT, all ones) is not a user completion.
  static constexpr uint64_t kWakeTag = 1;    // the wake eventfd's multishot poll
  static constexpr uint64_t kCancelTag = 2;  // an ASYNC_CANCEL of ours; its CQE is ignored
  static constexpr uint64_t kDrainTag = 3;   // a one-byte read taking a buffer out of the ring
  static constexpr uint64_t kInternalMask = 3;
  static constexpr uint64_t kMultishotPollTag = 4;  // a user multishot PollAdd
  static constexpr uint64_t kTagMask = 7;
  static_assert(alignof(IoCompletion) >= 8, "user_data tags need 8-byte-aligned completions");
  static constexpr int kBufferGroup = 0;  // the one provided-buffer group of a poller
  // The completion a user_data (tag bits aside) points to.
  static IoCompletion* FromKey(uint64_t user_data) {
    return reinterpret_cast<IoCompletion*>(static_cast<uintptr_t>(user_data & ~kTagMask));
  }

  // A multishot PollAdd's state for the level-triggered emulation.
  struct MultishotPoll {
    int fd;
    uint32_t events;
    uint64_t reported_in = 0;   // the Wait() generation of its last report
    bool level_listed = false;  // in level_list_: re-checked at the next Wait()
    bool cancelled = false;     // Cancel()ed: report nothing but the final completion
  };

  // A CQE copied out of the ring, so the CQ is released before callbacks run.
  struct Cqe {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
  };

  // A final completion produced in user space (an operation cancelled before it reached the
  // kernel, or refused during destruction).
  struct Deferred {
    IoCompletion* c;
    int32_t res = -ECANCELED;
  };

  IoUringPoller() = default;
  int Init(const PollerOptions& options);

  // Makes `sqe` use the registered file when `fd` is registered (its slot is `fd` itself).
  void UseRegistered(io_uring_sqe& sqe, int fd) const noexcept {
    if (IsRegistered(fd)) sqe.flags |= IOSQE_FIXED_FILE;
  }
  bool IsRegistered(int fd) const noexcept {
    return fd >= 0 && static_cast<size_t>(fd) < registered_.size() && registered_[fd];
  }
  // Registers the sparse file table (RegisterFile, at the first call).
  void SetUpFileTable() noexcept;
  void Submit(io_uring_sqe& sqe, IoCompletion* c, uint64_t tag = 0);
  void Push(const io_uring_sqe& sqe);
  void PushCancel(uint64_t user_data, int flags);
  void ArmWakePoll();
  int EnsureEnabled();
  int FlushOverflow();
  int Enter(std::optional<std::chrono::nanoseconds> timeout);
  void RecheckLevel();
  int Reap();
  int DispatchCqe(const Cqe& cqe);
  int DispatchLevel();
  int DispatchDeferred();
  void ReleaseTimespecs();
  void SetUpPool();
  // Hands reserve buffers to the kernel's ring until it holds ring_window_ of them (FillRing),
  // first doubling the window if the last Wait() nearly emptied it.
  void TopUpRing();
  void FillRing();
  // The shard is about to sleep for up to `timeout`. At most every kDecayInterval: shrinks the
  // ring window to what the load since the last time needed and drains the excess out of the
  // ring (DrainRing), and gives back the pages of the reserve buffers not used since then.
  // Returns how long to sleep: no longer than until the next decay while anything is left to
  // give back.
  std::optional<std::chrono::nanoseconds> Decay(std::optional<std::chrono::nanoseconds> timeout);
  // Takes `n` buffers out of the ring, oldest first, through the kernel itself: one-byte
  // buffer-select reads from a pipe of ours (the only safe way: see the pool's comment below).
  void DrainRing(size_t n);
  // The kCompletionBuffer flags for a completion of `c` (0: no buffer); recycles a buffer that
  // carries no data.
  uint32_t TakeBuffer(IoCompletion* c, int32_t res, uint32_t cqe_flags);
  // A DrainRing read's completion: its buffer leaves the ring and gives its pages back.
  void OnDrained(uint32_t cqe_flags);

  io_uring ring_{};
  bool ring_ready_ = false;   // io_uring_queue_init succeeded
  bool initialized_ = false;  // Init() succeeded: the destructor drains the ring
  unsigned setup_flags_ = 0;
  bool enabled_ = true;  // false while IORING_SETUP_R_DISABLED is in force
  int wake_fd_ = -1;
  std::atomic<bool> wake_pending_{false};  // Wake() writes the eventfd only when not set
  bool destroying_ = false;
  bool early_submit_ = true;  // an operation call that finds the SQ full submits it
  size_t in_flight_ = 0;
  uint64_t generation_ = 0;  // counts Wait() calls, for at-most-one-report-per-Wait

  std::deque<io_uring_sqe> overflow_;        // prepared SQEs that found the SQ full
  std::deque<__kernel_timespec> timespecs_;  // Timeout SQEs point here until submitted
  std::vector<Cqe> cqes_;
  std::vector<Deferred> deferred_;
  std::vector<Deferred> dispatching_;
  absl::flat_hash_map<IoCompletion*, MultishotPoll> polls_;
  std::vector<IoCompletion*> level_list_;  // multishot polls to re-check at the next Wait()
  std::vector<IoCompletion*> level_keys_;
  std::vector<pollfd> level_fds_;
  std::vector<std::pair<IoCompletion*, uint32_t>> level_ready_;

  // The RecvBufferSelect pool (SetUpPool, at the first RecvBufferSelect). With a provided-buffer
  // ring (buf_ring_ set) the kernel picks the buffer when data arrives; otherwise (the fallback)
  // a receive takes one from reserve_ when it is submitted, remembered in fallback_bufs_ until
  // its completion. Returned buffers go to reserve_ in both modes.
  //
  // Memory: the kernel takes ring buffers in FIFO order, so every buffer the ring holds gets
  // touched as receives go round it. So the ring holds only a window of the pool (ring_window_,
  // from kRingWindowMin up to the whole pool), topped up from reserve_'s top at each Wait():
  // the window doubles when one Wait() nearly empties it (or a receive finds it empty:
  // -ENOBUFS); when the shard goes idle it shrinks back to what the load needed, and the excess
  // is drained out of the ring (DrainRing). Only buffers outside the ring are ours alone, so
  // only those give their pages back (Decay): never madvise a buffer in the ring, since a
  // receive punted to an io-wq worker may pick it and write to it at any time, and a
  // concurrent MADV_DONTNEED would drop the bytes.
  // Registered files (RegisterFile): a sparse table whose slot for a descriptor is its own
  // number, so no mapping is kept; registered_ says which slots hold a file. Sized at the
  // first RegisterFile to RLIMIT_NOFILE (at most kMaxFileTable); descriptors past it are not
  // registered. Close() empties the slot with an IORING_OP_FILES_UPDATE between the cancel and
  // the close, so the number can only be reused (and registered again) after that ran.
  static constexpr unsigned kMaxFileTable = 65536;  // 512 KiB of kernel table at most
  bool file_table_tried_ = false;
  std::vector<bool> registered_;

  bool pool_set_up_ = false;
  bool use_buffer_ring_ = true;
  unsigned pool_buffer_count_ = 0;
  unsigned pool_buffer_size_ = 0;
  std::byte* pool_ = nullptr;              // mmap: count * size
  io_uring_buf_ring* buf_ring_ = nullptr;  // mmap: count entries, shared with the kernel
  size_t buf_ring_bytes_ = 0;
  size_t ring_available_ = 0;    // buffers in the ring (added minus picked by the kernel)
  unsigned ring_window_ = 0;     // the most buffers the ring is topped up to
  size_t ring_low_ = SIZE_MAX;   // the fewest buffers the ring held at a top-up since the last idle
  size_t buffers_released_ = 0;  // for tests
  bool ring_ran_dry_ = false;    // a receive got -ENOBUFS since the last TopUpRing
  size_t draining_ = 0;          // DrainRing receives not completed yet
  int drain_fds_[2] = {-1, -1};  // DrainRing's pipe, made with the ring
  std::chrono::steady_clock::time_point next_decay_{};
  BufferReserve reserve_;
  absl::flat_hash_map<IoCompletion*, uint16_t> fallback_bufs_;

 public:
  // Poller::RecvBufferSelectMultishot: one IORING_RECV_MULTISHOT receive on the provided-buffer
  // ring (one CQE per arrival, no SQE per message). Without the ring (the fallback takes a
  // buffer at submission), a one-shot RecvBufferSelect.
  void RecvBufferSelectMultishot(int fd, int flags, IoCompletion* c) override;
};

}  // namespace kev::internal

#endif  // KEV_KEVENT_IO_URING_POLLER_H_
