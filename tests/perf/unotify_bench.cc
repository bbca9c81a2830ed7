// User notifications, 1,000 sources signalled per round (issue 7): kevent UNOTIFY requests made
// ready with KEVENT_CTL_READY and collected with kevent_get_events, against 1,000 eventfds
// written and collected with epoll_wait. Target: kevent >= 5x the eventfd rate.
//
//   bazel run -c opt //tests/perf:unotify_bench -- --benchmark_repetitions=5
//       --benchmark_enable_random_interleaving=true
//
// One item is one notification delivered to the consumer. Variants:
//  - BM_UnotifyReadyBatch: one kevent_ctl(READY) call with the round's 1,000 entries, then
//    kevent_get_events (the way the API is meant to be used: batch the control calls);
//  - BM_UnotifyReadyEach: one kevent_ctl(READY) call per source (no batching at all);
//  - BM_EventfdEpollEt: the floor of the eventfd way: 1,000 write(2)s, then epoll_wait with
//    edge-triggered registrations and no read(2) (an eventfd write re-signals an edge);
//  - BM_EventfdEpollRead: the usual eventfd way: level-triggered, each ready eventfd read(2).
// Every round checks that exactly the 1,000 sources were delivered.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "benchmark/benchmark.h"
#include "kevent/kevent.h"
#include "tests/perf/micro_ratio.h"

namespace {

constexpr int kSources = 1000;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "unotify_bench: %s\n", what);
    std::abort();
  }
}

struct UnotifyQueue {
  UnotifyQueue() : kfd(kevent_init(nullptr, 0, 0)), reqs(kSources), out(kSources) {
    Check(kfd >= 0, "kevent_init");
    for (int i = 0; i < kSources; ++i) {
      reqs[i] = ukevent{};
      reqs[i].type = KEVENT_UNOTIFY;
      reqs[i].event = 1;
      reqs[i].id.raw[0] = i;
    }
    Check(kevent_ctl(kfd, KEVENT_CTL_ADD, kSources, reqs.data()) == kSources, "add");
    for (const ukevent& uk : reqs) Check(uk.ret_flags == 0, "add ret_flags");
  }
  ~UnotifyQueue() { kevent_close(kfd); }

  // Collects the round's notifications; returns a sum of ids to check.
  uint64_t Collect() {
    int got = 0;
    uint64_t sum = 0;
    while (got < kSources) {
      const int n = kevent_get_events(kfd, 1, kSources - got, timespec{0, 0}, out.data(), 0);
      Check(n > 0, "get_events");
      for (int i = 0; i < n; ++i) sum += out[i].id.raw[0];
      got += n;
    }
    return sum;
  }

  int kfd;
  std::vector<ukevent> reqs;
  std::vector<ukevent> out;
};

constexpr uint64_t kIdSum = uint64_t{kSources} * (kSources - 1) / 2;

void BM_UnotifyReadyBatch(benchmark::State& state) {
  UnotifyQueue q;
  for (auto _ : state) {
    kevent_ctl(q.kfd, KEVENT_CTL_READY, kSources, q.reqs.data());
    Check(q.Collect() == kIdSum, "unotify batch delivery");
  }
  state.SetItemsProcessed(state.iterations() * kSources);
}
BENCHMARK(BM_UnotifyReadyBatch)->UseRealTime();

void BM_UnotifyReadyEach(benchmark::State& state) {
  UnotifyQueue q;
  for (auto _ : state) {
    for (ukevent& uk : q.reqs) kevent_ctl(q.kfd, KEVENT_CTL_READY, 1, &uk);
    Check(q.Collect() == kIdSum, "unotify each delivery");
  }
  state.SetItemsProcessed(state.iterations() * kSources);
}
BENCHMARK(BM_UnotifyReadyEach)->UseRealTime();

struct EventfdSet {
  explicit EventfdSet(bool edge) : epfd(epoll_create1(EPOLL_CLOEXEC)), events(kSources) {
    Check(epfd >= 0, "epoll_create1");
    for (int i = 0; i < kSources; ++i) {
      const int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      Check(fd >= 0, "eventfd (raise RLIMIT_NOFILE?)");
      epoll_event ev{};
      ev.events = EPOLLIN | (edge ? static_cast<uint32_t>(EPOLLET) : 0u);
      ev.data.u64 = (static_cast<uint64_t>(i) << 32) | static_cast<uint32_t>(fd);
      Check(epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll_ctl");
      fds.push_back(fd);
    }
  }
  ~EventfdSet() {
    for (int fd : fds) close(fd);
    close(epfd);
  }

  void Signal() {
    const uint64_t one = 1;
    for (int fd : fds) (void)!write(fd, &one, sizeof(one));
  }
  uint64_t Collect(bool read_each) {
    int got = 0;
    uint64_t sum = 0;
    while (got < kSources) {
      const int n = epoll_wait(epfd, events.data(), kSources, 0);
      Check(n > 0, "epoll_wait");
      for (int i = 0; i < n; ++i) {
        sum += events[i].data.u64 >> 32;
        if (read_each) {
          uint64_t count;
          (void)!read(static_cast<int>(events[i].data.u64 & 0xffffffffu), &count, sizeof(count));
        }
      }
      got += n;
    }
    return sum;
  }

  int epfd;
  std::vector<int> fds;
  std::vector<epoll_event> events;
};

void BM_EventfdEpollEt(benchmark::State& state) {
  EventfdSet set(/*edge=*/true);
  for (auto _ : state) {
    set.Signal();
    Check(set.Collect(false) == kIdSum, "eventfd ET delivery");
  }
  state.SetItemsProcessed(state.iterations() * kSources);
}
BENCHMARK(BM_EventfdEpollEt)->UseRealTime();

void BM_EventfdEpollRead(benchmark::State& state) {
  EventfdSet set(/*edge=*/false);
  for (auto _ : state) {
    set.Signal();
    Check(set.Collect(true) == kIdSum, "eventfd LT delivery");
  }
  state.SetItemsProcessed(state.iterations() * kSources);
}
BENCHMARK(BM_EventfdEpollRead)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  return kev::perf::RunWithRatios(
      argc, argv,
      {{"unotify_vs_eventfd", "BM_UnotifyReadyBatch/real_time", "BM_EventfdEpollEt/real_time", 5},
       {"unotify_unbatched_vs_eventfd", "BM_UnotifyReadyEach/real_time",
        "BM_EventfdEpollEt/real_time", std::nullopt},
       {"unotify_vs_eventfd_read", "BM_UnotifyReadyBatch/real_time",
        "BM_EventfdEpollRead/real_time", std::nullopt}});
}
