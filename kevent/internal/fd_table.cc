#include "kevent/internal/fd_table.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

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

uint64_t ReportKey(uint32_t generation, int fd) {
  return (uint64_t{generation} << 32) | static_cast<uint32_t>(fd);
}

}  // namespace

// One watched fd of one queue: its requests (the Storage list) and its epoll registration.
// Hot fields (everything a report reads) first, in the cache line the request list head
// shares; dev, ino and sweep_index are for Enqueue and the closed-fd sweep only.
class alignas(64) FdOrigin::FdStorage final : public Storage {
 public:
  FdStorage(int fd, const struct stat& st, uint32_t generation)
      : fd(fd), generation(generation), dev(st.st_dev), ino(st.st_ino) {}

  const int fd;
  uint32_t generation;  // in every report: tells this file from an earlier one of the same number
  int users = 0;            // requests whose Request::storage is this (attached or not)
  int edge_users = 0;       // users with KEVENT_REQ_ET: while any, the registration is EPOLLET
  uint32_t registered = 0;  // the mask registered in the epoll set (0: not registered)
  bool unpollable = false;  // epoll refused the file (EPERM: a regular file); Check alone
  bool shadowed = false;    // a hungry level-triggered request was passed over for a holder
  bool dispatching = false;  // inside a report: Dequeue must not Sync (and maybe delete) it
  bool skip_initial_edge = false;  // a registration reported a condition ADD already returned
  // Registered level-triggered (no EPOLLET): the kernel re-reports a condition that holds at
  // every epoll_wait, which is then the level re-check (see the file comment).
  bool level = false;
  // Level mode suspended (registered EPOLLET) because a report readied nothing: the requests
  // that could take it are busy. Resumed when one of them lets go (Rearm, Dequeue).
  bool parked = false;
  dev_t dev;  // the file the fd named when watched (reuse of the number is detected)
  ino_t ino;
  size_t sweep_index = 0;
};

// The kernel re-checks s's level-triggered requests (level mode, or a parked level mode that the
// next Rearm resumes): no user-space re-check after a delivery.
bool FdOrigin::KernelRechecks(const FdStorage& s) {
  return s.registered != 0 && (s.level || s.parked) && s.edge_users == 0 && !s.unpollable;
}

bool FdOrigin::WantsLevel(const FdStorage& s) { return s.edge_users == 0 && !s.parked; }

FdOrigin::FdOrigin(OriginContext& context) : context_(context) {}

FdOrigin::~FdOrigin() {
  for (FdStorage* s : sweep_) KEV_CHECK(s->users == 0);
  if (watch_ != nullptr) watch_->Release();  // closes the epoll set (maybe later)
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
  if (static_cast<size_t>(fd) >= table_.size()) {
    table_.resize(std::max<size_t>(static_cast<size_t>(fd) + 1, table_.size() * 2));  // amortised
  }
  auto& slot = table_[fd];
  if (slot == nullptr) {
    slot = std::make_unique<FdStorage>(fd, st, ++generations_);  // once per watched fd
    slot->sweep_index = sweep_.size();
    sweep_.push_back(slot.get());
  } else if (slot->dev != st.st_dev || slot->ino != st.st_ino) {
    // The number was closed and reused: the old requests watched a file that is gone. Reports
    // of the old file (if it lingers in the set, open elsewhere) carry the old generation.
    BreakAll(slot.get(), EBADF);
    slot->dev = st.st_dev;
    slot->ino = st.st_ino;
    slot->generation = ++generations_;
    slot->registered = 0;
    slot->unpollable = false;
    slot->shadowed = false;
    slot->skip_initial_edge = false;
    slot->level = false;
    slot->parked = false;
  }
  FdStorage* s = slot.get();
  ++s->users;
  if (EdgeTriggered(r)) ++s->edge_users;
  s->Attach(r);
  // Register before checking, so an activity between the two is not lost.
  const int reg = UpdateRegistration(s, /*force=*/false);
  const int rc = reg < 0 ? reg : Check(r);
  if (rc > 0 && reg > 0 && EdgeTriggered(r)) s->skip_initial_edge = true;  // ADD reports it
  if (rc < 0) {
    s->Detach(r);
    r.storage = nullptr;
    --s->users;
    if (EdgeTriggered(r)) --s->edge_users;
    Sync(s);
    return rc;
  }
  return rc;
}

