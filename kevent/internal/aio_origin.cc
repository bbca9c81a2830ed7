#include "kevent/internal/aio_origin.h"

#include <cerrno>
#include <climits>
#include <cstring>
#include <span>
#include <utility>

#include "kevent/internal/queue.h"
#include "kevent/poller.h"

namespace kev::kevent_internal {
namespace {

// A single Read or Write.
class SimpleIo final : public AioOperation, public IoCompletion {
 public:
  SimpleIo(bool write, int fd, void* buf, size_t len, int64_t offset)
      : write_(write), fd_(fd), buf_(static_cast<std::byte*>(buf)), len_(len), offset_(offset) {}

  void Start(Poller& poller) override {
    if (write_) {
      poller.Write(fd_, std::span<const std::byte>(buf_, len_), offset_, this);
    } else {
      poller.Read(fd_, std::span<std::byte>(buf_, len_), offset_, this);
    }
  }
  void Cancel(Poller& poller) override { poller.Cancel(this); }
  void OnComplete(int32_t result, uint32_t flags) noexcept override { Finish(result); }

 private:
  const bool write_;
  const int fd_;
  std::byte* const buf_;
  const size_t len_;
  const int64_t offset_;
};

}  // namespace

void AioOperation::Finish(int64_t result) {
  if (origin_ == nullptr) {
    delete this;
    return;
  }
  origin_->Complete(this, result);
}

std::unique_ptr<AioOperation> MakeAioRead(int fd, void* buf, size_t len, int64_t offset) {
  return std::make_unique<SimpleIo>(false, fd, buf, len, offset);
}

std::unique_ptr<AioOperation> MakeAioWrite(int fd, const void* buf, size_t len, int64_t offset) {
  return std::make_unique<SimpleIo>(true, fd, const_cast<void*>(buf), len, offset);
}

AioOrigin::~AioOrigin() {
  for (auto& [cookie, op] : ops_) op->origin_ = nullptr;
}

int AioOrigin::Enqueue(Request& r) {
  if (context_.poller() == nullptr) return -EOPNOTSUPP;
  if (starting_ == nullptr || r.uk.event != KEVENT_AIO_BIO) return -EINVAL;
  starting_->request_ = &r;
  r.uk.ret_data[0] = r.uk.ret_data[1] = 0;
  return 0;
}

void AioOrigin::Dequeue(Request& r) {
  auto it = ops_.find(static_cast<long>(r.uk.id.raw_u64));
  if (it == ops_.end() || it->second->request_ != &r) return;  // finished already
  AioOperation* op = it->second;
  op->request_ = nullptr;
  op->Cancel(*context_.poller());  // Finish comes with the final completion
}

long AioOrigin::Start(Queue& queue, std::unique_ptr<AioOperation> op) {
  Poller* poller = context_.poller();
  if (poller == nullptr) return -EOPNOTSUPP;
  if (next_cookie_ == LONG_MAX) next_cookie_ = 0;  // after 2^63 operations
  const long cookie = ++next_cookie_;
  ukevent uk{};
  uk.type = KEVENT_AIO;
  uk.event = KEVENT_AIO_BIO;
  uk.req_flags = KEVENT_REQ_ONESHOT;
  uk.id.raw_u64 = static_cast<uint64_t>(cookie);
  uk.ptr = reinterpret_cast<void*>(cookie);
  starting_ = op.get();
  queue.Ctl(KEVENT_CTL_ADD, uk);
  starting_ = nullptr;
  if ((uk.ret_flags & KEVENT_RET_BROKEN) != 0) return -static_cast<long>(uk.ret_data[0]);
  AioOperation* raw = op.release();
  raw->origin_ = this;
  raw->cookie_ = cookie;
  ops_.emplace(cookie, raw);  // one insert per operation
  raw->Start(*poller);
  return cookie;
}

void AioOrigin::Complete(AioOperation* op, int64_t result) {
  ops_.erase(op->cookie_);
  Request* r = op->request_;
  delete op;
  if (r == nullptr) return;  // removed while running: nothing to report
  if (result >= 0) {
    const uint64_t bytes = static_cast<uint64_t>(result);
    r->uk.ret_data[0] = static_cast<uint32_t>(bytes);
    r->uk.ret_data[1] = static_cast<uint32_t>(bytes >> 32);
    r->queue->MarkActive(*r);
    return;
  }
  const int err = static_cast<int>(-result);
  r->uk.event = static_cast<uint32_t>(err);  // the spec's place for an AIO failure
  r->queue->Break(*r, err);
}

}  // namespace kev::kevent_internal
