// IoUringPoller: see io_uring_poller.h for the design, docs/pollers.md for the details.
#include "kevent/io_uring_poller.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iterator>

#if defined(__SANITIZE_THREAD__)
// ThreadSanitizer tracks file descriptors by number, through its interceptors of open, accept,
// close, send, ... Descriptors this backend accepts and closes with io_uring operations (and
// files httpd opens with syscall(SYS_openat2)) are invisible to it. So when shard A sends on
// socket fd N, io_uring closes it, and shard B later gets N back from io_uring accept or
// openat2 and close(2)s it, TSan sees two threads touching "fd N" with no happens-before and
// reports a race that the kernel's fd table rules out. Every such report has the close(2)
// interceptor as the top frame of one access (only close writes TSan's fd shadow), so that is
// what is suppressed: races on ordinary memory never have close() on top. The pattern is
// unanchored at the front because libtsan exports the interceptor as both close and
// __interceptor_close and the symbolizer may report either. Process-wide because
// any binary with this backend can recycle numbers this way (httpd_test and the reliability
// tests under --config=tsan found it at two different close sites).
extern "C" const char* __tsan_default_suppressions() { return "race_top:close$\n"; }
#endif

namespace kev::internal {
namespace {

constexpr size_t kMaxIo = 0x7ffff000;  // the kernel's MAX_RW_COUNT: results fit an int32_t
// Reaping rounds per Wait() when the kernel holds overflowed CQEs: bounds one Wait()'s work.
constexpr int kMaxReapRounds = 64;

uint64_t Key(const IoCompletion* c) { return reinterpret_cast<uintptr_t>(c); }

// What an IORING_OP_FILES_UPDATE that empties a registered-file slot installs. The kernel only
// reads it (at issue), so one constant serves every such SQE.
int kNoFile = -1;

__kernel_timespec ToTimespec(std::chrono::nanoseconds d) {
  int64_t ns = std::max<int64_t>(d.count(), 0);
  return {.tv_sec = ns / 1'000'000'000, .tv_nsec = ns % 1'000'000'000};
}

[[noreturn]] void Fatal(const char* what) {
  std::fprintf(stderr, "kev: IoUringPoller: %s\n", what);
  std::abort();
}

}  // namespace

std::unique_ptr<Poller> IoUringPoller::Create(const PollerOptions& options, int* error) {
  std::unique_ptr<IoUringPoller> poller(new IoUringPoller());
  if (int r = poller->Init(options); r < 0) {
    *error = r;
    return nullptr;  // the destructor releases what Init set up
  }
  return poller;
}

int IoUringPoller::Init(const PollerOptions& options) {
  if (int e = options.io_uring_setup_error_for_testing; e != 0) return e < 0 ? e : -e;
  pool_buffer_count_ = std::bit_ceil(std::clamp(options.recv_buffer_count, 1u, 32768u));
  pool_buffer_size_ = std::clamp(options.recv_buffer_size, 1u, 1u << 24);
  use_buffer_ring_ = options.use_buffer_ring;
  unsigned entries = std::clamp(options.entries, 1u, 32768u);  // IORING_MAX_ENTRIES
  // Optional setup flags, dropped one at a time (newest kernel first) while setup says EINVAL:
  // DEFER_TASKRUN 6.1, SINGLE_ISSUER 6.0, COOP_TASKRUN 5.19, SUBMIT_ALL 5.18.
  unsigned optional = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
  if (options.single_issuer) optional |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  constexpr unsigned kDropOrder[] = {IORING_SETUP_DEFER_TASKRUN, IORING_SETUP_SINGLE_ISSUER,
                                     IORING_SETUP_COOP_TASKRUN, IORING_SETUP_SUBMIT_ALL};
  io_uring_params params{};
  for (size_t dropped = 0;; ++dropped) {
    params = {};
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | optional;
    // A single-issuer ring binds to the task that enables it: stay disabled until the first
    // submission, so the poller may be created on one thread and driven on another.
    if ((optional & IORING_SETUP_SINGLE_ISSUER) != 0) params.flags |= IORING_SETUP_R_DISABLED;
    params.cq_entries = 2 * entries;  // room for multishot bursts before NODROP kicks in
    int r = io_uring_queue_init_params(entries, &ring_, &params);
    if (r == 0) break;
    if (r != -EINVAL || dropped == std::size(kDropOrder)) return r;
    optional &= ~kDropOrder[dropped];
  }
  ring_ready_ = true;
  setup_flags_ = params.flags;
  enabled_ = (setup_flags_ & IORING_SETUP_R_DISABLED) == 0;
  constexpr unsigned kNeeded = IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG | IORING_FEAT_FAST_POLL;
  if ((params.features & kNeeded) != kNeeded) return -EOPNOTSUPP;
  // Multishot accept and IORING_ASYNC_CANCEL_ALL/ANY arrived in 5.19 with IORING_OP_SOCKET,
  // which the probe can see.
  io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
  bool new_enough = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_SOCKET);
  io_uring_free_probe(probe);
  if (!new_enough) return -EOPNOTSUPP;
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return -errno;
  cqes_.reserve(params.cq_entries);
  ArmWakePoll();  // submitted by the first Wait()
  initialized_ = true;
  return 0;
}

