// The queue core, one rule of KEVENT_SPEC.md at a time: ADD / MODIFY / REMOVE / READY,
// delivery order, ONESHOT, ALWAYS_QUEUE, the observer, caller-owned requests and the ring.
#include "kevent/internal/queue.h"

#include <cerrno>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "kevent/internal/queue_fixture.h"

namespace kev::kevent_internal::test {
namespace {

// --- ADD / READY / delivery -----------------------------------------------------------------

TEST_F(QueueTest, UnotifyIsQueuedThenDeliveredWithReadyData) {
  ukevent uk = Unotify(7, 0, 0xabc);
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, uk), 0u);
  EXPECT_EQ(queue_->size(), 1u);
  EXPECT_TRUE(Take().empty());
  Ready(7, 42, 43, 0xabc);
  auto out = Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ret_flags, static_cast<uint32_t>(KEVENT_RET_DONE));
  EXPECT_EQ(out[0].ret_data[0], 42u);
  EXPECT_EQ(out[0].ret_data[1], 43u);
  EXPECT_EQ(out[0].id.raw[0], 7u);
  EXPECT_EQ(out[0].user[0], 0xabcu);
  // Persistent: still registered, fires again on the next READY.
  EXPECT_EQ(queue_->size(), 1u);
  Ready(7, 44, 0, 0xabc);
  out = Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ret_data[0], 44u);
}

TEST_F(QueueTest, OneshotIsRemovedWhenDelivered) {
  ukevent uk = Unotify(1, KEVENT_REQ_ONESHOT);
  Ctl(KEVENT_CTL_ADD, uk);
  Ready(1);
  EXPECT_EQ(Take().size(), 1u);
  EXPECT_EQ(queue_->size(), 0u);
  ukevent again = Unotify(1);
  EXPECT_EQ(Ctl(KEVENT_CTL_READY, again),
            static_cast<uint32_t>(KEVENT_RET_BROKEN | KEVENT_RET_DONE));
  EXPECT_EQ(again.ret_data[0], static_cast<uint32_t>(ENOENT));
}

TEST_F(QueueTest, ReadyCoalescesWhileUndelivered) {
  ukevent uk = Unotify(1);
  Ctl(KEVENT_CTL_ADD, uk);
  Ready(1, 10);
  Ready(1, 11);
  Ready(1, 12);
  auto out = Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ret_data[0], 12u);  // the last READY's data
}

TEST_F(QueueTest, OldestReadyFirstAndMaxRespected) {
  for (uint32_t id = 1; id <= 5; ++id) {
    ukevent uk = Unotify(id);
    Ctl(KEVENT_CTL_ADD, uk);
  }
  for (uint32_t id : {3u, 1u, 5u, 2u, 4u}) Ready(id);
  auto first = Take(2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].id.raw[0], 3u);
  EXPECT_EQ(first[1].id.raw[0], 1u);
  auto rest = Take();
  ASSERT_EQ(rest.size(), 3u);
  EXPECT_EQ(rest[0].id.raw[0], 5u);
  EXPECT_EQ(rest[1].id.raw[0], 2u);
  EXPECT_EQ(rest[2].id.raw[0], 4u);
}

TEST_F(QueueTest, ReadyAtAddWithoutAlwaysQueueIsDoneAtOnce) {
  // ONESHOT: completed by the ADD itself and not registered.
  ukevent once = Unotify(1, KEVENT_REQ_READY | KEVENT_REQ_ONESHOT);
  once.ret_data[0] = 5;
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, once), static_cast<uint32_t>(KEVENT_RET_DONE));
  EXPECT_EQ(once.ret_data[0], 5u);
  EXPECT_EQ(queue_->size(), 0u);
  // Persistent: completed at once, not queued, but stays registered.
  ukevent persistent = Unotify(2, KEVENT_REQ_READY);
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, persistent), static_cast<uint32_t>(KEVENT_RET_DONE));
  EXPECT_EQ(queue_->size(), 1u);
  EXPECT_EQ(queue_->ready_count(), 0u);
  EXPECT_TRUE(Take().empty());
  Ready(2);
  EXPECT_EQ(Take().size(), 1u);
}

TEST_F(QueueTest, AlwaysQueueQueuesAnEventReadyAtAdd) {
  ukevent uk = Unotify(1, KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE | KEVENT_REQ_ONESHOT);
  uk.ret_data[1] = 9;
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, uk), 0u);
  EXPECT_EQ(queue_->ready_count(), 1u);
  auto out = Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ret_data[1], 9u);
  EXPECT_EQ(queue_->size(), 0u);
}

