// Reactor: one shard's event loop. It owns the shard's TaskQueue, its Poller (io_uring or
// epoll) and its kevent queue, and turns them round in one loop (docs/architecture.md):
//
//   1. run ready tasks (up to the task quota)
//   2. poll the backend: Wait(0) when work is runnable, else block until the next timer
//      deadline, an I/O completion or a Wake() (a cross-shard message, Stop())
//   3. expire timers (they become ready kevents)
//   4. deliver ready kevents to their KeventHandlers (awaiters resume as tasks)
//   5. drain the SMP rings (run incoming messages, complete replies, publish what was sent)
//
// Example (a whole program on one shard):
//   int main() {
//     return kev::RunReactor([]() -> kev::Future<int> {
//       co_await kev::Sleep(std::chrono::milliseconds(10));  // reactor/timer.h
//       co_return 0;
//     });
//   }
//
// Threading: a Reactor belongs to the thread that constructed it (that thread's "current
// reactor" until destruction, and its TaskQueue is installed as the thread's current queue).
// Only Stop() and metrics() may be called from other threads. One Reactor per thread.
#ifndef KEV_REACTOR_REACTOR_H_
#define KEV_REACTOR_REACTOR_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "kevent/internal/queue.h"
#include "kevent/internal/request.h"
#include "kevent/poller.h"
#include "kevent/ukevent.h"
#include "reactor/future.h"
#include "reactor/internal/check.h"
#include "reactor/smp_queue.h"
#include "reactor/task_queue.h"

namespace kev {

class Reactor;
class Smp;

struct ReactorOptions {
  PollerBackend backend = PollerBackend::kDefault;  // kevent/poller.h
  unsigned shard_id = 0;
  std::chrono::nanoseconds task_quota = TaskQueue::kDefaultQuota;
  unsigned poller_entries = 4096;
  // How long a shard with nothing to do keeps polling (non-blocking Waits) before it sleeps in
  // the poller. 0: sleep at once. Polling trades CPU for the cost of sleeping: a sleeping shard
  // is woken by every arrival (a wake-up, often an inter-processor interrupt, paid by whoever
  // made it ready, e.g. the peer's send) and pays a context switch; a polling shard takes the
  // arrival at its next turn. Seastar polls 200 us by default for the same reason. The spent
  // time counts as idle_time.
  std::chrono::nanoseconds idle_poll{0};
};

// Per-shard counters. Each is written only by the shard's thread with relaxed stores (one
// load + add + store, no locked instruction on the loop's path) and may be read from any
// thread; a snapshot may mix values from slightly different moments.
struct ReactorMetrics {
  uint64_t turns = 0;                     // loop iterations
  uint64_t tasks_run = 0;                 // tasks run by TaskQueue::RunReady
  uint64_t polls = 0;                     // Poller::Wait calls
  uint64_t sleeps = 0;                    // of those, the ones allowed to block
  uint64_t completions = 0;               // I/O completions dispatched by the poller
  uint64_t events_delivered = 0;          // kevents handed to KeventHandlers
  std::chrono::nanoseconds idle_time{0};  // time spent blocked in the poller
  uint64_t smp_messages_sent = 0;         // cross-shard requests sent by this shard
  uint64_t smp_messages_received = 0;     // requests from other shards processed here
  uint64_t smp_replies_completed = 0;     // replies to this shard's requests completed here
  uint64_t smp_wakeups_sent = 0;          // times this shard woke a sleeping peer
};

// A kevent request owned by the caller and registered in a reactor's kevent queue; the
// reactor calls OnEvent() for every delivery. This is how awaiters (reactor/interest.h,
// reactor/timer.h) and long-lived interests (a socket's readiness) embed their request, so
// registering and delivering allocate nothing.
//
// The handler's address is stored in the request's `ptr` (so (type, id, ptr) is unique per
// handler and delivery finds the handler without a lookup); the caller's own user/ptr bits are
// kept aside and restored in every event handed back.
//
// Threading: the owning shard only. Lifetime: must not move while registered (it is linked
// into the queue); the destructor unregisters.
class KeventHandler {
 public:
  KeventHandler(const KeventHandler&) = delete;
  KeventHandler& operator=(const KeventHandler&) = delete;