IoUringPoller::~IoUringPoller() {
  if (initialized_) {
    destroying_ = true;  // from here on, new submissions complete with -ECANCELED unperformed
    for (const io_uring_sqe& sqe : overflow_) {  // never reached the kernel
      if ((sqe.user_data & kInternalMask) == 0) deferred_.push_back({FromKey(sqe.user_data)});
    }
    overflow_.clear();
    PushCancel(0, IORING_ASYNC_CANCEL_ANY);
    while (in_flight_ > 0) {
      FlushOverflow();  // our cancels may have found the SQ full
      int r =
          Enter(deferred_.empty() ? std::chrono::milliseconds(100) : std::chrono::nanoseconds(0));
      Reap();
      DispatchDeferred();
      if (r == -ETIME) PushCancel(0, IORING_ASYNC_CANCEL_ANY);  // slow or racing ones
      if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY && r != -EAGAIN) {
        std::fprintf(stderr, "kev: IoUringPoller: cannot drain the ring (%d); %zu ops lost\n", r,
                     in_flight_);
        break;
      }
    }
  }
  if (ring_ready_) io_uring_queue_exit(&ring_);  // also drops the buffer ring registration
  for (int fd : drain_fds_) {
    if (fd >= 0) close(fd);
  }
  if (buf_ring_ != nullptr) munmap(buf_ring_, buf_ring_bytes_);
  if (pool_ != nullptr) munmap(pool_, size_t{pool_buffer_count_} * pool_buffer_size_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

// --- Submission ------------------------------------------------------------------------------

void IoUringPoller::Submit(io_uring_sqe& sqe, IoCompletion* c, uint64_t tag) {
  ++in_flight_;
  if (destroying_) {
    deferred_.push_back({c});
    return;
  }
  sqe.user_data = Key(c) | tag;
  Push(sqe);
}

void IoUringPoller::Push(const io_uring_sqe& sqe) {
  if (overflow_.empty()) {  // once overflowing, queue behind: SQEs keep their order
    io_uring_sqe* slot = io_uring_get_sqe(&ring_);
    if (slot == nullptr && early_submit_ && EnsureEnabled() == 0 && io_uring_submit(&ring_) >= 0) {
      slot = io_uring_get_sqe(&ring_);  // SQ full: this batch goes in early (one syscall)
    }
    if (slot != nullptr) {
      *slot = sqe;
      return;
    }
  }
  overflow_.push_back(sqe);  // held, never dropped; Wait() moves it in as room frees up
}

void IoUringPoller::PushCancel(uint64_t user_data, int flags) {
  io_uring_sqe sqe{};
  io_uring_prep_cancel64(&sqe, user_data, flags);
  sqe.user_data = kCancelTag;
  Push(sqe);
}

void IoUringPoller::ArmWakePoll() {
  io_uring_sqe sqe{};
  io_uring_prep_poll_multishot(&sqe, wake_fd_, POLLIN);
  sqe.user_data = kWakeTag;
  Push(sqe);
}

int IoUringPoller::EnsureEnabled() {
  if (enabled_) return 0;
  // liburing 2.3 declares io_uring_enable_rings but does not export it: the raw syscall.
  if (syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) <
      0) {
    return -errno;
  }
  enabled_ = true;
  return 0;
}

