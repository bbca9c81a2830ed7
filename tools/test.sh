#!/usr/bin/env bash
# Installs what is missing, builds everything and runs every test. Exit status 0 only when every
# test passed. Leaves no Bazel server behind.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh || exit 1

status=0
run() {
  echo "==> bazel test $*"
  bazel test "$@" //... || status=1
}
run
bazel shutdown >/dev/null 2>&1 || true
if ((status == 0)); then echo "kev: all tests passed"; else echo "kev: TESTS FAILED"; fi
exit $status
