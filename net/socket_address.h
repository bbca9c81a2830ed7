// net/socket_address.h: an IPv4, IPv6 or Unix-domain socket address, by value.
//
// SocketAddress wraps a sockaddr_storage so that it can be copied, compared, printed and handed
// to the kernel without the caller juggling sockaddr casts. Parsing takes numeric addresses
// only (no DNS: a resolver would block the shard); "localhost" is accepted as 127.0.0.1.
//
//   auto any = kev::net::SocketAddress::Parse("0.0.0.0", 8080);      // IPv4, all interfaces
//   auto v6 = kev::net::SocketAddress::Parse("[::1]:8080");           // IPv6 loopback
//   auto unix_path = kev::net::SocketAddress::Unix("/run/kev.sock");  // Unix domain
//   if (any) std::printf("%s\n", any->ToString().c_str());           // "0.0.0.0:8080"
//
// Threading: a plain value; any thread.
#ifndef KEV_NET_SOCKET_ADDRESS_H_
#define KEV_NET_SOCKET_ADDRESS_H_

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kev::net {

class SocketAddress {
 public:
  // An unspecified address (family AF_UNSPEC, length 0). Not usable with Listen or Connect.
  SocketAddress() noexcept;

  // Numeric IPv4 ("10.0.0.1"), IPv6 ("::1", "[::1]", "fe80::1%2" with a numeric scope) or
  // "localhost" (127.0.0.1), with `port`. nullopt for anything else.
  static std::optional<SocketAddress> Parse(std::string_view host, uint16_t port);
  // "host:port", "[v6]:port", or "unix:/path" (and "unix:@name" for the abstract namespace).
  // nullopt when malformed (missing or out-of-range port, bad host).
  static std::optional<SocketAddress> Parse(std::string_view host_and_port);

  // 127.0.0.1:port and 0.0.0.0:port; [::1]:port and [::]:port.
  static SocketAddress Loopback4(uint16_t port) noexcept;
  static SocketAddress Any4(uint16_t port) noexcept;
  static SocketAddress Loopback6(uint16_t port) noexcept;
  static SocketAddress Any6(uint16_t port) noexcept;

  // A Unix-domain address. A leading '@' means Linux's abstract namespace (the '@' becomes the
  // leading NUL). Throws std::invalid_argument if the path does not fit sun_path (107 bytes).
  static SocketAddress Unix(std::string_view path);

  // Copies a kernel-provided address; `length` is clamped to sizeof(sockaddr_storage).
  static SocketAddress FromSockaddr(const sockaddr* address, socklen_t length) noexcept;

  // AF_INET, AF_INET6, AF_UNIX or AF_UNSPEC.
  int family() const noexcept { return storage_.ss_family; }
  bool is_ip() const noexcept { return family() == AF_INET || family() == AF_INET6; }
  // The port in host byte order (0 for Unix and unspecified addresses).
  uint16_t port() const noexcept;
  // A copy with the port replaced (IP only; others are returned unchanged).
  SocketAddress WithPort(uint16_t port) const noexcept;

  // For the kernel: pointer to the sockaddr and its length. Valid while this object lives.
  const sockaddr* sockaddr_ptr() const noexcept {
    return reinterpret_cast<const sockaddr*>(&storage_);
  }
  socklen_t length() const noexcept { return length_; }

  // "1.2.3.4:80", "[::1]:80", "unix:/path", "unix:@abstract", "unspecified".
  std::string ToString() const;

  // Byte-wise equality of the meaningful part (family, address, port / path).
  friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

 private:
  sockaddr_storage storage_;
  socklen_t length_ = 0;
};

}  // namespace kev::net

#endif  // KEV_NET_SOCKET_ADDRESS_H_
