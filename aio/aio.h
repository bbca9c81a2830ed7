/* aio/aio.h: the kevent AIO sendfile calls (KEVENT_SPEC.md), with C linkage.
 *
 * Both calls start a transfer on the kevent queue `kevent_fd` and return at once. The transfer
 * runs whenever a thread waits on that queue (kevent_get_events / kevent_wait); its completion
 * is a KEVENT_AIO event whose `id.raw_u64` and `ptr` carry the returned cookie:
 *   success: ret_data[0..1] = 64-bit byte count (ret_data[0] the low word), no BROKEN;
 *   failure: ret_flags has KEVENT_RET_BROKEN, `event` holds the positive errno
 *            (EPIPE / ECONNRESET: peer gone; ENODATA: the file ended before offset + count;
 *            EBADF: bad descriptor; ECANCELED: the queue was closed first).
 *
 *   int kq = kevent_init(NULL, 0, 0);
 *   long cookie = aio_sendfile_path(kq, sock, hdr, hdr_len, "/srv/index.html", 0, size);
 *   struct ukevent ev;
 *   kevent_get_events(kq, 1, 1, (struct timespec){-1, 0}, &ev, 0);  // ev.ptr == (void*)cookie
 *
 * The engine is the one of kev::aio::SendFile: sendfile(2) whenever a non-blocking `sock_fd` is
 * writable, on both backends. A blocking `sock_fd` on io_uring is spliced through a pipe by the
 * kernel's workers instead, so the waiting thread never blocks; under epoll a blocking socket
 * may block the thread that drives the queue (give it a non-blocking socket). SIGPIPE is ignored process-wide (once, if it had the default
 * disposition), so a vanished peer is an EPIPE completion, not a dead process.
 *
 * Thread safety: like the rest of the kevent C API, callable from any thread. `sock_fd` and
 * `in_fd` must stay open until the completion is delivered; `header` is copied before the call
 * returns, `filename` is opened (O_RDONLY) during the call and closed by the transfer.
 */
#ifndef KEV_AIO_AIO_H_
#define KEV_AIO_AIO_H_

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Sends `count` bytes of `in_fd` from `offset` to the stream socket `sock_fd`. Returns a
 * positive cookie, or a negative errno at once: -EBADF (bad queue or descriptor), -EINVAL
 * (negative offset), -ENOMEM. count == 0 completes with 0 bytes. */
long aio_sendfile(int kevent_fd, int sock_fd, int in_fd, off_t offset, size_t count);

/* Opens `filename`, sends `header_size` bytes of `header` (may be NULL with size 0), then
 * `count` bytes of the file from `offset`, and closes the file. The byte count of the
 * completion includes the header. Returns a positive cookie or a negative errno at once
 * (-ENOENT / -EACCES from the open, -EBADF, -EINVAL, -ENOMEM). */
long aio_sendfile_path(int kevent_fd, int sock_fd, void* header, size_t header_size, char* filename,
                       off_t offset, size_t count);

#ifdef __cplusplus
}
#endif

#endif /* KEV_AIO_AIO_H_ */
