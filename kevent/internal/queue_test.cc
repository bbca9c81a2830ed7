// The queue core, one rule of KEVENT_SPEC.md at a time, on a manual clock.
#include "kevent/internal/queue.h"

#include <cerrno>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "kevent/internal/test_origin.h"

namespace kev::kevent_internal {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;
constexpr uint32_t kRecv = KEVENT_SOCKET_RECV;
constexpr uint32_t kSend = KEVENT_SOCKET_SEND;

ukevent Unotify(uint32_t id, uint32_t flags = 0, uint32_t user = 0) {
  ukevent uk{};
  uk.type = KEVENT_UNOTIFY;
  uk.event = 1;
  uk.id.raw[0] = id;
  uk.req_flags = flags;
  uk.user[0] = user;
  return uk;
}

ukevent Timer(uint32_t sec, uint32_t nsec, uint32_t flags = 0) {
  ukevent uk{};
  uk.type = KEVENT_TIMER;
  uk.event = KEVENT_TIMER_FIRED;
  uk.id.raw[0] = sec;
  uk.id.raw[1] = nsec;
  uk.req_flags = flags;
  return uk;
}

// A request of the fake level-triggered origin (installed as KEVENT_POLL).
ukevent Level(uint32_t object, uint32_t event, uint32_t flags = 0, uint32_t user = 0) {
  ukevent uk{};
  uk.type = KEVENT_POLL;
  uk.event = event;
  uk.id.raw[0] = object;
  uk.req_flags = flags;
  uk.user[0] = user;
  return uk;
}

class QueueTest : public ::testing::Test {
 protected:
  QueueTest() { Reset(nullptr, 0); }

  void Reset(kevent_ring* ring, unsigned num) {
    queue_.reset();
    queue_ = std::make_unique<Queue>(
        QueueOptions{.ring = ring, .ring_size = num, .clock = &clock_, .observer = &observer_});
    auto origin = std::make_unique<FakeLevelOrigin>();
    level_ = origin.get();
    queue_->SetOriginForTesting(KEVENT_POLL, std::move(origin));
  }

  uint32_t Ctl(unsigned cmd, ukevent& uk) {
    queue_->Ctl(cmd, uk);
    return uk.ret_flags;
  }
  // Dequeues everything ready (up to 64).
  std::vector<ukevent> Take(size_t max = 64) {
    std::vector<ukevent> out(max);
    out.resize(queue_->Dequeue(out.data(), max));
    return out;
  }
  void Ready(uint32_t id, uint32_t d0 = 0, uint32_t d1 = 0, uint32_t user = 0) {
    ukevent uk = Unotify(id, 0, user);
    uk.ret_data[0] = d0;
    uk.ret_data[1] = d1;
    ASSERT_EQ(Ctl(KEVENT_CTL_READY, uk), 0u);
  }

  ManualClock clock_;
  RecordingObserver observer_;
  std::unique_ptr<Queue> queue_;
  FakeLevelOrigin* level_ = nullptr;
};

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

// --- TIMER ------------------------------------------------------------------------------------

TEST_F(QueueTest, PeriodicTimerCountsExpirationsSinceLastDelivery) {
  ukevent t = Timer(1, 0);
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, t), 0u);
  EXPECT_EQ(observer_.timer_armed, 1);
  ASSERT_TRUE(queue_->NextTimerDeadline());
  EXPECT_EQ(*queue_->NextTimerDeadline(), clock_.now_ns + kSec);
  clock_.Advance(kSec - 1);
  queue_->ExpireTimers();
  EXPECT_TRUE(Take().empty());
  clock_.Advance(2 * kSec + 500 * kMs + 1);  // t = 3.5 s: expiries at 1, 2, 3
  queue_->ExpireTimers();
  auto out = Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ret_data[1], 3u);
  EXPECT_EQ(out[0].ret_data[0], static_cast<uint32_t>(clock_.now_ns / kMs));
  EXPECT_EQ(out[0].ret_flags, static_cast<uint32_t>(KEVENT_RET_DONE));
  // The grid is kept: the next expiry is at 4 s, not 4.5 s.
  clock_.Advance(500 * kMs);
  queue_->ExpireTimers();
  out = Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ret_data[1], 1u);
  EXPECT_EQ(queue_->size(), 1u);
}

TEST_F(QueueTest, OneshotTimerFiresOnceAndIsRemoved) {
  ukevent t = Timer(0, 10 * kMs, KEVENT_REQ_ONESHOT);
  Ctl(KEVENT_CTL_ADD, t);
  clock_.Advance(5 * kSec);
  queue_->ExpireTimers();
  auto out = Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ret_data[1], 1u);
  EXPECT_EQ(queue_->size(), 0u);
  EXPECT_FALSE(queue_->NextTimerDeadline());
}

