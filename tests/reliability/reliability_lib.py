"""Helpers for the reliability tests: start the real servers, count their fds, measure them.

Every server is started on --port=0 on 127.0.0.1 (the binary prints the port it got), so these
tests may run in parallel with others. Nothing here touches the network beyond loopback.
"""

import os
import re
import signal
import socket
import struct
import sys
import time

try:
    from tests.testing import proc_stats, server_process
except ImportError:  # Run by hand from the repository: put its root on the path.
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    from tests.testing import proc_stats, server_process
from tests.testing.server_process import ServerProcess, runfiles_dir, tmp_dir

HTTPD_READY = re.compile(rb"kev httpd serving .* at http://([^/]+):(\d+)/ on (\d+) shards?")
ECHO_READY = re.compile(rb"kev echo listening on ([^:]+):(\d+)")


# The test's own arguments, kept before strip_args() hides them from unittest.
_ARGS = list(sys.argv[1:])


def arg(name, default=None):
    """Value of --name=value among the test's arguments (BUILD `args`), else `default`."""
    prefix = "--%s=" % name
    for a in _ARGS:
        if a.startswith(prefix):
            return a[len(prefix):]
    return default


def strip_args():
    """Leaves only the arguments unittest understands (ours all start with --x=)."""
    sys.argv[1:] = [a for a in sys.argv[1:] if not (a.startswith("--") and "=" in a)]


def backend():
    return server_process.backend(_ARGS)


def binary(rel):
    """A kev binary from the runfiles (rel like 'apps/httpd/httpd')."""
    path = os.path.join(runfiles_dir(), "kev", rel)
    if os.path.exists(path):
        return path
    here = os.path.dirname(os.path.abspath(__file__))  # run by hand from the repository
    return os.path.join(here, "..", "..", "bazel-bin", rel)


_SANITIZER = {}


def sanitizer(path):
    """'asan', 'tsan' or '' for the binary at `path` (its runtime's symbols are in it)."""
    if path not in _SANITIZER:
        with open(path, "rb") as f:
            data = f.read()
        _SANITIZER[path] = ("tsan" if b"__tsan_init" in data else
                            "asan" if b"__asan_init" in data else "")
    return _SANITIZER[path]


def scale(path):
    """Load factor: 1 for an optimised build, smaller under a sanitizer (~5-15x slower)."""
    override = os.environ.get("KEV_RELIABILITY_SCALE")
    if override:
        return float(override)
    return {"": 1.0, "asan": 0.3, "tsan": 0.2}[sanitizer(path)]


def make_site(root):
    """Files of several sizes: small ones come from httpd's cache, the big one goes through the
    sendfile pipeline (splice, short transfers). Returns {url path: bytes}."""
    os.makedirs(root, exist_ok=True)
    files = {
        "/small.txt": b"kev reliability\n" * 8,
        "/index.html": b"<!doctype html><title>kev</title><p>" + b"x" * 3000 + b"\n",
        "/big.bin": bytes((i * 7 + i // 251) & 0xFF for i in range(300 * 1024)),
    }
    for path, body in files.items():
        with open(os.path.join(root, path.lstrip("/")), "wb") as f:
            f.write(body)
    return files


class Server(ServerProcess):
    """A running kev server process (httpd or echo_server), with its fds and usage at hand."""

    def __init__(self, args, ready_re, env=None, preexec_fn=None, timeout=30):
        super().__init__(args, ready_re, env=env, preexec_fn=preexec_fn, timeout=timeout)
        self.host = "127.0.0.1"
        self.port = int(self.ready.group(2))

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def fds(self):
        out = {}
        base = "/proc/%d/fd" % self.pid
        for name in os.listdir(base):
            try:
                out[int(name)] = os.readlink(os.path.join(base, name))
            except OSError:
                pass
        return out

    def rss_kib(self):
        rss = proc_stats.process_rss_kib(self.pid)
        if rss is None:
            raise AssertionError("no VmRSS")
        return rss

    def cpu_seconds(self):
        """User + system CPU time of the whole process so far."""
        cpu = proc_stats.process_cpu_seconds(self.pid)
        if cpu is None:
            raise AssertionError("the server is gone")
        return cpu

    def fd_kinds(self):
        """{'socket': n, 'pipe': n, 'other': n} of the server's open fds."""
        kinds = {"socket": 0, "pipe": 0, "other": 0}
        for target in self.fds().values():
            kind = target.split(":", 1)[0]
            kinds[kind if kind in kinds else "other"] += 1
        return kinds

    def wait_fds(self, baseline, timeout=15):
        """Polls until no socket or other fd is above `baseline` (from fd_kinds()). Pipes are
        not waited for: the sendfile engine keeps emptied pipes in a
        per-shard cache of at most 64 (aio/internal/sendfile_engine.h), so their number
        follows the peak concurrency, not the current load. Returns the last fd_kinds()."""
        deadline = time.monotonic() + timeout
        while True:
            kinds = self.fd_kinds()
            if all(kinds[k] <= baseline[k] for k in ("socket", "other")):
                return kinds
            if time.monotonic() > deadline:
                return kinds
            time.sleep(0.1)


def start_httpd(root, smp=2, env=None, flags=(), preexec_fn=None):
    path = binary("apps/httpd/httpd")
    args = [path, "--port=0", "--smp=%d" % smp, "--backend=" + backend(), "--root=" + root]
    return Server(args + list(flags), HTTPD_READY, env=env, preexec_fn=preexec_fn)


def start_echo(smp=2, env=None):
    path = binary("apps/echo/echo_server")
    args = [path, "--port=0", "--smp=%d" % smp, "--backend=" + backend()]
    return Server(args, ECHO_READY, env=env)


# ---- Clients ----

def connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def reset_close(sock):
    """Closes with an RST (SO_LINGER 0), as a client that vanishes mid-transfer."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class ConnectTimeout(OSError):
    """connect() did not complete: the listen backlog was full and the kernel dropped our SYN
    (its retransmissions back off 1, 2, 4... s). Client-side overload, not a server hang."""


def http_get(port, path, timeout=10):
    """One GET on a fresh connection (Connection: close). Returns (status, body); raises
    OSError/AssertionError when the exchange breaks (reset, early close, bad framing), and
    ConnectTimeout when the connection was never established."""
    try:
        sock = connect(port, timeout)
    except socket.timeout as e:
        raise ConnectTimeout(str(e)) from e
    with sock as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: kev\r\nConnection: close\r\n\r\n" % path.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError("no complete head (%d bytes)" % len(data))
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is not None and len(body) != length:
        raise AssertionError("body %d bytes, Content-Length %d" % (len(body), length))
    return status, body


def with_retries(fn, attempts=100, delay=0.02):
    """Calls fn() until it returns without raising; returns (value, failures before success)."""
    failures = 0
    last = None
    for _ in range(attempts):
        try:
            return fn(), failures
        except (OSError, AssertionError, ValueError, IndexError) as e:
            failures += 1
            last = e
            time.sleep(delay)
    raise AssertionError("still failing after %d attempts: %r" % (attempts, last))


def echo_once(port, payload, timeout=10):
    """Sends payload on a fresh connection, half-closes, expects exactly payload back."""
    with connect(port, timeout) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    if got != payload:
        raise AssertionError("echoed %d of %d bytes (or different bytes)" % (len(got), len(payload)))
    return len(got)
