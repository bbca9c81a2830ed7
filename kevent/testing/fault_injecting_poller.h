// kevent/testing/fault_injecting_poller.h: a Poller decorator that makes chosen operations fail
// or come back short, reproducibly from a seed, to prove that code above the Poller (origins,
// the reactor, net/, httpd) survives the errors the kernel may return.
//
// FaultInjectingPoller wraps a real Poller (io_uring or epoll) and forwards everything to it,
// except that, for each eligible operation, it draws from a seeded generator and may:
//  - fail it with ENOMEM, EAGAIN, EINTR, ECONNRESET or ENOSPC: the operation is NOT performed
//    (no byte moves, no fd is created), as a real failure of that errno would leave things, and
//    the caller's completion receives -errno inside the next Wait();
//  - shorten it (Read, Write, Recv, Send, Splice with more than one byte): the real operation
//    is submitted with a random shorter length in [1, len - 1], so the result is a genuine
//    short transfer.
// Each errno is only injected into operations that can really return it (see the table in
// fault_injecting_poller.cc: ENOSPC for writes, splices, opens and fsync; ECONNRESET for
// socket-capable transfers and connect...). Readiness (PollAdd), Close and Timeout are never
// faulted. Faults are chosen at submission, so a multishot Accept fails as a whole (its one
// final completion), never mid-stream.
//
// Determinism: the decisions depend only on the seed and on the sequence of eligible
// operations submitted (one draw each, plus one for a short length), so a single-threaded run
// that submits the same operations in the same order gets the same faults.
//
// Example:
//   kev::FaultOptions faults;
//   faults.seed = 42;
//   faults.probability[kev::Fault::kEagain] = 0.05;
//   faults.probability[kev::Fault::kShort] = 0.2;
//   kev::FaultInjectingPoller poller(kev::Poller::Create(kev::PollerBackend::kDefault), faults);
//   poller.Recv(fd, buf, 0, &done);  // maybe -EAGAIN (nothing read), maybe fewer bytes
//   poller.Wait(std::nullopt);
//
// Or from a string (for an environment variable such as KEV_FAULTS):
//   auto opts = kev::FaultOptions::Parse("seed=7,eagain=0.05,short=0.2");
//
// Threading and contracts: exactly those of kev::Poller (poller.h): one driving thread, Wake()
// from any thread, completions only inside Wait() or the destructor, one final completion per
// operation (injected failures included, also after Cancel and at destruction).
#ifndef KEV_KEVENT_TESTING_FAULT_INJECTING_POLLER_H_
#define KEV_KEVENT_TESTING_FAULT_INJECTING_POLLER_H_

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "kevent/poller.h"

namespace kev {

// What may happen to one operation.
enum class Fault : uint8_t {
  kEnomem,      // -ENOMEM, not performed
  kEagain,      // -EAGAIN, not performed
  kEintr,       // -EINTR, not performed
  kEconnreset,  // -ECONNRESET, not performed
  kEnospc,      // -ENOSPC, not performed
  kShort,       // performed with a shorter length
  kNone,        // performed as submitted
};
inline constexpr size_t kFaultKinds = 6;  // kNone excluded
// "enomem", "eagain", "eintr", "econnreset", "enospc", "short", "none".
std::string_view FaultName(Fault fault);

// The operations a fault can be injected into (PollAdd, Close, Timeout never are).
enum class FaultOp : uint8_t {
  kRead,
  kWrite,
  kRecv,
  kSend,
  kRecvMsg,
  kSendMsg,
  kAccept,
  kConnect,
  kSplice,
  kOpenAt,
  kStatx,
  kFsync,
};

struct FaultOptions {
  uint64_t seed = 1;
  // Probability in [0, 1] per eligible operation, indexed by Fault (kNone excluded). The sum
  // over the faults an operation admits should not exceed 1; beyond that the later kinds (in
  // enum order) are picked less often than asked.
  std::array<double, kFaultKinds> probability{};
  double& operator[](Fault f) { return probability[static_cast<size_t>(f)]; }

  // Optional precise control for tests: called for every eligible operation (with its index
  // among eligible operations, from 0) before the random draw; a value other than nullopt is
  // used instead (even a fault the operation does not admit). Runs on the driving thread.
  std::function<std::optional<Fault>(FaultOp op, uint64_t index)> decide;

