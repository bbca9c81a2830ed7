// kevent/internal/request.h: one registered kevent request, as the queue and origins see it.
//
// A Request is what the kernel patch called `struct kevent`: the caller's ukevent plus the links
// that put it in its queue's index, its queue's ready list and its origin's storage. It is
// intrusive, so delivering, re-arming and coalescing an event allocate nothing.
//
// Ownership: requests added through Queue::Ctl are allocated and freed by the queue. Requests
// added through Queue::AddRequest belong to the caller (a reactor awaiter embeds one); the queue
// only links and unlinks them, and the caller must Remove them before destroying them.
//
// Example (a reactor awaiter embedding its request):
//   struct TimerAwaiter { Request req{MakeTimerUkevent(100ms)}; ... };
//   queue.AddRequest(&awaiter.req);      // linked, not copied
//   ...                                  // delivered events carry awaiter.req.uk.ptr
//   queue.RemoveRequest(&awaiter.req);   // before the awaiter dies
//
// Threading: a Request is touched only by the thread that owns its queue at that moment (the
// reactor shard, or a C API thread holding the queue's lock).
#ifndef KEV_KEVENT_INTERNAL_REQUEST_H_
#define KEV_KEVENT_INTERNAL_REQUEST_H_

#include <cstdint>
#include <cstring>

#include "absl/hash/hash.h"
#include "kevent/internal/intrusive_list.h"
#include "kevent/ukevent.h"

namespace kev::kevent_internal {

class Queue;
class Storage;

// A request's identity inside one queue: (type, id, user), as the spec defines it.
struct RequestKey {
  uint32_t type = 0;
  uint64_t id = 0;
  uint64_t user = 0;

  static RequestKey Of(const ukevent& uk) {
    RequestKey k;
    k.type = uk.type;
    k.id = uk.id.raw_u64;
    std::memcpy(&k.user, uk.user, sizeof(k.user));  // user[2] and ptr alias the same 8 bytes
    return k;
  }
  friend bool operator==(const RequestKey&, const RequestKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const RequestKey& k) {
    return H::combine(std::move(h), k.type, k.id, k.user);
  }
};

// Timer state, used by the TIMER origin (kevent/internal/timer_origin.h) through the queue's
// timer heap.
struct TimerSlot {
  int64_t deadline_ns = 0;  // CLOCK_MONOTONIC
  int64_t period_ns = 0;
  uint64_t seq = 0;  // arming order: ties on deadline fire oldest first
  uint32_t heap_index = kNotArmed;
  static constexpr uint32_t kNotArmed = UINT32_MAX;
  bool armed() const { return heap_index != kNotArmed; }
};

struct Request {
  explicit Request(const ukevent& u) : uk(u) { uk.ret_flags = 0; }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  // The request as registered: id, type, event, req_flags, user. ret_data holds what the
  // origin (or READY's caller) last reported; ret_flags is unused while registered.
  ukevent uk;

  // Occurrences since the last delivery (coalesced). Saturates at UINT32_MAX.
  uint32_t pending = 0;
  // Positive errno once the origin broke the request (delivered as BROKEN|DONE, then removed).
  int32_t broken_errno = 0;

  Queue* queue = nullptr;        // set while registered
  bool queue_owned = false;      // allocated by Queue::Ctl: freed by the queue on removal
  bool ready = false;            // on the queue's ready list
  bool on_recheck_list = false;  // delivered level-triggered request, to re-check
  bool recheck = false;          // readied by a level-triggered re-check: confirm before delivery
  // The confirmation was done for this Dequeue already (batched), with result precheck_rc.
  bool prechecked = false;
  int16_t precheck_rc = 0;

  // Queue's ready list, or its list of level-triggered requests to re-check.
  ListHook ready_hook;
  // The origin's storage (kevent_storage): see Storage in origin.h.
  Storage* storage = nullptr;
  ListHook storage_hook;

  TimerSlot timer;
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_REQUEST_H_
