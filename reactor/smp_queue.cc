#include "reactor/smp_queue.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <stdexcept>
#include <string>

namespace kev {
namespace {

// Sleep states of a shard (SmpMessageMatrix::Shard::state).
enum SleepState : int {
  kAwake = 0,
  kSleeping = 1,         // Wake me if you publish to me.
  kSleepingBlocked = 2,  // Also wake me if you free space in a ring I produce into.
};

// Bits of Shard::peer_flags[k]: what this shard did to peer k since the last wake check.
constexpr std::uint8_t kPublishedTo = 1;   // Published requests or replies that k consumes.
constexpr std::uint8_t kFreedSpaceOf = 2;  // Popped from a ring that k produces into.

// Upper bound on messages published per PushBatch call (a stack array of pointers).
constexpr std::size_t kFlushBatch = 64;

// Counters have a single writer, so a load + store is enough (no locked read-modify-write on
// the hot path). Release so that a reader that acquires a later counter (Outstanding()) also
// sees the earlier ones.
void Bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_release);
}

// The seq_cst fence of the wake-up protocol (see the header). ThreadSanitizer does not model
// standalone fences and GCC warns about that; it is harmless here because every variable the
// protocol reads across threads is atomic (TSan has no data race to miss), and the runtime
// still executes a real fence.
inline void FullFence() noexcept {
#if defined(__SANITIZE_THREAD__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
#pragma GCC diagnostic pop
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

}  // namespace

struct SmpMessageMatrix::Shard {
  // Owned by the shard's thread (DiscardAll() aside).
  std::unique_ptr<StagedList[]> staged_requests;  // [target]
  std::unique_ptr<StagedList[]> staged_replies;   // [source]
  std::unique_ptr<std::uint8_t[]> peer_flags;     // [peer], kPublishedTo | kFreedSpaceOf
  std::size_t staged = 0;                         // Messages in both staged lists.
  bool flags_pending = false;                     // Some peer_flags entry is non-zero.
  Waker* waker = nullptr;

  // Written by the shard's thread only, read by anyone.
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> wakeups{0};
  std::atomic<std::uint64_t> sleeps{0};
  std::atomic<std::uint64_t> ring_full{0};
  std::atomic<std::uint64_t> discarded{0};

  // Read by every peer on each flush that touches this shard; on its own cache line so that
  // the counter stores above do not keep invalidating the peers' copy.
  alignas(internal::kCacheLinePadding) std::atomic<int> state{kAwake};
};

SmpMessageMatrix::SmpMessageMatrix(unsigned shards, std::size_t ring_capacity)
    : shard_count_(shards) {
  if (shards == 0) throw std::invalid_argument("SmpMessageMatrix needs at least one shard");
  shards_.reset(new Shard[shards]);
  for (unsigned i = 0; i < shards; ++i) {
    shards_[i].staged_requests.reset(new StagedList[shards]);
    shards_[i].staged_replies.reset(new StagedList[shards]);
    shards_[i].peer_flags.reset(new std::uint8_t[shards]());
  }
  requests_.reserve(std::size_t{shards} * shards);
  replies_.reserve(std::size_t{shards} * shards);
  for (std::size_t i = 0; i < std::size_t{shards} * shards; ++i) {
    requests_.push_back(std::make_unique<Ring>(ring_capacity));  // Throws on a bad capacity.
    replies_.push_back(std::make_unique<Ring>(ring_capacity));
  }
}

SmpMessageMatrix::~SmpMessageMatrix() { DiscardAll(); }

void SmpMessageMatrix::CheckShard(unsigned shard) const noexcept {
  // One compare per call: an out-of-range index would corrupt another shard's rings silently.
  if (shard >= shard_count_) [[unlikely]] {
    std::fprintf(stderr, "kev: SmpMessageMatrix: shard %u out of range (%u shards)\n", shard,
                 shard_count_);
    std::abort();
  }
}

void SmpMessageMatrix::SetWaker(unsigned shard, Waker* waker) noexcept {
  CheckShard(shard);
  shards_[shard].waker = waker;
}

void SmpMessageMatrix::Send(unsigned from, unsigned to, SmpMessage* msg) noexcept {
  CheckShard(from);
  CheckShard(to);
  Shard& me = shards_[from];
  StagedList& list = me.staged_requests[to];
  msg->smp_next_ = nullptr;
  if (list.tail != nullptr) {
    list.tail->smp_next_ = msg;
  } else {
    list.head = msg;
  }
  list.tail = msg;
  ++me.staged;
  Bump(me.sent);
}