  // Called by the reactor's delivery phase with the delivered event (ret_flags DONE, or
  // BROKEN|DONE with the positive errno in ret_data[0]; user/ptr as the caller gave them).
  // A ONESHOT or broken request is no longer registered when this runs; a persistent one is.
  // May unregister or destroy this handler or any other, and may Register() again.
  virtual void OnEvent(const ukevent& event) noexcept = 0;

  // Registers the request (as KEVENT_CTL_ADD) in `reactor`'s queue. Returns nullopt when it
  // is queued: OnEvent() runs from the loop when an event is delivered. Returns the event when
  // the request completed at once (OnEvent() is not called for it; a ONESHOT request is then
  // no longer registered, a persistent one is). Throws std::system_error with the queue's
  // errno when the request is rejected (EINVAL, EOPNOTSUPP, EBADF...; not registered).
  // Must not be registered already (checked).
  std::optional<ukevent> Register(Reactor& reactor);
  // Register() on the calling thread's reactor (Reactor::Current()).
  std::optional<ukevent> Register();

  // Removes the request if registered; a pending undelivered event is dropped. No-op if not.
  void Unregister() noexcept;

  bool Registered() const noexcept { return request_.queue != nullptr; }

  // The request as the queue holds it while registered (its `ptr` is this handler): what a
  // KEVENT_CTL_READY / MODIFY / REMOVE on the queue must name, e.g. to fire a UNOTIFY
  // interest with queue().Ctl(KEVENT_CTL_READY, key).
  ukevent QueueKey() const noexcept {
    ukevent key = user_request_;
    key.ptr = const_cast<KeventHandler*>(this);
    key.ret_flags = 0;
    return key;
  }

  // The request as it will be registered (type, id, event, req_flags, user). Edit only while
  // not registered; `ptr` is the caller's own and is preserved.
  ukevent& request() noexcept { return user_request_; }
  const ukevent& request() const noexcept { return user_request_; }

 protected:
  explicit KeventHandler(const ukevent& request) noexcept
      : user_request_(request), request_(request) {}
  ~KeventHandler() { Unregister(); }

 private:
  friend class Reactor;  // Delivery maps request_.uk.ptr back to the handler.
  // Turns a queue event into the caller's view (restores user/ptr).
  ukevent UserEvent(const ukevent& queued) const noexcept {
    ukevent ev = queued;
    ev.ptr = user_request_.ptr;
    return ev;
  }

  ukevent user_request_;
  kevent_internal::Request request_;
};

class Reactor {
 public:
  // Creates the poller (options.backend) and the kevent queue on the calling thread, and
  // makes this the thread's current reactor and its TaskQueue the thread's current queue.
  // Throws std::system_error when the poller cannot be created. A second live Reactor on the
  // same thread is a contract violation (aborts). Test only: when the environment variable
  // KEV_FAULTS is set (kevent/testing/fault_injecting_poller.h, FaultOptions::Parse), the
  // poller is wrapped in a FaultInjectingPoller (seed + shard_id); checked once, here.
  explicit Reactor(const ReactorOptions& options = {});
  // On the constructing thread, not while Run() runs. Destroys the queue (requests are
  // unlinked, origins cancel their operations), then the poller (final completions go to the
  // origins' orphaned objects). Tasks still queued are abandoned (never run), and handlers
  // still registered are simply unlinked.
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // This thread's reactor; a contract violation (abort) if there is none.
  static Reactor& Current() noexcept;
  static Reactor* CurrentOrNull() noexcept { return current_; }

  // Submit I/O here; completions run inside the loop's poll phase.
  Poller& poller() noexcept { return *poller_; }
  // This shard's kevent queue. Register requests only through KeventHandler: delivery takes
  // every delivered event's ptr for its handler, so Queue::Ctl(ADD) and Queue::StartAio (whose
  // ptr is a cookie) must not be used on a reactor's queue. Origins use poller().
  kevent_internal::Queue& queue() noexcept { return *queue_; }
  TaskQueue& tasks() noexcept { return tasks_; }
  unsigned shard_id() const noexcept { return shard_id_; }
  // What the poller really is (kIoUring or kEpoll).
  PollerBackend backend() const noexcept { return poller_->backend(); }

