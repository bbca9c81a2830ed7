// SMP: one reactor per core, and the calls that cross between them.
//
// Smp starts N shard threads, each pinned to its own CPU (reactor/topology.h: distinct cores
// first, never two shards on hyperthreads of one core while enough cores exist; memory bound to
// the CPU's NUMA node) and running its own Reactor. Shards share nothing on the data path;
// they talk only through SmpMessageMatrix (reactor/smp_queue.h): one SPSC ring per ordered pair
// of shards for requests and one for replies, batched and flushed once per loop turn, with a
// Poller::Wake() of the target only when it sleeps.
//
//   kev::SmpOptions options;
//   options.shards = 2;
//   int total = kev::Smp(options).Run([]() -> kev::Future<int> {
//     // On shard 0. Ask shard 1 for something, get it back here:
//     int v = co_await kev::SubmitTo(1, [] { return kev::this_shard_id() * 10; });   // 10
//     // Or everybody at once:
//     co_return co_await kev::MapReduce([] { return 1; }, 0, std::plus<int>());        // 2
//   });
//
// Cross-shard call semantics (SubmitTo):
//   * fn is moved into a message (one allocation), runs on the target shard inside its loop's
//     SMP phase, and may return T, Future<T> or throw. Its result (value or exception) travels
//     back and resolves the returned future on the calling shard. fn is destroyed on the target
//     shard once its future has resolved (so a coroutine lambda's captures stay valid).
//   * Per ordered pair of shards, calls start in submission order (their futures may resolve
//     out of order when fn returns a pending future).
//   * SubmitTo(this_shard_id(), fn) runs fn at once, in place (no message).
//   * Values and exceptions must be safe to move between threads (no shard-local pointers
//     escaping, no Future in a result).
//   * If the shards stop while a call is in flight, its future never resolves (its shard is
//     gone) and the message is freed at shutdown.
//
// Threading: SubmitTo, InvokeOnAll, MapReduce and Sharded<> are called on a shard thread (or on
// a thread with a lone Reactor, where only shard 0 exists). Smp::Run is called on a non-shard
// thread (usually main) and blocks it until the shards have stopped.
//
// Signals: while Smp::Run runs, the calling thread blocks SIGINT, SIGTERM, SIGHUP, SIGQUIT and
// SIGUSR1/2 (its mask is restored when Run returns) and the shard threads take them, so a
// handler never waits behind a thread parked in pthread_join (sanitizers defer handlers there).
// The SIGNAL origin's handler is process-wide and reaches every watching queue from any shard.
#ifndef KEV_REACTOR_SMP_H_
#define KEV_REACTOR_SMP_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "kevent/poller.h"
#include "reactor/combinators.h"
#include "reactor/future.h"
#include "reactor/internal/check.h"
#include "reactor/reactor.h"
#include "reactor/smp_queue.h"
#include "reactor/task_queue.h"
#include "reactor/topology.h"

namespace kev {

struct SmpOptions {
  // Number of shards; 0 means one per CPU available (the cpuset below, or every CPU the
  // process may run on: cgroup cpuset and affinity mask).
  unsigned shards = 0;
  // CPUs to place shards on (OS indices, e.g. ParseCpuset("0-3")); empty means all available.
  std::vector<unsigned> cpuset;
  // Pin each shard thread to its CPU and bind its memory to the CPU's NUMA node.
  bool pin = true;
  PollerBackend backend = PollerBackend::kDefault;
  std::chrono::nanoseconds task_quota = TaskQueue::kDefaultQuota;
  unsigned poller_entries = 4096;
  std::chrono::nanoseconds idle_poll{0};  // ReactorOptions::idle_poll, for every shard
  std::size_t ring_capacity = SmpMessageMatrix::kDefaultRingCapacity;
};

class Smp {
 public:
  // Plans the placement. Throws std::invalid_argument for an impossible plan (more shards than
  // CPUs in the cpuset, a CPU the machine does not offer), std::system_error if the topology
  // cannot be read.
  explicit Smp(const SmpOptions& options);
  ~Smp();
  Smp(const Smp&) = delete;
  Smp& operator=(const Smp&) = delete;

  unsigned shard_count() const noexcept { return static_cast<unsigned>(placement_.size()); }
  const std::vector<ShardPlacement>& placement() const noexcept { return placement_; }

  // Starts the shard threads, calls fn() on shard 0 (fn returns T or Future<T>), and when its
  // future resolves stops every shard, joins them and returns the value or rethrows. Messages
  // still in flight then are discarded. Throws std::system_error if a shard cannot start (a
  // poller, pinning) -- then fn is not called. Once per Smp, from a non-shard thread.
  template <class Fn>
  auto Run(Fn&& fn);