// Pushes the longest prefix of `list` that fits into `ring`. The next link of every message is
// read before the batch is published: once published, the consumer may run it, restage it or
// (after the reply) free it, so the producer must not touch it again.
std::size_t SmpMessageMatrix::Publish(StagedList& list, Ring& ring) noexcept {
  std::size_t total = 0;
  while (list.head != nullptr) {
    SmpMessage* batch[kFlushBatch];
    std::size_t n = 0;
    SmpMessage* rest = list.head;
    for (; rest != nullptr && n < kFlushBatch; rest = rest->smp_next_) batch[n++] = rest;
    const std::size_t pushed = ring.PushBatch(std::span<SmpMessage* const>(batch, n));
    total += pushed;
    if (pushed < n) {
      list.head = batch[pushed];  // Still ours: not published.
      break;
    }
    list.head = rest;
  }
  if (list.head == nullptr) list.tail = nullptr;
  return total;
}

std::size_t SmpMessageMatrix::Flush(unsigned self) noexcept {
  CheckShard(self);
  Shard& me = shards_[self];
  std::size_t published = 0;
  if (me.staged != 0) {
    bool left_behind = false;
    for (unsigned k = 0; k < shard_count_; ++k) {
      if (me.staged_requests[k].head != nullptr) {
        const std::size_t n = Publish(me.staged_requests[k], RequestRing(self, k));
        if (n != 0) me.peer_flags[k] |= kPublishedTo;
        left_behind |= me.staged_requests[k].head != nullptr;
        published += n;
      }
      if (me.staged_replies[k].head != nullptr) {
        const std::size_t n = Publish(me.staged_replies[k], ReplyRing(k, self));
        if (n != 0) me.peer_flags[k] |= kPublishedTo;
        left_behind |= me.staged_replies[k].head != nullptr;
        published += n;
      }
    }
    me.staged -= published;
    if (published != 0) me.flags_pending = true;
    if (left_behind) Bump(me.ring_full);
  }
  if (me.flags_pending) WakePeers(me);
  return published;
}

void SmpMessageMatrix::WakePeers(Shard& me) noexcept {
  // Pairs with the fence in TryEnterSleep(): our ring index stores (above, and in Poll) are
  // ordered before the state loads below. One fence per loop turn that did cross-shard work.
  FullFence();
  const unsigned self = static_cast<unsigned>(&me - shards_.get());
  for (unsigned k = 0; k < shard_count_; ++k) {
    const std::uint8_t flags = me.peer_flags[k];
    if (flags == 0) continue;
    me.peer_flags[k] = 0;
    if (k == self) continue;  // We are awake by definition.
    Shard& peer = shards_[k];
    int state = peer.state.load(std::memory_order_relaxed);
    const bool wake = ((flags & kPublishedTo) != 0 && state != kAwake) ||
                      ((flags & kFreedSpaceOf) != 0 && state == kSleepingBlocked);
    // The CAS elects one waker among all peers (a Wake() is a syscall in the reactor).
    if (wake && peer.state.compare_exchange_strong(state, kAwake, std::memory_order_relaxed) &&
        peer.waker != nullptr) {
      peer.waker->Wake();
      Bump(me.wakeups);
    }
  }
  me.flags_pending = false;
}

std::size_t SmpMessageMatrix::Poll(unsigned self) noexcept {
  CheckShard(self);
  Shard& me = shards_[self];
  std::size_t handled = 0;
  SmpMessage* batch[kPollBatch];
  for (unsigned k = 0; k < shard_count_; ++k) {
    // Replies first: completing our own work frees promises (and memory) soonest.
    std::size_t n = ReplyRing(self, k).PopBatch(batch);
    if (n != 0) {
      me.peer_flags[k] |= kFreedSpaceOf;
      me.flags_pending = true;
      for (std::size_t i = 0; i < n; ++i) batch[i]->Complete();
      Bump(me.completed, n);
      handled += n;
    }
    n = RequestRing(k, self).PopBatch(batch);
    if (n != 0) {
      me.peer_flags[k] |= kFreedSpaceOf;
      me.flags_pending = true;
      StagedList& replies = me.staged_replies[k];
      for (std::size_t i = 0; i < n; ++i) {
        SmpMessage* msg = batch[i];
        msg->Process();
        // Stage the reply right away so per-pair order is the processing order.
        msg->smp_next_ = nullptr;
        if (replies.tail != nullptr) {
          replies.tail->smp_next_ = msg;
        } else {
          replies.head = msg;
        }
        replies.tail = msg;
      }
      me.staged += n;
      Bump(me.received, n);
      handled += n;
    }
  }
  return handled;
}

bool SmpMessageMatrix::HasIncoming(unsigned self) const noexcept {
  CheckShard(self);
  for (unsigned k = 0; k < shard_count_; ++k) {
    if (!RequestRing(k, self).Empty() || !ReplyRing(self, k).Empty()) return true;
  }
  return false;
}

