"""tests/integration/test_parts.py: --part I/N of every item-by-item stage
(docs/scale-out.md), against the fixture server on 127.0.0.1.

A fixture corpus is built once, one stage after another (add, fetch,
dedup, encode when the golden CLIP model is there, filter, shard), keeping a copy of the corpus before each stage.
Then, for each stage and N = 1..4, every part I/N runs that stage on its
own copy of the corpus the stage starts from (a part directory made by
`witpipe init PART --from CORPUS --for STAGE`: a copy of the catalog, and
for the stages that read images links to the corpus's store and
embeddings), and the test checks that

- a part touches only its items: what it recorded is a subset of what the
  one-process run recorded, equal item by item (same state, hash, decision
  or shard bytes), and each item is the one the partition rule gives
  (host hash for fetch, SHA-256 for dedup hashing, uid for filter, plan
  range for shard);
- the N parts together cover every item exactly once: no item in two
  parts, and their union is the one-process result.

Item per stage: add, a pair uid; fetch, an image URL's fetch result
(blocked addresses on 127.0.0.2-13 give hosts whose fetch fails in the
guard before any socket opens, so several hosts exist without leaving
127.0.0.1); dedup, an image's perceptual hash; filter, a pair's decision;
shard, a tar file (name and bytes). Then the parts of fetch and of dedup
hashing are merged (witpipe merge) and the global dedup run on the merged
corpus decides exactly as the one-process dedup did.

Also `witpipe status PART_DIR...`: per stage, how many parts are done,
running or failed, and the summed counts; and `witpipe init --from`.
"""
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import unittest

from tests.integration import stagekit as K
from tests.integration.schema_check import validate
from tests.integration.test_fetch_cli import Server, need_fixtures, run

IMGS = ["astronaut.jpg", "astronaut_444.jpg", "camera_gray.jpg", "chelsea.jpg", "chelsea.webp",
        "chelsea_cmyk.jpg", "coffee_progressive.jpg", "hubble_deep_field.jpg", "logo_rgba.png",
        "motorcycle.png", "rocket.jpg", "tiny_48.jpg", "truncated.jpg"]

