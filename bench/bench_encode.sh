#!/usr/bin/env bash
# bench/bench_encode.sh [BUILD]: the CLIP encoder against ONNX Runtime, side
# by side from one run: witpipe images/s (ViT-B/32 f32 at batch 1 and 32,
# bf16 with its kernel path), texts/s on real alt-text captions and on
# 32 x 77-token padding, RN50 images/s, the achieved GFLOP/s against the
# machine's measured FMA peak, and ONNX Runtime's figures from
# ../shared/anchors/onnxruntime/run.sh (its first run installs torch and
# onnxruntime-node into a cache directory; when that fails the README's
# quoted figures are shown, labelled "quoted, not measured").
#
# Both sides report their best run (the machine may be shared: the best run
# is the least disturbed one). Ratios use best wall-clock figures of both;
# witpipe's CPU-time-normalised rate is shown beside them. Quiet machines
# only give figures worth quoting; the "others" columns say how busy other
# processes kept the CPUs.
# Alone: `WITPIPE_BENCH_ONLY=encode make bench` (bench/run.sh) or
# bench/bench_encode.sh after `make build/bench/bench_encode build/bench/bench_kern`.
# It prints the CPU model, its ISA flags, the kernel path used and why
# (kn_path_info), and the load average (figures from a busy machine are noisy).
#   WITPIPE_BENCH_QUICK=1   fewer runs (smoke run)
#   WITPIPE_BENCH_NO_ORT=1  skip ONNX Runtime (quoted figures instead)
set -u
# the wait policy the witpipe CLI runs with (cli/main.c): waiting OpenMP
# workers sleep instead of spinning on a CPU a team mate needs
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${WITPIPE_BUILD:-$root/${1:-build}}
shared=${WITPIPE_SHARED:-$(cd "$root/.." && pwd)/shared}
ortdir=$shared/anchors/onnxruntime
quick=${WITPIPE_BENCH_QUICK:-0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for b in bench_encode bench_kern; do
  if [ ! -x "$build/bench/$b" ]; then
    echo "bench_encode.sh: $build/bench/$b missing (make $build/bench/$b)" >&2
    exit 1
  fi
done

cpu_model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
[ -n "$cpu_model" ] || cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
cpu_isa=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' |
  grep -E '^(avx2|fma|avx512f|avx512bw|avx512vl|avx512dq|avx512_bf16|avx512_vnni|amx_tile|amx_bf16|amx_int8)$' |
  tr '\n' ' ')
echo "# CPU: $cpu_model, $(nproc) CPUs (family $(sed -n 's/^cpu family[^:]*: //p' /proc/cpuinfo | head -1) model $(sed -n 's/^model[^:]*: //p' /proc/cpuinfo | head -1)), $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# ISA flags: $cpu_isa"

# ---- ONNX Runtime (measured in this run when it can be) --------------------
ort_src="quoted, not measured"
ort_img1=18.4 ort_img32=21.3 ort_txt=30.7 # README medians of its quoted ranges
ort_o1=- ort_o32=- ort_ot=-
best() { # best items/s and max others% of the ORT line "$2 batch=$3" in log $1
  awk -v k="$2" -v b="batch=$3" '$1 == k && $2 == b {
    match($0, /items\/s best\/med\/worst [0-9.]+/); v = substr($0, RSTART, RLENGTH); sub(/.* /, "", v)
    match($0, /others% [0-9]+/); o = substr($0, RSTART, RLENGTH); sub(/.* /, "", o)
    print v, o; exit }' "$1"
}
keep() { # keep() VAR_VALUE VAR_OTHERS NEW_VALUE NEW_OTHERS: prints the better pair
  awk -v v="$1" -v o="$2" -v nv="$3" -v no="$4" 'BEGIN {
    if (nv != "" && (v == "" || nv + 0 > v + 0)) print nv, no; else print v, o }'
}
noisy() { awk -v a="$1" -v b="$2" -v c="$3" 'BEGIN { exit !(a + 0 > 15 || b + 0 > 15 || c + 0 > 15) }'; }
if [ "${WITPIPE_BENCH_NO_ORT:-0}" != 1 ] && [ -x "$ortdir/run.sh" ]; then
  runs=7
  [ "$quick" = 1 ] && runs=3
  i1= o1= i32= o32= t32= ot=
  # a second attempt when other processes disturbed the first (best kept per case)
  for attempt in 1 2; do
    echo "# ONNX Runtime (attempt $attempt): $ortdir/run.sh $(nproc) $runs (first run installs python3-torch and onnxruntime-node)"
    if ! "$ortdir/run.sh" "$(nproc)" "$runs" >"$tmp/ort.log" 2>&1; then
      echo "# ONNX Runtime could not run (install or export failed); last lines:"
      tail -5 "$tmp/ort.log" | sed 's/^/#   /'
      break
    fi
    sed 's/^/#   /' "$tmp/ort.log"
    read -r i1 o1 < <(keep "$i1" "$o1" $(best "$tmp/ort.log" image 1))
    read -r i32 o32 < <(keep "$i32" "$o32" $(best "$tmp/ort.log" image 32))
    read -r t32 ot < <(keep "$t32" "$ot" $(best "$tmp/ort.log" text 32))
    noisy "$o1" "$o32" "$ot" || break
  done
  if [ -n "${i1:-}" ] && [ -n "${i32:-}" ] && [ -n "${t32:-}" ]; then
    ort_src="measured in this run"
    ort_img1=$i1 ort_img32=$i32 ort_txt=$t32 ort_o1=$o1 ort_o32=$o32 ort_ot=$ot
  else
    echo "# no ONNX Runtime figures from this run; using the README's quoted figures"
  fi
