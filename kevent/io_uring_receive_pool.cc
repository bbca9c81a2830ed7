// IoUringPoller's receive-buffer pool (RecvBufferSelect and friends): the provided-buffer ring's
// window, the reserve, the idle decay and the drain. The design is in io_uring_poller.h (the
// pool's comment) and docs/pollers.md; the rest of the backend is in io_uring_poller.cc, and the
// reserve and page give-back both backends share are in buffer_reserve.h.
#include "kevent/io_uring_poller.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace kev::internal {
namespace {

// The smallest ring window (see io_uring_poller.h): 32 x 4 KiB first pages is 128 KiB per shard
// that a light load keeps resident, against the 1 MiB that 256 buffers going round a full ring
// touch. A load that completes more receives per Wait() than this grows it in a few turns.
constexpr unsigned kRingWindowMin = 32;

}  // namespace

void IoUringPoller::SetUpPool() {
  pool_set_up_ = true;
  size_t bytes = size_t{pool_buffer_count_} * pool_buffer_size_;
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return;  // no pool: every RecvBufferSelect gets -ENOBUFS
  pool_ = static_cast<std::byte*>(mem);
  if (use_buffer_ring_) {
    // liburing 2.3 has io_uring_register_buf_ring but not io_uring_setup_buf_ring (2.4): map
    // the ring (page-aligned, as the kernel wants) and register it ourselves.
    buf_ring_bytes_ = std::max<size_t>(pool_buffer_count_ * sizeof(io_uring_buf), 4096);
    void* ring =
        mmap(nullptr, buf_ring_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ring != MAP_FAILED) {
      io_uring_buf_reg reg{};
      reg.ring_addr = reinterpret_cast<uintptr_t>(ring);
      reg.ring_entries = pool_buffer_count_;
      reg.bgid = kBufferGroup;
      if (io_uring_register_buf_ring(&ring_, &reg, 0) == 0) {
        buf_ring_ = static_cast<io_uring_buf_ring*>(ring);
        io_uring_buf_ring_init(buf_ring_);
        // DrainRing's pipe (a pipe, not sockets: fd-leak checks count a process's sockets,
        // and the sendfile engine keeps pipes too). If it cannot be made (EMFILE...), the
        // ring just keeps what it holds.
        if (pipe2(drain_fds_, O_NONBLOCK | O_CLOEXEC) < 0) drain_fds_[0] = drain_fds_[1] = -1;
      } else {
        munmap(ring, buf_ring_bytes_);  // e.g. a kernel older than 5.19: the fallback
      }
    }
  }
  // Buffer 0 on top: the ring (or the fallback's receives) start with the lowest buffers.
  reserve_.Fill(pool_buffer_count_);
  ring_window_ = std::min(pool_buffer_count_, kRingWindowMin);
  if (buf_ring_ != nullptr) FillRing();
}

void IoUringPoller::TopUpRing() {
  if (buf_ring_ == nullptr || (ring_available_ >= ring_window_ && !ring_ran_dry_)) return;
  ring_low_ = std::min(ring_low_, ring_available_);
  // The last Wait() emptied the ring, or took more than 3/4 of it (the next may empty it): a
  // receive that finds it empty fails with -ENOBUFS and falls back to the connection's own
  // memory, so double the window (at most once per Wait()).
  if (ring_ran_dry_ || ring_available_ < ring_window_ / 4) {
    ring_window_ = std::min(2 * ring_window_, pool_buffer_count_);
    ring_ran_dry_ = false;
  }
  FillRing();
}

void IoUringPoller::FillRing() {
  int mask = io_uring_buf_ring_mask(pool_buffer_count_);
  int added = 0;
  while (ring_available_ < ring_window_ && !reserve_.empty()) {
    uint16_t id = reserve_.Pop();
    io_uring_buf_ring_add(buf_ring_, SelectedBuffer(id).data(), pool_buffer_size_, id, mask,
                          added++);
    ++ring_available_;
  }
  // Stores to shared memory, no syscall: the kernel sees the new tail at its next pick.
  io_uring_buf_ring_advance(buf_ring_, added);
}

std::optional<std::chrono::nanoseconds> IoUringPoller::Decay(
    std::optional<std::chrono::nanoseconds> timeout) {
  auto now = std::chrono::steady_clock::now();  // a vDSO read, only when about to sleep
  if (now >= next_decay_) {
    next_decay_ = now + kDecayInterval;
    if (buf_ring_ != nullptr) {
      // The most one Wait() took from the ring since the last decay, doubled: the window that
      // load needs without growing again (TopUpRing grows it when a Wait() takes 3/4 of it).
      size_t used =
          ring_low_ == SIZE_MAX ? 0 : ring_window_ - std::min<size_t>(ring_low_, ring_window_);
      unsigned target = std::max(kRingWindowMin, std::bit_ceil(static_cast<unsigned>(2 * used)));
      ring_window_ = std::min(ring_window_, target);
      ring_low_ = SIZE_MAX;
      if (ring_available_ > ring_window_ + draining_) {
        DrainRing(ring_available_ - ring_window_ - draining_);
      }
    }
    buffers_released_ += reserve_.Release(pool_, pool_buffer_size_);
  }
  // Something is left to give back at the next decay: sleep no longer than until then.
  bool pending = reserve_.dirty() > 0 || (buf_ring_ != nullptr && ring_window_ > kRingWindowMin);
  if (!pending) return timeout;
  std::chrono::nanoseconds left = next_decay_ - now;
  return timeout ? std::min(*timeout, left) : left;
}

