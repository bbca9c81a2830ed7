"""One way for Python tests to run a kev server binary: start it, wait for its ready line, stop it.

Used by apps/httpd/tests (httpd_testlib) and tests/reliability (reliability_lib). The server is
started with its stdout piped (it prints one ready line, e.g. "kev httpd serving ... on 2
shards") and its stderr in a file under TEST_TMPDIR, so a chatty server can never block on a
full pipe and stderr() can be read at any time, also after the process exited.

    server = ServerProcess([binary, "--port=0"], re.compile(rb"listening on .*:(\\d+)"))
    port = int(server.ready.group(1))
    ...
    assert server.stop() == 0, server.stderr()

Nothing here talks to the network.
"""

import os
import select
import signal
import subprocess
import sys
import time


def runfiles_dir():
    """The Bazel runfiles tree of the running test (or the script's own when run by hand)."""
    for var in ("RUNFILES_DIR", "TEST_SRCDIR"):
        if os.environ.get(var):
            return os.environ[var]
    return os.path.abspath(sys.argv[0] + ".runfiles")


def tmp_dir():
    return os.environ.get("TEST_TMPDIR", "/tmp")


def backend(args=None):
    """The poller backend the test target was declared with: --backend=X among `args` (default:
    the command line), else $KEV_BACKEND, else io_uring."""
    for a in (sys.argv[1:] if args is None else args):
        if a.startswith("--backend="):
            return a.split("=", 1)[1]
    return os.environ.get("KEV_BACKEND", "io_uring")


class ServerProcess:
    """A running server process. `ready` is the match of `ready_re` against its first stdout
    line; construction raises AssertionError (with the server's stderr) when no matching line
    came within `timeout` seconds. KEV_FAULTS is never inherited: a test asks for faults through
    `env` explicitly."""

    def __init__(self, args, ready_re, env=None, preexec_fn=None, timeout=30):
        child_env = dict(os.environ)
        child_env.setdefault("RUNFILES_DIR", runfiles_dir())
        child_env.pop("KEV_FAULTS", None)
        child_env.update(env or {})
        self.args = list(args)
        self.stderr_path = os.path.join(tmp_dir(), "server-%d-%d.stderr" % (os.getpid(), id(self)))
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self._stderr,
                                     env=child_env, preexec_fn=preexec_fn)
        self.pid = self.proc.pid
        line = self._read_line(timeout)
        self.ready = ready_re.search(line)
        if not self.ready:
            self.kill()
            raise AssertionError("%s did not start: %r\nstderr: %s" %
                                 (os.path.basename(self.args[0]), line, self.stderr()))

    def _read_line(self, timeout):
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

    def alive(self):
        return self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Signals the server and returns its exit status; kills it and raises AssertionError if
        it has not exited after `timeout` seconds."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s did not exit within %ss of signal %d; stderr: %s" %
                                 (os.path.basename(self.args[0]), timeout, sig,
                                  self.stderr()[-3000:]))
        self._close()
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()

    def _close(self):
        if self.proc.stdout and not self.proc.stdout.closed:
            self.proc.stdout.close()
        if not self._stderr.closed:
            self._stderr.close()

    def stderr(self):
        """Everything the server wrote to stderr so far."""
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""