fi

# ---- FMA peak, then witpipe -----------------------------------------------
peak_runs=15
[ "$quick" = 1 ] && peak_runs=5
"$build/bench/bench_kern" --peak "$peak_runs" | tee "$tmp/peak.log" | grep -v '^result'
"$build/bench/bench_encode" "$root/bench/data/alt_texts.txt" | tee "$tmp/enc.log" |
  grep -v '^result'

# ---- side by side -----------------------------------------------------------
echo
echo "# CPU: $cpu_model; ISA flags: $cpu_isa; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
sed -n 's/^kernel path: /# witpipe kernel path: /p' "$tmp/enc.log"
awk -v src="$ort_src" -v oi1="$ort_img1" -v oi32="$ort_img32" -v ot="$ort_txt" \
  -v oo1="$ort_o1" -v oo32="$ort_o32" -v oot="$ort_ot" -v peakf="$tmp/peak.log" '
BEGIN {
  while ((getline l < peakf) > 0) { split(l, f, " "); if (f[1] == "result" && f[2] == "peak") peak = f[4] }
}
$1 == "result" { w[$2] = $3; c[$2] = $4; g[$2] = $5; o[$2] = $6; if ($2 == "path") path = $3 }
function row(what, key, ortv, orto, target,    r, ok) {
  if (!(key in w)) { printf "%-40s %s\n", what, "(not measured)"; return }
  r = ortv > 0 ? sprintf("%5.2fx", w[key] / ortv) : "     -"
  ok = (ortv > 0 && w[key] / ortv >= target) ? "MET" : "not met"
  if (o[key] + 0 > 15 || (orto != "-" && orto + 0 > 15))
    ok = ok ", NOISY: other processes >15%, re-run on a quiet machine"
  if (key ~ /bf16/ && path !~ /bf16/)
    ok = "n/a: no native bf16 path here (see the kernel path line), fallback path"
  printf "%-40s %8.2f %8.2f %5s%% | %8s %6s | %s %s\n", what, w[key], c[key], o[key],
    (ortv > 0 ? sprintf("%.2f", ortv) : "-"), (orto == "-" ? "-" : orto "%"), r,
    (target == "" ? "" : sprintf("(target >= %sx: %s)", target, ok))
}
function gf(what, key) {
  if (!(key in w)) return
  printf "  %-38s %6.1f GFLOP/s cpu-norm, %4.1f%% of the %.1f GFLOP/s FMA peak\n", what,
    c[key] * g[key], (peak > 0 ? 100 * c[key] * g[key] / peak : 0), peak
}
END {
  print ""
  print "=== witpipe vs ONNX Runtime (ORT figures: " src ")"
  printf "%-40s %8s %8s %6s | %8s %6s | %s\n", "case (items/s)", "witpipe", "cpu-norm", "others", "ORT", "others", "ratio (wall best / wall best)"
  # issue 15: on AVX-512 CPUs f32 must reach ORT (1.0x); elsewhere the 0.95x of issue 5
  timg = path ~ /avx512|amx/ ? "1.0" : "0.95"
  row("ViT-B/32 image f32 batch 1", "image_f32_b1", oi1, oo1, timg)
  row("ViT-B/32 image f32 batch 32", "image_f32_b32", oi32, oo32, timg)
  row("text f32 real alt texts (ORT: 32x77)", "text_captions", ot, oot, "2.5")
  row("text f32 32 x 77 padding", "text_pad77", ot, oot, (path ~ /avx512|amx/ ? "1.0" : ""))
  # AMX CPUs (issue 15): bf16 images >= 4x ORT f32 at batch 32, >= 2x at batch 1
  row("image bf16 batch 32 [" path "]", "image_bf16_b32", oi32, oo32, (path ~ /amx/ ? "4.0" : "1.6"))
  row("image bf16 batch 1 [" path "]", "image_bf16_b1", oi1, oo1, (path ~ /amx/ ? "2.0" : ""))
  row("RN50 image f32 batch 8", "rn50_f32_b8", 0, "-", "")
  row("RN50 image bf16 batch 8 [" path "]", "rn50_bf16_b8", 0, "-", "")
  print "achieved:"
  gf("ViT-B/32 image f32 batch 1", "image_f32_b1")
  gf("ViT-B/32 image f32 batch 32", "image_f32_b32")
  gf("text f32 real alt texts", "text_captions")
  gf("text f32 32 x 77", "text_pad77")
  gf("RN50 f32 batch 8", "rn50_f32_b8")
  if (path !~ /bf16/)
    print "bf16: kernel path \"" path "\" has no native bf16 here (no AVX512_BF16, or VDPBF16PS measured slower than f32 FMA), so bf16 runs the fallback (bf16-rounded weights, f32 math); the 1.6x target needs native bf16."
  print "ORT text runs its exported 77-token graph, so every caption costs it 77 tokens; witpipe stops each text at its end token."
}' "$tmp/enc.log"
