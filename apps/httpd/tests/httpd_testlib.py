"""Helpers for httpd's integration tests: start the real binary, raw HTTP exchanges, PNG decoding.

Nothing here talks to the network beyond 127.0.0.1, and every server is started on --port=0
(the binary prints the port it got), so tests may run in parallel with others.
"""

import os
import re
import resource
import signal
import socket
import struct
import sys
import zlib

try:
    from tests.testing.server_process import ServerProcess, backend, runfiles_dir, tmp_dir
except ImportError:  # Run by hand from the repository: put its root on the path.
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
    from tests.testing.server_process import ServerProcess, backend, runfiles_dir, tmp_dir

READY_RE = re.compile(rb"kev httpd serving (.*) at http://([^/]+):(\d+)/ on (\d+) shards?")


def binary_path():
    if os.environ.get("KEV_HTTPD_BINARY"):
        return os.environ["KEV_HTTPD_BINARY"]
    path = os.path.join(runfiles_dir(), "kev", "apps", "httpd", "httpd")
    if os.path.exists(path):
        return path
    # Run by hand from the repository (python3 apps/httpd/tests/httpd_test.py).
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "..", "bazel-bin", "apps", "httpd", "httpd")


def raise_nofile(want):
    """Raises RLIMIT_NOFILE towards `want` (children inherit it). Returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(want, hard) if hard != resource.RLIM_INFINITY else want
    if new > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Server(ServerProcess):
    """A running httpd on an ephemeral port. `flags` are extra command-line flags."""

    def __init__(self, *flags, root=None, smp=2, env=None):
        args = [binary_path(), "--port=0", "--backend=" + backend(), "--smp=%d" % smp]
        if root is not None:
            args.append("--root=" + root)
        super().__init__(args + list(flags), READY_RE, env=env, timeout=20)
        self.root = self.ready.group(1).decode()
        self.host = "127.0.0.1"
        self.port = int(self.ready.group(3))
        self.shards = int(self.ready.group(4))

    def url(self, path="/"):
        return "http://%s:%d%s" % (self.host, self.port, path)

    def connect(self, timeout=10):
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals the server and returns its exit code (killing it after `timeout`)."""
        return super().stop(sig, timeout)


# ---- Raw HTTP ----

class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> value (last wins)
        self.body = body

    def __repr__(self):
        return "<Response %d %s %r>" % (self.status, self.reason, self.body[:60])


class Reader:
    """Reads HTTP/1.1 responses from a socket, in order (for pipelining)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk
        return bool(chunk)

    def read_response(self, head_request=False):
        """The next response, or None if the connection closed before one started."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                if self.buf:
                    raise AssertionError("connection closed mid-head: %r" % self.buf[:200])
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        assert version == "HTTP/1.1", lines[0]
        headers = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        length = 0
        if not head_request and int(status) not in (204, 304) and int(status) >= 200:
            length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            if not self._fill():
                raise AssertionError("connection closed mid-body")
        body, self.buf = self.buf[:length], self.buf[length:]
        return Response(int(status), reason, headers, body)

    def closed(self, timeout=5):
        """True if the peer closes (EOF or reset) within `timeout` with nothing more sent."""
        self.sock.settimeout(timeout)
        try:
            while self._fill():
                pass
            return True
        except socket.timeout:
            return False


def exchange(server, raw, head_request=False):
    """Sends `raw` on a fresh connection and returns (first response or None, closed_after)."""
    with server.connect() as s:
        s.sendall(raw)
        r = Reader(s)
        resp = r.read_response(head_request)
        return resp, r.closed(timeout=5)


def get(server, path, headers=None, method="GET", version="1.1"):
    extra = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
    raw = ("%s %s HTTP/%s\r\nHost: test\r\nConnection: close\r\n%s\r\n" %
           (method, path, version, extra)).encode("latin-1")
    resp, _ = exchange(server, raw, head_request=(method == "HEAD"))
    return resp


# ---- PNG (8-bit RGB/RGBA, non-interlaced: what Chromium writes and the demo image is) ----

def decode_png(data):
    """Returns (width, height, rows) with rows[y][x] = (r, g, b)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, ctype = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"IEND":
            break
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        ftype = raw[i]
        line = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 255
            elif ftype == 2:
                line[x] = (line[x] + b) & 255
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(width)])
        prev = line
    return width, height, rows
