// AllocateHuge / FreeHuge and HugePageAllocator: alignment, the reuse cache and its cap.
#include "kevent/internal/huge_page_allocator.h"

#include <cstdint>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace kev::kevent_internal {
namespace {

TEST(HugePageAllocatorTest, SmallBlocksAreOrdinaryAndNotCached) {
  const size_t before = HugeCacheBytesForTesting();
  void* p = AllocateHuge(4096);
  std::memset(p, 1, 4096);
  FreeHuge(p, 4096);
  EXPECT_EQ(HugeCacheBytesForTesting(), before);
}

TEST(HugePageAllocatorTest, BigBlocksAreAlignedRoundedAndReused) {
  const size_t bytes = kHugePageBytes + 1;  // rounds up to two huge pages
  ASSERT_EQ(HugeRoundUp(bytes), 2 * kHugePageBytes);
  void* p = AllocateHuge(bytes);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kHugePageBytes, 0u);
  std::memset(p, 7, HugeRoundUp(bytes));  // all of the rounded size is usable
  const size_t before = HugeCacheBytesForTesting();
  FreeHuge(p, bytes);
  EXPECT_EQ(HugeCacheBytesForTesting(), before + 2 * kHugePageBytes);
  // The same size comes back from the cache; another size does not take it.
  void* other = AllocateHuge(kHugePageBytes);
  EXPECT_NE(other, p);
  void* again = AllocateHuge(2 * kHugePageBytes);
  EXPECT_EQ(again, p);
  EXPECT_EQ(HugeCacheBytesForTesting(), before);
  FreeHuge(again, 2 * kHugePageBytes);
  FreeHuge(other, kHugePageBytes);
}

TEST(HugePageAllocatorTest, CacheKeepsAtMostItsCap) {
  const size_t block = 4 * kHugePageBytes;  // 8 MiB: the cap holds eight
  static_assert(kHugeCacheBytes >= 2 * block);
  std::vector<void*> blocks;
  for (size_t i = 0; i < kHugeCacheBytes / block + 2; ++i) blocks.push_back(AllocateHuge(block));
  for (void* p : blocks) FreeHuge(p, block);  // the ones beyond the cap go back to the OS
  EXPECT_LE(HugeCacheBytesForTesting(), kHugeCacheBytes);
  EXPECT_GE(HugeCacheBytesForTesting(), kHugeCacheBytes - block);
}

TEST(HugePageAllocatorTest, VectorGrowsThroughIt) {
  std::vector<uint64_t, HugePageAllocator<uint64_t>> v;
  for (uint64_t i = 0; i < 1'000'000; ++i) v.push_back(i);  // 8 MB: big blocks on the way
  uint64_t sum = 0;
  for (uint64_t x : v) sum += x;
  EXPECT_EQ(sum, 999'999ull * 1'000'000 / 2);
}

}  // namespace
}  // namespace kev::kevent_internal
