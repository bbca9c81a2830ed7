#include "kevent/internal/fd_table.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "kevent/internal/check.h"
#include "kevent/internal/queue.h"
#include "kevent/poller.h"

namespace kev::kevent_internal {
namespace {

constexpr uint32_t kAlwaysReported = POLLERR | POLLHUP;

bool WakeupAll(const Request& r) { return (r.uk.req_flags & KEVENT_REQ_WAKEUP_ALL) != 0; }
bool EdgeTriggered(const Request& r) { return (r.uk.req_flags & KEVENT_REQ_ET) != 0; }
bool Busy(const Request& r) { return r.ready || r.on_recheck_list; }

// poll(2) on one fd, zero timeout: the revents, or -errno.
int PollNow(int fd, uint32_t events) {
  pollfd p{.fd = fd, .events = static_cast<short>(events), .revents = 0};
  int rc;
  do {
    rc = poll(&p, 1, 0);  // a syscall per check: see the file comment for when it runs
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return -errno;
  return static_cast<uint16_t>(p.revents);
}

}  // namespace

// One watched fd of one queue: its requests (the Storage list) and the multishot poll.
class FdOrigin::FdStorage final : public Storage, public IoCompletion {
 public:
  enum class State { kIdle, kArmed, kCancelling };

  FdStorage(FdOrigin* origin, int fd, const struct stat& st, uint32_t generation)
      : origin(origin), fd(fd), generation(generation), dev(st.st_dev), ino(st.st_ino) {}

  void OnComplete(int32_t result, uint32_t flags) noexcept override {
    if (origin == nullptr) {  // the queue went away first
      if ((flags & kCompletionMore) == 0) delete this;
      return;
    }
    origin->OnReport(this, result, flags);
  }

