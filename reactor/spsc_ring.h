// SpscRing<T>: a bounded, lock-free, single-producer single-consumer ring.
//
// The building block of kev's cross-shard messaging (see smp_queue.h and docs/smp.md). One
// thread, the producer, pushes; one other thread, the consumer, pops. Capacity is a power of
// two fixed at construction; the slot array is allocated once in the constructor and nothing is
// allocated, locked or system-called afterwards. Items are trivially copyable values (kev moves
// pointers through it).
//
// Why it is fast:
//   * The producer's index (tail) and the consumer's index (head) live on separate cache lines,
//     so each side writes only its own line.
//   * Each side keeps a private cached copy of the other side's index and re-reads the shared
//     one only when the cached value says "full" (producer) or "empty" (consumer). In steady
//     state a push touches only the producer's line and the slot.
//   * PushBatch/PopBatch move many items with one index publication (one release store), so a
//     batch costs one cache-line transfer of the index instead of one per item.
//   * TryPush asks for write ownership of the slot line ~1 KB ahead of where it writes
//     (PREFETCHW). The consumer still holds every slot line shared from its read one lap ago,
//     and without the prefetch the producer's first store into each line waits for a cross-core
//     invalidation. With a consumer that keeps up (the ring near empty) that wait made the
//     producer the bottleneck: tests/perf/spsc_ring_bench's single-item case went from
//     8-14 ns/item to 5-6.5 (docs/smp.md, "Measuring"). A prefetch is only a hint: it changes no
//     memory and orders nothing, so the contract below is unaffected.
//   * PushBatch claims the lines of its batch the same distance ahead, but only when the ring
//     has room for that distance too, i.e. when the consumer has already read every claimed
//     slot (up to the rest of the last line). In a nearly full ring the lines ahead hold items
//     the consumer is about to read: claiming them anyway made spsc_ring_bench's batched case
//     ~30% slower. Guarded, it is a few percent faster (median 2.7 -> 2.6 ns/item, the slow
//     runs of 3.0-3.3 gone; docs/smp.md, "Measuring").
//
// Memory ordering (the whole contract; see also docs/smp.md):
//   (1) Producer writes slots [t, t+n), then stores tail = t+n with memory_order_release.
//       Consumer loads tail with memory_order_acquire before reading any slot below it.
//       This release/acquire pair publishes the slot contents: a consumer that sees tail = t+n
//       sees every slot write the producer made before that store.
//   (2) Consumer reads slots [h, h+m), then stores head = h+m with memory_order_release.
//       Producer loads head with memory_order_acquire before overwriting any slot below
//       head + capacity. This pair hands the slots back: the consumer's reads of a slot happen
//       before the producer's next write to it (no write-after-read race on reused slots).
//   (3) Each side reads its own index with memory_order_relaxed: only it ever writes it.
//   Indices are free-running 64-bit counters (slot = index & mask), so "full" is
//   tail - head == capacity and "empty" is tail == head, with no wasted slot; they cannot
//   wrap in practice (2^64 items).
//   Nothing in the ring is sequentially consistent. Code that needs a store to the ring to be
//   ordered against a later load of some other variable (the sleep/wake-up protocol of
//   smp_queue.h) must add its own std::atomic_thread_fence(seq_cst).
//
// Thread-safety: exactly one producer thread may call the producer-side methods (TryPush,
// PushBatch, Full) and exactly one consumer thread the consumer-side methods (TryPop, PopBatch).
// The producer and the consumer may be the same thread. Empty(), SizeApprox() and Capacity()
// may be called from any thread. Which thread is the producer may change only with external
// synchronisation (e.g. a thread join) between the old and the new one; same for the consumer.
//
// Example:
//   kev::SpscRing<Msg*> ring(1024);
//   // producer thread:
//   Msg* batch[16] = {...};
//   size_t pushed = ring.PushBatch(batch);   // may be < 16 when the ring is full: retry later
//   // consumer thread:
//   Msg* out[64];
//   size_t n = ring.PopBatch(out);
//   for (size_t i = 0; i < n; ++i) Handle(out[i]);
#ifndef KEV_REACTOR_SPSC_RING_H_
#define KEV_REACTOR_SPSC_RING_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace kev {
namespace internal {

// Distance that keeps two hot variables from false sharing. 128, not 64: Intel's adjacent-line
// prefetcher pulls cache lines in 128-byte pairs, so 64-byte separation still ping-pongs.
inline constexpr std::size_t kCacheLinePadding = 128;

// The unit a write prefetch claims (x86-64, and most ARM64 cores).
inline constexpr std::size_t kCacheLineSize = 64;

// How far ahead of its write position the producer claims slot lines: 16 lines. In a plain-loop
// copy of spsc_ring_bench (1024 pointers, single pushes) kev took ~45 ns/item without the
// prefetch, 12-15 with it 128-256 B ahead, 8.5-10 at 512 B, 6.3-8.2 at 1 KB and 7.6-16 at 2 KB.
inline constexpr std::size_t kPrefetchAheadBytes = 1024;

// How many slots ahead TryPush and PushBatch prefetch in a ring of `capacity` slots of
// `slot_size` bytes: kPrefetchAheadBytes worth, but at most a quarter of the ring: TryPush's
// claimed slot can hold an item the consumer has yet to read only while the ring is more than
// three-quarters full (then the claim costs the consumer a miss, never correctness; PushBatch
// checks for room instead). 0 (the slot being written) for rings of fewer than 4 slots.
constexpr std::size_t PrefetchAheadSlots(std::size_t capacity, std::size_t slot_size) noexcept {
  const std::size_t wanted = slot_size >= kPrefetchAheadBytes ? 1 : kPrefetchAheadBytes / slot_size;
  return std::min(wanted, capacity / 4);
}

// Asks for the cache line holding `p` in a writable (exclusive) state. A hint: it reads and
// writes no memory, cannot fault, and is not ordered with any load or store.
inline void PrefetchForWrite(const void* p) noexcept {
#if defined(__x86_64__) || defined(__i386__)
  // __builtin_prefetch(p, 1) compiles to PREFETCHT0, a read prefetch that leaves the line shared
  // with the consumer, unless the build enables PRFCHW; PREFETCHW is what helps (measured).
  asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p, /*rw=*/1, /*locality=*/3);
#endif
}

}  // namespace internal

