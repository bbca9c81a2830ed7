#include "kevent/testing/fault_injecting_poller.h"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace kev {
namespace {

constexpr std::array<std::string_view, kFaultKinds + 1> kNames = {
    "enomem", "eagain", "eintr", "econnreset", "enospc", "short", "none"};
constexpr std::array<int, kFaultKinds> kErrno = {ENOMEM, EAGAIN, EINTR, ECONNRESET, ENOSPC, 0};

constexpr uint32_t Bit(Fault f) { return 1u << static_cast<unsigned>(f); }
constexpr uint32_t kCommon = Bit(Fault::kEnomem) | Bit(Fault::kEintr);

// Which faults each operation admits: the errnos the kernel really returns for it (io_uring
// and the plain syscalls), and kShort where a shorter length is meaningful.
uint32_t Admitted(FaultOp op) {
  switch (op) {
    case FaultOp::kRead:  // files, pipes and sockets
      return kCommon | Bit(Fault::kEagain) | Bit(Fault::kEconnreset) | Bit(Fault::kShort);
    case FaultOp::kWrite:
      return kCommon | Bit(Fault::kEagain) | Bit(Fault::kEconnreset) | Bit(Fault::kEnospc) |
             Bit(Fault::kShort);
    case FaultOp::kRecv:
    case FaultOp::kSend:
      return kCommon | Bit(Fault::kEagain) | Bit(Fault::kEconnreset) | Bit(Fault::kShort);
    case FaultOp::kRecvMsg:
    case FaultOp::kSendMsg:
      return kCommon | Bit(Fault::kEagain) | Bit(Fault::kEconnreset);
    case FaultOp::kAccept:  // ECONNABORTED is the accept-side reset; not in our set
      return kCommon | Bit(Fault::kEagain);
    case FaultOp::kConnect:
      return kCommon | Bit(Fault::kEagain) | Bit(Fault::kEconnreset);
    case FaultOp::kSplice:
      return kCommon | Bit(Fault::kEagain) | Bit(Fault::kEnospc) | Bit(Fault::kShort);
    case FaultOp::kOpenAt:
      return kCommon | Bit(Fault::kEnospc);  // O_CREAT on a full file system
    case FaultOp::kStatx:
      return kCommon;
    case FaultOp::kFsync:
      return Bit(Fault::kEintr) | Bit(Fault::kEnospc);
  }
  return 0;
}

}  // namespace

std::string_view FaultName(Fault fault) { return kNames[static_cast<size_t>(fault)]; }

uint64_t FaultStats::injected() const {
  uint64_t sum = 0;
  for (uint64_t c : count) sum += c;
  return sum;
}

std::optional<FaultOptions> FaultOptions::Parse(std::string_view spec) {
  FaultOptions options;
  while (!spec.empty()) {
    const size_t comma = spec.find(',');
    std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string_view key = item.substr(0, eq);
    const std::string_view value = item.substr(eq + 1);
    if (key == "seed") {
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), options.seed);
      if (ec != std::errc() || ptr != value.data() + value.size()) return std::nullopt;
      continue;
    }
    size_t kind = 0;
    while (kind < kFaultKinds && kNames[kind] != key) ++kind;
    if (kind == kFaultKinds) return std::nullopt;
    // strtod needs a terminated string; values are short.
    const std::string text(value);
    char* end = nullptr;
    const double p = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || !(p >= 0 && p <= 1)) {
      return std::nullopt;
    }
    options.probability[kind] = p;
  }
  return options;
}

std::optional<FaultOptions> FaultOptions::FromEnvironment(const char* variable) {
  const char* value = std::getenv(variable);
  if (value == nullptr) return std::nullopt;
  std::optional<FaultOptions> options = Parse(value);
  if (!options) std::fprintf(stderr, "kev: ignoring invalid %s=\"%s\"\n", variable, value);
  return options;
}

FaultInjectingPoller::FaultInjectingPoller(std::unique_ptr<Poller> inner,
                                           const FaultOptions& options)
    : inner_(std::move(inner)),
      options_(options),
      rng_(options.seed),
      name_(std::string("faulty-") + std::string(inner_->name())),
      backend_(inner_->backend()) {}

FaultInjectingPoller::~FaultInjectingPoller() {
  destroying_ = true;
  inner_.reset();
  while (!pending_.empty()) DeliverPending();
}

