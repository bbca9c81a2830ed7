// libFuzzer target for the kevent C API: the input is a program of kevent_ctl calls (arrays of
// ukevents with every cmd, type and flag, valid or not), non-blocking kevent_get_events,
// kevent_wait and kevent_commit with arbitrary indexes, pipe/socket activity and queue
// re-creation, run against a queue with or without a ring. Built outside Bazel by
// `tools/fuzz.sh kevent_ctl`; replayed over its corpus by //tests/fuzz:kevent_ctl_replay_test.
//
// A reference model follows everything the spec fixes exactly, and any divergence aborts:
//  - UNOTIFY requests (the one origin whose behaviour is deterministic): the outcome of every
//    entry (ret_flags, errno), and delivery: a READY'd request comes out exactly once per
//    READY-coalescing window, with the ret_data of the last READY, in ready-list order, whether
//    through the buffer or through the ring; after the final drain nothing is left undelivered.
//  - Every call's return value: the exact errno for invalid arguments, counts within bounds
//    (n <= max_nr, n <= free ring slots, n >= what the model knows is ready).
//  - The ring: ring_kidx / ring_over in the shared header, slot contents equal to the events
//    returned, COPY_FAILED exactly when the ring was full, kevent_commit's result (freed count
//    or errno) as the commit protocol prescribes.
//  - Other types (TIMER with any period, SOCKET/PIPE/POLL/INODE on a pool of real fds, SIGNAL
//    on harmless signals, AIO, POSIX_TIMER, NAIO, out of range): the errors the spec fixes
//    (EINVAL for NAIO, out-of-range types and unknown flags), well-formed ret_flags otherwise,
//    and delivered events of registered types only.
// Timeouts are always zero, past absolute deadlines or invalid, so no call blocks.

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "kevent/kevent.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using kev::fuzz::ByteReader;

constexpr uint32_t kDone = KEVENT_RET_DONE;
constexpr uint32_t kBroken = KEVENT_RET_BROKEN | KEVENT_RET_DONE;
constexpr uint32_t kValidFlags = 0x3f;
constexpr unsigned kMaxEntries = 8;
constexpr unsigned kMaxBuf = 12;

// --- The model ---------------------------------------------------------------------------------

using Key = std::pair<uint64_t, uint64_t>;  // (id.raw_u64, user as 8 bytes) of an UNOTIFY

uint64_t UserOf(const ukevent& uk) {
  uint64_t u;
  std::memcpy(&u, uk.user, sizeof(u));
  return u;
}
Key KeyOf(const ukevent& uk) { return {uk.id.raw_u64, UserOf(uk)}; }

struct Unotify {
  uint32_t flags = 0;
  bool ready = false;
  uint32_t data[2] = {0, 0};  // ret_data delivered: the last READY's (or ADD's)
};

struct Model {
  std::map<Key, Unotify> requests;
  std::vector<Key> ready;  // oldest first

  void MakeReady(const Key& k) {
    Unotify& u = requests.at(k);
    if (u.ready) return;  // coalesced: keeps its place
    u.ready = true;
    ready.push_back(k);
  }
  void Unready(const Key& k) {
    Unotify& u = requests.at(k);
    if (!u.ready) return;
    u.ready = false;
    ready.erase(std::find(ready.begin(), ready.end(), k));
  }
  void Erase(const Key& k) {
    Unready(k);
    requests.erase(k);
  }

