// kevent/internal/queue.h: the kevent queue core, single-threaded.
//
// A Queue holds the requests of one kevent queue, keyed by (type, id, user); an intrusive ready
// list (oldest ready first) with per-request coalesced occurrence counts; the timer heap; and the
// optional user ring. It implements every rule of KEVENT_SPEC.md that does not involve threads:
// ADD / MODIFY / REMOVE / READY with per-entry ret_flags, the request flags (ONESHOT,
// WAKEUP_ALL, ET, LAST_CHECK, ALWAYS_QUEUE, READY), delivery into a buffer and/or the ring, and
// the ring's commit protocol. The C API (kevent/kevent.cc) wraps it with a lock and waiting
// threads; a reactor shard embeds it directly.
//
// Example:
//   kev::kevent_internal::Queue q({});
//   ukevent uk{};
//   uk.type = KEVENT_UNOTIFY; uk.event = 1; uk.id.raw[0] = 7;
//   q.Ctl(KEVENT_CTL_ADD, uk);          // uk.ret_flags == 0: registered, not ready
//   uk.ret_data[0] = 42;
//   q.Ctl(KEVENT_CTL_READY, uk);        // now on the ready list
//   ukevent out[4];
//   size_t n = q.Dequeue(out, 4);       // n == 1, out[0].ret_data[0] == 42, DONE
//
// Threading: not thread-safe. One thread at a time (the C API holds the queue's mutex around
// every call, observer callbacks included). With a Poller, the completions of the origins'
// operations run inside Poller::Wait on the thread that owns the queue at that moment (the C
// API's driving waiter keeps the mutex while it is in Wait), so they need no lock either. The
// Poller must outlive the Queue; destroy the Queue first (origins with operations in flight
// orphan them, and they free themselves at the Poller's final completions). Allocation: one
// Request per ADD through Ctl, from the queue's RequestPool (none for AddRequest); delivering,
// re-arming and coalescing allocate nothing.
//
// Files: queue.cc (requests, control, timers, origins), queue_delivery.cc (the ready list,
// confirmation, delivery and level-triggered re-checks).
#ifndef KEV_KEVENT_INTERNAL_QUEUE_H_
#define KEV_KEVENT_INTERNAL_QUEUE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "kevent/internal/huge_page_allocator.h"
#include "kevent/internal/intrusive_list.h"
#include "kevent/internal/origin.h"
#include "kevent/internal/request.h"
#include "kevent/internal/ring.h"
#include "kevent/internal/timer_heap.h"
#include "kevent/ukevent.h"

namespace kev::kevent_internal {

// Every KEVENT_REQ_* flag; others are rejected with EINVAL.
inline constexpr uint32_t kAllRequestFlags = KEVENT_REQ_ONESHOT | KEVENT_REQ_WAKEUP_ALL |
                                             KEVENT_REQ_ET | KEVENT_REQ_LAST_CHECK |
                                             KEVENT_REQ_ALWAYS_QUEUE | KEVENT_REQ_READY;

// The time source of a queue; tests substitute a manual one.
class Clock {
 public:
  virtual ~Clock() = default;
  // CLOCK_MONOTONIC, nanoseconds.
  virtual int64_t NowNs() = 0;
};

// The real CLOCK_MONOTONIC (a vDSO call, no syscall).
Clock& MonotonicClock();

// What the queue tells its owner. Called synchronously, from inside the Queue call that caused
// it (so under the C API's lock); must not call back into the Queue.
class QueueObserver {
 public:
  virtual ~QueueObserver() = default;
  // A request joined the ready list; `wake_all` if it has KEVENT_REQ_WAKEUP_ALL.
  virtual void OnReady(bool wake_all) = 0;
  // The ready list became non-empty (true) or empty (false).
  virtual void OnReadyListChanged(bool nonempty) = 0;
  // A timer was armed: the earliest deadline may be earlier than before.
  virtual void OnTimerArmed() = 0;
};

struct QueueOptions {
  // The user ring (header plus ring_size slots), or null with ring_size 0. The caller
  // validates (ring_size >= 2) and keeps it alive as long as the queue.
  kevent_ring* ring = nullptr;
  unsigned ring_size = 0;
  Clock* clock = nullptr;             // null: MonotonicClock()
  QueueObserver* observer = nullptr;  // may be null
  // For OS-driven origins (SOCKET, PIPE, POLL, AIO, SIGNAL...): null rejects them with
  // EOPNOTSUPP. Must outlive the queue. Used only by the thread that owns the queue at that
  // moment (the C API: the one holding its lock), like every other part of the queue.
  Poller* poller = nullptr;
};

class AioOperation;

// The queue's index holds only Request pointers, hashed and compared by the request's key
// (RequestKey::Of(r->uk)), looked up by RequestKey. An 8-byte slot instead of a 32-byte
// (key, pointer) pair: a million timers need an 18 MB table instead of 66 MB, which is most of
// what arming them costs (growing and zeroing the table, and a cache miss per lookup).
struct RequestIndexHash {
  using is_transparent = void;
  size_t operator()(const RequestKey& k) const { return absl::Hash<RequestKey>{}(k); }
  size_t operator()(const Request* r) const { return (*this)(RequestKey::Of(r->uk)); }
};
struct RequestIndexEq {
  using is_transparent = void;
  bool operator()(const Request* a, const Request* b) const { return a == b; }
  bool operator()(const Request* a, const RequestKey& k) const { return RequestKey::Of(a->uk) == k; }
  bool operator()(const RequestKey& k, const Request* a) const { return RequestKey::Of(a->uk) == k; }
};

// Memory for the requests Queue::Ctl allocates: fixed-size blocks carved from slabs and kept on
// a free list, so a million ADD/REMOVE pairs cost no malloc/free and no page faults after the
// first round; a new slab is handed out front to back (bump allocation). Slabs double from 64 blocks up to one 2 MiB huge page each (AllocateHuge): a big
// queue's first round takes one page fault per 16k requests instead of one per 32. Slabs are
// released with the pool (the queue): memory stays at the queue's peak request count. Under
// ASan, free blocks are poisoned so use-after-free is still reported.
class RequestPool {
 public:
  RequestPool() = default;
  RequestPool(const RequestPool&) = delete;
  RequestPool& operator=(const RequestPool&) = delete;
  ~RequestPool();

