/* tests/c_echo/c_echo.c: a TCP echo server on loopback written in C11 against kevent/kevent.h
 * alone (no kev C++ code is visible from here).
 *
 * It listens on 127.0.0.1 (port from argv[1], default 0 = any), prints "port <n>" on stdout,
 * and echoes every byte each client sends. One kevent queue, level-triggered requests:
 *   SOCKET ACCEPT on the listener        -> accept4 until EAGAIN, add SOCKET RECV per client
 *   SOCKET RECV on a client              -> read, write back; what does not fit is kept and the
 *                                           request is switched to SEND (MODIFY) until flushed
 *   SOCKET SEND on a client              -> flush; back to RECV when empty
 *   POLL POLLIN on stdin                 -> a "quit" line (or EOF) stops the server
 *   PIPE RECV on a self-pipe             -> SIGTERM stops the server
 * Every socket is non-blocking. Exits 0 after printing "bye".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kevent/kevent.h"

enum { kBufSize = 65536, kMaxEvents = 64 };

struct conn {
  struct conn *prev, *next; /* every open connection, to release them at exit */
  int fd;
  size_t pending; /* bytes in out[] not yet written back */
  size_t offset;
  char out[kBufSize];
};

static int sig_pipe[2] = {-1, -1};
static struct conn conns = {&conns, &conns, -1, 0, 0, {0}}; /* list head */

static struct conn *conn_new(int fd) {
  struct conn *c = calloc(1, sizeof(*c));
  if (c == NULL) return NULL;
  c->fd = fd;
  c->next = &conns;
  c->prev = conns.prev;
  conns.prev->next = c;
  conns.prev = c;
  return c;
}

static void conn_free(struct conn *c) {
  c->prev->next = c->next;
  c->next->prev = c->prev;
  close(c->fd);
  free(c);
}

static void on_sigterm(int signo) {
  (void)signo;
  const char c = 't';
  ssize_t rc = write(sig_pipe[1], &c, 1); /* async-signal-safe */
  (void)rc;
}

static void die(const char *what, int err) {
  fprintf(stderr, "c_echo: %s: %s\n", what, strerror(err));
  exit(1);
}

static struct ukevent request(unsigned type, int fd, unsigned event, void *ptr) {
  struct ukevent uk;
  memset(&uk, 0, sizeof(uk));
  uk.type = type;
  uk.id.raw[0] = (unsigned)fd;
  uk.event = event;
  uk.ptr = ptr;
  return uk;
}

static void ctl(int kfd, unsigned cmd, struct ukevent *uk) {
  int rc = kevent_ctl(kfd, cmd, 1, uk);
  if (rc != 1) die("kevent_ctl", -rc);
  if (uk->ret_flags & KEVENT_RET_BROKEN) die("kevent_ctl entry", (int)uk->ret_data[0]);
}

static void drop(int kfd, struct conn *c, unsigned event) {
  struct ukevent uk = request(KEVENT_SOCKET, c->fd, event, c);
  kevent_ctl(kfd, KEVENT_CTL_REMOVE, 1, &uk); /* BROKEN if the origin already broke it: fine */
  conn_free(c);
}

/* Writes c->out; returns 0 when empty, 1 when the socket is full, -1 on error. */
static int flush(struct conn *c) {
  while (c->pending > 0) {
    ssize_t n = send(c->fd, c->out + c->offset, c->pending, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN ? 1 : -1;
    c->offset += (size_t)n;
    c->pending -= (size_t)n;
  }
  c->offset = 0;
  return 0;
}

/* RECV ready: read once (level-triggered: more comes at the next wait) and echo. */
static void on_recv(int kfd, struct conn *c) {
  ssize_t n = recv(c->fd, c->out, sizeof(c->out), 0);
  if (n == 0 || (n < 0 && errno != EAGAIN)) {
    drop(kfd, c, KEVENT_SOCKET_RECV);
    return;
  }
  if (n < 0) return;
  c->pending = (size_t)n;
  c->offset = 0;
  int rc = flush(c);
  if (rc < 0) {
    drop(kfd, c, KEVENT_SOCKET_RECV);
  } else if (rc > 0) {
    struct ukevent uk = request(KEVENT_SOCKET, c->fd, KEVENT_SOCKET_SEND, c);
    ctl(kfd, KEVENT_CTL_MODIFY, &uk);
  }
}

static void on_send(int kfd, struct conn *c) {
  int rc = flush(c);
  if (rc < 0) {
    drop(kfd, c, KEVENT_SOCKET_SEND);
  } else if (rc == 0) {
    struct ukevent uk = request(KEVENT_SOCKET, c->fd, KEVENT_SOCKET_RECV, c);
    ctl(kfd, KEVENT_CTL_MODIFY, &uk);
  }
}

static void on_accept(int kfd, int listener) {
  for (;;) {
    int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != ECONNABORTED) die("accept4", errno);
      return;
    }
    struct conn *c = conn_new(fd);
    if (c == NULL) die("calloc", ENOMEM);
    struct ukevent uk = request(KEVENT_SOCKET, fd, KEVENT_SOCKET_RECV, c);
    ctl(kfd, KEVENT_CTL_ADD, &uk);
    if (uk.ret_flags & KEVENT_RET_DONE) on_recv(kfd, c); /* data was already there */
  }
}