bool SmpMessageMatrix::HasStaged(unsigned self) const noexcept {
  CheckShard(self);
  return shards_[self].staged != 0;
}

bool SmpMessageMatrix::StagedRingHasSpace(unsigned self) noexcept {
  Shard& me = shards_[self];
  for (unsigned k = 0; k < shard_count_; ++k) {
    if (me.staged_requests[k].head != nullptr && !RequestRing(self, k).Full()) return true;
    if (me.staged_replies[k].head != nullptr && !ReplyRing(k, self).Full()) return true;
  }
  return false;
}

bool SmpMessageMatrix::TryEnterSleep(unsigned self) noexcept {
  CheckShard(self);
  Shard& me = shards_[self];
  if (me.waker == nullptr) return false;  // Nobody could wake us.
  Flush(self);
  const bool blocked = me.staged != 0;
  me.state.store(blocked ? kSleepingBlocked : kSleeping, std::memory_order_relaxed);
  // Pairs with the fence in WakePeers(): either our re-check below sees a peer's publication
  // (or freed space), or that peer's state load sees the store above and wakes us.
  FullFence();
  if (HasIncoming(self) || (blocked && StagedRingHasSpace(self))) {
    me.state.store(kAwake, std::memory_order_relaxed);
    return false;
  }
  Bump(me.sleeps);
  return true;
}

void SmpMessageMatrix::ExitSleep(unsigned self) noexcept {
  CheckShard(self);
  // Relaxed: the state only steers wake-ups; message data is published by the rings.
  shards_[self].state.store(kAwake, std::memory_order_relaxed);
}

std::uint64_t SmpMessageMatrix::Outstanding(unsigned shard) const noexcept {
  CheckShard(shard);
  const Shard& s = shards_[shard];
  // Finished counts first: each was stored after the send it finishes, so the (acquire) load of
  // `sent` afterwards sees at least as many sends. The clamp is belt and braces.
  const std::uint64_t finished =
      s.completed.load(std::memory_order_acquire) + s.discarded.load(std::memory_order_acquire);
  const std::uint64_t sent = s.sent.load(std::memory_order_acquire);
  return sent > finished ? sent - finished : 0;
}

SmpCounters SmpMessageMatrix::Counters(unsigned shard) const noexcept {
  CheckShard(shard);
  const Shard& s = shards_[shard];
  SmpCounters c;
  c.messages_sent = s.sent.load(std::memory_order_acquire);
  c.messages_received = s.received.load(std::memory_order_acquire);
  c.replies_completed = s.completed.load(std::memory_order_acquire);
  c.wakeups_sent = s.wakeups.load(std::memory_order_acquire);
  c.sleeps = s.sleeps.load(std::memory_order_acquire);
  c.ring_full = s.ring_full.load(std::memory_order_acquire);
  c.discarded = s.discarded.load(std::memory_order_acquire);
  return c;
}

std::size_t SmpMessageMatrix::DiscardList(StagedList& list, bool processed,
                                          unsigned source) noexcept {
  std::size_t n = 0;
  for (SmpMessage* msg = list.head; msg != nullptr;) {
    SmpMessage* next = msg->smp_next_;  // Read first: Discard() may free the message.
    msg->Discard(processed);
    msg = next;
    ++n;
  }
  list = StagedList{};
  Bump(shards_[source].discarded, n);
  return n;
}

std::size_t SmpMessageMatrix::DiscardRing(Ring& ring, bool processed, unsigned source) noexcept {
  std::size_t n = 0;
  SmpMessage* msg;
  while (ring.TryPop(&msg)) {
    msg->Discard(processed);
    ++n;
  }
  Bump(shards_[source].discarded, n);
  return n;
}

std::size_t SmpMessageMatrix::DiscardAll() noexcept {
  std::size_t total = 0;
  for (unsigned i = 0; i < shard_count_; ++i) {
    Shard& s = shards_[i];
    for (unsigned k = 0; k < shard_count_; ++k) {
      total += DiscardList(s.staged_requests[k], /*processed=*/false, /*source=*/i);
      total += DiscardRing(RequestRing(i, k), /*processed=*/false, /*source=*/i);
      total += DiscardList(s.staged_replies[k], /*processed=*/true, /*source=*/k);
      total += DiscardRing(ReplyRing(k, i), /*processed=*/true, /*source=*/k);
    }
    s.staged = 0;
    std::fill_n(s.peer_flags.get(), shard_count_, std::uint8_t{0});
    s.flags_pending = false;
  }
  return total;
}

}  // namespace kev
