#!/usr/bin/env bash
# bench/bench_dedup.sh: the dedup figures (issue 10) beside their targets:
# pHash images/s from 256 px JPEGs, the multi-index hashing join on 10M
# hashes at radius 6 with the brute-force extrapolation, and k-means +
# SemDeDup on 1M x 512 with the same data and rounds handed to Debian's
# python3-faiss k-means (the anchor users would pick), both on the same
# cores. WITPIPE_BENCH_QUICK=1: small inputs (a smoke run). faiss needs
# python3-faiss and libopenblas0-pthread: without OpenBLAS Debian's faiss
# runs on the reference BLAS, many times slower, an unfair anchor.
# WITPIPE_DEDUP_PARTS="phash mih kmeans": which parts (default all).
# Environment: WITPIPE_BUILD (default build), WITPIPE_SHARED.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${WITPIPE_BUILD:-$root/build}
bin=$build/bench/bench_dedup
export WITPIPE_SHARED=${WITPIPE_SHARED:-$(cd "$root/.." && pwd)/shared}
# as `witpipe dedup` runs (cli: commands with OpenMP teams start passive);
# faiss below inherits the same setting
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
[ -x "$bin" ] || { echo "bench_dedup: build it first (make bench)"; exit 1; }
if [ -n "${WITPIPE_BENCH_QUICK:-}" ]; then
  nimg=300 nhash=1000000 n=100000 k=316 iters=5
else
  nimg=3000 nhash=10000000 n=1000000 k=1000 iters=${WITPIPE_KMEANS_ITERS:-10}
fi
d=512
echo "dedup on $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
parts=" ${WITPIPE_DEDUP_PARTS:-phash mih kmeans} "
status=0
case $parts in *" phash "*) "$bin" phash "$nimg" || status=1 ;; esac
case $parts in *" mih "*) "$bin" mih "$nhash" 6 || status=1 ;; esac
case $parts in *" kmeans "*) ;; *) exit $status ;; esac
tmp=$(mktemp -d /tmp/witpipe-bench-dedup.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
peak=$("$build/bench/bench_kern" --peak 3 2>/dev/null | sed -n 's/^result peak \([0-9.]*\) .*/\1/p')
out=$("$bin" kmeans "$n" "$d" "$k" "$iters" "$tmp/x.npy") || status=1
echo "$out" | grep -v '^result'
ours=$(echo "$out" | sed -n 's/^result kmeans \([0-9.]*\) .*/\1/p')
if [ -n "$peak" ] && [ -n "$ours" ]; then
  awk -v n="$n" -v k="$k" -v d="$d" -v it="$iters" -v t="$ours" -v p="$peak" 'BEGIN {
    g = 2 * n * k * d * (it + 1) / 1e9 / t;
    printf "kmeans: %.1f GFLOP/s = %.0f%% of the %.1f GFLOP/s FMA peak (bench_kern --peak)\n", g, 100 * g / p, p }'
fi
if /usr/bin/python3 -c 'import faiss, numpy' 2>/dev/null; then
  /usr/bin/python3 - "$tmp/x.npy" "$k" "$iters" "${ours:-0}" <<'PY'
import sys, time
import numpy as np, faiss
x = np.ascontiguousarray(np.load(sys.argv[1], mmap_mode="r"), dtype=np.float32)
k, iters, ours = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
n, d = x.shape
# all rows (faiss subsamples to 256 per centroid by default), spherical
km = faiss.Kmeans(d, k, niter=iters, spherical=True, seed=1, max_points_per_centroid=n,
                  verbose=False)
t0 = time.time()
km.train(x)
t = time.time() - t0
_, _ = km.index.search(x[:1], 1)
print("kmeans: faiss %s (python3-faiss), same data, %d rounds, %d threads: %.1f s "
      "(witpipe %.1f s, %.2fx faiss's time; target <= 1x)"
      % (faiss.__version__, iters, faiss.omp_get_max_threads(), t, ours, ours / t if t else 0))
PY
else
  echo "kmeans: faiss anchor SKIPPED (apt-get install python3-faiss)"
fi
exit $status