TEST_F(QueueTest, DuplicateKeyIsEexistButUserAndTypeDistinguish) {
  ukevent a = Unotify(1, 0, 100);
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, a), 0u);
  ukevent dup = Unotify(1, 0, 100);
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, dup), static_cast<uint32_t>(KEVENT_RET_BROKEN | KEVENT_RET_DONE));
  EXPECT_EQ(dup.ret_data[0], static_cast<uint32_t>(EEXIST));
  ukevent other_user = Unotify(1, 0, 101);
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, other_user), 0u);
  ukevent other_type = Timer(1, 0);
  other_type.user[0] = 100;
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, other_type), 0u);
  EXPECT_EQ(queue_->size(), 3u);
  // The key includes user: READY with the wrong user matches nothing.
  ukevent wrong = Unotify(1, 0, 102);
  EXPECT_EQ(Ctl(KEVENT_CTL_READY, wrong),
            static_cast<uint32_t>(KEVENT_RET_BROKEN | KEVENT_RET_DONE));
}

TEST_F(QueueTest, RejectsBadTypesAndFlags) {
  const uint32_t broken = KEVENT_RET_BROKEN | KEVENT_RET_DONE;
  ukevent unknown = Unotify(1);
  unknown.type = KEVENT_MAX;
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, unknown), broken);
  EXPECT_EQ(unknown.ret_data[0], static_cast<uint32_t>(EINVAL));
  ukevent naio = Unotify(1);
  naio.type = KEVENT_NAIO;
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, naio), broken);
  EXPECT_EQ(naio.ret_data[0], static_cast<uint32_t>(EINVAL));
  for (uint32_t type :
       {KEVENT_SOCKET, KEVENT_INODE, KEVENT_AIO, KEVENT_PIPE, KEVENT_SIGNAL, KEVENT_POSIX_TIMER}) {
    ukevent uk = Unotify(1);
    uk.type = type;
    EXPECT_EQ(Ctl(KEVENT_CTL_ADD, uk), broken) << type;
    EXPECT_EQ(uk.ret_data[0], static_cast<uint32_t>(EOPNOTSUPP)) << type;
  }
  ukevent flags = Unotify(1, 0x40);
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, flags), broken);
  EXPECT_EQ(flags.ret_data[0], static_cast<uint32_t>(EINVAL));
  ukevent cmd = Unotify(1);
  EXPECT_EQ(Ctl(17, cmd), broken);
  EXPECT_EQ(queue_->size(), 0u);
}

TEST_F(QueueTest, MissingRequestIsBrokenForRemoveModifyReady) {
  for (unsigned cmd : {KEVENT_CTL_REMOVE, KEVENT_CTL_MODIFY, KEVENT_CTL_READY}) {
    ukevent uk = Unotify(99);
    EXPECT_EQ(Ctl(cmd, uk), static_cast<uint32_t>(KEVENT_RET_BROKEN | KEVENT_RET_DONE)) << cmd;
    EXPECT_EQ(uk.ret_data[0], static_cast<uint32_t>(ENOENT)) << cmd;
  }
}

TEST_F(QueueTest, RemoveDropsAReadyUndeliveredEvent) {
  kevent_ring* ring =
      static_cast<kevent_ring*>(::operator new(sizeof(kevent_ring) + 4 * sizeof(ukevent)));
  Reset(ring, 4);
  ukevent uk = Unotify(1);
  Ctl(KEVENT_CTL_ADD, uk);
  Ready(1);
  EXPECT_EQ(queue_->ready_count(), 1u);
  ukevent rm = Unotify(1);
  EXPECT_EQ(Ctl(KEVENT_CTL_REMOVE, rm), static_cast<uint32_t>(KEVENT_RET_DONE));
  EXPECT_EQ(queue_->ready_count(), 0u);
  EXPECT_TRUE(Take().empty());
  EXPECT_EQ(queue_->DequeueToRing(4), 0u);
  EXPECT_EQ(queue_->ring().used(), 0u);
  EXPECT_EQ(ring->ring_kidx, 0u);
  queue_.reset();
  ::operator delete(ring);
}

// --- Observer: readability and wake-ups -----------------------------------------------------

