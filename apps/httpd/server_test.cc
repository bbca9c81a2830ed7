// In-process tests of ShardServer on one reactor: a kev client (net::Connect) talks to the
// server over loopback. The integration tests in tests/ cover the binary; these cover the
// connection loop under the sanitizers with the server and client in one process.

#include "apps/httpd/server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>

#include "net/connection.h"
#include "reactor/reactor.h"
#include "reactor/smp.h"
#include "reactor/timer.h"

namespace kev::httpd {
namespace {

using namespace std::chrono_literals;

std::string AsString(std::span<const std::byte> s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

// Reads until the peer closes (or fails); returns everything received.
Future<std::string> ReadToEnd(net::Connection& conn) {
  std::string all;
  try {
    for (;;) {
      std::span<const std::byte> got = co_await conn.ReadSome();
      if (got.empty()) break;
      all += AsString(got);
      conn.Consume(got.size());
    }
  } catch (const std::system_error&) {  // a reset also ends the stream
  }
  co_return all;
}

size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

class ServerTest : public ::testing::TestWithParam<PollerBackend> {
 protected:
  void SetUp() override {
    const char* base = getenv("TEST_TMPDIR");
    root_ = std::string(base ? base : "/tmp") + "/server_test.XXXXXX";
    ASSERT_NE(mkdtemp(root_.data()), nullptr);
    std::ofstream(root_ + "/hello.txt") << "Hello, world!\n";
    root_fd_ = open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(root_fd_, 0);
    options_.root = root_;
    options_.port = 0;
  }
  void TearDown() override {
    close(root_fd_);
    ASSERT_EQ(system(("rm -rf '" + root_ + "'").c_str()), 0);
  }

  // Starts a server on this reactor, runs `body(port, server)`, drains and stops the server.
  template <class Body>
  void WithServer(Body body) {
    RunReactor(
        [&]() -> Future<void> {
          Sharded<ShardServer> servers;
          co_await servers.Start(options_, root_fd_, std::shared_ptr<AccessLogSink>(), &servers);
          const uint16_t port = servers.Local().Listen(0);
          servers.Local().StartAccepting();
          co_await body(port, servers.Local());
          co_await servers.Local().Drain();
          co_await servers.Stop();
        },
        ReactorOptions{.backend = GetParam()});
  }

  std::string root_;
  int root_fd_ = -1;
  ServerOptions options_;
};

TEST_P(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  WithServer([](uint16_t port, ShardServer& server) -> Future<void> {
    net::Connection c = co_await net::Connect(net::SocketAddress::Loopback4(port));
    co_await c.Write(
        "GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n"
        "GET /missing HTTP/1.1\r\nHost: a\r\n\r\n"
        "POST /hello.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabcde"
        "GET /_kev/metrics HTTP/1.1\r\nHost: a\r\n\r\n"
        "GET /hello.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    co_await c.Flush();
    const std::string all = co_await ReadToEnd(c);
    const size_t ok1 = all.find("HTTP/1.1 200 OK");
    const size_t missing = all.find("HTTP/1.1 404 Not Found");
    const size_t post = all.find("HTTP/1.1 405 Method Not Allowed");
    const size_t metrics = all.find("kev_httpd_responses_total");
    const size_t last = all.rfind("HTTP/1.1 200 OK");
    EXPECT_LT(ok1, missing);
    EXPECT_LT(missing, post);
    EXPECT_LT(post, metrics);
    EXPECT_LT(metrics, last);
    EXPECT_NE(last, std::string::npos);
    EXPECT_EQ(Count(all, "Hello, world!\n"), 2u);
    EXPECT_EQ(Count(all, "HTTP/1.1 "), 5u);
    const ShardMetrics m = server.Snapshot();
    EXPECT_EQ(m.TotalResponses(), 5u);
    EXPECT_EQ(m.connections_accepted, 1u);
  });
}

TEST_P(ServerTest, IncompleteHeadIsClosedAfterTheHeaderTimeout) {
  options_.header_timeout = 100ms;
  WithServer([](uint16_t port, ShardServer& server) -> Future<void> {
    net::Connection c = co_await net::Connect(net::SocketAddress::Loopback4(port));
    co_await c.Write("GET /hello.txt HTTP/1.1\r\nHost:");
    co_await c.Flush();
    const std::string all = co_await ReadToEnd(c);  // ends when the server closes
    EXPECT_EQ(all, "");
    EXPECT_EQ(server.Snapshot().header_timeouts, 1u);
    // A well-behaved client is still served.
    net::Connection d = co_await net::Connect(net::SocketAddress::Loopback4(port));
    co_await d.Write("GET /hello.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    EXPECT_NE((co_await ReadToEnd(d)).find("Hello, world!\n"), std::string::npos);
  });
}

TEST_P(ServerTest, ConnectionsOverTheLimitAreClosedAtOnce) {
  options_.max_connections = 1;
  WithServer([](uint16_t port, ShardServer& server) -> Future<void> {
    net::Connection first = co_await net::Connect(net::SocketAddress::Loopback4(port));
    co_await first.Write("GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    std::span<const std::byte> got = co_await first.ReadUntil("Hello, world!\n", 4096);
    first.Consume(got.size());
    net::Connection second = co_await net::Connect(net::SocketAddress::Loopback4(port));
    EXPECT_EQ(co_await ReadToEnd(second), "");
    EXPECT_EQ(server.Snapshot().connections_rejected, 1u);
    EXPECT_EQ(server.Snapshot().connections_open, 1u);
  });
}

TEST_P(ServerTest, DrainClosesIdleConnectionsAndFinishesBusyOnes) {
  options_.drain_timeout = 5s;
  WithServer([](uint16_t port, ShardServer& server) -> Future<void> {
    net::Connection idle = co_await net::Connect(net::SocketAddress::Loopback4(port));
    net::Connection busy = co_await net::Connect(net::SocketAddress::Loopback4(port));
    co_await busy.Write("GET /hello.txt HTTP/1.1\r\nHost: a\r\n");  // head not finished yet
    co_await busy.Flush();
    co_await Sleep(50ms);  // let the server see both
    EXPECT_EQ(server.Snapshot().connections_open, 2u);
    Future<void> drained = server.Drain();
    EXPECT_EQ(co_await ReadToEnd(idle), "");  // closed at once
    co_await busy.Write("\r\n");              // the request completes during the drain...
    const std::string answer = co_await ReadToEnd(busy);
    EXPECT_NE(answer.find("Hello, world!\n"), std::string::npos);
    EXPECT_NE(answer.find("Connection: close\r\n"), std::string::npos);  // ...and ends it
    co_await std::move(drained);
    EXPECT_EQ(server.Snapshot().connections_open, 0u);
  });
}

TEST_P(ServerTest, IdleKeepAliveConnectionServesBurstsThenTimesOut) {
  options_.keepalive_timeout = 200ms;
  WithServer([](uint16_t port, ShardServer& server) -> Future<void> {
    net::Connection c = co_await net::Connect(net::SocketAddress::Loopback4(port));
    // Each request is a burst of its own, with the connection idle (no coroutine of the
    // server's) in between.
    for (int i = 0; i < 3; ++i) {
      co_await c.Write("GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n");
      std::span<const std::byte> got = co_await c.ReadUntil("Hello, world!\n", 4096);
      EXPECT_NE(AsString(got).find("HTTP/1.1 200 OK"), std::string::npos);
      c.Consume(got.size());
      co_await Sleep(20ms);
      EXPECT_EQ(server.Snapshot().connections_open, 1u);
    }
    // Left idle, it is closed by the keep-alive timeout, counted as such.
    EXPECT_EQ(co_await ReadToEnd(c), "");
    const ShardMetrics m = server.Snapshot();
    EXPECT_EQ(m.idle_timeouts, 1u);
    EXPECT_EQ(m.client_errors, 0u);
    EXPECT_EQ(m.TotalResponses(), 3u);
    while (server.Snapshot().connections_open != 0) co_await Sleep(1ms);
  });
}

TEST_P(ServerTest, ClientLeavingBetweenRequestsIsNoError) {
  WithServer([](uint16_t port, ShardServer& server) -> Future<void> {
    for (int i = 0; i < 2; ++i) {
      net::Connection c = co_await net::Connect(net::SocketAddress::Loopback4(port));
      co_await c.Write("GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n");
      std::span<const std::byte> got = co_await c.ReadUntil("Hello, world!\n", 4096);
      c.Consume(got.size());
      if (i == 0) {
        co_await c.ShutdownOutput();  // end of stream while idle
        EXPECT_EQ(co_await ReadToEnd(c), "");
      } else {
        co_await c.Close();  // the connection just goes away
      }
    }
    while (server.Snapshot().connections_open != 0) co_await Sleep(1ms);
    const ShardMetrics m = server.Snapshot();
    EXPECT_EQ(m.connections_accepted, 2u);
    EXPECT_EQ(m.idle_timeouts, 0u);
    EXPECT_EQ(m.TotalResponses(), 2u);
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, ServerTest,
                         ::testing::Values(PollerBackend::kIoUring, PollerBackend::kEpoll),
                         [](const auto& info) {
                           return info.param == PollerBackend::kEpoll ? "Epoll" : "IoUring";
                         });

}  // namespace
}  // namespace kev::httpd
