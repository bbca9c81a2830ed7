// EpollPoller's receive-buffer pool (RecvBufferSelect): its memory, mapped at the first pooled
// receive, and the idle decay that gives the pages of unneeded free buffers back. The receive
// itself (a recv into the reserve's top buffer once the socket is readable) is an attempt like
// the others, in epoll_poller.cc. The policy is io_uring's (buffer_reserve.h), without a ring:
// every free buffer is in the reserve and ours alone, so any of them may be given back.
#include "kevent/epoll_poller.h"

#include <sys/epoll.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace kev::internal {

void EpollPoller::SetUpPool() {
  pool_set_up_ = true;
  // A private anonymous mapping (not the heap): pages become resident only when a receive
  // writes them, and madvise(MADV_DONTNEED) gives them back (they read as zeros afterwards).
  void* mem = mmap(nullptr, size_t{pool_buffer_count_} * pool_buffer_size_, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return;  // no pool: the reserve stays empty (-ENOBUFS)
  pool_ = static_cast<std::byte*>(mem);
  reserve_.Fill(pool_buffer_count_);  // buffer 0 on top
}

void EpollPoller::RecvBufferSelect(int fd, int flags, IoCompletion* c) {
  if (!pool_set_up_) SetUpPool();  // once per poller: one mmap
  Start({.kind = Kind::kRecvSelect,
         .c = c,
         .fd = fd,
         .events = EPOLLIN,
         .len = pool_buffer_size_,  // for NoteRecv: a shorter result means the socket is empty
         .flags = flags});
}

int64_t EpollPoller::Decay(int64_t timeout_ns) {
  auto now = std::chrono::steady_clock::now();  // a vDSO read, only when about to sleep
  if (now >= next_decay_) {
    next_decay_ = now + kDecayInterval;
    reserve_.Release(pool_, pool_buffer_size_);  // one madvise per buffer given back
  }
  if (reserve_.dirty() == 0) return timeout_ns;  // nothing left to give back: sleep on
  int64_t left = std::chrono::nanoseconds(next_decay_ - now).count();
  return timeout_ns < 0 ? left : std::min(timeout_ns, left);
}

}  // namespace kev::internal