  // Uninitialised memory for one Request. Throws std::bad_alloc.
  void* Allocate();
  // Returns a block from Allocate whose Request was destroyed.
  void Free(void* block);

 private:
  union Block {
    Block* next;
    alignas(Request) unsigned char bytes[sizeof(Request)];
  };
  Block* free_ = nullptr;  // blocks given back (LIFO)
  // The newest slab's never-used tail [fresh_, fresh_end_): handed out in address order with no
  // free-list link to write beforehand or read back (a cold-line miss per block otherwise).
  Block* fresh_ = nullptr;
  Block* fresh_end_ = nullptr;
  std::vector<std::pair<Block*, size_t>> slabs_;  // (slab, blocks)
  size_t next_slab_blocks_ = 64;  // doubles up to kMaxSlabBlocks
  static constexpr size_t kMaxSlabBlocks = kHugePageBytes / sizeof(Block);
};

class Queue final : private OriginContext {
 public:
  explicit Queue(const QueueOptions& options);
  // Removes every request: queue-owned ones are freed, caller-owned ones unlinked.
  ~Queue() override;
  Queue(const Queue&) = delete;
  // Removes every request (as the destructor does); the queue stays usable.
  void Clear();
  Queue& operator=(const Queue&) = delete;

  // --- Control (kevent_ctl, one entry) --------------------------------------------------------
  // Applies cmd (KEVENT_CTL_ADD / REMOVE / MODIFY / READY; the caller rejects others) to `uk`
  // and writes the outcome into uk.ret_flags (0 queued, DONE, BROKEN|DONE with the positive
  // errno in ret_data[0]); an ADD that completes at once also gets ret_data. Rejections:
  // EINVAL (unknown type or request flag, NAIO, bad id/event), EOPNOTSUPP (type not implemented),
  // EEXIST (ADD of an existing key), ENOENT (no matching request).
  void Ctl(unsigned cmd, ukevent& uk);
  // Ctl of each of entries[0..n) in order (kevent_ctl's array), reading the clock once for the
  // batch. If an entry throws (std::bad_alloc), the entries before it were applied.
  void CtlBatch(unsigned cmd, ukevent* entries, size_t n);

  // ADD of a caller-owned request (a reactor awaiter embeds it); r->uk is the request. Same
  // outcome as Ctl(ADD) in r->uk.ret_flags / ret_data. r stays registered unless it was
  // rejected or completed at once as ONESHOT; the caller must RemoveRequest it before
  // destroying it.
  void AddRequest(Request* r);
  // Removes a registered request (either ownership); a ready one is dropped undelivered.
  void RemoveRequest(Request* r);

  // --- Delivery ---------------------------------------------------------------------------------
  // Moves up to `max` ready events, oldest first, into buf, each also copied into the ring if
  // there is one (COPY_FAILED on the one that did not fit, which is still in buf). ONESHOT
  // and broken requests are removed; level-triggered ones are re-checked afterwards.
  size_t Dequeue(ukevent* buf, size_t max);
  // Moves up to `max` ready events into the ring while it has free slots (kevent_wait).
  size_t DequeueToRing(size_t max);

  // Fires due timers. Cheap when none is due (one clock read).
  void ExpireTimers();
  // The earliest armed timer's deadline (drops cancelled timers off the heap's top).
  std::optional<int64_t> NextTimerDeadline() { return timers_.NextDeadline(); }