FETCH = ["--allow-net", "127.0.0.1/32", "--retries", "0", "--image-size", "96"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("WITPIPE_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
MODEL = os.path.join(SHARED, "golden", "clip", "hf_vit_quickgelu_f32", "model")


def q(corpus, sql):
    db = sqlite3.connect(os.path.join(corpus, "catalog.db"))
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def copy_corpus(src, dst, link_store):
    """A part directory: a consistent copy of src's catalog (SQLite's
    backup), and src's store and embeddings linked (stages that read them)
    or an empty store (fetch)."""
    os.makedirs(dst)
    a = sqlite3.connect(os.path.join(src, "catalog.db"))
    b = sqlite3.connect(os.path.join(dst, "catalog.db"))
    a.backup(b)
    a.close()
    b.close()
    open(os.path.join(dst, ".lock"), "w").close()
    if link_store:
        os.symlink(os.path.abspath(os.path.join(src, "store")), os.path.join(dst, "store"))
        if os.path.isdir(os.path.join(src, "embeddings")):
            os.symlink(os.path.abspath(os.path.join(src, "embeddings")),
                       os.path.join(dst, "embeddings"))
    else:
        os.makedirs(os.path.join(dst, "store"))


def part_of(key, n):
    return key % n + 1


def uid_key(uid):
    return int(uid[:16], 16)


def host_key(url):
    """FNV-1a 64 of the lowercased host (common/part.c)."""
    host = url.split("//", 1)[1].split("/", 1)[0].split("?", 1)[0].split("@")[-1].split(":")[0]
    h = 0xcbf29ce484222325
    for ch in host.lower().encode():
        h ^= ch
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


class Parts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need_fixtures(cls("test_add_parts_cover_once"))
        cls.srv = Server()
        cls.dir = tempfile.mkdtemp(prefix="witpipe-parts-")
        base = cls.srv.base
        rows = [("%s/img/%s" % (base, n), "photo %d of %s" % (i, n)) for i, n in enumerate(IMGS)]
        rows += [("%s/img/%s" % (base, n), "another caption for %s" % n) for n in IMGS[:4]]
        rows.append(("%s/status?code=404" % base, "a missing photo"))
        rows.append(("%s/html" % base, "not an image"))
        # other hosts: blocked by the guard before a socket opens
        rows += [("http://127.0.0.%d:%d/img/rocket.jpg" % (k, cls.srv.port), "far rocket %d" % k)
                 for k in range(2, 14)]
        rows.append(("%s/img/rocket.jpg" % base, "x"))  # short: the filter drops it
        # two list files: fewer than N (records split) and at least N (files split)
        cls.lists = [os.path.join(cls.dir, "a.tsv"), os.path.join(cls.dir, "b.tsv")]
        K.write_lists(cls.lists, rows)
        cls.stages = {}  # stage -> (the corpus it starts from, args)
        ref = os.path.join(cls.dir, "ref")
        cls.must(["init", ref])
        chain = [
            ("add", cls.lists),
            ("fetch", FETCH),
            ("dedup", ["--no-report"]),
        ]
        if os.path.isdir(MODEL):  # encode: the small golden model
            chain.append(("encode", ["--model", MODEL, "--batch", "4", "--shard-rows", "3"]))
        chain += [
            ("filter", ["--min-chars", "3", "--no-lang-detect"]),
            ("shard", ["--per-shard", "2"]),
        ]
        for stage, args in chain:
            before = os.path.join(cls.dir, "before-" + stage)
            copy_corpus(ref, before, False)
            shutil.rmtree(os.path.join(before, "store"))
            shutil.copytree(os.path.join(ref, "store"), os.path.join(before, "store"))
            if os.path.isdir(os.path.join(ref, "embeddings")):
                shutil.copytree(os.path.join(ref, "embeddings"),
                                os.path.join(before, "embeddings"))
            cls.stages[stage] = (before, args)
            extra = ["-o", os.path.join(ref, "shards")] if stage == "shard" else []
            r = run(["-q", "-C", ref, stage] + args + extra)
            assert r.returncode in (0, 1), (stage, r.stderr)
        cls.ref = ref

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "srv"):
            cls.srv.stop()
        if hasattr(cls, "dir"):
            shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def must(cls, args):
        r = run(args)
        assert r.returncode == 0, (args, r.stderr)
        return r

    def run_parts(self, stage, n, tag="", shard_out=None, more=()):
        """Runs stage --part I/n for I = 1..n, each in its own part
        directory (shard: into shard_out, else PART/shards); returns the
        part directories."""
        before, args = self.stages[stage]
        dirs = []
        for i in range(1, n + 1):
            d = os.path.join(self.dir, "%s%s-%d-of-%d" % (stage, tag, i, n))
            shutil.rmtree(d, ignore_errors=True)
            if stage == "add":
                self.must(["init", d])
            else:  # the part directory as witpipe makes it
                self.must(["-q", "init", d, "--from", before, "--for", stage])
            extra = ["-o", shard_out or os.path.join(d, "shards")] if stage == "shard" else []
            r = run(["-q", "-C", d, stage, "--part", "%d/%d" % (i, n)] + list(more) + args + extra)
            self.assertIn(r.returncode, (0, 1), r.stderr)
            dirs.append(d)
        return dirs

    def check_cover(self, stage, items_of, want, rule=None, more=()):
        """For N = 1..4: the parts' items are disjoint, each in its part by
        the rule, and together equal want (a dict item -> value)."""
        self.assertGreater(len(want), 3, stage)
        for n in range(1, 5):
            seen = {}
            for i, d in enumerate(self.run_parts(stage, n, "".join(more), more=more), start=1):
                got = items_of(d)
                for k, v in got.items():
                    self.assertNotIn(k, seen, "%s: %r in parts %s and %d of %d" %
                                     (stage, k, seen.get(k), i, n))
                    seen[k] = i
                    self.assertEqual(v, want.get(k), "%s %d/%d: %r" % (stage, i, n, k))
                    if rule is not None:
                        self.assertEqual(rule(k, n), i, "%s: %r in the wrong part" % (stage, k))
            self.assertEqual(set(seen), set(want), "%s, %d parts: union" % (stage, n))
            if n > 1:  # the work is really split
                self.assertGreater(len(set(seen.values())), 1, "%s, %d parts" % (stage, n))

    def test_add_parts_cover_once(self):
        def pairs(d):
            return {uid: (text, url) for uid, text, url in q(
                d, "SELECT p.uid, p.text, i.url FROM pairs p JOIN images i ON i.id = p.image_id")}
        self.check_cover("add", pairs, pairs(self.stages["fetch"][0]))

    def test_add_parts_by_host_cover_once(self):
        def pairs(d):
            return {uid: (text, url) for uid, text, url in q(
                d, "SELECT p.uid, p.text, i.url FROM pairs p JOIN images i ON i.id = p.image_id")}
        want = pairs(self.stages["fetch"][0])
        self.check_cover("add", pairs, want, lambda u, n: part_of(host_key(want[u][1]), n),
                         more=("--part-by", "host"))

    def test_fetch_parts_cover_once(self):
        def fetched(d):
            return {u: (s, e, h) for u, s, e, h in q(
                d, "SELECT url, state, error_class, sha256 FROM images WHERE state != 'pending'")}
        want = fetched(self.stages["dedup"][0])
        self.assertGreater(len({host_key(u) for u in want}), 8)
        self.check_cover("fetch", fetched, want, lambda u, n: part_of(host_key(u), n))

    def test_dedup_hashing_parts_cover_once(self):
        def hashes(d):
            return {u: (p, pi, s) for u, p, pi, s in q(
                d, "SELECT i.url, h.phash, h.phash_inner, h.sha256 FROM image_phash h "
                   "JOIN images i ON i.id = h.image_id")}
        self.check_cover("dedup", hashes, hashes(self.after("dedup")), self.sha_part)
        # a part decides nothing
        for d in self.run_parts("dedup", 2, "-nodec"):
            self.assertEqual(q(d, "SELECT count(*) FROM decisions WHERE stage = 'dedup'"), [(0,)])

    def after(self, stage):
        """The corpus as the stage left it (the one before the next)."""
        order = list(self.stages) + [None]
        nxt = order[order.index(stage) + 1]
        return self.stages[nxt][0] if nxt else self.ref

    def test_encode_parts_cover_once(self):
        if "encode" not in self.stages:
            self.skipTest("SKIP: no CLIP model at %s (WITPIPE_SHARED)" % MODEL)

        def encoded(d):
            got = {uid: ("emb", round(score, 4)) for uid, score in q(
                d, "SELECT p.uid, e.clip_score FROM embeddings e JOIN pairs p ON p.id = e.pair_id")}
            for uid, dec in q(d, "SELECT p.uid, d.decision FROM decisions d JOIN pairs p "
                                 "ON p.id = d.pair_id WHERE d.stage LIKE 'encode:%'"):
                self.assertNotIn(uid, got)
                got[uid] = ("decision", dec)
            return got
        self.check_cover("encode", encoded, encoded(self.after("encode")),
                         lambda u, n: part_of(uid_key(u), n))

    def test_encode_parts_merged_like_one_process(self):
        if "encode" not in self.stages:
            self.skipTest("SKIP: no CLIP model at %s (WITPIPE_SHARED)" % MODEL)
        corpus = os.path.join(self.dir, "merged-encode")
        copy_corpus(self.stages["encode"][0], corpus, True)
        r = run(["-q", "-C", corpus, "merge"] + self.run_parts("encode", 3, "-m"))
        self.assertEqual(r.returncode, 0, r.stderr)
        sql = ("SELECT p.uid, round(e.clip_score, 4) FROM embeddings e JOIN pairs p "
               "ON p.id = e.pair_id ORDER BY 1")
        want = q(self.after("encode"), sql)
        self.assertGreater(len(want), 3)
        self.assertEqual(q(corpus, sql), want)
        # every row points at a shard file that holds it
        for shard, rows in q(corpus, "SELECT shard, max(row) + 1 FROM embeddings GROUP BY shard"):
            path = os.path.join(corpus, "embeddings", "hf_vit_quickgelu_f32", "img_emb",
                                "img_emb_%d.npy" % shard)
            with open(path, "rb") as f:
                head = f.read(128).decode("latin1")
            self.assertIn("'shape': (%d," % rows, head)

    def test_part_directory_from_a_corpus(self):
        before = self.stages["shard"][0]
        d = os.path.join(self.dir, "pd-shard")
        self.must(["-q", "init", d, "--from", before, "--for", "shard"])
        self.assertEqual(os.path.realpath(os.path.join(d, "store")),
                         os.path.realpath(os.path.join(before, "store")))
        self.assertEqual(q(d, "SELECT count(*), min(uid), max(uid) FROM pairs"),
                         q(before, "SELECT count(*), min(uid), max(uid) FROM pairs"))
        if os.path.isdir(os.path.join(before, "embeddings")):
            self.assertTrue(os.path.islink(os.path.join(d, "embeddings")))
            e = os.path.join(self.dir, "pd-encode")
            self.must(["-q", "init", e, "--from", before, "--for", "encode"])
            self.assertFalse(os.path.exists(os.path.join(e, "embeddings")))
        f = os.path.join(self.dir, "pd-fetch")
        self.must(["-q", "init", f, "--from", before, "--for", "fetch"])
        self.assertFalse(os.path.islink(os.path.join(f, "store")))
        self.assertEqual(os.listdir(os.path.join(f, "store")), [])
        # refused: a directory with a catalog, add (parts start empty), half the options
        for args, msg in ((["init", d, "--from", before, "--for", "shard"], "catalog already"),
                          (["init", os.path.join(self.dir, "pd-add"), "--from", before, "--for",
                            "add"], "start empty"),
                          (["init", os.path.join(self.dir, "pd-x"), "--from", before],
                           "go together")):
            r = run(args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(msg, r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "pd-add", "catalog.db")))

    def sha_part(self, url, n):
        (sha,), = q(self.ref, "SELECT sha256 FROM images WHERE url = '%s'" % url)
        return part_of(int(sha[:16], 16), n)

    def test_filter_parts_cover_once(self):
        def decided(d):
            return {uid: (dec, why) for uid, dec, why in q(
                d, "SELECT p.uid, d.decision, d.reason FROM decisions d JOIN pairs p "
                   "ON p.id = d.pair_id WHERE d.stage = 'filter'")}
        want = decided(self.stages["shard"][0])
        self.assertIn("drop", {v[0] for v in want.values()})
        self.check_cover("filter", decided, want, lambda u, n: part_of(uid_key(u), n))

    def test_shard_parts_cover_once(self):
        def tars(d, sub="shards"):
            out = os.path.join(d, sub)
            got = {}
            for n in os.listdir(out):
                if n.endswith(".tar"):
                    with open(os.path.join(out, n), "rb") as f:
                        got[n] = hashlib.sha256(f.read()).hexdigest()
            return got
        want = tars(self.ref)
        s = len(want)

        def rule(name, n):
            k = int(name[:5])
            return [i for i in range(1, n + 1) if (i - 1) * s // n <= k < i * s // n][0]
        self.check_cover("shard", tars, want, rule)
        # parts writing into one output: no manifest; after the merge, a run
        # without --part writes it, writing no shard again, and it is the
        # one-process manifest
        out = os.path.join(self.dir, "shard-merged-out")
        os.makedirs(out)
        other = os.path.join(out, "00099.tar.tmp")  # another part's, being written
        open(other, "w").close()
        parts = self.run_parts("shard", 3, "-m", shard_out=out)
        self.assertFalse(os.path.exists(os.path.join(out, "manifest.json")))
        self.assertTrue(os.path.exists(other), "a part removed another part's temporary file")
        merged = os.path.join(self.dir, "shard-merged")
        copy_corpus(self.stages["shard"][0], merged, True)
        r = run(["-q", "-C", merged, "merge"] + parts)
        self.assertEqual(r.returncode, 0, r.stderr)
        if os.path.isdir(os.path.join(merged, "embeddings")):  # shared, not copied again
            self.assertEqual(q(merged, "SELECT count(DISTINCT shard) FROM embeddings"),
                             q(self.stages["shard"][0],
                               "SELECT count(DISTINCT shard) FROM embeddings"))
        r = run(["-q", "-C", merged, "shard", "-o", out] + self.stages["shard"][1])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(tars(out, ""), want)
        self.assertFalse(os.path.exists(other))  # the run without --part cleans up
        self.assertIn('"written":0', q(merged, "SELECT counts FROM runs WHERE stage = 'shard' "
                                               "ORDER BY id DESC LIMIT 1")[0][0])
        with open(os.path.join(out, "manifest.json")) as f, \
                open(os.path.join(self.ref, "shards", "manifest.json")) as g:
            self.assertEqual(json.load(f), json.load(g))

    def test_fetch_and_dedup_parts_merged_decide_like_one_process(self):
        # fetch in 3 parts, merged into the corpus the fetch started from
        corpus = os.path.join(self.dir, "merged")
        copy_corpus(self.stages["fetch"][0], corpus, False)
        r = run(["-q", "-C", corpus, "merge"] + self.run_parts("fetch", 3, "-m"))
        self.assertEqual(r.returncode, 0, r.stderr)
        # dedup hashing in 2 parts over the merged corpus, merged back
        d_parts = []
        for i in (1, 2):
            d = os.path.join(self.dir, "merged-dedup-%d" % i)
            self.must(["-q", "init", d, "--from", corpus, "--for", "dedup"])
            r = run(["-q", "-C", d, "dedup", "--part", "%d/2" % i, "--no-report"])
            self.assertEqual(r.returncode, 0, r.stderr)
            d_parts.append(d)
        r = run(["-q", "-C", corpus, "merge"] + d_parts)
        self.assertEqual(r.returncode, 0, r.stderr)
        (n_hashed,), = q(corpus, "SELECT count(*) FROM image_phash")
        (n_ok,), = q(corpus, "SELECT count(*) FROM images WHERE state = 'ok'")
        self.assertEqual(n_hashed, n_ok)
        # the store files the dedup parts read were the corpus's: not copied
        self.assertEqual(sorted(os.listdir(os.path.join(corpus, "store"))),
                         sorted(os.listdir(os.path.join(self.stages["dedup"][0], "store"))))
        # the global dedup hashes nothing more and decides as one process did
        r = run(["-C", corpus, "dedup", "--no-report"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(" 0 images hashed", r.stderr)
        sql = ("SELECT p.uid, d.decision, d.reason FROM decisions d JOIN pairs p "
               "ON p.id = d.pair_id WHERE d.stage = 'dedup' ORDER BY 1")
        want = q(self.after("dedup"), sql)
        self.assertGreater(len(want), 0)
        self.assertEqual([(u, d, r.split(":")[0]) for u, d, r in q(corpus, sql)],
                         [(u, d, r.split(":")[0]) for u, d, r in want])

    def test_status_across_parts(self):
        parts = self.run_parts("fetch", 3, "-st")
        # part 3 also fails a shard run (its output is under a file)
        r = run(["-q", "-C", parts[2], "shard", "-o", "/dev/null/x"])
        self.assertEqual(r.returncode, 1)
        missing = os.path.join(self.dir, "not-started")
        os.makedirs(missing, exist_ok=True)
        (ref_counts,), = q(self.stages["dedup"][0],
                           "SELECT counts FROM runs WHERE stage = 'fetch'")
        ref_counts = json.loads(ref_counts)
        r = run(["status", "--json"] + parts + [missing])
        self.assertEqual(r.returncode, 0, r.stderr)
        p = json.loads(r.stdout)["parts"]
        self.assertEqual((p["parts"], p["missing"]), (4, 1))
        f = p["stages"]["fetch"]
        self.assertEqual((f["done"], f["running"], f["stopped"], f["failed"], f["not_run"]),
                         (3, 0, 0, 0, 1))
        for k in ("ok", "errors"):
            self.assertEqual(f["counts"][k], ref_counts[k], k)
        sh = p["stages"]["shard"]
        self.assertEqual((sh["done"], sh["failed"], sh["not_run"]), (0, 1, 3))
        r = run(["status"] + parts + [missing])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("parts (4, 1 without a catalog yet)", r.stdout)
        self.assertRegex(r.stdout, r"fetch +3 done, 0 running, 0 stopped, 0 failed, 1 not run")
        # a merged corpus shows the same for the parts merged into it
        corpus = os.path.join(self.dir, "merged-status")
        copy_corpus(self.stages["fetch"][0], corpus, False)
        r = run(["-q", "-C", corpus, "merge", "--partial"] + parts)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(["-C", corpus, "status", "--json"])
        self.assertEqual(r.returncode, 0, r.stderr)
        st = json.loads(r.stdout)
        self.assertEqual(validate("status.schema.json", st), [])
        f = st["parts"]["stages"]["fetch"]
        self.assertEqual((st["parts"]["parts"], f["done"], f["not_run"]), (3, 3, 0))
        self.assertEqual(f["counts"]["ok"], ref_counts["ok"])
        self.assertEqual(st["parts"]["stages"]["shard"]["failed"], 1)


if __name__ == "__main__":
    unittest.main()
