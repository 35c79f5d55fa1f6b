#!/usr/bin/env python3
"""bench/bench_balance_py.py LIST CAPTIONS [MAX]: the anchor of
bench_balance.sh: MetaCLIP's matcher, pyahocorasick (Debian's
python3-ahocorasick), applying MetaCLIP's rule exactly as MetaCLIP's
substr_matching does: spacing() by successive str.replace, then every
" entry " found by the automaton. One process, one core. Prints one line:
build_s RSS_MB captions wall_s cpu_s matches (RSS after building).
"""
import resource
import sys
import time

import ahocorasick

PUNCTS = [",", ".", ";", ":", "?", "!", "`"]


def spacing(text):
    t = f" {text} "
    for p in PUNCTS:
        t = t.replace(p, f" {p} ")
    for c in ["\t", "\n", "\r"]:
        t = t.replace(c, " ")
    return t


lst, caps = sys.argv[1], sys.argv[2]
limit = int(sys.argv[3]) if len(sys.argv) > 3 else None
with open(lst, encoding="utf-8") as f:
    entries = f.read().split("\n")[:-1]
t0 = time.perf_counter()
A = ahocorasick.Automaton()
for i, e in enumerate(entries):
    A.add_word(f" {e} ", i)
A.make_automaton()
build = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
with open(caps, encoding="utf-8") as f:
    captions = f.read().split("\n")[:-1]
if limit:
    captions = captions[:limit]
matches = 0
t0 = time.perf_counter()
c0 = time.process_time()
for c in captions:
    ids = set()
    for _, i in A.iter(spacing(c)):
        ids.add(i)
    matches += len(ids)
el = time.perf_counter() - t0
cpu = time.process_time() - c0
print(f"{build:.2f} {rss:.0f} {len(captions)} {el:.3f} {cpu:.3f} {matches}")
