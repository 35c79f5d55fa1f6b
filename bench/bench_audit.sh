#!/usr/bin/env bash
# bench/bench_audit.sh [WITPIPE_BIN]: `witpipe audit` on a 1M-pair catalog
# without a model. Target (issue 13): under 60 s.
#
# The catalog is made here: `witpipe add` of a generated 1M-row TSV whose
# captions mention gender, age, occupation and adjective terms at about the
# rate of web alt text (a third of them), from 5000 domains; then, as the
# fetch and later stages would, 90% of the images are marked stored with a
# size, and dedup / filter / balance decisions are written for 35% of the
# pairs. The audit runs with its defaults (200 bootstrap replicates, a
# gallery of 6 per row: its thumbnails fail fast, there are no bytes).
#
# Printed beside it, measured in the same run: the floor of reading the
# same rows, one SQLite scan of pairs joined with images and decisions
# (python3's sqlite3, summing text lengths), and the 60 s target.
#
# Environment: BENCH_PAIRS (default 1000000). Timings on a shared machine
# are noisy: compare figures from one run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-${WITPIPE_BIN:-$root/build/witpipe}}
n=${BENCH_PAIRS:-1000000}
[ -n "${WITPIPE_BENCH_QUICK:-}" ] && n=${BENCH_PAIRS:-100000}
work=$(mktemp -d /tmp/witpipe-bench-audit.XXXXXX)
trap '[ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"' EXIT

now() { date +%s.%N; }
el() { awk "BEGIN { printf \"%.2f\", $2 - $1 }"; }

echo "== audit: $n-pair catalog, no model"
python3 - "$work/list.tsv" "$n" <<'PY'
import random, sys
path, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(13)
people = ["woman", "man", "girl", "boy", "mother", "father", "elderly man", "young woman",
          "child", "baby", "teenager", "she", "he", "lady", "guy"]
jobs = ["nurse", "doctor", "engineer", "teacher", "chef", "pilot", "ceo", "secretary",
        "scientist", "farmer", "lawyer", "artist", "soldier", "police officer"]
adjs = ["beautiful", "strong", "happy", "smart", "pretty", "confident", "old", "young",
        "kind", "angry", "successful", "cute"]
things = ["sunset over the lake", "a red car", "vintage poster", "mountain road", "coffee cup",
          "city skyline at night", "bowl of ramen", "wooden table", "garden flowers", "logo"]
with open(path, "w") as f:
    f.write("url\tcaption\n")
    for i in range(n):
        r = rng.random()
        if r < 0.33:
            cap = "a %s %s %s at work" % (rng.choice(adjs), rng.choice(people), rng.choice(jobs))
        elif r < 0.45:
            cap = "%s with a %s" % (rng.choice(people), rng.choice(things))
        else:
            cap = "%s, photo %d" % (rng.choice(things), i)
        f.write("https://img%d.site%d.example.com/p/%d.jpg\t%s\n" % (i % 7, i % 5000, i, cap))
PY
"$bin" init "$work/c" >/dev/null
t0=$(now)
"$bin" -q -C "$work/c" add "$work/list.tsv"
t1=$(now)
echo "  (catalog: add took $(el "$t0" "$t1") s)"
python3 - "$work/c/catalog.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.executescript("""
UPDATE images SET state = 'ok', store_file = 0, store_offset = 0, bytes = 1000,
  width = 256, height = 256, orig_width = 200 + (id * 37) % 1800, orig_height = 150 + (id * 53) % 1300
  WHERE id % 10 != 0;
UPDATE images SET state = 'error', error_class = CASE id % 3 WHEN 0 THEN 'http_4xx'
  WHEN 1 THEN 'timeout' ELSE 'not_an_image' END WHERE id % 10 = 0;
INSERT INTO decisions (pair_id, stage, decision, reason, score)
  SELECT id, 'dedup', CASE WHEN id % 17 = 0 THEN 'drop' ELSE 'keep' END,
         CASE WHEN id % 17 = 0 THEN 'near_duplicate' END, NULL FROM pairs;
INSERT INTO decisions (pair_id, stage, decision, reason, score)
  SELECT id, 'filter', CASE WHEN id % 5 = 1 THEN 'drop' ELSE 'keep' END,
         CASE id % 15 WHEN 1 THEN 'min_words' WHEN 6 THEN 'clip_score' WHEN 11 THEN 'lang' END,
         0.2 + (id % 100) / 500.0 FROM pairs;
INSERT INTO decisions (pair_id, stage, decision, reason, score)
  SELECT id, 'balance', 'drop', 'over_cap', NULL FROM pairs WHERE id % 9 = 4;
""")
db.commit()
PY
# the floor: one scan of the rows the audit reads
t0=$(now)
python3 - "$work/c/catalog.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = s = 0
for pid, text, url, state in db.execute(
        "SELECT p.id, p.text, i.url, i.state FROM pairs p JOIN images i ON i.id = p.image_id "
        "ORDER BY p.id"):
    n += 1
    s += len(text)
d = db.execute("SELECT count(*), sum(length(stage)) FROM decisions").fetchone()
print("  scan: %d pairs, %d decisions" % (n, d[0]))
PY
t1=$(now)
scan=$(el "$t0" "$t1")
# wall, CPU (user + sys) and peak RSS of the audit, from its rusage
read -r aud cpu rss < <(python3 - "$bin" "$work" <<'PY'
import resource, subprocess, sys, time
b, w = sys.argv[1], sys.argv[2]
t = time.time()
subprocess.run([b, "-q", "-C", w + "/c", "audit", "-o", w + "/out"], check=True)
el = time.time() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.2f %.2f %d" % (el, r.ru_utime + r.ru_stime, r.ru_maxrss))
PY
)
sel=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['funnel']['selected'])" "$work/out/report.json")
echo "  witpipe audit:       $aud s wall, $cpu s CPU, peak RSS $((rss / 1024)) MB  ($n pairs, $sel selected; report.html $(stat -c %s "$work/out/report.html") bytes)"
echo "  anchor, SQLite scan: $scan s  (python3 sqlite3 reading the same rows, nothing computed)"
echo "  target:              < 60 s"
awk "BEGIN { exit !($aud < 60) }" && echo "  PASS: under 60 s" || { echo "  FAIL: over 60 s"; exit 1; }
