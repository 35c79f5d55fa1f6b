#!/usr/bin/env bash
# bench/bench_crawl.sh: `witpipe crawl --warc` and `--wat` throughput on a
# generated WARC.gz / WAT.gz of realistic pages (bench/gen_crawl.py), next
# to `zcat FILE > /dev/null` on the same file: the decompression floor.
# Targets (one core): WARC extraction >= 50% of the floor, WAT >= 70%.
#
#   WITPIPE_CRAWL_BENCH_MB=N   uncompressed WARC size in MiB (default 256;
#                              32 with WITPIPE_BENCH_QUICK=1)
#   WITPIPE_BIN                the binary (default build/witpipe)
#
# "On one core": zcat and witpipe both run pinned to CPU 0 (taskset), and
# the ratio is given on CPU time (user+sys) and on wall time; on a shared,
# loaded machine the CPU figure is the one to trust. A second witpipe run
# without pinning shows the wall time when its reader thread (decompress +
# extract) gets a core of its own beside the catalog writer. Generated
# files are kept in bench/out/crawl/ for reruns.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${WITPIPE_BIN:-$root/build/witpipe}
if [ -n "${WITPIPE_BENCH_QUICK:-}" ]; then
  mb=${WITPIPE_CRAWL_BENCH_MB:-32}
else
  mb=${WITPIPE_CRAWL_BENCH_MB:-256}
fi
out=$root/bench/out/crawl
mkdir -p "$out"
warc=$out/pages-$mb.warc.gz
wat=$out/pages-$mb.wat.gz
if [ ! -s "$warc" ] || [ ! -s "$wat" ] || [ ! -s "$warc.meta" ]; then
  echo "generating $mb MiB of pages (once; kept in $out) ..."
  python3 "$root/bench/gen_crawl.py" "$warc" "$wat" "$mb" > "$warc.meta"
fi
tmp=$(mktemp -d /tmp/witpipe-bench-crawl.XXXXXX)
pin=""
if command -v taskset > /dev/null 2>&1 && taskset -c 0 true 2> /dev/null; then
  pin="taskset -c 0"
else
  echo "note: taskset unavailable: 'one core' runs are not pinned"
fi
trap 'rm -rf "$tmp"' EXIT

# measure LABEL CMD...: runs CMD, sets wall, cpu (user+sys) and rss (KiB).
measure() {
  /usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$@" > /dev/null 2> "$tmp/stderr" || {
    cat "$tmp/stderr" >&2
    return 1
  }
  read -r wall user sys rss < "$tmp/time"
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) b = 0.01; printf "%.0f", 100 * a / b }'; }
rate() { awk -v n="$1" -v t="$2" 'BEGIN { if (t <= 0) t = 0.01; printf "%.1f", n / t }'; }

bench_one() {
  local kind=$1 file=$2 target=$3
  local zmb umb pages
  zmb=$(awk -v b="$(stat -c %s "$file")" 'BEGIN { printf "%.1f", b / 1048576 }')
  umb=$(zcat "$file" | wc -c | awk '{ printf "%.1f", $1 / 1048576 }')
  measure $pin zcat "$file"
  local zwall=$wall zcpu=$cpu
  rm -rf "$tmp/corpus"
  "$bin" init "$tmp/corpus" > /dev/null 2>&1
  measure $pin "$bin" -q -C "$tmp/corpus" crawl "--$kind" "$file"
  pages=$(python3 -c "import json,sqlite3,sys; d=sqlite3.connect(sys.argv[1]); \
print(json.loads(d.execute('SELECT counts FROM runs ORDER BY id DESC').fetchone()[0])['pages'])" \
    "$tmp/corpus/catalog.db")
  pairs=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute( \
'SELECT count(*) FROM pairs').fetchone()[0])" "$tmp/corpus/catalog.db")
  echo "$kind: $(basename "$file"): $zmb MB compressed, $umb MB uncompressed, $pages pages, $pairs pairs"
  printf '  %-22s wall %6.2fs  cpu %6.2fs  %8s MB/s (compressed, by cpu)\n' "zcat > /dev/null" \
    "$zwall" "$zcpu" "$(rate "$zmb" "$zcpu")"
  printf '  %-22s wall %6.2fs  cpu %6.2fs  %8s MB/s  %8s pages/s (by cpu)  peak RSS %d MiB\n' \
    "crawl --$kind" "$wall" "$cpu" "$(rate "$zmb" "$cpu")" "$(rate "$pages" "$cpu")" $((rss / 1024))
  printf '  vs the zcat floor: %s%% by cpu, %s%% by wall (target >= %s%%)\n' \
    "$(ratio "$zcpu" "$cpu")" "$(ratio "$zwall" "$wall")" "$target"
  rm -rf "$tmp/corpus"
  "$bin" init "$tmp/corpus" > /dev/null 2>&1
  measure "$bin" -q -C "$tmp/corpus" crawl "--$kind" "$file"
  printf '  %-22s wall %6.2fs  cpu %6.2fs  %8s MB/s (by wall): %s%% of the zcat floor by wall\n' \
    "  unpinned (2 threads)" "$wall" "$cpu" "$(rate "$zmb" "$wall")" "$(ratio "$zwall" "$wall")"
  # The same without catalog writes: extraction alone (decompress, parse,
  # clean, resolve), to show where the time goes.
  rm -rf "$tmp/corpus"
  "$bin" init "$tmp/corpus" > /dev/null 2>&1
  measure $pin "$bin" -q -C "$tmp/corpus" crawl "--$kind" "$file" --dry-run
  printf '  %-22s wall %6.2fs  cpu %6.2fs  %8s MB/s  %8s pages/s (by cpu)  peak RSS %d MiB\n' \
    "  --dry-run (no writes)" "$wall" "$cpu" "$(rate "$zmb" "$cpu")" "$(rate "$pages" "$cpu")" \
    $((rss / 1024))
  printf '  extraction alone vs the zcat floor: %s%% by cpu, %s%% by wall\n' \
    "$(ratio "$zcpu" "$cpu")" "$(ratio "$zwall" "$wall")"
}

echo "crawl bench: $(sed -n 1p "$warc.meta"); pinned runs: ${pin:-none}"
bench_one warc "$warc" 50
bench_one wat "$wat" 70
