"""Integration tests for kev httpd: the real binary on a loopback port, real clients.

Run with --backend=io_uring or --backend=epoll (the two Bazel targets do). Clients: curl,
Python's http.client, raw sockets (malformed, pipelined, traversal), a selectors client with
10,000 keep-alive connections, and headless Chromium (httpd_browser_test.py).
"""

import hashlib
import http.client
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import httpd_testlib as lib

HELLO = b"Hello, world!\n"
SECRET = b"TOP-SECRET-OUTSIDE-ROOT"
BIG_SIZE = 24 << 20  # larger than loopback socket buffers, so transfers are really in flight


def make_site():
    """A temporary document root (and a secret file beside it)."""
    outer = tempfile.mkdtemp(prefix="httpd_test.", dir=lib.tmp_dir())
    root = os.path.join(outer, "root")
    os.mkdir(root)
    with open(os.path.join(outer, "secret.txt"), "wb") as f:
        f.write(SECRET)
    with open(os.path.join(root, "hello.txt"), "wb") as f:
        f.write(HELLO)
    with open(os.path.join(root, "index.html"), "wb") as f:
        f.write(b"<!DOCTYPE html><title>t</title><p>index</p>\n")
    block = hashlib.sha256(b"kev").digest() * 2048  # 64 KiB, not all one byte
    with open(os.path.join(root, "big.bin"), "wb") as f:
        for _ in range(BIG_SIZE // len(block)):
            f.write(block)
    os.mkdir(os.path.join(root, "docs"))
    with open(os.path.join(root, "docs", "index.html"), "wb") as f:
        f.write(b"docs index")
    os.mkdir(os.path.join(root, "files"))
    with open(os.path.join(root, "files", "a <b>&c.txt"), "wb") as f:
        f.write(b"x")
    os.symlink("../secret.txt", os.path.join(root, "escape.txt"))
    os.symlink(os.path.join(outer, "secret.txt"), os.path.join(root, "absolute.txt"))
    os.symlink(outer, os.path.join(root, "outer_dir"))
    os.symlink("hello.txt", os.path.join(root, "alias.txt"))
    return outer, root


def sha(data):
    return hashlib.sha256(data).hexdigest()


def curl(*args):
    p = subprocess.run(["curl", "-sS", "--max-time", "20"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def wait_for(predicate, timeout=10, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class SharedServerTest(unittest.TestCase):
    """Protocol and safety tests against one server (autoindex and an access log on)."""

    @classmethod
    def setUpClass(cls):
        lib.raise_nofile(19000)
        cls.outer, cls.root = make_site()
        cls.log = os.path.join(cls.outer, "access.log")
        cls.server = lib.Server("--autoindex", "--access_log=" + cls.log,
                                "--max_connections=12000", root=cls.root)
        with open(os.path.join(cls.root, "big.bin"), "rb") as f:
            cls.big = f.read()

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        shutil.rmtree(cls.outer, ignore_errors=True)
        assert code == 0, "httpd exited with %d: %s" % (code, cls.server.stderr())

    # ---- curl ----

    def test_curl_get_and_head(self):
        rc, body, err = curl(self.server.url("/hello.txt"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(body, HELLO)
        rc, head, err = curl("-I", self.server.url("/hello.txt"))
        self.assertEqual(rc, 0, err)
        text = head.decode()
        self.assertTrue(text.startswith("HTTP/1.1 200 OK\r\n"), text)
        for field in ("Server: kev", "Content-Length: 14", "Content-Type: text/plain; charset=utf-8",
                      "Accept-Ranges: bytes", "Last-Modified: ", "ETag: \"", "Date: "):
            self.assertIn(field, text)
        rc, body, _ = curl(self.server.url("/"))
        self.assertIn(b"<p>index</p>", body)

    def test_curl_ranges(self):
        rc, body, err = curl("-r", "100-199", "-D", "-", self.server.url("/big.bin"))
        self.assertEqual(rc, 0, err)
        head, _, data = body.partition(b"\r\n\r\n")
        self.assertIn(b"HTTP/1.1 206 Partial Content", head)
        self.assertIn(b"Content-Range: bytes 100-199/%d" % BIG_SIZE, head)
        self.assertEqual(data, self.big[100:200])
        rc, body, _ = curl("-r", "-10", self.server.url("/hello.txt"))
        self.assertEqual(body, HELLO[-10:])
        rc, out, _ = curl("-r", "%d-" % BIG_SIZE, "-o", "/dev/null", "-w", "%{http_code}",
                          self.server.url("/big.bin"))
        self.assertEqual(out, b"416")

    def test_curl_conditional(self):
        _, head, _ = curl("-I", self.server.url("/hello.txt"))
        etag = re.search(rb"ETag: (\"[^\"]+\")", head).group(1).decode()
        last_modified = re.search(rb"Last-Modified: ([^\r]+)", head).group(1).decode()
        _, code, _ = curl("-H", "If-None-Match: " + etag, "-o", "/dev/null", "-w",
                          "%{http_code}", self.server.url("/hello.txt"))
        self.assertEqual(code, b"304")
        _, code, _ = curl("-H", "If-Modified-Since: " + last_modified, "-o", "/dev/null", "-w",
                          "%{http_code}", self.server.url("/hello.txt"))
        self.assertEqual(code, b"304")
        _, code, _ = curl("-H", "If-None-Match: \"other\"", "-o", "/dev/null", "-w",
                          "%{http_code}", self.server.url("/hello.txt"))
        self.assertEqual(code, b"200")

    def test_curl_keepalive_reuse(self):
        rc, _, err = curl("-v", "-o", "/dev/null", "-o", "/dev/null", self.server.url("/hello.txt"),
                          self.server.url("/index.html"))
        self.assertEqual(rc, 0, err)
        self.assertIn("Re-using existing connection", err)
        self.assertEqual(err.count("Connected to"), 1, err)

    # ---- http.client ----

    def test_http_client_persistent_connection(self):
        conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=10)
        try:
            conn.request("GET", "/hello.txt?cache=bust")
            r = conn.getresponse()
            self.assertEqual((r.status, r.read()), (200, HELLO))
            conn.request("GET", "/missing")
            r = conn.getresponse()
            self.assertEqual(r.status, 404)
            r.read()
            conn.request("DELETE", "/hello.txt")
            r = conn.getresponse()
            self.assertEqual(r.status, 405)
            self.assertEqual(r.getheader("Allow"), "GET, HEAD")
            r.read()
            conn.request("POST", "/hello.txt", body=b"x" * 5000)  # the body is drained
            r = conn.getresponse()
            self.assertEqual(r.status, 405)
            r.read()
            conn.request("BREW", "/pot")
            r = conn.getresponse()
            self.assertEqual(r.status, 501)
            r.read()
            conn.request("GET", "/docs")
            r = conn.getresponse()
            self.assertEqual(r.status, 301)
            self.assertEqual(r.getheader("Location"), "/docs/")
            r.read()
            conn.request("GET", "/docs/")
            r = conn.getresponse()
            self.assertEqual((r.status, r.read()), (200, b"docs index"))
            conn.request("HEAD", "/big.bin")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            self.assertEqual(int(r.getheader("Content-Length")), BIG_SIZE)
            self.assertEqual(r.read(), b"")
            conn.request("GET", "/files/")
            r = conn.getresponse()
            listing = r.read()
            self.assertEqual(r.status, 200)
            self.assertIn(b"a &lt;b&gt;&amp;c.txt", listing)
            self.assertIn(b"href=\"./a%20%3Cb%3E%26c.txt\"", listing)
            conn.request("GET", "/big.bin")
            r = conn.getresponse()
            self.assertEqual(sha(r.read()), sha(self.big))
        finally:
            conn.close()

    def test_http10(self):
        resp, closed = lib.exchange(self.server, b"GET /hello.txt HTTP/1.0\r\n\r\n")
        self.assertEqual((resp.status, resp.body), (200, HELLO))
        self.assertTrue(closed)
        with self.server.connect() as s:
            s.sendall(b"GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            r = lib.Reader(s)
            resp = r.read_response()
            self.assertEqual(resp.headers.get("connection"), "keep-alive")
            s.sendall(b"GET /hello.txt HTTP/1.0\r\n\r\n")
            self.assertEqual(r.read_response().body, HELLO)

    # ---- raw sockets ----

    def test_pipelined_requests_answered_in_order(self):
        with self.server.connect() as s:
            s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n"
                      b"HEAD /index.html HTTP/1.1\r\nHost: a\r\n\r\n"
                      b"GET /missing HTTP/1.1\r\nHost: a\r\n\r\n"
                      b"GET /big.bin HTTP/1.1\r\nHost: a\r\nRange: bytes=0-9\r\n\r\n"
                      b"GET /docs/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            r = lib.Reader(s)
            got = [r.read_response(), r.read_response(head_request=True), r.read_response(),
                   r.read_response(), r.read_response()]
            self.assertEqual([x.status for x in got], [200, 200, 404, 206, 200])
            self.assertEqual(got[0].body, HELLO)
            self.assertEqual(got[1].body, b"")
            self.assertEqual(got[3].body, self.big[:10])
            self.assertEqual(got[4].body, b"docs index")
            self.assertTrue(r.closed())
        # Many pipelined requests in one segment (more than --max-pipelined).
        with self.server.connect() as s:
            s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n" * 100)
            r = lib.Reader(s)
            for _ in range(100):
                self.assertEqual(r.read_response().body, HELLO)

    def test_malformed_requests(self):
        cases = [
            (b"GARBAGE\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
            (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"b" * 20000 + b"\r\n\r\n", 431),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
            (b"GET / HTTP/1.1\nHost: a\n\n", 400),  # bare LF
            (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHo st: a\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400),
            (b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ]
        for raw, status in cases:
            resp, closed = lib.exchange(self.server, raw)
            self.assertIsNotNone(resp, raw[:60])
            self.assertEqual(resp.status, status, raw[:60])
            self.assertEqual(resp.headers.get("connection"), "close", raw[:60])
            self.assertTrue(closed, raw[:60])

    def test_traversal_never_serves_outside_root(self):
        targets = [
            b"/../secret.txt", b"/..%2fsecret.txt", b"/%2e%2e/secret.txt", b"/%2E%2E/secret.txt",
            b"/.%2e/secret.txt", b"/docs/../../secret.txt", b"/docs/%2e%2e/%2e%2e/secret.txt",
            b"/..\\secret.txt", b"/%5c..%5csecret.txt", b"/docs\\..\\..\\secret.txt",
            b"/hello.txt%00.html", b"/%00/../secret.txt", b"/%2fetc%2fpasswd",
            b"//etc/passwd", b"/etc/passwd", b"http://a/../secret.txt", b"/escape.txt",
            b"/absolute.txt", b"/outer_dir/secret.txt", b"/outer_dir/", b"/./../secret.txt",
            b"/%252e%252e/secret.txt", b"/docs/..%2f..%2fsecret.txt", b"/..", b"/../",
            b"/" + b"../" * 20 + b"etc/passwd", b"*", b"a/../../secret.txt",
        ]
        for target in targets:
            resp, _ = lib.exchange(self.server,
                                   b"GET " + target + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            self.assertIsNotNone(resp, target)
            self.assertIn(resp.status, (400, 403, 404), target)
            self.assertNotIn(SECRET, resp.body, target)
            self.assertNotIn(b"root:", resp.body, target)
        # The symlink inside the root, to a file inside it, works.
        self.assertEqual(lib.get(self.server, "/alias.txt").body, HELLO)

    def test_metrics_and_status_pages(self):
        lib.get(self.server, "/hello.txt")
        resp = lib.get(self.server, "/_kev/metrics")
        self.assertEqual(resp.status, 200)
        self.assertTrue(resp.headers["content-type"].startswith("text/plain; version=0.0.4"))
        text = resp.body.decode()
        self.assertRegex(text, r'kev_httpd_responses_total\{shard="\d",code="200"\} \d+')
        self.assertIn("kev_httpd_connections_open{shard=\"0\"}", text)
        self.assertIn("kev_httpd_bytes_sent_total{shard=\"1\"}", text)
        self.assertIn("kev_reactor_turns_total{shard=\"0\"}", text)
        resp = lib.get(self.server, "/_kev/status")
        self.assertEqual(resp.status, 200)
        self.assertIn(b"kev httpd status", resp.body)

    def test_access_log(self):
        lib.get(self.server, "/hello.txt?from=access-log-test", headers={"User-Agent": "ua\"x"})

        def logged():
            with open(self.log, "rb") as f:
                return b'"GET /hello.txt?from=access-log-test HTTP/1.1" 200 14 "-" "ua\\x22x"' in f.read()
        self.assertTrue(wait_for(logged, timeout=5))

    def test_client_reset_mid_download(self):
        for _ in range(10):
            s = self.server.connect()
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
            got = 0
            while got < 256 << 10:
                got += len(s.recv(65536))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()  # RST with most of the file unsent
        # The server carries on serving, including big files.
        self.assertEqual(lib.get(self.server, "/hello.txt").body, HELLO)
        self.assertEqual(sha(lib.get(self.server, "/big.bin").body), sha(self.big))

    def test_ten_thousand_keepalive_connections(self):
        n = 10000
        if lib.raise_nofile(n + 500) < n + 200:
            self.skipTest("RLIMIT_NOFILE too low for 10,000 connections")
        socks = []
        try:
            request = b"GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n"
            # Connect in batches so the listen backlog never overflows (no SYN retries).
            for _ in range(0, n, 500):
                batch = [self.server.connect(timeout=30) for _ in range(500)]
                socks += batch
            self.assertEqual(self._round(socks, request), n)
            # All of them are open at once on the server...
            text = lib.get(self.server, "/_kev/metrics").body.decode()
            open_now = sum(int(v) for v in re.findall(r'kev_httpd_connections_open\{shard="\d+"\} (\d+)', text))
            self.assertGreaterEqual(open_now, n)
            # ...and every one is still usable (keep-alive).
            self.assertEqual(self._round(socks, request), n)
        finally:
            for s in socks:
                s.close()

    @staticmethod
    def _round(socks, request):
        """Sends `request` on every socket, reads one response from each; returns the count."""
        import selectors
        sel = selectors.DefaultSelector()
        pending = {}
        for s in socks:
            s.setblocking(False)
            s.sendall(request)  # small: fits the socket buffer at once
            pending[s.fileno()] = b""
            sel.register(s, selectors.EVENT_READ)
        done = 0
        deadline = time.monotonic() + 60
        expect = b"HTTP/1.1 200 OK"
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                s = key.fileobj
                data = s.recv(4096)
                buf = pending[s.fileno()] + data
                if not data:
                    raise AssertionError("a keep-alive connection was closed")
                if buf.endswith(HELLO) and buf.startswith(expect):
                    done += 1
                    del pending[s.fileno()]
                    sel.unregister(s)
                else:
                    pending[s.fileno()] = buf
        sel.close()
        for s in socks:
            s.setblocking(True)
        return done


class LimitsTest(unittest.TestCase):
    """Slowloris, idle and connection limits, with short timeouts."""

    @classmethod
    def setUpClass(cls):
        cls.outer, cls.root = make_site()
        cls.server = lib.Server("--header_timeout=2s", "--keepalive_timeout=1s",
                                "--max_connections=20", root=cls.root, smp=1)

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        shutil.rmtree(cls.outer, ignore_errors=True)
        assert code == 0, "httpd exited with %d: %s" % (code, cls.server.stderr())

    def test_slowloris_is_closed_while_others_are_served(self):
        result = {}

        def slow_client():
            s = self.server.connect()
            start = time.monotonic()
            try:
                for byte in b"GET /hello.txt HTTP/1.1\r\nHost: slow\r\nX-Padding: aaaaaaaa\r\n\r\n":
                    s.sendall(bytes([byte]))
                    time.sleep(1)
                    s.setblocking(False)
                    try:
                        if s.recv(1024) == b"":
                            break
                    except BlockingIOError:
                        pass
                    finally:
                        s.setblocking(True)
                else:
                    result["served"] = True  # the whole head went through: not closed
            except (ConnectionResetError, BrokenPipeError):
                pass
            result["elapsed"] = time.monotonic() - start
            s.close()

        t = threading.Thread(target=slow_client)
        t.start()
        served = 0
        while t.is_alive():
            if lib.get(self.server, "/hello.txt").body == HELLO:
                served += 1
            time.sleep(0.2)
        t.join()
        self.assertNotIn("served", result)
        self.assertGreaterEqual(served, 3)  # others were served meanwhile
        # Closed after ~2 s of header time (plus the sweep period and a byte-per-second poll).
        self.assertLess(result["elapsed"], 8)
        self.assertGreaterEqual(result["elapsed"], 1.5)

    def test_idle_keepalive_connection_is_closed(self):
        with self.server.connect() as s:
            s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n")
            r = lib.Reader(s)
            self.assertEqual(r.read_response().body, HELLO)
            start = time.monotonic()
            self.assertTrue(r.closed(timeout=10))
            self.assertLess(time.monotonic() - start, 6)

    def test_connections_beyond_the_limit_are_closed_at_once(self):
        held = []
        try:
            for _ in range(20):
                s = self.server.connect()
                s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n")
                self.assertEqual(lib.Reader(s).read_response().body, HELLO)
                held.append(s)
            with self.server.connect() as extra:
                extra.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n")
                r = lib.Reader(extra)
                self.assertTrue(r.closed(timeout=5))
                self.assertEqual(r.buf, b"")
        finally:
            for s in held:
                s.close()
        # Once they are gone, new connections are served again.
        self.assertTrue(wait_for(lambda: lib.get(self.server, "/hello.txt") is not None, 5))


class ShutdownTest(unittest.TestCase):

    def test_sigterm_during_a_large_download_completes_it(self):
        outer, root = make_site()
        try:
            with open(os.path.join(root, "big.bin"), "rb") as f:
                big = f.read()
            server = lib.Server("--drain_timeout=30s", root=root)
            s = server.connect()
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
            r = lib.Reader(s)
            r._fill()  # pylint: disable=protected-access
            server.send_signal(signal.SIGTERM)
            time.sleep(0.5)  # the server is draining now; keep reading slowly
            resp = r.read_response()
            self.assertEqual(resp.status, 200)
            self.assertEqual(len(resp.body), BIG_SIZE)
            self.assertEqual(sha(resp.body), sha(big))
            self.assertEqual(resp.headers.get("connection"), None)  # it began before the signal
            self.assertTrue(r.closed(timeout=10))  # then the connection is closed
            s.close()
            self.assertEqual(server.stop(timeout=30), 0)
            with self.assertRaises(OSError):
                server.connect(timeout=2)
        finally:
            shutil.rmtree(outer, ignore_errors=True)

    def test_sigint_with_idle_connections_exits_promptly(self):
        outer, root = make_site()
        try:
            server = lib.Server(root=root)
            idle = [server.connect() for _ in range(50)]
            start = time.monotonic()
            self.assertEqual(server.stop(sig=signal.SIGINT, timeout=20), 0)
            self.assertLess(time.monotonic() - start, 5)
            for s in idle:
                self.assertTrue(lib.Reader(s).closed(timeout=2))
                s.close()
        finally:
            shutil.rmtree(outer, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + [a for a in sys.argv[1:] if not a.startswith("--backend")],
                  verbosity=2)
