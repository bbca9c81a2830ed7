// The TIMER origin inside the queue core, on a manual clock.
#include <cerrno>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "kevent/internal/queue.h"
#include "kevent/internal/queue_fixture.h"

namespace kev::kevent_internal::test {
namespace {

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

}  // namespace
}  // namespace kev::kevent_internal::test