  // Stops every shard's loop; Run() then returns as if fn's future had failed with
  // kev::AbortRequested, unless it resolved first. From a shard thread, or from any thread
  // while Run() runs.
  void Stop() noexcept;

  // The Smp of the calling shard thread, or null on other threads.
  static Smp* CurrentOrNull() noexcept { return current_; }

  // Shard threads only: the message matrix and a shard's reactor (for metrics).
  SmpMessageMatrix& matrix() noexcept { return *matrix_; }
  Reactor& reactor(unsigned shard) noexcept { return *reactors_[shard].load(); }

 private:
  // Runs the shards; `start` is called on shard 0 once every shard is up and must arrange for
  // StopAll() to be called.
  void RunShards(std::function<void()> start);
  void ShardMain(unsigned shard, const std::function<void()>& start);

  SmpOptions options_;
  std::vector<ShardPlacement> placement_;
  std::unique_ptr<SmpMessageMatrix> matrix_;
  // Set by each shard thread before the start barrier, cleared before its reactor dies.
  std::vector<std::atomic<Reactor*>> reactors_;
  // A shard's failure to start (read after the start barrier) or to run (read after join).
  std::vector<std::exception_ptr> errors_;
  std::atomic<bool> stopping_{false};
  struct Barriers;
  std::unique_ptr<Barriers> barriers_;
  bool ran_ = false;

  static inline thread_local Smp* current_ = nullptr;
};

// The calling thread's shard: its reactor's shard id, 0 when it has no reactor.
unsigned this_shard_id() noexcept;
// Shards in the calling shard's Smp; 1 on a thread with a lone Reactor (RunReactor).
unsigned smp_count() noexcept;

namespace internal {

// A value or an exception, moved between shards.
template <class U>
struct Outcome {
  std::optional<Stored<U>> value;
  std::exception_ptr error;

  void Take(Future<U>& f) noexcept {
    if (f.Failed()) {
      error = f.GetException();
      return;
    }
    try {
      if constexpr (std::is_void_v<U>) {
        f.Get();
        value.emplace();
      } else {
        value.emplace(f.Get());
      }
    } catch (...) {
      error = std::current_exception();
    }
  }
  void Deliver(Promise<U>& promise) noexcept {
    if (error != nullptr) {
      promise.SetException(std::move(error));
    } else if constexpr (std::is_void_v<U>) {
      promise.SetValue();
    } else {
      try {
        promise.SetValue(std::move(*value));
      } catch (...) {
        promise.SetException(std::current_exception());
      }
    }
  }
};

// One SubmitTo() call. Its life, with S the source shard and T the target:
//   S: Send(S, T, call)           T: Process(): run fn
//      if fn's future is available:  outcome stored; reply -> S: Complete(): resolve, delete
//      else: reply -> S: Complete() only notes it; when fn's future resolves, T sends a
//            ResultMessage to S, whose Process() resolves the promise; the call is deleted by
//            whichever of the two S-side steps comes second.
// Only S touches the promise and the two flags below; only T touches fn.
template <class Fn, class U>
class SubmitCall final : public SmpMessage {
 public:
  SubmitCall(Fn&& fn, SmpMessageMatrix* matrix, unsigned source, unsigned target)
      : fn_(std::forward<Fn>(fn)), matrix_(matrix), source_(source), target_(target) {}

  Future<U> GetFuture() { return promise_.GetFuture(); }

  void Process() noexcept override {  // on the target
    using R = std::invoke_result_t<std::decay_t<Fn>&>;
    Future<U> f = Futurize<R>::Apply([this]() -> R { return (*fn_)(); });
    if (f.Available()) {
      outcome_.Take(f);
      fn_.reset();
      return;
    }
    async_ = true;
    Future<void> ignored = std::move(f).ThenWrapped([this](Future<U> done) noexcept {
      // Still on the target. The call stays alive until the result reaches the source.
      auto* result = new ResultMessage(this);  // one allocation per asynchronous result
      result->outcome.Take(done);
      fn_.reset();
      matrix_->Send(target_, source_, result);
    });
  }

  void Complete() noexcept override {  // on the source
    if (!async_) {
      outcome_.Deliver(promise_);
      delete this;
      return;
    }
    request_completed_ = true;
    if (result_arrived_) delete this;
  }

  void Discard(bool processed) noexcept override {  // at shutdown, shards stopped
    if (!processed || !async_) {
      delete this;
      return;
    }
    request_completed_ = true;
    if (result_arrived_) delete this;
  }

