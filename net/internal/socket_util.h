// net/internal/socket_util.h: small synchronous socket helpers shared by net/ (option setting,
// address queries). Each throws std::system_error on failure. Not part of the public API.
#ifndef KEV_NET_INTERNAL_SOCKET_UTIL_H_
#define KEV_NET_INTERNAL_SOCKET_UTIL_H_

#include "net/connection.h"
#include "net/socket_address.h"

namespace kev::net::internal {

// Throws std::system_error(errno) with `what` as context.
[[noreturn]] void ThrowErrno(const char* what);
// Throws std::system_error(error) with `what` as context.
[[noreturn]] void ThrowError(int error, const char* what);

void SetIntOption(int fd, int level, int name, int value, const char* what);
// Applies `options` to a stream socket (TCP options only when it is TCP).
void ApplySocketOptions(int fd, int family, const SocketOptions& options);
// Makes `fd` non-blocking and close-on-exec.
void MakeNonBlocking(int fd);
// The socket's family (SO_DOMAIN).
int SocketFamily(int fd);
SocketAddress LocalAddress(int fd);
SocketAddress PeerAddress(int fd);

}  // namespace kev::net::internal

#endif  // KEV_NET_INTERNAL_SOCKET_UTIL_H_
