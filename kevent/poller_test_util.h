// Shared by the Poller test files (poller_test.cc, poller_lifecycle_test.cc, and
// io_uring_poller_test.cc for the pool helpers): completion recorders, fd helpers, the
// receive pool's resident-page count and the parameterised fixture PollerTest, instantiated
// once (in poller_test.cc) for io_uring and for epoll.
#ifndef KEV_KEVENT_POLLER_TEST_UTIL_H_
#define KEV_KEVENT_POLLER_TEST_UTIL_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kevent/poller.h"

namespace kev::poller_testing {

// Records every completion; fails the test on anything after the final one.
class Recorder : public IoCompletion {
 public:
  struct Event {
    int32_t result;
    uint32_t flags;
  };
  void OnComplete(int32_t result, uint32_t flags) noexcept override {
    EXPECT_EQ(finals, 0) << "completion after the final one";
    events.push_back({result, flags});
    if ((flags & kCompletionMore) == 0) ++finals;
  }
  bool done() const { return finals > 0; }
  int32_t result() const { return events.empty() ? INT32_MIN : events.back().result; }
  std::vector<Event> events;
  int finals = 0;
};

// Deletes itself at its final completion: a second final would be a use-after-free (ASan).
class SelfDeleting final : public IoCompletion {
 public:
  explicit SelfDeleting(std::vector<int32_t>* finals) : finals_(finals) {}
  void OnComplete(int32_t result, uint32_t flags) noexcept override {
    if ((flags & kCompletionMore) != 0) return;
    finals_->push_back(result);
    delete this;
  }

 private:
  ~SelfDeleting() = default;
  std::vector<int32_t>* finals_;
};

inline std::span<std::byte> Bytes(void* p, size_t n) { return {static_cast<std::byte*>(p), n}; }
inline std::span<const std::byte> Bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// A temporary file, removed at the end of the test.
struct TempFile {
  TempFile() {
    const char* dir = std::getenv("TEST_TMPDIR");
    path = std::string(dir != nullptr ? dir : "/tmp") + "/poller_test_XXXXXX";
    fd = mkstemp(path.data());
  }
  ~TempFile() {
    if (fd >= 0) close(fd);
    unlink(path.c_str());
  }
  std::string path;
  int fd;
};

inline void SocketPair(int fds[2], int type = SOCK_STREAM) {
  ASSERT_EQ(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds), 0) << strerror(errno);
}

// A TCP listener on 127.0.0.1 (an ephemeral port).
inline int Listen(sockaddr_in* addr, bool nonblocking) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  *addr = {};
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof *addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(addr), len) != 0 || listen(fd, 256) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(addr), &len) != 0) {
    ADD_FAILURE() << "listen: " << strerror(errno);
  }
  return fd;
}

class PollerTest : public ::testing::TestWithParam<PollerBackend> {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);
    poller_ = Make(PollerOptions{});
  }

  std::unique_ptr<Poller> Make(const PollerOptions& options) {
    int error = 0;
    std::unique_ptr<Poller> poller = Poller::Create(GetParam(), options, &error);
    if (poller == nullptr && GetParam() == PollerBackend::kIoUring &&
        (error == -ENOSYS || error == -EPERM || error == -EOPNOTSUPP)) {
      skip_reason_ = std::string("io_uring unavailable here: ") + strerror(-error);
    } else {
      EXPECT_NE(poller, nullptr) << strerror(-error);
    }
    return poller;
  }

  // Drives `poller` until `done()` (bounded at 20 s so a bug fails instead of hanging; not a
  // timing assertion).
  static ::testing::AssertionResult Until(Poller& poller, const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) {
        return ::testing::AssertionFailure() << "timed out; in flight: " << poller.InFlight();
      }
      if (int r = poller.Wait(std::chrono::milliseconds(50)); r < 0) {
        return ::testing::AssertionFailure() << "Wait: " << strerror(-r);
      }
    }
    return ::testing::AssertionSuccess();
  }
  ::testing::AssertionResult Until(const std::function<bool()>& done) {
    return Until(*poller_, done);
  }

  std::unique_ptr<Poller> poller_;
  std::string skip_reason_;
};

#define SKIP_IF_UNAVAILABLE()                                \
  do {                                                       \
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_; \
    ASSERT_NE(poller_, nullptr);                             \
  } while (0)

// Which pool buffers have their page resident: buffers of exactly one page, and one mincore
// over the whole pool (both backends map it in one piece, buffer 0 first).
inline std::vector<bool> Resident(Poller& poller, unsigned count) {
  std::vector<unsigned char> in_core(count);
  EXPECT_EQ(mincore(poller.SelectedBuffer(0).data(), size_t{count} * 4096, in_core.data()), 0);
  std::vector<bool> resident(count);
  for (unsigned id = 0; id < count; ++id) resident[id] = (in_core[id] & 1) != 0;
  return resident;
}

inline size_t ResidentCount(Poller& poller, unsigned count) {
  std::vector<bool> resident = Resident(poller, count);
  return static_cast<size_t>(std::count(resident.begin(), resident.end(), true));
}

}  // namespace kev::poller_testing

#endif  // KEV_KEVENT_POLLER_TEST_UTIL_H_
