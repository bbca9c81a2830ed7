// Level-triggered and edge-triggered delivery, LAST_CHECK, storages (first match vs
// WAKEUP_ALL, ONESHOT leaving its storage), broken origins and MODIFY, with the fake
// level-triggered origin of test_origin.h.
#include <cerrno>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "kevent/internal/queue.h"
#include "kevent/internal/queue_fixture.h"

namespace kev::kevent_internal::test {
namespace {

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

// The queue confirms the ready requests a Dequeue takes in one CheckMany when two or more need
// it (LAST_CHECK, or readied by a level-triggered re-check), and skips the walk otherwise: its
// count of such requests must follow every way in and out of the ready list (a re-check, a
// coalesced activity, MODIFY, REMOVE), or a batch is missed (or a walk made for nothing).
TEST_F(QueueTest, ConfirmationsOfSeveralReadyRequestsAreOneBatch) {
  using Sizes = std::vector<size_t>;
  ukevent a = Level(5, kRecv), b = Level(6, kRecv);
  Ctl(KEVENT_CTL_ADD, a);
  Ctl(KEVENT_CTL_ADD, b);
  level_->Set(5, kRecv);
  level_->Set(6, kRecv);
  EXPECT_EQ(Take().size(), 2u);  // fresh activities: nothing to confirm
  EXPECT_EQ(level_->batch_sizes, Sizes{2}) << "one re-check of both after delivery";
  level_->batch_sizes.clear();
  EXPECT_EQ(Take().size(), 2u);  // both readied by the re-check: confirmed together
  EXPECT_EQ(level_->batch_sizes, (Sizes{2, 2}));
  level_->batch_sizes.clear();
  level_->Set(5, kRecv);  // a fresh activity: 5 needs no confirmation any more, 6 alone does
  EXPECT_EQ(Take().size(), 2u);
  EXPECT_EQ(level_->batch_sizes, Sizes{2}) << "only the re-check after delivery";
  ASSERT_EQ(Ctl(KEVENT_CTL_REMOVE, a), static_cast<uint32_t>(KEVENT_RET_DONE));
  ASSERT_EQ(Ctl(KEVENT_CTL_REMOVE, b), static_cast<uint32_t>(KEVENT_RET_DONE));

  // LAST_CHECK requests, in and out of the count through MODIFY.
  ukevent c = Level(7, kRecv, KEVENT_REQ_LAST_CHECK | KEVENT_REQ_ET);
  ukevent d = Level(8, kRecv, KEVENT_REQ_LAST_CHECK | KEVENT_REQ_ET);
  Ctl(KEVENT_CTL_ADD, c);
  Ctl(KEVENT_CTL_ADD, d);
  level_->Set(7, kRecv);
  level_->Set(8, kRecv);
  level_->Set(7, kRecv);  // coalesced
  ukevent plain = Level(8, kRecv, KEVENT_REQ_ET);
  Ctl(KEVENT_CTL_MODIFY, plain);  // ready at once (the state holds), no LAST_CHECK
  level_->batch_sizes.clear();
  EXPECT_EQ(Take().size(), 2u);
  EXPECT_TRUE(level_->batch_sizes.empty()) << "one confirmation is not a batch";
  level_->Set(7, kRecv);
  Ctl(KEVENT_CTL_MODIFY, d);  // LAST_CHECK again, ready at once
  EXPECT_EQ(Take().size(), 2u);
  EXPECT_EQ(level_->batch_sizes, Sizes{2});
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

}  // namespace
}  // namespace kev::kevent_internal::test
