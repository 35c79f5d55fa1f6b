#!/usr/bin/env bash
# bench/run.sh BUILD: every benchmark, each printing its figures beside the
# anchor it must beat. Run on an otherwise idle machine; figures are noisy
# otherwise. Individual benchmarks: bench/bench_*.sh and BUILD/bench/bench_*.
#   WITPIPE_BENCH_ONLY="core fetch"   run a subset (core fetch crawl kern encode balance parquet filter audit dedup merge)
#   WITPIPE_BENCH_QUICK=1             smaller inputs (smoke run)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$root/${1:-build}" && pwd)
export WITPIPE_BIN="$build/witpipe" WITPIPE_BUILD="$build"
export WITPIPE_SHARED=${WITPIPE_SHARED:-$(cd "$root/.." && pwd)/shared}
only=${WITPIPE_BENCH_ONLY:-core fetch crawl kern encode balance parquet filter audit dedup merge}
echo "witpipe bench on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(date -u +%Y-%m-%d)"
status=0
for b in $only; do
  echo
  echo "=== $b"
  if [ -x "$root/bench/bench_$b.sh" ]; then
    "$root/bench/bench_$b.sh" || status=1
  elif [ -x "$build/bench/bench_$b" ]; then
    "$build/bench/bench_$b" || status=1
  else
    echo "(no bench_$b in this build)"
  fi
done
exit $status
