// Poller tests: one parameterised suite, run on io_uring and on epoll, so both backends are held
// to the same contract (kevent/poller.h). Plus backend selection (parsing, environment,
// kDefault's fallback through the test hook).
#include "kevent/poller.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
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

namespace kev {
namespace {

using namespace std::chrono_literals;

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

std::span<std::byte> Bytes(void* p, size_t n) { return {static_cast<std::byte*>(p), n}; }
std::span<const std::byte> Bytes(const std::string& s) {
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

void SocketPair(int fds[2], int type = SOCK_STREAM) {
  ASSERT_EQ(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds), 0) << strerror(errno);
}

// A TCP listener on 127.0.0.1 (an ephemeral port).
int Listen(sockaddr_in* addr, bool nonblocking) {
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
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) {
        return ::testing::AssertionFailure() << "timed out; in flight: " << poller.InFlight();
      }
      if (int r = poller.Wait(50ms); r < 0) {
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

TEST_P(PollerTest, NameMatchesBackend) {
  SKIP_IF_UNAVAILABLE();
  EXPECT_EQ(poller_->backend(), GetParam());
  EXPECT_EQ(poller_->name(), GetParam() == PollerBackend::kIoUring ? "io_uring" : "epoll");
  EXPECT_EQ(poller_->Wait(0ns), 0);
}

TEST_P(PollerTest, PipeWriteThenRead) {
  SKIP_IF_UNAVAILABLE();
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);  // blocking on purpose: both backends must cope
  std::string msg = "hello";
  Recorder wrote, read;
  char buf[16] = {};
  poller_->Write(p[1], Bytes(msg), -1, &wrote);
  EXPECT_TRUE(wrote.events.empty()) << "completed inside the submitting call";
  ASSERT_TRUE(Until([&] { return wrote.done(); }));
  EXPECT_EQ(wrote.result(), 5);
  poller_->Read(p[0], Bytes(buf, sizeof buf), -1, &read);
  ASSERT_TRUE(Until([&] { return read.done(); }));
  EXPECT_EQ(read.result(), 5);
  EXPECT_STREQ(buf, "hello");
  EXPECT_EQ(poller_->InFlight(), 0u);
  close(p[0]);
  close(p[1]);
}

TEST_P(PollerTest, ReadWaitsForData) {
  SKIP_IF_UNAVAILABLE();
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  char buf[8];
  Recorder read;
  poller_->Read(p[0], Bytes(buf, sizeof buf), -1, &read);
  EXPECT_GE(poller_->Wait(0ns), 0);
  EXPECT_GE(poller_->Wait(1ms), 0);
  EXPECT_FALSE(read.done());
  EXPECT_EQ(poller_->InFlight(), 1u);
  ASSERT_EQ(write(p[1], "abc", 3), 3);
  ASSERT_TRUE(Until([&] { return read.done(); }));
  EXPECT_EQ(read.result(), 3);
  EXPECT_EQ(read.events.size(), 1u);
  close(p[0]);
  close(p[1]);
}

TEST_P(PollerTest, FileReadWriteAtOffsets) {
  SKIP_IF_UNAVAILABLE();
  TempFile file;
  ASSERT_GE(file.fd, 0);
  std::string all = "abcdef", patch = "XY";
  Recorder w1, w2;
  poller_->Write(file.fd, Bytes(all), 0, &w1);
  ASSERT_TRUE(Until([&] { return w1.done(); }));
  poller_->Write(file.fd, Bytes(patch), 2, &w2);
  ASSERT_TRUE(Until([&] { return w2.done(); }));
  EXPECT_EQ(w1.result(), 6);
  EXPECT_EQ(w2.result(), 2);
  char buf[16] = {};
  Recorder r1, eof;
  poller_->Read(file.fd, Bytes(buf, sizeof buf), 0, &r1);
  poller_->Read(file.fd, Bytes(buf + 8, 4), 100, &eof);
  EXPECT_TRUE(r1.events.empty()) << "regular-file I/O must still complete in Wait()";
  ASSERT_TRUE(Until([&] { return r1.done() && eof.done(); }));
  EXPECT_EQ(r1.result(), 6);
  EXPECT_EQ(std::string(buf, 6), "abXYef");
  EXPECT_EQ(eof.result(), 0);
}

TEST_P(PollerTest, SocketRecvSendAndMsg) {
  SKIP_IF_UNAVAILABLE();
  int s[2];
  SocketPair(s);
  char buf[32] = {};
  Recorder recv, send;
  poller_->Recv(s[0], Bytes(buf, sizeof buf), 0, &recv);
  std::string msg = "ping";
  poller_->Send(s[1], Bytes(msg), 0, &send);
  ASSERT_TRUE(Until([&] { return recv.done() && send.done(); }));
  EXPECT_EQ(send.result(), 4);
  EXPECT_EQ(recv.result(), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");

  // Scatter/gather: two iovecs each way.
  char a[] = "12", b[] = "345";
  iovec out[2] = {{a, 2}, {b, 3}};
  msghdr out_msg{};
  out_msg.msg_iov = out;
  out_msg.msg_iovlen = 2;
  char x[3] = {}, y[8] = {};
  iovec in[2] = {{x, 3}, {y, 8}};
  msghdr in_msg{};
  in_msg.msg_iov = in;
  in_msg.msg_iovlen = 2;
  Recorder recvmsg_done, sendmsg_done;
  poller_->RecvMsg(s[1], &in_msg, 0, &recvmsg_done);
  poller_->SendMsg(s[0], &out_msg, 0, &sendmsg_done);
  ASSERT_TRUE(Until([&] { return recvmsg_done.done() && sendmsg_done.done(); }));
  EXPECT_EQ(sendmsg_done.result(), 5);
  EXPECT_EQ(recvmsg_done.result(), 5);
  EXPECT_EQ(std::string(x, 3) + std::string(y, 2), "12345");
  close(s[0]);
  close(s[1]);
}

TEST_P(PollerTest, SeveralOperationsOnOneFdCoexist) {
  SKIP_IF_UNAVAILABLE();
  int s[2];
  SocketPair(s);
  char buf[8];
  Recorder recv, writable, send;
  std::string msg = "x";
  poller_->Recv(s[0], Bytes(buf, sizeof buf), 0, &recv);  // parks: nothing to read yet
  poller_->PollAdd(s[0], POLLOUT, false, &writable);      // ready at once
  poller_->Send(s[0], Bytes(msg), 0, &send);              // ready at once
  ASSERT_TRUE(Until([&] { return writable.done() && send.done(); }));
  EXPECT_TRUE(writable.result() & POLLOUT);
  EXPECT_EQ(send.result(), 1);
  EXPECT_FALSE(recv.done());
  ASSERT_EQ(write(s[1], "yz", 2), 2);
  ASSERT_TRUE(Until([&] { return recv.done(); }));
  EXPECT_EQ(recv.result(), 2);
  close(s[0]);
  close(s[1]);
}

TEST_P(PollerTest, TcpConnectAcceptSendRecv) {
  SKIP_IF_UNAVAILABLE();
  sockaddr_in addr;
  int listener = Listen(&addr, /*nonblocking=*/false);  // blocking listener: epoll polls first
  int client = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  Recorder accepted, connected;
  sockaddr_in peer{};
  socklen_t peer_len = sizeof peer;
  poller_->Accept(listener, reinterpret_cast<sockaddr*>(&peer), &peer_len, SOCK_CLOEXEC, false,
                  &accepted);
  poller_->Connect(client, reinterpret_cast<const sockaddr*>(&addr), sizeof addr, &connected);
  ASSERT_TRUE(Until([&] { return accepted.done() && connected.done(); }));
  ASSERT_GE(accepted.result(), 0) << strerror(-accepted.result());
  EXPECT_EQ(connected.result(), 0) << strerror(-connected.result());
  EXPECT_EQ(peer.sin_family, AF_INET);
  int server = accepted.result();
  std::string msg = "over tcp";
  char buf[16] = {};
  Recorder sent, got;
  poller_->Recv(server, Bytes(buf, sizeof buf), 0, &got);
  poller_->Send(client, Bytes(msg), 0, &sent);
  ASSERT_TRUE(Until([&] { return sent.done() && got.done(); }));
  EXPECT_EQ(got.result(), static_cast<int>(msg.size()));
  EXPECT_EQ(std::string(buf, msg.size()), msg);
  close(server);
  close(client);
  close(listener);
}

TEST_P(PollerTest, ConnectRefused) {
  SKIP_IF_UNAVAILABLE();
  sockaddr_in addr;
  int listener = Listen(&addr, false);
  close(listener);  // nothing listens on that port now
  int client = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  Recorder connected;
  poller_->Connect(client, reinterpret_cast<const sockaddr*>(&addr), sizeof addr, &connected);
  ASSERT_TRUE(Until([&] { return connected.done(); }));
  EXPECT_EQ(connected.result(), -ECONNREFUSED);
  close(client);
}

TEST_P(PollerTest, AcceptSingleShotHundredConnections) {
  SKIP_IF_UNAVAILABLE();
  sockaddr_in addr;
  int listener = Listen(&addr, /*nonblocking=*/true);
  constexpr int kCount = 100;
  std::vector<Recorder> accepts(kCount);
  for (Recorder& r : accepts) poller_->Accept(listener, nullptr, nullptr, SOCK_CLOEXEC, false, &r);
  std::vector<int> clients;
  for (int i = 0; i < kCount; ++i) {
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << strerror(errno);
    clients.push_back(c);
  }
  ASSERT_TRUE(Until([&] {
    for (const Recorder& r : accepts) {
      if (!r.done()) return false;
    }
    return true;
  }));
  for (Recorder& r : accepts) {
    ASSERT_EQ(r.events.size(), 1u);
    ASSERT_GE(r.result(), 0) << strerror(-r.result());
    close(r.result());
  }
  EXPECT_EQ(poller_->InFlight(), 0u);
  for (int c : clients) close(c);
  close(listener);
}

TEST_P(PollerTest, AcceptMultishotHundredConnections) {
  SKIP_IF_UNAVAILABLE();
  sockaddr_in addr;
  int listener = Listen(&addr, /*nonblocking=*/true);
  Recorder accepts;
  poller_->Accept(listener, nullptr, nullptr, SOCK_CLOEXEC, true, &accepts);
  constexpr size_t kCount = 100;
  std::vector<int> clients;
  for (size_t i = 0; i < kCount; ++i) {
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << strerror(errno);
    clients.push_back(c);
    if (i % 10 == 0) poller_->Wait(0ns);  // accept while connecting, too
  }
  ASSERT_TRUE(Until([&] { return accepts.events.size() >= kCount || accepts.done(); }));
  ASSERT_FALSE(accepts.done()) << "multishot accept ended: " << strerror(-accepts.result());
  EXPECT_EQ(accepts.events.size(), kCount);
  for (const Recorder::Event& e : accepts.events) {
    EXPECT_GE(e.result, 0);
    EXPECT_TRUE(e.flags & kCompletionMore);
    close(e.result);
  }
  poller_->Cancel(&accepts);
  ASSERT_TRUE(Until([&] { return accepts.done(); }));
  EXPECT_EQ(accepts.result(), -ECANCELED);
  EXPECT_EQ(poller_->InFlight(), 0u);
  for (int c : clients) close(c);
  close(listener);
}

TEST_P(PollerTest, SpliceFileToPipeToSocket) {
  SKIP_IF_UNAVAILABLE();
  TempFile file;
  std::string data(48 * 1024, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
  ASSERT_EQ(write(file.fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  int p[2], s[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s), 0);
  // The pipe-to-socket splice is submitted first, on an empty pipe: it must wait.
  Recorder out;
  poller_->Splice(p[0], -1, s[0], -1, 16 * 1024, 0, &out);
  EXPECT_GE(poller_->Wait(0ns), 0);
  EXPECT_FALSE(out.done());
  std::string received;
  int64_t offset = 0;
  bool first = true;
  while (offset < static_cast<int64_t>(data.size())) {
    Recorder in;
    poller_->Splice(file.fd, offset, p[1], -1, 16 * 1024, 0, &in);
    ASSERT_TRUE(Until([&] { return in.done(); }));
    ASSERT_GT(in.result(), 0) << strerror(-in.result());
    offset += in.result();
    int moved = 0;
    while (moved < in.result()) {
      Recorder again;
      Recorder& splice = first ? out : again;
      if (!first) poller_->Splice(p[0], -1, s[0], -1, in.result() - moved, 0, &again);
      first = false;
      ASSERT_TRUE(Until([&] { return splice.done(); }));
      ASSERT_GT(splice.result(), 0) << strerror(-splice.result());
      moved += splice.result();
      char buf[16 * 1024];
      for (int left = splice.result(); left > 0;) {
        ssize_t n = read(s[1], buf, sizeof buf);
        ASSERT_GT(n, 0);
        received.append(buf, n);
        left -= n;
      }
    }
  }
  EXPECT_EQ(received, data);
  for (int fd : {p[0], p[1], s[0], s[1]}) close(fd);
}

TEST_P(PollerTest, OpenAtStatxFsyncClose) {
  SKIP_IF_UNAVAILABLE();
  TempFile file;
  std::string path = file.path + ".new";
  Recorder opened;
  poller_->OpenAt(AT_FDCWD, path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &opened);
  EXPECT_TRUE(opened.events.empty()) << "completed inside the submitting call";
  ASSERT_TRUE(Until([&] { return opened.done(); }));
  ASSERT_GE(opened.result(), 0) << strerror(-opened.result());
  int fd = opened.result();
  std::string data = "0123456789";
  Recorder wrote, synced, stated, closed, missing;
  poller_->Write(fd, Bytes(data), 0, &wrote);
  ASSERT_TRUE(Until([&] { return wrote.done(); }));
  poller_->Fsync(fd, /*datasync=*/true, &synced);
  ASSERT_TRUE(Until([&] { return synced.done(); }));
  EXPECT_EQ(synced.result(), 0);
  struct statx st {};
  poller_->Statx(AT_FDCWD, path.c_str(), 0, STATX_SIZE, &st, &stated);
  ASSERT_TRUE(Until([&] { return stated.done(); }));
  EXPECT_EQ(stated.result(), 0);
  EXPECT_EQ(st.stx_size, data.size());
  poller_->Close(fd, &closed);
  ASSERT_TRUE(Until([&] { return closed.done(); }));
  EXPECT_EQ(closed.result(), 0);
  EXPECT_EQ(fcntl(fd, F_GETFD), -1) << "fd still open";
  struct statx none {};
  std::string nowhere = path + ".missing";
  poller_->Statx(AT_FDCWD, nowhere.c_str(), 0, STATX_SIZE, &none, &missing);
  ASSERT_TRUE(Until([&] { return missing.done(); }));
  EXPECT_EQ(missing.result(), -ENOENT);
  unlink(path.c_str());
}

TEST_P(PollerTest, TimeoutsExpireInDeadlineOrder) {
  SKIP_IF_UNAVAILABLE();
  std::vector<int> order;
  struct Tagged : IoCompletion {
    Tagged(int tag, std::vector<int>* order) : tag(tag), order(order) {}
    void OnComplete(int32_t result, uint32_t) noexcept override {
      EXPECT_EQ(result, -ETIME);
      order->push_back(tag);
    }
    int tag;
    std::vector<int>* order;
  } late(2, &order), early(1, &order), now(0, &order);
  poller_->Timeout(200ms, &late);
  poller_->Timeout(5ms, &early);
  poller_->Timeout(0ns, &now);
  ASSERT_TRUE(Until([&] { return order.size() == 3; }));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  Recorder forever;
  poller_->Timeout(std::chrono::hours(1), &forever);
  poller_->Wait(0ns);
  poller_->Cancel(&forever);
  ASSERT_TRUE(Until([&] { return forever.done(); }));
  EXPECT_EQ(forever.result(), -ECANCELED);
  EXPECT_EQ(poller_->InFlight(), 0u);
}

TEST_P(PollerTest, PollAddOneShot) {
  SKIP_IF_UNAVAILABLE();
  int s[2];
  SocketPair(s);
  Recorder readable;
  poller_->PollAdd(s[0], POLLIN, false, &readable);
  EXPECT_GE(poller_->Wait(0ns), 0);
  EXPECT_FALSE(readable.done());
  ASSERT_EQ(write(s[1], "a", 1), 1);
  ASSERT_TRUE(Until([&] { return readable.done(); }));
  EXPECT_TRUE(readable.result() & POLLIN);
  EXPECT_EQ(readable.events.size(), 1u);
  EXPECT_EQ(poller_->InFlight(), 0u);
  close(s[0]);
  close(s[1]);
}

TEST_P(PollerTest, PollAddMultishotIsLevelTriggered) {
  SKIP_IF_UNAVAILABLE();
  int s[2];
  SocketPair(s);
  Recorder readable;
  poller_->PollAdd(s[0], POLLIN, true, &readable);
  EXPECT_GE(poller_->Wait(0ns), 0);
  EXPECT_TRUE(readable.events.empty());
  ASSERT_EQ(write(s[1], "a", 1), 1);
  ASSERT_TRUE(Until([&] { return !readable.events.empty(); }));
  // Still readable: every Wait() reports it again, once.
  for (size_t i = 2; i <= 4; ++i) {
    EXPECT_GE(poller_->Wait(0ns), 0);
    ASSERT_EQ(readable.events.size(), i);
  }
  for (const Recorder::Event& e : readable.events) {
    EXPECT_TRUE(e.result & POLLIN);
    EXPECT_EQ(e.flags, kCompletionMore);
  }
  char c;
  ASSERT_EQ(read(s[0], &c, 1), 1);  // no longer readable: no more reports
  size_t before = readable.events.size();
  EXPECT_GE(poller_->Wait(0ns), 0);
  EXPECT_GE(poller_->Wait(1ms), 0);
  EXPECT_EQ(readable.events.size(), before);
  ASSERT_EQ(write(s[1], "b", 1), 1);  // readable again: reported again
  ASSERT_TRUE(Until([&] { return readable.events.size() > before; }));
  poller_->Cancel(&readable);
  ASSERT_TRUE(Until([&] { return readable.done(); }));
  EXPECT_EQ(readable.result(), -ECANCELED);
  EXPECT_EQ(readable.events.back().flags, 0u);
  EXPECT_EQ(poller_->InFlight(), 0u);
  close(s[0]);
  close(s[1]);
}

TEST_P(PollerTest, CancelPendingRecvCompletesOnce) {
  SKIP_IF_UNAVAILABLE();
  int s[2];
  SocketPair(s);
  std::vector<int32_t> finals;
  char buf[2][8];
  auto* submitted_then_waited = new SelfDeleting(&finals);
  auto* cancelled_before_wait = new SelfDeleting(&finals);
  poller_->Recv(s[0], Bytes(buf[0], 8), 0, submitted_then_waited);
  EXPECT_GE(poller_->Wait(0ns), 0);
  poller_->Cancel(submitted_then_waited);
  poller_->Recv(s[1], Bytes(buf[1], 8), 0, cancelled_before_wait);
  poller_->Cancel(cancelled_before_wait);  // never reached a Wait()
  EXPECT_TRUE(finals.empty()) << "Cancel must not complete inline";
  ASSERT_TRUE(Until([&] { return finals.size() == 2; }));
  EXPECT_EQ(finals, (std::vector<int32_t>{-ECANCELED, -ECANCELED}));
  EXPECT_EQ(poller_->InFlight(), 0u);
  for (int i = 0; i < 3; ++i) EXPECT_GE(poller_->Wait(1ms), 0);
  EXPECT_EQ(finals.size(), 2u);
  close(s[0]);
  close(s[1]);
}

TEST_P(PollerTest, CancelAfterCompletionGetsRealResult) {
  SKIP_IF_UNAVAILABLE();
  TempFile file;
  ASSERT_EQ(write(file.fd, "hello", 5), 5);
  char buf[8];
  Recorder read;
  poller_->Read(file.fd, Bytes(buf, sizeof buf), 0, &read);
  poller_->Cancel(&read);  // races with the read: either outcome, exactly once
  ASSERT_TRUE(Until([&] { return read.done(); }));
  EXPECT_TRUE(read.result() == 5 || read.result() == -ECANCELED) << read.result();
  EXPECT_EQ(read.events.size(), 1u);
  poller_->Cancel(&read);  // nothing in flight: a no-op
  EXPECT_GE(poller_->Wait(1ms), 0);
  EXPECT_EQ(read.events.size(), 1u);
}

TEST_P(PollerTest, CloseCancelsOperationsOnTheFd) {
  SKIP_IF_UNAVAILABLE();
  int s[2];
  SocketPair(s);
  char buf[8];
  Recorder recv, closed;
  poller_->Recv(s[0], Bytes(buf, sizeof buf), 0, &recv);
  EXPECT_GE(poller_->Wait(0ns), 0);
  poller_->Close(s[0], &closed);
  ASSERT_TRUE(Until([&] { return recv.done() && closed.done(); }));
  EXPECT_EQ(recv.result(), -ECANCELED);
  EXPECT_EQ(closed.result(), 0);
  EXPECT_EQ(poller_->InFlight(), 0u);
  close(s[1]);
}

TEST_P(PollerTest, WakeFromAnotherThreadEndsBlockingWait) {
  SKIP_IF_UNAVAILABLE();
  poller_->Wake();  // before the Wait(): the next one returns promptly
  EXPECT_GE(poller_->Wait(std::nullopt), 0);
  std::atomic<bool> done{false};
  std::thread waker([&] {
    for (int i = 0; i < 1000; ++i) {
      poller_->Wake();
      if (i % 100 == 0) std::this_thread::sleep_for(1ms);
    }
    done.store(true);
    poller_->Wake();
  });
  int waits = 0;
  while (!done.load()) {  // would hang (test timeout) if a Wake() were lost
    EXPECT_GE(poller_->Wait(std::nullopt), 0);
    ++waits;
  }
  waker.join();
  EXPECT_GE(waits, 1);
}

Poller* g_signal_poller = nullptr;
void WakeFromSignal(int) { g_signal_poller->Wake(); }

TEST_P(PollerTest, WakeFromSignalHandler) {
  SKIP_IF_UNAVAILABLE();
  g_signal_poller = poller_.get();
  struct sigaction sa {
  }, old{};
  sa.sa_handler = WakeFromSignal;
  sigaction(SIGUSR1, &sa, &old);
  pthread_t self = pthread_self();
  std::atomic<bool> waiting{false};
  std::thread signaller([&] {
    while (!waiting.load()) std::this_thread::yield();
    std::this_thread::sleep_for(10ms);
    pthread_kill(self, SIGUSR1);
  });
  waiting.store(true);
  EXPECT_GE(poller_->Wait(std::nullopt), 0);  // EINTR or the wake-up: either way it returns
  signaller.join();
  sigaction(SIGUSR1, &old, nullptr);
}

// Created on one thread, driven and destroyed on another (a reactor shard's usual life).
TEST_P(PollerTest, DrivenByAnotherThreadThanItsCreator) {
  SKIP_IF_UNAVAILABLE();
  std::thread shard([&] {
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    std::string msg = "moved";
    char buf[8] = {};
    Recorder wrote, read;
    poller_->Read(p[0], Bytes(buf, sizeof buf), -1, &read);
    poller_->Write(p[1], Bytes(msg), -1, &wrote);
    EXPECT_TRUE(Until([&] { return wrote.done() && read.done(); }));
    EXPECT_EQ(read.result(), 5);
    Recorder pending;
    poller_->Read(p[0], Bytes(buf, sizeof buf), -1, &pending);
    poller_.reset();  // on the driving thread, as the contract asks
    EXPECT_EQ(pending.result(), -ECANCELED);
    close(p[0]);
    close(p[1]);
  });
  shard.join();
}

// Without single_issuer, the driving thread may change between turns (the C API's queues).
TEST_P(PollerTest, SharedPollerDrivenByTurns) {
  SKIP_IF_UNAVAILABLE();
  std::unique_ptr<Poller> shared = Make(PollerOptions{.single_issuer = false});
  ASSERT_NE(shared, nullptr);
  int s[2];
  SocketPair(s);
  for (int turn = 0; turn < 3; ++turn) {
    std::thread driver([&] {
      char buf[4];
      Recorder recv;
      shared->Recv(s[0], Bytes(buf, sizeof buf), 0, &recv);
      EXPECT_EQ(write(s[1], "t", 1), 1);
      EXPECT_TRUE(Until(*shared, [&] { return recv.done(); }));
      EXPECT_EQ(recv.result(), 1);
    });
    driver.join();
  }
  Recorder pending;
  char buf[4];
  shared->Recv(s[0], Bytes(buf, sizeof buf), 0, &pending);
  shared.reset();  // on yet another thread
  EXPECT_EQ(pending.result(), -ECANCELED);
  close(s[0]);
  close(s[1]);
}

TEST_P(PollerTest, SmallQueueTakesThousandsOfOps) {
  SKIP_IF_UNAVAILABLE();
  std::unique_ptr<Poller> poller = Make(PollerOptions{.entries = 8});
  ASSERT_NE(poller, nullptr);
  TempFile file;
  constexpr int kReads = 1000;
  std::string data(kReads, '\0');
  for (int i = 0; i < kReads; ++i) data[i] = static_cast<char>(i * 7);
  ASSERT_EQ(write(file.fd, data.data(), kReads), kReads);
  std::vector<char> got(kReads);
  std::vector<Recorder> reads(kReads), timeouts(100), recvs(50);
  for (int i = 0; i < kReads; ++i) poller->Read(file.fd, Bytes(&got[i], 1), i, &reads[i]);
  for (Recorder& t : timeouts) poller->Timeout(0ns, &t);
  int s[2];
  SocketPair(s, SOCK_DGRAM);
  char buf[50];
  for (int i = 0; i < 50; ++i) poller->Recv(s[0], Bytes(&buf[i], 1), 0, &recvs[i]);
  EXPECT_EQ(poller->InFlight(), 1150u);
  for (int i = 0; i < 50; ++i) ASSERT_EQ(write(s[1], "r", 1), 1);
  ASSERT_TRUE(Until(*poller, [&] { return poller->InFlight() == 0; }));
  for (int i = 0; i < kReads; ++i) {
    ASSERT_EQ(reads[i].events.size(), 1u);
    ASSERT_EQ(reads[i].result(), 1);
  }
  EXPECT_EQ(std::string(got.begin(), got.end()), data);
  for (Recorder& t : timeouts) EXPECT_EQ(t.result(), -ETIME);
  for (Recorder& r : recvs) EXPECT_EQ(r.result(), 1);
  close(s[0]);
  close(s[1]);
}

TEST_P(PollerTest, TenThousandSocketsPolledAtOnce) {
  SKIP_IF_UNAVAILABLE();
  constexpr int kSockets = 10'000;
  rlimit limit;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_max < kSockets + 200) {
    GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << limit.rlim_max << " < " << kSockets + 200;
  }
  limit.rlim_cur = limit.rlim_max;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
  std::vector<int> fds(kSockets);
  for (int i = 0; i < kSockets; i += 2) SocketPair(&fds[i]);
  std::vector<Recorder> polls(kSockets);
  for (int i = 0; i < kSockets; ++i) poller_->PollAdd(fds[i], POLLIN, false, &polls[i]);
  EXPECT_GE(poller_->Wait(0ns), 0);
  EXPECT_EQ(poller_->InFlight(), static_cast<size_t>(kSockets));
  for (int i = 0; i < kSockets; ++i) ASSERT_EQ(write(fds[i ^ 1], "!", 1), 1);
  ASSERT_TRUE(Until([&] { return poller_->InFlight() == 0; }));
  for (const Recorder& r : polls) {
    ASSERT_EQ(r.events.size(), 1u);
    ASSERT_TRUE(r.result() & POLLIN);
  }
  for (int fd : fds) close(fd);
}

TEST_P(PollerTest, DestructionCompletesEverythingInFlight) {
  SKIP_IF_UNAVAILABLE();
  int s[2], p[2];
  SocketPair(s);
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  sockaddr_in addr;
  int listener = Listen(&addr, true);
  TempFile file;
  ASSERT_EQ(write(file.fd, "hello", 5), 5);
  char buf[4][8];
  Recorder recv0, recv1, pipe_read, timeout, poll, accept, file_read, late;
  // A callback that submits during destruction: that operation is refused with -ECANCELED.
  struct Resubmit : Recorder {
    void OnComplete(int32_t result, uint32_t flags) noexcept override {
      Recorder::OnComplete(result, flags);
      if (done()) poller->Recv(fd, Bytes(buf, sizeof buf), 0, late);
    }
    Poller* poller;
    int fd;
    char buf[8];
    Recorder* late;
  } resubmit;
  resubmit.poller = poller_.get();
  resubmit.fd = s[1];
  resubmit.late = &late;
  poller_->Recv(s[0], Bytes(buf[0], 8), 0, &recv0);
  poller_->Recv(s[1], Bytes(buf[1], 8), 0, &recv1);
  poller_->Read(p[0], Bytes(buf[2], 8), -1, &pipe_read);
  poller_->Timeout(std::chrono::hours(1), &timeout);
  poller_->PollAdd(s[0], POLLIN, true, &poll);
  poller_->Accept(listener, nullptr, nullptr, 0, true, &accept);
  EXPECT_GE(poller_->Wait(0ns), 0);
  poller_->Recv(s[0], Bytes(buf[3], 8), 0, &resubmit);
  poller_->Read(file.fd, Bytes(buf[3], 8), 0, &file_read);  // may finish before the cancel
  poller_.reset();
  for (Recorder* r : {&recv0, &recv1, &pipe_read, &timeout, &poll, &accept,
                      static_cast<Recorder*>(&resubmit), &late}) {
    EXPECT_EQ(r->finals, 1);
    EXPECT_EQ(r->result(), -ECANCELED);
  }
  EXPECT_EQ(file_read.finals, 1);
  EXPECT_TRUE(file_read.result() == 5 || file_read.result() == -ECANCELED);
  for (int fd : {s[0], s[1], p[0], p[1], listener}) close(fd);
}

INSTANTIATE_TEST_SUITE_P(Backends, PollerTest,
                         ::testing::Values(PollerBackend::kIoUring, PollerBackend::kEpoll),
                         [](const ::testing::TestParamInfo<PollerBackend>& info) {
                           return info.param == PollerBackend::kIoUring ? "IoUring" : "Epoll";
                         });

// --- Backend selection -----------------------------------------------------------------------

TEST(PollerBackendTest, ParsesNames) {
  EXPECT_EQ(ParsePollerBackend("io_uring"), PollerBackend::kIoUring);
  EXPECT_EQ(ParsePollerBackend("epoll"), PollerBackend::kEpoll);
  EXPECT_EQ(ParsePollerBackend("default"), PollerBackend::kDefault);
  EXPECT_EQ(ParsePollerBackend(""), std::nullopt);
  EXPECT_EQ(ParsePollerBackend("EPOLL"), std::nullopt);
  EXPECT_EQ(ParsePollerBackend("uring"), std::nullopt);
}

TEST(PollerBackendTest, ReadsEnvironment) {
  unsetenv("KEV_BACKEND");
  EXPECT_EQ(PollerBackendFromEnvironment(), PollerBackend::kDefault);
  setenv("KEV_BACKEND", "epoll", 1);
  EXPECT_EQ(PollerBackendFromEnvironment(), PollerBackend::kEpoll);
  setenv("KEV_BACKEND", "io_uring", 1);
  EXPECT_EQ(PollerBackendFromEnvironment(), PollerBackend::kIoUring);
  ::testing::internal::CaptureStderr();
  setenv("KEV_BACKEND", "kqueue", 1);
  EXPECT_EQ(PollerBackendFromEnvironment(), PollerBackend::kDefault);
  EXPECT_EQ(PollerBackendFromEnvironment(), PollerBackend::kDefault);
  std::string said = ::testing::internal::GetCapturedStderr();
  EXPECT_LE(std::count(said.begin(), said.end(), '\n'), 1) << said;  // once per process
  unsetenv("KEV_BACKEND");
}

TEST(PollerBackendTest, ExplicitIoUringReportsSetupFailure) {
  int error = 0;
  auto poller = Poller::Create(PollerBackend::kIoUring,
                               PollerOptions{.io_uring_setup_error_for_testing = -ENOSYS}, &error);
  EXPECT_EQ(poller, nullptr);
  EXPECT_EQ(error, -ENOSYS);
}

// In a child process, so "once per process" is observable: two fallbacks, one line.
TEST(PollerBackendDeathTest, DefaultFallsBackToEpollSayingSoOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        for (int i = 0; i < 2; ++i) {
          int error = 1;
          auto poller =
              Poller::Create(PollerBackend::kDefault,
                             PollerOptions{.io_uring_setup_error_for_testing = -EPERM}, &error);
          if (poller == nullptr || poller->backend() != PollerBackend::kEpoll || error != 0) {
            std::_Exit(1);
          }
        }
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0),
      "^kev: io_uring unavailable \\([^\n]*\\); using the epoll backend\n$");
}

}  // namespace
}  // namespace kev