  // One ctl entry on an UNOTIFY: applies it and returns the expected (ret_flags, ret_data[0]).
  std::pair<uint32_t, uint32_t> Apply(unsigned cmd, const ukevent& uk) {
    const Key k = KeyOf(uk);
    auto it = requests.find(k);
    const bool bad_flags = (uk.req_flags & ~kValidFlags) != 0;
    switch (cmd) {
      case KEVENT_CTL_ADD: {
        if (bad_flags) return {kBroken, EINVAL};
        if (it != requests.end()) return {kBroken, EEXIST};
        Unotify& u = requests[k];
        u.flags = uk.req_flags;
        u.data[0] = uk.ret_data[0];
        u.data[1] = uk.ret_data[1];
        if ((u.flags & KEVENT_REQ_READY) == 0) return {0, 0};
        if ((u.flags & KEVENT_REQ_ALWAYS_QUEUE) != 0) {
          MakeReady(k);
          return {0, 0};
        }
        // Completed through the call itself (ret_data as given).
        if ((u.flags & KEVENT_REQ_ONESHOT) != 0) requests.erase(k);
        return {kDone, uk.ret_data[0]};
      }
      case KEVENT_CTL_REMOVE:
        if (it == requests.end()) return {kBroken, ENOENT};
        Erase(k);
        return {kDone, uk.ret_data[0]};
      case KEVENT_CTL_MODIFY:
        if (it == requests.end()) return {kBroken, ENOENT};
        if (bad_flags) return {kBroken, EINVAL};
        Unready(k);
        it->second.flags = uk.req_flags;
        if ((uk.req_flags & KEVENT_REQ_READY) != 0) MakeReady(k);
        return {kDone, uk.ret_data[0]};
      case KEVENT_CTL_READY:
        if (it == requests.end()) return {kBroken, ENOENT};
        it->second.data[0] = uk.ret_data[0];
        it->second.data[1] = uk.ret_data[1];
        MakeReady(k);
        return {0, uk.ret_data[0]};
    }
    FUZZ_CHECK(false);
    return {};
  }

  // An UNOTIFY event came out of the queue: it must be the oldest ready one.
  void Delivered(const ukevent& ev) {
    FUZZ_CHECK(!ready.empty());
    const Key k = ready.front();
    FUZZ_CHECK(KeyOf(ev) == k);
    Unotify& u = requests.at(k);
    FUZZ_CHECK((ev.ret_flags & ~KEVENT_RET_COPY_FAILED) == kDone);
    FUZZ_CHECK(ev.ret_data[0] == u.data[0] && ev.ret_data[1] == u.data[1]);
    FUZZ_CHECK(ev.req_flags == u.flags);
    if ((u.flags & KEVENT_REQ_ONESHOT) != 0) {
      Erase(k);
    } else {
      Unready(k);
    }
  }
};

// The ring as the commit protocol of KEVENT_SPEC.md defines it.
struct RingModel {
  unsigned num = 0;  // 0: no ring
  unsigned kidx = 0, uidx = 0, used = 0, over = 0;

  unsigned space() const { return num - used; }
  void Put() {
    kidx = kidx + 1 == num ? 0 : kidx + 1;
    ++used;
  }
  int Commit(unsigned new_uidx, unsigned o) {
    if (num == 0 || new_uidx >= num) return -EINVAL;
    if (o != over && o != over - 1) return -EOVERFLOW;
    if (o != over) return new_uidx <= uidx ? 0 : -EOVERFLOW;
    if (new_uidx == uidx) return 0;
    const bool wrap = new_uidx < uidx;
    const unsigned freed = wrap ? num - uidx + new_uidx : new_uidx - uidx;
    if (freed > used) return -EINVAL;
    uidx = new_uidx;
    used -= freed;
    if (wrap) ++over;
    return static_cast<int>(freed);
  }
};

// --- The program -------------------------------------------------------------------------------

struct Fds {
  int pipe[2] = {-1, -1};
  int sock[2] = {-1, -1};
  int dir = -1;
  int devnull = -1;
  int other_queue = -1;  // a second queue, nested by POLL requests on its fd

  Fds() {
    FUZZ_CHECK(::pipe2(pipe, O_NONBLOCK | O_CLOEXEC) == 0);
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sock) == 0);
    dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    other_queue = kevent_init(nullptr, 0, 0);
    FUZZ_CHECK(other_queue >= 0);
  }
  ~Fds() {
    FUZZ_CHECK(kevent_close(other_queue) == 0);
    for (int fd : {pipe[0], pipe[1], sock[0], sock[1], dir, devnull}) {
      if (fd >= 0) close(fd);
    }
  }
};

