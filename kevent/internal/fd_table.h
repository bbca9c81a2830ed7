// kevent/internal/fd_table.h: the common machinery of the readiness origins over file
// descriptors (SOCKET, PIPE, POLL): one Storage per watched fd, all of them in one private
// epoll set per origin (level-triggered registrations where every request of an fd is).
//
// Per queue, each watched fd has one FdStorage shared by every request of that queue for the fd
// (several queues watching one fd have one storage each). The origin keeps a private epoll set
// (made at the first request) in which every watched fd is registered with the union of its
// requests' poll bits; the set itself is watched through the queue's Poller with a
// ReadableWatch, so one Poller report, however many fds changed, is drained by epoll_wait (one
// call per report: at most 256 fds; a bigger burst stays in the set, which stays readable).
// Why one epoll set and not one Poller poll per fd: a write into a watched pipe then costs the
// kernel an epoll callback (as for a plain epoll user), not an io_uring task-work run per write,
// and a burst of reports is one epoll_wait instead of a CQE and a re-check each. A caller that
// is not going to block (Queue::PollNow: every get_events' first look) drains the set with
// that same epoll_wait directly (PollDirectly) instead of driving the Poller, as a plain epoll
// user would: no io_uring_enter, and the watch's one-shot poll, once fired, stays unconsumed
// (so later writes wake nothing nested) until a blocking Wait consumes and re-arms it; a
// report of it that finds the set empty is harmless.
//
// Level mode (an fd whose requests are all level-triggered, the default): the fd is registered
// level-triggered, so the kernel does the level re-check exactly as for a plain epoll user: a
// reported fd goes back on the set's ready list and is polled again at the next epoll_wait (or
// at the watch's next arming), and reported while its condition holds. The queue then skips
// its re-check after a delivery (RechecksItself), and nothing is confirmed before delivery.
// One report readies the first hungry request it satisfies plus every hungry
// KEVENT_REQ_WAKEUP_ALL one (Storage::Ready's rule). A report that readies
// nothing (its requests are busy: ready and not yet delivered, or held back by another) would
// come back at every wait and wake the waiter for nothing, so the fd is parked: re-registered
// EPOLLET until a request lets go (Rearm after its delivery or re-check, or Dequeue), which
// re-registers it level-triggered, and the kernel reports what still holds.
//
// Edge mode (some request has KEVENT_REQ_ET): the fd is registered EPOLLET and its ET requests
// take the reports once per activity, judged apart from its level-triggered ones. The queue
// re-checks every delivered level-triggered request (Check, below) and puts it back in the
// ready list while its condition holds, and a request that was not hungry when an edge came
// (ready, or awaiting its re-check) is confirmed by the queue before it is delivered. A hungry
// request passed over because another holds those bits is remembered (`shadowed`), and when a
// holder lets go the registration is re-polled (EPOLL_CTL_MOD), which reports a condition that
// still holds. The switch between the modes is one EPOLL_CTL_MOD, which reports a condition
// that holds (for a new ET request: skipped once, ADD already returned it).
//
// Check(r) is one poll(2) with a zero timeout on the fd. In edge mode the queue batches the
// level-triggered re-checks after a delivery, and the confirmations of re-readied events
// before one, through CheckMany: one poll(2) over all their fds per batch, not one per event.
// The re-check right after a delivery is answered "still ready" without a syscall (the caller
// has not consumed anything yet, so a poll(2) would nearly always say so): the queue confirms
// such a request before delivering it again. A waiter may then be woken for a request the
// confirmation drops (as an epoll fd stays readable until that re-check). Reports are
// evaluated from the revents epoll_wait returns, without another syscall.
//
// Closed fds: a POLLNVAL (from a Check), or the sweep in BeforeWait (fstat of up to
// kSweepPerWait storages per wait, round robin; it also catches an fd number reused for another
// file) marks the fd's requests BROKEN|DONE with EBADF. epoll forgets a closed file by itself;
// reports carry the storage's generation so a report about an earlier file is dropped.
// Files epoll refuses (regular files, EPERM) never change readiness: their requests live on
// Check alone.
//
// Example (a subclass):
//   class PipeOrigin final : public FdOrigin {
//     int Validate(const struct stat& st, uint32_t ev) const override { return S_ISFIFO(...) ...}
//     uint32_t PollEvents(uint32_t ev) const override { return ev & RECV ? POLLIN : POLLOUT; }
//     bool Evaluate(Request& r, uint32_t revents) const override { ... fill ret_data ... }
//   };
//
// Threading: as the owning queue (the Poller's completions run on the thread that owns the
// queue, inside Poller::Wait).
#ifndef KEV_KEVENT_INTERNAL_FD_TABLE_H_
#define KEV_KEVENT_INTERNAL_FD_TABLE_H_