void FdOrigin::Dequeue(Request& r) {
  FdStorage* s = StorageOf(r);
  if (s == nullptr) return;
  s->Detach(r);
  r.storage = nullptr;
  --s->users;
  if (EdgeTriggered(r)) --s->edge_users;
  if (s->dispatching) return;  // the report's handler syncs
  if ((s->shadowed || s->parked) && s->users > 0) {
    // A holder left: let the kernel report what still holds (level mode resumes).
    s->shadowed = false;
    s->parked = false;
    UpdateRegistration(s, /*force=*/true);
  }
  Sync(s);
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
  size_t index[kBatch];
  size_t i = 0;
  while (i < n) {
    size_t m = 0;
    for (; i < n && m < kBatch; ++i) {
      const Request& r = *rs[i];
      if (r.on_recheck_list) {
        // The re-check of a request just delivered. In level mode the kernel does it: the
        // registration re-reports the condition at the next epoll_wait while it holds, so the
        // answer is "not ready" (Rearm resumes a parked level mode). Otherwise the caller has
        // not had a chance to consume it, so it is presumed to hold, without a syscall; the
        // queue confirms every request a re-check readied before delivering it
        // (Request::recheck), in the next batch of confirmations.
        rcs[i] = KernelRechecks(*StorageOf(r)) ? 0 : 1;
        continue;
      }
      index[m] = i;
      fds[m++] = pollfd{.fd = static_cast<int>(r.uk.id.raw[0]),
                        .events = static_cast<short>(PollEvents(r.uk.event)),
                        .revents = 0};
    }
    if (m == 0) continue;
    int rc;
    do {
      rc = poll(fds, m, 0);  // one syscall for the whole batch (see the file comment)
    } while (rc < 0 && errno == EINTR);
    for (size_t k = 0; k < m; ++k) {
      Request& r = *rs[index[k]];
      if (rc < 0) {
        rcs[index[k]] = Check(r);  // ENOMEM and the like: one at a time
      } else if ((fds[k].revents & POLLNVAL) != 0) {
        rcs[index[k]] = -EBADF;
      } else {
        rcs[index[k]] = Evaluate(r, static_cast<uint16_t>(fds[k].revents)) ? 1 : 0;
      }
    }
  }
}

void FdOrigin::Rearm(Request& r, bool delivered) {
  FdStorage* s = StorageOf(r);
  if (s == nullptr) return;
  // The registration stays in the set across deliveries: usually there is nothing to do.
  const bool widen = (PollEvents(r.uk.event) & ~s->registered) != 0;
  const bool repoll = (s->shadowed && !EdgeTriggered(r)) || s->parked;
  if (!widen && !repoll) [[likely]] return;
  if (repoll) {  // a holder let go: the kernel reports what still holds
    s->shadowed = false;
    s->parked = false;
  }
  UpdateRegistration(s, /*force=*/repoll);
}

bool FdOrigin::RechecksItself(Request& r) {
  const FdStorage* s = StorageOf(r);
  if (s == nullptr || !KernelRechecks(*s)) return false;
  // What the re-check's "not ready" would do: Rearm, which has something to do only for a
  // parked or shadowed storage (r is attached, so its bits are registered already).
  if (s->parked || s->shadowed) [[unlikely]] Rearm(r, /*delivered=*/false);
  return true;
}

void FdOrigin::BeforeWait() {
  // Closed (or reused) fds are not reported by epoll: look at a few storages per wait.
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

int FdOrigin::UpdateRegistration(FdStorage* s, bool force) {
  if (s->unpollable) return 0;
  uint32_t want = s->registered;
  for (Request* r = s->first(); r != nullptr; r = s->next(r)) want |= PollEvents(r->uk.event);
  const bool level = WantsLevel(*s);
  if (want == 0 || (want == s->registered && level == s->level && !force)) return 0;
  if (epfd_ < 0) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);  // once per origin
    if (epfd_ < 0) return -errno;
    watch_ = ReadableWatch::Start(*context_.poller(), epfd_, this);
  }
  epoll_event ev{};
  ev.events = want | (level ? 0u : static_cast<uint32_t>(EPOLLET));
  ev.data.u64 = ReportKey(s->generation, s->fd);
  int op = s->registered == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  int rc = epoll_ctl(epfd_, op, s->fd, &ev);
  if (rc != 0 && op == EPOLL_CTL_ADD && errno == EEXIST) {
    rc = epoll_ctl(epfd_, EPOLL_CTL_MOD, s->fd, &ev);  // still registered under this file
  } else if (rc != 0 && op == EPOLL_CTL_MOD && errno == ENOENT) {
    rc = epoll_ctl(epfd_, EPOLL_CTL_ADD, s->fd, &ev);  // the file left the set (closed)
  }
  if (rc != 0) {
    if (errno == EPERM) {  // a regular file: always ready, never reported
      s->unpollable = true;
      return 0;
    }
    return -errno;
  }
  s->registered = want;
  s->level = level;
  return 1;
}