class Program {
 public:
  explicit Program(ByteReader& in) : in_(in) { Init(); }
  ~Program() { FUZZ_CHECK(kevent_close(kfd_) == 0); }

  void Run() {
    while (!in_.empty()) {
      switch (in_.Range(0, 11)) {
        case 0:
        case 1:
        case 2:
        case 3:
          Ctl();
          break;
        case 4:
        case 5:
          GetEvents();
          break;
        case 6:
          Wait();
          break;
        case 7:
        case 8:
          Commit();
          break;
        case 9:
          Activity();
          break;
        case 10:
          PokeOtherQueue();
          break;
        case 11:
          if (in_.Chance(32)) {  // rarely: a fresh queue, maybe with another ring
            FUZZ_CHECK(kevent_close(kfd_) == 0);
            FUZZ_CHECK(kevent_ctl(kfd_, KEVENT_CTL_ADD, 0, nullptr) == -EBADF);
            Init();
          }
          break;
      }
    }
    Drain();
  }

 private:
  void Init() {
    const unsigned choice = in_.Range(0, 7);
    rm_ = RingModel{};
    model_ = Model{};
    ring_mem_.reset();
    ring_ = nullptr;
    if (choice >= 2) {  // mostly a ring, of 2..17 slots (small, so it fills and wraps)
      rm_.num = 2 + in_.Range(0, 15);
      ring_mem_ = std::make_unique<uint64_t[]>((sizeof(kevent_ring) + rm_.num * sizeof(ukevent)) /
                                               sizeof(uint64_t));
      ring_ = reinterpret_cast<kevent_ring*>(ring_mem_.get());
      ring_->ring_kidx = 12345;  // kevent_init must reset the header
      ring_->ring_over = 678;
    }
    kfd_ = kevent_init(ring_, rm_.num, 0);
    FUZZ_CHECK(kfd_ >= 0);
    CheckRingHeader();
  }

  void CheckRingHeader() {
    if (ring_ == nullptr) return;
    FUZZ_CHECK(ring_->ring_kidx == rm_.kidx);
    FUZZ_CHECK(ring_->ring_over == rm_.over);
    FUZZ_CHECK(rm_.kidx < rm_.num && rm_.uidx < rm_.num && rm_.used <= rm_.num);
    FUZZ_CHECK(rm_.kidx == (rm_.uidx + rm_.used) % rm_.num);
  }