void IoUringPoller::PollAdd(int fd, uint32_t poll_events, bool multishot, IoCompletion* c) {
  io_uring_sqe sqe{};
  if (!multishot) {
    io_uring_prep_poll_add(&sqe, fd, poll_events);
    Submit(sqe, c);
    return;
  }
  io_uring_prep_poll_multishot(&sqe, fd, poll_events);
  // One map entry per multishot poll (not per event): the level re-check needs its fd.
  if (!destroying_ && !polls_.try_emplace(c, MultishotPoll{fd, poll_events}).second) {
    Fatal("a multishot PollAdd must have its completion to itself");
  }
  Submit(sqe, c, kMultishotPollTag);
}

void IoUringPoller::Read(int fd, std::span<std::byte> buf, int64_t offset, IoCompletion* c) {
  io_uring_sqe sqe{};
  io_uring_prep_read(&sqe, fd, buf.data(), std::min(buf.size(), kMaxIo),
                     static_cast<uint64_t>(offset));  // -1: the current file position
  Submit(sqe, c);
}

void IoUringPoller::Write(int fd, std::span<const std::byte> buf, int64_t offset, IoCompletion* c) {
  io_uring_sqe sqe{};
  io_uring_prep_write(&sqe, fd, buf.data(), std::min(buf.size(), kMaxIo),
                      static_cast<uint64_t>(offset));
  Submit(sqe, c);
}

void IoUringPoller::Recv(int fd, std::span<std::byte> buf, int flags, IoCompletion* c) {
  io_uring_sqe sqe{};
  io_uring_prep_recv(&sqe, fd, buf.data(), std::min(buf.size(), kMaxIo), flags);
  UseRegistered(sqe, fd);
  Submit(sqe, c);
}

void IoUringPoller::Send(int fd, std::span<const std::byte> buf, int flags, IoCompletion* c) {
  io_uring_sqe sqe{};
  io_uring_prep_send(&sqe, fd, buf.data(), std::min(buf.size(), kMaxIo), flags);
  UseRegistered(sqe, fd);  // no fget/fput per send
  Submit(sqe, c);
}

void IoUringPoller::RecvMsg(int fd, msghdr* msg, int flags, IoCompletion* c) {
  io_uring_sqe sqe{};
  io_uring_prep_recvmsg(&sqe, fd, msg, static_cast<unsigned>(flags));
  Submit(sqe, c);
}

void IoUringPoller::SendMsg(int fd, const msghdr* msg, int flags, IoCompletion* c) {
  io_uring_sqe sqe{};
  io_uring_prep_sendmsg(&sqe, fd, msg, static_cast<unsigned>(flags));
  Submit(sqe, c);
}

void IoUringPoller::Accept(int fd, sockaddr* addr, socklen_t* addrlen, int flags, bool multishot,
                           IoCompletion* c) {
  io_uring_sqe sqe{};
  if (multishot) {
    io_uring_prep_multishot_accept(&sqe, fd, addr, addrlen, flags);
  } else {
    io_uring_prep_accept(&sqe, fd, addr, addrlen, flags);
  }
  Submit(sqe, c);
}

void IoUringPoller::Connect(int fd, const sockaddr* addr, socklen_t addrlen, IoCompletion* c) {
  io_uring_sqe sqe{};
  io_uring_prep_connect(&sqe, fd, addr, addrlen);
  Submit(sqe, c);
}

void IoUringPoller::Splice(int fd_in, int64_t off_in, int fd_out, int64_t off_out, unsigned len,
                           unsigned flags, IoCompletion* c) {
  io_uring_sqe sqe{};
  io_uring_prep_splice(&sqe, fd_in, off_in, fd_out, off_out, len, flags);
  Submit(sqe, c);
}

void IoUringPoller::OpenAt(int dirfd, const char* path, int flags, mode_t mode, IoCompletion* c) {
  io_uring_sqe sqe{};
  io_uring_prep_openat(&sqe, dirfd, path, flags, mode);
  Submit(sqe, c);
}

