"""One py_test per poller backend: the integration tests run the real servers on each."""

# The poller backends a server binary selects with --backend (kevent/poller.h).
POLLER_BACKENDS = ["io_uring", "epoll"]

def py_test_per_backend(name, main, data, deps, size = "medium", tags = []):
    """Declares <name>_io_uring and <name>_epoll: `main` run with --backend=<backend>.

    Args:
      name: prefix of the test names.
      main: the test script (its only source).
      data: the server binaries (and files) the script starts.
      deps: py_library deps.
      size: Bazel test size.
      tags: Bazel tags (e.g. "exclusive" for tests that load both cores).
    """
    for backend in POLLER_BACKENDS:
        native.py_test(
            name = name + "_" + backend,
            size = size,
            srcs = [main],
            args = ["--backend=" + backend],
            data = data,
            main = main,
            python_version = "PY3",
            tags = tags,
            deps = deps,
        )
