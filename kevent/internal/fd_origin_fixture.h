// kevent/internal/fd_origin_fixture.h: the fixture shared by the OS-origin tests (SOCKET, PIPE,
// POLL, AIO): a C-API queue on the backend named by the test parameter (KEV_BACKEND), helpers
// to register requests and collect events, and socket / pipe builders.
#ifndef KEV_KEVENT_INTERNAL_FD_ORIGIN_FIXTURE_H_
#define KEV_KEVENT_INTERNAL_FD_ORIGIN_FIXTURE_H_

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kevent/kevent.h"

namespace kev::kevent_internal::test {

inline constexpr uint32_t kDone = KEVENT_RET_DONE;
inline constexpr uint32_t kBrokenDone = KEVENT_RET_BROKEN | KEVENT_RET_DONE;
// Long enough never to expire on a loaded machine when the event is due; tests that expect
// nothing use kBrief and never assert on elapsed time.
inline constexpr timespec kLong = {10, 0};
inline constexpr timespec kBrief = {0, 50'000'000};
inline constexpr timespec kZero = {0, 0};

inline ukevent Req(uint32_t type, int fd, uint32_t event, uint32_t flags = 0, uint32_t user = 0) {
  ukevent uk{};
  uk.type = type;
  uk.id.raw[0] = static_cast<uint32_t>(fd);
  uk.event = event;
  uk.req_flags = flags;
  uk.user[0] = user;
  return uk;
}

inline void SetNonBlocking(int fd) {
  ASSERT_EQ(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

// A connected loopback TCP pair: {client, server}, both non-blocking.
inline void TcpPair(int out[2], int* listener_out = nullptr) {
  int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ASSERT_GE(l, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(l, 16), 0);
  socklen_t len = sizeof(a);
  ASSERT_EQ(getsockname(l, reinterpret_cast<sockaddr*>(&a), &len), 0);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(c, 0);
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  int s = -1;
  for (int i = 0; i < 1000 && s < 0; ++i) {
    s = accept4(l, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (s < 0) usleep(1000);
  }
  ASSERT_GE(s, 0);
  SetNonBlocking(c);
  out[0] = c;
  out[1] = s;
  if (listener_out != nullptr) {
    *listener_out = l;
  } else {
    close(l);
  }
}

class OriginTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    setenv("KEV_BACKEND", GetParam(), 1);
    kfd_ = kevent_init(nullptr, 0, 0);
    ASSERT_GE(kfd_, 0);
  }
  void TearDown() override {
    if (kfd_ >= 0) {
      EXPECT_EQ(kevent_close(kfd_), 0);
    }
    for (int fd : fds_) close(fd);
    unsetenv("KEV_BACKEND");
  }

  // fds closed at the end of the test.
  int Own(int fd) {
    fds_.push_back(fd);
    return fd;
  }
  void SocketPair(int sv[2]) {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    Own(sv[0]);
    Own(sv[1]);
  }
  void Pipe(int p[2]) {
    ASSERT_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    Own(p[0]);
    Own(p[1]);
  }
  // Closes an fd registered with Own before the end of the test.
  void CloseNow(int fd) {
    for (int& f : fds_) {
      if (f == fd) f = -1;
    }
    close(fd);
  }

  // Applies one ctl entry and returns it (ret_flags / ret_data filled).
  ukevent Ctl(unsigned cmd, ukevent uk, int kfd = -1) {
    EXPECT_EQ(kevent_ctl(kfd < 0 ? kfd_ : kfd, cmd, 1, &uk), 1);
    return uk;
  }
  ukevent Add(const ukevent& uk, int kfd = -1) { return Ctl(KEVENT_CTL_ADD, uk, kfd); }

  std::vector<ukevent> Get(unsigned min_nr, timespec timeout, unsigned max_nr = 64,
                           int kfd = -1) {
    std::vector<ukevent> out(max_nr);
    int n = kevent_get_events(kfd < 0 ? kfd_ : kfd, min_nr, max_nr, timeout, out.data(), 0);
    EXPECT_GE(n, 0);
    out.resize(n < 0 ? 0 : n);
    return out;
  }

  // Collects events (each wait up to `timeout`) until there are at least `n`; fewer if a wait
  // comes back empty (which fails the test).
  std::vector<ukevent> GetAtLeast(size_t n, timespec timeout) {
    std::vector<ukevent> all;
    while (all.size() < n) {
      std::vector<ukevent> more = Get(1, timeout);
      EXPECT_FALSE(more.empty()) << "got " << all.size() << " of " << n << " events";
      if (more.empty()) break;
      all.insert(all.end(), more.begin(), more.end());
    }
    return all;
  }

  static void Write(int fd, const std::string& s) {
    ASSERT_EQ(write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }
  // Reads everything available (non-blocking fd).
  static std::string Drain(int fd) {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
    return out;
  }

  int kfd_ = -1;
  std::vector<int> fds_;
};

}  // namespace kev::kevent_internal::test

#endif  // KEV_KEVENT_INTERNAL_FD_ORIGIN_FIXTURE_H_