TEST_F(QueueTest, ObserverSeesReadyListTransitionsAndWakeAll) {
  ukevent a = Unotify(1);
  ukevent b = Unotify(2, KEVENT_REQ_WAKEUP_ALL);
  Ctl(KEVENT_CTL_ADD, a);
  Ctl(KEVENT_CTL_ADD, b);
  EXPECT_FALSE(observer_.readable);
  Ready(1);
  EXPECT_TRUE(observer_.readable);
  EXPECT_EQ(observer_.ready_calls, 1);
  EXPECT_EQ(observer_.wake_all_calls, 0);
  ukevent rb = Unotify(2);
  Ctl(KEVENT_CTL_READY, rb);
  EXPECT_EQ(observer_.wake_all_calls, 1);
  EXPECT_EQ(Take().size(), 2u);
  EXPECT_FALSE(observer_.readable);
  EXPECT_EQ(observer_.transitions, 2);
}

// --- Caller-owned requests -------------------------------------------------------------------

TEST_F(QueueTest, CallerOwnedRequestsAreLinkedNotFreed) {
  ukevent uk = Unotify(3);
  Request r(uk);
  queue_->AddRequest(&r);
  EXPECT_EQ(r.uk.ret_flags, 0u);
  EXPECT_EQ(r.queue, queue_.get());
  Ready(3, 8);
  auto out = Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ret_data[0], 8u);
  Ready(3);
  queue_->RemoveRequest(&r);  // ready, undelivered: dropped
  EXPECT_EQ(r.queue, nullptr);
  EXPECT_TRUE(Take().empty());
  Request dup_a(uk);
  Request dup_b(uk);
  queue_->AddRequest(&dup_a);
  queue_->AddRequest(&dup_b);
  EXPECT_EQ(dup_b.uk.ret_flags, static_cast<uint32_t>(KEVENT_RET_BROKEN | KEVENT_RET_DONE));
  EXPECT_EQ(dup_b.queue, nullptr);
  queue_.reset();  // unlinks dup_a without freeing it
  EXPECT_EQ(dup_a.queue, nullptr);
}

// --- Ring -------------------------------------------------------------------------------------

TEST_F(QueueTest, RingFullMarksCopyFailedButBufKeepsEverything) {
  constexpr unsigned kNum = 4;
  std::vector<char> mem(sizeof(kevent_ring) + kNum * sizeof(ukevent));
  auto* ring = reinterpret_cast<kevent_ring*>(mem.data());
  Reset(ring, kNum);
  for (uint32_t id = 1; id <= 6; ++id) {
    ukevent uk = Unotify(id, KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE);
    Ctl(KEVENT_CTL_ADD, uk);
  }
  auto out = Take();
  ASSERT_EQ(out.size(), 6u);
  for (uint32_t i = 0; i < 6; ++i) {
    EXPECT_EQ(out[i].id.raw[0], i + 1);
    const bool fits = i < kNum;
    EXPECT_EQ((out[i].ret_flags & KEVENT_RET_COPY_FAILED) != 0, !fits) << i;
    if (fits) {
      EXPECT_EQ(ring->event[i].id.raw[0], i + 1);
      EXPECT_EQ(ring->event[i].ret_flags, static_cast<uint32_t>(KEVENT_RET_DONE));
    }
  }
  EXPECT_EQ(queue_->ring().used(), kNum);
  EXPECT_EQ(ring->ring_kidx, 0u);  // wrapped: kidx == uidx, full
  queue_.reset();
}

TEST_F(QueueTest, DequeueToRingStopsWhenFull) {
  constexpr unsigned kNum = 2;
  std::vector<char> mem(sizeof(kevent_ring) + kNum * sizeof(ukevent));
  auto* ring = reinterpret_cast<kevent_ring*>(mem.data());
  Reset(ring, kNum);
  for (uint32_t id = 1; id <= 3; ++id) {
    ukevent uk = Unotify(id, KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE | KEVENT_REQ_ONESHOT);
    Ctl(KEVENT_CTL_ADD, uk);
  }
  EXPECT_EQ(queue_->DequeueToRing(10), 2u);
  EXPECT_EQ(queue_->ready_count(), 1u);  // the third waits for room, not lost
  EXPECT_EQ(queue_->ring().Commit(1, 0), 1);
  EXPECT_EQ(queue_->DequeueToRing(10), 1u);
  EXPECT_EQ(ring->event[0].id.raw[0], 3u);
  queue_.reset();
}

}  // namespace
}  // namespace kev::kevent_internal::test
