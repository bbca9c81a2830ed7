#!/usr/bin/env python3
"""kev's benchmark harness: servers side by side, as ratios, on a shared noisy machine.

Every benchmark compares a candidate system A with a baseline system B on the same load. Both
run in the same invocation, pinned to the same server cores, and are measured in alternating
rounds (A, B, A, B, ...); the figure that counts is the median of the per-round ratios A/B, with
its min and max. Absolute numbers are reported too, but only ratios are compared with targets.

Usage (from the repository root, as root on Debian 12):
  python3 tests/perf/bench.py --quick            # smoke test, about a minute per benchmark pair
  python3 tests/perf/bench.py                    # full run, fits in 15 minutes
  python3 tests/perf/bench.py --only http_14b --dry-run
It installs wrk, gnuplot-nox and nginx-light if missing, builds the peers with Bazel, prints a
table with PASS/FAIL against targets and writes docs/benchmarks.md plus PNG plots under
docs/benchmarks/ (--out DIR to write elsewhere). Exit status 0 unless a target failed or a run
errored. Only 127.0.0.1 is ever contacted; every run is bounded by --seconds and a total budget.

Adding a system or a benchmark is one entry in SYSTEMS or BENCHMARKS below (see README.md).
Python 3 standard library only.
"""
from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # No __pycache__ in the source tree.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_report  # noqa: E402  (sibling module, after the path tweak)

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from tests.testing.proc_stats import session_cpu_seconds  # noqa: E402  (after the path tweak)


# ----------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class System:
    """A server under test.

    command: argv template. Fields: {bin} (directory of the built peers, mirrors bazel-bin),
      {src} (repository root), {port}, {shards} (server core count), {cpus} (server core list,
      e.g. "0" or "0,1"), {root} (generated document root), {body_bytes} (the benchmark's
      response body size). The harness prefixes `taskset -c {cpus}`.
    kind: "http" (served by wrk loads; must answer GET of the benchmark path with a 200 and a
      body of body_bytes) or "echo" (echoes bytes back).
    build: Bazel targets whose outputs the command uses.
    packages: Debian packages the command needs (installed if missing).
    """

    name: str
    kind: str
    command: tuple[str, ...]
    build: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    description: str = ""


SYSTEMS = {s.name: s for s in [
    System("raw_epoll_http", "http",
           ("{bin}/tests/perf/raw_epoll_http", "--port={port}", "--threads={shards}",
            "--body-bytes={body_bytes}"),
           build=("//tests/perf:raw_epoll_http",),
           description="edge-triggered epoll, fixed response, no parsing: the floor"),
    System("nginx", "http",
           ("{src}/tests/perf/run_nginx.sh", "--port={port}", "--root={root}", "--cpus={cpus}"),
           packages=("nginx-light",),
           description="Debian nginx, one pinned worker per server core, sendfile"),
    System("raw_epoll_echo", "echo",
           ("{bin}/tests/perf/raw_epoll_echo", "--port={port}", "--threads={shards}"),
           build=("//tests/perf:raw_epoll_echo",),
           description="edge-triggered epoll echo: the floor"),
    # kev's servers. --max_connections above the 10,000 of the idle benchmark (nginx's
    # worker_connections is 16384); no metrics page, no access log (nginx: access_log off).
    System("kev_httpd", "http",
           ("{bin}/apps/httpd/httpd", "--port={port}", "--root={root}", "--smp={shards}",
            "--cpuset={cpus}", "--backend=io_uring", "--metrics=false",
            "--max_connections=20000"),
           build=("//apps/httpd:httpd",), description="kev httpd, io_uring backend"),
    System("kev_echo_uring", "echo",
           ("{bin}/apps/echo/echo_server", "--port={port}", "--smp={shards}", "--cpuset={cpus}",
            "--backend=io_uring"),
           build=("//apps/echo:echo_server",), description="kev echo server, io_uring backend"),
    System("kev_echo_epoll", "echo",
           ("{bin}/apps/echo/echo_server", "--port={port}", "--smp={shards}", "--cpuset={cpus}",
            "--backend=epoll"),
           build=("//apps/echo:echo_server",), description="kev echo server, epoll backend"),
]}


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """One comparison: candidate A against baseline B under one load.

    load: "wrk" (HTTP GET of `path`), "echo_load" (ping-pong of message_bytes) or "idle"
      (idle_conns.py: `headline` keep-alive connections held open; the figure is resident
      bytes per connection, a fresh pair of servers per round so no round inherits another's
      heap).
    body_bytes: size of `path` in the generated root (see ROOT_FILES) and of raw bodies.
    target: PASS when the median of A/B at `headline` connections is >= target (<= target when
      lower_is_better); None = report.
    connections: counts measured; None = the mode's sweep (1, 16, 64, 256, 1024 in full mode).
      The headline count is always measured.
    plot_group: benchmarks sharing it also get one plot of every system they measure (kev,
      nginx and raw epoll on one chart).
    """

    name: str
    candidate: str
    baseline: str
    load: str
    path: str = "/hello.txt"
    body_bytes: int = 14
    message_bytes: int = 64
    target: float | None = None
    headline: int = 64
    note: str = ""
    connections: tuple[int, ...] | None = ()
    lower_is_better: bool = False
    plot_group: str = ""


