#!/usr/bin/env bash
# bench/bench_balance.sh: witpipe's query matcher and balance draw, next to
# MetaCLIP's own matcher measured in the same run.
#
#   matching: 500k entries (wordnet-base lemmas + Zipf bigrams of them,
#             bench/gen_balance.py) over 2M generated alt-text captions,
#             MetaCLIP's rule. Anchor: pyahocorasick (Debian's
#             python3-ahocorasick, what MetaCLIP uses) applying the same
#             rule (bench/bench_balance_py.py), one process = one core.
#             Target: witpipe >= 5x pyahocorasick's captions/s per core, and
#             all cores used; automaton build < 30 s and < 300 MB.
#             Both sides must find the same number of matches.
#   draw:     the balance decision over 10M synthetic pairs: < 10 s.
#
# "Per core" compares CPU seconds (user+sys) of one thread with the anchor's
# CPU seconds: on a shared, loaded machine wall times are not comparable.
#   WITPIPE_BENCH_QUICK=1  100k entries, 200k captions, 1M pairs
# Generated inputs are kept in bench/out/balance/ for reruns.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${WITPIPE_BUILD:-$root/build}
b=$build/bench/bench_balance
py=/usr/bin/python3
if [ -n "${WITPIPE_BENCH_QUICK:-}" ]; then
  ne=100000 nc=200000 np=1000000
else
  ne=500000 nc=2000000 np=10000000
fi
out=$root/bench/out/balance
mkdir -p "$out"
list=$out/list-$ne.txt
caps=$out/captions-$nc.txt
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC'); load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ ! -d /usr/share/wordnet ]; then
  echo "SKIP: /usr/share/wordnet missing (apt-get install wordnet-base)"; exit 0
fi
if ! $py -c 'import ahocorasick' 2> /dev/null; then
  echo "SKIP: pyahocorasick missing (apt-get install python3-ahocorasick)"; exit 0
fi
if [ ! -s "$list" ] || [ ! -s "$caps" ]; then
  echo "generating $ne entries and $nc captions (once; kept in $out) ..."
  $py "$root/bench/gen_balance.py" "$list" "$caps" "$ne" "$nc"
fi
export OMP_WAIT_POLICY=passive
echo "== pyahocorasick (MetaCLIP's matcher), one core"
read -r pbuild prss pn pwall pcpu pmatch < <($py "$root/bench/bench_balance_py.py" "$list" "$caps")
prate=$(awk "BEGIN { printf \"%.0f\", $pn / $pcpu }")
echo "automaton: built in $pbuild s, RSS $prss MB; $pn captions, $pmatch matches, $pwall s wall, $pcpu s CPU: $prate captions/s by CPU"
echo "== witpipe"
res=$("$b" "$list" "$caps" | tee /dev/stderr | sed -n 's/^RESULT //p')
read -r wcpu wall wmatch wcores <<< "$res"
echo "== draw"
"$b" --draw "$np" "$ne"
echo
ratio=$(awk "BEGIN { printf \"%.2f\", $wcpu / $prate }")
echo "matching per core: witpipe $wcpu captions/s vs pyahocorasick $prate captions/s: ${ratio}x [target >= 5x]"
echo "all cores: $wall captions/s by wall, $wcores cores busy on average [$(nproc) cores; wall figures are noisy on a shared machine]"
if [ "$wmatch" != "$pmatch" ]; then
  echo "MISMATCH: witpipe found $wmatch matches, pyahocorasick $pmatch"; exit 1
fi
echo "same matches: $wmatch"