  // Runs the loop on the constructing thread until Stop(). Not re-entrant (checked). Throws
  // std::system_error if the poller itself fails (never for an operation's error).
  void Run();
  // Makes Run() return after the current turn (or makes the next Run() return at once if the
  // loop is not running). From any thread (an atomic store and a Poller::Wake()).
  void Stop() noexcept;

  // A snapshot of this shard's counters (any thread).
  ReactorMetrics metrics() const noexcept;

 private:
  friend class Smp;
  class PollerWaker final : public Waker {
   public:
    explicit PollerWaker(Poller* poller) : poller_(poller) {}
    void Wake() noexcept override { poller_->Wake(); }

   private:
    Poller* poller_;
  };

  void Turn();
  void PollBackend();
  // Ends a run of idle polling turns, adding its length to idle_time.
  void EndIdlePolling() noexcept;
  void DeliverEvents();
  // Attaches the SMP matrix (Smp does this before Run, on the shard's thread).
  void AttachSmp(SmpMessageMatrix* matrix, unsigned shard) noexcept;
  Waker* waker() noexcept { return &waker_; }

  static void Add(std::atomic<uint64_t>& counter, uint64_t n) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  // Most events delivered per turn: bounds the time one turn spends on delivery, like the
  // task quota does for tasks; the rest go next turn (the poll then does not block).
  static constexpr int kMaxEventsPerTurn = 1024;

  const unsigned shard_id_;
  const std::chrono::nanoseconds task_quota_;
  const int64_t idle_poll_ns_;
  int64_t idle_since_ns_ = 0;  // start of the current run of turns with nothing to do, or 0
  TaskQueue tasks_;
  std::optional<TaskQueue::Scope> task_scope_;
  std::unique_ptr<Poller> poller_;
  std::unique_ptr<kevent_internal::Queue> queue_;
  PollerWaker waker_;
  SmpMessageMatrix* smp_ = nullptr;
  unsigned smp_shard_ = 0;
  bool running_ = false;
  std::atomic<bool> stop_requested_{false};

  std::atomic<uint64_t> turns_{0};
  std::atomic<uint64_t> tasks_run_{0};
  std::atomic<uint64_t> polls_{0};
  std::atomic<uint64_t> sleeps_{0};
  std::atomic<uint64_t> completions_{0};
  std::atomic<uint64_t> events_delivered_{0};
  std::atomic<uint64_t> idle_ns_{0};

  static inline thread_local Reactor* current_ = nullptr;
};

namespace internal {
template <class R>
struct RunResult {
  using Type = R;
};
template <class U>
struct RunResult<Future<U>> {
  using Type = U;
};
}  // namespace internal

// Creates a Reactor on the calling thread, calls fn() (returning Future<T>, a coroutine
// Future<T>, or T), runs the loop until that future resolves, and returns its value or
// rethrows its exception. Work still pending then is abandoned with the reactor. Throws
// std::system_error if the reactor cannot be created. Not from inside another reactor's thread.
template <class Fn>
auto RunReactor(Fn&& fn, const ReactorOptions& options = {}) {
  using R = std::invoke_result_t<Fn&>;
  using T = typename internal::RunResult<R>::Type;
  Reactor reactor(options);
  Future<T> result = internal::Futurize<R>::Apply([&]() -> R { return fn(); });
  if (!result.Available()) {
    Future<T> settled;
    Future<void> done = std::move(result).ThenWrapped([&](Future<T> f) {
      settled = std::move(f);
      reactor.Stop();
    });
    // A Stop() from fn's own code does not end RunReactor early: the contract is "until the
    // future resolves".
    do reactor.Run();
    while (!settled.Valid());
    result = std::move(settled);
  }
  return result.Get();
}

}  // namespace kev

#endif  // KEV_REACTOR_REACTOR_H_