TEST_F(QueueTest, TimerRejectsBadIdsAndEvents) {
  const uint32_t broken = KEVENT_RET_BROKEN | KEVENT_RET_DONE;
  ukevent ns = Timer(0, 1'000'000'000);
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, ns), broken);
  EXPECT_EQ(ns.ret_data[0], static_cast<uint32_t>(EINVAL));
  ukevent ev = Timer(1, 0);
  ev.event = 2;
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, ev), broken);
  ukevent zero = Timer(0, 0);
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, zero), broken);  // periodic with no period
  EXPECT_EQ(queue_->size(), 0u);
  ukevent zero_once = Timer(0, 0, KEVENT_REQ_ONESHOT);
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, zero_once), 0u);
  queue_->ExpireTimers();
  EXPECT_EQ(Take().size(), 1u);
}

TEST_F(QueueTest, RemovedTimerNeverFiresAndModifiedTimerRearms) {
  ukevent a = Timer(1, 0);
  ukevent b = Timer(2, 0);
  Ctl(KEVENT_CTL_ADD, a);
  Ctl(KEVENT_CTL_ADD, b);
  ukevent rm = Timer(1, 0);
  EXPECT_EQ(Ctl(KEVENT_CTL_REMOVE, rm), static_cast<uint32_t>(KEVENT_RET_DONE));
  clock_.Advance(1500 * kMs);
  queue_->ExpireTimers();
  EXPECT_TRUE(Take().empty());
  // MODIFY re-arms b from now (1.5 s): next expiry at 3.5 s, not 2 s.
  ukevent mod = Timer(2, 0);
  EXPECT_EQ(Ctl(KEVENT_CTL_MODIFY, mod), static_cast<uint32_t>(KEVENT_RET_DONE));
  clock_.Advance(1 * kSec);
  queue_->ExpireTimers();
  EXPECT_TRUE(Take().empty());
  clock_.Advance(1 * kSec);
  queue_->ExpireTimers();
  EXPECT_EQ(Take().size(), 1u);
}

TEST_F(QueueTest, ReadyOnATimerCarriesTheCallersData) {
  ukevent t = Timer(100, 0);
  Ctl(KEVENT_CTL_ADD, t);
  ukevent r = Timer(100, 0);
  r.ret_data[0] = 77;
  EXPECT_EQ(Ctl(KEVENT_CTL_READY, r), 0u);
  auto out = Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ret_data[0], 77u);
  EXPECT_EQ(out[0].ret_data[1], 1u);  // one occurrence
}

TEST_F(QueueTest, MillionTimersArmedThenCancelled) {
#ifdef KEV_SANITIZER
  constexpr uint32_t kCount = 200'000;
#else
  constexpr uint32_t kCount = 1'000'000;
#endif
  for (uint32_t i = 0; i < kCount; ++i) {
    ukevent t = Timer(1 + i % 1000, i);
    t.user[0] = i;
    ASSERT_EQ(Ctl(KEVENT_CTL_ADD, t), 0u);
  }
  EXPECT_EQ(queue_->size(), kCount);
  for (uint32_t i = 0; i < kCount; ++i) {
    ukevent t = Timer(1 + i % 1000, i);
    t.user[0] = i;
    ASSERT_EQ(Ctl(KEVENT_CTL_REMOVE, t), static_cast<uint32_t>(KEVENT_RET_DONE));
  }
  EXPECT_EQ(queue_->size(), 0u);
  EXPECT_FALSE(queue_->NextTimerDeadline());
}

// --- Level-triggered origins, ET, LAST_CHECK, storages --------------------------------------

TEST_F(QueueTest, LevelTriggeredIsDeliveredAgainWhileTheConditionHolds) {
  ukevent uk = Level(5, kRecv);
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, uk), 0u);
  level_->Set(5, kRecv);
  for (int i = 0; i < 3; ++i) {
    auto out = Take();
    ASSERT_EQ(out.size(), 1u) << i;  // once per wait, never twice in one
    EXPECT_EQ(out[0].ret_data[0], kRecv);
  }
  level_->object(5).state = 0;  // drained, no activity reported
  EXPECT_TRUE(Take().empty());  // confirmed before delivery: dropped
  EXPECT_TRUE(Take().empty());
  EXPECT_EQ(queue_->size(), 1u);
  level_->Set(5, kRecv);
  EXPECT_EQ(Take().size(), 1u);
}