Fault FaultInjectingPoller::Decide(FaultOp op, size_t length, size_t* short_length) {
  const uint64_t index = stats_.eligible++;
  // Always draw, so the sequence of decisions depends only on the sequence of operations.
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  Fault fault = Fault::kNone;
  std::optional<Fault> forced;
  if (options_.decide) forced = options_.decide(op, index);
  if (forced) {
    fault = *forced;
  } else {
    const uint32_t admitted = Admitted(op);
    double cumulative = 0;
    for (size_t k = 0; k < kFaultKinds; ++k) {
      if ((admitted & (1u << k)) == 0) continue;
      cumulative += options_.probability[k];
      if (u < cumulative) {
        fault = static_cast<Fault>(k);
        break;
      }
    }
  }
  if (fault == Fault::kShort) {
    if (length < 2) return Fault::kNone;  // nothing shorter that still moves a byte
    *short_length = 1 + static_cast<size_t>(rng_() % (length - 1));
  }
  if (fault != Fault::kNone) ++stats_.count[static_cast<size_t>(fault)];
  return fault;
}

void FaultInjectingPoller::Fail(Fault fault, IoCompletion* c) {
  // Delivered by the next Wait(): a completion never runs inside its own submission.
  pending_.push_back({c, -kErrno[static_cast<size_t>(fault)]});
}

int FaultInjectingPoller::DeliverPending() {
  std::deque<Injected> batch;
  batch.swap(pending_);  // callbacks may queue more: those go to the next round
  for (const Injected& i : batch) i.completion->OnComplete(i.result, 0);
  return static_cast<int>(batch.size());
}

// Every submission: during destruction nothing reaches the (gone) inner poller.
#define KEV_FAULT_GUARD(c)                   \
  do {                                       \
    if (destroying_) {                       \
      pending_.push_back({(c), -ECANCELED}); \
      return;                                \
    }                                        \
  } while (0)

void FaultInjectingPoller::PollAdd(int fd, uint32_t poll_events, bool multishot, IoCompletion* c) {
  KEV_FAULT_GUARD(c);
  inner_->PollAdd(fd, poll_events, multishot, c);
}

void FaultInjectingPoller::Read(int fd, std::span<std::byte> buf, int64_t offset, IoCompletion* c) {
  KEV_FAULT_GUARD(c);
  size_t len = 0;
  const Fault f = Decide(FaultOp::kRead, buf.size(), &len);
  if (f == Fault::kShort) buf = buf.first(len);
  if (f == Fault::kNone || f == Fault::kShort) return inner_->Read(fd, buf, offset, c);
  Fail(f, c);
}

void FaultInjectingPoller::Write(int fd, std::span<const std::byte> buf, int64_t offset,
                                 IoCompletion* c) {
  KEV_FAULT_GUARD(c);
  size_t len = 0;
  const Fault f = Decide(FaultOp::kWrite, buf.size(), &len);
  if (f == Fault::kShort) buf = buf.first(len);
  if (f == Fault::kNone || f == Fault::kShort) return inner_->Write(fd, buf, offset, c);
  Fail(f, c);
}

void FaultInjectingPoller::Recv(int fd, std::span<std::byte> buf, int flags, IoCompletion* c) {
  KEV_FAULT_GUARD(c);
  size_t len = 0;
  const Fault f = Decide(FaultOp::kRecv, buf.size(), &len);
  if (f == Fault::kShort) buf = buf.first(len);
  if (f == Fault::kNone || f == Fault::kShort) return inner_->Recv(fd, buf, flags, c);
  Fail(f, c);
}

void FaultInjectingPoller::Send(int fd, std::span<const std::byte> buf, int flags,
                                IoCompletion* c) {
  KEV_FAULT_GUARD(c);
  size_t len = 0;
  const Fault f = Decide(FaultOp::kSend, buf.size(), &len);
  if (f == Fault::kShort) buf = buf.first(len);
  if (f == Fault::kNone || f == Fault::kShort) return inner_->Send(fd, buf, flags, c);
  Fail(f, c);
}

