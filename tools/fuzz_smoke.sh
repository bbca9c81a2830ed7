#!/usr/bin/env bash
# Runs every libFuzzer target in tests/fuzz/ (each <name>_fuzz.cc) for N seconds from its seed
# corpus, through tools/fuzz.sh, and fails if any of them finds a crash, leak, timeout or
# sanitizer report (or does not build).
#
#   tools/fuzz_smoke.sh [seconds-per-target]      # default 60; CI smoke run
#   FUZZ_FLAGS='-jobs=2 -workers=2' tools/fuzz_smoke.sh 3600    # a long run
#
# Prints one line per target (executions, seconds, result) and the log of failures; full logs
# and crash artifacts stay in /tmp/kev_fuzz_<target>/. Exit status: 0 when every target ran
# clean, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
status=0
summary=()
for src in tests/fuzz/*_fuzz.cc; do
  name=$(basename "$src" _fuzz.cc)
  log=/tmp/kev_fuzz_${name}.log
  start=$(date +%s)
  tools/fuzz.sh "$name" "$seconds" >"$log" 2>&1
  rc=$?
  elapsed=$(($(date +%s) - start))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  if ((rc == 0)); then
    result=ok
  else
    result="FAILED (exit $rc, log $log, artifacts /tmp/kev_fuzz_${name}/artifacts/)"
    status=1
    echo "==> $name failed; end of its log:" >&2
    tail -n 60 "$log" >&2
  fi
  summary+=("$(printf '%-14s %12s execs  %5ss  %s' "$name" "${execs:-?}" "$elapsed" "$result")")
done
printf '%s\n' "${summary[@]}"
exit $status
