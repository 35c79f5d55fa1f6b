"""tests/integration/test_balance_draw.py: `witpipe balance` on synthetic
corpora with known counts.

- MetaCLIP mode: every pair's decision equals the rule recomputed here
  (p_e = t / max(count_e, t), keep when u < 1 - prod(1 - p_e), u the
  documented splitmix64 draw of (seed, uid)), and the kept count of each
  entry lies within binomial bounds (4.5 sigma) of its expected value; head
  entries end near t.
- The same seed gives the same decisions whatever order the pairs were
  added in and however the corpus is cut with --part.
- --tail-fraction F gives the t this test computes by brute force.
- WIT's cap mode keeps min(count, t) per entry when each pair matches one.
- --one-text-per-image keeps one caption per image; --keep-unmatched.
- --per-language without languages is a clear error; with them (written
  here into pair_lang as filter does), t is chosen per language.
- The report validates against schemas/balance_report.schema.json and the
  curve is an SVG with both polylines.
"""
import hashlib
import json
import math
import os
import random
import sqlite3
import subprocess
import tempfile
import unittest

from tests.integration import schema_check

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("WITPIPE_BIN", os.path.join(ROOT, "build", "witpipe"))
M64 = (1 << 64) - 1


def mix64(x):
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & M64
    x ^= x >> 31
    return x


def draw(seed, stream, uid_hex):
    b = bytes.fromhex(uid_hex)
    hi = int.from_bytes(b[:8], "big")
    lo = int.from_bytes(b[8:], "big")
    h = mix64((seed + stream * 0xD1B54A32D192ED03 + 0x9E3779B97F4A7C15) & M64)
    h = mix64(h ^ hi)
    h = mix64(h ^ lo)
    return (h >> 11) * (1.0 / 9007199254740992.0)


def run(*args):
    r = subprocess.run([BIN, *args], capture_output=True)
    return r


class Corpus:
    """A corpus whose pairs match known entries: entry k is 'qK'; a caption
    names its entries among filler words that are no entry."""

    def __init__(self, d, name, rows, entries):
        self.dir = os.path.join(d, name)
        assert run("init", self.dir).returncode == 0
        path = os.path.join(d, name + ".tsv")
        with open(path, "w") as f:
            f.write("url\tcaption\n")
            for url, cap in rows:
                f.write(f"{url}\t{cap}\n")
        r = run("-C", self.dir, "add", path)
        assert r.returncode == 0, r.stderr
        lst = os.path.join(d, name + ".list")
        with open(lst, "w") as f:
            f.write("\n".join(entries) + "\n")
        r = run("-C", self.dir, "queries", "import", lst)
        assert r.returncode == 0, r.stderr

    def balance(self, *args):
        r = run("-C", self.dir, "-q", "balance", *args)
        return r

    def db(self):
        return sqlite3.connect(os.path.join(self.dir, "catalog.db"))

    def decisions(self):
        db = self.db()
        out = {uid: (dec, reason, score) for uid, dec, reason, score in db.execute(
            "SELECT p.uid, d.decision, d.reason, d.score FROM decisions d JOIN pairs p "
            "ON p.id = d.pair_id WHERE d.stage = 'balance'")}
        db.close()
        return out

    def pairs(self):
        db = self.db()
        out = [(uid, text) for uid, text in db.execute("SELECT uid, text FROM pairs ORDER BY id")]
        db.close()
        return out

    def report(self):
        with open(os.path.join(self.dir, "balance_report.json")) as f:
            return json.load(f)


FILLER = ["photo", "of", "a", "the", "nice", "with", "and"]


