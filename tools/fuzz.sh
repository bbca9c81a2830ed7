#!/usr/bin/env bash
# Builds and runs a libFuzzer target outside Bazel (Bazel 4's toolchain here is GCC, and
# libFuzzer needs clang).
#
#   tools/fuzz.sh <target> [seconds] [crash-file...]
#
# <target> names tests/fuzz/<target>_fuzz.cc, its seed corpus tests/fuzz/corpus/<target>/ and
# optional dictionary tests/fuzz/<target>.dict. The fuzzer is compiled with
# clang++ -std=c++20 -fsanitize=fuzzer,address,undefined into /tmp/kev_fuzz_<target>/, then run
# for [seconds] (default 60) on a fresh copy of the corpus; crashes land in
# /tmp/kev_fuzz_<target>/artifacts/. With crash files after the seconds, it only re-runs those
# inputs (to reproduce a finding). Exit status: the fuzzer's (0 = nothing found).
# Needs Debian's clang-14 and libclang-rt-14-dev. Extra libFuzzer flags (e.g. -jobs=2 -workers=2
# for a long run) can be passed in FUZZ_FLAGS. tools/fuzz_smoke.sh runs every target.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:?usage: tools/fuzz.sh <target> [seconds] [crash-file...]}
seconds=${2:-60}
shift $(($# >= 2 ? 2 : 1))

src=tests/fuzz/${target}_fuzz.cc
[[ -f $src ]] || { echo "fuzz.sh: no $src" >&2; exit 2; }
# The library sources each target links, beside the fuzz target itself.
case $target in
  http_parser)
    deps=(apps/httpd/request_parser.cc apps/httpd/path.cc apps/httpd/mime.cc
          apps/httpd/http_headers.cc) ;;
  kevent_ctl | ring_commit)
    # The kevent C API and its core with every origin present in the tree (so new origins are
    # fuzzed as they land) and the pollers they may use; Abseil and liburing from Debian.
    mapfile -t deps < <(ls kevent/*.cc kevent/internal/*.cc | grep -v -e '_test\.cc$' -e '/examples/')
    libs=(-luring -lpthread)
    for lib in /usr/lib/x86_64-linux-gnu/libabsl_*.so; do
      name=${lib##*/lib}
      libs+=("-l${name%.so}")
    done ;;
  *) echo "fuzz.sh: unknown target '$target' (add its sources here)" >&2; exit 2 ;;
esac

cxx=$(command -v clang++-14 || command -v clang++ || true)
[[ -n $cxx ]] || { echo "fuzz.sh: clang++ not found (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 2; }

work=/tmp/kev_fuzz_${target}
mkdir -p "$work/artifacts"
echo "==> building $work/fuzzer"
"$cxx" -std=c++20 -O1 -g -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I. "$src" "${deps[@]}" ${libs[@]+"${libs[@]}"} -o "$work/fuzzer"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if (($# > 0)); then
  echo "==> reproducing $*"
  exec "$work/fuzzer" "$@"
fi

rm -rf "$work/corpus"
mkdir -p "$work/corpus"
cp tests/fuzz/corpus/"$target"/* "$work/corpus/" 2>/dev/null || true
dict=()
[[ -f tests/fuzz/${target}.dict ]] && dict=(-dict="tests/fuzz/${target}.dict")
echo "==> fuzzing $target for ${seconds}s"
exec "$work/fuzzer" -max_total_time="$seconds" -artifact_prefix="$work/artifacts/" \
  -print_final_stats=1 ${FUZZ_FLAGS:-} ${dict[@]+"${dict[@]}"} "$work/corpus"