  // --- For origins ------------------------------------------------------------------------------
  // An activity or occurrence for r (count occurrences): asks the origin's Check, and if the
  // condition holds adds `count` to r.pending and readies r (coalesced when already ready).
  // Returns true if r is ready (or broken) afterwards.
  bool Activate(Request& r, uint32_t count = 1);
  // An activity the origin has already confirmed (e.g. from a poll report it just evaluated):
  // readies r without asking Check again (each Check of a readiness origin is a syscall).
  void MarkActive(Request& r, uint32_t count = 1);
  // The origin failed for r: BROKEN|DONE with `err` (positive errno), delivered once, removed.
  void Break(Request& r, int err);
  // Call before blocking on the queue or polling its poller (see Origin::BeforeWait).
  void BeforeWait();
  // Collects what the OS has for the origins, without blocking, so that a caller who is not
  // going to block still sees new activity. When every operation in flight on the poller is
  // one the readiness origins can stand in for (Origin::PollableOps), they ask the OS directly
  // (one epoll_wait each, as a plain epoll user would) instead of a Poller::Wait(0), which is
  // an io_uring_enter that also re-arms their watches' polls; otherwise one Poller::Wait(0).
  void PollNow();

  // --- AIO (kevent/internal/aio_origin.h) -------------------------------------------------------
  // Registers a KEVENT_AIO request with a fresh positive cookie (id.raw_u64 == ptr == cookie,
  // ONESHOT) and starts `op` on the poller. Returns the cookie, or -EOPNOTSUPP without a
  // poller. The queue owns `op` from now on.
  long StartAio(std::unique_ptr<AioOperation> op);
  OriginContext& context() { return *this; }
  // The origin of `type` (nullptr if none), for entry points that act on one origin directly
  // (kevent_posix_timer_*: kevent/internal/posix_timer_origin.h).
  Origin* origin(uint32_t type) const { return OriginFor(type); }

  // --- State ------------------------------------------------------------------------------------
  size_t ready_count() const { return ready_.size(); }
  size_t size() const { return index_.size(); }
  Ring& ring() { return ring_; }
  const Ring& ring() const { return ring_; }
  // The request registered under uk's (type, id, user), or nullptr.
  Request* Find(const ukevent& uk) const;

  // Replaces the origin of `type` (tests: a fake level-triggered origin). No request of that
  // type may be registered.
  void SetOriginForTesting(uint32_t type, std::unique_ptr<Origin> origin);

 private:
  // OriginContext.
  int64_t NowNs() override;
  TimerHeap& timers() override { return timers_; }
  Poller* poller() override { return poller_; }

  Origin* OriginFor(uint32_t type) const;
  void CtlEntry(unsigned cmd, ukevent& uk);
  void NotifyIfTimerEarlier();
  // indexed: r's key is already in index_ (Ctl's ADD reserved it).
  void Add(Request* r, ukevent& io, bool indexed = false);
  void Modify(ukevent& uk);
  void Remove(ukevent& uk);
  void MarkReady(ukevent& uk);

  void MakeReady(Request& r);
  void UnlinkReady(Request& r);
  // r.recheck = v, keeping ready_confirms_ right when r is on the ready list.
  void SetRecheck(Request& r, bool v);
  // Pops the next request to deliver, applying LAST_CHECK and level-triggered confirmation.
  Request* PopDeliverable();
  // The event handed to the user for r.
  void Build(const Request& r, ukevent& out) const;
  // After delivery: ONESHOT / broken removed, level-triggered queued for re-check (unless its
  // origin re-checks it itself: Origin::RechecksItself).
  void Complete(Request& r);
  void RunRechecks();
  void Recheck(Request& r, int rc);
  // Check of rs[0..n) through each origin's CheckMany (same-type runs).
  void CheckBatch(Request* const* rs, int* rcs, size_t n);
  // Confirms (batched) the requests among the first `max` ready ones that need it; the results
  // are used by PopDeliverable within the same Dequeue.
  void PrecheckReady(size_t max);
  static constexpr size_t kCheckBatch = 128;
  // How far CtlBatch prefetches index_ ahead of the entry it applies (see CtlBatch).
  static constexpr size_t kPrefetchAhead = 8;
  // indexed == false: the caller already erased r's key from index_.
  void Unregister(Request& r, bool indexed = true);

  Clock* const clock_;
  QueueObserver* const observer_;
  Poller* const poller_;
  std::array<std::unique_ptr<Origin>, KEVENT_MAX> origins_;

  RequestPool pool_;  // before index_: requests die (Clear) before their memory
  // Registered requests; a request's (type, id, user) must not change while it is in here.
  absl::flat_hash_set<Request*, RequestIndexHash, RequestIndexEq, HugePageAllocator<Request*>>
      index_;
  IntrusiveList<Request, &Request::ready_hook> ready_;
  // Ready requests with LAST_CHECK or `recheck` (those PrecheckReady may batch): when fewer
  // than two, a Dequeue does not walk the ready list for them.
  size_t ready_confirms_ = 0;
  // Delivered level-triggered requests to check again (shares ready_hook: never on both).
  IntrusiveList<Request, &Request::ready_hook> recheck_;
  TimerHeap timers_;
  // Set during CtlBatch: the one clock reading its entries share.
  std::optional<int64_t> batch_now_ns_;
  Ring ring_;
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_QUEUE_H_
