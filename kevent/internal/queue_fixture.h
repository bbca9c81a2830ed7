// kevent/internal/queue_fixture.h: the fixture shared by the queue core's tests: a Queue on a
// manual clock with a recording observer and the fake level-triggered origin as KEVENT_POLL.
#ifndef KEV_KEVENT_INTERNAL_QUEUE_FIXTURE_H_
#define KEV_KEVENT_INTERNAL_QUEUE_FIXTURE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "kevent/internal/queue.h"
#include "kevent/internal/test_origin.h"

namespace kev::kevent_internal::test {

inline constexpr int64_t kMs = 1'000'000;
inline constexpr int64_t kSec = 1'000'000'000;
inline constexpr uint32_t kRecv = KEVENT_SOCKET_RECV;
inline constexpr uint32_t kSend = KEVENT_SOCKET_SEND;

inline ukevent Unotify(uint32_t id, uint32_t flags = 0, uint32_t user = 0) {
  ukevent uk{};
  uk.type = KEVENT_UNOTIFY;
  uk.event = 1;
  uk.id.raw[0] = id;
  uk.req_flags = flags;
  uk.user[0] = user;
  return uk;
}

inline ukevent Timer(uint32_t sec, uint32_t nsec, uint32_t flags = 0) {
  ukevent uk{};
  uk.type = KEVENT_TIMER;
  uk.event = KEVENT_TIMER_FIRED;
  uk.id.raw[0] = sec;
  uk.id.raw[1] = nsec;
  uk.req_flags = flags;
  return uk;
}

// A request of the fake level-triggered origin (installed as KEVENT_POLL).
inline ukevent Level(uint32_t object, uint32_t event, uint32_t flags = 0, uint32_t user = 0) {
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

}  // namespace kev::kevent_internal::test

#endif  // KEV_KEVENT_INTERNAL_QUEUE_FIXTURE_H_
