"""Fault injection against the real servers: //apps/httpd:httpd and //apps/echo:echo_server run
with KEV_FAULTS (reactor.h: every shard's poller becomes a FaultInjectingPoller), 2 shards.

For each fault mix, concurrent clients make valid requests; a client whose connection was hit
(reset, early close, short answer) retries on a new connection, and every logical request must
eventually get exactly the right bytes. Meanwhile other clients vanish mid-transfer (RST).
Then: the server is still alive, its fd count is back to the baseline taken after warm-up,
SIGTERM makes it exit 0 in bounded time (under ASan, LeakSanitizer runs at that exit: a leak
would make the status non-zero).

Args: --backend=io_uring|epoll. KEV_RELIABILITY_SCALE multiplies the load (default 1, less
under sanitizers).
"""

import os
import random
import threading
import time
import unittest

import reliability_lib as rl

# seed + per-operation probabilities (kevent/testing/fault_injecting_poller.h).
FAULT_MIXES = {
    "retryable": "seed=11,eagain=0.2,eintr=0.2,short=0.5",
    "hard": "seed=12,enomem=0.03,econnreset=0.03,enospc=0.03,short=0.2",
    "all": "seed=13,enomem=0.02,eagain=0.05,eintr=0.05,econnreset=0.02,enospc=0.02,short=0.3",
}


class Load:
    """Runs `clients` threads of `requests` logical requests each, plus resetting clients."""

    def __init__(self):
        self.lock = threading.Lock()
        self.failures = 0   # broken attempts that were retried
        self.done = 0       # logical requests that succeeded
        self.resets = 0     # clients that vanished mid-transfer
        self.errors = []    # logical requests that never succeeded

    def run(self, clients, requests, one_request, resetter):
        stop = threading.Event()

        def client(seed):
            rnd = random.Random(seed)
            for _ in range(requests):
                try:
                    _, failures = rl.with_retries(lambda: one_request(rnd))
                    with self.lock:
                        self.failures += failures
                        self.done += 1
                except AssertionError as e:
                    with self.lock:
                        self.errors.append(str(e))
                    return

        def resetting(seed):
            rnd = random.Random(seed)
            while not stop.is_set():
                try:
                    resetter(rnd)
                    with self.lock:
                        self.resets += 1
                except OSError:
                    pass
                time.sleep(0.005)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        resetters = [threading.Thread(target=resetting, args=(1000 + i,)) for i in range(2)]
        for t in threads + resetters:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        for t in resetters:
            t.join()


class FaultTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.root = os.path.join(rl.tmp_dir(), "site")
        cls.files = rl.make_site(cls.root)
        cls.scale = rl.scale(rl.binary("apps/httpd/httpd"))

    def check_shutdown(self, server, baseline, load, what):
        self.assertTrue(server.alive(), "%s died: %s" % (what, server.stderr()[-3000:]))
        self.assertEqual(load.errors, [], what)
        left = server.wait_fds(baseline)
        for kind in ("socket", "other"):
            self.assertLessEqual(left[kind], baseline[kind],
                                 "%s leaks %s fds: %s" % (what, kind, server.fds()))
        # Pipes: the sendfile engine's per-shard cache (at most 64 pipes, 2 fds each).
        self.assertLessEqual(left["pipe"], baseline["pipe"] + 2 * 64 * 2, what)
        code = server.stop()
        stderr = server.stderr()
        self.assertEqual(code, 0, "%s exit status %d: %s" % (what, code, stderr[-3000:]))
        self.assertIn("injects faults", stderr, "%s: KEV_FAULTS hook not active" % what)
        print("%s: %d requests ok, %d broken attempts retried, %d resetting clients, "
              "fds baseline %s, after load %s" % (what, load.done, load.failures, load.resets,
                                                  baseline, left), flush=True)

    def test_httpd_keeps_serving_and_leaks_nothing(self):
        paths = sorted(self.files)
        clients, requests = 8, max(5, int(40 * self.scale))
        for name, spec in FAULT_MIXES.items():
            with self.subTest(mix=name):
                server = rl.start_httpd(self.root, env={"KEV_FAULTS": spec})
                try:
                    for path in paths:  # warm-up: caches and pools reach their steady size
                        rl.with_retries(lambda: rl.http_get(server.port, path))
                    time.sleep(0.2)
                    baseline = server.fd_kinds()

                    def one(rnd):
                        path = rnd.choice(paths)
                        status, body = rl.http_get(server.port, path)
                        if status != 200 or body != self.files[path]:
                            raise AssertionError("%s: status %d, %d bytes" % (path, status,
                                                                                len(body)))

                    def resetter(rnd):
                        s = rl.connect(server.port, timeout=5)
                        try:
                            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: kev\r\n\r\n")
                            s.recv(rnd.randint(1, 65536))
                        finally:
                            rl.reset_close(s)

                    load = Load()
                    load.run(clients, requests, one, resetter)
                    self.check_shutdown(server, baseline, load, "httpd[%s]" % name)
                finally:
                    server.kill()

    def test_echo_keeps_serving_and_leaks_nothing(self):
        clients, requests = 8, max(5, int(40 * self.scale))
        for name, spec in FAULT_MIXES.items():
            with self.subTest(mix=name):
                server = rl.start_echo(env={"KEV_FAULTS": spec})
                try:
                    rl.with_retries(lambda: rl.echo_once(server.port, b"warm-up"))
                    time.sleep(0.2)
                    baseline = server.fd_kinds()

                    def one(rnd):
                        size = rnd.choice([1, 100, 4096, 65537, 300000])
                        rl.echo_once(server.port, bytes(rnd.getrandbits(8) for _ in range(size))
                                     if size < 5000 else os.urandom(size))

                    def resetter(rnd):
                        s = rl.connect(server.port, timeout=5)
                        try:
                            s.sendall(os.urandom(rnd.randint(1, 200000)))
                        finally:
                            rl.reset_close(s)

                    load = Load()
                    load.run(clients, requests, one, resetter)
                    self.check_shutdown(server, baseline, load, "echo[%s]" % name)
                finally:
                    server.kill()


if __name__ == "__main__":
    rl.strip_args()
    unittest.main()