void FdOrigin::OnReadable() {
  // Activity on watched fds. Reports carry (generation, fd): a report for a storage that is
  // gone, or for an older file under the same fd number, is dropped.
  // One epoll_wait per report of the watch, not a loop until the set is empty: level-mode
  // registrations are back in the set's ready list as soon as they are reported, so a second
  // call would report them again. A bigger burst stays in the set, which stays readable: the
  // watch reports it again at the next Wait.
  constexpr int kBatch = 256;  // 3 KiB of stack
  epoll_event events[kBatch];
  const int n = epoll_wait(epfd_, events, kBatch, 0);  // one syscall per batch of reports
  for (int i = 0; i < n; ++i) {
    const uint32_t fd = static_cast<uint32_t>(events[i].data.u64);
    const uint32_t generation = static_cast<uint32_t>(events[i].data.u64 >> 32);
    FdStorage* s = fd < table_.size() ? table_[fd].get() : nullptr;
    if (s == nullptr || s->generation != generation) continue;
    const bool skip_edge = std::exchange(s->skip_initial_edge, false);
    const int users = s->users;
    Dispatch(s, events[i].events, skip_edge);
    // Requests broken by a POLLNVAL report may have left, and a parked storage re-registers.
    if (s->users != users || s->level != WantsLevel(*s)) Sync(s);
  }
}

void FdOrigin::Sync(FdStorage* s) {
  if (s->users == 0) {
    Erase(s);
    return;
  }
  UpdateRegistration(s, /*force=*/false);
}

void FdOrigin::Erase(FdStorage* s) {
  KEV_CHECK(s->users == 0);
  FdStorage* last = sweep_.back();
  last->sweep_index = s->sweep_index;
  sweep_[s->sweep_index] = last;
  sweep_.pop_back();
  if (s->registered != 0 && epfd_ >= 0) {
    epoll_ctl(epfd_, EPOLL_CTL_DEL, s->fd, nullptr);  // may fail (fd closed): harmless
  }
  table_[s->fd].reset();  // frees s
}

void FdOrigin::BreakAll(FdStorage* s, int err) {
  s->dispatching = true;
  s->Break(err);  // each request: Queue::Break -> Dequeue
  s->dispatching = false;
  s->shadowed = false;
}

void FdOrigin::Dispatch(FdStorage* s, uint32_t revents, bool skip_edge) {
  if ((revents & POLLNVAL) != 0) {
    BreakAll(s, EBADF);
    return;
  }
  Request* only = s->first();
  if (only != nullptr && s->next(only) == nullptr) {
    // The usual case, one request per fd: nothing to hold back or shadow.
    Request& r = *only;
    if (!(EdgeTriggered(r) && skip_edge) && !Busy(r) &&
        (revents & (PollEvents(r.uk.event) | kAlwaysReported)) != 0 && Evaluate(r, revents)) {
      s->dispatching = true;
      r.queue->MarkActive(r);
      s->dispatching = false;
    } else if (s->level) {
      s->parked = true;  // see below
    }
    return;
  }
  // Level-triggered and ET requests are judged apart ([0] and [1]): each kind gets the report.
  uint32_t held[2] = {0, 0};
  for (Request* r = s->first(); r != nullptr; r = s->next(r)) {
    if (!WakeupAll(*r) && Busy(*r)) held[EdgeTriggered(*r)] |= PollEvents(r->uk.event);
  }
  s->dispatching = true;
  int readied[2] = {0, 0};
  Request* next = nullptr;
  for (Request* r = s->first(); r != nullptr; r = next) {
    next = s->next(r);  // MarkActive detaches a ONESHOT request
    const bool edge = EdgeTriggered(*r);
    if ((edge && skip_edge) || Busy(*r)) continue;
    const uint32_t bits = PollEvents(r->uk.event);
    if ((revents & (bits | kAlwaysReported)) == 0) continue;
    if (!WakeupAll(*r) && (readied[edge] > 0 || (bits & held[edge]) != 0)) {
      // Not handed a second time; level-triggered: re-polled when the holder lets go.
      if (!edge) s->shadowed = true;
      continue;
    }
    if (Evaluate(*r, revents)) {
      r->queue->MarkActive(*r);
      ++readied[edge];
    }
  }
  s->dispatching = false;
}

}  // namespace kev::kevent_internal
