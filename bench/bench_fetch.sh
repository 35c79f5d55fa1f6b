#!/usr/bin/env bash
# bench/bench_fetch.sh: the fetch benchmark. Serves N real JPEGs (30-600 KB,
# made from the test photos at several sizes by build/bench/fetch_corpus)
# from the fixture server on 127.0.0.1, then times add + fetch (image-size
# 256, border) + shard, printing images/s, MB/s, peak RSS and CPU ms per
# image split into download (network + writer thread), decode, resize and
# encode, beside img2dataset's figures on the same kind of machine.
#   WITPIPE_BUILD (default build), WITPIPE_SHARED, WITPIPE_BENCH_QUICK=1 (300 images)
#   WITPIPE_BENCH_FETCH_ARGS   extra fetch options (e.g. "--per-host 16")
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${WITPIPE_BUILD:-$root/build}
bin=${WITPIPE_BIN:-$build/witpipe}
shared=${WITPIPE_SHARED:-$(cd "$root/.." && pwd)/shared}
n=2000
[ "${WITPIPE_BENCH_QUICK:-0}" = 1 ] && n=300
imgs="$root/bench/out/fetch_images_$n"
work=$(mktemp -d /tmp/witpipe-bench-fetch.XXXXXX)
srv_pid=""
cleanup() {
  [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

for t in "$bin" "$build/fixture_server" "$build/bench/fetch_corpus"; do
  [ -x "$t" ] || { echo "bench_fetch: $t not built (make tests bench)"; exit 1; }
done
if [ ! -d "$shared/testdata/images" ]; then
  echo "SKIP: bench_fetch needs $shared/testdata/images"; exit 0
fi
if [ "$(ls "$imgs" 2>/dev/null | wc -l)" != "$n" ]; then
  rm -rf "$imgs"
  echo "making $n JPEGs in $imgs ..."
  "$build/bench/fetch_corpus" "$shared/testdata/images" "$imgs" "$n" || exit 1
fi
mb=$(du -sb "$imgs" | awk '{printf "%.1f", $1/1e6}')

# The server lives as long as its stdin (a fifo we hold open) does.
mkfifo "$work/keep"
"$build/fixture_server" "$imgs" <"$work/keep" >"$work/port" &
srv_pid=$!
exec 9>"$work/keep"
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(head -1 "$work/port")
[ -n "$port" ] || { echo "bench_fetch: fixture server did not start"; exit 1; }

corpus="$work/corpus"
"$bin" -q init "$corpus" || exit 1
{ printf 'url\tcaption\n'
  ls "$imgs" | awk -v b="http://127.0.0.1:$port/img/" '{print b $1 "\tphoto " NR}'; } >"$work/list.tsv"

t0=$(date +%s.%N)
if "$bin" help add >/dev/null 2>&1; then
  add_how="witpipe add"
  "$bin" -q -C "$corpus" add "$work/list.tsv" >/dev/null || exit 1
else
  # `witpipe add` is not in this build: insert the candidates directly.
  add_how="sqlite3 insert (no witpipe add in this build)"
  /usr/bin/python3 - "$corpus/catalog.db" "$work/list.tsv" <<'EOF' || exit 1
import hashlib, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
now = int(time.time())
with db:
    for line in open(sys.argv[2]):
        url, text = line.rstrip("\n").split("\t")
        if url == "url":
            continue
        uid = hashlib.sha256(url.encode() + b"\0" + text.encode()).hexdigest()[:32]
        iid = db.execute("INSERT INTO images(url) VALUES (?)", (url,)).lastrowid
        db.execute("INSERT INTO pairs(uid, image_id, text, added_at) VALUES (?,?,?,?)",
                   (uid, iid, text, now))
EOF
fi
t1=$(date +%s.%N)

# shellcheck disable=SC2086
stats=$("$bin" -q -C "$corpus" fetch --allow-net 127.0.0.1/32 --image-size 256 \
        --resize-mode border --stats-json ${WITPIPE_BENCH_FETCH_ARGS:-}) || { echo "fetch failed"; exit 1; }
t2=$(date +%s.%N)

shard_line="shard: not in this build"
if "$bin" help shard >/dev/null 2>&1; then
  ts0=$(date +%s.%N)
  if "$bin" -q -C "$corpus" shard -o "$work/shards" >/dev/null 2>"$work/shard.err"; then
    ts1=$(date +%s.%N)
    shard_line=$(awk -v a="$ts0" -v b="$ts1" -v n="$n" \
      'BEGIN{printf "shard: %.2f s (%.0f samples/s)", b-a, n/(b-a)}')
  else
    shard_line="shard: failed: $(head -1 "$work/shard.err")"
  fi
fi

/usr/bin/python3 - "$stats" "$n" "$mb" "$t0" "$t1" "$t2" "$add_how" "$shard_line" <<'EOF'
import json, sys
s = json.loads(sys.argv[1]); n = int(sys.argv[2]); mb = float(sys.argv[3])
t0, t1, t2 = map(float, sys.argv[4:7])
ok = s["ok"]; wall = s["wall_s"]
per = lambda k: 1000.0 * s[k] / max(1, s["done"])
print("fetch bench: %d JPEGs, %.1f MB, served from 127.0.0.1" % (n, mb))
print("add:   %.2f s via %s" % (t1 - t0, sys.argv[7]))
print("fetch: %d ok, %d errors in %.2f s" % (ok, s["errors"], wall))
print("  images/s        %8.1f   (anchor: img2dataset 45-50/s; target >= 150/s)" % (s["done"] / wall))
print("  MB/s            %8.1f   (downloaded bytes)" % (s["bytes_in"] / 1e6 / wall))
print("  peak RSS        %8.1f MB (anchor: img2dataset 500-700 MB/process; target < 300 MB)"
      % (s["peak_rss_kb"] / 1024.0))
print("  CPU ms/image    download+write %.2f  decode %.2f  resize %.2f  encode %.2f"
      % (per("cpu_net_s"), per("cpu_decode_s"), per("cpu_resize_s"), per("cpu_encode_s")))
print("  process CPU     %8.2f s  -> %.0f images per CPU-second (less noisy than images/s;"
      " x2 cores = the idle-machine ceiling)" % (s["cpu_process_s"], s["done"] / max(1e-9, s["cpu_process_s"])))
print("  most transfers open to one host: %d" % s["max_host_active"])
print(sys.argv[8])
print("note: timings on a shared machine are noisy")
EOF
