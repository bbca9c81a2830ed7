// SmpMessageMatrix: the shard-to-shard message channels of kev's SMP layer.
//
// For N shards the matrix holds, for every ordered pair (i, j), two SpscRing<SmpMessage*>:
//   requests(i, j): produced by shard i, consumed by shard j  (i asks j to run a message)
//   replies(i, j):  produced by shard j, consumed by shard i  (j hands the message back)
// A message is an intrusive SmpMessage owned by its sender. Its Process() runs on the target
// shard; the same object then travels back through the reply ring and its Complete() runs on the
// source shard, which is where a promise can be fulfilled without any lock. Nothing is allocated
// after construction: staging uses a link inside the message.
//
// A shard's loop turn (the reactor does this; tests do it with plain std::threads):
//   matrix.Send(me, target, msg);      // any number of times: stages locally, no atomics
//   matrix.Poll(me);                   // run Process() of incoming requests, Complete() of replies
//   matrix.Flush(me);                  // publish staged requests/replies, one store per ring,
//                                      // and wake peers that sleep
//   if (nothing else to do && matrix.TryEnterSleep(me)) block_until_woken();
//   matrix.ExitSleep(me);
//
// Backpressure: when a ring is full, Flush() publishes what fits and leaves the rest staged, in
// order, for the next Flush(). Messages are never dropped and Send()/Flush() never block.
//
// Wake-up protocol (no lost wake-ups; docs/smp.md has the proof sketch): each shard has an
// atomic sleep state, kAwake, kSleeping or kSleepingBlocked (sleeping with staged messages that
// wait for ring space). It is a Dekker pair of store -> seq_cst fence -> load on each side:
//   sleeper:  state = kSleeping[Blocked];  fence(seq_cst);  re-check its incoming rings (and,
//             if blocked, whether any of its full rings has space); only if all still says
//             "nothing to do" may it block.
//   producer: publish (ring tail store);    fence(seq_cst);  load the target's state; if not
//             kAwake, CAS it to kAwake and, if the CAS won, call the target's Waker::Wake().
//   consumer: free space (ring head store);  fence(seq_cst);  if the producer's state is
//             kSleepingBlocked, CAS and Wake() likewise.
// The fences are totally ordered, so either the sleeper's re-check sees the publication or the
// publisher sees the sleep state. A Wake() may therefore arrive after the re-check but before
// the sleeper actually blocks: Waker implementations must latch (eventfd counter, a flag under
// a mutex, ...). Spurious wake-ups are possible and harmless. The CAS makes one Wake() per
// sleep, however many peers publish.
//
// Shutdown: call DiscardAll() (or destroy the matrix) once no shard thread uses it any more.
// Every message still staged or in a ring gets Discard(processed) instead of Process()/
// Complete(), and is counted in SmpCounters::discarded of its source shard. To drain instead,
// keep running loop turns until Outstanding(s) == 0 for every shard s before stopping.
//
// Thread-safety: methods taking a `self`/`from` shard index must be called only by that shard's
// thread (one thread per shard at a time). Counters(), Outstanding() and HasIncoming() may be
// called from any thread. SetWaker() and DiscardAll() need all shard threads quiescent.
#ifndef KEV_REACTOR_SMP_QUEUE_H_
#define KEV_REACTOR_SMP_QUEUE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "reactor/spsc_ring.h"

namespace kev {

// Wakes one sleeping shard. The reactor implements it with an eventfd or an io_uring message;
// tests with a condition variable.
class Waker {
 public:
  // Called from any shard thread. Makes the owner's current block return, or, if the owner is
  // not blocked yet, its next block return immediately (the wake-up must latch). Must not
  // block for long and must not throw.
  virtual void Wake() noexcept = 0;

 protected:
  ~Waker() = default;
};

// A cross-shard message. Derive from it, keep it alive from Send() until Complete() or
// Discard() has run, and free it (if heap-allocated) in one of those.
class SmpMessage {
 public:
  SmpMessage() = default;
  SmpMessage(const SmpMessage&) = delete;
  SmpMessage& operator=(const SmpMessage&) = delete;
  virtual ~SmpMessage() = default;

  // Runs on the target shard, exactly once, unless the message is discarded first. Must not
  // free the message (it still has to travel back) and must not call Poll() re-entrantly;
  // it may Send() new messages from the target shard.
  virtual void Process() noexcept = 0;

  // Runs on the source shard after Process() has run on the target. The matrix never touches
  // the message afterwards: this is the place to fulfil a promise and free the message.
  virtual void Complete() noexcept = 0;

  // Runs instead of the remaining steps when DiscardAll() finds the message in flight, on the
  // thread calling DiscardAll(), with `processed` telling whether Process() already ran. The
  // source shard is stopped by then: only release resources here. The matrix never touches the
  // message afterwards.
  virtual void Discard(bool processed) noexcept = 0;

 private:
  friend class SmpMessageMatrix;
  // Staging link, owned by whichever shard currently stages the message.
  SmpMessage* smp_next_ = nullptr;
};

// Per-shard counters for metrics. Each is written only by its shard (DiscardAll() excepted)
// and readable from any thread; a snapshot may mix values from slightly different moments.
struct SmpCounters {
  std::uint64_t messages_sent = 0;      // Send() calls by this shard.
  std::uint64_t messages_received = 0;  // Process() calls run on this shard.
  std::uint64_t replies_completed = 0;  // Complete() calls run on this shard.
  std::uint64_t wakeups_sent = 0;       // Waker::Wake() calls this shard made for peers.
  std::uint64_t sleeps = 0;             // TryEnterSleep() calls that allowed blocking.
  std::uint64_t ring_full = 0;          // Flushes that left messages staged on a full ring.
  std::uint64_t discarded = 0;          // This shard's messages discarded at shutdown.
};

class SmpMessageMatrix {
 public:
  // 256 slots of 8 bytes: 2 KiB per ring, 2*N*N rings. Large enough that a shard rarely stalls
  // on a busy peer, small enough to stay in L2 for N up to a few dozen.
  static constexpr std::size_t kDefaultRingCapacity = 256;