 private:
  struct ResultMessage final : SmpMessage {
    explicit ResultMessage(SubmitCall* c) : call(c) {}
    void Process() noexcept override {  // on the source
      outcome.Deliver(call->promise_);
      call->result_arrived_ = true;
      if (call->request_completed_) delete call;
    }
    void Complete() noexcept override { delete this; }  // back on the target
    void Discard(bool processed) noexcept override {
      if (!processed) {
        call->result_arrived_ = true;
        if (call->request_completed_) delete call;
      }
      delete this;
    }
    SubmitCall* call;
    Outcome<U> outcome;
  };

  std::optional<std::decay_t<Fn>> fn_;
  SmpMessageMatrix* matrix_;
  unsigned source_;
  unsigned target_;
  Promise<U> promise_;
  Outcome<U> outcome_;
  bool async_ = false;  // written by the target before the reply is published
  bool request_completed_ = false;
  bool result_arrived_ = false;
};

template <class R>
struct SubmitValue {
  using Type = R;
};
template <class U>
struct SubmitValue<Future<U>> {
  using Type = U;
};

}  // namespace internal

// Runs fn() on shard `shard` and returns its result (see "Cross-shard call semantics" above).
// `shard` must be < smp_count() (checked). Cost: one message allocation and one future state;
// plus one more message when fn's future is pending.
template <class Fn>
auto SubmitTo(unsigned shard, Fn&& fn) {
  using R = std::invoke_result_t<std::decay_t<Fn>&>;
  using U = typename internal::SubmitValue<R>::Type;
  const unsigned self = this_shard_id();
  Smp* smp = Smp::CurrentOrNull();
  KEV_CHECK_MSG(shard < smp_count(), "kev::SubmitTo: no such shard");
  if (smp == nullptr || shard == self) {
    if constexpr (internal::kIsFuture<R>) {
      // fn may be a coroutine lambda whose frame refers to the lambda object: keep it alive,
      // at a fixed address, until its future resolves (one allocation).
      auto held = std::make_unique<std::decay_t<Fn>>(std::forward<Fn>(fn));
      Future<U> f = internal::Futurize<R>::Apply([&]() -> R { return (*held)(); });
      if (f.Available()) return f;
      return std::move(f).ThenWrapped([held = std::move(held)](Future<U> done) { return done; });
    } else {
      std::decay_t<Fn> local(std::forward<Fn>(fn));
      return internal::Futurize<R>::Apply([&]() -> R { return local(); });
    }
  }
  auto* call = new internal::SubmitCall<Fn, U>(std::forward<Fn>(fn), &smp->matrix(), self, shard);
  Future<U> result = call->GetFuture();
  smp->matrix().Send(self, shard, call);
  return result;
}

// Runs a copy of fn() on every shard (fn returns void or Future<void>); resolves when all have
// finished, failing with the first failure by shard index.
template <class Fn>
Future<void> InvokeOnAll(Fn fn) {
  std::vector<Future<void>> all;
  all.reserve(smp_count());
  for (unsigned s = 0; s < smp_count(); ++s) all.push_back(SubmitTo(s, Fn(fn)));
  return WhenAll(std::move(all));
}

namespace internal {
template <class U, class Acc, class Reducer>
Future<Acc> ReduceInOrder(std::vector<Future<U>> parts, Acc acc, Reducer reduce) {
  std::exception_ptr first;
  for (Future<U>& part : parts) {
    try {
      acc = reduce(std::move(acc), co_await std::move(part));
    } catch (...) {
      if (first == nullptr) first = std::current_exception();
    }
  }
  if (first != nullptr) std::rethrow_exception(first);
  co_return acc;
}
}  // namespace internal

// Runs a copy of mapper() on every shard (returning T or Future<T>), then folds the results in
// shard order on the calling shard: acc = reduce(acc, result_of_shard_i). Fails with the first
// failure by shard index, after every shard has answered.
template <class Mapper, class Acc, class Reducer>
Future<Acc> MapReduce(Mapper mapper, Acc initial, Reducer reduce) {
  using R = std::invoke_result_t<Mapper&>;
  using U = typename internal::SubmitValue<R>::Type;
  std::vector<Future<U>> parts;
  parts.reserve(smp_count());
  for (unsigned s = 0; s < smp_count(); ++s) parts.push_back(SubmitTo(s, Mapper(mapper)));
  return internal::ReduceInOrder<U, Acc, Reducer>(std::move(parts), std::move(initial),
                                                  std::move(reduce));
}

template <class Fn>
auto Smp::Run(Fn&& fn) {
  using R = std::invoke_result_t<Fn&>;
  using U = typename internal::SubmitValue<R>::Type;
  internal::Outcome<U> outcome;
  bool resolved = false;
  RunShards([&] {
    Future<U> f = internal::Futurize<R>::Apply([&]() -> R { return fn(); });
    Future<void> ignored = std::move(f).ThenWrapped([this, &outcome, &resolved](Future<U> r) {
      outcome.Take(r);
      resolved = true;
      Stop();
    });
  });
  // Joined: the shard-0 writes above happen before this point.
  if (!resolved) throw AbortRequested();
  if (outcome.error != nullptr) std::rethrow_exception(outcome.error);
  if constexpr (!std::is_void_v<U>) return std::move(*outcome.value);
}

// One instance of Service per shard, each living and used only on its shard.
//
//   kev::Sharded<Counter> counters;                // e.g. in main, outliving the shards' use
//   co_await counters.Start(/*args copied to every shard*/ 10);
//   co_await counters.InvokeOnAll([](Counter& c) { c.Add(1); });
//   counters.Local().Add(2);                       // this shard's instance, no message
//   co_await counters.Stop();                      // Service::Stop() if it has one, then delete
//
// Start() and Stop() are called on one shard, once each, in that order; Local() and the
// Invoke* calls between them, from any shard. The Sharded object must outlive Stop().
template <class Service>
class Sharded {
 public:
  Sharded() = default;
  Sharded(const Sharded&) = delete;
  Sharded& operator=(const Sharded&) = delete;
  // Stop() must have completed (checked).
  ~Sharded() {
    for (auto& s : instances_) KEV_CHECK_MSG(s == nullptr, "kev::Sharded destroyed before Stop()");
  }

