// fd readiness (issue 7): 1,000 pipes watched, writes spread round-robin, kevent PIPE interests
// against the same loop on raw epoll. Target: kevent (io_uring poller) >= 1.0x raw epoll.
//
// Every iteration writes one byte into each of the next kActive pipes (a cursor walks the 1,000
// round-robin, so most watched pipes are idle at any time), collects the kActive readiness
// events and read(2)s each byte, checking that exactly those pipes were reported. One item is
// one readiness event delivered and consumed. Both sides first run one untimed pass of the
// cursor over all the pipes (kWarmUpRounds, below).
//  - BM_KeventPipe / BM_EpollPipe: level-triggered (kevent's default; epoll without EPOLLET);
//  - BM_KeventPipeEt / BM_EpollPipeEt: edge-triggered (KEVENT_REQ_ET; EPOLLET);
//  - BM_KeventPipeEpollBackend: BM_KeventPipe with the queue's poller on epoll (KEV_BACKEND),
//    reported for reference;
//  - BM_UringPollPipe: no kev either: one io_uring multishot POLL_ADD per pipe on a ring with
//    SINGLE_ISSUER | DEFER_TASKRUN, reaped from the CQ. Reported against BM_EpollPipeEt (a
//    multishot poll reports each wake-up, as EPOLLET does) to show what the kernel offers a
//    queue driven by one thread; kev's C-API queues may be driven by any thread, which
//    DEFER_TASKRUN forbids (docs/pollers.md, "Readiness origins on the pollers").
//
// Where kev's side stands (strace -c, callgrind): a round makes the same syscalls as raw epoll's
// - the kActive writes and reads, and one epoll_wait, which get_events makes on the PIPE
// origin's private set itself (Queue::PollNow: no io_uring_enter, no eventfd write/read, no
// poll re-armed on the set). The difference left is kev's user-space work per event (report,
// ready list, delivery: ~390 instructions, about 5% of a round); the ratio's distance from 1.0
// is about that much.
//
//   bazel run -c opt //tests/perf:fd_readiness_bench -- --benchmark_repetitions=5
//       --benchmark_enable_random_interleaving=true
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "benchmark/benchmark.h"
#include "kevent/kevent.h"
#include "tests/perf/micro_ratio.h"

namespace {

constexpr int kPipes = 1000;
constexpr int kActive = 100;  // pipes written per iteration
// Untimed rounds before the timed loop, on both sides: one pass of the cursor over every pipe,
// so each pipe's buffer page, each epoll item (and kevent's requests) exist and have been
// touched once. Without it the first timed rounds pay those first touches, a fixed cost that
// weighs on whichever side Google Benchmark happens to run for fewer iterations.
constexpr int kWarmUpRounds = kPipes / kActive;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fd_readiness_bench: %s\n", what);
    std::abort();
  }
}

struct Pipes {
  Pipes() {
    for (int i = 0; i < kPipes; ++i) {
      int p[2];
      Check(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0, "pipe2 (raise RLIMIT_NOFILE?)");
      rd.push_back(p[0]);
      wr.push_back(p[1]);
    }
  }
  ~Pipes() {
    for (int fd : rd) close(fd);
    for (int fd : wr) close(fd);
  }
  // Writes one byte into each of the next kActive pipes; returns the sum of their read fds.
  uint64_t WriteRound() {
    uint64_t sum = 0;
    for (int k = 0; k < kActive; ++k) {
      (void)!write(wr[cursor], "x", 1);
      sum += rd[cursor];
      cursor = cursor + 1 == kPipes ? 0 : cursor + 1;
    }
    return sum;
  }
  // One round, the same on every side: writes the next kActive pipes, then collects their
  // events and reads each reported pipe's byte, checking that exactly the written pipes were
  // reported. `collect(want, on_fd)` waits for up to `want` events, calls on_fd(fd) for each
  // and returns how many; <= 0 (nothing came in time) ends the round, which returns false.
  template <typename Collect>
  bool Round(Collect&& collect) {
    const uint64_t expected = WriteRound();
    uint64_t sum = 0;
    int got = 0;
    char byte;
    const auto on_fd = [&](int fd) {
      Check(read(fd, &byte, 1) == 1, "a pipe with nothing to read was reported");
      sum += static_cast<uint64_t>(fd);
    };
    while (got < kActive) {
      const int n = collect(kActive - got, on_fd);
      if (n <= 0) return false;
      got += n;
    }
    Check(sum == expected, "other pipes than the written ones were reported");
    return true;
  }
  std::vector<int> rd, wr;
  int cursor = 0;
};