  // Creates the rings for `shards` shards (>= 1), each of `ring_capacity` slots (a power of
  // two >= 2). Throws std::invalid_argument on bad arguments, std::bad_alloc on exhaustion.
  // This is the only allocation the matrix makes.
  explicit SmpMessageMatrix(unsigned shards,
                            std::size_t ring_capacity = kDefaultRingCapacity);
  SmpMessageMatrix(const SmpMessageMatrix&) = delete;
  SmpMessageMatrix& operator=(const SmpMessageMatrix&) = delete;

  // Discards every message still in flight (as DiscardAll()). No shard thread may be using the
  // matrix any more.
  ~SmpMessageMatrix();

  unsigned shard_count() const noexcept { return shard_count_; }

  // Installs the Waker used to wake `shard` (not owned; must outlive the matrix's use by shard
  // threads). nullptr means "this shard never sleeps". Call before shard threads start using
  // the matrix (or while they are quiescent).
  void SetWaker(unsigned shard, Waker* waker) noexcept;

  // Shard `from` only. Stages `msg` for shard `to` (from == to is allowed and goes through a
  // ring like any other pair). Takes no lock, does no atomic read-modify-write, allocates
  // nothing; the message becomes visible to the target at the next Flush(from). Messages from
  // one shard to one target are processed, and completed, in Send() order.
  // `msg` must not be in flight already. Aborts the process on an out-of-range shard index.
  void Send(unsigned from, unsigned to, SmpMessage* msg) noexcept;

  // Shard `self` only. Publishes staged requests and replies, oldest first, one index store per
  // ring; leaves in place what does not fit (SmpCounters::ring_full counts that), then wakes
  // sleeping peers that have new messages or new ring space. Returns the number of messages
  // published. Never blocks.
  std::size_t Flush(unsigned self) noexcept;

  // Shard `self` only. Runs Process() for up to kPollBatch incoming requests per source and
  // stages their replies, and runs Complete() for up to kPollBatch replies per target. Returns
  // the number of messages handled; call again (after Flush) if it returned a lot.
  std::size_t Poll(unsigned self) noexcept;

  // Shard `self` only. Flushes, then announces that `self` is about to block and re-checks for
  // work. Returns true if the caller may block until its Waker fires; false if work is pending
  // (incoming messages, or space appeared for staged ones) or no Waker is set. Either way, call
  // ExitSleep(self) afterwards.
  bool TryEnterSleep(unsigned self) noexcept;

  // Shard `self` only. Marks `self` awake after a block (or a refused TryEnterSleep()).
  void ExitSleep(unsigned self) noexcept;

  // Any thread. True if some request or reply for `self` was published and not yet polled.
  bool HasIncoming(unsigned self) const noexcept;

  // Shard `self` only. True if `self` has messages staged that a Flush() has not published.
  bool HasStaged(unsigned self) const noexcept;

  // Any thread. Messages sent by `shard` whose Complete() or Discard() has not run yet. Zero on
  // every shard means nothing is in flight anywhere (the condition for a clean drain).
  std::uint64_t Outstanding(unsigned shard) const noexcept;

  // Any thread. A snapshot of `shard`'s counters.
  SmpCounters Counters(unsigned shard) const noexcept;

  // With all shard threads stopped (or otherwise quiescent, with a happens-before edge from
  // their last use), calls Discard() on every message still staged or in a ring and counts it
  // against its source shard. Returns how many were discarded.
  std::size_t DiscardAll() noexcept;

  // Upper bound on messages Poll() takes from one ring per call (a stack array of pointers);
  // bounds the time one Poll() can keep a shard away from its other work.
  static constexpr std::size_t kPollBatch = 64;

 private:
  using Ring = SpscRing<SmpMessage*>;
  struct StagedList {
    SmpMessage* head = nullptr;
    SmpMessage* tail = nullptr;
  };
  struct Shard;

  Ring& RequestRing(unsigned from, unsigned to) const noexcept {
    return *requests_[from * shard_count_ + to];
  }
  Ring& ReplyRing(unsigned source, unsigned target) const noexcept {
    return *replies_[source * shard_count_ + target];
  }
  void CheckShard(unsigned shard) const noexcept;
  std::size_t Publish(StagedList& list, Ring& ring) noexcept;
  void WakePeers(Shard& me) noexcept;
  bool StagedRingHasSpace(unsigned self) noexcept;
  std::size_t DiscardList(StagedList& list, bool processed, unsigned source) noexcept;
  std::size_t DiscardRing(Ring& ring, bool processed, unsigned source) noexcept;

  const unsigned shard_count_;
  std::unique_ptr<Shard[]> shards_;
  std::vector<std::unique_ptr<Ring>> requests_;  // [from * N + to]
  std::vector<std::unique_ptr<Ring>> replies_;   // [source * N + target]
};

}  // namespace kev

#endif  // KEV_REACTOR_SMP_QUEUE_H_
