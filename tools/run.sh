#!/usr/bin/env bash
# The README's run command. Installs what is missing, builds the main job optimised and runs it.
# Arguments are passed to the program.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
bazel build -c opt //kevent/examples:kevent_demo
bazel shutdown >/dev/null 2>&1 || true
exec bazel-bin/kevent/examples/kevent_demo "$@"