void KeventLoop(benchmark::State& state, uint32_t req_flags) {
  Pipes pipes;
  const int kfd = kevent_init(nullptr, 0, 0);
  Check(kfd >= 0, "kevent_init");
  std::vector<ukevent> reqs(kPipes);
  for (int i = 0; i < kPipes; ++i) {
    reqs[i] = ukevent{};
    reqs[i].type = KEVENT_PIPE;
    reqs[i].event = KEVENT_SOCKET_RECV;
    reqs[i].req_flags = req_flags;
    reqs[i].id.raw[0] = static_cast<uint32_t>(pipes.rd[i]);
  }
  Check(kevent_ctl(kfd, KEVENT_CTL_ADD, kPipes, reqs.data()) == kPipes, "add");
  for (const ukevent& uk : reqs) Check(uk.ret_flags == 0, "add ret_flags");
  std::vector<ukevent> out(kActive);
  // A lost event is this benchmark's error (SkipWithError below), so the others still run.
  const auto round = [&] {
    return pipes.Round([&](int want, const auto& on_fd) {
      const int n = kevent_get_events(kfd, want, want, timespec{2, 0}, out.data(), 0);
      // Events lost: tests/fuzz/kevent_regression_test.cc, *EtDrainThenRefillIsDelivered.
      for (int i = 0; i < n; ++i) on_fd(static_cast<int>(out[i].id.raw[0]));
      return n;
    });
  };
  bool ok = true;
  for (int i = 0; i < kWarmUpRounds && ok; ++i) ok = round();
  for (auto _ : state) {
    if (ok) ok = round();
    if (!ok) {
      state.SkipWithError("kevent_get_events timed out: readiness events were lost");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * kActive);
  kevent_close(kfd);
}

void EpollLoop(benchmark::State& state, uint32_t edge) {
  Pipes pipes;
  const int epfd = epoll_create1(EPOLL_CLOEXEC);
  for (int fd : pipes.rd) {
    epoll_event ev{};
    ev.events = EPOLLIN | edge;
    ev.data.fd = fd;
    Check(epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll_ctl");
  }
  std::vector<epoll_event> events(kActive);
  const auto round = [&] {
    Check(pipes.Round([&](int want, const auto& on_fd) {
      const int n = epoll_wait(epfd, events.data(), want, 5000);
      for (int i = 0; i < n; ++i) on_fd(events[i].data.fd);
      return n;
    }), "epoll_wait timed out");
  };
  for (int i = 0; i < kWarmUpRounds; ++i) round();
  for (auto _ : state) round();
  state.SetItemsProcessed(state.iterations() * kActive);
  close(epfd);
}

void UringPollLoop(benchmark::State& state) {
  Pipes pipes;
  io_uring ring;
  io_uring_params params{};
  params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  params.cq_entries = 4 * kPipes;  // every pipe's poll may report before a round reaps
  if (io_uring_queue_init_params(256, &ring, &params) != 0) {
    state.SkipWithError("io_uring with SINGLE_ISSUER | DEFER_TASKRUN (6.1) is not available");
    return;
  }
  for (int fd : pipes.rd) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (sqe == nullptr) {
      io_uring_submit(&ring);
      sqe = io_uring_get_sqe(&ring);
    }
    io_uring_prep_poll_multishot(sqe, fd, POLLIN);
    sqe->user_data = static_cast<uint64_t>(fd);
  }
  Check(io_uring_submit(&ring) >= 0, "io_uring_submit");
  const auto round = [&] {
    // Every written pipe has one wake-up, so a reap never sees more than `want` CQEs.
    Check(pipes.Round([&](int /*want*/, const auto& on_fd) {
      Check(io_uring_submit_and_wait(&ring, 1) >= 0, "io_uring_submit_and_wait");
      unsigned head;
      unsigned seen = 0;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(&ring, head, cqe) {
        ++seen;
        Check(cqe->res > 0 && (cqe->flags & IORING_CQE_F_MORE) != 0, "a multishot poll ended");
        on_fd(static_cast<int>(cqe->user_data));
      }
      io_uring_cq_advance(&ring, seen);
      return static_cast<int>(seen);
    }), "io_uring reported nothing");
  };
  for (int i = 0; i < kWarmUpRounds; ++i) round();
  for (auto _ : state) round();
  state.SetItemsProcessed(state.iterations() * kActive);
  io_uring_queue_exit(&ring);
}

void BM_KeventPipe(benchmark::State& state) { KeventLoop(state, 0); }
void BM_KeventPipeEt(benchmark::State& state) { KeventLoop(state, KEVENT_REQ_ET); }
void BM_EpollPipe(benchmark::State& state) { EpollLoop(state, 0); }
void BM_EpollPipeEt(benchmark::State& state) { EpollLoop(state, EPOLLET); }
void BM_KeventPipeEpollBackend(benchmark::State& state) {
  setenv("KEV_BACKEND", "epoll", 1);  // read by kevent_init
  KeventLoop(state, 0);
  unsetenv("KEV_BACKEND");
}
BENCHMARK(BM_KeventPipe)->UseRealTime();
BENCHMARK(BM_EpollPipe)->UseRealTime();
BENCHMARK(BM_KeventPipeEt)->UseRealTime();
BENCHMARK(BM_EpollPipeEt)->UseRealTime();
BENCHMARK(BM_KeventPipeEpollBackend)->UseRealTime();
void BM_UringPollPipe(benchmark::State& state) { UringPollLoop(state); }
BENCHMARK(BM_UringPollPipe)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  return kev::perf::RunWithRatios(
      argc, argv,
      {{"pipes_lt_vs_epoll", "BM_KeventPipe/real_time", "BM_EpollPipe/real_time", 1.0},
       {"pipes_et_vs_epoll_et", "BM_KeventPipeEt/real_time", "BM_EpollPipeEt/real_time", 1.0},
       {"pipes_lt_epoll_backend_vs_epoll", "BM_KeventPipeEpollBackend/real_time",
        "BM_EpollPipe/real_time", std::nullopt},
       {"raw_uring_poll_vs_epoll_et", "BM_UringPollPipe/real_time", "BM_EpollPipeEt/real_time",
        std::nullopt}});
}
