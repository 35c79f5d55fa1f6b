#!/usr/bin/env bash
# tests/run.sh BUILD [BUILD...]: runs every unit test binary (BUILD/t/test_*)
# and every integration test (tests/integration/test_*.py, driving
# BUILD/witpipe) for each build, then prints one closing line:
#   tests: N passed, N failed, N skipped
# Exit status is non-zero when anything failed.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
export WITPIPE_SHARED=${WITPIPE_SHARED:-$(cd "$root/.." && pwd)/shared}
if [ ! -d "$WITPIPE_SHARED" ]; then
  echo "!!!! WARNING: reference data not found at $WITPIPE_SHARED (set WITPIPE_SHARED)."
  echo "!!!! WARNING: golden-data tests will SKIP. CI always has ../shared."
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}
pass=0 fail=0 skip=0
failed_names=()
logdir=$(mktemp -d /tmp/witpipe-tests.XXXXXX)

note_fail() { fail=$((fail + $1)); failed_names+=("$2"); }

# run_cmocka NAME CMD [ARGS]: runs a cmocka binary (from the project root)
# and adds its PASSED/FAILED/SKIPPED counts; a crash counts as one failure.
run_cmocka() {
  local name=$1 log p f s rc
  shift
  log="$logdir/$(echo "$name" | tr / _).log"
  ( cd "$root" && "$@" ) >"$log" 2>&1
  rc=$?
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
  s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
  p=${p:-0} f=${f:-0} s=${s:-0}
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
  pass=$((pass + p)); skip=$((skip + s))
  if [ "$f" != 0 ]; then note_fail "$f" "$name"; cat "$log"; fi
  printf '%-50s %4d passed %3d failed %3d skipped\n' "$name" "$p" "$f" "$s"
  grep -h 'SKIP:' "$log" | sort -u | sed 's/^/    /'
}

for build in "$@"; do
  build=$(cd "$root" && cd "$build" && pwd)
  export WITPIPE_BIN="$build/witpipe"
  echo "==== suite: $build"
  for t in "$build"/t/test_*; do
    [ -x "$t" ] && run_cmocka "$(basename "$build")/$(basename "$t")" "$t"
  done
  # Scripts that build a variant of a unit test and run it (cmocka output):
  # the AVX-512 kernels through SIMDe's emulation, on CPUs without AVX-512.
  for t in "$root"/tests/kern_avx512_emul.sh; do
    [ -x "$t" ] && run_cmocka "$(basename "$build")/$(basename "$t")" "$t" "$build"
  done
  for t in "$root"/tests/integration/test_*.py; do
    [ -f "$t" ] || continue
    name="$(basename "$build")/$(basename "$t")"
    log="$logdir/$(echo "$name" | tr / _).log"
    ( cd "$root" && /usr/bin/python3 -m unittest -v "tests.integration.$(basename "$t" .py)" ) >"$log" 2>&1
    rc=$?
    n=$(sed -n 's/^Ran \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    f=$(grep -oE 'failures=[0-9]+' "$log" | tail -1 | cut -d= -f2)
    e=$(grep -oE 'errors=[0-9]+' "$log" | tail -1 | cut -d= -f2)
    s=$(grep -oE 'skipped=[0-9]+' "$log" | tail -1 | cut -d= -f2)
    n=${n:-0} f=${f:-0} e=${e:-0} s=${s:-0}
    f=$((f + e))
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
    p=$((n - f - s)); [ $p -lt 0 ] && p=0
    pass=$((pass + p)); skip=$((skip + s))
    if [ "$f" != 0 ]; then note_fail "$f" "$name"; cat "$log"; fi
    printf '%-50s %4d passed %3d failed %3d skipped\n' "$name" "$p" "$f" "$s"
    grep -h 'SKIP:' "$log" | sort -u | sed 's/^/    /'
  done
done
if [ "${#failed_names[@]}" -gt 0 ]; then
  echo "failing: ${failed_names[*]}"
fi
echo "logs: $logdir"
echo "tests: $pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
