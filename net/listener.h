// net/listener.h: listening sockets, one per shard (SO_REUSEPORT), and Accept.
//
// Listen() binds and listens synchronously; Accept() returns the next connection. On io_uring
// one multishot accept stays armed per listener, so a burst of connections costs one CQE each
// and no SQE; on epoll the poller emulates the same with accept4 on readiness. When the process
// runs out of descriptors (EMFILE/ENFILE) the listener stops accepting, waits (10 ms, doubling
// to 100 ms) and retries: it neither spins nor fails the Accept() futures.
//
//   kev::Future<void> Serve(uint16_t port) {
//     kev::net::Listener listener = kev::net::Listen(kev::net::SocketAddress::Any4(port));
//     while (true) {
//       kev::net::Connection conn = co_await listener.Accept();
//       (void)HandleConnection(std::move(conn));   // a coroutine taking the Connection by value
//     }
//   }
//
// Each shard calls Listen() with the same address; with ListenOptions::reuse_port the kernel
// spreads incoming connections over the shards' listeners.
//
// Threading: a Listener belongs to the shard that created it; call everything there, inside a
// running reactor.
#ifndef KEV_NET_LISTENER_H_
#define KEV_NET_LISTENER_H_

#include "net/connection.h"
#include "net/socket_address.h"
#include "reactor/future.h"

namespace kev::net {

namespace internal {
class ListenerState;
}  // namespace internal

struct ListenOptions {
  // listen(2) backlog (the kernel clamps it to net.core.somaxconn).
  int backlog = 1024;
  // SO_REUSEPORT: several sockets (one per shard) may bind the same address.
  bool reuse_port = true;
  // SO_REUSEADDR: rebind at once after a restart (TIME_WAIT). Ignored for Unix sockets.
  bool reuse_address = true;
  // IPV6_V6ONLY for IPv6 listeners.
  bool v6_only = false;
  // Applied to every accepted connection.
  SocketOptions connection_options;
  // Accepted connections queued while nobody is in Accept(); beyond this the multishot accept
  // is paused (the kernel's backlog holds the rest) until Accept() drains the queue.
  size_t max_queued = 256;
};

class Listener {
 public:
  // An invalid listener (valid() false).
  Listener() noexcept = default;
  Listener(Listener&& other) noexcept;
  Listener& operator=(Listener&& other) noexcept;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  // Same as Close() with nobody waiting for it.
  ~Listener();

  bool valid() const noexcept { return state_ != nullptr; }
  // The listening socket, or -1 once closed.
  int fd() const noexcept;
  // The bound address; with port 0 in Listen(), the port the kernel chose.
  SocketAddress local_address() const;

  // The next accepted connection. Several Accept() calls may be pending; they are served in
  // order. Fails with std::system_error(ECANCELED) when the listener is closed, or with the
  // error of a listening socket that broke (EINVAL, ...). EMFILE/ENFILE/ENOMEM/ENOBUFS never
  // fail it: the listener backs off and retries.
  Future<Connection> Accept();

  // Stops accepting: pending Accept() futures fail with ECANCELED, connections accepted but not
  // handed out are closed, the socket is closed. Resolves when the socket is closed. Idempotent.
  Future<void> Close();

 private:
  explicit Listener(internal::ListenerState* state) noexcept : state_(state) {}
  friend Listener Listen(const SocketAddress& address, const ListenOptions& options);

  internal::ListenerState* state_ = nullptr;  // One reference, owned by this handle.
};

// Creates a non-blocking listening socket bound to `address` (IPv4, IPv6 or Unix; port 0 picks
// a free port, see Listener::local_address). Synchronous (socket/bind/listen never block).
// Throws std::system_error (EADDRINUSE, EACCES, ...). Call on the shard that will accept.
Listener Listen(const SocketAddress& address, const ListenOptions& options = {});

// A server holds one descriptor per connection, and the default soft RLIMIT_NOFILE (often 1024)
// is far below what a server expects: raises the soft limit to the hard one. Returns the soft
// limit in force afterwards (unchanged if it could not be raised). Call once at start-up, from
// main, before shards start (it is process-wide).
uint64_t RaiseOpenFileLimit();

}  // namespace kev::net

#endif  // KEV_NET_LISTENER_H_
