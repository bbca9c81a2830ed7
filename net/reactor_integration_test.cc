// net/ on a real Reactor (reactor/reactor.h) rather than the test loop: the shard's poller is
// found through Reactor::Current().
#include <gtest/gtest.h>

#include <string>

#include "net/connection.h"
#include "net/listener.h"
#include "reactor/reactor.h"

namespace kev::net {
namespace {

Future<void> ServeOne(Listener* listener) {
  Connection c = co_await listener->Accept();
  std::span<const std::byte> line = co_await c.ReadUntil("\n", 100);
  co_await c.Write(line);
  c.Consume(line.size());
  co_await c.Flush();
  co_await c.Close();
}

Future<std::string> RoundTrip() {
  Listener listener = Listen(SocketAddress::Loopback4(0));
  Future<void> server = ServeOne(&listener);
  Connection c = co_await Connect(listener.local_address());
  co_await c.Write("over the reactor\n");
  std::span<const std::byte> back = co_await c.ReadUntil("\n", 100);
  std::string text(reinterpret_cast<const char*>(back.data()), back.size());
  co_await std::move(server);
  co_await c.Close();
  co_await listener.Close();
  co_return text;
}

class ReactorIntegrationTest : public testing::TestWithParam<PollerBackend> {};

INSTANTIATE_TEST_SUITE_P(Backends, ReactorIntegrationTest,
                         testing::Values(PollerBackend::kIoUring, PollerBackend::kEpoll));

TEST_P(ReactorIntegrationTest, EchoOnRunReactor) {
  ReactorOptions options;
  options.backend = GetParam();
  EXPECT_EQ(RunReactor([] { return RoundTrip(); }, options), "over the reactor\n");
}

}  // namespace
}  // namespace kev::net
