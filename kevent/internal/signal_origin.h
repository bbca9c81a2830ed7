// kevent/internal/signal_origin.h: the KEVENT_SIGNAL origin.
//
// id.raw[0] = signal number (1..NSIG-1, not SIGKILL or SIGSTOP; signals the C library reserves
// are refused by sigaction and rejected with EINVAL too); id.raw[1] = 0, or KEVENT_SIGNAL_NOMASK
// in id.raw_u64. event must be KEVENT_SIGNAL_DELIVERY. Each arrival of the signal in the process
// is one occurrence; delivered ret_data[0] = arrivals since the last delivery, ret_data[1] = 0.
// Never ready at ADD. Needs a queue with a Poller (QueueOptions::poller): without one, ADD is
// rejected with EOPNOTSUPP.
//
// Process-wide machinery (signal_origin.cc): while any request (in any queue) watches a signal,
// one sigaction handler is installed for it, shared by every queue and request. The handler is
// async-signal-safe: it bumps the signal's atomic arrival counter and writes to the eventfd of
// every queue that watches the signal; each queue polls its own eventfd on its Poller and turns
// counter differences into occurrences. When the last request for a signal goes (over all
// queues), the disposition found at the first ADD is put back (unless someone replaced the
// handler meanwhile; then it is left alone). MODIFY re-registers a request (Dequeue, then
// Enqueue), so modifying the only request for a signal puts the old disposition back for the
// length of that call.
//
// NOMASK decides what else happens when the signal arrives:
//   - every watching request has NOMASK: the signal reaches only the queues; the previous
//     disposition does not run (the way to catch SIGINT/SIGTERM for a clean shutdown);
//   - some request lacks it: the previous disposition runs too, after the queues were told: a
//     previous handler function is called (sa_handler or sa_sigaction, as it was installed);
//     SIG_IGN does nothing; SIG_DFL does its default action: nothing for SIGCHLD, SIGCONT,
//     SIGURG and SIGWINCH; the whole process stops (with SIGSTOP) for SIGTSTP, SIGTTIN and
//     SIGTTOU; for every other signal (SIGINT, SIGTERM, SIGHUP, SIGUSR1, real-time signals...)
//     the process terminates at once, killed by that signal, so no queue ever delivers it.
//
// Every queue that watches a signal sees every arrival (queues belong to different threads and
// cannot share one request list); inside one queue the arrival goes to the first request, or to
// every request with KEVENT_REQ_WAKEUP_ALL (Storage::Ready).
//
// Example (a reactor shard's queue, stopping on SIGTERM):
//   ukevent uk{};
//   uk.type = KEVENT_SIGNAL;
//   uk.event = KEVENT_SIGNAL_DELIVERY;
//   uk.id.raw_u64 = KEVENT_SIGNAL_NOMASK | SIGTERM;   // raw[0] = SIGTERM, NOMASK set
//   queue.Ctl(KEVENT_CTL_ADD, uk);                     // ret_flags == 0: armed
//   ... a later poller.Wait() readies it when SIGTERM arrives; Dequeue() hands it out.
//
// Threading: the origin belongs to its queue. The process-wide registry takes a mutex on ADD and
// REMOVE only; the signal handler takes no lock.
#ifndef KEV_KEVENT_INTERNAL_SIGNAL_ORIGIN_H_
#define KEV_KEVENT_INTERNAL_SIGNAL_ORIGIN_H_

#include <array>
#include <cstdint>
#include <memory>

#include "kevent/internal/origin.h"
#include "kevent/internal/readable_watch.h"

namespace kev::kevent_internal {

// Linux signal numbers are 1..64 (NSIG == 65).
inline constexpr int kMaxSignal = 64;

class SignalOrigin final : public Origin, private ReadableWatch::Listener {
 public:
  explicit SignalOrigin(OriginContext& context) : context_(context) {}
  // Requests are gone by now (the queue removes them first); releases the eventfd.
  ~SignalOrigin() override;

  int Enqueue(Request& r) override;
  void Dequeue(Request& r) override;
  int Check(Request& r) override { return 1; }  // an arrival holds until delivered
  void Fill(const Request& r, ukevent& out) override {
    out.ret_data[0] = r.pending;
    out.ret_data[1] = 0;
  }

 private:
  struct Watched {
    Storage storage;
    uint64_t seen = 0;      // the process-wide arrival counter when last looked at
    uint32_t requests = 0;  // requests of this queue watching the signal
  };

  // Creates the eventfd, its registry slot and its poll on first use. Negative errno on failure.
  int EnsureSink();
  // The eventfd was written: turn counter differences into occurrences.
  void OnReadable() override;

  OriginContext& context_;
  std::array<std::unique_ptr<Watched>, kMaxSignal + 1> watched_;
  int slot_ = -1;  // this queue's slot in the process-wide registry
  ReadableWatch* watch_ = nullptr;
};

// For tests: arrivals of `signo` counted by the handler since the process started.
uint64_t SignalArrivalsForTesting(int signo);

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_SIGNAL_ORIGIN_H_