  FdOrigin* origin;  // null once orphaned
  const int fd;
  const uint32_t generation;  // tells this storage from an earlier one of the same fd number
  dev_t dev;  // the file the fd named when watched (reuse of the number is detected)
  ino_t ino;
  int users = 0;  // requests whose Request::storage is this (attached or not)
  State state = State::kIdle;
  uint32_t armed_events = 0;  // the mask of the poll in flight
  bool stale_poll = false;    // the poll in flight watches another file: replace it
  bool dispatching = false;   // inside a report: Dequeue must not Sync (and maybe delete) it
  size_t sweep_index = 0;
  uint32_t edge_events = 0;        // registered in the origin's edge-triggered epoll set
  bool skip_initial_edge = false;  // a registration reported a condition ADD already returned
};

FdOrigin::FdOrigin(OriginContext& context) : context_(context) {}

FdOrigin::~FdOrigin() {
  if (edge_watch_ != nullptr) edge_watch_->Release();  // closes the epoll set
  for (auto& [fd, s] : table_) {
    KEV_CHECK(s->users == 0);
    if (s->state == FdStorage::State::kIdle) continue;  // unique_ptr frees it
    s->origin = nullptr;
    s.release();  // deletes itself at its final completion
  }
}

FdOrigin::FdStorage* FdOrigin::StorageOf(const Request& r) const {
  return static_cast<FdStorage*>(r.storage);
}

int FdOrigin::Enqueue(Request& r) {
  if (context_.poller() == nullptr) return -EOPNOTSUPP;
  const int fd = static_cast<int>(r.uk.id.raw[0]);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return -EBADF;
  if (int rc = Validate(st, r.uk.event); rc < 0) return rc;
  auto& slot = table_[fd];
  if (slot == nullptr) {
    slot = std::make_unique<FdStorage>(this, fd, st, ++generations_);  // once per watched fd
    slot->sweep_index = sweep_.size();
    sweep_.push_back(slot.get());
  } else if (slot->dev != st.st_dev || slot->ino != st.st_ino) {
    // The number was closed and reused: the old requests watched a file that is gone.
    BreakAll(slot.get(), EBADF);
    slot->dev = st.st_dev;
    slot->ino = st.st_ino;
    slot->stale_poll = slot->state != FdStorage::State::kIdle;
  }
  FdStorage* s = slot.get();
  ++s->users;
  s->Attach(r);
  // ET: register before checking, so an activity between the two is not lost.
  const bool fresh_edge = EdgeTriggered(r) && UpdateEdge(s);
  const int rc = Check(r);
  if (rc > 0 && fresh_edge) s->skip_initial_edge = true;  // ADD itself reports it
  if (rc < 0) {
    s->Detach(r);
    r.storage = nullptr;
    --s->users;
    Sync(s);
    return rc;
  }
  if (rc == 0) Sync(s);
  return rc;
}

void FdOrigin::Dequeue(Request& r) {
  FdStorage* s = StorageOf(r);
  if (s == nullptr) return;
  s->Detach(r);
  r.storage = nullptr;
  --s->users;
  if (!s->dispatching) Sync(s);
}

int FdOrigin::Check(Request& r) {
  const int fd = static_cast<int>(r.uk.id.raw[0]);
  const int revents = PollNow(fd, PollEvents(r.uk.event));
  if (revents < 0) return revents;
  if ((revents & POLLNVAL) != 0) return -EBADF;
  return Evaluate(r, static_cast<uint32_t>(revents)) ? 1 : 0;
}

void FdOrigin::CheckMany(Request* const* rs, int* rcs, size_t n) {
  constexpr size_t kBatch = 128;
  pollfd fds[kBatch];
  for (size_t base = 0; base < n; base += kBatch) {
    const size_t m = std::min(kBatch, n - base);
    for (size_t i = 0; i < m; ++i) {
      const Request& r = *rs[base + i];
      fds[i] = pollfd{.fd = static_cast<int>(r.uk.id.raw[0]),
                      .events = static_cast<short>(PollEvents(r.uk.event)),
                      .revents = 0};
    }
    int rc;
    do {
      rc = poll(fds, m, 0);  // one syscall for the whole batch (see the file comment)
    } while (rc < 0 && errno == EINTR);
    for (size_t i = 0; i < m; ++i) {
      Request& r = *rs[base + i];
      if (rc < 0) {
        rcs[base + i] = Check(r);  // ENOMEM and the like: one at a time
      } else if ((fds[i].revents & POLLNVAL) != 0) {
        rcs[base + i] = -EBADF;
      } else {
        rcs[base + i] = Evaluate(r, static_cast<uint16_t>(fds[i].revents)) ? 1 : 0;
      }
    }
  }
}

void FdOrigin::Rearm(Request& r, bool delivered) {
  FdStorage* s = StorageOf(r);
  if (s == nullptr) return;
  if (EdgeTriggered(r)) {
    // Its fd sits in the edge-triggered set: the next new activity reports it, drained or not.
    if ((PollEvents(r.uk.event) & ~s->edge_events) != 0) UpdateEdge(s);
    return;
  }
  if (s->state == FdStorage::State::kArmed && !s->stale_poll &&
      (PollEvents(r.uk.event) & ~s->armed_events) == 0) {
    return;  // the poll in flight already covers it: the common case, nothing to submit
  }
  Sync(s);
}

void FdOrigin::BeforeWait() {
  // Closed (or reused) fds are not reported by epoll, and io_uring keeps polling the old file:
  // look at a few storages per wait.
  for (size_t i = 0; i < kSweepPerWait && !sweep_.empty(); ++i) {
    if (sweep_next_ >= sweep_.size()) sweep_next_ = 0;
    FdStorage* s = sweep_[sweep_next_++];
    if (s->users == 0) continue;
    struct stat st;
    if (fstat(s->fd, &st) != 0 || st.st_dev != s->dev || st.st_ino != s->ino) {
      BreakAll(s, EBADF);
      Sync(s);
    }
  }
}

bool FdOrigin::UpdateEdge(FdStorage* s) {
  uint32_t want = 0;
  for (Request* r = s->first(); r != nullptr; r = s->next(r)) {
    if (EdgeTriggered(*r)) want |= PollEvents(r->uk.event);
  }
  // Never narrowed while ET requests remain: a re-registration reports a held condition again.
  if (want != 0) want |= s->edge_events;
  if (want == s->edge_events) return false;
  if (edge_epfd_ < 0) {
    edge_epfd_ = epoll_create1(EPOLL_CLOEXEC);  // once per origin that sees an ET request
    if (edge_epfd_ < 0) return false;           // ET requests then wait in vain: EMFILE
    edge_watch_ = ReadableWatch::Start(*context_.poller(), edge_epfd_, this);
  }
  epoll_event ev{};
  ev.events = want | EPOLLET;
  ev.data.u64 = (static_cast<uint64_t>(s->generation) << 32) | static_cast<uint32_t>(s->fd);
  const int op = want == 0 ? EPOLL_CTL_DEL : s->edge_events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (epoll_ctl(edge_epfd_, op, s->fd, &ev) != 0 && op != EPOLL_CTL_DEL) {
    // EEXIST: the fd number was closed and reused while registered under the old file.
    if (errno != EEXIST || epoll_ctl(edge_epfd_, EPOLL_CTL_MOD, s->fd, &ev) != 0) return false;
  }
  s->edge_events = want;
  return true;
}

void FdOrigin::OnReadable() {
  // New activity on fds with ET requests. Reports carry (generation, fd): a report for a storage
  // that is gone, or for an older storage of the same fd number, is dropped.
  epoll_event events[64];
  int n;
  do {
    n = epoll_wait(edge_epfd_, events, 64, 0);  // one syscall per batch of edges
    for (int i = 0; i < n; ++i) {
      const int fd = static_cast<int>(static_cast<uint32_t>(events[i].data.u64));
      const uint32_t generation = static_cast<uint32_t>(events[i].data.u64 >> 32);
      auto it = table_.find(fd);
      if (it == table_.end() || it->second->generation != generation) continue;
      FdStorage* s = it->second.get();
      if (s->skip_initial_edge) {
        s->skip_initial_edge = false;
        continue;
      }
      Dispatch(s, events[i].events, /*edge=*/true);
      Sync(s);  // requests broken by a POLLNVAL report may have left
    }
  } while (n == 64);
}

void FdOrigin::Sync(FdStorage* s) {
  // The mask: bits of hungry requests, minus those held by a busy non-WAKEUP_ALL request (its
  // activity is not handed on), plus every hungry WAKEUP_ALL request's bits.
  uint32_t held = 0, want = 0, want_all = 0;
  for (Request* r = s->first(); r != nullptr; r = s->next(r)) {
    if (EdgeTriggered(*r)) continue;  // in the edge-triggered set instead
    const uint32_t bits = PollEvents(r->uk.event);
    if (Busy(*r)) {
      if (!WakeupAll(*r)) held |= bits;
    } else if (WakeupAll(*r)) {
      want_all |= bits;
    } else {
      want |= bits;
    }
  }
  want = (want & ~held) | want_all;
  if (s->edge_events != 0) UpdateEdge(s);  // drops the registration when no ET request is left
  Poller* poller = context_.poller();
  switch (s->state) {
    case FdStorage::State::kIdle:
      if (want != 0) {
        poller->PollAdd(s->fd, want, /*multishot=*/true, s);
        s->state = FdStorage::State::kArmed;
        s->armed_events = want;
        s->stale_poll = false;
      } else if (s->users == 0) {
        Erase(s);
      }
      return;
    case FdStorage::State::kArmed:
      // A wider mask needs a new poll; a narrower one is left until a report finds no taker.
      if (s->users == 0 || s->stale_poll || (want & ~s->armed_events) != 0) {
        poller->Cancel(s);
        s->state = FdStorage::State::kCancelling;
      }
      return;
    case FdStorage::State::kCancelling:
      return;  // its final completion syncs again
  }
}

void FdOrigin::Erase(FdStorage* s) {
  KEV_CHECK(s->users == 0 && s->state == FdStorage::State::kIdle);
  FdStorage* last = sweep_.back();
  last->sweep_index = s->sweep_index;
  sweep_[s->sweep_index] = last;
  sweep_.pop_back();
  if (s->edge_events != 0 && edge_epfd_ >= 0) {
    epoll_ctl(edge_epfd_, EPOLL_CTL_DEL, s->fd, nullptr);  // may fail (fd closed): harmless
  }
  table_.erase(s->fd);  // frees s
}

void FdOrigin::BreakAll(FdStorage* s, int err) {
  s->dispatching = true;
  s->Break(err);  // each request: Queue::Break -> Dequeue
  s->dispatching = false;
}

void FdOrigin::OnReport(FdStorage* s, int32_t result, uint32_t flags) {
  const bool final = (flags & kCompletionMore) == 0;
  if (!final && s->state == FdStorage::State::kCancelling) return;  // raced with our cancel
  bool taken = false;
  if (result >= 0 && !s->stale_poll) {
    taken = Dispatch(s, static_cast<uint32_t>(result), /*edge=*/false);
  } else if (result < 0 && result != -ECANCELED) {
    BreakAll(s, -result);  // e.g. EBADF: the fd was closed before the poll reached the kernel
  }
  if (final) {
    s->state = FdStorage::State::kIdle;
    Sync(s);  // re-adds the poll if someone is hungry; may delete s
    return;
  }
  if (!taken || s->users == 0) {
    // Nobody wanted it: a level-triggered poll would report it again at every Wait.
    context_.poller()->Cancel(s);
    s->state = FdStorage::State::kCancelling;
  }
}

bool FdOrigin::Dispatch(FdStorage* s, uint32_t revents, bool edge) {
  if ((revents & POLLNVAL) != 0) {
    BreakAll(s, EBADF);
    return true;
  }
  // Only the requests of this kind (level poll or edge set) take the report.
  uint32_t held = 0;
  for (Request* r = s->first(); r != nullptr; r = s->next(r)) {
    if (EdgeTriggered(*r) == edge && !WakeupAll(*r) && Busy(*r)) held |= PollEvents(r->uk.event);
  }
  s->dispatching = true;
  int readied = 0;
  Request* next = nullptr;
  for (Request* r = s->first(); r != nullptr; r = next) {
    next = s->next(r);  // MarkActive detaches a ONESHOT request
    if (EdgeTriggered(*r) != edge || Busy(*r)) continue;
    const uint32_t bits = PollEvents(r->uk.event);
    if ((revents & (bits | kAlwaysReported)) == 0) continue;
    if (!WakeupAll(*r) && (readied > 0 || (bits & held) != 0)) continue;
    if (Evaluate(*r, revents)) {
      r->queue->MarkActive(*r);
      ++readied;
    }
  }
  s->dispatching = false;
  return readied > 0;
}

}  // namespace kev::kevent_internal
