#!/usr/bin/env python3
"""bench/gen_balance.py LIST CAPTIONS N_ENTRIES N_CAPTIONS [WORDNET_DIR]:
the inputs of bench_balance.sh.

LIST: N_ENTRIES entries, one a line: every WordNet lemma from wordnet-base's
data.* files (underscores as spaces; about 147k), then bigrams of WordNet
single-word lemmas drawn by a Zipf law until N_ENTRIES (a real word list
grown the way MetaCLIP grows its metadata with Wikipedia bigrams).
CAPTIONS: N_CAPTIONS alt-text-like captions, one a line: 3-18 words drawn
from the lemma vocabulary by a Zipf law mixed with function words,
capitalised starts, numbers and punctuation (, . ! ? : and quotes).
Deterministic (seeded).
"""
import os
import random
import sys

lst, caps, n_entries, n_caps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
wn = sys.argv[5] if len(sys.argv) > 5 else "/usr/share/wordnet"
rng = random.Random(20261207)

lemmas = []
seen = set()
for part in ("noun", "verb", "adj", "adv"):
    with open(os.path.join(wn, "data." + part), encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("  "):
                continue
            fs = line.split(" ")
            cnt = int(fs[3], 16)
            for i in range(cnt):
                w = fs[4 + 2 * i]
                if w.endswith(")") and "(" in w:
                    w = w[: w.index("(")]
                w = w.replace("_", " ")
                if w and w not in seen:
                    seen.add(w)
                    lemmas.append(w)
rng.shuffle(lemmas)
singles = [w for w in lemmas if " " not in w and w.isalpha()]
# Zipf weights over the single words (rank 1 most frequent)
weights = [1.0 / (r + 10) for r in range(len(singles))]
cum = []
acc = 0.0
for w in weights:
    acc += w
    cum.append(acc)

entries = list(lemmas)
eset = set(entries)
while len(entries) < n_entries:
    a, b = rng.choices(singles, cum_weights=cum, k=2)
    e = a + " " + b
    if e not in eset:
        eset.add(e)
        entries.append(e)
with open(lst, "w", encoding="utf-8") as f:
    f.write("\n".join(entries[:n_entries]) + "\n")

func = ["a", "the", "of", "in", "on", "with", "and", "at", "for", "from", "by", "to", "near",
        "photo", "image", "picture", "view", "close-up", "old", "new", "my", "our"]
punct = [",", ".", "!", "?", ":", " -", ""]
with open(caps, "w", encoding="utf-8") as f:
    out = []
    for i in range(n_caps):
        k = rng.randint(3, 18)
        words = rng.choices(singles, cum_weights=cum, k=k)
        for j in range(k):
            r = rng.random()
            if r < 0.35:
                words[j] = rng.choice(func)
            elif r < 0.40:
                words[j] = str(rng.randint(0, 2030))
            elif r < 0.50:
                words[j] = words[j].capitalize()
            if rng.random() < 0.08:
                words[j] += rng.choice(punct)
        if rng.random() < 0.1:
            words[0] = '"' + words[0]
            words[-1] += '"'
        out.append(" ".join(words))
        if len(out) == 100000:
            f.write("\n".join(out) + "\n")
            out = []
    if out:
        f.write("\n".join(out) + "\n")
