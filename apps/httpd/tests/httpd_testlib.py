"""Helpers for httpd's integration tests: start the real binary, raw HTTP exchanges, PNG decoding.

Nothing here talks to the network beyond 127.0.0.1, and every server is started on --port=0
(the binary prints the port it got), so tests may run in parallel with others.
"""

import os
import re
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib

READY_RE = re.compile(rb"kev httpd serving (.*) at http://([^/]+):(\d+)/ on (\d+) shards?")


def backend():
    """The --backend the test target was declared with (default: io_uring)."""
    for arg in sys.argv[1:]:
        if arg.startswith("--backend="):
            return arg.split("=", 1)[1]
    return os.environ.get("KEV_BACKEND", "io_uring")


def runfiles_dir():
    for var in ("RUNFILES_DIR", "TEST_SRCDIR"):
        if os.environ.get(var):
            return os.environ[var]
    return os.path.abspath(__file__ + ".runfiles")


def binary_path():
    if os.environ.get("KEV_HTTPD_BINARY"):
        return os.environ["KEV_HTTPD_BINARY"]
    path = os.path.join(runfiles_dir(), "kev", "apps", "httpd", "httpd")
    if os.path.exists(path):
        return path
    # Run by hand from the repository (python3 apps/httpd/tests/httpd_test.py).
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "..", "bazel-bin", "apps", "httpd", "httpd")


def tmp_dir():
    return os.environ.get("TEST_TMPDIR", "/tmp")


def raise_nofile(want):
    """Raises RLIMIT_NOFILE towards `want` (children inherit it). Returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(want, hard) if hard != resource.RLIM_INFINITY else want
    if new > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Server:
    """A running httpd. `flags` are extra command-line flags."""

    def __init__(self, *flags, root=None, smp=2, env=None):
        args = [binary_path(), "--port=0", "--backend=" + backend(), "--smp=%d" % smp]
        if root is not None:
            args.append("--root=" + root)
        args += list(flags)
        child_env = dict(os.environ)
        child_env.setdefault("RUNFILES_DIR", runfiles_dir())
        child_env.update(env or {})
        self.args = args
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=child_env)
        self.stderr_chunks = []
        line = self._read_ready_line(timeout=20)
        m = READY_RE.search(line)
        if not m:
            self.kill()
            raise AssertionError("httpd did not start: %r\nstderr: %s" %
                                 (line, self.stderr()))
        self.root = m.group(1).decode()
        self.host = "127.0.0.1"
        self.port = int(m.group(3))
        self.shards = int(m.group(4))

    def _read_ready_line(self, timeout):
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while b"\n" not in buf and time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                buf += chunk
            elif self.proc.poll() is not None:
                break
        return buf

    def url(self, path="/"):
        return "http://%s:%d%s" % (self.host, self.port, path)

    def connect(self, timeout=10):
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def stderr(self):
        if getattr(self, "stderr_text", None) is not None:
            return self.stderr_text
        try:
            return self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""
        except Exception:  # pylint: disable=broad-except
            return ""

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals the server and returns its exit code (killing it after `timeout`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
            self.stderr_text = self.stderr()
            self.close_pipes()
            return code
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("httpd did not exit within %ss of signal %d" % (timeout, sig))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.close_pipes()

    def close_pipes(self):
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()


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
