// kevent/internal/intrusive_list.h: a minimal intrusive doubly linked list.
//
// The queue keeps requests on several lists at once (ready list, storage list, waiters) without
// allocating per link, so an event can be readied, delivered and re-armed with no allocation.
// A node knows whether it is linked, which lets the queue unlink it from wherever it is in O(1).
//
// Example:
//   struct Item { kev::kevent_internal::ListHook hook; int v; };
//   kev::kevent_internal::IntrusiveList<Item, &Item::hook> list;
//   Item a{.v = 1};
//   list.PushBack(&a);   // list.front() == &a
//   list.Remove(&a);     // a.hook.linked() == false
//
// Not thread-safe: the owner (the queue, under its lock) serialises all use.
#ifndef KEV_KEVENT_INTERNAL_INTRUSIVE_LIST_H_
#define KEV_KEVENT_INTERNAL_INTRUSIVE_LIST_H_

#include <cstddef>

#include "kevent/internal/check.h"

namespace kev::kevent_internal {

// Embedded in each element; an element may be on one list per hook. `owner` points back at the
// element (set on insertion), which avoids container_of arithmetic on non-standard-layout types.
struct ListHook {
  ListHook* prev = nullptr;
  ListHook* next = nullptr;
  void* owner = nullptr;
  bool linked() const { return next != nullptr; }
};

// A list of T linked through the member `Hook`. Does not own its elements: they must be removed
// (or the list abandoned) before they are destroyed.
template <typename T, ListHook T::*Hook>
class IntrusiveList {
 public:
  IntrusiveList() { head_.prev = head_.next = &head_; }
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;

  bool empty() const { return head_.next == &head_; }
  size_t size() const { return size_; }

  T* front() const { return empty() ? nullptr : FromHook(head_.next); }
  // The element after `t`, or nullptr at the end.
  T* next(T* t) const {
    ListHook* n = (t->*Hook).next;
    return n == &head_ ? nullptr : FromHook(n);
  }

  void PushBack(T* t) {
    ListHook* h = &(t->*Hook);
    KEV_CHECK(!h->linked());
    h->owner = t;
    h->prev = head_.prev;
    h->next = &head_;
    head_.prev->next = h;
    head_.prev = h;
    ++size_;
  }

  // `t` must be on this list.
  void Remove(T* t) {
    ListHook* h = &(t->*Hook);
    KEV_CHECK(h->linked());
    h->prev->next = h->next;
    h->next->prev = h->prev;
    h->prev = h->next = nullptr;
    --size_;
  }

  T* PopFront() {
    T* t = front();
    if (t != nullptr) Remove(t);
    return t;
  }

 private:
  static T* FromHook(ListHook* h) { return static_cast<T*>(h->owner); }

  ListHook head_;
  size_t size_ = 0;
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_INTRUSIVE_LIST_H_
