#include "net/socket_address.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>
#include <cstddef>
#include <cstring>
#include <stdexcept>

namespace kev::net {
namespace {

std::optional<uint16_t> ParsePort(std::string_view text) {
  unsigned value = 0;
  if (text.empty() || text.size() > 5) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

}  // namespace

SocketAddress::SocketAddress() noexcept {
  std::memset(&storage_, 0, sizeof(storage_));
  storage_.ss_family = AF_UNSPEC;
}

std::optional<SocketAddress> SocketAddress::Parse(std::string_view host, uint16_t port) {
  if (host == "localhost") return Loopback4(port);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host.size() >= 64) return std::nullopt;
  char text[64];
  std::memcpy(text, host.data(), host.size());
  text[host.size()] = '\0';

  SocketAddress result;
  in_addr v4;
  if (host.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, text, &v4) != 1) return std::nullopt;
    auto* sin = reinterpret_cast<sockaddr_in*>(&result.storage_);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr = v4;
    result.length_ = sizeof(sockaddr_in);
    return result;
  }
  // IPv6, with an optional numeric or named scope ("fe80::1%2", "fe80::1%eth0").
  uint32_t scope = 0;
  if (char* percent = std::strchr(text, '%')) {
    *percent = '\0';
    std::string_view scope_text(percent + 1);
    unsigned numeric = 0;
    auto [end, ec] =
        std::from_chars(scope_text.data(), scope_text.data() + scope_text.size(), numeric);
    if (ec == std::errc() && end == scope_text.data() + scope_text.size()) {
      scope = numeric;
    } else {
      scope = if_nametoindex(percent + 1);
      if (scope == 0) return std::nullopt;
    }
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, text, &v6) != 1) return std::nullopt;
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&result.storage_);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  sin6->sin6_addr = v6;
  sin6->sin6_scope_id = scope;
  result.length_ = sizeof(sockaddr_in6);
  return result;
}

std::optional<SocketAddress> SocketAddress::Parse(std::string_view host_and_port) {
  if (host_and_port.starts_with("unix:")) {
    std::string_view path = host_and_port.substr(5);
    if (path.empty() || path.size() > sizeof(sockaddr_un::sun_path) - 1) return std::nullopt;
    return Unix(path);
  }
  size_t colon = host_and_port.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = host_and_port.substr(0, colon);
  // An IPv6 address with a port must be bracketed; "::1:80" is ambiguous.
  if (host.find(':') != std::string_view::npos && !(host.starts_with('[') && host.ends_with(']'))) {
    return std::nullopt;
  }
  std::optional<uint16_t> port = ParsePort(host_and_port.substr(colon + 1));
  if (!port) return std::nullopt;
  return Parse(host, *port);
}

SocketAddress SocketAddress::Loopback4(uint16_t port) noexcept {
  SocketAddress result;
  auto* sin = reinterpret_cast<sockaddr_in*>(&result.storage_);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  result.length_ = sizeof(sockaddr_in);
  return result;
}

SocketAddress SocketAddress::Any4(uint16_t port) noexcept {
  SocketAddress result = Loopback4(port);
  reinterpret_cast<sockaddr_in*>(&result.storage_)->sin_addr.s_addr = htonl(INADDR_ANY);
  return result;
}

SocketAddress SocketAddress::Loopback6(uint16_t port) noexcept {
  SocketAddress result;
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&result.storage_);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  sin6->sin6_addr = in6addr_loopback;
  result.length_ = sizeof(sockaddr_in6);
  return result;
}

SocketAddress SocketAddress::Any6(uint16_t port) noexcept {
  SocketAddress result = Loopback6(port);
  reinterpret_cast<sockaddr_in6*>(&result.storage_)->sin6_addr = in6addr_any;
  return result;
}

SocketAddress SocketAddress::Unix(std::string_view path) {
  SocketAddress result;
  auto* sun = reinterpret_cast<sockaddr_un*>(&result.storage_);
  if (path.empty() || path.size() > sizeof(sun->sun_path) - 1) {
    throw std::invalid_argument("kev::net::SocketAddress::Unix: path empty or too long");
  }
  sun->sun_family = AF_UNIX;
  std::memcpy(sun->sun_path, path.data(), path.size());
  if (path.front() == '@') {
    sun->sun_path[0] = '\0';  // Abstract: no terminator, the length says where it ends.
    result.length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  } else {
    result.length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  }
  return result;
}

SocketAddress SocketAddress::FromSockaddr(const sockaddr* address, socklen_t length) noexcept {
  SocketAddress result;
  if (address == nullptr) return result;
  if (length > sizeof(result.storage_)) length = sizeof(result.storage_);
  std::memcpy(&result.storage_, address, length);
  result.length_ = length;
  return result;
}

uint16_t SocketAddress::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

SocketAddress SocketAddress::WithPort(uint16_t port) const noexcept {
  SocketAddress result = *this;
  if (family() == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&result.storage_)->sin_port = htons(port);
  } else if (family() == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&result.storage_)->sin6_port = htons(port);
  }
  return result;
}

std::string SocketAddress::ToString() const {
  char text[INET6_ADDRSTRLEN + 16];
  switch (family()) {
    case AF_INET: {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(&storage_);
      inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
      return std::string(text) + ":" + std::to_string(port());
    }
    case AF_INET6: {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
      inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
      std::string result = "[" + std::string(text);
      if (sin6->sin6_scope_id != 0) result += "%" + std::to_string(sin6->sin6_scope_id);
      return result + "]:" + std::to_string(port());
    }
    case AF_UNIX: {
      const auto* sun = reinterpret_cast<const sockaddr_un*>(&storage_);
      size_t offset = offsetof(sockaddr_un, sun_path);
      if (length_ <= offset) return "unix:";  // unnamed (e.g. a socketpair end)
      size_t n = length_ - offset;
      if (sun->sun_path[0] == '\0') return "unix:@" + std::string(sun->sun_path + 1, n - 1);
      return "unix:" + std::string(sun->sun_path, strnlen(sun->sun_path, n));
    }
    default:
      return "unspecified";
  }
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
  if (a.family() != b.family()) return false;
  switch (a.family()) {
    case AF_INET: {
      const auto* x = reinterpret_cast<const sockaddr_in*>(&a.storage_);
      const auto* y = reinterpret_cast<const sockaddr_in*>(&b.storage_);
      return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    case AF_INET6: {
      const auto* x = reinterpret_cast<const sockaddr_in6*>(&a.storage_);
      const auto* y = reinterpret_cast<const sockaddr_in6*>(&b.storage_);
      return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
             std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(in6_addr)) == 0;
    }
    case AF_UNIX:
      return a.length_ == b.length_ && std::memcmp(&a.storage_, &b.storage_, a.length_) == 0;
    default:
      return true;
  }
}

}  // namespace kev::net
