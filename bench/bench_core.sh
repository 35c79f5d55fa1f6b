#!/usr/bin/env bash
# bench/bench_core.sh [WITPIPE_BIN]: witpipe add and shard throughput,
# printed beside plain-tool baselines on the same data.
#
#   add:   a generated 1M-row TSV (url, caption) -> rows/s, next to
#          `cat FILE > /dev/null` (the cost of just reading the bytes).
#   shard: 2000 images imported with add --files (copies of the test
#          images) -> MB/s of shard output, next to `tar -cf` writing the
#          same members (the shard extracted to a folder and re-tarred),
#          with and without a final fsync (witpipe fsyncs every shard).
#          Target: shard within 1.5x of GNU tar writing the same bytes.
#
# Environment: BENCH_ROWS (default 1000000), BENCH_IMAGES (default 2000),
# WITPIPE_SHARED (test images; falls back to tests/data/core).
# Timings on a shared machine are noisy: compare figures from one run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/witpipe}
rows=${BENCH_ROWS:-1000000}
nimg=${BENCH_IMAGES:-2000}
shared=${WITPIPE_SHARED:-$root/../shared}
work=$(mktemp -d /tmp/witpipe-bench-core.XXXXXX)
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
el() { awk "BEGIN { printf \"%.4f\", $2 - $1 }"; }
rate() { awk "BEGIN { printf \"%.1f\", ($1) / ($2) }"; }

echo "== add: $rows-row TSV"
python3 - "$work/list.tsv" "$rows" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write("url\tcaption\n")
    for i in range(n):
        f.write(f"https://img.example.com/{i % 9973}/{i}.jpg\tA photo number {i} of a thing, "
                f"taken somewhere in {i % 197}\n")
PY
size=$(stat -c %s "$work/list.tsv")
t0=$(now); cat "$work/list.tsv" > /dev/null; t1=$(now)
cat_s=$(el "$t0" "$t1")
"$bin" -q init "$work/c1"
t0=$(now); "$bin" -q -C "$work/c1" add "$work/list.tsv"; t1=$(now)
add_s=$(el "$t0" "$t1")
printf '  %-34s %10.2f s %12s rows/s %8s MB/s\n' "witpipe add" "$add_s" "$(rate "$rows" "$add_s")" \
  "$(rate "$size / 1000000" "$add_s")"
printf '  %-34s %10.2f s %12s rows/s %8s MB/s\n' "cat FILE > /dev/null" "$cat_s" \
  "$(rate "$rows" "$cat_s")" "$(rate "$size / 1000000" "$cat_s")"

echo "== shard: $nimg images"
src="$shared/testdata/images"
[ -d "$src" ] || src="$root/tests/data/core"
mkdir -p "$work/imgs"
i=0
while [ "$i" -lt "$nimg" ]; do
  for f in "$src"/*; do
    [ "$i" -lt "$nimg" ] || break
    case "$f" in *truncated*) continue ;; esac
    ext=${f##*.}
    cp "$f" "$work/imgs/$i.$ext"
    echo "caption $i of $(basename "$f")" > "$work/imgs/$i.txt"
    i=$((i + 1))
  done
done
"$bin" -q init "$work/c2"
"$bin" -q -C "$work/c2" add --files "$work/imgs"
sync
t0=$(now); "$bin" -q -C "$work/c2" shard -o "$work/shards"; t1=$(now)
shard_s=$(el "$t0" "$t1")
bytes=$(cat "$work"/shards/*.tar | wc -c)
mkdir -p "$work/x"
for t in "$work"/shards/*.tar; do tar -xf "$t" -C "$work/x"; done
# The same members, in the same order.
(cd "$work/x" && for t in "$work"/shards/*.tar; do tar -tf "$t"; done) > "$work/order"
sync
t0=$(now); tar -cf "$work/gnu.tar" -C "$work/x" -T "$work/order"; t1=$(now)
tar_s=$(el "$t0" "$t1")
rm -f "$work/gnu.tar"
t0=$(now); tar -cf "$work/gnu.tar" -C "$work/x" -T "$work/order"; sync -d "$work/gnu.tar"; t1=$(now)
tars_s=$(el "$t0" "$t1")
tbytes=$(stat -c %s "$work/gnu.tar")
printf '  %-34s %10.3f s %10s MB  %8s MB/s\n' "witpipe shard (sha256 in+out, fsync)" "$shard_s" \
  "$(rate "$bytes" 1000000)" "$(rate "$bytes / 1000000" "$shard_s")"
printf '  %-34s %10.3f s %10s MB  %8s MB/s\n' "tar -cf (same members)" "$tar_s" \
  "$(rate "$tbytes" 1000000)" "$(rate "$tbytes / 1000000" "$tar_s")"
printf '  %-34s %10.3f s %10s MB  %8s MB/s\n' "tar -cf + fsync" "$tars_s" \
  "$(rate "$tbytes" 1000000)" "$(rate "$tbytes / 1000000" "$tars_s")"
echo "  shard / tar time: $(rate "$shard_s" "$tar_s")x (target <= 1.5x); with fsync: $(rate "$shard_s" "$tars_s")x"
