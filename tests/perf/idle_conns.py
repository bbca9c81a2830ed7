#!/usr/bin/env python3
"""Idle keep-alive connections: what one costs an HTTP server in resident memory.

Measures the RSS of a running server (every process of its session: nginx's master and
workers, kev's single process), opens --connections keep-alive connections to it, sends one
`GET <path>` on each and reads the whole response (so the server has accepted, parsed and
answered, and holds every connection as idle keep-alive, as after a real client's first
request), waits --settle seconds, measures the RSS again, checks that every connection is still
open, closes them all and prints one JSON line:

  {"tool": "idle_conns", "connections": 10000, "rss_before_kb": ..., "rss_after_kb": ...,
   "bytes_per_conn": ..., "errors": 0, "setup_s": ...}

bytes_per_conn = (rss_after - rss_before) / connections. Kernel socket buffers are not in RSS:
this is what the server program itself keeps per idle connection. Used by bench.py (load
"idle"); by hand:

  python3 tests/perf/idle_conns.py --port 8080 --sid $(pgrep -o nginx) --connections 10000

Python 3 standard library only; raises RLIMIT_NOFILE to its hard limit. Only 127.0.0.1.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import socket
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root
from tests.testing.proc_stats import session_rss_kb  # noqa: E402  (after the path tweak)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sid", type=int, required=True, help="session id of the server")
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--path", default="/hello.txt")
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.connections + 64:
        sys.exit(f"idle_conns: RLIMIT_NOFILE hard limit {hard} is too low")

    before = session_rss_kb(args.sid)
    if before == 0:
        sys.exit(f"idle_conns: no process in session {args.sid}")
    request = f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    socks = []
    pending = {}  # sock -> bytes received so far
    started = time.monotonic()
    deadline = started + args.timeout
    errors = 0
    # Connect in batches so the listen backlog never overflows (a dropped SYN costs 1 s).
    batch = 256
    opened = 0
    while opened < args.connections or pending:
        while opened < args.connections and len(pending) < batch:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", args.port))
            socks.append(s)
            pending[s] = None  # None: not yet sent
            sel.register(s, selectors.EVENT_WRITE)
            opened += 1
        if time.monotonic() > deadline:
            sys.exit(f"idle_conns: {len(pending)} connections unanswered after {args.timeout} s")
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            if pending[s] is None:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    errors += 1
                    sel.unregister(s)
                    del pending[s]
                    continue
                s.send(request)  # small enough for an empty socket buffer
                pending[s] = b""
                sel.modify(s, selectors.EVENT_READ)
                continue
            try:
                chunk = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            if not chunk:
                errors += 1
                sel.unregister(s)
                del pending[s]
                continue
            data = pending[s] + chunk
            pending[s] = data
            head, sep, body = data.partition(b"\r\n\r\n")
            if not sep:
                continue
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if len(body) >= length:
                if not head.startswith(b"HTTP/1.1 200"):
                    errors += 1
                sel.unregister(s)
                del pending[s]
    setup_s = time.monotonic() - started
    time.sleep(args.settle)
    after = session_rss_kb(args.sid)
    # Every connection must still be open: a server that dropped idle connections would look
    # cheap. A readable socket here means EOF or an unexpected byte.
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    closed = len(sel.select(timeout=0))
    sel.close()
    for s in socks:
        s.close()
    result = {"tool": "idle_conns", "connections": args.connections, "rss_before_kb": before,
              "rss_after_kb": after, "bytes_per_conn": (after - before) * 1024 / args.connections,
              "errors": errors + closed, "setup_s": round(setup_s, 2)}
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
