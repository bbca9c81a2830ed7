// A connection's receive stays armed between reads where the poller can (io_uring multishot
// recv on the provided-buffer ring; Poller::RecvBufferSelectMultishot), so bytes may arrive
// while nobody reads. Checked on both backends (epoll re-arms per read; the results must be the
// same): arrivals between reads are kept in order, a peer that outruns the reader pauses the
// receive (bounded memory, the shard's pool not drained) and it resumes on the next read, end
// of stream and Close with the receive armed.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "net/connection.h"
#include "net/internal/test_loop.h"

namespace kev::net {
namespace {

using internal::TestLoop;

std::string Text(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

class ConnectionMultishotTest : public testing::TestWithParam<PollerBackend> {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    conn_ = Connection::Adopt(fds[0]);
    peer_ = fds[1];
  }
  void TearDown() override {
    if (peer_ >= 0) ::close(peer_);
    if (conn_.valid()) loop_.Run(conn_.Close());
  }

  // Writes `text` from the peer (blocking: the socket pair's buffer takes it or the test hangs
  // visibly) and turns the loop until the connection has seen it.
  void PeerWrite(const std::string& text) {
    ASSERT_EQ(::write(peer_, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    loop_.TurnUntilIdle();
  }

  TestLoop loop_{GetParam()};
  Connection conn_;
  int peer_ = -1;
};

INSTANTIATE_TEST_SUITE_P(Backends, ConnectionMultishotTest,
                         testing::Values(PollerBackend::kIoUring, PollerBackend::kEpoll),
                         internal::BackendName);

TEST_P(ConnectionMultishotTest, ArrivalsBetweenReadsAreKeptInOrder) {
  Future<std::span<const std::byte>> first = conn_.ReadSome();
  PeerWrite("first");
  EXPECT_EQ(Text(loop_.Run(std::move(first))), "first");
  // Not consumed yet, and no read waiting: these arrive (io_uring) or wait in the socket
  // (epoll), in separate segments.
  PeerWrite("second");
  PeerWrite("third");
  std::span<const std::byte> now = loop_.Run(conn_.ReadSome());  // what is buffered, at once
  EXPECT_EQ(Text(now).substr(0, 5), "first") << "buffered bytes come first";
  std::string rest = Text(now).substr(5);
  conn_.Consume(now.size());
  while (rest.size() < 11) {
    std::span<const std::byte> got = loop_.Run(conn_.ReadSome());
    rest += Text(got);
    conn_.Consume(got.size());
  }
  EXPECT_EQ(rest, "secondthird");
  // And the receive still works afterwards, one message at a time.
  for (int i = 0; i < 100; ++i) {
    Future<std::span<const std::byte>> next = conn_.ReadSome();
    std::string m = "m" + std::to_string(i);
    ASSERT_EQ(::write(peer_, m.data(), m.size()), static_cast<ssize_t>(m.size()));
    std::span<const std::byte> got = loop_.Run(std::move(next));
    EXPECT_EQ(Text(got), "m" + std::to_string(i));
    conn_.Consume(got.size());
  }
}

TEST_P(ConnectionMultishotTest, PeerThatOutrunsTheReaderPausesTheReceive) {
  Poller& poller = loop_.poller();
  Future<std::span<const std::byte>> first = conn_.ReadSome();
  PeerWrite("x");
  EXPECT_EQ(Text(loop_.Run(std::move(first))), "x");
  conn_.Consume(1);
  // Nobody reads now; the peer sends 1 MiB, numbered, as far as the socket takes it.
  std::string all;
  for (int i = 0; all.size() < (1u << 20); ++i) all += std::to_string(i) + ",";
  ASSERT_EQ(::shutdown(peer_, SHUT_RD), 0);
  size_t written = 0;
  auto write_some = [&] {
    while (written < all.size()) {
      ssize_t n = ::send(peer_, all.data() + written, all.size() - written, MSG_DONTWAIT);
      if (n <= 0) break;
      written += static_cast<size_t>(n);
    }
  };
  write_some();
  loop_.TurnUntilIdle();
  // The connection took at most what had arrived (io_uring: what the armed receive brought in
  // before the pause took effect; epoll: nothing, no read was waiting), copied out of the pool.
  const size_t taken = conn_.buffered().size();
  EXPECT_LE(taken, written);
  if (GetParam() == PollerBackend::kIoUring) EXPECT_GT(taken, 0u) << "the receive stayed armed";
  EXPECT_EQ(poller.BuffersAvailable(), size_t{PollerOptions{}.recv_buffer_count});
  // Paused: more bytes from the peer stay in the socket until someone reads.
  write_some();
  loop_.TurnUntilIdle();
  EXPECT_EQ(conn_.buffered().size(), taken);
  // Reading resumes the receive: everything arrives, in order.
  std::string got;
  while (got.size() < all.size()) {
    write_some();
    std::span<const std::byte> data = loop_.Run(conn_.ReadSome());
    ASSERT_FALSE(data.empty());
    got += Text(data);
    conn_.Consume(data.size());
  }
  EXPECT_EQ(got.size(), all.size());
  EXPECT_TRUE(got == all) << "bytes out of order or lost";
}

TEST_P(ConnectionMultishotTest, EndOfStreamAfterBufferedBytes) {
  Future<std::span<const std::byte>> first = conn_.ReadSome();
  PeerWrite("a");
  EXPECT_EQ(Text(loop_.Run(std::move(first))), "a");
  PeerWrite("b");
  ::close(std::exchange(peer_, -1));
  loop_.TurnUntilIdle();
  conn_.Consume(1);
  std::span<const std::byte> b = loop_.Run(conn_.ReadSome());
  EXPECT_EQ(Text(b), "b");
  conn_.Consume(1);
  EXPECT_TRUE(loop_.Run(conn_.ReadSome()).empty()) << "end of stream";
}

TEST_P(ConnectionMultishotTest, CloseWithTheReceiveArmedAndNoReadWaiting) {
  Future<std::span<const std::byte>> first = conn_.ReadSome();
  PeerWrite("a");
  EXPECT_EQ(Text(loop_.Run(std::move(first))), "a");
  conn_.Consume(1);
  // The receive may still be armed (io_uring); Close cancels it and everything completes.
  loop_.Run(conn_.Close());
  (void)::send(peer_, "late", 4, MSG_NOSIGNAL);  // nothing receives it any more
  loop_.Drain();
  EXPECT_EQ(loop_.poller().InFlight(), 0u);
  EXPECT_EQ(loop_.poller().BuffersAvailable(), size_t{PollerOptions{}.recv_buffer_count});
}

}  // namespace
}  // namespace kev::net
