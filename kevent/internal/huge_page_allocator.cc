#include "kevent/internal/huge_page_allocator.h"

#include <sys/mman.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#endif

#include <mutex>
#include <new>
#include <vector>

namespace kev::kevent_internal {
namespace {

// Freed big blocks by size. Few distinct sizes occur (2 MiB slabs, the doubling arrays), so a
// linear search over a short vector is enough. Reached once per big block only.
class HugeCache {
 public:
  void* Take(size_t size) {
    std::lock_guard lock(mu_);
    for (size_t i = blocks_.size(); i-- > 0;) {
      if (blocks_[i].size != size) continue;
      void* p = blocks_[i].p;
      blocks_[i] = blocks_.back();
      blocks_.pop_back();
      bytes_ -= size;
#ifdef __SANITIZE_ADDRESS__
      ASAN_UNPOISON_MEMORY_REGION(p, size);
#endif
      return p;
    }
    return nullptr;
  }

  // Keeps p unless the cache is full; returns whether it did.
  bool Put(void* p, size_t size) noexcept {
    std::lock_guard lock(mu_);
    if (bytes_ + size > kHugeCacheBytes) return false;
    try {
      blocks_.push_back(Block{p, size});
    } catch (...) {
      return false;
    }
    bytes_ += size;
#ifdef __SANITIZE_ADDRESS__
    ASAN_POISON_MEMORY_REGION(p, size);  // a use after FreeHuge is still reported
#endif
    return true;
  }

  size_t bytes() {
    std::lock_guard lock(mu_);
    return bytes_;
  }

 private:
  struct Block {
    void* p;
    size_t size;
  };
  std::mutex mu_;
  std::vector<Block> blocks_;
  size_t bytes_ = 0;
};

HugeCache& Cache() {
  static HugeCache* cache = new HugeCache;  // never destroyed: queues may die during exit
  return *cache;
}

}  // namespace

void* AllocateHuge(size_t bytes) {
  if (bytes < kHugePageBytes) return ::operator new(bytes);
  const size_t size = HugeRoundUp(bytes);
  if (void* p = Cache().Take(size)) return p;
  void* p = ::operator new(size, std::align_val_t{kHugePageBytes});
  // One syscall per fresh big block (slab or array growth), amortised over the >= 16k requests
  // that fill it; it saves ~500 page faults per 2 MiB.
  (void)madvise(p, size, MADV_HUGEPAGE);
  return p;
}

void FreeHuge(void* p, size_t bytes) noexcept {
  if (bytes < kHugePageBytes) {
    ::operator delete(p);
    return;
  }
  const size_t size = HugeRoundUp(bytes);
  if (!Cache().Put(p, size)) ::operator delete(p, std::align_val_t{kHugePageBytes});
}

size_t HugeCacheBytesForTesting() { return Cache().bytes(); }

}  // namespace kev::kevent_internal
