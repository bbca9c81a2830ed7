#include "kevent/internal/ring.h"

#include <atomic>
#include <cerrno>
#include <cstring>

#include "kevent/internal/check.h"

namespace kev::kevent_internal {
namespace {

// The header fields are plain `unsigned int` in the ABI; readers in other threads or processes
// load them with acquire semantics, so publish with release stores.
void Publish(unsigned int& field, unsigned value) {
  std::atomic_ref<unsigned int>(field).store(value, std::memory_order_release);
}

}  // namespace

Ring::Ring(kevent_ring* ring, unsigned num) : ring_(ring), num_(ring ? num : 0) {
  if (ring_ == nullptr) return;
  KEV_CHECK(num_ >= 2);
  Publish(ring_->ring_kidx, 0);
  Publish(ring_->ring_over, 0);
}

bool Ring::Put(const ukevent& ev) {
  if (ring_ == nullptr || used_ == num_) return false;
  std::memcpy(&ring_->event[kidx_], &ev, sizeof(ev));
  kidx_ = kidx_ + 1 == num_ ? 0 : kidx_ + 1;
  ++used_;
  Publish(ring_->ring_kidx, kidx_);
  return true;
}

int Ring::Commit(unsigned new_uidx, unsigned over) {
  if (ring_ == nullptr || new_uidx >= num_) return -EINVAL;
  if (over != over_ && over != over_ - 1) return -EOVERFLOW;
  if (over != over_) {
    // The caller read ring_over before the last wrap. Whatever it names at or behind uidx was
    // freed by that wrap; a position ahead of uidx is ambiguous (its old lap, all freed, or the
    // current one), so it must re-read ring_over.
    return new_uidx <= uidx_ ? 0 : -EOVERFLOW;
  }
  if (new_uidx == uidx_) return 0;
  const bool wrap = new_uidx < uidx_;
  const unsigned freed = wrap ? num_ - uidx_ + new_uidx : new_uidx - uidx_;
  if (freed > used_) return -EINVAL;  // beyond ring_kidx: those slots hold no events
  uidx_ = new_uidx;
  used_ -= freed;
  if (wrap) {
    ++over_;
    Publish(ring_->ring_over, over_);
  }
  return static_cast<int>(freed);
}

}  // namespace kev::kevent_internal
