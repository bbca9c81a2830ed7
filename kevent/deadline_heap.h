// DeadlineHeap<T>: a binary min-heap of intrusive items ordered by deadline, with O(log n)
// removal of any item (each item remembers its position). Used by EpollPoller's timeouts.
//
// T must have two public fields the heap owns while the item is in it:
//   int64_t deadline_ns;  // set by the caller before Push, not changed while in the heap
//   size_t heap_index;    // maintained by the heap
//
// Example:
//   op->deadline_ns = now + 5'000'000;
//   heap.Push(op);
//   while (!heap.empty() && heap.top()->deadline_ns <= now) heap.Remove(heap.top());
//
// Not thread-safe; allocation only when the array grows (amortised). Items with equal
// deadlines come out in no particular order.
#ifndef KEV_KEVENT_DEADLINE_HEAP_H_
#define KEV_KEVENT_DEADLINE_HEAP_H_

#include <cstddef>
#include <utility>
#include <vector>

namespace kev::internal {

template <typename T>
class DeadlineHeap {
 public:
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  // The item with the earliest deadline. Precondition: !empty().
  T* top() const { return items_.front(); }

  // Inserts `item` (not in the heap).
  void Push(T* item) {
    item->heap_index = items_.size();
    items_.push_back(item);
    SiftUp(item->heap_index);
  }

  // Removes `item`, which must be in this heap.
  void Remove(T* item) {
    size_t i = item->heap_index;
    size_t last = items_.size() - 1;
    if (i != last) Swap(i, last);
    items_.pop_back();
    if (i != last) {
      SiftUp(i);
      SiftDown(i);
    }
  }

 private:
  void SiftUp(size_t i) {
    while (i > 0) {
      size_t parent = (i - 1) / 2;
      if (items_[parent]->deadline_ns <= items_[i]->deadline_ns) return;
      Swap(i, parent);
      i = parent;
    }
  }

  void SiftDown(size_t i) {
    for (;;) {
      size_t smallest = i;
      for (size_t child = 2 * i + 1; child <= 2 * i + 2 && child < items_.size(); ++child) {
        if (items_[child]->deadline_ns < items_[smallest]->deadline_ns) smallest = child;
      }
      if (smallest == i) return;
      Swap(i, smallest);
      i = smallest;
    }
  }

  void Swap(size_t a, size_t b) {
    std::swap(items_[a], items_[b]);
    items_[a]->heap_index = a;
    items_[b]->heap_index = b;
  }

  std::vector<T*> items_;
};

}  // namespace kev::internal

#endif  // KEV_KEVENT_DEADLINE_HEAP_H_