TEST_F(QueueTest, EdgeTriggeredIsDeliveredOncePerActivity) {
  ukevent uk = Level(5, kRecv, KEVENT_REQ_ET);
  Ctl(KEVENT_CTL_ADD, uk);
  level_->Set(5, kRecv);
  EXPECT_EQ(Take().size(), 1u);
  EXPECT_TRUE(Take().empty());  // condition still holds, but no new activity
  level_->Set(5, kRecv);        // new activity
  EXPECT_EQ(Take().size(), 1u);
  EXPECT_TRUE(Take().empty());
}

TEST_F(QueueTest, LevelTriggeredReadyAtAddIsDoneThenStillDelivered) {
  level_->object(5).state = kRecv;
  ukevent uk = Level(5, kRecv);
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, uk), static_cast<uint32_t>(KEVENT_RET_DONE));
  EXPECT_EQ(uk.ret_data[0], kRecv);
  EXPECT_EQ(queue_->size(), 1u);
  EXPECT_EQ(Take().size(), 1u);  // level-triggered: still readable, so delivered again
}

TEST_F(QueueTest, LastCheckQuietlyRearmsWhenTheConditionHasGone) {
  ukevent uk = Level(5, kRecv, KEVENT_REQ_LAST_CHECK | KEVENT_REQ_ET);
  Ctl(KEVENT_CTL_ADD, uk);
  level_->Set(5, kRecv);
  EXPECT_EQ(queue_->ready_count(), 1u);
  level_->object(5).state = 0;  // gone before anyone took it
  EXPECT_TRUE(Take().empty());
  EXPECT_EQ(queue_->ready_count(), 0u);
  EXPECT_EQ(queue_->size(), 1u);
  level_->Set(5, kRecv);  // re-armed: the next activity readies it again
  auto out = Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ret_data[0], kRecv);
}

TEST_F(QueueTest, LastCheckRearmsAOneshotIntoItsStorage) {
  ukevent uk = Level(5, kRecv, KEVENT_REQ_LAST_CHECK | KEVENT_REQ_ONESHOT);
  Ctl(KEVENT_CTL_ADD, uk);
  level_->Set(5, kRecv);
  EXPECT_EQ(level_->object(5).storage.size(), 0u);  // ONESHOT left its storage when ready
  level_->object(5).state = 0;
  EXPECT_TRUE(Take().empty());
  EXPECT_EQ(level_->object(5).storage.size(), 1u);  // and is back
  level_->Set(5, kRecv);
  EXPECT_EQ(Take().size(), 1u);
  EXPECT_EQ(queue_->size(), 0u);
}

TEST_F(QueueTest, ActivityReadiesFirstMatchingRequestUnlessWakeupAll) {
  ukevent a = Level(5, kRecv, KEVENT_REQ_ET, 1);
  ukevent b = Level(5, kRecv, KEVENT_REQ_ET, 2);
  ukevent c = Level(5, kSend, KEVENT_REQ_ET, 3);
  Ctl(KEVENT_CTL_ADD, a);
  Ctl(KEVENT_CTL_ADD, b);
  Ctl(KEVENT_CTL_ADD, c);
  EXPECT_EQ(level_->Set(5, kRecv), 1);
  auto out = Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].user[0], 1u);

  Reset(nullptr, 0);
  ukevent x = Level(5, kRecv, KEVENT_REQ_ET | KEVENT_REQ_WAKEUP_ALL, 1);
  ukevent y = Level(5, kRecv, KEVENT_REQ_ET | KEVENT_REQ_WAKEUP_ALL, 2);
  Ctl(KEVENT_CTL_ADD, x);
  Ctl(KEVENT_CTL_ADD, y);
  EXPECT_EQ(level_->Set(5, kRecv), 2);
  EXPECT_EQ(Take().size(), 2u);
  EXPECT_EQ(observer_.wake_all_calls, 2);
}

TEST_F(QueueTest, ReadyOneshotLeavesStorageSoTheNextActivityGoesToTheNextRequest) {
  ukevent a = Level(5, kRecv, KEVENT_REQ_ONESHOT, 1);
  ukevent b = Level(5, kRecv, KEVENT_REQ_ONESHOT, 2);
  Ctl(KEVENT_CTL_ADD, a);
  Ctl(KEVENT_CTL_ADD, b);
  level_->Set(5, kRecv);
  level_->Set(5, kRecv);
  auto out = Take();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].user[0], 1u);
  EXPECT_EQ(out[1].user[0], 2u);
  EXPECT_EQ(queue_->size(), 0u);
}