void FaultInjectingPoller::RecvMsg(int fd, msghdr* msg, int flags, IoCompletion* c) {
  KEV_FAULT_GUARD(c);
  size_t unused = 0;
  const Fault f = Decide(FaultOp::kRecvMsg, 0, &unused);
  if (f == Fault::kNone) return inner_->RecvMsg(fd, msg, flags, c);
  Fail(f, c);
}

void FaultInjectingPoller::SendMsg(int fd, const msghdr* msg, int flags, IoCompletion* c) {
  KEV_FAULT_GUARD(c);
  size_t unused = 0;
  const Fault f = Decide(FaultOp::kSendMsg, 0, &unused);
  if (f == Fault::kNone) return inner_->SendMsg(fd, msg, flags, c);
  Fail(f, c);
}

void FaultInjectingPoller::Accept(int fd, sockaddr* addr, socklen_t* addrlen, int flags,
                                  bool multishot, IoCompletion* c) {
  KEV_FAULT_GUARD(c);
  size_t unused = 0;
  const Fault f = Decide(FaultOp::kAccept, 0, &unused);
  if (f == Fault::kNone) return inner_->Accept(fd, addr, addrlen, flags, multishot, c);
  Fail(f, c);
}

void FaultInjectingPoller::Connect(int fd, const sockaddr* addr, socklen_t addrlen,
                                   IoCompletion* c) {
  KEV_FAULT_GUARD(c);
  size_t unused = 0;
  const Fault f = Decide(FaultOp::kConnect, 0, &unused);
  if (f == Fault::kNone) return inner_->Connect(fd, addr, addrlen, c);
  Fail(f, c);
}

void FaultInjectingPoller::Splice(int fd_in, int64_t off_in, int fd_out, int64_t off_out,
                                  unsigned len, unsigned flags, IoCompletion* c) {
  KEV_FAULT_GUARD(c);
  size_t shorter = 0;
  const Fault f = Decide(FaultOp::kSplice, len, &shorter);
  if (f == Fault::kShort) len = static_cast<unsigned>(shorter);
  if (f == Fault::kNone || f == Fault::kShort) {
    return inner_->Splice(fd_in, off_in, fd_out, off_out, len, flags, c);
  }
  Fail(f, c);
}

void FaultInjectingPoller::OpenAt(int dirfd, const char* path, int flags, mode_t mode,
                                  IoCompletion* c) {
  KEV_FAULT_GUARD(c);
  size_t unused = 0;
  const Fault f = Decide(FaultOp::kOpenAt, 0, &unused);
  if (f == Fault::kNone) return inner_->OpenAt(dirfd, path, flags, mode, c);
  Fail(f, c);
}

void FaultInjectingPoller::Statx(int dirfd, const char* path, int flags, unsigned mask,
                                 struct statx* out, IoCompletion* c) {
  KEV_FAULT_GUARD(c);
  size_t unused = 0;
  const Fault f = Decide(FaultOp::kStatx, 0, &unused);
  if (f == Fault::kNone) return inner_->Statx(dirfd, path, flags, mask, out, c);
  Fail(f, c);
}

void FaultInjectingPoller::Fsync(int fd, bool datasync, IoCompletion* c) {
  KEV_FAULT_GUARD(c);
  size_t unused = 0;
  const Fault f = Decide(FaultOp::kFsync, 0, &unused);
  if (f == Fault::kNone) return inner_->Fsync(fd, datasync, c);
  Fail(f, c);
}

void FaultInjectingPoller::Close(int fd, IoCompletion* c) {
  KEV_FAULT_GUARD(c);
  inner_->Close(fd, c);
}

void FaultInjectingPoller::Timeout(std::chrono::nanoseconds duration, IoCompletion* c) {
  KEV_FAULT_GUARD(c);
  inner_->Timeout(duration, c);
}

#undef KEV_FAULT_GUARD

void FaultInjectingPoller::Cancel(IoCompletion* target) {
  if (destroying_) return;  // everything gets its final anyway
  inner_->Cancel(target);
}

int FaultInjectingPoller::Wait(std::optional<std::chrono::nanoseconds> timeout) {
  if (pending_.empty()) return inner_->Wait(timeout);
  int n = DeliverPending();
  // Something completed: collect what else is ready without blocking.
  const int more = inner_->Wait(std::chrono::nanoseconds(0));
  if (more < 0) return more;
  return n + more;
}

}  // namespace kev
