#include "kevent/deadline_heap.h"

#include <cstdint>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace kev::internal {
namespace {

struct Item {
  int64_t deadline_ns = 0;
  size_t heap_index = 0;
  bool in_heap = false;
};

TEST(DeadlineHeapTest, PopsInDeadlineOrder) {
  std::vector<Item> items(5);
  int64_t deadlines[] = {50, 10, 40, 20, 30};
  DeadlineHeap<Item> heap;
  for (size_t i = 0; i < items.size(); ++i) {
    items[i].deadline_ns = deadlines[i];
    heap.Push(&items[i]);
  }
  std::vector<int64_t> order;
  while (!heap.empty()) {
    order.push_back(heap.top()->deadline_ns);
    heap.Remove(heap.top());
  }
  EXPECT_EQ(order, (std::vector<int64_t>{10, 20, 30, 40, 50}));
}

// Random pushes and removals from the middle, checked against a multiset.
TEST(DeadlineHeapTest, MatchesMultisetUnderRandomRemovals) {
  std::mt19937 rng(42);
  std::vector<Item> items(2000);
  std::multiset<std::pair<int64_t, Item*>> model;
  DeadlineHeap<Item> heap;
  for (int step = 0; step < 20000; ++step) {
    Item& item = items[rng() % items.size()];
    if (item.in_heap) {
      heap.Remove(&item);
      model.erase(model.find({item.deadline_ns, &item}));
      item.in_heap = false;
    } else {
      item.deadline_ns = rng() % 1000;
      heap.Push(&item);
      model.insert({item.deadline_ns, &item});
      item.in_heap = true;
    }
    ASSERT_EQ(heap.size(), model.size());
    if (!heap.empty()) {
      ASSERT_EQ(heap.top()->deadline_ns, model.begin()->first);
    }
  }
}

}  // namespace
}  // namespace kev::internal
