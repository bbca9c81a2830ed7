// The queue core's ready list and delivery (see queue.h): making requests ready and taking
// them off the list, confirming them before delivery (LAST_CHECK, level-triggered re-checks,
// batched per origin), delivery into a buffer or the ring, and the level-triggered re-check
// after it. Registration, control, timers and the origins are in queue.cc.
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "kevent/internal/check.h"
#include "kevent/internal/origin.h"
#include "kevent/internal/queue.h"

namespace kev::kevent_internal {
namespace {

// Whether r, when taken off the ready list, is to be confirmed by its origin (unless broken):
// LAST_CHECK, or readied by a level-triggered re-check.
bool MayNeedConfirm(const Request& r) {
  return (r.uk.req_flags & KEVENT_REQ_LAST_CHECK) != 0 || r.recheck;
}

bool NeedsConfirm(const Request& r) { return r.broken_errno == 0 && MayNeedConfirm(r); }

}  // namespace

void Queue::MakeReady(Request& r) {
  if (r.on_recheck_list) {
    recheck_.Remove(&r);
    r.on_recheck_list = false;
  }
  SetRecheck(r, false);  // a fresh activity confirmed by the origin
  // kevent_ready: a ONESHOT request leaves its storage once ready, so the next activity goes to
  // the next request (it is re-attached if LAST_CHECK finds it not ready after all).
  if ((r.uk.req_flags & KEVENT_REQ_ONESHOT) != 0 && r.storage != nullptr) {
    r.storage->Detach(r);
  }
  if (r.ready) return;  // coalesced
  r.ready = true;
  ready_.PushBack(&r);
  if (MayNeedConfirm(r)) ++ready_confirms_;
  if (observer_ != nullptr) {
    if (ready_.size() == 1) observer_->OnReadyListChanged(true);
    observer_->OnReady((r.uk.req_flags & KEVENT_REQ_WAKEUP_ALL) != 0);
  }
}

void Queue::SetRecheck(Request& r, bool v) {
  if (r.recheck == v) return;
  // A LAST_CHECK request is counted whatever its recheck.
  if (r.ready && (r.uk.req_flags & KEVENT_REQ_LAST_CHECK) == 0) {
    if (v) {
      ++ready_confirms_;
    } else {
      --ready_confirms_;
    }
  }
  r.recheck = v;
}

void Queue::UnlinkReady(Request& r) {
  ready_.Remove(&r);
  r.ready = false;
  if (MayNeedConfirm(r)) --ready_confirms_;
  if (observer_ != nullptr && ready_.empty()) observer_->OnReadyListChanged(false);
}

// Runs origin->CheckMany over consecutive same-type runs of rs (one syscall per run for the FD
// origins instead of one per request).
void Queue::CheckBatch(Request* const* rs, int* rcs, size_t n) {
  size_t begin = 0;
  while (begin < n) {
    size_t end = begin + 1;
    while (end < n && rs[end]->uk.type == rs[begin]->uk.type) ++end;
    OriginFor(rs[begin]->uk.type)->CheckMany(rs + begin, rcs + begin, end - begin);
    begin = end;
  }
}

void Queue::PrecheckReady(size_t max) {
  // Fewer than two ready requests may need it: nothing to batch, and no list to walk.
  if (ready_confirms_ < 2) return;
  // The first `max` ready requests are the ones this Dequeue takes (or drops), in order.
  Request* batch[kCheckBatch];
  int rcs[kCheckBatch];
  size_t n = 0, seen = 0;
  for (Request* r = ready_.front(); r != nullptr && seen < max && n < kCheckBatch;
       r = ready_.next(r), ++seen) {
    if (NeedsConfirm(*r)) batch[n++] = r;
  }
  if (n < 2) return;  // a single check gains nothing from batching
  CheckBatch(batch, rcs, n);
  for (size_t i = 0; i < n; ++i) {
    batch[i]->prechecked = true;
    batch[i]->precheck_rc = static_cast<int16_t>(rcs[i] < -32767 ? -EIO : rcs[i]);
  }
}

Request* Queue::PopDeliverable() {
  while (Request* r = ready_.front()) {
    UnlinkReady(*r);
    const bool confirm = NeedsConfirm(*r);
    const bool prechecked = r->prechecked;
    r->recheck = false;
    r->prechecked = false;
    if (!confirm) return r;
    const int rc = prechecked ? r->precheck_rc : OriginFor(r->uk.type)->Check(*r);
    if (rc > 0) return r;
    if (rc < 0) {
      r->broken_errno = -rc;
      OriginFor(r->uk.type)->Dequeue(*r);
      return r;
    }
    // The condition has gone: quietly re-arm (back into its storage if it had left it).
    r->pending = 0;
    r->uk.ret_data[0] = r->uk.ret_data[1] = 0;
    if (r->storage != nullptr && !r->storage_hook.linked()) r->storage->Attach(*r);
    OriginFor(r->uk.type)->Rearm(*r, /*delivered=*/false);
  }
  return nullptr;
}

void Queue::Build(const Request& r, ukevent& out) const {
  out = r.uk;
  if (r.broken_errno != 0) {
    out.ret_flags = KEVENT_RET_BROKEN | KEVENT_RET_DONE;
    out.ret_data[0] = static_cast<uint32_t>(r.broken_errno);
    out.ret_data[1] = 0;
    return;
  }
  out.ret_flags = KEVENT_RET_DONE;
  OriginFor(r.uk.type)->Fill(r, out);
}

void Queue::Complete(Request& r) {
  if (r.broken_errno != 0 || (r.uk.req_flags & KEVENT_REQ_ONESHOT) != 0) {
    Unregister(r);
    return;
  }
  r.pending = 0;
  Origin* origin = OriginFor(r.uk.type);
  if (origin->level_triggered() && (r.uk.req_flags & KEVENT_REQ_ET) == 0) {
    if (origin->RechecksItself(r)) return;  // its registration re-reports what holds
    recheck_.PushBack(&r);
    r.on_recheck_list = true;
  } else {
    origin->Rearm(r, /*delivered=*/true);
  }
}

void Queue::RunRechecks() {
  // In batches: one CheckMany (one poll(2) for FD origins) per batch instead of a Check each.
  Request* batch[kCheckBatch];
  int rcs[kCheckBatch];
  while (!recheck_.empty()) {
    size_t n = 0;
    for (Request* r = recheck_.front(); r != nullptr && n < kCheckBatch; r = recheck_.next(r)) {
      batch[n++] = r;
    }
    CheckBatch(batch, rcs, n);
    for (size_t i = 0; i < n; ++i) {
      // Handling one request never touches another's recheck state; stay defensive anyway.
      if (!batch[i]->on_recheck_list) continue;
      Recheck(*batch[i], rcs[i]);
    }
  }
}

void Queue::Recheck(Request& r, int rc) {
  recheck_.Remove(&r);
  r.on_recheck_list = false;
  if (rc < 0) {
    Break(r, -rc);
  } else if (rc > 0) {
    r.pending = 1;
    MakeReady(r);
    SetRecheck(r, true);  // confirm again when it is taken: the user may have drained it
  } else {
    // Stays in its storage; the next activity readies it.
    OriginFor(r.uk.type)->Rearm(r, /*delivered=*/false);
  }
}

size_t Queue::Dequeue(ukevent* buf, size_t max) {
  PrecheckReady(max);
  size_t n = 0;
  while (n < max) {
    Request* r = PopDeliverable();
    if (r == nullptr) break;
    ukevent& out = buf[n++];
    Build(*r, out);
    if (ring_.present() && !ring_.Put(out)) out.ret_flags |= KEVENT_RET_COPY_FAILED;
    Complete(*r);
  }
  RunRechecks();
  return n;
}

size_t Queue::DequeueToRing(size_t max) {
  PrecheckReady(std::min<size_t>(max, ring_.space()));
  size_t n = 0;
  ukevent out;
  while (n < max && ring_.space() > 0) {
    Request* r = PopDeliverable();
    if (r == nullptr) break;
    Build(*r, out);
    KEV_CHECK(ring_.Put(out));
    Complete(*r);
    ++n;
  }
  RunRechecks();
  return n;
}

}  // namespace kev::kevent_internal
