// kevent/internal/aio_origin.h: the KEVENT_AIO origin, and the hook through which aio/ (and
// anything else) runs an asynchronous operation on a kevent queue and completes it as an event.
//
// An AIO request is made by a submitting call, never by KEVENT_CTL_ADD (EINVAL): StartAio
// registers a ONESHOT request {type KEVENT_AIO, event KEVENT_AIO_BIO, id.raw_u64 = cookie,
// ptr = cookie} with a fresh positive cookie, then calls op->Start(poller), which submits the
// operation(s) on the queue's Poller. The operation's completion callbacks (run inside
// Poller::Wait, by the thread driving the queue, with the queue locked in the C API) submit
// follow-up operations as they like and finally call Finish(result):
//   result >= 0: the event becomes ready with ret_data = the 64-bit byte count ([0] low word,
//                [1] high word);
//   result < 0:  the request is BROKEN|DONE with the positive errno in `event` (and in
//                ret_data[0], as for every broken request).
// Removing the request (KEVENT_CTL_REMOVE with type AIO and the cookie as id and user, or
// kevent_close) while the operation runs calls op->Cancel(poller); the operation still calls
// Finish once its final completions arrived, and nothing is reported.
//
// Example (what MakeAioRead does; aio_sendfile chains splices the same way):
//   class Read final : public AioOperation, public IoCompletion {
//     void Start(Poller& p) override { p.Read(fd_, buf_, off_, this); }
//     void Cancel(Poller& p) override { p.Cancel(this); }
//     void OnComplete(int32_t res, uint32_t) noexcept override { Finish(res); }  // last
//   };
//   long cookie = kev::kevent_internal::StartAio(kevent_fd, std::make_unique<Read>(...));
//   // ... kevent_get_events returns {type AIO, id.raw_u64 == cookie, ret_data[0] == bytes}
//
// Threading: Start, Cancel and the completions run on the thread that owns the queue at that
// moment (C API: holding the queue's lock; the Poller is never used without it).
#ifndef KEV_KEVENT_INTERNAL_AIO_ORIGIN_H_
#define KEV_KEVENT_INTERNAL_AIO_ORIGIN_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "kevent/internal/origin.h"

namespace kev {
class Poller;
}  // namespace kev

namespace kev::kevent_internal {

class AioOrigin;

// One asynchronous operation completed as a KEVENT_AIO event. Owned by the queue from StartAio
// until it calls Finish (which deletes it).
class AioOperation {
 public:
  AioOperation() = default;
  AioOperation(const AioOperation&) = delete;
  AioOperation& operator=(const AioOperation&) = delete;
  virtual ~AioOperation() = default;

  // Submits the operation on `poller`. Called once, from StartAio; must not call Finish (a
  // failure known at once is reported through a completion, as the Poller does).
  virtual void Start(Poller& poller) = 0;
  // The request went away (removed, queue closed): cancel what is in flight. Finish must still
  // be called once, from the final completion(s).
  virtual void Cancel(Poller& poller) = 0;

  // The cookie (valid once started).
  long cookie() const { return cookie_; }

 protected:
  // Ends the operation: bytes transferred (>= 0) or a negative errno. Call exactly once, from a
  // completion callback. Deletes `this`: touch nothing after it.
  void Finish(int64_t result);

 private:
  friend class AioOrigin;  // sets the links below at Start
  AioOrigin* origin_ = nullptr;  // null once the queue is gone (Finish just deletes)
  Request* request_ = nullptr;   // null once the request was removed
  long cookie_ = 0;
};

// Starts `op` on the C-API queue `kevent_fd` (defined in kevent/kevent.cc): takes the queue's
// lock, registers the AIO request and calls op->Start. Returns the cookie (> 0) or a negative
// errno: -EBADF (not a queue, or closed), -EOPNOTSUPP (the queue has no Poller), -ENOMEM. op is
// destroyed on failure. Any thread.
long StartAio(int kevent_fd, std::unique_ptr<AioOperation> op);

// Plain reads and writes completed as AIO events (offset -1: the file position; pipes and
// sockets). `buf` must stay valid until the event is delivered or the request removed and the
// queue closed.
std::unique_ptr<AioOperation> MakeAioRead(int fd, void* buf, size_t len, int64_t offset);
std::unique_ptr<AioOperation> MakeAioWrite(int fd, const void* buf, size_t len, int64_t offset);

class AioOrigin final : public Origin {
 public:
  explicit AioOrigin(OriginContext& context) : context_(context) {}
  // Operations still running (their requests removed) are orphaned: Finish deletes them.
  ~AioOrigin() override;

  // Only StartAio makes requests: a KEVENT_CTL_ADD of type AIO is EINVAL (EOPNOTSUPP without a
  // Poller).
  int Enqueue(Request& r) override;
  // Cancels the operation if it is still running.
  void Dequeue(Request& r) override;
  int Check(Request& r) override { return 1; }  // an occurrence: holds until delivered

  // Queue::StartAio.
  long Start(class Queue& queue, std::unique_ptr<AioOperation> op);
  // AioOperation::Finish.
  void Complete(AioOperation* op, int64_t result);

  size_t running() const { return ops_.size(); }

 private:
  OriginContext& context_;
  AioOperation* starting_ = nullptr;  // the operation whose request Enqueue is accepting
  long next_cookie_ = 0;
  absl::flat_hash_map<long, AioOperation*> ops_;  // cookie -> running operation
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_AIO_ORIGIN_H_
