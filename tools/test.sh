#!/usr/bin/env bash
# The README's test command. Installs what is missing, then builds and runs every test three
# times: optimised, with AddressSanitizer+UBSan (--config=asan) and with ThreadSanitizer
# (--config=tsan). Exits 0 only when every test passed in every configuration. Leaves no Bazel
# server behind. KEV_TEST_CONFIGS="default asan" runs a subset (for local iteration).
set -uo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh || exit 1

configs=${KEV_TEST_CONFIGS:-default asan tsan}
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
  summaries+=("$(python3 tools/test_summary.py "$config" || true)")
done
bazel shutdown >/dev/null 2>&1 || true

echo
echo "kev test summary ($((SECONDS - start)) s):"
printf '%s\n' "${summaries[@]}"
if ((status == 0)); then echo "kev: all tests passed"; else echo "kev: TESTS FAILED"; fi
exit $status