/* stdin readable: 1 on a "quit" line, -1 at its end (stop watching it), 0 otherwise. */
static int on_stdin(void) {
  char line[256];
  ssize_t n = read(0, line, sizeof(line) - 1);
  if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
  if (n == 0) return -1;
  line[n] = '\0';
  return strstr(line, "quit") != NULL;
}

int main(int argc, char **argv) {
  const int port = argc > 1 ? atoi(argv[1]) : 0;
  if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) != 0) die("pipe2", errno);
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_sigterm;
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener < 0) die("socket", errno);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons((unsigned short)port);
  if (bind(listener, (struct sockaddr *)&addr, sizeof(addr)) != 0) die("bind", errno);
  if (listen(listener, 128) != 0) die("listen", errno);
  socklen_t len = sizeof(addr);
  getsockname(listener, (struct sockaddr *)&addr, &len);

  int kfd = kevent_init(NULL, 0, 0);
  if (kfd < 0) die("kevent_init", -kfd);
  struct ukevent uk = request(KEVENT_SOCKET, listener, KEVENT_SOCKET_ACCEPT, NULL);
  ctl(kfd, KEVENT_CTL_ADD, &uk);
  uk = request(KEVENT_PIPE, sig_pipe[0], KEVENT_SOCKET_RECV, NULL);
  ctl(kfd, KEVENT_CTL_ADD, &uk);
  /* Level-triggered and persistent: if stdin is readable at once the ADD says DONE, the
   * request stays registered, and the first wait delivers it. A closed stdin is just ignored. */
  uk = request(KEVENT_POLL, 0, KEVENT_POLL_POLLIN, NULL);
  kevent_ctl(kfd, KEVENT_CTL_ADD, 1, &uk);

  printf("port %d\n", ntohs(addr.sin_port));
  fflush(stdout);

  int running = 1;
  while (running) {
    struct ukevent ev[kMaxEvents];
    struct timespec forever = {-1, 0};
    int n = kevent_get_events(kfd, 1, kMaxEvents, forever, ev, 0);
    if (n < 0) die("kevent_get_events", -n);
    for (int i = 0; i < n && running; ++i) {
      const struct ukevent *e = &ev[i];
      if (e->ret_flags & KEVENT_RET_BROKEN) {
        if (e->ptr != NULL) conn_free(e->ptr); /* delivered once, already removed */
        continue;
      }
      if (e->type == KEVENT_PIPE) {
        running = 0; /* SIGTERM */
      } else if (e->type == KEVENT_POLL) {
        const int rc = on_stdin();
        if (rc > 0) running = 0;
        if (rc < 0) { /* end of input: stop watching, keep serving */
          struct ukevent in = request(KEVENT_POLL, 0, KEVENT_POLL_POLLIN, NULL);
          kevent_ctl(kfd, KEVENT_CTL_REMOVE, 1, &in);
        }
      } else if (e->ptr == NULL) {
        on_accept(kfd, listener);
      } else if (e->event == KEVENT_SOCKET_SEND) {
        on_send(kfd, e->ptr);
      } else {
        on_recv(kfd, e->ptr);
      }
    }
  }
  kevent_close(kfd); /* removes every request */
  while (conns.next != &conns) conn_free(conns.next);
  close(listener);
  printf("bye\n");
  fflush(stdout);
  return 0;
}
