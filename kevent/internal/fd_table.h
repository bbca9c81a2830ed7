// kevent/internal/fd_table.h: the common machinery of the readiness origins over file
// descriptors (SOCKET, PIPE, POLL): one Storage per watched fd, one multishot poll per Storage.
//
// Per queue, each watched fd has one FdStorage shared by every request of that queue for the fd
// (several queues watching one fd have one storage each, on their own pollers). The storage
// keeps one multishot PollAdd on the queue's Poller whose mask covers the requests that are
// waiting for activity ("hungry": attached, not ready, not awaiting a re-check, not an ET request
// watched by the edge-triggered set below). A report readies the first hungry request
// it satisfies, plus every hungry KEVENT_REQ_WAKEUP_ALL one (Storage::Ready's rule); bits held by
// a ready non-WAKEUP_ALL request are left out of the mask, so one activity is not handed to a
// second request at the next Wait. A report that readies nobody cancels the poll (a
// level-triggered poll would otherwise report the same condition at every Wait and spin); it is
// re-added when a request becomes hungry again (Origin::Rearm).
//
// KEVENT_REQ_ET requests are not in that poll: their fds go into a private EPOLLET epoll set
// (one per origin, made at the first ET request) watched through the Poller, so each new
// activity is reported once whether or not the earlier data was read.
//
// Check(r) is one poll(2) with a zero timeout on the fd. The queue batches the level-triggered
// re-checks after a delivery, and the confirmations of re-readied events before one, through
// CheckMany: one poll(2) over all their fds per batch, not one per event. Reports from the
// Poller are evaluated from their revents without a syscall.
//
// Closed fds: a report of POLLNVAL, a poll that fails (-EBADF), a Check that sees POLLNVAL, or the
// sweep in BeforeWait (fstat of up to kSweepPerWait storages per wait, round robin; it also
// catches an fd number reused for another file) marks the fd's requests BROKEN|DONE with EBADF.
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
#include "absl/container/flat_hash_set.h"
#include "kevent/internal/origin.h"
#include "kevent/internal/readable_watch.h"

namespace kev::kevent_internal {

class FdOrigin : public Origin, private ReadableWatch::Listener {
 public:
  // fstat calls per BeforeWait spent looking for closed (or reused) fds.
  static constexpr size_t kSweepPerWait = 8;

  explicit FdOrigin(OriginContext& context);
  // Storages with a poll still in flight are orphaned: they delete themselves at their final
  // completion (the Poller must outlive the queue).
  ~FdOrigin() override;

  int Enqueue(Request& r) final;
  void Dequeue(Request& r) final;
  int Check(Request& r) final;
  // One poll(2) over every request's fd (up to kBatch per syscall).
  void CheckMany(Request* const* rs, int* rcs, size_t n) final;
  void Rearm(Request& r, bool delivered) final;
  void BeforeWait() final;
  bool level_triggered() const final { return true; }

  // Watched fds (storages alive, including those waiting for a cancelled poll to finish).
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
  // Brings s's poll up to date with its requests; may delete s (idle, no requests).
  void Sync(FdStorage* s);
  void Erase(FdStorage* s);
  // Breaks every request of s with EBADF.
  void BreakAll(FdStorage* s, int err);
  // A completion of s's poll (inside Poller::Wait).
  void OnReport(FdStorage* s, int32_t result, uint32_t flags);
  // Readies the requests `revents` satisfies among the level-triggered ones (edge == false) or
  // the ET ones (edge == true); true if any became ready.
  bool Dispatch(FdStorage* s, uint32_t revents, bool edge);
  // Brings s's registration in the edge-triggered set up to date with its ET requests. Returns
  // true if it (re-)registered: the kernel then reports a condition that already holds.
  bool UpdateEdge(FdStorage* s);
  // The edge-triggered set is readable (ReadableWatch::Listener).
  void OnReadable() override;

  OriginContext& context_;
  absl::flat_hash_map<int, std::unique_ptr<FdStorage>> table_;
  std::vector<FdStorage*> sweep_;  // every storage, for the round-robin closed-fd sweep
  size_t sweep_next_ = 0;
  uint32_t generations_ = 0;
  // KEVENT_REQ_ET requests: their fds are in a private EPOLLET epoll set (created at the first
  // one), which is watched through the Poller like any fd. The kernel then reports each new
  // activity (new data, new room), drained or not, on both backends.
  int edge_epfd_ = -1;  // owned by edge_watch_
  ReadableWatch* edge_watch_ = nullptr;
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_FD_TABLE_H_
