#!/bin/bash
# Side-by-side echo comparison for issue 7 (a quick manual check; tests/perf/bench.py is the
# suite of record): kev echo (io_uring, epoll) against tests/perf's raw_epoll_echo, 64-byte
# ping-pong on 64 connections, server pinned to CPU 0 and echo_load to CPU 1, in alternating
# rounds; prints each round's rates and the median ratio per kev backend.
#
# Usage: apps/echo/compare_echo.sh BIN_DIR [ROUNDS=5] [SECONDS=3] [CONNECTIONS=64] [BYTES=64]
#   BIN_DIR holds echo_server, raw_epoll_echo and echo_load (-c opt builds; copy them out of
#   bazel-bin so a concurrent build cannot swap them mid-run).
set -euo pipefail
bin=$1
rounds=${2:-5}
secs=${3:-3}
conns=${4:-64}
bytes=${5:-64}

start_server() {  # $@: command; sets pid and port
  local out
  out=$(mktemp)
  taskset -c 0 "$@" >"$out" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on \(127\.0\.0\.1:\)\?\([0-9]*\)$/\2/p' "$out" | head -1)
    [ -n "$port" ] && break
    sleep 0.05
  done
  rm -f "$out"
  [ -n "$port" ] || { echo "server did not start: $*" >&2; exit 1; }
}

run_one() {  # $1: name; rest: server command. Prints messages/s.
  shift
  start_server "$@"
  taskset -c 1 "$bin/echo_load" --port="$port" --connections="$conns" --message-bytes="$bytes" \
    --seconds="$secs" | sed -n 's/.*"messages_per_sec":\([0-9.]*\).*/\1/p'
  kill -TERM "$pid"
  wait "$pid" || { echo "server exit status $?" >&2; exit 1; }
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

r_uring=()
r_epoll=()
for i in $(seq "$rounds"); do
  raw1=$(run_one raw "$bin/raw_epoll_echo" --port=0)
  uring=$(run_one uring "$bin/echo_server" --smp=1 --cpuset=0 --backend=io_uring)
  raw2=$(run_one raw "$bin/raw_epoll_echo" --port=0)
  epoll=$(run_one epoll "$bin/echo_server" --smp=1 --cpuset=0 --backend=epoll)
  # Each kev run is compared with the mean of the raw runs on either side of it.
  raw3=$(run_one raw "$bin/raw_epoll_echo" --port=0)
  ru=$(awk -v a="$uring" -v b="$raw1" -v c="$raw2" 'BEGIN {printf "%.3f", 2*a/(b+c)}')
  re=$(awk -v a="$epoll" -v b="$raw2" -v c="$raw3" 'BEGIN {printf "%.3f", 2*a/(b+c)}')
  echo "round $i: raw $raw1 | io_uring $uring | raw $raw2 | epoll $epoll | raw $raw3" \
       " => io_uring/raw $ru, epoll/raw $re"
  r_uring+=("$ru")
  r_epoll+=("$re")
done
echo "median io_uring/raw: $(printf '%s\n' "${r_uring[@]}" | median)" \
     "(min $(printf '%s\n' "${r_uring[@]}" | sort -g | head -1)," \
     "max $(printf '%s\n' "${r_uring[@]}" | sort -g | tail -1); target >= 1.2)"
echo "median epoll/raw:    $(printf '%s\n' "${r_epoll[@]}" | median)" \
     "(min $(printf '%s\n' "${r_epoll[@]}" | sort -g | head -1)," \
     "max $(printf '%s\n' "${r_epoll[@]}" | sort -g | tail -1); target >= 0.9)"