  // Parses comma-separated `key=value` pairs: `seed=<u64>` and `<fault>=<probability>` with the
  // names of FaultName (e.g. "seed=7,enomem=0.01,short=0.25"). nullopt on an unknown key or a
  // malformed value. An empty string gives the defaults (no faults).
  static std::optional<FaultOptions> Parse(std::string_view spec);
  // Parse(getenv(variable)); nullopt when the variable is unset; an invalid value is reported
  // on stderr and gives nullopt.
  static std::optional<FaultOptions> FromEnvironment(const char* variable = "KEV_FAULTS");
};

// What was injected so far.
struct FaultStats {
  uint64_t eligible = 0;                      // operations that went through a draw
  std::array<uint64_t, kFaultKinds> count{};  // by Fault
  uint64_t operator[](Fault f) const { return count[static_cast<size_t>(f)]; }
  uint64_t injected() const;  // sum of count
};

class FaultInjectingPoller final : public Poller {
 public:
  // Takes ownership of `inner` (must not be null). The options are copied.
  FaultInjectingPoller(std::unique_ptr<Poller> inner, const FaultOptions& options);
  // Destroys the inner poller (its operations get their finals), then delivers the final
  // completions of injected failures not yet delivered. Operations submitted from those
  // callbacks complete with -ECANCELED without being performed.
  ~FaultInjectingPoller() override;

  const FaultStats& stats() const { return stats_; }
  Poller& inner() { return *inner_; }

  // Poller.
  PollerBackend backend() const noexcept override { return backend_; }
  std::string_view name() const noexcept override { return name_; }
  void PollAdd(int fd, uint32_t poll_events, bool multishot, IoCompletion* c) override;
  void Read(int fd, std::span<std::byte> buf, int64_t offset, IoCompletion* c) override;
  void Write(int fd, std::span<const std::byte> buf, int64_t offset, IoCompletion* c) override;
  void Recv(int fd, std::span<std::byte> buf, int flags, IoCompletion* c) override;
  void Send(int fd, std::span<const std::byte> buf, int flags, IoCompletion* c) override;
  void RecvMsg(int fd, msghdr* msg, int flags, IoCompletion* c) override;
  void SendMsg(int fd, const msghdr* msg, int flags, IoCompletion* c) override;
  void Accept(int fd, sockaddr* addr, socklen_t* addrlen, int flags, bool multishot,
              IoCompletion* c) override;
  void Connect(int fd, const sockaddr* addr, socklen_t addrlen, IoCompletion* c) override;
  void Splice(int fd_in, int64_t off_in, int fd_out, int64_t off_out, unsigned len, unsigned flags,
              IoCompletion* c) override;
  void OpenAt(int dirfd, const char* path, int flags, mode_t mode, IoCompletion* c) override;
  void Statx(int dirfd, const char* path, int flags, unsigned mask, struct statx* out,
             IoCompletion* c) override;
  void Fsync(int fd, bool datasync, IoCompletion* c) override;
  void Close(int fd, IoCompletion* c) override;
  void Timeout(std::chrono::nanoseconds duration, IoCompletion* c) override;
  // Forwarded; an injected failure not yet delivered keeps its result (it "won the race").
  void Cancel(IoCompletion* target) override;
  // Delivers injected failures first; then waits on the inner poller, without blocking when
  // anything was delivered. Returns the number of completions dispatched (both kinds).
  int Wait(std::optional<std::chrono::nanoseconds> timeout) override;
  void Wake() noexcept override { inner_->Wake(); }
  size_t InFlight() const noexcept override { return inner_->InFlight() + pending_.size(); }

 private:
  // Draws the fault for one eligible operation; `length` is its transfer length (0: cannot be
  // shortened). On kShort, *short_length gets the new length.
  Fault Decide(FaultOp op, size_t length, size_t* short_length);
  // Queues c's final completion with -errno of `fault`.
  void Fail(Fault fault, IoCompletion* c);
  int DeliverPending();

  struct Injected {
    IoCompletion* completion;
    int32_t result;
  };

  std::unique_ptr<Poller> inner_;
  FaultOptions options_;
  std::mt19937_64 rng_;
  std::string name_;
  PollerBackend backend_;  // cached: still answerable while the inner poller is destroyed
  FaultStats stats_;
  std::deque<Injected> pending_;  // injected failures, delivered by the next Wait()
  bool destroying_ = false;
};

}  // namespace kev

#endif  // KEV_KEVENT_TESTING_FAULT_INJECTING_POLLER_H_
