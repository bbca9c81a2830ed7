#include "reactor/reactor.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <system_error>

#include "kevent/testing/fault_injecting_poller.h"

namespace kev {
namespace {

int64_t NowNs() noexcept { return kevent_internal::MonotonicClock().NowNs(); }

std::unique_ptr<Poller> CreatePoller(const ReactorOptions& options) {
  PollerOptions poller_options;
  poller_options.entries = options.poller_entries;
  poller_options.single_issuer = true;  // A shard's ring is driven by its own thread only.
  int error = 0;
  std::unique_ptr<Poller> poller = Poller::Create(options.backend, poller_options, &error);
  if (poller == nullptr) {
    throw std::system_error(error < 0 ? -error : EINVAL, std::system_category(),
                            "kev::Reactor: cannot create the poller");
  }
  // Test-only fault injection (docs/reliability.md): KEV_FAULTS="seed=7,eagain=0.05,..." wraps
  // the poller in a FaultInjectingPoller. Read once here, so unset it costs one getenv per
  // reactor and nothing on the loop's path. Each shard draws from its own seed (seed + shard).
  if (std::optional<FaultOptions> faults = FaultOptions::FromEnvironment("KEV_FAULTS")) {
    faults->seed += options.shard_id;
    std::fprintf(stderr, "kev: KEV_FAULTS set: shard %u injects faults (seed %llu; test only)\n",
                 options.shard_id, static_cast<unsigned long long>(faults->seed));
    poller = std::make_unique<FaultInjectingPoller>(std::move(poller), *faults);
  }
  return poller;
}

}  // namespace

// --- KeventHandler ------------------------------------------------------------------------------

std::optional<ukevent> KeventHandler::Register(Reactor& reactor) {
  KEV_CHECK_MSG(!Registered(), "KeventHandler::Register() on a registered handler");
  request_.uk = user_request_;
  request_.uk.ptr = this;  // Delivery's way back to us, and a key unique to this handler.
  request_.uk.ret_flags = 0;
  reactor.queue().AddRequest(&request_);
  const uint32_t flags = request_.uk.ret_flags;
  if (flags == 0) return std::nullopt;
  request_.uk.ret_flags = 0;
  ukevent event = UserEvent(request_.uk);
  event.ret_flags = flags;
  if ((flags & KEVENT_RET_BROKEN) != 0 && !Registered()) {
    throw std::system_error(static_cast<int>(event.ret_data[0]), std::system_category(),
                            "kev: kevent request rejected");
  }
  return event;
}

std::optional<ukevent> KeventHandler::Register() { return Register(Reactor::Current()); }

void KeventHandler::Unregister() noexcept {
  if (request_.queue != nullptr) request_.queue->RemoveRequest(&request_);
}

// --- Reactor ------------------------------------------------------------------------------------

Reactor::Reactor(const ReactorOptions& options)
    : shard_id_(options.shard_id),
      task_quota_(options.task_quota),
      idle_poll_ns_(std::max<int64_t>(0, options.idle_poll.count())),
      poller_(CreatePoller(options)),
      waker_(poller_.get()) {
  KEV_CHECK_MSG(current_ == nullptr, "a second kev::Reactor on one thread");
  kevent_internal::QueueOptions queue_options;
  queue_options.poller = poller_.get();
  queue_ = std::make_unique<kevent_internal::Queue>(queue_options);
  task_scope_.emplace(&tasks_);
  current_ = this;
}

Reactor::~Reactor() {
  KEV_CHECK_MSG(!running_, "kev::Reactor destroyed while Run() is running");
  // The poller outlives the queue (docs/architecture.md, "Poller and origins"): origins cancel
  // their operations as their requests and storages go, and an origin object with something
  // still in flight is orphaned and frees itself at its final completion, which the poller's
  // destructor delivers.
  queue_.reset();
  poller_.reset();
  task_scope_.reset();
  current_ = nullptr;
}

Reactor& Reactor::Current() noexcept {
  KEV_CHECK_MSG(current_ != nullptr, "no kev::Reactor on this thread (use RunReactor or App)");
  return *current_;
}

void Reactor::AttachSmp(SmpMessageMatrix* matrix, unsigned shard) noexcept {
  smp_ = matrix;
  smp_shard_ = shard;
}

void Reactor::Stop() noexcept {
  stop_requested_.store(true, std::memory_order_relaxed);
  poller_->Wake();  // A syscall, but stopping is rare; it ends a blocked Wait at once.
}

void Reactor::Run() {
  KEV_CHECK_MSG(current_ == this, "Reactor::Run() from a thread that does not own it");
  KEV_CHECK_MSG(!running_, "Reactor::Run() re-entered");
  running_ = true;
  try {
    while (!stop_requested_.load(std::memory_order_relaxed)) Turn();
  } catch (...) {
    running_ = false;
    throw;
  }
  stop_requested_.store(false, std::memory_order_relaxed);
  running_ = false;
}

void Reactor::Turn() {
  Add(turns_, 1);
  // 1. Tasks: continuations, resumed coroutines and fibers, up to the quota.
  Add(tasks_run_, tasks_.RunReady(task_quota_));
  // 2. The backend: completions run their origins, which mark requests ready.
  PollBackend();
  // 3. Timers due now join the ready list, so they are delivered in this same turn.
  queue_->ExpireTimers();
  // 4. Ready kevents to their handlers (awaiters schedule their coroutines).
  DeliverEvents();
  // 5. SMP: run incoming messages, complete replies, publish what this turn sent.
  if (smp_ != nullptr) {
    smp_->Poll(smp_shard_);
    smp_->Flush(smp_shard_);
  }
}

void Reactor::PollBackend() {
  // Origins refresh what the poller cannot tell them (ET re-arming, closed-fd sweep: a few
  // fstat calls), so not on every busy turn: when the loop may block, and every 64th turn.
  if (tasks_.Empty() || (turns_.load(std::memory_order_relaxed) & 63) == 0) queue_->BeforeWait();
  bool block = tasks_.Empty() && queue_->ready_count() == 0 &&
               !stop_requested_.load(std::memory_order_relaxed);
  if (block && idle_poll_ns_ > 0) {
    // Idle polling (ReactorOptions::idle_poll): a clock read only on turns with nothing to do.
    const int64_t now = NowNs();
    if (idle_since_ns_ == 0) idle_since_ns_ = now;
    if (now - idle_since_ns_ < idle_poll_ns_) {
      block = false;
    } else {
      EndIdlePolling();  // polled long enough: sleep
    }
  } else if (!block) {
    EndIdlePolling();
  }
  bool announced_sleep = false;
  if (block && smp_ != nullptr) {
    // Flushes our messages, then announces the sleep so peers know to Wake() us (smp_queue.h).
    block = smp_->TryEnterSleep(smp_shard_);
    announced_sleep = true;
  }
  std::optional<std::chrono::nanoseconds> timeout = std::chrono::nanoseconds(0);
  int64_t start = 0;
  if (block) {
    if (std::optional<int64_t> deadline = queue_->NextTimerDeadline()) {
      start = NowNs();
      timeout = std::chrono::nanoseconds(std::max<int64_t>(0, *deadline - start));
    } else {
      timeout = std::nullopt;
      start = NowNs();  // For idle time only: blocking is never on the busy path.
    }
    Add(sleeps_, 1);
  }
  Add(polls_, 1);
  const int n = poller_->Wait(timeout);
  if (block) Add(idle_ns_, static_cast<uint64_t>(std::max<int64_t>(0, NowNs() - start)));
  if (n > 0) EndIdlePolling();
  if (announced_sleep) smp_->ExitSleep(smp_shard_);
  if (n < 0) throw std::system_error(-n, std::system_category(), "kev::Reactor: poller failed");
  Add(completions_, static_cast<uint64_t>(n));
}

void Reactor::EndIdlePolling() noexcept {
  if (idle_since_ns_ == 0) return;
  // The polling turns were idle time too (the shard had nothing to do).
  Add(idle_ns_, static_cast<uint64_t>(std::max<int64_t>(0, NowNs() - idle_since_ns_)));
  idle_since_ns_ = 0;
}

void Reactor::DeliverEvents() {
  // One event at a time: a handler may unregister or destroy another handler whose event
  // would otherwise already sit in a local batch.
  int delivered = 0;
  ukevent event;
  while (delivered < kMaxEventsPerTurn && queue_->ready_count() != 0 &&
         queue_->Dequeue(&event, 1) == 1) {
    auto* handler = static_cast<KeventHandler*>(event.ptr);
    handler->OnEvent(handler->UserEvent(event));
    ++delivered;
  }
  if (delivered != 0) Add(events_delivered_, static_cast<uint64_t>(delivered));
}

ReactorMetrics Reactor::metrics() const noexcept {
  ReactorMetrics m;
  m.turns = turns_.load(std::memory_order_relaxed);
  m.tasks_run = tasks_run_.load(std::memory_order_relaxed);
  m.polls = polls_.load(std::memory_order_relaxed);
  m.sleeps = sleeps_.load(std::memory_order_relaxed);
  m.completions = completions_.load(std::memory_order_relaxed);
  m.events_delivered = events_delivered_.load(std::memory_order_relaxed);
  m.idle_time = std::chrono::nanoseconds(idle_ns_.load(std::memory_order_relaxed));
  if (smp_ != nullptr) {
    const SmpCounters c = smp_->Counters(smp_shard_);
    m.smp_messages_sent = c.messages_sent;
    m.smp_messages_received = c.messages_received;
    m.smp_replies_completed = c.replies_completed;
    m.smp_wakeups_sent = c.wakeups_sent;
  }
  return m;
}

}  // namespace kev
