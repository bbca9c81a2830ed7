// UDP on both backends: echo, truncation, close cancelling a pending receive.
#include "net/udp.h"

#include <gtest/gtest.h>

#include <string>
#include <system_error>

#include "net/internal/test_loop.h"

namespace kev::net {
namespace {

using internal::TestLoop;

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}
std::string Text(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

Future<void> EchoDatagrams(UdpSocket* server, int count) {
  for (int i = 0; i < count; ++i) {
    Datagram d = co_await server->Receive();
    co_await server->SendTo(d.from, d.data);  // d.data lives until the next Receive()
  }
}

class UdpTest : public testing::TestWithParam<PollerBackend> {
 protected:
  TestLoop loop_{GetParam()};
};

INSTANTIATE_TEST_SUITE_P(Backends, UdpTest,
                         testing::Values(PollerBackend::kIoUring, PollerBackend::kEpoll),
                         internal::BackendName);

TEST_P(UdpTest, Echo) {
  UdpSocket server = UdpSocket::Bind(SocketAddress::Loopback4(0));
  UdpSocket client = UdpSocket::Bind(SocketAddress::Loopback4(0));
  ASSERT_NE(server.local_address().port(), 0);
  (void)EchoDatagrams(&server, 100);
  for (int i = 0; i < 100; ++i) {
    std::string message = "datagram " + std::to_string(i);
    Future<Datagram> reply = client.Receive();
    loop_.Run(client.SendTo(server.local_address(), Bytes(message)));
    Datagram d = loop_.Run(std::move(reply));
    EXPECT_EQ(Text(d.data), message);
    EXPECT_EQ(d.from, server.local_address());
    EXPECT_FALSE(d.truncated);
  }
}

TEST_P(UdpTest, TruncatedDatagramIsFlagged) {
  UdpSocket server = UdpSocket::Bind(SocketAddress::Loopback4(0), /*max_datagram=*/8);
  UdpSocket client = UdpSocket::Bind(SocketAddress::Loopback4(0));
  Future<Datagram> d = server.Receive();
  std::string message = "longer than eight bytes";
  loop_.Run(client.SendTo(server.local_address(), Bytes(message)));
  Datagram got = loop_.Run(std::move(d));
  EXPECT_TRUE(got.truncated);
  EXPECT_EQ(Text(got.data), "longer t");
}

TEST_P(UdpTest, CloseCancelsPendingReceive) {
  UdpSocket server = UdpSocket::Bind(SocketAddress::Loopback4(0));
  Future<Datagram> d = server.Receive();
  loop_.Turn();
  loop_.Run(server.Close());
  try {
    loop_.Run(std::move(d));
    ADD_FAILURE() << "receive survived Close()";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECANCELED);
  }
}

TEST_P(UdpTest, SendToUnreachableFamilyFails) {
  UdpSocket client = UdpSocket::Bind(SocketAddress::Loopback4(0));
  EXPECT_THROW(loop_.Run(client.SendTo(SocketAddress::Unix("@nowhere"), Bytes("x"))),
               std::system_error);
}

}  // namespace
}  // namespace kev::net
