// libFuzzer target for the ring commit protocol (KEVENT_SPEC.md, kevent_commit) with several
// simulated consumers on one thread, the interleaving chosen by the input. Built outside Bazel
// by `tools/fuzz.sh ring_commit`; replayed by //tests/fuzz:ring_commit_replay_test.
//
// The producer is either a bare kevent_internal::Ring (Put) or a kevent_internal::Queue with a
// ring, fed by UNOTIFY requests made READY and moved with DequeueToRing / Dequeue. Every event
// carries a unique sequence number. Each consumer follows the protocol of a user thread:
// snapshot ring_over and ring_kidx from the shared header, read slots from its own cursor up to
// that snapshot, then commit its cursor with the ring_over it read; it may also resynchronise
// its cursor to the shared consumer index, commit stale or garbage values, or sleep through
// other consumers' commits and wraps.
//
// Checked after every step (any violation aborts):
//  - no slot is freed twice: a commit's freed range [uidx before, uidx after) holds exactly
//    `freed` events, each written and not yet freed, and each sequence number is freed once;
//  - counts add up: written == freed + used, used <= num, kidx == (uidx + used) % num, the
//    shared header equals the ring's state, Put / DequeueToRing succeed exactly while there is
//    room, and a commit with the previous ring_over never frees anything;
//  - results are in range: freed in [0, used], errors only -EINVAL / -EOVERFLOW, and never for a
//    well-formed commit of what a consumer saw with the current ring_over;
//  - at the end, committing in two steps frees everything still used.
// Not checked, by design: that freed slots were read by someone. The protocol cannot tell a
// late consumer committing an index behind the consumer index (with the current ring_over) from
// a wrap, so such a commit frees unread slots; docs/reliability.md describes this.

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "kevent/internal/queue.h"
#include "kevent/internal/ring.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using kev::fuzz::ByteReader;
using kev::kevent_internal::Queue;
using kev::kevent_internal::QueueOptions;
using kev::kevent_internal::Ring;

constexpr unsigned kMaxConsumers = 4;
constexpr unsigned kRequests = 16;

uint64_t SeqOf(const ukevent& ev) {
  return ev.ret_data[0] | (static_cast<uint64_t>(ev.ret_data[1]) << 32);
}

struct Consumer {
  unsigned over = 0;    // ring_over as last read
  unsigned kidx = 0;    // ring_kidx as last read
  unsigned cursor = 0;  // next slot to read; what it commits
};

class Simulation {
 public:
  explicit Simulation(ByteReader& in) : in_(in) {
    num_ = 2 + in_.Range(0, 14);
    mem_ = std::make_unique<uint64_t[]>((sizeof(kevent_ring) + num_ * sizeof(ukevent)) / 8);
    header_ = reinterpret_cast<kevent_ring*>(mem_.get());
    slot_seq_.assign(num_, 0);
    consumers_.resize(1 + in_.Range(0, kMaxConsumers - 1));
    if (in_.Bool()) {
      queue_ = std::make_unique<Queue>(QueueOptions{.ring = header_, .ring_size = num_});
      for (uint32_t id = 0; id < kRequests; ++id) {
        ukevent uk{};
        uk.type = KEVENT_UNOTIFY;
        uk.id.raw[0] = id;
        queue_->Ctl(KEVENT_CTL_ADD, uk);
        FUZZ_CHECK(uk.ret_flags == 0);
      }
    } else {
      bare_ = std::make_unique<Ring>(header_, num_);
    }
    FUZZ_CHECK(header_->ring_kidx == 0 && header_->ring_over == 0);
  }