void IoUringPoller::DrainRing(size_t n) {
  if (drain_fds_[0] < 0) return;  // no pipe (see SetUpPool)
  // n bytes in, n one-byte reads out: each takes the ring's oldest buffer, and its CQE
  // (DispatchCqe, kDrainTag) hands it to us, to give its pages back.
  static const std::byte kZeros[4096] = {};
  size_t written = 0;
  while (written < n) {
    ssize_t w = write(drain_fds_[1], kZeros, std::min(n - written, sizeof kZeros));
    if (w <= 0) break;  // the pipe is full: drain the rest next time
    written += static_cast<size_t>(w);
  }
  for (size_t i = 0; i < written; ++i) {
    io_uring_sqe sqe{};
    io_uring_prep_read(&sqe, drain_fds_[0], nullptr, 1, static_cast<uint64_t>(-1));
    sqe.flags |= IOSQE_BUFFER_SELECT;
    sqe.buf_group = kBufferGroup;
    sqe.user_data = kDrainTag;
    Push(sqe);
  }
  draining_ += written;
}

void IoUringPoller::RecvBufferSelect(int fd, int flags, IoCompletion* c) {
  if (!pool_set_up_) SetUpPool();  // once: two mmaps and one register syscall
  io_uring_sqe sqe{};
  if (buf_ring_ != nullptr) {
    io_uring_prep_recv(&sqe, fd, nullptr, pool_buffer_size_, flags);
    UseRegistered(sqe, fd);
    sqe.flags |= IOSQE_BUFFER_SELECT;
    sqe.buf_group = kBufferGroup;
    Submit(sqe, c);
    return;
  }
  if (reserve_.empty() || destroying_) {  // no buffer: fails as the ring would
    ++in_flight_;
    deferred_.push_back({c, destroying_ ? -ECANCELED : -ENOBUFS});
    return;
  }
  uint16_t id = reserve_.Pop();
  fallback_bufs_[c] = id;  // the fallback only (no ring): a hash insert per receive is fine
  io_uring_prep_recv(&sqe, fd, SelectedBuffer(id).data(), pool_buffer_size_, flags);
  UseRegistered(sqe, fd);
  Submit(sqe, c);
}

void IoUringPoller::ReturnBuffer(uint16_t id) noexcept {
  // On top of the reserve: the next Wait() hands it back to the ring first (TopUpRing).
  reserve_.Push(id);
}

size_t IoUringPoller::BuffersAvailable() const noexcept {
  return ring_available_ + reserve_.size();
}

uint32_t IoUringPoller::TakeBuffer(IoCompletion* c, int32_t res, uint32_t cqe_flags) {
  uint16_t id;
  if ((cqe_flags & IORING_CQE_F_BUFFER) != 0) {
    id = static_cast<uint16_t>(cqe_flags >> IORING_CQE_BUFFER_SHIFT);
    --ring_available_;
  } else if (!fallback_bufs_.empty()) {
    auto it = fallback_bufs_.find(c);
    if (it == fallback_bufs_.end()) return 0;
    id = it->second;
    fallback_bufs_.erase(it);
  } else {
    return 0;
  }
  if (res <= 0) {  // end of stream, error or cancelled: nothing to hand over
    ReturnBuffer(id);
    return 0;
  }
  return kCompletionBuffer | (uint32_t{id} << 16);
}

void IoUringPoller::OnDrained(uint32_t cqe_flags) {
  if ((cqe_flags & IORING_CQE_F_BUFFER) != 0) {
    --draining_;
    --ring_available_;
    auto id = static_cast<uint16_t>(cqe_flags >> IORING_CQE_BUFFER_SHIFT);
    ReleasePages(SelectedBuffer(id).data(), pool_buffer_size_);  // one syscall per buffer
    reserve_.PushClean(id);
    ++buffers_released_;
  } else if (draining_ > 0) {
    --draining_;  // cancelled at destruction, or the ring was empty
  }
}

void IoUringPoller::RecvBufferSelectMultishot(int fd, int flags, IoCompletion* c) {
  if (!pool_set_up_) SetUpPool();  // once: as RecvBufferSelect
  if (buf_ring_ == nullptr) {
    RecvBufferSelect(fd, flags, c);  // the fallback picks its buffer at submission: one shot
    return;
  }
  io_uring_sqe sqe{};
  // Length 0: each arrival takes a whole ring buffer (kernels before 6.10 require 0 here).
  io_uring_prep_recv(&sqe, fd, nullptr, 0, flags);
  sqe.ioprio |= IORING_RECV_MULTISHOT;
  UseRegistered(sqe, fd);
  sqe.flags |= IOSQE_BUFFER_SELECT;
  sqe.buf_group = kBufferGroup;
  Submit(sqe, c);
}

}  // namespace kev::internal