BENCHMARKS = [
    # Issue 7's targets. The 14-byte pair sweeps the connection counts (plots of kev, nginx and
    # raw epoll side by side); the others measure their headline count only, to fit the budget.
    Benchmark("kev_http_14b_vs_nginx", "kev_httpd", "nginx", "wrk", "/hello.txt", 14,
              target=1.5, connections=None, plot_group="http_14b",
              note="kev httpd (1 shard) against nginx (1 worker), 14-byte file, keep-alive"),
    Benchmark("kev_http_14b_vs_raw", "kev_httpd", "raw_epoll_http", "wrk", "/hello.txt", 14,
              target=0.9, connections=None, plot_group="http_14b",
              note="kev httpd serving a file against the raw epoll responder's fixed bytes"),
    Benchmark("kev_http_64k_vs_nginx", "kev_httpd", "nginx", "wrk", "/64k.bin", 64 << 10,
              target=1.1, note="64 KiB file, 64 connections"),
    Benchmark("kev_http_1m_vs_nginx", "kev_httpd", "nginx", "wrk", "/1m.bin", 1 << 20,
              target=1.0, headline=16, note="1 MiB file, 16 connections"),
    Benchmark("kev_echo_uring_vs_raw", "kev_echo_uring", "raw_epoll_echo", "echo_load",
              message_bytes=64, target=1.2, note="kev echo on io_uring, 64-byte ping-pong"),
    Benchmark("kev_echo_epoll_vs_raw", "kev_echo_epoll", "raw_epoll_echo", "echo_load",
              message_bytes=64, target=0.9, note="kev echo on its epoll backend"),
    Benchmark("echo_64b_aa", "raw_epoll_echo", "raw_epoll_echo", "echo_load", message_bytes=64,
              target=0.8, note="A/A noise check: two identical servers; below 0.8 the machine "
                               "is too noisy to trust any ratio of this run"),
    Benchmark("idle_10k_vs_nginx", "kev_httpd", "nginx", "idle", "/hello.txt", 14,
              target=1.0, headline=10000, lower_is_better=True,
              note="10,000 idle keep-alive connections (one GET each, then held open): resident "
                   "bytes per connection of the whole server (nginx: master + worker), RSS after "
                   "minus before / 10,000; the ratio is kev/nginx, lower is better"),
    # Informational pairs of the baselines alone (not run by default: --only 'http_*').
    Benchmark("http_14b", "nginx", "raw_epoll_http", "wrk", "/hello.txt", 14,
              note="informational: nginx against the epoll floor"),
    Benchmark("http_64k", "nginx", "raw_epoll_http", "wrk", "/64k.bin", 64 << 10,
              note="informational: nginx sendfile against send() from memory"),
    Benchmark("http_1m", "nginx", "raw_epoll_http", "wrk", "/1m.bin", 1 << 20,
              note="informational: nginx sendfile against send() from memory"),
]