TEST_F(QueueTest, BrokenOriginDeliversBrokenDoneOnceThenRemoves) {
  ukevent a = Level(5, kRecv, 0, 1);
  ukevent b = Level(5, kSend, 0, 2);
  Ctl(KEVENT_CTL_ADD, a);
  Ctl(KEVENT_CTL_ADD, b);
  level_->object(5).storage.Break(ECONNRESET);
  auto out = Take();
  ASSERT_EQ(out.size(), 2u);
  for (const ukevent& ev : out) {
    EXPECT_EQ(ev.ret_flags, static_cast<uint32_t>(KEVENT_RET_BROKEN | KEVENT_RET_DONE));
    EXPECT_EQ(ev.ret_data[0], static_cast<uint32_t>(ECONNRESET));
  }
  EXPECT_EQ(queue_->size(), 0u);
  EXPECT_TRUE(Take().empty());
}

TEST_F(QueueTest, FailingCheckAtLastCheckBreaksTheRequest) {
  ukevent uk = Level(5, kRecv, KEVENT_REQ_LAST_CHECK);
  Ctl(KEVENT_CTL_ADD, uk);
  level_->Set(5, kRecv);
  level_->object(5).error = EPIPE;
  auto out = Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ret_flags, static_cast<uint32_t>(KEVENT_RET_BROKEN | KEVENT_RET_DONE));
  EXPECT_EQ(out[0].ret_data[0], static_cast<uint32_t>(EPIPE));
  EXPECT_EQ(queue_->size(), 0u);
}

TEST_F(QueueTest, AddRejectsWhatTheOriginRejects) {
  ukevent bad_fd = Level(0, kRecv);
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, bad_fd),
            static_cast<uint32_t>(KEVENT_RET_BROKEN | KEVENT_RET_DONE));
  EXPECT_EQ(bad_fd.ret_data[0], static_cast<uint32_t>(EBADF));
  ukevent bad_event = Level(5, 0);
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, bad_event),
            static_cast<uint32_t>(KEVENT_RET_BROKEN | KEVENT_RET_DONE));
  EXPECT_EQ(bad_event.ret_data[0], static_cast<uint32_t>(EINVAL));
  EXPECT_EQ(queue_->size(), 0u);
}

// --- MODIFY -----------------------------------------------------------------------------------

TEST_F(QueueTest, ModifyReplacesEventAndRechecks) {
  level_->object(5).state = kSend;
  ukevent uk = Level(5, kRecv, KEVENT_REQ_ET);
  EXPECT_EQ(Ctl(KEVENT_CTL_ADD, uk), 0u);  // not ready: wants RECV, object is writable
  ukevent mod = Level(5, kSend, KEVENT_REQ_ET);
  EXPECT_EQ(Ctl(KEVENT_CTL_MODIFY, mod), static_cast<uint32_t>(KEVENT_RET_DONE));
  EXPECT_EQ(queue_->ready_count(), 1u);  // became ready at once
  auto out = Take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].event, kSend);
  EXPECT_EQ(out[0].ret_data[0], kSend);
}

TEST_F(QueueTest, ModifyWithAnInvalidEventKeepsTheRequest) {
  ukevent uk = Level(5, kRecv, KEVENT_REQ_ET);
  Ctl(KEVENT_CTL_ADD, uk);
  ukevent mod = Level(5, 0);
  EXPECT_EQ(Ctl(KEVENT_CTL_MODIFY, mod),
            static_cast<uint32_t>(KEVENT_RET_BROKEN | KEVENT_RET_DONE));
  EXPECT_EQ(mod.ret_data[0], static_cast<uint32_t>(EINVAL));
  ukevent flags = Level(5, kRecv, 0x80);
  EXPECT_EQ(Ctl(KEVENT_CTL_MODIFY, flags),
            static_cast<uint32_t>(KEVENT_RET_BROKEN | KEVENT_RET_DONE));
  EXPECT_EQ(queue_->size(), 1u);
  level_->Set(5, kRecv);
  EXPECT_EQ(Take().size(), 1u);  // still watching RECV
}

TEST_F(QueueTest, ModifyWithReadyFlagMarksAnUnotifyReady) {
  ukevent uk = Unotify(1);
  Ctl(KEVENT_CTL_ADD, uk);
  ukevent mod = Unotify(1, KEVENT_REQ_READY | KEVENT_REQ_ONESHOT);
  EXPECT_EQ(Ctl(KEVENT_CTL_MODIFY, mod), static_cast<uint32_t>(KEVENT_RET_DONE));
  EXPECT_EQ(Take().size(), 1u);
  EXPECT_EQ(queue_->size(), 0u);  // now ONESHOT: removed on delivery
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
}  // namespace kev::kevent_internal
