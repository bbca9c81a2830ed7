// BufferReserve::Release and ReleasePages: see buffer_reserve.h.
#include "kevent/buffer_reserve.h"

#include <sys/mman.h>
#include <unistd.h>

namespace kev::internal {

void ReleasePages(std::byte* p, size_t n) noexcept {
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  auto first = reinterpret_cast<uintptr_t>(p);
  uintptr_t begin = (first + page - 1) & ~(page - 1);
  uintptr_t end = (first + n) & ~(page - 1);
  if (begin < end) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

size_t BufferReserve::Release(std::byte* pool, size_t buffer_size) noexcept {
  size_t keep = std::min(popped_, ids_.size());
  popped_ = 0;
  size_t end = ids_.size() - keep;
  if (clean_ >= end) return 0;
  for (size_t i = clean_; i < end; ++i) {
    ReleasePages(pool + size_t{ids_[i]} * buffer_size, buffer_size);
  }
  size_t released = end - clean_;
  clean_ = end;
  return released;
}

}  // namespace kev::internal
