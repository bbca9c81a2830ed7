// kevent/internal/fd_table.h: the common machinery of the readiness origins over file
// descriptors (SOCKET, PIPE, POLL): one Storage per watched fd, all of them in one private
// edge-triggered epoll set per origin.
//
// Per queue, each watched fd has one FdStorage shared by every request of that queue for the fd
// (several queues watching one fd have one storage each). The origin keeps a private epoll set
// (made at the first request) in which every watched fd is registered with EPOLLET and the union
// of its requests' poll bits; the set itself is watched through the queue's Poller with a
// ReadableWatch, so one Poller report, however many fds changed, is drained by epoll_wait.
// Why one epoll set and not one Poller poll per fd: a write into a watched pipe then costs the
// kernel an epoll callback (as for a plain epoll user), not an io_uring task-work run per write,
// and a burst of reports is one epoll_wait instead of a CQE and a re-check each.
//
// Level-triggered requests (the default) on an edge-triggered registration: the queue re-checks
// every delivered level-triggered request (Check, below) and puts it back in the ready list
// while its condition holds, and a request that was not hungry when an edge came (ready, or
// awaiting its re-check) is confirmed by the queue before it is delivered. So an edge is only
// needed for a hungry request, and every activity after its last check is an edge. One report
// readies the first hungry request it satisfies plus every hungry KEVENT_REQ_WAKEUP_ALL one
// (Storage::Ready's rule); a hungry request passed over because another holds those bits is
// remembered (`shadowed`), and when a holder lets go the registration is re-polled
// (EPOLL_CTL_MOD), which reports a condition that still holds. Edge-triggered (KEVENT_REQ_ET)
// requests take the same reports, once per activity, judged apart from the level-triggered ones.
//
// Check(r) is one poll(2) with a zero timeout on the fd. The queue batches the level-triggered
// re-checks after a delivery, and the confirmations of re-readied events before one, through
// CheckMany: one poll(2) over all their fds per batch, not one per event. The re-check right
// after a delivery is answered "still ready" without a syscall (the caller has not consumed
// anything yet, so a poll(2) would nearly always say so): the queue confirms such a request
// before delivering it again, as epoll re-checks its level-triggered items at the next
// epoll_wait. A waiter may then be woken for a request the confirmation drops (as an epoll fd
// stays readable until that re-check). Reports are evaluated from the revents epoll_wait
// returns, without another syscall.
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

#include "absl/container/flat_hash_map.h"
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
  // requests on the queue's re-check list (just delivered) are presumed ready (see above).
  void CheckMany(Request* const* rs, int* rcs, size_t n) final;
  void Rearm(Request& r, bool delivered) final;
  void BeforeWait() final;
  bool level_triggered() const final { return true; }

  // Watched fds (storages alive).
  size_t watched_fds() const { return table_.size(); }

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
  absl::flat_hash_map<int, std::unique_ptr<FdStorage>> table_;
  std::vector<FdStorage*> sweep_;  // every storage, for the round-robin closed-fd sweep
  size_t sweep_next_ = 0;
  uint32_t generations_ = 0;
  int epfd_ = -1;  // the private epoll set; owned by watch_
  ReadableWatch* watch_ = nullptr;
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_FD_TABLE_H_