void IoUringPoller::Statx(int dirfd, const char* path, int flags, unsigned mask, struct statx* out,
                          IoCompletion* c) {
  io_uring_sqe sqe{};
  io_uring_prep_statx(&sqe, dirfd, path, flags, mask, out);
  Submit(sqe, c);
}

void IoUringPoller::Fsync(int fd, bool datasync, IoCompletion* c) {
  io_uring_sqe sqe{};
  io_uring_prep_fsync(&sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
  Submit(sqe, c);
}

void IoUringPoller::Close(int fd, IoCompletion* c) {
  if (!destroying_) {  // the SQ runs in order: the cancel is issued before the close
    io_uring_sqe cancel{};
    io_uring_prep_cancel_fd(&cancel, fd, IORING_ASYNC_CANCEL_ALL);
    cancel.user_data = kCancelTag;
    Push(cancel);
    if (IsRegistered(fd)) {
      // The slot holds the open file too: empty it before the close, so that the close really
      // closes it and the number is free for a new registration once the close has run.
      io_uring_sqe update{};
      io_uring_prep_files_update(&update, &kNoFile, 1, fd);
      update.user_data = kCancelTag;  // its CQE is ignored, as a cancel's
      Push(update);
      registered_[fd] = false;
    }
  }
  io_uring_sqe sqe{};
  io_uring_prep_close(&sqe, fd);
  Submit(sqe, c);
}

void IoUringPoller::Timeout(std::chrono::nanoseconds duration, IoCompletion* c) {
  // The kernel copies the timespec when it takes the SQE, so it lives in timespecs_ (stable
  // addresses) until everything queued before it has been submitted.
  timespecs_.push_back(ToTimespec(duration));
  io_uring_sqe sqe{};
  io_uring_prep_timeout(&sqe, &timespecs_.back(), 0, 0);
  Submit(sqe, c);
}

void IoUringPoller::Cancel(IoCompletion* target) {
  uint64_t key = Key(target);
  if (!overflow_.empty()) {  // operations that never reached the kernel complete right here
    auto end = std::remove_if(overflow_.begin(), overflow_.end(), [&](const io_uring_sqe& s) {
      if ((s.user_data & kInternalMask) != 0 || (s.user_data & ~kTagMask) != key) return false;
      deferred_.push_back({target});
      if ((s.user_data & kMultishotPollTag) != 0) polls_.erase(target);
      return true;
    });
    overflow_.erase(end, overflow_.end());
  }
  PushCancel(key, IORING_ASYNC_CANCEL_ALL);
  if (auto it = polls_.find(target); it != polls_.end()) {
    it->second.cancelled = true;
    PushCancel(key | kMultishotPollTag, IORING_ASYNC_CANCEL_ALL);
  }
}

bool IoUringPoller::RegisterFile(int fd) noexcept {
  if (destroying_ || fd < 0) return false;
  if (!file_table_tried_) SetUpFileTable();
  if (static_cast<size_t>(fd) >= registered_.size()) return false;
  // A syscall, once per descriptor (per connection): it saves one file reference per operation.
  if (io_uring_register_files_update(&ring_, static_cast<unsigned>(fd), &fd, 1) != 1) return false;
  registered_[fd] = true;
  return true;
}

void IoUringPoller::UnregisterFile(int fd) noexcept {
  if (!IsRegistered(fd)) return;
  registered_[fd] = false;
  // If this failed the slot would keep the file open; it cannot fail for a valid slot.
  (void)io_uring_register_files_update(&ring_, static_cast<unsigned>(fd), &kNoFile, 1);
}

void IoUringPoller::SetUpFileTable() noexcept {
  file_table_tried_ = true;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  // The kernel refuses a table larger than RLIMIT_NOFILE; no descriptor can be past it anyway.
  unsigned size = static_cast<unsigned>(std::min<rlim_t>(limit.rlim_cur, kMaxFileTable));
  if (size == 0 || io_uring_register_files_sparse(&ring_, size) != 0) return;
  registered_.assign(size, false);
}

void IoUringPoller::Wake() noexcept {
  // Only the first Wake() since the last drain writes: the eventfd is already readable.
  if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
    uint64_t one = 1;
    ssize_t r = write(wake_fd_, &one, sizeof one);  // async-signal-safe
    (void)r;  // EAGAIN only at a counter of 2^64-2: then it is readable anyway
  }
}

