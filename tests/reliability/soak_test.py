"""Soak: wrk against the real httpd on 2 shards, with Python clients that churn connections
(open/close, open and vanish, reset mid-transfer with SO_LINGER 0, reset mid-request).

Asserts: zero non-2xx answers to the valid requests (wrk's "Non-2xx" line and the server's own
/_kev/metrics counters, which see every response written), RSS after the run within 10% of RSS
after an identical warm-up phase, socket and other fds back to the baseline once the clients
are gone, and exit status 0 on SIGTERM (under ASan LeakSanitizer checks that exit).

Duration: KEV_SOAK_SECONDS (default 20; docs/reliability.md has the command for long runs). Under a
sanitizer build the load is scaled down (fewer connections) and RSS is reported, not
asserted: ASan's quarantine and TSan's shadow memory grow with use by design.

Args: --backend=io_uring|epoll.
"""

import os
import random
import re
import subprocess
import threading
import time
import unittest

import reliability_lib as rl

WRK = "/usr/bin/wrk"


def wrk_path():
    return os.environ.get("KEV_WRK", WRK)


class Churn:
    """Python clients mixing valid requests with abrupt closes, until stopped."""

    def __init__(self, port, files, threads):
        self.port = port
        self.files = files
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts = {"ok": 0, "reset_mid_body": 0, "reset_mid_request": 0, "idle_close": 0,
                       "connect_timeouts": 0}
        self.errors = []
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _count(self, key):
        with self.lock:
            self.counts[key] += 1

    def _run(self, seed):
        rnd = random.Random(seed)
        while not self.stop.is_set():
            kind = rnd.randrange(4)
            try:
                if kind == 0:  # a valid request on a fresh connection: must be answered 200
                    path = rnd.choice(sorted(self.files))
                    status, body = rl.http_get(self.port, path)
                    if status != 200 or body != self.files[path]:
                        self.errors.append("%s: %d, %d bytes" % (path, status, len(body)))
                    self._count("ok")
                elif kind == 1:  # reset in the middle of a big body
                    s = rl.connect(self.port)
                    try:
                        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: kev\r\n\r\n")
                        s.recv(rnd.randint(1, 100000))
                    finally:
                        rl.reset_close(s)
                    self._count("reset_mid_body")
                elif kind == 2:  # reset in the middle of the request head
                    s = rl.connect(self.port)
                    try:
                        s.sendall(b"GET /small.txt HTTP/1.1\r\nHo")
                    finally:
                        rl.reset_close(s)
                    self._count("reset_mid_request")
                else:  # connect and leave politely without a word
                    rl.connect(self.port).close()
                    self._count("idle_close")
            except rl.ConnectTimeout:  # overload of the listen backlog: counted, reported
                self._count("connect_timeouts")
            except OSError as e:  # only the valid requests must succeed
                if kind == 0:
                    self.errors.append(repr(e))
            time.sleep(0.002)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()


def run_wrk(port, path, connections, seconds):
    return subprocess.Popen(
        [wrk_path(), "-t1", "-c%d" % connections, "-d%ds" % seconds, "--timeout", "10s",
         "http://127.0.0.1:%d%s" % (port, path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def parse_wrk(out):
    text = out.decode(errors="replace")
    m = re.search(r"(\d+) requests in", text)
    requests = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    non2xx = int(m.group(1)) if m else 0
    return requests, non2xx, text


def metrics_codes(port):
    """{status code: count} summed over shards, from /_kev/metrics."""
    status, body = rl.http_get(port, "/_kev/metrics")
    assert status == 200, status
    codes = {}
    for m in re.finditer(rb'kev_httpd_responses_total\{shard="\d+",code="(\d+)"\} (\d+)', body):
        codes[int(m.group(1))] = codes.get(int(m.group(1)), 0) + int(m.group(2))
    return codes


class SoakTest(unittest.TestCase):

    def load(self, server, seconds):
        """wrk on a small and a big file plus the churning clients, for `seconds`."""
        wrks = [run_wrk(server.port, "/small.txt", self.small_conns, seconds),
                run_wrk(server.port, "/big.bin", self.big_conns, seconds)]
        with Churn(server.port, self.files, self.churn_threads) as churn:
            outs = [w.communicate(timeout=seconds + 60)[0] for w in wrks]
        self.assertEqual(churn.errors, [])
        self.assertTrue(server.alive(), server.stderr()[-3000:])
        total = 0
        for out in outs:
            requests, non2xx, text = parse_wrk(out)
            self.assertGreater(requests, 0, text)
            self.assertEqual(non2xx, 0, text)
            total += requests
        return total, churn.counts

    def test_soak(self):
        httpd = rl.binary("apps/httpd/httpd")
        san = rl.sanitizer(httpd)
        scale = rl.scale(httpd)
        seconds = int(os.environ.get("KEV_SOAK_SECONDS", "20"))
        warmup = max(3, seconds // 5)
        self.small_conns = max(4, int(32 * scale))
        self.big_conns = max(2, int(8 * scale))
        self.churn_threads = max(2, int(6 * scale))
        root = os.path.join(rl.tmp_dir(), "site")
        self.files = rl.make_site(root)
        server = rl.start_httpd(root, smp=2)
        try:
            warm_requests, _ = self.load(server, warmup)
            time.sleep(1.0)
            rss_warm = server.rss_kib()
            fds_warm = server.fd_kinds()
            codes_warm = metrics_codes(server.port)

            requests, churn = self.load(server, seconds)
            time.sleep(1.0)
            rss_after = server.rss_kib()
            codes = metrics_codes(server.port)
            fds_after = server.wait_fds(fds_warm)
            report = ("soak %s%s %d s: wrk %d requests (warm-up %d), churn %s; responses by code "
                      "%s; RSS %d KiB after warm-up, %d KiB after the run (%+.1f%%); fds %s after "
                      "warm-up, %s after the run" %
                      (rl.backend(), " [%s]" % san if san else "", seconds, requests,
                       warm_requests, churn, codes, rss_warm, rss_after,
                       100.0 * (rss_after - rss_warm) / rss_warm, fds_warm, fds_after))
            print(report, flush=True)
            with open(os.path.join(os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR", rl.tmp_dir()),
                                   "soak_report.txt"), "w") as f:
                f.write(report + "\n")

            # Every response the server wrote was a 200 (the metrics request itself included).
            self.assertEqual([c for c in codes if c != 200], [], codes)
            self.assertGreater(codes.get(200, 0), codes_warm.get(200, 0))
            if not san:
                self.assertLessEqual(rss_after, rss_warm * 1.10, report)
            self.assertLessEqual(fds_after["socket"], fds_warm["socket"], server.fds())
            self.assertLessEqual(fds_after["other"], fds_warm["other"], server.fds())
            code = server.stop(timeout=120)
            self.assertEqual(code, 0, server.stderr()[-3000:])
        finally:
            server.kill()


if __name__ == "__main__":
    rl.strip_args()
    unittest.main()
