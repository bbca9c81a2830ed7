#include "kevent/internal/queue.h"

#include <time.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#endif

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <limits>
#include <new>
#include <utility>

#include "kevent/internal/aio_origin.h"
#include "kevent/internal/check.h"
#include "kevent/internal/inode_origin.h"
#include "kevent/internal/pipe_origin.h"
#include "kevent/internal/poll_origin.h"
#include "kevent/internal/posix_timer_origin.h"
#include "kevent/internal/signal_origin.h"
#include "kevent/internal/socket_origin.h"
#include "kevent/internal/timer_origin.h"
#include "kevent/internal/unotify_origin.h"
#include "kevent/poller.h"

namespace kev::kevent_internal {
namespace {

class RealMonotonicClock final : public Clock {
 public:
  int64_t NowNs() override {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO: no syscall
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  }
};

void Reject(ukevent& uk, int err) {
  uk.ret_flags = KEVENT_RET_BROKEN | KEVENT_RET_DONE;
  uk.ret_data[0] = static_cast<uint32_t>(err);
}

uint32_t SaturatingAdd(uint32_t a, uint32_t b) {
  const uint32_t max = std::numeric_limits<uint32_t>::max();
  return a > max - b ? max : a + b;
}

}  // namespace

RequestPool::~RequestPool() {
  for (auto [slab, n] : slabs_) {
#ifdef __SANITIZE_ADDRESS__
    // Unpoison before handing back to the allocator.
    ASAN_UNPOISON_MEMORY_REGION(slab, n * sizeof(Block));
#endif
    FreeHuge(slab, n * sizeof(Block));
  }
}

void* RequestPool::Allocate() {
  Block* b = free_;
  if (b != nullptr) {
#ifdef __SANITIZE_ADDRESS__
    ASAN_UNPOISON_MEMORY_REGION(b, sizeof(Block));
#endif
    free_ = b->next;
    return b;
  }
  if (fresh_ == fresh_end_) {
    // A new slab only when the free list is dry and the last slab used up: amortised, not per
    // request.
    const size_t n = next_slab_blocks_;
    auto* slab = static_cast<Block*>(AllocateHuge(n * sizeof(Block)));
    try {
      slabs_.emplace_back(slab, n);
    } catch (...) {
      FreeHuge(slab, n * sizeof(Block));
      throw;
    }
    next_slab_blocks_ = std::min(n * 2, kMaxSlabBlocks);
#ifdef __SANITIZE_ADDRESS__
    ASAN_POISON_MEMORY_REGION(slab, n * sizeof(Block));  // unused blocks are off limits too
#endif
    fresh_ = slab;
    fresh_end_ = slab + n;
  }
  b = fresh_++;
  // Ask for the line a few requests ahead now: the constructor's stores then rarely wait.
  __builtin_prefetch(fresh_ + 4, /*rw=*/1);
#ifdef __SANITIZE_ADDRESS__
  ASAN_UNPOISON_MEMORY_REGION(b, sizeof(Block));
#endif
  return b;
}

void RequestPool::Free(void* block) {
  auto* b = static_cast<Block*>(block);
  b->next = free_;
  free_ = b;
#ifdef __SANITIZE_ADDRESS__
  ASAN_POISON_MEMORY_REGION(b, sizeof(Block));
#endif
}

Clock& MonotonicClock() {
  static RealMonotonicClock clock;
  return clock;
}

Queue::Queue(const QueueOptions& options)
    : clock_(options.clock != nullptr ? options.clock : &MonotonicClock()),
      observer_(options.observer),
      poller_(options.poller),
      ring_(options.ring, options.ring_size) {
  origins_[KEVENT_TIMER] = std::make_unique<TimerOrigin>(context());
  origins_[KEVENT_UNOTIFY] = std::make_unique<UnotifyOrigin>();
  origins_[KEVENT_SOCKET] = std::make_unique<SocketOrigin>(context());
  origins_[KEVENT_PIPE] = std::make_unique<PipeOrigin>(context());
  origins_[KEVENT_POLL] = std::make_unique<PollOrigin>(context());
  origins_[KEVENT_AIO] = std::make_unique<AioOrigin>(context());
  origins_[KEVENT_SIGNAL] = std::make_unique<SignalOrigin>(context());
  origins_[KEVENT_INODE] = std::make_unique<InodeOrigin>(context());
  origins_[KEVENT_POSIX_TIMER] = std::make_unique<PosixTimerOrigin>(context());
}

Queue::~Queue() { Clear(); }

void Queue::Clear() {
  // Collect first: Unregister erases from the index.
  std::vector<Request*> all;
  all.reserve(index_.size());
  for (Request* r : index_) all.push_back(r);
  for (Request* r : all) Unregister(*r);
}

Origin* Queue::OriginFor(uint32_t type) const {
  return type < KEVENT_MAX ? origins_[type].get() : nullptr;
}

void Queue::SetOriginForTesting(uint32_t type, std::unique_ptr<Origin> origin) {
  KEV_CHECK(type < KEVENT_MAX);
  for (const Request* r : index_) KEV_CHECK(r->uk.type != type);
  origins_[type] = std::move(origin);
}

Request* Queue::Find(const ukevent& uk) const {
  auto it = index_.find(RequestKey::Of(uk));
  return it == index_.end() ? nullptr : *it;
}

void Queue::Ctl(unsigned cmd, ukevent& uk) { CtlBatch(cmd, &uk, 1); }

void Queue::CtlBatch(unsigned cmd, ukevent* entries, size_t n) {
  // One clock read for the whole batch: its timers count from the same instant.
  batch_now_ns_ = clock_->NowNs();
  try {
    // Every command looks its key up in index_: with a big index each lookup is a cache (and
    // TLB) miss. Prefetching the slots of the entry kPrefetchAhead further on overlaps those
    // misses instead of taking them one after the other.
    for (size_t i = 0; i < n; ++i) {
      if (i + kPrefetchAhead < n) index_.prefetch(RequestKey::Of(entries[i + kPrefetchAhead]));
      CtlEntry(cmd, entries[i]);
    }
  } catch (...) {
    batch_now_ns_.reset();
    NotifyIfTimerEarlier();
    throw;
  }
  batch_now_ns_.reset();
  NotifyIfTimerEarlier();
}

int64_t Queue::NowNs() { return batch_now_ns_ ? *batch_now_ns_ : clock_->NowNs(); }

void Queue::NotifyIfTimerEarlier() {
  // The heap says whether an Arm became its earliest entry (cancelled entries included, so a
  // sleeper's deadline is never later than the new timer unless it is told).
  if (timers_.TakeEarlierArmed() && observer_ != nullptr) observer_->OnTimerArmed();
}

void Queue::CtlEntry(unsigned cmd, ukevent& uk) {
  switch (cmd) {
    case KEVENT_CTL_ADD: {
      // Validate before allocating, so rejections cost nothing.
      if ((uk.req_flags & ~kAllRequestFlags) != 0 || uk.type >= KEVENT_MAX ||
          uk.type == KEVENT_NAIO) {
        Reject(uk, EINVAL);
        return;
      }
      if (OriginFor(uk.type) == nullptr) {
        Reject(uk, EOPNOTSUPP);
        return;
      }
      // Memory first (from the pool's free list, back on removal; may throw), so the one hash
      // lookup below can insert the request directly; a duplicate hands the block back.
      void* block = pool_.Allocate();
      Request* r = nullptr;
      index_.lazy_emplace(RequestKey::Of(uk), [&](const auto& construct) {
        r = new (block) Request(uk, /*owned=*/true);
        construct(r);
      });
      if (r == nullptr) {
        pool_.Free(block);
        Reject(uk, EEXIST);
        return;
      }
      Add(r, uk, /*indexed=*/true);
      return;
    }
    case KEVENT_CTL_REMOVE:
      Remove(uk);
      return;
    case KEVENT_CTL_MODIFY:
      Modify(uk);
      return;
    case KEVENT_CTL_READY:
      MarkReady(uk);
      return;
    default:
      Reject(uk, EINVAL);
      return;
  }
}

void Queue::AddRequest(Request* r) {
  ukevent& uk = r->uk;
  if ((uk.req_flags & ~kAllRequestFlags) != 0 || uk.type >= KEVENT_MAX || uk.type == KEVENT_NAIO) {
    Reject(uk, EINVAL);
    return;
  }
  if (OriginFor(uk.type) == nullptr) {
    Reject(uk, EOPNOTSUPP);
    return;
  }
  if (index_.contains(RequestKey::Of(uk))) {
    Reject(uk, EEXIST);
    return;
  }
  KEV_CHECK(r->queue == nullptr);
  r->queue_owned = false;
  ukevent io = uk;
  Add(r, io);
  // Report into the request itself; a registered request's ret_flags is otherwise unused.
  r->uk.ret_flags = io.ret_flags;
  if (io.ret_flags != 0) {
    r->uk.ret_data[0] = io.ret_data[0];
    r->uk.ret_data[1] = io.ret_data[1];
  }
  NotifyIfTimerEarlier();
}

void Queue::Add(Request* r, ukevent& io, bool indexed) {
  Origin* origin = OriginFor(r->uk.type);
  r->queue = this;
  r->pending = 0;
  if (!indexed) index_.insert(r);
  const int rc = origin->Enqueue(*r);
  if (rc < 0) {
    Unregister(*r);  // frees a queue-owned r
    Reject(io, -rc);
    return;
  }
  const bool ready = rc > 0 || (r->uk.req_flags & KEVENT_REQ_READY) != 0;
  if (!ready) {
    io.ret_flags = 0;
    return;
  }
  r->pending = 1;
  if ((r->uk.req_flags & KEVENT_REQ_ALWAYS_QUEUE) != 0) {
    MakeReady(*r);
    io.ret_flags = 0;
    return;
  }
  // Ready at once: completed through this call, as a delivery would be (ONESHOT removed,
  // persistent requests stay registered).
  Build(*r, io);
  Complete(*r);
  RunRechecks();
}

void Queue::Remove(ukevent& uk) {
  auto it = index_.find(RequestKey::Of(uk));
  if (it == index_.end()) {
    Reject(uk, ENOENT);
    return;
  }
  Request& r = **it;
  index_.erase(it);  // by position: no second lookup in Unregister
  Unregister(r, /*indexed=*/false);
  uk.ret_flags = KEVENT_RET_DONE;
}

void Queue::RemoveRequest(Request* r) {
  KEV_CHECK(r->queue == this);
  Unregister(*r);
}

void Queue::Modify(ukevent& uk) {
  Request* r = Find(uk);
  if (r == nullptr) {
    Reject(uk, ENOENT);
    return;
  }
  if ((uk.req_flags & ~kAllRequestFlags) != 0) {
    Reject(uk, EINVAL);
    return;
  }
  // A re-registration: whatever was pending is dropped and the request is checked afresh.
  Origin* origin = OriginFor(r->uk.type);
  origin->Dequeue(*r);
  if (r->ready) UnlinkReady(*r);
  if (r->on_recheck_list) {
    recheck_.Remove(r);
    r->on_recheck_list = false;
  }
  r->pending = 0;
  r->recheck = false;
  const uint32_t old_event = r->uk.event;
  const uint32_t old_flags = r->uk.req_flags;
  r->uk.event = uk.event;
  r->uk.req_flags = uk.req_flags;
  int rc = origin->Enqueue(*r);
  if (rc < 0) {
    Reject(uk, -rc);
    // Keep the request as it was; if even that fails now, it cannot stay registered.
    r->uk.event = old_event;
    r->uk.req_flags = old_flags;
    const int restored = origin->Enqueue(*r);
    if (restored < 0) {
      Unregister(*r);
    } else if (restored > 0) {
      r->pending = 1;
      MakeReady(*r);
    }
    return;
  }
  if (rc > 0 || (r->uk.req_flags & KEVENT_REQ_READY) != 0) {
    r->pending = 1;
    MakeReady(*r);
  }
  uk.ret_flags = KEVENT_RET_DONE;
}

void Queue::MarkReady(ukevent& uk) {
  Request* r = Find(uk);
  if (r == nullptr) {
    Reject(uk, ENOENT);
    return;
  }
  // The caller's word is the condition: no Check.
  r->uk.ret_data[0] = uk.ret_data[0];
  r->uk.ret_data[1] = uk.ret_data[1];
  r->pending = SaturatingAdd(r->pending, 1);
  MakeReady(*r);
  uk.ret_flags = 0;
}

void Queue::MarkActive(Request& r, uint32_t count) {
  KEV_CHECK(r.queue == this);
  if (r.broken_errno != 0) return;
  r.pending = SaturatingAdd(r.pending, count);
  MakeReady(r);
}

void Queue::BeforeWait() {
  for (auto& origin : origins_) {
    if (origin != nullptr) origin->BeforeWait();
  }
}

void Queue::PollNow() {
  if (poller_ == nullptr) return;
  const size_t in_flight = poller_->InFlight();
  if (in_flight == 0) return;
  size_t pollable = 0;
  for (const auto& origin : origins_) {
    if (origin != nullptr) pollable += origin->PollableOps();
  }
  if (pollable < in_flight) {
    poller_->Wait(std::chrono::nanoseconds(0));  // one syscall: completions run here
    return;
  }
  for (const auto& origin : origins_) {
    if (origin != nullptr && origin->PollableOps() > 0) origin->PollDirectly();
  }
}

long Queue::StartAio(std::unique_ptr<AioOperation> op) {
  return static_cast<AioOrigin*>(origins_[KEVENT_AIO].get())->Start(*this, std::move(op));
}

bool Queue::Activate(Request& r, uint32_t count) {
  KEV_CHECK(r.queue == this);
  if (r.broken_errno != 0) return true;
  const int rc = OriginFor(r.uk.type)->Check(r);
  if (rc < 0) {
    Break(r, -rc);
    return true;
  }
  if (rc == 0) return false;
  r.pending = SaturatingAdd(r.pending, count);
  MakeReady(r);
  return true;
}

void Queue::Break(Request& r, int err) {
  KEV_CHECK(r.queue == this);
  if (r.broken_errno != 0) return;
  r.broken_errno = err > 0 ? err : EIO;
  OriginFor(r.uk.type)->Dequeue(r);
  if (r.on_recheck_list) {
    recheck_.Remove(&r);
    r.on_recheck_list = false;
  }
  MakeReady(r);
}

void Queue::ExpireTimers() {
  if (timers_.empty()) return;
  const int64_t now = clock_->NowNs();
  while (Request* r = timers_.PopDue(now)) OriginFor(r->uk.type)->OnTimer(*r, now);
}

void Queue::Unregister(Request& r, bool indexed) {
  OriginFor(r.uk.type)->Dequeue(r);
  if (r.ready) UnlinkReady(r);
  if (r.on_recheck_list) {
    recheck_.Remove(&r);
    r.on_recheck_list = false;
  }
  if (indexed) index_.erase(&r);
  r.queue = nullptr;
  r.pending = 0;
  r.broken_errno = 0;
  r.recheck = false;
  r.prechecked = false;
  if (r.queue_owned) {
    r.~Request();
    pool_.Free(&r);
  }
}

}  // namespace kev::kevent_internal
