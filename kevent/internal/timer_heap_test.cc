// The timer heap against a simple reference, and its cost at a million timers.
#include "kevent/internal/timer_heap.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace kev::kevent_internal {
namespace {

std::unique_ptr<Request> NewRequest(int64_t deadline) {
  auto r = std::make_unique<Request>(ukevent{});
  r->timer_deadline_ns = deadline;
  return r;
}

TEST(TimerHeapTest, PopsInDeadlineOrderThenArmingOrder) {
  TimerHeap heap;
  auto a = NewRequest(30);
  auto b = NewRequest(10);
  auto c = NewRequest(20);
  auto d = NewRequest(10);
  for (Request* r : {a.get(), b.get(), c.get(), d.get()}) heap.Arm(r);
  EXPECT_EQ(*heap.NextDeadline(), 10);
  EXPECT_EQ(heap.PopDue(5), nullptr);
  EXPECT_EQ(heap.PopDue(100), b.get());  // armed before d
  EXPECT_EQ(heap.PopDue(100), d.get());
  EXPECT_EQ(heap.PopDue(100), c.get());
  EXPECT_EQ(heap.PopDue(29), nullptr);
  EXPECT_EQ(heap.PopDue(30), a.get());
  EXPECT_TRUE(heap.empty());
  EXPECT_FALSE(a->timer_armed());
}

TEST(TimerHeapTest, RandomArmCancelMatchesAReference) {
  std::mt19937 rng(12345);
  TimerHeap heap;
  std::vector<std::unique_ptr<Request>> requests;
  std::set<std::pair<int64_t, Request*>> reference;  // deadlines are unique here
  for (int i = 0; i < 2000; ++i) requests.push_back(NewRequest(0));
  for (int step = 0; step < 50000; ++step) {
    Request* r = requests[rng() % requests.size()].get();
    if (r->timer_armed()) {
      reference.erase({r->timer_deadline_ns, r});
      heap.Cancel(r);
    } else {
      r->timer_deadline_ns = static_cast<int64_t>(rng()) * 4096 + step;
      reference.insert({r->timer_deadline_ns, r});
      heap.Arm(r);
    }
    ASSERT_EQ(heap.size(), reference.size());
    if (!reference.empty()) {
      ASSERT_EQ(*heap.NextDeadline(), reference.begin()->first);
    }
  }
  while (!reference.empty()) {
    Request* r = heap.PopDue(INT64_MAX);
    ASSERT_EQ(r, reference.begin()->second);
    reference.erase(reference.begin());
  }
  EXPECT_TRUE(heap.empty());
}

TEST(TimerHeapTest, MillionArmedThenCancelledInRandomOrder) {
#ifdef KEV_SANITIZER
  constexpr int kCount = 200'000;
#else
  constexpr int kCount = 1'000'000;
#endif
  std::deque<Request> requests;  // stable addresses, no copies
  std::mt19937 rng(7);
  for (int i = 0; i < kCount; ++i) requests.emplace_back(ukevent{});
  TimerHeap heap;
  for (Request& r : requests) {
    r.timer_deadline_ns = rng();
    heap.Arm(&r);
  }
  std::vector<Request*> order;
  for (Request& r : requests) order.push_back(&r);
  std::shuffle(order.begin(), order.end(), rng);
  for (Request* r : order) heap.Cancel(r);
  EXPECT_TRUE(heap.empty());
}

// Arming at or after every deadline appends without sifting; the bound it uses goes stale when
// entries leave (pops, cancels, an emptied heap), which must not misplace a later Arm.
TEST(TimerHeapTest, ArmingAfterEveryDeadlineAndAfterRemovals) {
  TimerHeap heap;
  auto a = NewRequest(10);
  auto b = NewRequest(20);
  auto c = NewRequest(30);
  auto d = NewRequest(30);  // a tie with the latest: after it (arming order)
  for (Request* r : {a.get(), b.get(), c.get(), d.get()}) heap.Arm(r);
  EXPECT_EQ(heap.PopDue(10), a.get());
  heap.Cancel(d.get());
  heap.Cancel(c.get());             // the latest deadlines are gone; the bound still says 30
  auto e = NewRequest(25);
  EXPECT_FALSE(heap.Arm(e.get()));  // after 20: the general path
  auto f = NewRequest(15);
  EXPECT_TRUE(heap.Arm(f.get()));   // the new earliest
  EXPECT_EQ(heap.PopDue(100), f.get());
  EXPECT_EQ(heap.PopDue(100), b.get());
  EXPECT_EQ(heap.PopDue(100), e.get());
  EXPECT_TRUE(heap.empty());
  auto g = NewRequest(5);           // below every deadline ever armed, into an empty heap
  EXPECT_TRUE(heap.Arm(g.get()));
  auto h = NewRequest(5);
  auto i = NewRequest(7);
  EXPECT_FALSE(heap.Arm(h.get()));
  EXPECT_FALSE(heap.Arm(i.get()));
  EXPECT_EQ(heap.PopDue(100), g.get());
  EXPECT_EQ(heap.PopDue(100), h.get());
  EXPECT_EQ(heap.PopDue(100), i.get());
  EXPECT_FALSE(g->timer_armed() || h->timer_armed() || i->timer_armed());
}

// Cancelling in arming order leaves tombstones at the front, where no pop removes them: the
// rebuild keeps the array within kTombstoneRatio + 1 entries per armed timer, and the survivors
// still fire in order.
TEST(TimerHeapTest, TombstonesAtTheFrontAreBoundedAndSurvivorsKeepTheirOrder) {
  constexpr int kCount = 10'000;
  std::deque<Request> requests;
  for (int i = 0; i < kCount; ++i) requests.emplace_back(ukevent{});
  TimerHeap heap;
  for (int i = 0; i < kCount; ++i) {
    requests[i].timer_deadline_ns = i / 3;  // ties too: arming order breaks them
    heap.Arm(&requests[i]);
  }
  bool rebuilt = false;
  for (int i = 0; i < kCount - 100; ++i) {
    const size_t before = heap.entries();
    heap.Cancel(&requests[i]);
    ASSERT_FALSE(requests[i].timer_armed());
    const size_t bound = (TimerHeap::kTombstoneRatio + 1) * heap.size();
    ASSERT_LE(heap.entries(), std::max<size_t>(bound, 64));
    rebuilt |= heap.entries() < before;  // only a rebuild shrinks it: the back stays armed
  }
  EXPECT_TRUE(rebuilt);
  EXPECT_EQ(heap.size(), 100u);
  for (int i = kCount - 100; i < kCount; ++i) {
    ASSERT_EQ(heap.PopDue(INT64_MAX), &requests[i]);
  }
  EXPECT_TRUE(heap.empty());
}

// Cancelled entries stay in the heap as tombstones: a cancelled request may be freed at once,
// and PopDue / compaction must never touch it (ASan would see it).
TEST(TimerHeapTest, CancelledRequestsMayBeFreedWhileTheirEntriesRemain) {
  std::mt19937 rng(99);
  TimerHeap heap;
  std::vector<std::unique_ptr<Request>> armed;
  std::set<std::pair<int64_t, Request*>> reference;
  int64_t now = 0;
  for (int step = 0; step < 100000; ++step) {
    const unsigned op = rng() % 8;
    if (op < 4 || armed.empty()) {
      auto r = NewRequest(now + static_cast<int64_t>(rng() % 1000));
      heap.Arm(r.get());
      reference.insert({r->timer_deadline_ns, r.get()});
      armed.push_back(std::move(r));
    } else if (op < 7) {
      const size_t i = rng() % armed.size();
      Request* r = armed[i].get();
      if (r->timer_armed()) {
        reference.erase({r->timer_deadline_ns, r});
        heap.Cancel(r);
      }
      std::swap(armed[i], armed.back());
      armed.pop_back();  // freed while its tombstone may still be in the heap
    } else {
      now += static_cast<int64_t>(rng() % 50);
      while (Request* r = heap.PopDue(now)) {
        ASSERT_FALSE(reference.empty());
        ASSERT_LE(r->timer_deadline_ns, now);
        // Equal deadlines fire in arming order; the reference only orders by address there.
        auto it = reference.begin();
        ASSERT_EQ(it->first, r->timer_deadline_ns);
        ASSERT_EQ(reference.erase({r->timer_deadline_ns, r}), 1u);
      }
      ASSERT_TRUE(reference.empty() || reference.begin()->first > now);
    }
    ASSERT_EQ(heap.size(), reference.size());
  }
}

TEST(TimerHeapTest, ArmTellsWhetherItBecameTheEarliest) {
  TimerHeap heap;
  auto a = NewRequest(100);
  auto b = NewRequest(200);
  auto c = NewRequest(50);
  EXPECT_TRUE(heap.Arm(a.get()));
  EXPECT_FALSE(heap.Arm(b.get()));
  EXPECT_TRUE(heap.TakeEarlierArmed());
  EXPECT_FALSE(heap.TakeEarlierArmed());
  heap.Cancel(a.get());  // a tombstone at 100 stays on top until looked at
  auto d = NewRequest(150);
  EXPECT_FALSE(heap.Arm(d.get()));  // a sleeper's deadline is <= 100 already
  EXPECT_EQ(*heap.NextDeadline(), 150);
  EXPECT_TRUE(heap.Arm(c.get()));
  EXPECT_EQ(heap.size(), 3u);
}

}  // namespace
}  // namespace kev::kevent_internal
