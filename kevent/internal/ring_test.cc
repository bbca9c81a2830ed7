// The ring's commit protocol (KEVENT_SPEC.md, kevent_commit).
#include "kevent/internal/ring.h"

#include <atomic>
#include <cerrno>
#include <vector>

#include "gtest/gtest.h"

namespace kev::kevent_internal {
namespace {

class RingTest : public ::testing::Test {
 protected:
  explicit RingTest(unsigned num = 8)
      : mem_(sizeof(kevent_ring) + num * sizeof(ukevent)),
        user_(reinterpret_cast<kevent_ring*>(mem_.data())),
        ring_(user_, num) {}

  ukevent Event(uint32_t id) {
    ukevent ev{};
    ev.id.raw[0] = id;
    return ev;
  }
  unsigned Kidx() {
    return std::atomic_ref<unsigned>(user_->ring_kidx).load(std::memory_order_acquire);
  }
  unsigned Over() {
    return std::atomic_ref<unsigned>(user_->ring_over).load(std::memory_order_acquire);
  }

  std::vector<char> mem_;
  kevent_ring* user_;
  Ring ring_;
};

TEST_F(RingTest, PutFillsEverySlotThenRefuses) {
  for (uint32_t i = 0; i < 8; ++i) ASSERT_TRUE(ring_.Put(Event(i)));
  EXPECT_FALSE(ring_.Put(Event(99)));
  EXPECT_EQ(ring_.space(), 0u);
  EXPECT_EQ(Kidx(), 0u);
  for (uint32_t i = 0; i < 8; ++i) EXPECT_EQ(user_->event[i].id.raw[0], i);
}

TEST_F(RingTest, ForwardCommitFreesSlots) {
  for (uint32_t i = 0; i < 5; ++i) ring_.Put(Event(i));
  EXPECT_EQ(ring_.Commit(3, 0), 3);
  EXPECT_EQ(ring_.uidx(), 3u);
  EXPECT_EQ(ring_.Commit(3, 0), 0);  // nothing more up to 3
  EXPECT_EQ(ring_.Commit(5, 0), 2);
  EXPECT_EQ(ring_.space(), 8u);
  EXPECT_EQ(Over(), 0u);
}

TEST_F(RingTest, CommitBehindUidxIsAWrapAndCountsAnOverflow) {
  for (uint32_t i = 0; i < 6; ++i) ring_.Put(Event(i));
  EXPECT_EQ(ring_.Commit(6, 0), 6);
  for (uint32_t i = 6; i < 10; ++i) ring_.Put(Event(i));  // slots 6, 7, 0, 1
  EXPECT_EQ(Kidx(), 2u);
  EXPECT_EQ(ring_.Commit(2, 0), 4);
  EXPECT_EQ(Over(), 1u);
  EXPECT_EQ(ring_.over(), 1u);
  EXPECT_EQ(ring_.uidx(), 2u);
}

TEST_F(RingTest, SecondCommitOfTheSameSlotsAfterAWrapFreesNothing) {
  for (uint32_t i = 0; i < 6; ++i) ring_.Put(Event(i));
  ring_.Commit(6, 0);
  for (uint32_t i = 6; i < 10; ++i) ring_.Put(Event(i));
  const unsigned seen_over = Over();
  EXPECT_EQ(ring_.Commit(2, seen_over), 4);  // first thread
  EXPECT_EQ(ring_.Commit(2, seen_over), 0);  // second thread, same view: loses
  EXPECT_EQ(ring_.Commit(1, seen_over), 0);  // even naming fewer slots: no second wrap
  for (uint32_t i = 10; i < 13; ++i) ring_.Put(Event(i));  // slots 2, 3, 4
  // A stale forward move is ambiguous: re-read ring_over and retry.
  EXPECT_EQ(ring_.Commit(5, seen_over), -EOVERFLOW);
  EXPECT_EQ(ring_.Commit(5, Over()), 3);
}

TEST_F(RingTest, BadCommitsAreRejected) {
  for (uint32_t i = 0; i < 3; ++i) ring_.Put(Event(i));
  EXPECT_EQ(ring_.Commit(8, 0), -EINVAL);           // new_uidx >= num
  EXPECT_EQ(ring_.Commit(2, 5), -EOVERFLOW);        // over far off
  EXPECT_EQ(ring_.Commit(2, 0u - 2u), -EOVERFLOW);  // ring_over - 2
  EXPECT_EQ(ring_.Commit(4, 0), -EINVAL);           // beyond ring_kidx: never written
  EXPECT_EQ(ring_.Commit(3, 0), 3);
}

TEST_F(RingTest, FullRingIsFreedInTwoCommits) {
  for (uint32_t i = 0; i < 8; ++i) ring_.Put(Event(i));
  // kidx == uidx: committing uidx itself names no slot, so free up to kidx - 1, then kidx.
  EXPECT_EQ(ring_.Commit(0, 0), 0);
  EXPECT_EQ(ring_.Commit(7, 0), 7);
  EXPECT_EQ(ring_.Commit(0, 0), 1);
  EXPECT_EQ(ring_.space(), 8u);
  EXPECT_EQ(Over(), 1u);
}

TEST_F(RingTest, ManyLapsKeepContentsAndCountOverflows) {
  uint32_t next = 0;
  uint32_t expect = 0;
  unsigned uidx = 0;
  for (int step = 0; step < 5000; ++step) {
    const unsigned batch = 1 + step % 7;
    for (unsigned i = 0; i < batch; ++i) ASSERT_TRUE(ring_.Put(Event(next++)));
    const unsigned kidx = Kidx();
    for (unsigned i = 0; i < batch; ++i) {
      ASSERT_EQ(user_->event[(uidx + i) % 8].id.raw[0], expect++);
    }
    ASSERT_EQ(ring_.Commit(kidx, Over()), static_cast<int>(batch));
    uidx = kidx;
  }
  EXPECT_EQ(Over(), next / 8);
}

TEST(RingNoRingTest, CommitWithoutRingIsEinval) {
  Ring ring(nullptr, 0);
  EXPECT_FALSE(ring.present());
  EXPECT_EQ(ring.Commit(0, 0), -EINVAL);
  ukevent ev{};
  EXPECT_FALSE(ring.Put(ev));
  EXPECT_EQ(ring.space(), 0u);
}

}  // namespace
}  // namespace kev::kevent_internal