#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kevent/internal/origin.h"
#include "kevent/internal/readable_watch.h"

namespace kev::kevent_internal {

class FdOrigin : public Origin, private ReadableWatch::Listener {
 public:
  // fstat calls per BeforeWait spent looking for closed (or reused) fds.
  static constexpr size_t kSweepPerWait = 8;

  explicit FdOrigin(OriginContext& context);
  // Every request must have been dequeued. Releases the epoll set's watch (which may outlive
  // the origin until its Poller delivers its final completion).
  ~FdOrigin() override;

  int Enqueue(Request& r) final;
  void Dequeue(Request& r) final;
  int Check(Request& r) final;
  // One poll(2) over the fds of the requests being confirmed (up to kBatch per syscall);
  // requests on the queue's re-check list (just delivered) are "not ready" in level mode (the
  // kernel re-reports them) and presumed ready in edge mode (see above).
  void CheckMany(Request* const* rs, int* rcs, size_t n) final;
  void Rearm(Request& r, bool delivered) final;
  // Level mode (KernelRechecks): Rearm(r, false) and true.
  bool RechecksItself(Request& r) final;
  void BeforeWait() final;
  bool level_triggered() const final { return true; }
  // The watch's poll; PollDirectly is one epoll_wait on the set, as a report of the watch.
  size_t PollableOps() const final { return watch_ != nullptr && watch_->armed() ? 1 : 0; }
  void PollDirectly() final { OnReadable(); }

  // Watched fds (storages alive).
  size_t watched_fds() const { return sweep_.size(); }

 protected:
  // 0 if `event` is valid for this type and the fd (described by `st`) is of the right kind;
  // otherwise a negative errno (EINVAL, ENOTSOCK...).
  virtual int Validate(const struct stat& st, uint32_t event) const = 0;
  // The poll(2) events that serve `event` (POLLERR and POLLHUP are always reported).
  virtual uint32_t PollEvents(uint32_t event) const = 0;
  // Is r ready given `revents` for its fd (never POLLNVAL)? If so, fills r.uk.ret_data.
  virtual bool Evaluate(Request& r, uint32_t revents) const = 0;

 private:
  class FdStorage;

  FdStorage* StorageOf(const Request& r) const;
  static bool KernelRechecks(const FdStorage& s);
  // Whether s's registration should be level-triggered now: no edge-triggered request, and
  // level mode not parked (UpdateRegistration registers it so; a report re-syncs on a change).
  static bool WantsLevel(const FdStorage& s);
  // Erases s if no request uses it any more; otherwise widens its registration if needed.
  void Sync(FdStorage* s);
  void Erase(FdStorage* s);
  // Breaks every request of s with `err`.
  void BreakAll(FdStorage* s, int err);
  // Readies the requests `revents` satisfies; `skip_edge`: leave the ET ones out (the report
  // is the one a fresh registration makes of a condition Enqueue already delivered).
  void Dispatch(FdStorage* s, uint32_t revents, bool skip_edge);
  // Brings s's registration up to the union of its requests' bits (never narrower while it has
  // requests: a narrowing MOD would report a held condition again). `force`: MOD even when the
  // mask is unchanged, so the kernel re-polls and reports a condition that holds. Returns 1 if
  // it (re-)registered, 0 if there was nothing to do (or epoll refuses the file), or a negative
  // errno (the set could not be made, or the fd not registered).
  int UpdateRegistration(FdStorage* s, bool force);
  // The epoll set is readable (ReadableWatch::Listener).
  void OnReadable() override;

  OriginContext& context_;
  // Indexed by fd (fd numbers are dense and small): a report's storage is one load away.
  std::vector<std::unique_ptr<FdStorage>> table_;
  std::vector<FdStorage*> sweep_;  // every storage, for the round-robin closed-fd sweep
  size_t sweep_next_ = 0;
  uint32_t generations_ = 0;
  int epfd_ = -1;  // the private epoll set; owned by watch_
  ReadableWatch* watch_ = nullptr;
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_FD_TABLE_H_
