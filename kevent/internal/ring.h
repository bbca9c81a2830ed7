// kevent/internal/ring.h: the optional user ring of a queue (struct kevent_ring), with the
// commit protocol of KEVENT_SPEC.md.
//
//   ring->event[]:  [ u u u k . . . . ]      u: written, not yet committed (used slots)
//                    ^uidx  ^ring_kidx        .: free
// The queue writes events at ring_kidx (kevent_wait, kevent_get_events) while there is a free
// slot; all `num` slots are usable. The user frees slots with Commit(new_uidx, over), where
// `over` is the ring_over the user last read: a move forward needs over == ring_over; a
// new_uidx behind uidx is a wrap and increments ring_over. A commit made with the previous
// ring_over (a thread that slept through a wrap) frees nothing, so two threads committing the
// same slots after a wrap cannot both free them.
//
// The ring memory belongs to the caller and may be shared with other threads or processes:
// ring_kidx and ring_over are published with release stores after the slots they cover.
//
// Example:
//   Ring ring(user_ring, 8);
//   ring.Put(ev);            // user_ring->ring_kidx == 1
//   ring.Commit(1, 0);       // 1 slot freed
//
// Not thread-safe: the queue's owner serialises calls.
#ifndef KEV_KEVENT_INTERNAL_RING_H_
#define KEV_KEVENT_INTERNAL_RING_H_

#include "kevent/ukevent.h"

namespace kev::kevent_internal {

class Ring {
 public:
  // No ring when `ring` is null (then num must be 0). Otherwise num >= 2 and the header is reset
  // (ring_kidx = ring_over = 0).
  Ring(kevent_ring* ring, unsigned num);
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  bool present() const { return ring_ != nullptr; }
  unsigned size() const { return num_; }
  unsigned space() const { return num_ - used_; }
  unsigned used() const { return used_; }
  unsigned uidx() const { return uidx_; }
  unsigned kidx() const { return kidx_; }
  unsigned over() const { return over_; }

  // Copies ev into the slot at ring_kidx and advances it. False (nothing written) when full.
  bool Put(const ukevent& ev);

  // Frees slots up to new_uidx. Returns the number freed (0 when another thread freed them
  // first), -EINVAL (no ring, new_uidx >= num, or beyond what was written), -EOVERFLOW (over is
  // neither ring_over nor ring_over - 1, or a forward move made with ring_over - 1: re-read
  // ring_over and retry).
  int Commit(unsigned new_uidx, unsigned over);

 private:
  kevent_ring* const ring_;
  const unsigned num_;
  unsigned kidx_ = 0;
  unsigned uidx_ = 0;
  unsigned used_ = 0;  // written and not committed: kidx == (uidx + used) % num
  unsigned over_ = 0;
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_RING_H_
