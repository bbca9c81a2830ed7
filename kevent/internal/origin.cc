#include "kevent/internal/origin.h"

#include "kevent/internal/check.h"
#include "kevent/internal/queue.h"

namespace kev::kevent_internal {

Storage::~Storage() { KEV_CHECK(requests_.empty()); }

void Storage::Attach(Request& r) {
  KEV_CHECK(!r.storage_hook.linked());
  r.storage = this;
  requests_.PushBack(&r);
}

void Storage::Detach(Request& r) {
  if (r.storage_hook.linked()) {
    KEV_CHECK(r.storage == this);
    requests_.Remove(&r);
  }
}

int Storage::Ready(uint32_t event) {
  // kevent_storage_ready: the first matching request takes the activity, unless requests ask
  // for all of it. Activate may detach `r` (ONESHOT), so step before calling it.
  int readied = 0;
  Request* r = requests_.front();
  while (r != nullptr) {
    Request* next = requests_.next(r);
    if ((r->uk.event & event) != 0 &&
        (readied == 0 || (r->uk.req_flags & KEVENT_REQ_WAKEUP_ALL) != 0)) {
      if (r->queue->Activate(*r)) ++readied;
    }
    r = next;
  }
  return readied;
}

void Storage::Break(int err) {
  while (Request* r = requests_.PopFront()) r->queue->Break(*r, err);
}

}  // namespace kev::kevent_internal