@dataclasses.dataclass(frozen=True)
class Micro:
    """A Google Benchmark binary that prints kev/baseline ratios measured in its own run
    (tests/perf/micro_ratio.h: alternating repetitions, median of per-repetition ratios). Its
    ratios and their targets live in the binary, next to the code they measure.
    """

    name: str
    target: str  # Bazel label of the binary
    note: str = ""
    all_cpus: bool = False  # two-thread benchmarks: server and load cores (else server cores)


MICROS = [
    Micro("micro_unotify", "//tests/perf:unotify_bench",
          "1,000 UNOTIFY sources per round (KEVENT_CTL_READY + kevent_get_events) vs 1,000 "
          "eventfd writes + epoll_wait; target >= 5"),
    Micro("micro_timers", "//tests/perf:timer_bench",
          "1M kevent timers armed then cancelled, 100k fired, vs one timerfd per timer; "
          "target >= 10 for each"),
    Micro("micro_future", "//tests/perf:future_bench",
          "future chain / coroutine resume, ns per step beside a std::function call; report only"),
    Micro("micro_fd_readiness", "//tests/perf:fd_readiness_bench",
          "1,000 pipes, writes spread round-robin: kevent PIPE interests (io_uring) vs raw epoll; "
          "target >= 1. raw_uring_poll_vs_epoll_et (no kev on either side): one io_uring "
          "multishot poll per pipe on a DEFER_TASKRUN ring vs EPOLLET, what the kernel offers a "
          "queue driven by one thread"),
    Micro("micro_spsc_ring", "//tests/perf:spsc_ring_bench",
          "SMP ring between 2 shards (producer and consumer pinned to two cores): kev::SpscRing "
          "vs boost::lockfree::spsc_queue of the same capacity (1,024), single and batched "
          "(32) pushes; target >= 1", all_cpus=True),
]
# Benchmarks that run when --only is not given (the informational baseline pairs are opt-in).
DEFAULT_EXCLUDED = {"http_14b", "http_64k", "http_1m"}

# Google Benchmark flags per mode: seconds per repetition and repetitions (interleaved).
MICRO_FLAGS = {"quick": ("--benchmark_min_time=0.05", "--benchmark_repetitions=3"),
               "full": ("--benchmark_min_time=0.3", "--benchmark_repetitions=5")}
MICRO_ESTIMATE_S = {"quick": 25, "full": 60}  # per binary, for the budget check

# Files of the generated document root, by name and size. Their bytes repeat "Hello, world!\n",
# exactly like raw_epoll_http's body of the same size.
ROOT_FILES = {"hello.txt": 14, "64k.bin": 64 << 10, "1m.bin": 1 << 20}

LOAD_PACKAGES = {"wrk": ("wrk",), "echo_load": (), "idle": ()}
LOAD_BUILD = {"wrk": (), "echo_load": ("//tests/perf:echo_load",), "idle": ()}


@dataclasses.dataclass(frozen=True)
class Mode:
    name: str
    seconds: int            # one measured load run
    rounds: int             # A/B pairs per connection count
    headline_rounds: int    # A/B pairs at the benchmark's headline connection count
    connections: tuple[int, ...]
    warmup_seconds: int
    budget_minutes: float


MODES = {
    "quick": Mode("quick", 1, 3, 3, (1, 64, 256), 1, 6),
    # 2 sweeps x 5 counts + 5 headline-only benchmarks, (3 or 5 pairs) x 2 x 3 s ~ 7.5 min of
    # load, plus the idle benchmark, the microbenchmarks and start-up: about 13 min.
    "full": Mode("full", 3, 3, 5, (1, 16, 64, 256, 1024), 2, 15),
}


