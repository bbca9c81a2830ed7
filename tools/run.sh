#!/usr/bin/env bash
# The README's run command. Installs what is missing, builds the main job optimised and runs it:
# apps/httpd serving the bundled demo site (apps/httpd/www) on port 8080, one shard per core.
# Arguments are passed to httpd (e.g. --port=9090, --address=0.0.0.0, --backend=epoll, --help).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
bazel build -c opt //apps/httpd:httpd
bazel shutdown >/dev/null 2>&1 || true
exec bazel-bin/apps/httpd/httpd --root=apps/httpd/www "$@"
