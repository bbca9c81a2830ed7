#include "net/internal/socket_util.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <system_error>

namespace kev::net::internal {

void ThrowErrno(const char* what) { ThrowError(errno, what); }

void ThrowError(int error, const char* what) {
  throw std::system_error(error, std::system_category(), what);
}

void SetIntOption(int fd, int level, int name, int value, const char* what) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) ThrowErrno(what);
}

void ApplySocketOptions(int fd, int family, const SocketOptions& options) {
  bool tcp = family == AF_INET || family == AF_INET6;
  if (tcp && options.tcp_nodelay) SetIntOption(fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
  if (tcp && options.keep_alive) SetIntOption(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
  if (options.send_buffer_size > 0) {
    SetIntOption(fd, SOL_SOCKET, SO_SNDBUF, options.send_buffer_size, "SO_SNDBUF");
  }
  if (options.receive_buffer_size > 0) {
    SetIntOption(fd, SOL_SOCKET, SO_RCVBUF, options.receive_buffer_size, "SO_RCVBUF");
  }
}

void MakeNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) ThrowErrno("fcntl(O_NONBLOCK)");
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) ThrowErrno("fcntl(FD_CLOEXEC)");
}

int SocketFamily(int fd) {
  int family = 0;
  socklen_t length = sizeof(family);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &length) != 0) ThrowErrno("SO_DOMAIN");
  return family;
}

SocketAddress LocalAddress(int fd) {
  sockaddr_storage storage;
  socklen_t length = sizeof(storage);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    ThrowErrno("getsockname");
  }
  return SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&storage), length);
}

SocketAddress PeerAddress(int fd) {
  sockaddr_storage storage;
  socklen_t length = sizeof(storage);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    ThrowErrno("getpeername");
  }
  return SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&storage), length);
}

}  // namespace kev::net::internal
