#!/usr/bin/env python3
"""bench/bench_merge.py: `witpipe merge` on a synthetic split catalog, the
scaled-down simulation of docs/scale.md: a 100M-pair build split in 64
parts, at 1/100 (1M pairs, 15,625 per part; WITPIPE_BENCH_QUICK=1: 1/1000).

Each part is a witpipe catalog (witpipe init) filled directly with SQLite:
one finished add run and one filter run with "part": "K/64", its images
(state ok, sizes, sha256; no store bytes: copying store files is a plain
file copy, measured here separately as the disk's copy rate), its pairs
(2% of each part's pairs also in the next part, as parts that overlap),
and a filter decision per pair, decided by its uid as a real filter
decides by content (so the shared pairs agree). Printed: the merge's wall time and rate,
beside the anchor measured in the same run: the same rows copied part by
part with one INSERT ... SELECT per table through ATTACH (no key matching,
no remapping), which no merge can beat.
"""
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("WITPIPE_BIN", os.path.join(os.path.dirname(__file__), "..", "build",
                                                 "witpipe"))
PARTS = 64
TOTAL = 100_000_000 // (1000 if os.environ.get("WITPIPE_BENCH_QUICK") else 100)
PER = TOTAL // PARTS


def uid(url, text):
    return hashlib.sha256(url.encode() + b"\0" + text.encode()).hexdigest()[:32]


def make_part(path, k):
    subprocess.run([BIN, "-q", "init", path], check=True)
    db = sqlite3.connect(os.path.join(path, "catalog.db"))
    db.execute("PRAGMA synchronous=OFF")
    now = 1767225600 + k
    db.execute("INSERT INTO runs (id, stage, params, started_at, ended_at, status) VALUES "
               "(1, 'add', ?, ?, ?, 'done')", ('{"part":"%d/%d"}' % (k + 1, PARTS), now, now))
    db.execute("INSERT INTO runs (id, stage, params, started_at, ended_at, status) VALUES "
               "(2, 'filter', ?, ?, ?, 'done')", ('{"part":"%d/%d"}' % (k + 1, PARTS), now, now))
    db.execute("INSERT INTO sources (id, kind, location, added_at) VALUES (1, 'list', ?, ?)",
               ("list-%03d.tsv" % k, now))
    rows = []
    for i in range(PER):
        # the last 2% of part k are the first 2% of part k+1
        cut = PER * 98 // 100
        kk, ii = (k + 1, i - cut) if i >= cut and k + 1 < PARTS else (k, i)
        url = "http://host%d.example/img/%d/%d.jpg" % (kk % 997, kk, ii)
        text = "a photo number %d of part %d with a caption" % (ii, kk)
        rows.append((url, text))
    rows.sort()
    db.executemany("INSERT OR IGNORE INTO images (url, state, format, width, height, bytes, "
                   "sha256, fetched_at, run_id) VALUES (?, 'ok', 'jpeg', 256, 256, 12000, ?, ?, 1)",
                   ((u, hashlib.sha256(u.encode()).hexdigest(), now) for u, _ in rows))
    db.executemany("INSERT INTO pairs (uid, image_id, text, source_id, origin, added_at, run_id) "
                   "SELECT ?, id, ?, 1, ?, ?, 1 FROM images WHERE url = ?",
                   ((uid(u, t), t, "list-%03d.tsv:%d" % (k, n), now, u)
                    for n, (u, t) in enumerate(rows)))
    db.execute("INSERT INTO decisions (pair_id, stage, decision, reason, run_id) "
               "SELECT id, 'filter', CASE WHEN substr(uid, 1, 1) IN ('0', '1', '2') THEN 'drop' "
               "ELSE 'keep' END, CASE WHEN substr(uid, 1, 1) IN ('0', '1', '2') THEN "
               "'min_words' END, 2 FROM pairs")
    db.commit()
    db.close()


def plain_copy(dst, parts):
    subprocess.run([BIN, "-q", "init", dst], check=True)
    db = sqlite3.connect(os.path.join(dst, "catalog.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    t = time.time()
    for p in parts:
        db.execute("ATTACH DATABASE ? AS p", (os.path.join(p, "catalog.db"),))
        db.execute("BEGIN")
        db.execute("INSERT OR IGNORE INTO images (url, state, format, width, height, bytes, "
                   "sha256, fetched_at) SELECT url, state, format, width, height, bytes, sha256, "
                   "fetched_at FROM p.images")
        db.execute("INSERT OR IGNORE INTO pairs (uid, image_id, text, origin, added_at) "
                   "SELECT uid, image_id, text, origin, added_at FROM p.pairs")
        db.execute("INSERT OR IGNORE INTO decisions (pair_id, stage, decision, reason) "
                   "SELECT pair_id, stage, decision, reason FROM p.decisions")
        db.execute("COMMIT")
        db.execute("DETACH DATABASE p")
    el = time.time() - t
    db.close()
    return el


def main():
    tmp = tempfile.mkdtemp(prefix="witpipe-bench-merge-")
    try:
        t = time.time()
        parts = []
        for k in range(PARTS):
            p = os.path.join(tmp, "part-%02d" % k)
            make_part(p, k)
            parts.append(p)
        gen = time.time() - t
        size = sum(os.path.getsize(os.path.join(p, "catalog.db")) for p in parts)
        print("merge: %d parts x %d pairs (%d pairs, 2%% shared between neighbours), part "
              "catalogs %.1f MB in all, generated in %.1f s" % (PARTS, PER, PARTS * PER,
                                                                 size / 1e6, gen))
        anchor = plain_copy(os.path.join(tmp, "plain"), parts)
        main_dir = os.path.join(tmp, "merged")
        t0, c0 = time.time(), os.times()
        r = subprocess.run([BIN, "-C", main_dir, "merge"] + parts, capture_output=True,
                           text=True)
        wall = time.time() - t0
        c1 = os.times()
        cpu = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
        if r.returncode != 0:
            print("merge failed: " + r.stderr)
            return 1
        db = sqlite3.connect(os.path.join(main_dir, "catalog.db"))
        pairs = db.execute("SELECT count(*) FROM pairs").fetchone()[0]
        db.close()
        msize = os.path.getsize(os.path.join(main_dir, "catalog.db"))
        print("merge: witpipe merge %.1f s wall (%.1f s CPU), %.0f k pairs/s; merged catalog "
              "%d pairs, %.1f MB (%.0f bytes/pair)" % (wall, cpu, PARTS * PER / wall / 1e3, pairs,
                                                       msize / 1e6, msize / pairs))
        print("merge: anchor, the same rows by plain INSERT ... SELECT per part: %.1f s "
              "(%.0f k pairs/s); merge / anchor = %.2fx (target <= 3x)"
              % (anchor, PARTS * PER / anchor / 1e3, wall / anchor))
        # the disk's copy rate, which bounds copying store files
        blob = os.path.join(tmp, "blob")
        with open(blob, "wb") as f:
            f.write(os.urandom(64 << 20))
        t = time.time()
        shutil.copyfile(blob, blob + ".copy")
        with open(blob + ".copy", "rb+") as f:
            os.fsync(f.fileno())
        print("merge: store files copy at the disk's rate, here %.0f MB/s (64 MB, fsync)"
              % (64 * 1.048576 / (time.time() - t)))
        return 0 if wall <= 3 * anchor else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