// A bounded lock-free SPSC ring of trivially copyable T. See the file comment for the memory
// ordering and threading contract. Not copyable or movable (the indices are shared atomics).
template <typename T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>,
                "SpscRing copies items with memcpy; T must be trivially copyable");
  static_assert(std::is_default_constructible_v<T>,
                "SpscRing value-initialises its slot array once at construction");

 public:
  // Creates a ring holding up to `capacity` items. `capacity` must be a power of two >= 2;
  // otherwise throws std::invalid_argument. Allocates the slot array (the only allocation the
  // ring ever makes); throws std::bad_alloc if that fails.
  explicit SpscRing(std::size_t capacity)
      : mask_(CheckedCapacity(capacity) - 1),
        prefetch_ahead_(internal::PrefetchAheadSlots(capacity, sizeof(T))),
        slots_(new T[capacity]()) {}

  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  // Producer only. Appends `item` if there is room. Returns false (and leaves the ring
  // unchanged) when the ring is full. Never blocks.
  bool TryPush(const T& item) noexcept {
    const std::uint64_t tail = tail_.load(std::memory_order_relaxed);  // (3)
    if (tail - producer_.cached_head == Capacity()) {
      // Refresh only when the stale copy says "full": keeps the consumer's line out of our cache
      // in steady state.
      producer_.cached_head = head_.load(std::memory_order_acquire);  // (2)
      if (tail - producer_.cached_head == Capacity()) return false;
    }
    // Claim the line we will write prefetch_ahead_ slots from now; the consumer has read it
    // unless the ring is over three-quarters full (see file comment).
    PrefetchSlotsForWrite(tail + prefetch_ahead_, 1);
    slots_[tail & mask_] = item;
    tail_.store(tail + 1, std::memory_order_release);  // (1)
    return true;
  }

  // Producer only. Appends the longest prefix of `items` that fits, publishing it with a single
  // index store. Returns how many items were appended (0 when full); the caller keeps the rest
  // and retries later. Never blocks.
  std::size_t PushBatch(std::span<const T> items) noexcept {
    const std::uint64_t tail = tail_.load(std::memory_order_relaxed);  // (3)
    std::size_t free = Capacity() - (tail - producer_.cached_head);
    if (free < items.size()) {
      producer_.cached_head = head_.load(std::memory_order_acquire);  // (2)
      free = Capacity() - (tail - producer_.cached_head);
    }
    const std::size_t n = std::min(free, items.size());
    if (n == 0) return 0;
    // Claim the lines we will write a few batches from now, only if they hold no unread item
    // (room for the distance as well; see file comment).
    if (free >= n + prefetch_ahead_) PrefetchSlotsForWrite(tail + prefetch_ahead_, n);
    CopyIn(tail, items.data(), n);
    tail_.store(tail + n, std::memory_order_release);  // (1)
    return n;
  }

  // Consumer only. Removes the oldest item into `*out`. Returns false (and leaves `*out`
  // untouched) when the ring is empty.
  bool TryPop(T* out) noexcept {
    const std::uint64_t head = head_.load(std::memory_order_relaxed);  // (3)
    if (head == consumer_.cached_tail) {
      consumer_.cached_tail = tail_.load(std::memory_order_acquire);  // (1)
      if (head == consumer_.cached_tail) return false;
    }
    *out = slots_[head & mask_];
    head_.store(head + 1, std::memory_order_release);  // (2)
    return true;
  }

  // Consumer only. Removes up to out.size() of the oldest items into `out`, in FIFO order,
  // freeing their slots with a single index store. Returns how many were removed (0 when empty).
  std::size_t PopBatch(std::span<T> out) noexcept {
    const std::uint64_t head = head_.load(std::memory_order_relaxed);  // (3)
    std::size_t available = consumer_.cached_tail - head;
    if (available < out.size()) {
      consumer_.cached_tail = tail_.load(std::memory_order_acquire);  // (1)
      available = consumer_.cached_tail - head;
    }
    const std::size_t n = std::min(available, out.size());
    if (n == 0) return 0;
    CopyOut(head, out.data(), n);
    head_.store(head + n, std::memory_order_release);  // (2)
    return n;
  }

  // Producer only. True when a push would fail right now. Re-reads the consumer's index (with
  // acquire, as in TryPush), so it is exact at the moment of the read; space may appear at any
  // time afterwards.
  bool Full() noexcept {
    const std::uint64_t tail = tail_.load(std::memory_order_relaxed);
    producer_.cached_head = head_.load(std::memory_order_acquire);
    return tail - producer_.cached_head == Capacity();
  }

  // Any thread. True when the ring held no items at the moment of the reads. Exact when called
  // by the consumer with respect to its own pops; a concurrent push may make it stale at once.
  // The tail load is acquire so that a consumer that sees "not empty" may pop what it saw.
  bool Empty() const noexcept {
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
  }

  // Any thread. Number of items at some recent moment, in [0, Capacity()]. Only a hint for
  // metrics and heuristics; never use it to decide whether a push or pop will succeed.
  std::size_t SizeApprox() const noexcept {
    // head first: tail only grows, so tail read later is >= the head read earlier (never
    // negative); clamp because a concurrent pop+push can make the difference exceed capacity.
    const std::uint64_t head = head_.load(std::memory_order_acquire);
    const std::uint64_t tail = tail_.load(std::memory_order_acquire);
    return static_cast<std::size_t>(std::min<std::uint64_t>(tail - head, Capacity()));
  }

  // Any thread. The fixed capacity given at construction.
  std::size_t Capacity() const noexcept { return mask_ + 1; }

 private:
  static std::size_t CheckedCapacity(std::size_t capacity) {
    if (capacity < 2 || (capacity & (capacity - 1)) != 0) {
      throw std::invalid_argument("SpscRing capacity must be a power of two >= 2, got " +
                                  std::to_string(capacity));
    }
    return capacity;
  }

  // Asks for write ownership of the lines of slots [from, from + n): one prefetch per line
  // (per slot when a slot fills a line or more, claiming only its first line).
  void PrefetchSlotsForWrite(std::uint64_t from, std::size_t n) const noexcept {
    constexpr std::size_t kSlotsPerLine =
        sizeof(T) >= internal::kCacheLineSize ? 1 : internal::kCacheLineSize / sizeof(T);
    for (std::size_t i = 0; i < n; i += kSlotsPerLine) {
      internal::PrefetchForWrite(&slots_[(from + i) & mask_]);
    }
  }

  // Copies n items into slots starting at index `at`, in at most two runs (wrap-around).
  void CopyIn(std::uint64_t at, const T* src, std::size_t n) noexcept {
    const std::size_t first = at & mask_;
    const std::size_t run = std::min(n, Capacity() - first);
    std::memcpy(static_cast<void*>(&slots_[first]), src, run * sizeof(T));
    std::memcpy(static_cast<void*>(&slots_[0]), src + run, (n - run) * sizeof(T));
  }

  void CopyOut(std::uint64_t at, T* dst, std::size_t n) const noexcept {
    const std::size_t first = at & mask_;
    const std::size_t run = std::min(n, Capacity() - first);
    std::memcpy(static_cast<void*>(dst), &slots_[first], run * sizeof(T));
    std::memcpy(static_cast<void*>(dst + run), &slots_[0], (n - run) * sizeof(T));
  }

  // Constant after construction; read by both sides, written by neither (shared, never
  // invalidated).
  const std::size_t mask_;
  const std::size_t prefetch_ahead_;  // internal::PrefetchAheadSlots(capacity, sizeof(T))
  const std::unique_ptr<T[]> slots_;

  // Written by the producer only. The consumer reads tail_ when its cached copy runs out.
  alignas(internal::kCacheLinePadding) std::atomic<std::uint64_t> tail_{0};
  struct {
    std::uint64_t cached_head = 0;  // Producer's last-seen head_; never ahead of head_.
  } producer_;

  // Written by the consumer only. The producer reads head_ when its cached copy says "full".
  alignas(internal::kCacheLinePadding) std::atomic<std::uint64_t> head_{0};
  struct {
    std::uint64_t cached_tail = 0;  // Consumer's last-seen tail_; never ahead of tail_.
  } consumer_;
};

}  // namespace kev

#endif  // KEV_REACTOR_SPSC_RING_H_
