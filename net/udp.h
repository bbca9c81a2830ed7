// net/udp.h: UDP sockets (IPv4 / IPv6; datagram Unix sockets too).
//
//   kev::net::UdpSocket sock = kev::net::UdpSocket::Bind(kev::net::SocketAddress::Loopback4(0));
//   kev::net::Datagram d = co_await sock.Receive();             // d.data valid until next Receive
//   co_await sock.SendTo(d.from, d.data);                       // echo it back
//
// Receive() reads into a per-socket buffer (reused; no allocation per datagram). SendTo() sends
// one datagram from the caller's buffer, which must stay valid until its future resolves.
//
// Threading: a UdpSocket belongs to the shard that created it; call everything there.
#ifndef KEV_NET_UDP_H_
#define KEV_NET_UDP_H_

#include <cstddef>
#include <span>

#include "net/socket_address.h"
#include "reactor/future.h"

namespace kev::net {

namespace internal {
class UdpState;
}  // namespace internal

// One received datagram. `data` points into the socket's receive buffer and stays valid until
// the next Receive() or the socket's destruction. `truncated` is set when the datagram was
// longer than the receive buffer (the tail is lost, as with recvmsg's MSG_TRUNC).
struct Datagram {
  SocketAddress from;
  std::span<const std::byte> data;
  bool truncated = false;
};

class UdpSocket {
 public:
  UdpSocket() noexcept = default;
  // Creates a non-blocking datagram socket bound to `address` (port 0: the kernel picks one,
  // see local_address()). `max_datagram` sizes the receive buffer. Throws std::system_error.
  static UdpSocket Bind(const SocketAddress& address, size_t max_datagram = 65536);

  UdpSocket(UdpSocket&& other) noexcept;
  UdpSocket& operator=(UdpSocket&& other) noexcept;
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;
  // Same as Close() with nobody waiting.
  ~UdpSocket();

  bool valid() const noexcept { return state_ != nullptr; }
  int fd() const noexcept;
  SocketAddress local_address() const;

  // The next datagram. One Receive() at a time (checked). Fails with std::system_error
  // (ECANCELED after Close()).
  Future<Datagram> Receive();
  // Sends `data` to `to` as one datagram. `data` must stay valid until the future resolves
  // (`to` is copied). Several sends may be in flight. Fails with std::system_error.
  Future<void> SendTo(const SocketAddress& to, std::span<const std::byte> data);

  // Cancels in-flight operations (ECANCELED) and closes the socket. Idempotent.
  Future<void> Close();

 private:
  explicit UdpSocket(internal::UdpState* state) noexcept : state_(state) {}
  internal::UdpState* state_ = nullptr;
};

}  // namespace kev::net

#endif  // KEV_NET_UDP_H_
