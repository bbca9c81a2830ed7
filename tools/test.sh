#!/usr/bin/env bash
# The README's test command. Installs what is missing, then builds and runs every test three
# times: optimised, with AddressSanitizer+UBSan (--config=asan) and with ThreadSanitizer
# (--config=tsan); then runs every libFuzzer target for KEV_FUZZ_SECONDS (default 60) each from
# its seed corpus (tools/fuzz_smoke.sh). Exits 0 only when every test passed in every
# configuration and no fuzzer found anything. Leaves no Bazel server behind.
# KEV_TEST_CONFIGS="default asan" runs a subset; KEV_FUZZ_SECONDS=0 skips fuzzing (local iteration).
set -uo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh || exit 1

configs=${KEV_TEST_CONFIGS:-default asan tsan}
# The test targets of this tree, so the summary counts only their logs (not stale ones).
targets_file=$(mktemp)
trap 'rm -f "$targets_file"' EXIT
bazel query 'tests(//...)' --output=label >"$targets_file" 2>/dev/null || true
status=0
start=$SECONDS
summaries=()
for config in $configs; do
  flags=()
  [[ $config != default ]] && flags=(--config="$config")
  echo "==> bazel test ${flags[*]} //..."
  if ! bazel test "${flags[@]}" //...; then
    status=1
  fi
  summaries+=("$(python3 tools/test_summary.py "$config" "$targets_file" || true)")
done
bazel shutdown >/dev/null 2>&1 || true

fuzz_seconds=${KEV_FUZZ_SECONDS:-60}
if ((fuzz_seconds > 0)); then
  echo "==> fuzz smoke run, ${fuzz_seconds} s per target"
  if fuzz_summary=$(tools/fuzz_smoke.sh "$fuzz_seconds"); then
    summaries+=("fuzz: every target clean")
  else
    status=1
    summaries+=("fuzz: FAILED")
  fi
  summaries+=("$fuzz_summary")
fi

echo
echo "kev test summary ($((SECONDS - start)) s):"
printf '%s\n' "${summaries[@]}"
if ((status == 0)); then echo "kev: all tests passed"; else echo "kev: TESTS FAILED"; fi
exit $status