// --- Driving ---------------------------------------------------------------------------------

int IoUringPoller::Wait(std::optional<std::chrono::nanoseconds> timeout) {
  ++generation_;
  if (!level_list_.empty()) RecheckLevel();
  int error = FlushOverflow();
  bool work_in_hand = !deferred_.empty() || !level_ready_.empty() || !overflow_.empty() ||
                      io_uring_cq_ready(&ring_) > 0;
  TopUpRing();
  std::optional<std::chrono::nanoseconds> sleep = timeout;
  if (work_in_hand) {
    sleep = std::chrono::nanoseconds(0);
  } else if (pool_ != nullptr && (!timeout || timeout->count() > 0)) {
    sleep = Decay(timeout);  // about to sleep: no cost on a busy shard's turns
  }
  int r = Enter(sleep);
  int dispatched = Reap();
  if (r == -EBUSY || r == -EAGAIN) {  // CQ overflow backlog (or no memory): reaped; retry once
    r = Enter(std::chrono::nanoseconds(0));
    dispatched += Reap();
  }
  if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY && r != -EAGAIN && error == 0) {
    error = r;
  }
  dispatched += DispatchLevel();
  dispatched += DispatchDeferred();
  ReleaseTimespecs();
  return error < 0 ? error : dispatched;
}

// Moves held SQEs into the SQ, submitting early each time it fills.
int IoUringPoller::FlushOverflow() {
  while (!overflow_.empty()) {
    io_uring_sqe* slot = io_uring_get_sqe(&ring_);
    if (slot == nullptr) {
      if (int r = EnsureEnabled(); r < 0) return r;
      if (io_uring_submit(&ring_) <= 0) return 0;  // no progress (e.g. -EBUSY): Wait() reaps
      continue;
    }
    *slot = overflow_.front();
    overflow_.pop_front();
  }
  return 0;
}

// The one io_uring_enter of a Wait(): submits everything queued and waits for a CQE, a
// Wake() or the timeout. Returns >= 0, -ETIME, -EINTR or another -errno.
int IoUringPoller::Enter(std::optional<std::chrono::nanoseconds> timeout) {
  if (int r = EnsureEnabled(); r < 0) return r;
  if (timeout && timeout->count() <= 0) return io_uring_submit_and_get_events(&ring_);
  if (!timeout) return io_uring_submit_and_wait(&ring_, 1);
  __kernel_timespec ts = ToTimespec(*timeout);
  io_uring_cqe* cqe = nullptr;
  return io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
}

// Multishot polls reported last time are re-checked with one poll(2): the kernel's multishot
// poll reports wake-ups only, so this is how a condition that still holds is reported again.
void IoUringPoller::RecheckLevel() {
  level_keys_.clear();
  level_fds_.clear();
  for (IoCompletion* c : level_list_) {
    auto it = polls_.find(c);
    if (it == polls_.end() || !it->second.level_listed || it->second.cancelled) continue;
    it->second.level_listed = false;  // re-listed below while still ready
    level_keys_.push_back(c);
    level_fds_.push_back({it->second.fd, static_cast<short>(it->second.events), 0});
  }
  level_list_.clear();
  if (level_fds_.empty()) return;
  int n = poll(level_fds_.data(), level_fds_.size(), 0);
  for (size_t i = 0; i < level_keys_.size(); ++i) {
    // No longer ready: the kernel's multishot poll reports its next wake-up.
    if (n >= 0 && level_fds_[i].revents == 0) continue;
    polls_.find(level_keys_[i])->second.level_listed = true;
    level_list_.push_back(level_keys_[i]);
    if (n > 0) level_ready_.push_back({level_keys_[i], level_fds_[i].revents});
  }
}