# ----------------------------------------------------------------------------------------------
# Machine, packages, build
# ----------------------------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def ensure_packages(packages: set[str]) -> None:
    """Installs missing Debian packages with apt-get (once, idempotent)."""
    missing = [p for p in sorted(packages) if subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True
    ).stdout.find("install ok installed") < 0]
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log(f"installing {' '.join(missing)}")
    subprocess.run(sudo + ["apt-get", "update", "-q"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-q", "--no-install-recommends"] + missing,
                   check=True, env=env, stdout=subprocess.DEVNULL)


def build_peers(targets: set[str], dest: Path) -> Path:
    """Builds targets optimised and copies the binaries into dest (mirroring bazel-bin).

    The copy is a snapshot: a concurrent `bazel build --config=asan` by someone else rewrites
    the same output tree, and must not swap a sanitised binary in under a running benchmark.
    """
    if targets:
        log(f"bazel build {' '.join(sorted(targets))}")
        subprocess.run(["bazel", "build", "-c", "opt"] + sorted(targets), cwd=REPO, check=True)
    bazel_bin = Path(subprocess.run(["bazel", "info", "-c", "opt", "bazel-bin"], cwd=REPO,
                                    check=True, capture_output=True, text=True).stdout.strip())
    for target in targets:
        rel = target.lstrip("/").replace(":", "/")
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(bazel_bin / rel, out)
        if any(marker in out.read_bytes() for marker in (b"__asan_init", b"__tsan_init")):
            sys.exit(f"bench: {target} is a sanitizer build (a concurrent build?); rerun")
    return dest


def plan_cpus() -> tuple[list[int], list[int]]:
    """Splits the allowed CPUs: the first half serves, the second half loads (2 cores: 0 | 1)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        sys.exit("bench: needs at least 2 CPUs (one for servers, one for load)")
    shards = len(cpus) // 2
    return cpus[:shards], cpus[shards:2 * shards]


def cpu_list(cpus: list[int]) -> str:
    return ",".join(str(c) for c in cpus)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_root(root: Path) -> None:
    root.mkdir(mode=0o755, parents=True, exist_ok=True)
    root.chmod(0o755)
    hello = b"Hello, world!\n"
    for name, size in ROOT_FILES.items():
        data = (hello * (size // len(hello) + 1))[:size]
        (root / name).write_bytes(data)
        (root / name).chmod(0o644)


# ----------------------------------------------------------------------------------------------
# Servers
# ----------------------------------------------------------------------------------------------
class Server:
    """One started system: pinned, logged to a file, checked ready, stopped by its own pid."""

    def __init__(self, system: System, bench: Benchmark, ctx: dict, label: str, logdir: Path):
        self.system = system
        self.port = free_port()
        fields = dict(ctx, port=self.port, body_bytes=bench.body_bytes)
        self.argv = ["taskset", "-c", ctx["cpus"]] + [a.format(**fields) for a in system.command]
        self.log_path = logdir / f"{bench.name}.{label}.{system.name}.log"
        self.bench = bench
        self._log = open(self.log_path, "wb")
        # A session of its own, so a forced stop can reach helpers (nginx workers) by group id.
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no attempt"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.system.name} exited ({self.proc.returncode}) during "
                                   f"start-up:\n{self.log_tail()}")
            try:
                (self._check_http if self.system.kind == "http" else self._check_echo)()
                return
            except (OSError, ValueError) as e:
                last = str(e)
                time.sleep(0.1)
        raise RuntimeError(f"{self.system.name} not ready in {timeout} s ({last}):\n"
                           f"{self.log_tail()}")

    def _check_http(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(f"GET {self.bench.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    raise ValueError("connection closed before the headers")
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            if not lines[0].startswith("HTTP/1.1 200"):
                raise ValueError(f"status line {lines[0]!r}")
            length = next((int(l.split(":", 1)[1]) for l in lines[1:]
                           if l.lower().startswith("content-length:")), -1)
            if length != self.bench.body_bytes:
                raise ValueError(f"Content-Length {length}, want {self.bench.body_bytes}")
            while len(body) < length:
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise ValueError("connection closed inside the body")
                body += chunk

    def _check_echo(self) -> None:
        probe = b"kev bench readiness probe\n"
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(probe)
            got = b""
            while len(got) < len(probe):
                chunk = s.recv(4096)
                if not chunk:
                    raise ValueError("connection closed")
                got += chunk
            if got != probe:
                raise ValueError("echo mismatch")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join("    " + l for l in text[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log(f"{self.system.name} ignored SIGTERM; killing its process group")
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


# ----------------------------------------------------------------------------------------------
# Loads
# ----------------------------------------------------------------------------------------------
def load_argv(bench: Benchmark, ctx: dict, port: int, connections: int, seconds: int) -> list[str]:
    threads = max(1, min(len(ctx["load_cpus"]), connections))
    pin = ["taskset", "-c", cpu_list(ctx["load_cpus"])]
    if bench.load == "wrk":
        return pin + ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout",
                      "5s", "--latency", "-s", str(REPO / "tests/perf/wrk_report.lua"),
                      f"http://127.0.0.1:{port}{bench.path}"]
    return pin + [f"{ctx['bin']}/tests/perf/echo_load", f"--port={port}",
                  f"--connections={connections}", f"--message-bytes={bench.message_bytes}",
                  f"--seconds={seconds}", f"--threads={threads}"]


def display_path(arg: str, ctx: dict) -> str:
    """Rewrites the run's temporary paths for the report: the peers are a snapshot of
    bazel-bin, the document root is generated (see ROOT_FILES), the repository is '.'."""
    return (arg.replace(ctx["bin"], "bazel-bin").replace(ctx["root"], "$ROOT")
            .replace(str(REPO), "."))


def run_load(argv: list[str], seconds: int) -> dict:
    """Runs one bounded load and returns its JSON line as a dict with 'rate' and 'errors'."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    line = next((l for l in reversed(proc.stdout.splitlines()) if l.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"load failed ({proc.returncode}): {' '.join(argv)}\n"
                           f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    r = json.loads(line)
    if r["tool"] == "idle_conns":
        r["rate"] = r["bytes_per_conn"]
        r.update(p50_us=0.0, p99_us=0.0, p999_us=0.0)
    elif r["tool"] == "wrk":
        r["rate"] = r["requests_per_sec"]
        r["errors"] = sum(v for k, v in r.items() if k.startswith("errors_"))
    else:
        r["rate"] = r["messages_per_sec"]
    return r


def run_measured_load(server: "Server", argv: list[str], seconds: int, cores: int) -> dict:
    """run_load, plus the server's CPU over the run: "server_busy" (CPU seconds per second of
    load per server core, 1.0 = its `cores` saturated) and "cpu_us_per_op" (server CPU per
    request or message).
    A server well below one busy core while both peers reach the same rate means the load
    generator, not the server, set the rate; CPU per operation still compares them."""
    cpu_before = session_cpu_seconds(server.proc.pid)
    r = run_load(argv, seconds)
    cpu = session_cpu_seconds(server.proc.pid) - cpu_before
    ops, duration = ((r["requests"], r["duration_us"] / 1e6) if r["tool"] == "wrk"
                     else (r["messages"], r["seconds"]))
    r["server_busy"] = cpu / duration / cores if duration > 0 else 0.0
    r["cpu_us_per_op"] = cpu * 1e6 / ops if ops > 0 else 0.0
    return r


def bench_connections(bench: Benchmark, ctx: dict) -> list[int]:
    """The counts a benchmark measures: the sweep (connections=None) or its own, + headline."""
    counts = ctx["connections"] if bench.connections is None else bench.connections
    return sorted(set(counts) | {bench.headline})


IDLE_SECONDS = 8  # per idle_conns run (10k connects + settle), for the budget estimate


def run_idle(bench: Benchmark, mode: Mode, ctx: dict, deadline: float) -> dict:
    """Idle connections: per round, a fresh A then a fresh B (so neither inherits the heap of a
    previous round), each warmed by the readiness request, then idle_conns.py holds
    bench.headline connections and reports resident bytes per connection as the run's "rate"."""
    result = {"bench": bench, "points": {}, "commands": {}, "error": None}
    runs = {"A": [], "B": []}
    result["points"][bench.headline] = runs
    shown = lambda argv: [display_path(a, ctx) for a in argv]  # noqa: E731
    try:
        for _ in range(mode.headline_rounds if mode.name == "full" else mode.rounds):
            for label, name in (("A", bench.candidate), ("B", bench.baseline)):
                if time.monotonic() > deadline:
                    raise TimeoutError("time budget exhausted")
                server = Server(SYSTEMS[name], bench, ctx, label, ctx["logdir"])
                try:
                    server.wait_ready()
                    argv = ["taskset", "-c", cpu_list(ctx["load_cpus"]), sys.executable,
                            str(REPO / "tests/perf/idle_conns.py"), f"--port={server.port}",
                            f"--sid={server.proc.pid}", f"--connections={bench.headline}",
                            f"--path={bench.path}"]
                    result["commands"][f"{label} server"] = shown(server.argv)
                    result["commands"]["load"] = shown(argv[:6]) + ["--sid=<server pid>"] + \
                        argv[7:]
                    r = run_load(argv, IDLE_SECONDS * 4)
                    if not server.alive():
                        raise RuntimeError(f"{name} died:\n{server.log_tail()}")
                    runs[label].append(r)
                finally:
                    server.stop()
        a = statistics.median(r["rate"] for r in runs["A"])
        b = statistics.median(r["rate"] for r in runs["B"])
        log(f"{bench.name}: A {a:,.0f} B/conn  B {b:,.0f} B/conn")
    except (RuntimeError, TimeoutError, OSError, subprocess.TimeoutExpired) as e:
        result["error"] = str(e)
        log(f"{bench.name}: ERROR {e}")
    return result


def run_benchmark(bench: Benchmark, mode: Mode, ctx: dict, deadline: float) -> dict:
    """Starts A and B, warms both up, then measures alternating rounds at each connection
    count. Returns {"points": {conns: {"A": [runs], "B": [runs]}}, "commands": ..., "error": ...}.
    """
    result = {"bench": bench, "points": {}, "commands": {}, "error": None}
    servers = []
    try:
        for label, name in (("A", bench.candidate), ("B", bench.baseline)):
            servers.append(Server(SYSTEMS[name], bench, ctx, label, ctx["logdir"]))
        for s in servers:
            s.wait_ready()
        shown = lambda argv: [display_path(a, ctx) for a in argv]  # noqa: E731
        result["commands"]["A server"] = shown(servers[0].argv)
        result["commands"]["B server"] = shown(servers[1].argv)
        result["commands"]["load"] = shown(load_argv(bench, ctx, servers[0].port,
                                                     bench.headline, mode.seconds))
        for s in servers:
            run_load(load_argv(bench, ctx, s.port, bench.headline, mode.warmup_seconds),
                     mode.warmup_seconds)
        # The headline count is always measured: it is where the target is judged.
        for conns in bench_connections(bench, ctx):
            rounds = mode.headline_rounds if conns == bench.headline else mode.rounds
            runs = {"A": [], "B": []}
            result["points"][conns] = runs
            for _ in range(rounds):
                for label, s in zip("AB", servers):
                    if time.monotonic() > deadline:
                        raise TimeoutError("time budget exhausted")
                    runs[label].append(run_measured_load(
                        s, load_argv(bench, ctx, s.port, conns, mode.seconds), mode.seconds,
                        len(ctx["server_cpus"])))
                    if not s.alive():
                        raise RuntimeError(f"{s.system.name} died:\n{s.log_tail()}")
            a = statistics.median(r["rate"] for r in runs["A"])
            b = statistics.median(r["rate"] for r in runs["B"])
            log(f"{bench.name} c={conns}: A {a:,.0f}/s  B {b:,.0f}/s")
    except (RuntimeError, TimeoutError, OSError, subprocess.TimeoutExpired) as e:
        result["error"] = str(e)
        log(f"{bench.name}: ERROR {e}")
    finally:
        for s in servers:
            s.stop()
    return result


def run_micro(micro: Micro, mode: Mode, ctx: dict) -> dict:
    """Runs one microbenchmark binary pinned to the server cores; returns its ratios (the JSON
    lines micro_ratio.h prints) with a verdict each, the command and any error."""
    rel = micro.target.lstrip("/").replace(":", "/")
    cpus = cpu_list(sorted(ctx["server_cpus"] + ctx["load_cpus"])) if micro.all_cpus \
        else ctx["cpus"]
    argv = ["taskset", "-c", cpus, f"{ctx['bin']}/{rel}", *MICRO_FLAGS[mode.name],
            "--benchmark_enable_random_interleaving=true"]
    result = {"micro": micro, "ratios": [], "error": None,
              "command": [display_path(a, ctx) for a in argv]}
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        result["error"] = "timed out after 900 s"
        return result
    for line in proc.stdout.splitlines():
        if line.startswith('{"micro"'):
            r = json.loads(line)
            r["verdict"] = ("INFO" if r["target"] is None
                            else "PASS" if r["ratio"] >= r["target"] else "FAIL")
            result["ratios"].append(r)
    if proc.returncode != 0 or not result["ratios"]:
        result["error"] = f"exit {proc.returncode}: {proc.stdout[-1500:]}{proc.stderr[-1500:]}"
    for r in result["ratios"]:
        log(f"{micro.name}: {r['micro']} = {r['ratio']:.2f} [{r['min']:.2f}..{r['max']:.2f}] "
            f"{r['verdict']}")
    return result


def summarize(result: dict) -> list[dict]:
    """One row per connection count with medians, min/max and the ratio statistics."""
    bench = result["bench"]
    rows = []
    for conns, runs in sorted(result["points"].items()):
        n = min(len(runs["A"]), len(runs["B"]))
        if n == 0:
            continue
        ratios = [runs["A"][i]["rate"] / runs["B"][i]["rate"] for i in range(n)
                  if runs["B"][i]["rate"] > 0]
        row = {"conns": conns, "rounds": n, "errors": sum(r["errors"] for side in "AB"
                                                          for r in runs[side][:n])}
        for side in "AB":
            for key in ("rate", "p50_us", "p99_us", "p999_us", "server_busy", "cpu_us_per_op"):
                values = [r.get(key, 0.0) for r in runs[side][:n]]
                row[f"{side}_{key}"] = (min(values), statistics.median(values), max(values))
        row["ratio"] = (min(ratios), statistics.median(ratios), max(ratios)) if ratios else None
        verdict = "-"
        if conns == bench.headline:
            verdict = "INFO"
            if bench.target is not None and row["ratio"]:
                met = (row["ratio"][1] <= bench.target if bench.lower_is_better
                       else row["ratio"][1] >= bench.target)
                verdict = "PASS" if met else "FAIL"
            if row["errors"]:
                verdict = "ERROR"
        row["verdict"] = verdict
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short rounds: a smoke test")
    parser.add_argument("--only", default="", help="comma-separated benchmark names or globs")
    parser.add_argument("--out", default=str(REPO / "docs"),
                        help="directory for benchmarks.md and benchmarks/*.png")
    parser.add_argument("--seconds", type=int, help="override the mode's seconds per run")
    parser.add_argument("--rounds", type=int, help="override the mode's A/B pairs per point")
    parser.add_argument("--connections", help="override the connection counts, e.g. 1,64")
    parser.add_argument("--bin", help="use prebuilt peers from this bazel-bin-like directory")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    parser.add_argument("--list", action="store_true", help="list systems and benchmarks")
    args = parser.parse_args()
    # Ctrl-C and SIGTERM unwind through the finally blocks that stop the servers. SIGINT is
    # re-enabled because a shell starting us in the background leaves it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    if args.list:
        for s in SYSTEMS.values():
            print(f"system    {s.name:18} {s.kind:5} {s.description}")
        for b in BENCHMARKS:
            print(f"benchmark {b.name:18} {b.candidate} / {b.baseline} ({b.load}) target="
                  f"{b.target}")
        for m in MICROS:
            print(f"micro     {m.name:18} {m.target}: {m.note}")
        return 0

    mode = MODES["quick" if args.quick else "full"]
    if args.seconds or args.rounds:
        mode = dataclasses.replace(mode, seconds=args.seconds or mode.seconds,
                                   rounds=args.rounds or mode.rounds,
                                   headline_rounds=args.rounds or mode.headline_rounds)
    connections = mode.connections
    if args.connections:
        connections = tuple(sorted({int(c) for c in args.connections.split(",")}))
    if not 1 <= mode.seconds <= 60 or not 1 <= mode.rounds <= 20 or \
            not all(1 <= c <= 10000 for c in connections):
        sys.exit("bench: seconds must be 1..60, rounds 1..20, connections 1..10000")
    patterns = [p for p in args.only.split(",") if p]
    benches = [b for b in BENCHMARKS
               if (not patterns and b.name not in DEFAULT_EXCLUDED)
               or any(fnmatch.fnmatch(b.name, p) for p in patterns)]
    micros = [m for m in MICROS
              if not patterns or any(fnmatch.fnmatch(m.name, p) for p in patterns)]
    if not benches and not micros:
        sys.exit(f"bench: no benchmark matches {args.only!r}")

    server_cpus, load_cpus = plan_cpus()
    plan_ctx = {"connections": connections}
    estimate = sum(2 * mode.warmup_seconds + 3 + sum(
        2 * (mode.headline_rounds if c == b.headline else mode.rounds) * (mode.seconds + 0.3)
        for c in bench_connections(b, plan_ctx)) for b in benches if b.load != "idle")
    estimate += sum(2 * IDLE_SECONDS * (mode.headline_rounds if mode.name == "full"
                                        else mode.rounds) for b in benches if b.load == "idle")
    estimate += MICRO_ESTIMATE_S[mode.name] * len(micros)
    log(f"mode {mode.name}: {len(benches)} benchmarks + {len(micros)} micro, connections {list(connections)}, "
        f"server cpus {server_cpus}, load cpus {load_cpus}, about {estimate / 60:.1f} min "
        f"(budget {mode.budget_minutes} min)")
    if estimate > mode.budget_minutes * 60:
        sys.exit("bench: the plan exceeds the time budget; use fewer rounds or --only")
    if args.dry_run:
        for b in benches:
            print(f"{b.name}: {b.candidate} / {b.baseline}, {b.load}, connections "
                  f"{bench_connections(b, plan_ctx)}, target {b.target}"
                  f"{' (lower is better)' if b.lower_is_better else ''}")
        for m in micros:
            print(f"{m.name}: {m.target} {' '.join(MICRO_FLAGS[mode.name])}")
        return 0

    systems = {SYSTEMS[n] for b in benches for n in (b.candidate, b.baseline)}
    packages = {"gnuplot-nox"} | {p for s in systems for p in s.packages}
    targets = {t for s in systems for t in s.build} | {m.target for m in micros}
    for b in benches:
        packages |= set(LOAD_PACKAGES[b.load])
        targets |= set(LOAD_BUILD[b.load])
    ensure_packages(packages)
    # 1024 connections on each side exceed Debian's default soft limit; children inherit this.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    with tempfile.TemporaryDirectory(prefix="kev-bench.") as tmp:
        tmp = Path(tmp)
        os.chmod(tmp, 0o755)
        bin_dir = Path(args.bin).resolve() if args.bin else build_peers(targets, tmp / "bin")
        make_root(tmp / "root")
        (tmp / "logs").mkdir()
        ctx = {"bin": str(bin_dir), "src": str(REPO), "root": str(tmp / "root"),
               "cpus": cpu_list(server_cpus), "shards": len(server_cpus),
               "server_cpus": server_cpus, "load_cpus": load_cpus, "logdir": tmp / "logs",
               "connections": connections}
        machine = bench_report.machine_info(server_cpus, load_cpus)
        started = time.monotonic()
        deadline = started + mode.budget_minutes * 60
        # Microbenchmarks first: short, and they need no servers.
        micro_results = []
        for m in micros:
            log(f"{m.name}: {m.target}")
            micro_results.append(run_micro(m, mode, ctx))
        results = []
        for b in benches:
            if time.monotonic() > deadline:
                results.append({"bench": b, "points": {}, "commands": {},
                                "error": "skipped: time budget exhausted"})
            else:
                log(f"{b.name}: {b.candidate} (A) vs {b.baseline} (B), {b.load}")
                run = run_idle if b.load == "idle" else run_benchmark
                results.append(run(b, mode, ctx, deadline))
            results[-1]["rows"] = summarize(results[-1])
        machine["elapsed_s"] = time.monotonic() - started
        machine["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
        if results:
            print(bench_report.text_table(results))
        if micro_results:
            print(bench_report.micro_table(micro_results))
        out = Path(args.out)
        invocation = "python3 tests/perf/bench.py " + " ".join(sys.argv[1:])
        bench_report.write_markdown(out, results, machine, mode, SYSTEMS, ROOT_FILES,
                                    invocation, micro_results)
        log(f"wrote {out / 'benchmarks.md'}")
    failed = any(r["error"] or any(row["verdict"] in ("FAIL", "ERROR") for row in r["rows"])
                 for r in results)
    failed = failed or any(m["error"] or any(r["verdict"] == "FAIL" for r in m["ratios"])
                           for m in micro_results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
