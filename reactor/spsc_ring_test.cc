#include "reactor/spsc_ring.h"

#include <array>
#include <atomic>
#include <cstdint>
#include <numeric>
#include <span>
#include <stdexcept>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kev {
namespace {

using ::testing::ElementsAre;

TEST(SpscRingTest, RejectsCapacityThatIsNotAPowerOfTwo) {
  EXPECT_THROW(SpscRing<int>(0), std::invalid_argument);
  EXPECT_THROW(SpscRing<int>(1), std::invalid_argument);
  EXPECT_THROW(SpscRing<int>(3), std::invalid_argument);
  EXPECT_THROW(SpscRing<int>(1000), std::invalid_argument);
  EXPECT_EQ(SpscRing<int>(2).Capacity(), 2u);
  EXPECT_EQ(SpscRing<int>(1024).Capacity(), 1024u);
}

TEST(SpscRingTest, IndicesLiveOnSeparateCacheLines) {
  // The layout promise of the header: the object is padded to whole cache-line pairs.
  EXPECT_EQ(alignof(SpscRing<void*>), internal::kCacheLinePadding);
  EXPECT_GE(sizeof(SpscRing<void*>), 3 * internal::kCacheLinePadding);
}

TEST(SpscRingTest, PrefetchDistanceIsAtMostAQuarterOfTheRing) {
  // TryPush claims the slot line this many slots ahead (file comment of spsc_ring.h): 1 KB of
  // slots, capped at a quarter of the ring so a nearly empty or half-full ring never has the
  // producer claim a line the consumer still has to read.
  using internal::PrefetchAheadSlots;
  EXPECT_EQ(PrefetchAheadSlots(1024, sizeof(void*)), internal::kPrefetchAheadBytes / sizeof(void*));
  EXPECT_EQ(PrefetchAheadSlots(256, sizeof(void*)), 64u);
  EXPECT_EQ(PrefetchAheadSlots(4, sizeof(void*)), 1u);
  EXPECT_EQ(PrefetchAheadSlots(2, sizeof(void*)), 0u);
  EXPECT_EQ(PrefetchAheadSlots(1024, 4096), 1u);  // slots bigger than the distance: the next one
  for (std::size_t capacity = 2; capacity <= (1u << 20); capacity *= 2) {
    for (std::size_t size : {1u, 8u, 24u, 64u, 1024u, 4096u}) {
      EXPECT_LE(PrefetchAheadSlots(capacity, size), capacity / 4) << capacity << " x " << size;
    }
  }
}

TEST(SpscRingTest, EmptyRingPopsNothing) {
  SpscRing<int> ring(4);
  int out = 42;
  EXPECT_TRUE(ring.Empty());
  EXPECT_EQ(ring.SizeApprox(), 0u);
  EXPECT_FALSE(ring.TryPop(&out));
  EXPECT_EQ(out, 42);  // untouched on failure
  std::array<int, 4> batch{};
  EXPECT_EQ(ring.PopBatch(batch), 0u);
}

TEST(SpscRingTest, FillsToExactCapacityThenRefuses) {
  SpscRing<int> ring(4);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(ring.TryPush(i)) << i;
  EXPECT_TRUE(ring.Full());
  EXPECT_FALSE(ring.TryPush(99));
  EXPECT_EQ(ring.SizeApprox(), 4u);
  const std::array<int, 1> one = {7};
  EXPECT_EQ(ring.PushBatch(one), 0u);

  int out = -1;
  ASSERT_TRUE(ring.TryPop(&out));
  EXPECT_EQ(out, 0);
  EXPECT_FALSE(ring.Full());
  // The freed slot is reusable and the refused item was not half-inserted.
  EXPECT_TRUE(ring.TryPush(4));
  EXPECT_FALSE(ring.TryPush(5));
  std::vector<int> rest(8, -1);
  ASSERT_EQ(ring.PopBatch(rest), 4u);
  EXPECT_THAT(std::vector<int>(rest.begin(), rest.begin() + 4), ElementsAre(1, 2, 3, 4));
  EXPECT_TRUE(ring.Empty());
}

TEST(SpscRingTest, WrapsAroundManyTimesInOrder) {
  SpscRing<std::uint64_t> ring(8);
  std::uint64_t next_in = 0;
  std::uint64_t next_out = 0;
  // Push 3, pop 2, ... so the indices cross the end of the slot array at every offset.
  for (int round = 0; round < 1000; ++round) {
    for (int i = 0; i < 3 && ring.TryPush(next_in); ++i) ++next_in;
    for (int i = 0; i < 2; ++i) {
      std::uint64_t v;
      if (!ring.TryPop(&v)) break;
      ASSERT_EQ(v, next_out++);
    }
  }
  std::uint64_t v;
  while (ring.TryPop(&v)) ASSERT_EQ(v, next_out++);
  EXPECT_EQ(next_in, next_out);
  EXPECT_GT(next_in, 1000u);
}

// A slot type of `kBytes` bytes whose first word carries the item's sequence number.
template <std::size_t kBytes>
struct Blob {
  std::uint64_t seq;
  unsigned char pad[kBytes - sizeof(std::uint64_t)];
};

// Single pushes and pops through several laps of rings of every small capacity and of slots
// smaller and larger than the prefetch distance (so the prefetch target wraps, or is the slot
// being written): items come out in order and intact.
template <typename T>
void SinglePushesStayInOrder(std::size_t capacity) {
  SpscRing<T> ring(capacity);
  std::uint64_t next_in = 0;
  std::uint64_t next_out = 0;
  // Each round fills the ring, then drains all but one item, so the write position moves by
  // capacity - 1 per round and over `capacity` rounds starts a fill at every slot.
  for (std::size_t round = 0; round < capacity + 2; ++round) {
    T item{};
    while (true) {
      item.seq = next_in;
      if (!ring.TryPush(item)) break;
      ++next_in;
    }
    ASSERT_EQ(next_in - next_out, capacity);
    for (std::size_t i = 0; i + 1 < capacity; ++i) {
      T out{};
      ASSERT_TRUE(ring.TryPop(&out));
      ASSERT_EQ(out.seq, next_out++) << "capacity " << capacity;
    }
  }
}

TEST(SpscRingTest, SinglePushesStayInOrderForEverySlotSizeAndCapacity) {
  for (std::size_t capacity = 2; capacity <= 256; capacity *= 2) {
    SinglePushesStayInOrder<Blob<16>>(capacity);
    SinglePushesStayInOrder<Blob<24>>(capacity);
    if (capacity <= 64) SinglePushesStayInOrder<Blob<2048>>(capacity);
  }
}

// Batches through several laps of rings of every small capacity and of slots smaller and larger
// than a cache line, pushed into a nearly empty ring (PushBatch prefetches the lines ahead,
// wrapping) and into a nearly full one (it must not: those slots hold unread items): items come
// out in order and intact. A prefetch changes no memory, so this cannot see it; were the claim
// a store, this would fail as soon as PushBatch claimed without checking for room.
template <typename T>
void BatchPushesStayInOrder(std::size_t capacity) {
  SpscRing<T> ring(capacity);
  std::uint64_t next_in = 0;
  std::uint64_t next_out = 0;
  std::vector<T> in(capacity + 3);  // the largest batch below
  std::vector<T> out(capacity);
  for (std::size_t batch : {std::size_t{1}, std::size_t{3}, capacity / 2 + 1}) {
    // Each round fills the ring with batches of `batch`, then drains all but one item.
    for (std::size_t round = 0; round < capacity + 2; ++round) {
      while (true) {
        for (std::size_t i = 0; i < batch; ++i) {
          in[i] = T{};
          in[i].seq = next_in + i;
        }
        const std::size_t pushed = ring.PushBatch(std::span<const T>(in.data(), batch));
        next_in += pushed;
        if (pushed < batch) break;
      }
      ASSERT_EQ(next_in - next_out, capacity);
      const std::size_t popped = ring.PopBatch(std::span<T>(out.data(), capacity - 1));
      ASSERT_EQ(popped, capacity - 1);
      for (std::size_t i = 0; i < popped; ++i) {
        ASSERT_EQ(out[i].seq, next_out++) << "capacity " << capacity << " batch " << batch;
      }
    }
  }
}

TEST(SpscRingTest, BatchPushesStayInOrderForEverySlotSizeAndCapacity) {
  for (std::size_t capacity = 2; capacity <= 256; capacity *= 2) {
    BatchPushesStayInOrder<Blob<16>>(capacity);
    BatchPushesStayInOrder<Blob<24>>(capacity);
    if (capacity <= 64) BatchPushesStayInOrder<Blob<2048>>(capacity);
  }
}

TEST(SpscRingTest, BatchesSplitAcrossTheWrapPoint) {
  SpscRing<int> ring(8);
  // Move the indices to 6 so a batch of 5 occupies slots 6,7,0,1,2.
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(ring.TryPush(-1));
  std::array<int, 6> drain{};
  ASSERT_EQ(ring.PopBatch(drain), 6u);

  const std::array<int, 5> in = {10, 11, 12, 13, 14};
  ASSERT_EQ(ring.PushBatch(in), 5u);
  std::array<int, 5> out{};
  ASSERT_EQ(ring.PopBatch(out), 5u);
  EXPECT_THAT(out, ElementsAre(10, 11, 12, 13, 14));
}

TEST(SpscRingTest, PushBatchTakesTheLongestPrefixThatFits) {
  SpscRing<int> ring(8);
  std::vector<int> in(12);
  std::iota(in.begin(), in.end(), 0);
  EXPECT_EQ(ring.PushBatch(in), 8u);
  EXPECT_EQ(ring.PushBatch(std::span<const int>(in).subspan(8)), 0u);

  std::array<int, 3> out{};
  ASSERT_EQ(ring.PopBatch(out), 3u);
  EXPECT_THAT(out, ElementsAre(0, 1, 2));
  // Three slots free: the caller resubmits its remainder and gets exactly three in.
  EXPECT_EQ(ring.PushBatch(std::span<const int>(in).subspan(8)), 3u);

  std::vector<int> all(16, -1);
  ASSERT_EQ(ring.PopBatch(all), 8u);
  EXPECT_THAT(std::vector<int>(all.begin(), all.begin() + 8),
              ElementsAre(3, 4, 5, 6, 7, 8, 9, 10));
}

TEST(SpscRingTest, PopBatchReturnsWhatIsAvailable) {
  SpscRing<int> ring(16);
  const std::array<int, 3> in = {1, 2, 3};
  ASSERT_EQ(ring.PushBatch(in), 3u);
  std::array<int, 10> out{};
  EXPECT_EQ(ring.PopBatch(out), 3u);
  EXPECT_THAT(std::span<int>(out).first(3), ElementsAre(1, 2, 3));
  EXPECT_EQ(ring.PushBatch(std::span<const int>()), 0u);
  EXPECT_EQ(ring.PopBatch(std::span<int>()), 0u);
}

TEST(SpscRingTest, CarriesPointers) {
  SpscRing<const int*> ring(2);
  int a = 1;
  int b = 2;
  ASSERT_TRUE(ring.TryPush(&a));
  ASSERT_TRUE(ring.TryPush(&b));
  const int* p = nullptr;
  ASSERT_TRUE(ring.TryPop(&p));
  EXPECT_EQ(p, &a);
  ASSERT_TRUE(ring.TryPop(&p));
  EXPECT_EQ(p, &b);
}

// Two threads, 10 million items, a small ring so both the "full" and the "empty" paths are
// taken constantly. The consumer checks that it sees exactly 0, 1, 2, ... : nothing lost,
// duplicated or reordered.
TEST(SpscRingTest, TwoThreadStressKeepsOrderAndLosesNothing) {
  // Batches keep this well under a second even under TSan, so no reduced sanitizer count.
  constexpr std::uint64_t kItems = 10'000'000;
  SpscRing<std::uint64_t> ring(256);
  std::atomic<bool> order_ok{true};

  std::thread producer([&] {
    std::uint64_t next = 0;
    std::array<std::uint64_t, 32> batch;
    while (next < kItems) {
      if (next % 3 == 0) {
        // Mix single pushes and batches so both publication paths race with the consumer.
        if (ring.TryPush(next)) ++next;
        continue;
      }
      const std::size_t want = std::min<std::uint64_t>(batch.size(), kItems - next);
      for (std::size_t i = 0; i < want; ++i) batch[i] = next + i;
      next += ring.PushBatch(std::span<const std::uint64_t>(batch.data(), want));
    }
  });

  std::uint64_t expected = 0;
  std::array<std::uint64_t, 64> out;
  while (expected < kItems) {
    std::size_t n;
    if (expected % 5 == 0) {
      n = ring.TryPop(&out[0]) ? 1 : 0;
    } else {
      n = ring.PopBatch(out);
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (out[i] != expected) order_ok = false;
      ++expected;
    }
  }
  producer.join();
  EXPECT_TRUE(order_ok.load());
  EXPECT_EQ(expected, kItems);
  EXPECT_TRUE(ring.Empty());
}

}  // namespace
}  // namespace kev
