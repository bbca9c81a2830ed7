#include "net/socket_address.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

namespace kev::net {
namespace {

TEST(SocketAddressTest, ParsesIpv4HostAndPort) {
  auto a = SocketAddress::Parse("10.1.2.3:8080");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family(), AF_INET);
  EXPECT_EQ(a->port(), 8080);
  EXPECT_EQ(a->length(), sizeof(sockaddr_in));
  EXPECT_EQ(a->ToString(), "10.1.2.3:8080");
  EXPECT_EQ(*a, *SocketAddress::Parse("10.1.2.3", 8080));
}

TEST(SocketAddressTest, ParsesIpv6WithAndWithoutBrackets) {
  auto a = SocketAddress::Parse("[::1]:443");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family(), AF_INET6);
  EXPECT_EQ(a->port(), 443);
  EXPECT_EQ(a->ToString(), "[::1]:443");
  EXPECT_EQ(*a, SocketAddress::Loopback6(443));
  EXPECT_EQ(*SocketAddress::Parse("::1", 443), *a);
  auto scoped = SocketAddress::Parse("fe80::1%3", 1);
  ASSERT_TRUE(scoped);
  EXPECT_EQ(scoped->ToString(), "[fe80::1%3]:1");
}

TEST(SocketAddressTest, LocalhostAndWildcards) {
  EXPECT_EQ(*SocketAddress::Parse("localhost:1"), SocketAddress::Loopback4(1));
  EXPECT_EQ(SocketAddress::Any4(80).ToString(), "0.0.0.0:80");
  EXPECT_EQ(SocketAddress::Any6(80).ToString(), "[::]:80");
  EXPECT_EQ(SocketAddress::Loopback4(9).WithPort(10).port(), 10);
}

TEST(SocketAddressTest, RejectsMalformed) {
  for (const char* bad : {"", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1", "1.2.3.4:8x",
                          "::1:80", "[::1]", "example.com:80", "1.2.3:80", "[zz::1]:80", "unix:"}) {
    EXPECT_FALSE(SocketAddress::Parse(bad)) << bad;
  }
}

TEST(SocketAddressTest, UnixPathAndAbstract) {
  auto a = SocketAddress::Parse("unix:/tmp/x.sock");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family(), AF_UNIX);
  EXPECT_EQ(a->port(), 0);
  EXPECT_EQ(a->ToString(), "unix:/tmp/x.sock");
  EXPECT_EQ(a->length(), offsetof(sockaddr_un, sun_path) + 11 + 1);
  SocketAddress abstract = SocketAddress::Unix("@kev");
  EXPECT_EQ(abstract.ToString(), "unix:@kev");
  EXPECT_EQ(abstract.length(), offsetof(sockaddr_un, sun_path) + 4);
  EXPECT_FALSE(abstract == *a);
  EXPECT_THROW(SocketAddress::Unix(std::string(200, 'x')), std::invalid_argument);
}

TEST(SocketAddressTest, FromSockaddrRoundTrips) {
  SocketAddress a = SocketAddress::Loopback6(7);
  SocketAddress b = SocketAddress::FromSockaddr(a.sockaddr_ptr(), a.length());
  EXPECT_EQ(a, b);
  EXPECT_EQ(SocketAddress().ToString(), "unspecified");
}

}  // namespace
}  // namespace kev::net