  void Run() {
    while (!in_.empty()) {
      const unsigned op = in_.Range(0, 9);
      Consumer& c = consumers_[in_.Range(0, consumers_.size() - 1)];
      switch (op) {
        case 0:
        case 1:
          Produce();
          break;
        case 2:
        case 3:  // snapshot the shared header
          c.over = header_->ring_over;
          c.kidx = header_->ring_kidx;
          break;
        case 4:
        case 5:
          Read(c);
          break;
        case 6:
        case 7:
          CommitCursor(c);
          break;
        case 8:
          c.cursor = ring().uidx();
          break;  // resync with the shared consumer index
        default:
          CommitArbitrary();
          break;
      }
      CheckCounts();
    }
    // Everything still used can be freed: in two commits when the ring is full.
    if (ring().used() == num_) Commit((ring().uidx() + 1) % num_, ring().over());
    if (ring().used() > 0) Commit(ring().kidx(), ring().over());
    FUZZ_CHECK(ring().used() == 0);
    FUZZ_CHECK(freed_ == written_);
  }

 private:
  Ring& ring() { return queue_ != nullptr ? queue_->ring() : *bare_; }

  void Produce() {
    const unsigned k = in_.Range(1, num_ + 2);
    if (bare_ != nullptr) {
      for (unsigned i = 0; i < k; ++i) {
        ukevent ev{};
        const uint64_t seq = next_seq_++;
        ev.ret_data[0] = static_cast<uint32_t>(seq);
        ev.ret_data[1] = static_cast<uint32_t>(seq >> 32);
        const unsigned kidx = ring().kidx();
        const bool room = ring().space() > 0;
        FUZZ_CHECK(bare_->Put(ev) == room);
        if (room) Written(kidx);
      }
      return;
    }
    // The queue: READY some requests (each with a new sequence number; a READY on a request
    // already ready overwrites its number, which then never reaches the ring), then move them.
    for (unsigned i = 0; i < k; ++i) {
      ukevent uk{};
      uk.type = KEVENT_UNOTIFY;
      uk.id.raw[0] = in_.Range(0, kRequests - 1);
      const uint64_t seq = next_seq_++;
      uk.ret_data[0] = static_cast<uint32_t>(seq);
      uk.ret_data[1] = static_cast<uint32_t>(seq >> 32);
      queue_->Ctl(KEVENT_CTL_READY, uk);
      FUZZ_CHECK(uk.ret_flags == 0);
    }
    const size_t ready = queue_->ready_count();
    const unsigned space = ring().space();
    const unsigned kidx = ring().kidx();
    if (in_.Bool()) {  // kevent_wait's path
      const size_t max = in_.Range(0, kRequests);
      const size_t n = queue_->DequeueToRing(max);
      FUZZ_CHECK(n == std::min<size_t>({max, space, ready}));
      for (size_t i = 0; i < n; ++i) Written((kidx + i) % num_);
    } else {  // kevent_get_events' path: the buffer gets all, the ring what fits
      ukevent buf[kRequests];
      const size_t max = in_.Range(0, kRequests);
      const size_t n = queue_->Dequeue(buf, max);
      FUZZ_CHECK(n == std::min(max, ready));
      for (size_t i = 0; i < n; ++i) {
        const bool copied = i < space;
        FUZZ_CHECK(((buf[i].ret_flags & KEVENT_RET_COPY_FAILED) == 0) == copied);
        if (copied) {
          FUZZ_CHECK(SeqOf(buf[i]) == SeqOf(header_->event[(kidx + i) % num_]));
          Written((kidx + i) % num_);
        }
      }
    }
  }

  // The slot was just written: its sequence number must be new.
  void Written(unsigned slot) {
    const uint64_t seq = SeqOf(header_->event[slot]);
    FUZZ_CHECK(seq < next_seq_);
    FUZZ_CHECK(state_.size() <= seq || state_[seq] == kNone);
    if (state_.size() <= seq) state_.resize(seq + 1, kNone);
    state_[seq] = kUsed;
    slot_seq_[slot] = seq;
    ++written_;
  }