  // Ids mostly from a small space so keys collide; fds from the pool (never arbitrary
  // descriptors of the fuzzer itself), signals only ones whose default action is to ignore.
  ukevent MakeEntry() {
    ukevent uk;
    std::memset(&uk, 0, sizeof(uk));
    const unsigned t = in_.Range(0, 15);
    uk.type = t <= 6    ? KEVENT_UNOTIFY
              : t <= 8  ? KEVENT_TIMER
              : t <= 12 ? in_.Range(0, KEVENT_MAX - 1)
              : t == 13 ? KEVENT_NAIO
              : t == 14 ? KEVENT_MAX + in_.U8()
                        : in_.U32();
    uk.req_flags = in_.Chance(16) ? in_.U32() : in_.U8() & kValidFlags;
    uk.user[0] = in_.Range(0, 2);
    uk.ret_data[0] = in_.U8();
    uk.ret_data[1] = in_.U8();
    switch (uk.type) {
      case KEVENT_UNOTIFY:
        uk.id.raw[0] = in_.Range(0, 5);
        uk.id.raw[1] = in_.Range(0, 1);
        uk.event = in_.U8();
        break;
      case KEVENT_TIMER: {
        static constexpr uint32_t kSec[] = {0, 0, 1, 3600, 0xffffffff};
        static constexpr uint32_t kNsec[] = {0, 1, 1000, 999'999'999, 1'000'000'000};
        uk.id.raw[0] = kSec[in_.Range(0, 4)];
        uk.id.raw[1] = kNsec[in_.Range(0, 4)];
        uk.event = in_.Chance(240) ? KEVENT_TIMER_FIRED : in_.U32();
        break;
      }
      case KEVENT_SOCKET:
      case KEVENT_PIPE:
      case KEVENT_POLL:
      case KEVENT_INODE: {
        const int pool[] = {fds_.pipe[0], fds_.pipe[1],     fds_.sock[0], fds_.sock[1], fds_.dir,
                            fds_.devnull, fds_.other_queue, kfd_,         -1,           1 << 20};
        uk.id.raw[0] = static_cast<uint32_t>(pool[in_.Range(0, 9)]);
        uk.id.raw[1] = in_.Chance(16) ? in_.U32() : 0;
        uk.event = in_.U16();
        break;
      }
      case KEVENT_SIGNAL: {
        static constexpr uint32_t kSignals[] = {SIGWINCH, SIGURG, SIGCHLD, 0, 65, 0xffffffff};
        uk.id.raw[0] = kSignals[in_.Range(0, 5)];
        uk.id.raw[1] = in_.Bool() ? 0x80000000u : 0;  // the NOMASK bit of raw_u64
        uk.event = in_.Chance(240) ? KEVENT_SIGNAL_DELIVERY : in_.U32();
        break;
      }
      default:
        uk.id.raw_u64 = in_.Chance(128) ? in_.Range(0, 3) : in_.U64();
        uk.event = in_.U32();
        break;
    }
    return uk;
  }

  void Ctl() {
    const unsigned c = in_.Range(0, 9);
    const unsigned cmd = c <= 2   ? KEVENT_CTL_ADD
                         : c <= 4 ? KEVENT_CTL_READY
                         : c <= 6 ? KEVENT_CTL_REMOVE
                         : c <= 8 ? KEVENT_CTL_MODIFY
                                  : 4 + in_.U8();
    const unsigned num = in_.Range(0, kMaxEntries);
    ukevent arg[kMaxEntries];
    for (unsigned i = 0; i < num; ++i) arg[i] = MakeEntry();
    const bool null_arg = num > 0 && in_.Chance(8);
    const int rc = kevent_ctl(kfd_, cmd, num, null_arg ? nullptr : arg);
    if (cmd > KEVENT_CTL_READY) {
      FUZZ_CHECK(rc == -EINVAL);
      return;
    }
    if (null_arg) {
      FUZZ_CHECK(rc == -EFAULT);
      return;
    }
    FUZZ_CHECK(rc == static_cast<int>(num));
    if (cmd == KEVENT_CTL_READY && num == 0) return;  // a wake-up only
    for (unsigned i = 0; i < num; ++i) {
      const ukevent& uk = arg[i];
      if (uk.type == KEVENT_UNOTIFY) {
        const auto [flags, data0] = model_.Apply(cmd, uk);
        FUZZ_CHECK(uk.ret_flags == flags);
        if (flags == kBroken) FUZZ_CHECK(uk.ret_data[0] == data0);
        continue;
      }
      FUZZ_CHECK(uk.ret_flags == 0 || uk.ret_flags == kDone || uk.ret_flags == kBroken);
      if (uk.ret_flags == kBroken) FUZZ_CHECK(uk.ret_data[0] > 0 && uk.ret_data[0] < 4096);
      const bool bad_type = uk.type >= KEVENT_MAX || uk.type == KEVENT_NAIO;
      if (cmd == KEVENT_CTL_ADD && (bad_type || (uk.req_flags & ~kValidFlags) != 0)) {
        FUZZ_CHECK(uk.ret_flags == kBroken && uk.ret_data[0] == EINVAL);
      }
      if (cmd != KEVENT_CTL_ADD && bad_type) {  // nothing of that type can be registered
        FUZZ_CHECK(uk.ret_flags == kBroken && uk.ret_data[0] == ENOENT);
      }
    }
  }

  // Any delivered event, through the buffer or the ring.
  void OnDelivered(const ukevent& ev) {
    FUZZ_CHECK(ev.type < KEVENT_MAX && ev.type != KEVENT_NAIO);
    FUZZ_CHECK((ev.ret_flags & KEVENT_RET_DONE) != 0);
    FUZZ_CHECK((ev.ret_flags & ~(kBroken | KEVENT_RET_COPY_FAILED)) == 0);
    if ((ev.ret_flags & KEVENT_RET_BROKEN) != 0) FUZZ_CHECK(ev.ret_data[0] > 0);
    if (ev.type == KEVENT_UNOTIFY) model_.Delivered(ev);
  }

  struct Timeout {
    timespec ts;
    unsigned flags;
    bool valid;
  };
  Timeout PickTimeout() {
    switch (in_.Range(0, 7)) {
      case 5:
        return {{0, 0}, KEVENT_FLAGS_ABSTIME, true};  // an absolute deadline long past
      case 6: {
        static constexpr timespec kBad[] = {{0, 1'000'000'000}, {-2, 0}, {0, -1}};
        return {kBad[in_.Range(0, 2)], 0, false};
      }
      case 7: {
        const unsigned flags = in_.U32() | 2;  // an unknown flag bit
        return {{0, 0}, flags, false};
      }
      default:
        return {{0, 0}, 0, true};
    }
  }

  void GetEvents() {
    const unsigned max_nr = in_.Range(0, kMaxBuf);
    const unsigned min_nr = in_.Range(0, kMaxBuf + 2);
    const bool null_buf = in_.Chance(8);
    const Timeout t = PickTimeout();
    ukevent buf[kMaxBuf];
    const int n = kevent_get_events(kfd_, min_nr, max_nr, t.ts, null_buf ? nullptr : buf, t.flags);
    if ((t.flags & ~KEVENT_FLAGS_ABSTIME) != 0) {
      FUZZ_CHECK(n == -EINVAL);
      return;
    }
    if (null_buf && max_nr > 0) {
      FUZZ_CHECK(n == -EFAULT);
      return;
    }
    if (!t.valid) {
      FUZZ_CHECK(n == -EINVAL);
      return;
    }
    FUZZ_CHECK(n >= 0 && n <= static_cast<int>(max_nr));
    FUZZ_CHECK(static_cast<size_t>(n) >= std::min<size_t>(max_nr, model_.ready.size()));
    for (int i = 0; i < n; ++i) {
      const bool copy_failed = (buf[i].ret_flags & KEVENT_RET_COPY_FAILED) != 0;
      if (rm_.num == 0) {
        FUZZ_CHECK(!copy_failed);
      } else if (rm_.space() == 0) {
        FUZZ_CHECK(copy_failed);
      } else {
        FUZZ_CHECK(!copy_failed);
        FUZZ_CHECK(std::memcmp(&ring_->event[rm_.kidx], &buf[i], sizeof(ukevent)) == 0);
        rm_.Put();
      }
      OnDelivered(buf[i]);
    }
    CheckRingHeader();
  }

  void Wait() {
    const unsigned num = in_.Range(0, kMaxBuf);
    const unsigned old_uidx = in_.Bool() ? rm_.uidx : in_.U32();
    const Timeout t = PickTimeout();
    const unsigned kidx_before = rm_.kidx;
    const int n = kevent_wait(kfd_, num, old_uidx, t.ts, t.flags);
    if (!t.valid || rm_.num == 0) {
      FUZZ_CHECK(n == -EINVAL);
      return;
    }
    FUZZ_CHECK(n >= 0 && n <= static_cast<int>(std::min(num, rm_.space())));
    FUZZ_CHECK(static_cast<size_t>(n) >=
               std::min<size_t>(std::min(num, rm_.space()), model_.ready.size()));
    for (int i = 0; i < n; ++i) {
      const ukevent& ev = ring_->event[(kidx_before + i) % rm_.num];
      FUZZ_CHECK((ev.ret_flags & KEVENT_RET_COPY_FAILED) == 0);
      OnDelivered(ev);
      rm_.Put();
    }
    CheckRingHeader();
  }

  void Commit() {
    unsigned new_uidx;
    switch (in_.Range(0, 4)) {
      case 0:
      case 1:
        new_uidx = rm_.kidx;
        break;  // everything read so far
      case 2:
        new_uidx = rm_.num == 0 ? 0 : (rm_.uidx + in_.U8()) % rm_.num;
        break;
      case 3:
        new_uidx = in_.Range(0, 20);
        break;
      default:
        new_uidx = in_.U32();
        break;
    }
    const unsigned o = in_.Range(0, 5);
    const unsigned over = o <= 2   ? rm_.over
                          : o == 3 ? rm_.over - 1
                          : o == 4 ? rm_.over + 1
                                   : in_.U32();
    const int expected = rm_.Commit(new_uidx, over);
    FUZZ_CHECK(kevent_commit(kfd_, new_uidx, over) == expected);
    CheckRingHeader();
  }

  // Readiness for the fd origins: data in or out of the pipe and the socket pair.
  void Activity() {
    char buf[256];
    switch (in_.Range(0, 3)) {
      case 0:
        (void)!write(fds_.pipe[1], "x", 1);
        break;
      case 1:
        (void)!write(fds_.sock[in_.Range(0, 1)], "y", 1);
        break;
      case 2:
        (void)!read(fds_.pipe[0], buf, sizeof(buf));
        break;
      default:
        (void)!read(fds_.sock[in_.Range(0, 1)], buf, sizeof(buf));
        break;
    }
  }

  // Makes the nested queue readable (or not), for POLL requests on its fd.
  void PokeOtherQueue() {
    ukevent uk;
    std::memset(&uk, 0, sizeof(uk));
    uk.type = KEVENT_UNOTIFY;
    uk.id.raw[0] = in_.Range(0, 3);
    if (in_.Bool()) {
      uk.req_flags = KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE | KEVENT_REQ_ONESHOT;
      FUZZ_CHECK(kevent_ctl(fds_.other_queue, KEVENT_CTL_ADD, 1, &uk) == 1);
    } else {
      ukevent out[4];
      const int n = kevent_get_events(fds_.other_queue, 0, 4, timespec{0, 0}, out, 0);
      FUZZ_CHECK(n >= 0 && n <= 4);
    }
  }

  // Nothing READY'd may be lost: drain until every modelled UNOTIFY came out. Level-triggered
  // requests and fast periodic timers may come back each time, but the ready list is FIFO, so
  // a bounded number of rounds suffices.
  void Drain() {
    char buf[4096];
    while (read(fds_.pipe[0], buf, sizeof(buf)) > 0) {
    }
    for (int fd : fds_.sock) {
      while (read(fd, buf, sizeof(buf)) > 0) {
      }
    }
    for (int round = 0; round < 64 && !model_.ready.empty(); ++round) {
      if (rm_.num != 0 && in_.Bool()) {  // through the ring: commit everything, then wait
        const int freed = kevent_commit(kfd_, rm_.kidx, rm_.over);
        FUZZ_CHECK(freed == rm_.Commit(rm_.kidx, rm_.over));
      }
      GetEventsForDrain();
    }
    FUZZ_CHECK(model_.ready.empty());
  }

  void GetEventsForDrain() {
    ukevent buf[kMaxBuf];
    const int n = kevent_get_events(kfd_, 0, kMaxBuf, timespec{0, 0}, buf, 0);
    FUZZ_CHECK(n >= static_cast<int>(std::min<size_t>(kMaxBuf, model_.ready.size())));
    for (int i = 0; i < n; ++i) {
      if (rm_.num != 0 && rm_.space() > 0) rm_.Put();
      OnDelivered(buf[i]);
    }
    CheckRingHeader();
  }

  ByteReader& in_;
  Fds fds_;
  int kfd_ = -1;
  std::unique_ptr<uint64_t[]> ring_mem_;  // 8-byte aligned, as ukevent needs
  kevent_ring* ring_ = nullptr;
  RingModel rm_;
  Model model_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteReader in(data, size);
  Program program(in);
  program.Run();
  return 0;
}
