// The receive-buffer pool policy that both Poller backends share: BufferReserve (the free
// buffers, a stack that knows which of them hold resident pages), ReleasePages (give a
// buffer's pages back to the kernel) and kDecayInterval (how often an idle shard does so).
// Internal to //kevent:poller. Each backend keeps its own pool memory (one private anonymous
// mapping of count * size bytes) and decides when to call Release(); see docs/pollers.md.
//
// Example (a pool of 8 buffers of 4 KiB at `pool`):
//   BufferReserve reserve;
//   reserve.Fill(8);                      // ids 0..7, none resident
//   uint16_t id = reserve.Pop();          // 0: a receive writes into it
//   reserve.Push(id);                     // returned: may be resident now
//   reserve.Release(pool, 4096);          // keeps it (popped since the last call)
//   reserve.Release(pool, 4096);          // idle since: its pages go back (MADV_DONTNEED)
//
// Threading: none; a reserve belongs to its poller's thread.
#ifndef KEV_KEVENT_BUFFER_RESERVE_H_
#define KEV_KEVENT_BUFFER_RESERVE_H_

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kev::internal {

// How often an idle shard decays its receive pool: reserve buffers unused since the last decay
// give their pages back (and io_uring's ring window shrinks to twice what one Wait() took).
// Short enough that memory comes back within a second of a burst ending; long enough that a
// load with short pauses keeps its buffers (and the sleeping shard wakes for it at most 4 times
// a second, only while there is something left to give back).
inline constexpr std::chrono::milliseconds kDecayInterval{250};

// Gives the pages that lie wholly inside [p, p + n) back to the kernel; they read as zeros
// afterwards. One madvise(MADV_DONTNEED); cannot fail on the pool's own private anonymous
// mapping (were it to, the pages just stay).
void ReleasePages(std::byte* p, size_t n) noexcept;

// The pool buffers that neither the kernel (the provided-buffer ring) nor a receiver holds: a
// stack, most recently returned on top, so a light load keeps reusing the same few buffers and
// the rest stay untouched. Tracks which of them hold no resident pages (never used, or given
// back), so that Release() gives back only pages that are really there.
class BufferReserve {
 public:
  size_t size() const noexcept { return ids_.size(); }
  bool empty() const noexcept { return ids_.empty(); }
  // Fills an empty reserve with buffers 0..n-1 (0 on top), all without resident pages yet.
  void Fill(unsigned n) {
    ids_.reserve(n);
    for (unsigned i = n; i > 0; --i) ids_.push_back(uint16_t(i - 1));
    clean_ = n;
  }
  // A buffer the caller held (its pages may be resident). Never allocates: Fill() reserved room
  // for the whole pool.
  void Push(uint16_t id) noexcept { ids_.push_back(id); }
  // A buffer with no resident pages: at the bottom, used last.
  void PushClean(uint16_t id) {
    ids_.insert(ids_.begin(), id);  // O(size), only when the ring is drained
    ++clean_;
  }
  // Buffers that may have resident pages.
  size_t dirty() const noexcept { return ids_.size() - clean_; }
  // The buffer Pop() would return, left in place (a receive that may find no bytes). Requires
  // !empty().
  uint16_t Top() const noexcept { return ids_.back(); }
  // Requires !empty().
  uint16_t Pop() noexcept {
    uint16_t id = ids_.back();
    ids_.pop_back();
    clean_ = std::min(clean_, ids_.size());
    ++popped_;
    return id;
  }
  // Gives back (madvise MADV_DONTNEED) the pages of the buffers that the period since the last
  // call did not need: all but the top `pops since then` of the ones that may be resident, so a
  // steady load keeps its working set and a past burst's buffers go. Only pages that lie wholly
  // inside a buffer are released (a buffer size that is not a multiple of the page size shares
  // pages with its neighbours). A released buffer reads as zeros and works as before; using
  // it again costs page faults. Returns how many buffers were released (one syscall each).
  size_t Release(std::byte* pool, size_t buffer_size) noexcept;

 private:
  std::vector<uint16_t> ids_;
  size_t clean_ = 0;   // ids_[0, clean_) have no resident pages
  size_t popped_ = 0;  // Pop()s since the last Release()
};

}  // namespace kev::internal

#endif  // KEV_KEVENT_BUFFER_RESERVE_H_
