#!/usr/bin/env bash
# Installs every Debian 12 package kev needs to build, test and benchmark, and nothing more.
# Idempotent and quick when everything is present: apt-get runs only for missing packages.
# Must run as root (or with sudo available). Safe to call from every entry-point script.
set -euo pipefail

PACKAGES=(
  # build
  bazel-bootstrap bazel-rules-java g++ pkg-config
  # libraries
  liburing-dev libhwloc-dev libboost-context-dev libboost-dev libabsl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # sanitizers and fuzzing (clang's runtimes)
  clang libclang-rt-14-dev
  # integration tests (httpd: curl, Python clients, headless Chromium for the browser test)
  curl python3 procps iproute2 chromium
  # benchmark peers and plots (nginx, wrk, gnuplot); the README's bench command needs them
  nginx-light wrk gnuplot-nox
)
if [[ -n "${KEV_EXTRA_PACKAGES:-}" ]]; then
  read -r -a extra <<<"$KEV_EXTRA_PACKAGES"
  PACKAGES+=("${extra[@]}")
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  SUDO="sudo"
fi
echo "kev: installing missing packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >&2
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