def zipf_rows(rng, nentries=40, top=2400, multi=400, unmatched=300):
    """rows (url, caption) and each caption's entries"""
    rows, ents = [], []
    i = 0
    for k in range(nentries):
        n = max(3, int(top / (k + 1) ** 1.1))
        for _ in range(n):
            cap = f"{rng.choice(FILLER)} q{k} {rng.choice(FILLER)} {i}"
            rows.append((f"https://img.example/{i}.jpg", cap))
            ents.append([k])
            i += 1
    for _ in range(multi):
        a, b = rng.sample(range(nentries), 2)
        rows.append((f"https://img.example/{i}.jpg", f"q{a} and q{b}, {i}"))
        ents.append(sorted([a, b]))
        i += 1
    for _ in range(unmatched):
        rows.append((f"https://img.example/{i}.jpg", f"nothing to see {i}"))
        ents.append([])
        i += 1
    return rows, ents, [f"q{k}" for k in range(nentries)]


def uid_of(url, text):
    return hashlib.sha256(url.encode() + b"\0" + text.encode()).hexdigest()[:32]


class TestBalance(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        rng = random.Random(5)
        cls.rows, cls.ents, cls.entries = zipf_rows(rng)
        cls.c = Corpus(cls.tmp.name, "a", cls.rows, cls.entries)
        cls.counts = [0] * len(cls.entries)
        for es in cls.ents:
            for e in es:
                cls.counts[e] += 1

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def expected(self, t, seed):
        """per pair uid: (keep probability, decision) by the documented rule"""
        out = {}
        for (url, cap), es in zip(self.rows, self.ents):
            q = 1.0
            for e in es:
                c = self.counts[e]
                q *= 1.0 - (t / c if c > t else 1.0)
            p = 1.0 - q if es else 0.0
            uid = uid_of(url, cap)
            out[uid] = (p, "keep" if es and draw(seed, 0, uid) < p else "drop")
        return out

    def test_metaclip_decisions_and_binomial_bounds(self):
        t, seed = 150, 11
        r = self.c.balance("--t", str(t), "--seed", str(seed))
        self.assertEqual(r.returncode, 0, r.stderr)
        dec = self.c.decisions()
        exp = self.expected(t, seed)
        self.assertEqual(len(dec), len(self.rows))
        # the draw and the rule, pair by pair
        for uid, (p, d) in exp.items():
            self.assertEqual(dec[uid][0], d, uid)
            self.assertAlmostEqual(dec[uid][2], p, places=9)
        # per entry: kept within binomial bounds of the expected value
        kept = [0] * len(self.entries)
        mean = [0.0] * len(self.entries)
        var = [0.0] * len(self.entries)
        for (url, cap), es in zip(self.rows, self.ents):
            p, _ = exp[uid_of(url, cap)]
            for e in es:
                mean[e] += p
                var[e] += p * (1 - p)
                if dec[uid_of(url, cap)][0] == "keep":
                    kept[e] += 1
        heads = 0
        for e in range(len(self.entries)):
            bound = 4.5 * math.sqrt(var[e]) + 1
            self.assertLessEqual(abs(kept[e] - mean[e]), bound, (e, kept[e], mean[e]))
            if self.counts[e] > 2 * t:
                heads += 1
                # head entries end near t: expected at least t, at most t plus
                # what pairs kept for their other entry bring
                self.assertGreaterEqual(mean[e], t - 1e-9)
                self.assertLess(kept[e], t + 4.5 * math.sqrt(t) + 0.5 * (self.counts[e] - t))
            else:
                pass
        self.assertGreaterEqual(heads, 3)
        # the reason is the pair's rarest entry
        for (url, cap), es in zip(self.rows, self.ents):
            reason = dec[uid_of(url, cap)][1]
            if not es:
                self.assertEqual(reason, "unmatched")
            else:
                best = min(es, key=lambda e: (self.counts[e], e))
                self.assertEqual(reason, f"q{best}")
        # the report
        rep = self.c.report()
        errs = schema_check.validate(schema_check.load_schema("balance_report.schema.json"), rep)
        self.assertEqual(errs, [])
        self.assertEqual(rep["t"], t)
        self.assertEqual(rep["head_entries"], sum(1 for c in self.counts if c > t))
        self.assertEqual(rep["matches_before"], sum(self.counts))
        self.assertEqual(rep["kept"], sum(1 for v in dec.values() if v[0] == "keep"))
        self.assertEqual(rep["top_before"][0], {"entry": "q0", "count": self.counts[0]})
        self.assertLess(rep["head_share_after"], rep["head_share_before"])
        self.assertGreater(rep["entropy_after"], rep["entropy_before"])
        ent = -sum(c / sum(self.counts) * math.log2(c / sum(self.counts)) for c in self.counts)
        self.assertAlmostEqual(rep["entropy_before"], ent, places=6)
        with open(os.path.join(self.c.dir, "balance_curve.svg")) as f:
            svg = f.read()
        self.assertTrue(svg.startswith("<svg"))
        self.assertEqual(svg.count("<polyline"), 2)
        # the run's counts in the catalog
        db = self.c.db()
        counts = json.loads(db.execute("SELECT counts FROM runs WHERE stage = 'balance' "
                                       "ORDER BY id DESC LIMIT 1").fetchone()[0])
        stored = dict(db.execute("SELECT text, count FROM queries"))
        db.close()
        self.assertEqual(counts["kept"], rep["kept"])
        self.assertEqual(stored, {f"q{k}": c for k, c in enumerate(self.counts)})

    def test_seed_changes_decisions(self):
        r = self.c.balance("--t", "150", "--seed", "1", "--dry-run", "--report",
                           os.path.join(self.tmp.name, "r1.json"))
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.c.balance("--t", "150", "--seed", "2", "--dry-run", "--report",
                           os.path.join(self.tmp.name, "r2.json"))
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(self.tmp.name, "r1.json")) as f:
            a = json.load(f)
        with open(os.path.join(self.tmp.name, "r2.json")) as f:
            b = json.load(f)
        self.assertNotEqual(a["top_after"], b["top_after"])

    def test_order_and_part_invariance(self):
        t, seed = 120, 77
        rev = Corpus(self.tmp.name, "rev", self.rows[::-1], self.entries)
        parts = Corpus(self.tmp.name, "parts", self.rows, self.entries)
        r = self.c.balance("--t", str(t), "--seed", str(seed))
        self.assertEqual(r.returncode, 0, r.stderr)
        full = self.c.decisions()
        r = rev.balance("--t", str(t), "--seed", str(seed))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(rev.decisions(), full)
        seen = 0
        for i in (2, 3, 1):
            r = parts.balance("--t", str(t), "--seed", str(seed), "--part", f"{i}/3")
            self.assertEqual(r.returncode, 0, r.stderr)
            now = parts.decisions()
            self.assertGreater(len(now), seen)  # each part adds its own pairs only
            self.assertLess(len(now), len(full) if i != 1 else len(full) + 1)
            seen = len(now)
        self.assertEqual(parts.decisions(), full)

    def test_tail_fraction(self):
        for f in (0.06, 0.3, 0.75):
            r = self.c.balance("--tail-fraction", str(f), "--dry-run")
            self.assertEqual(r.returncode, 0, r.stderr)
            total = sum(self.counts)
            t = 1
            while sum(c for c in self.counts if c < t) < f * total:
                t += 1
            self.assertEqual(self.c.report()["t"], t, f)

    def test_cap_mode(self):
        rows, ents = [], []
        for (url, cap), es in zip(self.rows, self.ents):
            if len(es) == 1:
                rows.append((url, cap))
                ents.append(es)
        c = Corpus(self.tmp.name, "cap", rows, self.entries)
        t = 100
        r = c.balance("--mode", "cap", "--t", str(t), "--seed", "3")
        self.assertEqual(r.returncode, 0, r.stderr)
        dec = c.decisions()
        kept = [0] * len(self.entries)
        for (url, cap), es in zip(rows, ents):
            if dec[uid_of(url, cap)][0] == "keep":
                kept[es[0]] += 1
        cnt = [0] * len(self.entries)
        for es in ents:
            cnt[es[0]] += 1
        self.assertEqual(kept, [min(x, t) for x in cnt])
        # the kept ones are the first t in draw order
        for k in range(len(self.entries)):
            mine = sorted(((draw(3, 0, uid_of(u, cp)), uid_of(u, cp))
                           for (u, cp), es in zip(rows, ents) if es[0] == k))
            for rank, (_, uid) in enumerate(mine):
                self.assertEqual(dec[uid][0], "keep" if rank < t else "drop")

    def test_one_text_per_image_and_keep_unmatched(self):
        rows = []
        for i in range(300):
            img = f"https://img.example/shared/{i // 3}.jpg"  # 3 captions per image
            rows.append((img, f"q{i % 5} caption {i}" if i % 7 else f"plain caption {i}"))
        c = Corpus(self.tmp.name, "one", rows, [f"q{k}" for k in range(5)])
        r = c.balance("--one-text-per-image", "--keep-unmatched", "--t", "1000000", "--seed", "9")
        self.assertEqual(r.returncode, 0, r.stderr)
        dec = c.decisions()
        by_img = {}
        for url, cap in rows:
            by_img.setdefault(url, []).append(uid_of(url, cap))
        for url, uids in by_img.items():
            alive = [u for u in uids if dec[u][1] != "one_text_per_image"]
            self.assertEqual(len(alive), 1, url)
            self.assertEqual(alive[0], min(uids, key=lambda u: draw(9, 1, u)))
            # t is huge and unmatched pairs are kept: the survivor is kept
            self.assertEqual(dec[alive[0]][0], "keep")

    def test_per_language(self):
        c = Corpus(self.tmp.name, "lang", self.rows, self.entries)
        r = c.balance("--per-language")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"language", r.stderr)
        self.assertIn(b"filter", r.stderr)
        db = c.db()
        db.execute("INSERT INTO pair_lang (pair_id, lang, conf, reliable) SELECT id, CASE WHEN "
                   "id % 3 = 0 THEN 'de' ELSE 'en' END, 0.9, 1 FROM pairs")
        db.commit()
        langs = dict(db.execute("SELECT p.uid, l.lang FROM pairs p JOIN pair_lang l ON "
                                "l.pair_id = p.id"))
        db.close()
        r = c.balance("--per-language", "--tail-fraction", "0.2", "--seed", "4")
        self.assertEqual(r.returncode, 0, r.stderr)
        # t per language, computed here
        per = {}
        for (url, cap), es in zip(self.rows, self.ents):
            lg = langs[uid_of(url, cap)]
            for e in es:
                per.setdefault(lg, {}).setdefault(e, 0)
                per[lg][e] += 1
        tl = {}
        for lg, cnt in per.items():
            total = sum(cnt.values())
            t = 1
            while sum(v for v in cnt.values() if v < t) < 0.2 * total:
                t += 1
            tl[lg] = t
        self.assertEqual(c.report()["t"], max(tl.values()))
        dec = c.decisions()
        for (url, cap), es in zip(self.rows, self.ents):
            uid = uid_of(url, cap)
            lg = langs[uid]
            q = 1.0
            for e in es:
                n = per[lg][e]
                q *= 1.0 - (tl[lg] / n if n > tl[lg] else 1.0)
            p = 1.0 - q if es else 0.0
            self.assertAlmostEqual(dec[uid][2], p, places=9)
            self.assertEqual(dec[uid][0], "keep" if es and draw(4, 0, uid) < p else "drop")

    def test_usage_errors(self):
        self.assertEqual(self.c.balance("--t", "5", "--tail-fraction", "0.1").returncode, 2)
        self.assertEqual(self.c.balance("--mode", "cap", "--tail-fraction", "0.1").returncode, 2)
        self.assertEqual(self.c.balance("--part", "4/3").returncode, 2)
        self.assertEqual(self.c.balance("--mode", "nope").returncode, 2)
        with tempfile.TemporaryDirectory() as d:
            assert run("init", d).returncode == 0
            r = run("-C", d, "balance")
            self.assertEqual(r.returncode, 1)
            self.assertIn(b"no query list", r.stderr)


if __name__ == "__main__":
    unittest.main()
