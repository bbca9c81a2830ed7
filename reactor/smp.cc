#include "reactor/smp.h"

#include <pthread.h>
#include <signal.h>

#include <barrier>
#include <latch>
#include <thread>

namespace kev {

namespace {

// The signals a user sends to a process (kill, Ctrl-C). While Smp::Run runs, the main thread
// blocks them and the shard threads take them: the main thread only parks in pthread_join, and
// ThreadSanitizer (and ASan's interceptors) may defer a handler there until the join returns,
// so a SIGTERM would never reach the SIGNAL origin. A shard thread is always turning its loop
// or blocked in the poller, whose wait a signal interrupts, so the handler runs at once. The
// SIGNAL origin's handler is process-wide and installed with SA_RESTART, so other syscalls of
// the shard do not fail with EINTR.
sigset_t ProcessSignals() noexcept {
  sigset_t set;
  sigemptyset(&set);
  for (int signo : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) sigaddset(&set, signo);
  return set;
}

}  // namespace

struct Smp::Barriers {
  // Runs once every loop has returned, before any shard is released: no shard thread uses the
  // matrix then, so messages still in flight are freed here (their futures were on stopped
  // shards) while every reactor still exists.
  struct Discard {
    void operator()() noexcept { matrix->DiscardAll(); }
    SmpMessageMatrix* matrix;
  };
  Barriers(unsigned n, SmpMessageMatrix* matrix) : started(n), stopped(n, Discard{matrix}) {}
  std::latch started;             // every shard has its reactor (or failed to build it)
  std::barrier<Discard> stopped;  // every loop has returned
};

unsigned this_shard_id() noexcept {
  Reactor* r = Reactor::CurrentOrNull();
  return r != nullptr ? r->shard_id() : 0;
}

unsigned smp_count() noexcept {
  Smp* smp = Smp::CurrentOrNull();
  return smp != nullptr ? smp->shard_count() : 1;
}

Smp::Smp(const SmpOptions& options) : options_(options) {
  unsigned shards = options.shards;
  if (options.pin) {
    if (shards == 0) {
      shards =
          static_cast<unsigned>(options.cpuset.empty() ? Topology::System().AvailableCpus().size()
                                                       : options.cpuset.size());
    }
    placement_ = PlanShards(shards, options.cpuset);  // throws std::invalid_argument
  } else {
    if (shards == 0) shards = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < shards; ++i) placement_.push_back(ShardPlacement{i, i, i, -1});
  }
}

Smp::~Smp() = default;

void Smp::Stop() noexcept {
  stopping_.store(true);  // seq_cst: pairs with the shard's store of its reactor (ShardMain)
  for (auto& slot : reactors_) {
    if (Reactor* r = slot.load()) r->Stop();
  }
}

void Smp::RunShards(std::function<void()> start) {
  KEV_CHECK_MSG(!ran_, "kev::Smp::Run() called twice");
  KEV_CHECK_MSG(current_ == nullptr && Reactor::CurrentOrNull() == nullptr,
                "kev::Smp::Run() from a shard or reactor thread");
  ran_ = true;
  const unsigned n = shard_count();
  matrix_ = std::make_unique<SmpMessageMatrix>(n, options_.ring_capacity);
  reactors_ = std::vector<std::atomic<Reactor*>>(n);
  errors_.assign(n, nullptr);
  barriers_ = std::make_unique<Barriers>(n, matrix_.get());

  // Shard threads inherit the blocked mask and unblock it themselves (see ProcessSignals).
  const sigset_t signals = ProcessSignals();
  sigset_t caller_mask;
  pthread_sigmask(SIG_BLOCK, &signals, &caller_mask);
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (unsigned s = 0; s < n; ++s) threads.emplace_back([this, s, &start] { ShardMain(s, start); });

  for (std::thread& t : threads) t.join();
  pthread_sigmask(SIG_SETMASK, &caller_mask, nullptr);
  for (std::exception_ptr& e : errors_) {
    if (e != nullptr) std::rethrow_exception(e);
  }
}

void Smp::ShardMain(unsigned shard, const std::function<void()>& start) {
  current_ = this;
  const sigset_t signals = ProcessSignals();
  pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
  std::optional<Reactor> reactor;
  try {
    if (options_.pin) {
      PinCurrentThread(placement_[shard]);
      // Not being bound is a degraded but valid way to run (a one-node machine loses nothing).
      (void)BindMemoryToLocalNode(placement_[shard]);
    }
    ReactorOptions ro;
    ro.backend = options_.backend;
    ro.shard_id = shard;
    ro.task_quota = options_.task_quota;
    ro.poller_entries = options_.poller_entries;
    ro.idle_poll = options_.idle_poll;
    reactor.emplace(ro);
    reactor->AttachSmp(matrix_.get(), shard);
    // Each shard writes only its own waker slot, before the barrier that orders it before any
    // peer reads it.
    matrix_->SetWaker(shard, reactor->waker());
    reactors_[shard].store(&*reactor);  // seq_cst: pairs with Stop()
  } catch (...) {
    errors_[shard] = std::current_exception();
  }
  barriers_->started.arrive_and_wait();
  bool all_up = true;
  for (const std::exception_ptr& e : errors_) all_up &= e == nullptr;
  if (all_up) {
    if (stopping_.load()) reactor->Stop();
    try {
      if (shard == 0) start();
      reactor->Run();
    } catch (...) {
      errors_[shard] = std::current_exception();
      Stop();
    }
  }
  barriers_->stopped.arrive_and_wait();  // the last to arrive discards what is in flight
  reactors_[shard].store(nullptr);
  reactor.reset();
  current_ = nullptr;
}

}  // namespace kev
