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

// A Request is exactly two cache lines (static_assert below): a million queue-owned requests
// are 128 MB of pool memory, and zeroing and touching that memory is much of what arming and
// cancelling them costs. Hence the bit-fields, and the timer fields packed into holes.
struct Request {
  explicit Request(const ukevent& u) : uk(u) { uk.ret_flags = 0; }
  // For the queue's own requests (queue_owned); one constructor sets every flag bit at once.
  Request(const ukevent& u, bool owned) : uk(u), queue_owned(owned) { uk.ret_flags = 0; }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  // The request as registered: id, type, event, req_flags, user. ret_data holds what the
  // origin (or READY's caller) last reported; ret_flags is unused while registered.
  ukevent uk;

  // Occurrences since the last delivery (coalesced). Saturates at UINT32_MAX.
  uint32_t pending = 0;
  // Positive errno once the origin broke the request (delivered as BROKEN|DONE, then removed).
  int32_t broken_errno = 0;

  Queue* queue = nullptr;  // set while registered

  // Timer state, used by the TIMER origin (kevent/internal/timer_origin.h) through the queue's
  // timer heap: the entry's position in the heap, or kTimerNotArmed.
  uint32_t timer_heap_index = kTimerNotArmed;
  static constexpr uint32_t kTimerNotArmed = UINT32_MAX;
  bool timer_armed() const { return timer_heap_index != kTimerNotArmed; }

  int16_t precheck_rc = 0;
  bool queue_owned : 1 = false;      // allocated by Queue::Ctl: freed by the queue on removal
  bool ready : 1 = false;            // on the queue's ready list
  bool on_recheck_list : 1 = false;  // delivered level-triggered request, to re-check
  bool recheck : 1 = false;  // readied by a level-triggered re-check: confirm before delivery
  // The confirmation was done for this Dequeue already (batched), with result precheck_rc.
  bool prechecked : 1 = false;
  // The rest of the byte, initialised too so that constructing a Request stores the whole byte
  // instead of reading the fresh (cold) line back to merge bits into it.
  uint8_t unused_flags : 3 = 0;

  // Queue's ready list, or its list of level-triggered requests to re-check.
  ListHook ready_hook;
  // The origin's storage (kevent_storage): see Storage in origin.h.
  Storage* storage = nullptr;
  ListHook storage_hook;

  // TIMER: the next expiry, CLOCK_MONOTONIC ns (the period is read from uk.id when needed).
  int64_t timer_deadline_ns = 0;
};
static_assert(sizeof(Request) == 128, "keep Request at two cache lines (see above)");

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_REQUEST_H_
