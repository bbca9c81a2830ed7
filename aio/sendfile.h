// aio/sendfile.h: send a range of a file to a connection without copying it through user space.
//
// One engine serves SendFile() here and the C functions aio_sendfile / aio_sendfile_path
// (aio/aio.h): on both backends it calls sendfile(2) at once and then whenever the socket is
// writable again (a one-shot POLLOUT poll through the shard's poller), so a body that fits the
// socket buffer costs one syscall in the calling loop turn. (Splicing through a pipe in
// io_uring's worker threads was slower: see aio/internal/sendfile_engine.h and docs/aio.md.)
// Short transfers are resumed until `count` bytes are sent.
//
//   co_await conn.Write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");  // buffered
//   size_t sent = co_await kev::aio::SendFile(conn, file, 0, 1000);        // headers go first
//   // Or, cheaper (the head rides in the file's first packets, no separate send):
//   sent = co_await kev::aio::SendFile(conn, head, file.fd(), 0, 1000);
//
// Ordering: bytes written with Connection::Write before the call are sent first; bytes written
// during the transfer are held and sent after it.
//
// Errors (std::system_error on the future):
//   EPIPE / ECONNRESET  the peer is gone;
//   ENODATA             the file ended before offset + count (it was truncated, or the range
//                       was wrong): the transfer stops instead of waiting for bytes that will
//                       never come; bytes already sent stay sent, so the stream is now broken;
//   EBADF / EINVAL      a bad file or socket;
//   ECANCELED           the connection was closed during the transfer.
// After a failure the connection's output is broken (later writes fail): the peer has a
// partial body, so the only sane thing is to close the connection.
//
// Threading: call on the connection's shard, inside a running reactor.
#ifndef KEV_AIO_SENDFILE_H_
#define KEV_AIO_SENDFILE_H_

#include <sys/types.h>

#include <cstddef>
#include <string_view>

#include "aio/file.h"
#include "net/connection.h"
#include "reactor/future.h"

namespace kev::aio {

// Sends `count` bytes of `file_fd` starting at `offset` on `connection`. `file_fd` must stay
// open until the future resolves (the file position is not used or changed). One SendFile per
// connection at a time (checked). Resolves with `count` (0 is allowed and resolves at once).
Future<size_t> SendFile(net::Connection& connection, int file_fd, off_t offset, size_t count);
inline Future<size_t> SendFile(net::Connection& connection, const File& file, off_t offset,
                               size_t count) {
  return SendFile(connection, file.fd(), offset, count);
}

// Sends `head` (e.g. a response head) and then `count` bytes of `file_fd` from `offset`: the
// same bytes as `co_await connection.Write(head)` followed by SendFile(connection, file_fd,
// offset, count), but cheaper. The head is not queued as a write of its own (on io_uring that
// is a send operation and a loop turn before the file may start); it goes out with one inline
// send(2) flagged MSG_MORE, so it shares TCP segments with the file's first bytes, and
// sendfile(2) follows in the same call when the socket has room. `head` is copied before the
// call returns. Ordering, errors and the one-transfer rule are those of SendFile. Resolves
// with `count` (the file bytes; the head is not counted). With `count` == 0 it is just
// Write(head).
Future<size_t> SendFile(net::Connection& connection, std::string_view head, int file_fd,
                        off_t offset, size_t count);

}  // namespace kev::aio

#endif  // KEV_AIO_SENDFILE_H_
