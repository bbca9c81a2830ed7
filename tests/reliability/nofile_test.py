"""RLIMIT_NOFILE exhausted during accept: httpd (2 shards) runs with a hard and soft fd limit of
64 (so its own raise to the hard limit cannot help), and more clients connect than it has fds.

It must not spin while accept fails with EMFILE (its CPU time over a few idle seconds stays
low), must serve waiting clients once fds free up, must end with its fd count back at the
baseline, and must exit 0 on SIGTERM.

Args: --backend=io_uring|epoll.
"""

import resource
import socket
import time
import unittest
import os

import reliability_lib as rl

LIMIT = 64
CLIENTS = 120  # well over the limit


def low_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


class NofileTest(unittest.TestCase):

    def test_accept_under_emfile_recovers_without_spinning(self):
        if rl.sanitizer(rl.binary("apps/httpd/httpd")) == "asan" and not os.environ.get(
                "KEV_NOFILE_ASAN"):
            # UBSan (part of the asan config) checks vtables by probing memory through a
            # pipe it creates; with every fd in use that probe fails and it reports a false
            # "invalid vptr" (docs/reliability.md, finding 3; verified with
            # -fno-sanitize=vptr: ASan alone is clean). KEV_NOFILE_ASAN=1 runs it anyway.
            self.skipTest("UBSan vptr checks need a free fd (docs/reliability.md, finding 3)")
        root = os.path.join(rl.tmp_dir(), "site")
        files = rl.make_site(root)
        server = rl.start_httpd(root, preexec_fn=low_nofile,
                                flags=["--header_timeout=120s", "--keepalive_timeout=120s"])
        try:
            status, body = rl.http_get(server.port, "/small.txt")
            self.assertEqual((status, body), (200, files["/small.txt"]))
            time.sleep(0.2)
            baseline = server.fd_kinds()

            # Idle connections: the server accepts until it has no fd left; the rest wait in
            # the listen backlog (connect() succeeds as soon as the kernel queues them).
            idle = [rl.connect(server.port, timeout=30) for _ in range(CLIENTS)]
            time.sleep(1.0)
            self.assertTrue(server.alive(), server.stderr()[-2000:])
            kinds = server.fd_kinds()
            self.assertGreaterEqual(sum(kinds.values()), LIMIT - 4,
                                    "the limit was not reached: %s" % kinds)

            # No busy loop on EMFILE: CPU over 3 idle seconds well under one core.
            cpu0, t0 = server.cpu_seconds(), time.monotonic()
            time.sleep(3.0)
            cpu = server.cpu_seconds() - cpu0
            wall = time.monotonic() - t0
            print("fds at the limit: %s; CPU %.2f s in %.2f s" % (kinds, cpu, wall), flush=True)
            self.assertLess(cpu, 0.5 * wall, "httpd spins while out of fds")

            # Every client, accepted or still in the backlog, asks for a file; as answered
            # connections close (Connection: close), fds free up and the backlog gets served.
            for s in idle:
                s.sendall(b"GET /index.html HTTP/1.1\r\nHost: kev\r\nConnection: close\r\n\r\n")
            served = unavailable = 0
            for s in idle:
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                s.close()
                if data.startswith(b"HTTP/1.1 200") and data.endswith(files["/index.html"]):
                    served += 1
                else:
                    # While fds are short, opening the file can fail: httpd answers 503, an
                    # honest "try later" (anything else is a failure).
                    self.assertTrue(data.startswith(b"HTTP/1.1 503"), data[:200])
                    unavailable += 1
            print("first round: %d served, %d answered 503" % (served, unavailable), flush=True)
            # How many get 200 before 503 depends on which connections' file opens race the
            # accepts for the few free fds (26 to 60 of 120 seen): the contract is progress
            # plus an honest answer to everyone, and every 503 succeeding on retry below.
            self.assertGreater(served, 0)

            def get_index():
                status, body = rl.http_get(server.port, "/index.html")
                if (status, body) != (200, files["/index.html"]):
                    raise AssertionError("status %d" % status)

            for _ in range(unavailable):  # the 503'd clients retry: fds are free now
                rl.with_retries(get_index)

            # And new clients are served normally.
            for _ in range(20):
                self.assertEqual(rl.http_get(server.port, "/big.bin"), (200, files["/big.bin"]))
            left = server.wait_fds(baseline)
            print("fds baseline %s, after %s" % (baseline, left), flush=True)
            self.assertLessEqual(left["socket"], baseline["socket"], server.fds())
            self.assertLessEqual(left["other"], baseline["other"], server.fds())
            code = server.stop()
            self.assertEqual(code, 0, server.stderr()[-3000:])
        finally:
            server.kill()


if __name__ == "__main__":
    rl.strip_args()
    unittest.main()
