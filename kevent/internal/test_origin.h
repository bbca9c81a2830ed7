// kevent/internal/test_origin.h: test doubles for the queue core: a manual clock, an observer
// that records what the queue reports, and a level-triggered origin whose objects' readiness
// the test sets by hand (the shape SOCKET / PIPE / POLL will have).
#ifndef KEV_KEVENT_INTERNAL_TEST_ORIGIN_H_
#define KEV_KEVENT_INTERNAL_TEST_ORIGIN_H_

#include <cerrno>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "kevent/internal/origin.h"
#include "kevent/internal/queue.h"

namespace kev::kevent_internal {

class ManualClock final : public Clock {
 public:
  int64_t NowNs() override { return now_ns; }
  void Advance(int64_t ns) { now_ns += ns; }
  int64_t now_ns = 1'000'000'000'000;  // 1000 s
};

class RecordingObserver final : public QueueObserver {
 public:
  void OnReady(bool wake_all) override {
    ++ready_calls;
    if (wake_all) ++wake_all_calls;
  }
  void OnReadyListChanged(bool nonempty) override {
    readable = nonempty;
    ++transitions;
  }
  void OnTimerArmed() override { ++timer_armed; }

  int ready_calls = 0;
  int wake_all_calls = 0;
  bool readable = false;
  int transitions = 0;
  int timer_armed = 0;
};

// Objects are numbered by id.raw[0]; each has a readiness state (event bits) and a storage.
// Enqueue fails with EINVAL for event 0 and EBADF for id.raw[0] == 0 (a "bad fd").
class FakeLevelOrigin final : public Origin {
 public:
  struct Object {
    Storage storage;
    uint32_t state = 0;
    int error = 0;  // Check fails with it when set
  };

  Object& object(uint32_t id) {
    auto& slot = objects_[id];
    if (slot == nullptr) slot = std::make_unique<Object>();
    return *slot;
  }

  int Enqueue(Request& r) override {
    if (r.uk.event == 0) return -EINVAL;
    if (r.uk.id.raw[0] == 0) return -EBADF;
    object(r.uk.id.raw[0]).storage.Attach(r);
    return Check(r);
  }
  void Dequeue(Request& r) override {
    if (r.storage != nullptr) r.storage->Detach(r);
  }
  int Check(Request& r) override {
    ++checks;
    Object& o = object(r.uk.id.raw[0]);
    if (o.error != 0) return -o.error;
    const uint32_t hit = o.state & r.uk.event;
    r.uk.ret_data[0] = hit;
    return hit != 0 ? 1 : 0;
  }
  // Counts the batches (the queue's pre-delivery confirmations and re-checks), then Checks each.
  void CheckMany(Request* const* rs, int* rcs, size_t n) override {
    batch_sizes.push_back(n);
    Origin::CheckMany(rs, rcs, n);
  }
  bool level_triggered() const override { return true; }

  // Sets object id's state and reports the activity (like a poll completion would).
  int Set(uint32_t id, uint32_t state) {
    Object& o = object(id);
    o.state = state;
    return state != 0 ? o.storage.Ready(state) : 0;
  }

  int checks = 0;
  std::vector<size_t> batch_sizes;  // n of each CheckMany call

 private:
  std::map<uint32_t, std::unique_ptr<Object>> objects_;
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_TEST_ORIGIN_H_
