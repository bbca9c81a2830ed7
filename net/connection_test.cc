// Connections on both backends: echo over TCP (v4, v6) and Unix, the read calls, output
// ordering and backpressure, shutdown, close and cancellation, connect errors.
#include "net/connection.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <string>
#include <system_error>
#include <vector>

#include "net/internal/test_loop.h"
#include "net/listener.h"

namespace kev::net {
namespace {

using internal::TestLoop;

std::string Text(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// Echoes everything until the peer closes, then closes.
Future<void> EchoServer(Connection conn) {
  while (true) {
    std::span<const std::byte> data = co_await conn.ReadSome();
    if (data.empty()) break;
    co_await conn.Write(data);
    conn.Consume(data.size());
    co_await conn.Flush();
  }
  co_await conn.Close();
}

Future<void> AcceptAndEcho(Listener* listener, int count) {
  for (int i = 0; i < count; ++i) {
    Connection conn = co_await listener->Accept();
    (void)EchoServer(std::move(conn));
  }
}

Future<std::string> EchoOnce(SocketAddress address, std::string message) {
  Connection c = co_await Connect(address);
  co_await c.Write(message);
  co_await c.Flush();
  std::span<const std::byte> back = co_await c.ReadExactly(message.size());
  std::string result = Text(back);
  c.Consume(back.size());
  co_await c.ShutdownOutput();
  std::span<const std::byte> end = co_await c.ReadSome();  // the server closes after our EOF
  if (!end.empty()) result += "<extra>";
  co_await c.Close();
  co_return result;
}

class ConnectionTest : public testing::TestWithParam<PollerBackend> {
 protected:
  TestLoop loop_{GetParam()};
};

INSTANTIATE_TEST_SUITE_P(Backends, ConnectionTest,
                         testing::Values(PollerBackend::kIoUring, PollerBackend::kEpoll),
                         internal::BackendName);

TEST_P(ConnectionTest, TcpEchoAndPortZero) {
  Listener listener = Listen(SocketAddress::Loopback4(0));
  uint16_t port = listener.local_address().port();
  ASSERT_NE(port, 0);
  (void)AcceptAndEcho(&listener, 1);
  EXPECT_EQ(loop_.Run(EchoOnce(SocketAddress::Loopback4(port), "hello, kev")), "hello, kev");
}

TEST_P(ConnectionTest, Ipv6Echo) {
  Listener listener;
  try {
    listener = Listen(SocketAddress::Loopback6(0));
  } catch (const std::system_error& e) {
    GTEST_SKIP() << "no IPv6 loopback: " << e.what();
  }
  (void)AcceptAndEcho(&listener, 1);
  EXPECT_EQ(loop_.Run(EchoOnce(listener.local_address(), "six")), "six");
}

TEST_P(ConnectionTest, UnixEcho) {
  SocketAddress address = SocketAddress::Unix("@kev-net-test-" + std::to_string(getpid()) + "-" +
                                              std::to_string(static_cast<int>(GetParam())));
  Listener listener = Listen(address);
  EXPECT_EQ(listener.local_address(), address);
  (void)AcceptAndEcho(&listener, 1);
  EXPECT_EQ(loop_.Run(EchoOnce(address, "over unix")), "over unix");
}

TEST_P(ConnectionTest, AcceptedConnectionsInheritNoDelay) {
  Listener listener = Listen(SocketAddress::Loopback4(0));
  Future<Connection> accepted = listener.Accept();
  Connection client = loop_.Run(Connect(listener.local_address()));
  Connection server = loop_.Run(std::move(accepted));
  for (int fd : {client.fd(), server.fd()}) {
    int value = 0;
    socklen_t length = sizeof(value);
    ASSERT_EQ(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &length), 0);
    EXPECT_NE(value, 0);
  }
  EXPECT_EQ(server.peer_address(), client.local_address());
}

Future<std::vector<std::string>> ReadPieces(Connection* c) {
  std::vector<std::string> out;
  for (int i = 0; i < 3; ++i) {
    std::span<const std::byte> line = co_await c->ReadUntil("\r\n", 64);
    out.push_back(Text(line));
    c->Consume(line.size());
  }
  std::span<const std::byte> fixed = co_await c->ReadExactly(5);
  out.push_back(Text(fixed));
  c->Consume(5);
  co_return out;
}

Future<void> WriteSlowly(Connection* c, std::vector<std::string> pieces) {
  for (const std::string& piece : pieces) {
    co_await c->Write(piece);
    co_await c->Flush();
  }
}

TEST_P(ConnectionTest, ReadUntilAndReadExactlyAcrossSegments) {
  Listener listener = Listen(SocketAddress::Loopback4(0));
  Future<Connection> accepted = listener.Accept();
  Connection client = loop_.Run(Connect(listener.local_address()));
  Connection server = loop_.Run(std::move(accepted));
  Future<std::vector<std::string>> lines = ReadPieces(&server);
  // Delimiters split across segments, and two lines in one segment.
  loop_.Run(WriteSlowly(&client, {"GET / HT", "TP/1.1\r", "\nHost: a\r\n\r", "\n12", "345tail"}));
  std::vector<std::string> got = loop_.Run(std::move(lines));
  EXPECT_EQ(got, (std::vector<std::string>{"GET / HTTP/1.1\r\n", "Host: a\r\n", "\r\n", "12345"}));
  EXPECT_EQ(Text(loop_.Run(server.ReadSome())), "tail");
}

TEST_P(ConnectionTest, ReadUntilLimitAndEndOfStream) {
  Listener listener = Listen(SocketAddress::Loopback4(0));
  Future<Connection> accepted = listener.Accept();
  Connection client = loop_.Run(Connect(listener.local_address()));
  Connection server = loop_.Run(std::move(accepted));
  loop_.Run(client.Write(std::string(100, 'x')));
  EXPECT_THROW(loop_.Run(server.ReadUntil("\n", 50)), DelimiterNotFound);
  loop_.Run(client.ShutdownOutput());
  EXPECT_THROW(loop_.Run(server.ReadExactly(101)), EndOfStream);
  EXPECT_EQ(loop_.Run(server.ReadExactly(100)).size(), 100u);
  server.Consume(100);
  EXPECT_TRUE(loop_.Run(server.ReadSome()).empty());  // end of stream, nothing buffered
}

TEST_P(ConnectionTest, ReadUntilAndReadExactlyBeyondTheBufferSize) {
  Listener listener = Listen(SocketAddress::Loopback4(0));
  Future<Connection> accepted = listener.Accept();
  Connection client = loop_.Run(Connect(listener.local_address()));
  Connection server = loop_.Run(std::move(accepted));
  std::string line(100'000, 'a');
  line += "\n";
  Future<std::span<const std::byte>> got = server.ReadUntil("\n", 1 << 20);
  loop_.Run(WriteSlowly(&client, {line.substr(0, 30'000), line.substr(30'000), "tail"}));
  EXPECT_EQ(loop_.Run(std::move(got)).size(), line.size());
  server.Consume(line.size());
  loop_.Run(client.Write(std::string(200'000, 'b')));
  std::span<const std::byte> block = loop_.Run(server.ReadExactly(200'004));
  EXPECT_EQ(Text(block.first(4)), "tail");
  EXPECT_EQ(Text(block.subspan(4)), std::string(200'000, 'b'));
}

Future<size_t> ReadAll(Connection* c, size_t expected, std::string* out) {
  while (out->size() < expected) {
    std::span<const std::byte> data = co_await c->ReadSome();
    if (data.empty()) break;
    out->append(Text(data));
    c->Consume(data.size());
  }
  co_return out->size();
}

Future<void> WriteMany(Connection* c, const std::string* data, size_t chunk) {
  for (size_t off = 0; off < data->size(); off += chunk) {
    co_await c->Write(std::string_view(*data).substr(off, chunk));  // backpressure when far ahead
  }
  co_await c->Flush();
}

TEST_P(ConnectionTest, LargeEchoKeepsOrderUnderBackpressure) {
  Listener listener = Listen(SocketAddress::Loopback4(0));
  (void)AcceptAndEcho(&listener, 1);
  Connection client = loop_.Run(Connect(listener.local_address()));
  std::string data(8 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 7 + i / 4096) & 0xff);
  std::string back;
  Future<size_t> reader = ReadAll(&client, data.size(), &back);
  loop_.Run(WriteMany(&client, &data, 100'000));
  EXPECT_EQ(loop_.Run(std::move(reader)), data.size());
  EXPECT_TRUE(back == data);
}

TEST_P(ConnectionTest, ThousandConcurrentConnections) {
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  if (old.rlim_max < 2200) GTEST_SKIP() << "RLIMIT_NOFILE hard limit too low";
  rlimit raised = old;
  raised.rlim_cur = std::max<rlim_t>(old.rlim_cur, 4096);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &raised), 0);
  {
    ListenOptions options;
    options.backlog = 2048;
    Listener listener = Listen(SocketAddress::Loopback4(0), options);
    (void)AcceptAndEcho(&listener, 1000);
    std::vector<Future<std::string>> clients;
    for (int i = 0; i < 1000; ++i) {
      clients.push_back(EchoOnce(listener.local_address(), "client " + std::to_string(i)));
    }
    for (int i = 0; i < 1000; ++i) {
      EXPECT_EQ(loop_.Run(std::move(clients[i])), "client " + std::to_string(i));
    }
    loop_.Run(listener.Close());
    loop_.Drain();
  }
  setrlimit(RLIMIT_NOFILE, &old);
}

TEST_P(ConnectionTest, CloseCancelsPendingRead) {
  Listener listener = Listen(SocketAddress::Loopback4(0));
  Future<Connection> accepted = listener.Accept();
  Connection client = loop_.Run(Connect(listener.local_address()));
  Connection server = loop_.Run(std::move(accepted));
  Future<std::span<const std::byte>> read = client.ReadSome();
  for (int i = 0; i < 3; ++i) loop_.Turn();  // the recv is in the kernel now
  EXPECT_FALSE(read.Available());
  Future<void> closed = client.Close();
  try {
    loop_.Run(std::move(read));
    ADD_FAILURE() << "read survived Close()";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECANCELED);
  }
  loop_.Run(std::move(closed));
  EXPECT_EQ(client.fd(), -1);
  EXPECT_THROW(loop_.Run(client.Write("x")), std::system_error);
  EXPECT_TRUE(loop_.Run(server.ReadSome()).empty());  // the server sees the close as EOF
}

TEST_P(ConnectionTest, DestroyingWithPendingReadIsSafe) {
  Listener listener = Listen(SocketAddress::Loopback4(0));
  Future<Connection> accepted = listener.Accept();
  Future<std::span<const std::byte>> read;
  {
    Connection client = loop_.Run(Connect(listener.local_address()));
    read = client.ReadSome();
    loop_.Turn();
  }  // the kernel may still hold the buffer: the state must outlive it
  EXPECT_THROW(loop_.Run(std::move(read)), std::system_error);
  loop_.Run(listener.Close());
  loop_.Drain();
  EXPECT_EQ(loop_.poller().InFlight(), 0u);
}

TEST_P(ConnectionTest, WriteToVanishedPeerFails) {
  Listener listener = Listen(SocketAddress::Loopback4(0));
  Future<Connection> accepted = listener.Accept();
  Connection client = loop_.Run(Connect(listener.local_address()));
  {
    Connection server = loop_.Run(std::move(accepted));
    linger hard_reset{1, 0};
    setsockopt(server.fd(), SOL_SOCKET, SO_LINGER, &hard_reset, sizeof(hard_reset));
    loop_.Run(server.Close());  // RST
  }
  std::string chunk(64 * 1024, 'z');
  int error = 0;
  for (int i = 0; i < 100 && error == 0; ++i) {
    try {
      loop_.Run(client.Write(chunk));
      loop_.Run(client.Flush());
    } catch (const std::system_error& e) {
      error = e.code().value();
    }
  }
  EXPECT_TRUE(error == EPIPE || error == ECONNRESET) << error;
}

TEST_P(ConnectionTest, ConnectRefused) {
  // Bind a port and close it without listening, so nobody listens there.
  Listener probe = Listen(SocketAddress::Loopback4(0));
  SocketAddress address = probe.local_address();
  loop_.Run(probe.Close());
  try {
    loop_.Run(Connect(address));
    ADD_FAILURE() << "connected to a closed port";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECONNREFUSED);
  }
}

TEST_P(ConnectionTest, InvalidConnectionFailsWithEbadf) {
  Connection none;
  EXPECT_FALSE(none.valid());
  EXPECT_EQ(none.fd(), -1);
  try {
    loop_.Run(none.ReadSome());
    ADD_FAILURE();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EBADF);
  }
}

}  // namespace
}  // namespace kev::net