  // Constructs Service(args...) on every shard, with copies of args. Fails with the first
  // constructor exception (the instances that were built are then stopped and destroyed).
  template <class... Args>
  Future<void> Start(Args... args) {
    KEV_CHECK_MSG(instances_.empty(), "kev::Sharded::Start() called twice");
    instances_.resize(smp_count());
    return StartAll(std::make_tuple(std::move(args)...));
  }

  // Calls Service::Stop() on every shard if Service has one (returning void or Future<void>),
  // then destroys the instances, each on its own shard.
  Future<void> Stop() {
    return InvokeOnAllShards([this]() -> Future<void> {
      std::unique_ptr<Service>& mine = instances_[this_shard_id()];
      if (mine == nullptr) return MakeReadyFuture();
      Future<void> stopped = MakeReadyFuture();
      if constexpr (requires(Service & s) { s.Stop(); }) {
        stopped = internal::Futurize<decltype(mine->Stop())>::Apply([&] { return mine->Stop(); });
      }
      return std::move(stopped).ThenWrapped([&mine](Future<void> f) {
        mine.reset();
        return f;
      });
    });
  }

  // This shard's instance. Between Start() and Stop() (checked).
  Service& Local() {
    const unsigned shard = this_shard_id();
    KEV_CHECK_MSG(shard < instances_.size() && instances_[shard] != nullptr,
                  "kev::Sharded::Local() outside Start()..Stop()");
    return *instances_[shard];
  }

  // fn(Service&) on every shard (fn returns void or Future<void>).
  template <class Fn>
  Future<void> InvokeOnAll(Fn fn) {
    return InvokeOnAllShards([this, fn]() mutable { return fn(Local()); });
  }

  // fn(Service&) on `shard`; returns its result like SubmitTo().
  template <class Fn>
  auto InvokeOn(unsigned shard, Fn fn) {
    return SubmitTo(shard, [this, fn = std::move(fn)]() mutable { return fn(Local()); });
  }

 private:
  template <class Fn>
  Future<void> InvokeOnAllShards(Fn fn) {
    return kev::InvokeOnAll(std::move(fn));
  }

  template <class Tuple>
  Future<void> StartAll(Tuple args) {
    std::vector<Future<void>> all;
    for (unsigned s = 0; s < smp_count(); ++s) {
      all.push_back(SubmitTo(s, [this, args]() mutable {
        instances_[this_shard_id()] =
            std::apply([](auto&... a) { return std::make_unique<Service>(std::move(a)...); }, args);
      }));
    }
    return WhenAll(std::move(all)).ThenWrapped([this](Future<void> f) -> Future<void> {
      if (!f.Failed()) return f;
      std::exception_ptr error = f.GetException();
      return Stop().ThenWrapped([error](Future<void> stopped) {
        if (stopped.Failed()) (void)stopped.GetException();
        return MakeExceptionFuture<void>(error);
      });
    });
  }

  // Indexed by shard; sized by Start() before any shard touches it, then each element is
  // written and read only by its own shard.
  std::vector<std::unique_ptr<Service>> instances_;
};

}  // namespace kev

#endif  // KEV_REACTOR_SMP_H_
