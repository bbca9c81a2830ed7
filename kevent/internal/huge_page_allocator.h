// kevent/internal/huge_page_allocator.h: memory for a queue's big arrays, in huge pages.
//
// A queue with a million requests has three big arrays: the request pool's slabs, the index
// table and the timer heap (about 128 + 18 + 24 MB). Faulting that memory in 4 KiB pages costs
// tens of thousands of page faults per queue, more than the requests' own work (timer_bench,
// perf: half the CPU was page faults and page clearing). Allocations of at least kHugePageBytes
// are therefore 2 MiB-aligned, rounded up to whole 2 MiB pages and marked MADV_HUGEPAGE, so the
// kernel backs them with transparent huge pages where it can (THP "madvise" or "always"; with
// THP off it is plain memory). Smaller ones are ordinary operator new: small queues pay nothing.
// Freed big blocks are kept for reuse (see FreeHuge).
//
// Example:
//   std::vector<Entry, HugePageAllocator<Entry>> heap;   // grows like any vector
//   void* slab = AllocateHuge(2 << 20);  ...  FreeHuge(slab, 2 << 20);
//
// Threading: thread-safe (the cache takes a mutex, once per big block, never per request).
// Failure: std::bad_alloc; a refused madvise is ignored (the memory is still usable, in small
// pages).
#ifndef KEV_KEVENT_INTERNAL_HUGE_PAGE_ALLOCATOR_H_
#define KEV_KEVENT_INTERNAL_HUGE_PAGE_ALLOCATOR_H_

#include <cstddef>
#include <new>

namespace kev::kevent_internal {

// The x86-64 / arm64 transparent huge page size.
inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// The size AllocateHuge really reserves for `bytes` (whole huge pages from kHugePageBytes up).
inline size_t HugeRoundUp(size_t bytes) {
  return bytes < kHugePageBytes ? bytes : (bytes + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
}

// At least `bytes` of uninitialised memory; 2 MiB-aligned huge-page candidates from
// kHugePageBytes up (taken from the process-wide cache when a block of that size is there).
// Throws std::bad_alloc. Release with FreeHuge(p, bytes), same `bytes`.
void* AllocateHuge(size_t bytes);
// Releases memory from AllocateHuge. Big blocks go to a process-wide cache (at most
// kHugeCacheBytes in all), so the next queue of that size reuses them instead of taking fresh
// pages, which the kernel must zero: for a million timers that zeroing was 40% of the cost of
// arming them in a new queue (perf). Like the kernel kevent patch's kevent_cache, memory a
// queue gave back stays with the process, up to the cap.
void FreeHuge(void* p, size_t bytes) noexcept;

// What FreeHuge keeps at most, in all: 32 big blocks. Deliberately small: on a quiet machine
// timer_bench's arm+cancel median was the same with a cap of 0, 64 MiB and 512 MiB (10.1-10.4x,
// 10.0x, 10.3-10.4x timerfd, alternating runs); the cache helps the first big queue after
// another one closed, which is not worth keeping hundreds of MiB a process no longer uses.
inline constexpr size_t kHugeCacheBytes = size_t{64} << 20;

// Bytes held by the process-wide cache now (tests).
size_t HugeCacheBytesForTesting();

// A std allocator over AllocateHuge / FreeHuge, for containers that may grow big (the index,
// the timer heap). Stateless: all instances are equal.
template <typename T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}  // NOLINT: rebinding is implicit

  T* allocate(size_t n) {
    if (n > static_cast<size_t>(-1) / sizeof(T)) throw std::bad_alloc();
    return static_cast<T*>(AllocateHuge(n * sizeof(T)));
  }
  void deallocate(T* p, size_t n) noexcept { FreeHuge(p, n * sizeof(T)); }

  template <typename U>
  friend bool operator==(const HugePageAllocator&, const HugePageAllocator<U>&) {
    return true;
  }
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_HUGE_PAGE_ALLOCATOR_H_