  void Read(Consumer& c) {
    unsigned k = in_.Range(0, num_);
    while (k-- > 0 && c.cursor != c.kidx) {
      const uint64_t seq = SeqOf(header_->event[c.cursor]);
      FUZZ_CHECK(seq < next_seq_);  // a slot holds something ever written
      c.cursor = (c.cursor + 1) % num_;
    }
  }

  void CommitCursor(Consumer& c) {
    const bool current = c.over == ring().over();
    const int rc = Commit(c.cursor, c.over);
    // A consumer that read with the current ring_over, up to a kidx it saw, only fails if its
    // cursor is no longer a meaningful position: never with -EOVERFLOW.
    if (current) FUZZ_CHECK(rc != -EOVERFLOW);
  }

  void CommitArbitrary() {
    const unsigned new_uidx = in_.Chance(200) ? in_.Range(0, num_ - 1) : in_.U32();
    const unsigned o = in_.Range(0, 3);
    const unsigned over = o == 0   ? ring().over()
                          : o == 1 ? ring().over() - 1
                          : o == 2 ? ring().over() + 1
                                   : in_.U32();
    const int rc = Commit(new_uidx, over);
    if (new_uidx >= num_) FUZZ_CHECK(rc == -EINVAL);
    if (over != ring().over() && over + 1 != ring().over() && rc != -EINVAL) {
      FUZZ_CHECK(rc == -EOVERFLOW);
    }
  }

  // Commits through the queue's or the bare ring and checks what was freed.
  int Commit(unsigned new_uidx, unsigned over) {
    const unsigned uidx = ring().uidx();
    const unsigned used = ring().used();
    const unsigned over_before = ring().over();
    const int rc = ring().Commit(new_uidx, over);
    FUZZ_CHECK(rc == -EINVAL || rc == -EOVERFLOW || (rc >= 0 && static_cast<unsigned>(rc) <= used));
    if (rc <= 0) {
      FUZZ_CHECK(ring().uidx() == uidx && ring().used() == used && ring().over() == over_before);
      return rc;
    }
    FUZZ_CHECK(over == over_before);  // the previous ring_over never frees
    FUZZ_CHECK(ring().uidx() == new_uidx);
    FUZZ_CHECK((uidx + static_cast<unsigned>(rc)) % num_ == new_uidx);
    FUZZ_CHECK(ring().over() == over_before + (new_uidx < uidx ? 1 : 0));
    for (unsigned i = 0; i < static_cast<unsigned>(rc); ++i) {
      const uint64_t seq = slot_seq_[(uidx + i) % num_];
      FUZZ_CHECK(seq < state_.size() && state_[seq] == kUsed);  // freed once, after written
      state_[seq] = kFreed;
      ++freed_;
    }
    return rc;
  }

  void CheckCounts() {
    const Ring& r = ring();
    FUZZ_CHECK(r.used() <= num_ && r.space() == num_ - r.used());
    FUZZ_CHECK(r.kidx() < num_ && r.uidx() < num_);
    FUZZ_CHECK(r.kidx() == (r.uidx() + r.used()) % num_);
    FUZZ_CHECK(written_ == freed_ + r.used());
    FUZZ_CHECK(header_->ring_kidx == r.kidx() && header_->ring_over == r.over());
  }

  enum State : uint8_t { kNone, kUsed, kFreed };

  ByteReader& in_;
  unsigned num_ = 0;
  std::unique_ptr<uint64_t[]> mem_;  // 8-byte aligned header + slots
  kevent_ring* header_ = nullptr;
  std::unique_ptr<Ring> bare_;
  std::unique_ptr<Queue> queue_;
  std::vector<Consumer> consumers_;
  std::vector<uint64_t> slot_seq_;  // the sequence number each slot was last written with
  std::vector<State> state_;        // by sequence number
  uint64_t next_seq_ = 1;
  uint64_t written_ = 0;
  uint64_t freed_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteReader in(data, size);
  Simulation sim(in);
  sim.Run();
  return 0;
}
