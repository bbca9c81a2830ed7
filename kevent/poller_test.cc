// Poller tests, part 1: every operation, on io_uring and on epoll (one parameterised suite,
// PollerTest, shared with poller_lifecycle_test.cc and instantiated here for both backends).
#include "kevent/poller_test_util.h"

namespace kev::poller_testing {
namespace {

using namespace std::chrono_literals;

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

}  // namespace

INSTANTIATE_TEST_SUITE_P(Backends, PollerTest,
                         ::testing::Values(PollerBackend::kIoUring, PollerBackend::kEpoll),
                         [](const ::testing::TestParamInfo<PollerBackend>& info) {
                           return info.param == PollerBackend::kIoUring ? "IoUring" : "Epoll";
                         });

}  // namespace kev::poller_testing