int IoUringPoller::Reap() {
  int dispatched = 0;
  for (int round = 0; round < kMaxReapRounds; ++round) {
    cqes_.clear();
    unsigned head;
    unsigned count = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      cqes_.push_back({cqe->user_data, cqe->res, cqe->flags});  // reserved at CQ size
      ++count;
    }
    io_uring_cq_advance(&ring_, count);  // release the CQ before any callback runs
    for (const Cqe& e : cqes_) dispatched += DispatchCqe(e);
    if (!io_uring_cq_has_overflow(&ring_)) break;
    // IORING_FEAT_NODROP kept the CQEs a full CQ could not take; now there is room, have the
    // kernel move them in (an io_uring_enter with GETEVENTS).
    if (EnsureEnabled() < 0 || io_uring_get_events(&ring_) < 0) break;
  }
  return dispatched;
}

int IoUringPoller::DispatchCqe(const Cqe& cqe) {
  uint64_t ud = cqe.user_data;
  if ((ud & kInternalMask) != 0) {
    if (ud == kDrainTag) {
      OnDrained(cqe.flags);
      return 0;
    }
    if (ud == kWakeTag) {
      uint64_t count;
      ssize_t r = read(wake_fd_, &count, sizeof count);
      (void)r;  // EAGAIN: already drained
      // After the read: a Wake() racing with it is absorbed by this Wait(), which returns.
      wake_pending_.store(false, std::memory_order_release);
      // The kernel may end a multishot poll (e.g. on CQ overflow): arm it again.
      if ((cqe.flags & IORING_CQE_F_MORE) == 0 && !destroying_) ArmWakePoll();
    }
    return 0;  // cancels and liburing's own timeouts
  }
  IoCompletion* c = FromKey(ud);
  bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
  if ((ud & kMultishotPollTag) != 0) {
    auto it = polls_.find(c);
    if (more && it != polls_.end()) {
      MultishotPoll& p = it->second;
      // At most one report per Wait() (as epoll), and none after Cancel() but the final.
      if (p.cancelled || p.reported_in == generation_) return 0;
      p.reported_in = generation_;
      if (!p.level_listed) {
        p.level_listed = true;
        level_list_.push_back(c);
      }
    } else if (!more && it != polls_.end()) {
      polls_.erase(it);  // before the callback, which may arm a new one with `c`
    }
  }
  if (!more) --in_flight_;
  // A buffer-select receive found the ring empty: the window was too small for this load.
  if (cqe.res == -ENOBUFS) ring_ran_dry_ = true;
  uint32_t flags = more ? kCompletionMore : 0;
  // Only buffer-select receives carry F_BUFFER; the map is non-empty only in the fallback.
  if ((cqe.flags & IORING_CQE_F_BUFFER) != 0 || !fallback_bufs_.empty()) {
    flags |= TakeBuffer(c, cqe.res, cqe.flags);
  }
  c->OnComplete(cqe.res, flags);
  return 1;
}

int IoUringPoller::DispatchLevel() {
  int dispatched = 0;
  for (auto [c, revents] : level_ready_) {
    auto it = polls_.find(c);
    if (it == polls_.end()) continue;  // ended (final CQE) this Wait()
    MultishotPoll& p = it->second;
    if (p.cancelled || !p.level_listed || p.reported_in == generation_) continue;
    p.reported_in = generation_;
    uint32_t mask = revents & (p.events | POLLERR | POLLHUP | POLLNVAL);
    c->OnComplete(static_cast<int32_t>(mask), kCompletionMore);  // may rehash polls_: no `p`
    ++dispatched;
  }
  level_ready_.clear();
  return dispatched;
}

int IoUringPoller::DispatchDeferred() {
  // Ones the callbacks add wait for the next Wait(), like their submissions.
  dispatching_.swap(deferred_);
  for (const Deferred& d : dispatching_) {
    --in_flight_;
    // A fallback receive cancelled before it reached the kernel gives its buffer back here.
    if (!fallback_bufs_.empty()) TakeBuffer(d.c, d.res, 0);
    d.c->OnComplete(d.res, 0);
  }
  int dispatched = static_cast<int>(dispatching_.size());
  dispatching_.clear();
  return dispatched;
}

void IoUringPoller::ReleaseTimespecs() {
  if (!timespecs_.empty() && overflow_.empty() && io_uring_sq_ready(&ring_) == 0) {
    timespecs_.clear();
  }
}

}  // namespace kev::internal

