// What a connection holds between requests: no input buffer while it waits (the data lands in
// the shard's receive pool), and only small output buffers once everything is sent. On both
// backends, plus the fallbacks: a dry pool, and io_uring without the provided-buffer ring.
#include <string>

#include "gtest/gtest.h"
#include "net/connection.h"
#include "net/internal/connection_state.h"
#include "net/internal/test_loop.h"
#include "net/listener.h"

namespace kev::net {
namespace {

using internal::TestLoop;

// The state is most of what an idle connection costs the server (its coroutine frame is the
// rest); a field added carelessly would grow it for every connection. 248 bytes (a 256-byte
// glibc chunk), with the pending read's future state embedded and the output state out of
// line (it used to be 400 plus a 64-byte heap state).
static_assert(sizeof(internal::ConnectionState) <= 248,
              "ConnectionState grew: every idle connection pays for it (see the layout comment)");

std::string Text(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

Future<void> Send(Connection* c, std::string text) {
  co_await c->Write(text);
  co_await c->Flush();
}

struct Mode {
  PollerBackend backend;
  bool buffer_ring;
};

std::string ModeName(const testing::TestParamInfo<Mode>& info) {
  if (info.param.backend == PollerBackend::kEpoll) return "Epoll";
  return info.param.buffer_ring ? "IoUring" : "IoUringWithoutRing";
}

constexpr unsigned kPoolBuffers = 4;

class ConnectionMemoryTest : public testing::TestWithParam<Mode> {
 protected:
  static PollerOptions Options() {
    PollerOptions options;
    options.recv_buffer_count = kPoolBuffers;
    options.use_buffer_ring = GetParam().buffer_ring;
    return options;
  }

  void SetUp() override {
    listener_ = Listen(SocketAddress::Loopback4(0));
    Future<Connection> accepted = listener_.Accept();
    client_ = loop_.Run(Connect(listener_.local_address()));
    server_ = loop_.Run(std::move(accepted));
  }

  TestLoop loop_{GetParam().backend, Options()};
  Listener listener_;
  Connection client_;
  Connection server_;
};

INSTANTIATE_TEST_SUITE_P(Backends, ConnectionMemoryTest,
                         testing::Values(Mode{PollerBackend::kIoUring, true},
                                         Mode{PollerBackend::kIoUring, false},
                                         Mode{PollerBackend::kEpoll, true}),
                         ModeName);

TEST_P(ConnectionMemoryTest, KeepAliveConnectionHoldsNoBuffersBetweenRequests) {
  Poller& poller = loop_.poller();
  EXPECT_EQ(server_.buffer_bytes(), 0u);
  // A request split across segments (copied into the connection's own buffer), then two
  // pipelined in one segment (answered from the buffer, one after the other).
  loop_.Run(Send(&client_, "GET /a HT"));
  Future<std::span<const std::byte>> first = server_.ReadUntil("\r\n\r\n", 8192);
  loop_.Run(Send(&client_, "TP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(Text(loop_.Run(std::move(first))), "GET /a HTTP/1.1\r\n\r\n");
  server_.Consume(19);
  std::span<const std::byte> second = loop_.Run(server_.ReadUntil("\r\n\r\n", 8192));
  EXPECT_EQ(Text(second), "GET /b HTTP/1.1\r\n\r\n");
  EXPECT_GT(server_.buffer_bytes(), 0u);
  server_.Consume(second.size());
  EXPECT_EQ(server_.buffer_bytes(), 0u) << "input consumed: no input buffer";

  // A response larger than what an idle connection keeps: freed once sent.
  loop_.Run(Send(&server_, std::string(4000, 'r')));
  EXPECT_EQ(server_.buffer_bytes(), 0u) << "output sent: no output buffer";
  EXPECT_EQ(loop_.Run(client_.ReadExactly(4000)).size(), 4000u);
  client_.Consume(4000);

  // Idle, waiting for the next request: still nothing held, and no pool buffer taken (except
  // io_uring's fallback, which takes one when the receive is submitted).
  Future<std::span<const std::byte>> next = server_.ReadSome();
  for (int i = 0; i < 3; ++i) loop_.Run(Send(&client_, ""));  // turns the loop
  EXPECT_EQ(server_.buffer_bytes(), 0u);
  bool takes_at_submit = GetParam().backend == PollerBackend::kIoUring && !GetParam().buffer_ring;
  EXPECT_EQ(poller.BuffersAvailable(), takes_at_submit ? kPoolBuffers - 1 : kPoolBuffers);
  EXPECT_EQ(poller.UsesBufferRing(),
            GetParam().backend == PollerBackend::kIoUring && GetParam().buffer_ring);

  // The next request lands in a pool buffer, read in place, given back at Consume.
  loop_.Run(Send(&client_, "ping"));
  std::span<const std::byte> ping = loop_.Run(std::move(next));
  EXPECT_EQ(Text(ping), "ping");
  EXPECT_EQ(poller.BuffersAvailable(), kPoolBuffers - 1);
  server_.Consume(ping.size());
  EXPECT_EQ(poller.BuffersAvailable(), kPoolBuffers);
  EXPECT_EQ(server_.buffer_bytes(), 0u);
}

TEST_P(ConnectionMemoryTest, DryPoolFallsBackToOwnBuffer) {
  Poller& poller = loop_.poller();
  // Other connections hold every pool buffer (data read, not consumed).
  std::vector<Connection> clients, servers;
  for (unsigned i = 0; i < kPoolBuffers; ++i) {
    Future<Connection> accepted = listener_.Accept();
    clients.push_back(loop_.Run(Connect(listener_.local_address())));
    servers.push_back(loop_.Run(std::move(accepted)));
    loop_.Run(Send(&clients.back(), "held"));
    EXPECT_EQ(Text(loop_.Run(servers.back().ReadSome())), "held");
  }
  EXPECT_EQ(poller.BuffersAvailable(), 0u);
  // This one still receives, into its own buffer, byte for byte.
  loop_.Run(Send(&client_, "own buffer"));
  EXPECT_EQ(Text(loop_.Run(server_.ReadExactly(10))), "own buffer");
  server_.Consume(10);
  EXPECT_EQ(server_.buffer_bytes(), 0u);
  // Closing and destroying the holders gives their buffers back.
  for (Connection& s : servers) loop_.Run(s.Close());
  servers.clear();
  EXPECT_EQ(poller.BuffersAvailable(), kPoolBuffers);
  // And the pool is used again.
  loop_.Run(Send(&client_, "pooled"));
  EXPECT_EQ(Text(loop_.Run(server_.ReadSome())), "pooled");
  EXPECT_EQ(poller.BuffersAvailable(), kPoolBuffers - 1);
  server_.Consume(6);
  EXPECT_EQ(poller.BuffersAvailable(), kPoolBuffers);
}

TEST_P(ConnectionMemoryTest, CloseWithPendingPooledReadReturnsEverything) {
  Poller& poller = loop_.poller();
  Future<std::span<const std::byte>> pending = server_.ReadSome();
  loop_.Run(Send(&client_, ""));
  loop_.Run(server_.Close());
  EXPECT_THROW(loop_.Run(std::move(pending)), std::system_error);
  server_ = Connection();
  EXPECT_EQ(poller.BuffersAvailable(), kPoolBuffers);
}

TEST_P(ConnectionMemoryTest, ReadFutureKeptWhileTheNextReadRuns) {
  // The first read's (embedded) state is still held by its unconsumed future when the second
  // read starts: the second gets a state of its own, and both deliver the right bytes.
  loop_.Run(Send(&client_, "one"));
  Future<std::span<const std::byte>> first = server_.ReadSome();
  loop_.TurnUntilIdle();
  ASSERT_TRUE(first.Available());
  EXPECT_EQ(Text(server_.buffered()), "one");
  Future<std::span<const std::byte>> second = server_.ReadExactly(6);
  loop_.Run(Send(&client_, "two"));
  EXPECT_EQ(Text(loop_.Run(std::move(second))), "onetwo");
  EXPECT_EQ(first.Get().size(), 3u);  // (its bytes may have moved: only the size is kept)
  server_.Consume(6);
  // And the embedded state is reused afterwards.
  Future<std::span<const std::byte>> third = server_.ReadSome();
  loop_.Run(Send(&client_, "three"));
  EXPECT_EQ(Text(loop_.Run(std::move(third))), "three");
}

TEST_P(ConnectionMemoryTest, PendingReadFutureOutlivesTheConnection) {
  // The embedded state keeps the connection's memory alive until its future lets go.
  Future<std::span<const std::byte>> pending = server_.ReadSome();
  server_ = Connection();  // closes: the read fails with ECANCELED
  loop_.TurnUntilIdle();
  ASSERT_TRUE(pending.Available());
  EXPECT_THROW(pending.Get(), std::system_error);
}

TEST_P(ConnectionMemoryTest, LongDelimiterIsKeptOutOfLine) {
  // Delimiters longer than the inline slot (8 bytes) still match across segments.
  Future<std::span<const std::byte>> until = server_.ReadUntil("--boundary--", 1024);
  loop_.Run(Send(&client_, "abc--bound"));
  loop_.Run(Send(&client_, "ary--rest"));
  EXPECT_EQ(Text(loop_.Run(std::move(until))), "abc--boundary--");
  server_.Consume(15);
  // A short one afterwards is inline again.
  Future<std::span<const std::byte>> line = server_.ReadUntil("\r\n", 1024);
  loop_.Run(Send(&client_, "\r\n"));
  EXPECT_EQ(Text(loop_.Run(std::move(line))), "rest\r\n");
}

}  // namespace
}  // namespace kev::net
