"""tests/integration/test_max_memory.py: the global --max-memory budget
(docs/security.md, "Resource budgets"), against the fixture server on
127.0.0.1.

  - fetch of large PNGs (5000 x 5000 RGBA, 275 MB decoded each) on three
    workers: under a low --max-memory the decode budget lets one image
    decode at a time, and the measured peak RSS of the process (ru_maxrss
    of the child) is lower than with the default budget, where three
    decode at once; both runs store the same images;
  - a budget too low for one image at --max-pixels is refused at start,
    with a message naming both options, before any request;
  - under a given budget the downloaded bodies (--max-bytes each) count:
    --parallel is lowered to what fits, said once and kept in the run's
    params, with the same stored images; refused naming --max-bytes and
    --workers when not one transfer fits;
  - encode lowers a --batch the budget cannot hold, and says so;
  - a bad or too small --max-memory is a usage error of one line;
  - the archive reader (crawl --wat / --warc) shares the budget among
    fewer, smaller batches: the hostile archives of issue 16 peak lower
    under --max-memory 130M than by default, with the same counts, and a
    budget below one record of --max-record is refused naming both; a
    WAT record only the whole-tree parser reads is skipped when its tree
    would not fit the share of the budget left to it;
  - the live crawl lowers --concurrency to the pages (2 x --max-page) the
    budget holds, and refuses when not one fits, before any request;
  - balance refuses pairs over the budget while reading them; filter
    refuses CLIP scores over it from a COUNT, before reading them;
  - dedup refuses, naming --max-memory, a pHash index that would not fit,
    before building it (the peak RSS stays under the one of the run that
    builds it), and runs under a budget that holds it; an evaluation set of
    --against counts in the budget as it is read.
"""

import json
import os
import random
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

from tests.integration import crawlgen as cg
from tests.integration import stagekit as K


def write_png(path, w, h):
    """An RGBA PNG of w x h pixels that compresses to almost nothing."""
    row = b"\x00" + bytes(range(256)) * (w * 4 // 256) + b"\x00" * (w * 4 % 256)
    raw = row * h

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 6)))
        f.write(chunk(b"IEND", b""))


def run_rss(args):
    """Runs witpipe args; returns (exit status, stderr, peak RSS in bytes)."""
    # Under AddressSanitizer freed memory waits in a 256 MB quarantine by
    # default; a small one keeps the figure about witpipe.
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"),
                                                 "quarantine_size_mb=8"]))
    p = subprocess.Popen([K.BIN] + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, env=env)
    err = p.stderr.read()
    p.stderr.close()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, err, ru.ru_maxrss * 1024


class MaxMemory(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = None

    @classmethod
    def tearDownClass(cls):
        if cls.srv is not None:
            cls.srv.stop()

    def setUp(self):
        K.need_fixtures(self)
        if MaxMemory.srv is None:
            MaxMemory.srv = K.Server()
            write_png(os.path.join(MaxMemory.srv.root, "big.png"), 5000, 5000)
        self.tmp = tempfile.TemporaryDirectory(prefix="witpipe-maxmem-")

    def tearDown(self):
        self.tmp.cleanup()

    def corpus(self, name, n):
        c = os.path.join(self.tmp.name, name)
        K.init(c)
        lst = os.path.join(self.tmp.name, name + ".tsv")
        with open(lst, "w") as f:
            f.write("url\tcaption\n")
            for i in range(n):
                f.write("%s/img/big.png?i=%d\tbig %d\n" % (self.srv.base, i, i))
        r = K.run(["-q", "-C", c, "add", lst])
        self.assertEqual(r.returncode, 0, r.stderr)
        return c

    def fetch(self, c, *extra):
        return run_rss(["-q", "-C", c] + list(extra) +
                       K.fetch_args("--workers", "3", "--parallel", "6", "--max-pixels", "30000000",
                                    "--image-size", "64"))

    def test_low_budget_lowers_peak_rss(self):
        hi = self.corpus("hi", 6)
        lo = self.corpus("lo", 6)
        rc, err, rss_hi = self.fetch(hi)
        self.assertEqual(rc, 0, err)
        # 30M pixels need 315 MiB to decode: 700 MiB leaves 350 for one at a time
        rc, err, rss_lo = self.fetch(lo, "--max-memory", "700M")
        self.assertEqual(rc, 0, err)
        print("\npeak RSS: %d MiB by default, %d MiB with --max-memory 700M"
              % (rss_hi >> 20, rss_lo >> 20))
        for c in (hi, lo):
            self.assertEqual(K.db_rows(c, "SELECT state, count(*) FROM images GROUP BY 1"),
                             [("ok", 6)])
            K.check_catalog(self, c)
        self.assertEqual(K.db_rows(hi, "SELECT sha256 FROM images ORDER BY id"),
                         K.db_rows(lo, "SELECT sha256 FROM images ORDER BY id"))
        self.assertLess(rss_lo, 700 << 20)
        # one decode at a time instead of up to three: at least one image's
        # decoded bytes (100 MB of RGBA alone) less at the peak
        self.assertLess(rss_lo + (100 << 20), rss_hi)

    def test_too_low_for_one_image_is_refused(self):
        c = self.corpus("low", 2)
        rc, err, _ = self.fetch(c, "--max-memory", "256M")
        self.assertEqual(rc, 1, err)
        self.assertIn("--max-memory 256 MiB is too low for fetch", err)
        self.assertIn("--max-pixels 30000000", err)
        self.assertEqual(K.db_rows(c, "SELECT count(*) FROM images WHERE state = 'pending'"),
                         [(2,)])
        self.assertEqual(K.db_rows(c, "SELECT attempts FROM images"), [(0,), (0,)])

    def photos(self, name):
        c = os.path.join(self.tmp.name, name)
        K.init(c)
        lst = os.path.join(self.tmp.name, name + ".tsv")
        with open(lst, "w") as f:
            f.write("url\tcaption\n")
            for i, p in enumerate(K.PHOTOS):
                f.write("%s/img/%s?i=%d\tphoto %d\n" % (self.srv.base, p, i, i))
        r = K.run(["-q", "-C", c, "add", lst])
        self.assertEqual(r.returncode, 0, r.stderr)
        return c

    def test_downloads_lower_parallel_to_the_budget(self):
        # --max-memory 256M: 128 MiB for decoding, 64 for the process, 64 for
        # bodies of --max-bytes 2000000: 33, less the two workers' 10
        args = ["--workers", "2", "--max-pixels", "4000000", "--max-bytes", "2000000"]
        hi = self.photos("hi")
        lo = self.photos("lo")
        r = K.run(["-C", hi] + K.fetch_args(*args))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("lowered", r.stderr)
        r = K.run(["-C", lo, "--max-memory", "256M"] + K.fetch_args(*args))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("fetch: --parallel 64 lowered to 23 to fit --max-memory 256 MiB "
                      "(each download may buffer --max-bytes 2000000 bytes, beside the "
                      "workers' 10 bodies)", r.stderr)
        self.assertEqual(len([ln for ln in r.stderr.splitlines() if "lowered" in ln]), 1)
        params = json.loads(K.db_rows(lo, "SELECT params FROM runs WHERE stage = 'fetch'")[0][0])
        self.assertEqual((params["parallel"], params["parallel_asked"]), (23, 64))
        params = json.loads(K.db_rows(hi, "SELECT params FROM runs WHERE stage = 'fetch'")[0][0])
        self.assertEqual(params["parallel"], 64)
        self.assertNotIn("parallel_asked", params)
        q = ("SELECT p.text, i.url, i.state, i.sha256 FROM pairs p "
             "JOIN images i ON i.id = p.image_id ORDER BY p.id")
        got = K.db_rows(lo, q)
        self.assertEqual(len(got), len(K.PHOTOS))
        self.assertEqual(got, K.db_rows(hi, q))
        self.assertGreater(sum(1 for row in got if row[2] == "ok"), len(K.PHOTOS) // 2)
        K.check_catalog(self, lo)

    def test_downloads_too_large_for_the_budget_are_refused(self):
        c = self.photos("big")
        r = K.run(["-C", c, "--max-memory", "256M"] +
                  K.fetch_args("--workers", "2", "--max-pixels", "4000000"))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("--max-memory 256 MiB is too low for fetch: one download and the "
                      "workers' 10 bodies (--workers 2) of up to --max-bytes 20000000 bytes", r.stderr)
        self.assertIn("or lower --max-bytes or --workers", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertEqual(K.db_rows(c, "SELECT count(*) FROM runs WHERE stage = 'fetch'"), [(0,)])
        self.assertEqual(K.db_rows(c, "SELECT DISTINCT state, attempts FROM images"),
                         [("pending", 0)])

    def test_encode_lowers_a_batch_the_budget_cannot_hold(self):
        K.need_fixtures(self, model=True)
        c = os.path.join(self.tmp.name, "enc")
        K.init(c)
        photos = os.path.join(self.tmp.name, "photos")
        os.makedirs(photos)
        for name in ("chelsea.jpg", "rocket.jpg"):
            shutil.copy(os.path.join(K.IMAGES, name), photos)
            with open(os.path.join(photos, name[:-4] + ".txt"), "w") as f:
                f.write("a photo\n")
        r = K.run(["-q", "-C", c, "add", "--files", photos])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = K.run(["-C", c, "--max-memory", "64M", "encode", "--model", K.MODEL, "--batch", "1024"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("--batch 1024 lowered to", r.stderr)
        self.assertEqual(K.db_rows(c, "SELECT count(*) FROM embeddings"), [(2,)])

    def test_bad_values_are_usage_errors(self):
        for v in ("lots", "12Q", "1M", "-5G"):
            r = K.run(["--max-memory", v, "status"])
            self.assertEqual(r.returncode, 2, (v, r.stderr))
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn("--max-memory", r.stderr)


# Runs argv[1:] from a fresh, small interpreter and prints its peak RSS:
# the kernel's figure for a child also covers what it was before exec, a
# copy of its parent, and this test process grows (the PNGs above).
SPAWN_RSS = """
import os, sys
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ,
                     file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
_, status, ru = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), ru.ru_maxrss * 1024)
"""


def run_rss_small(args):
    """run_rss through a small parent: (exit status, stderr, peak RSS)."""
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"),
                                                 "quarantine_size_mb=8"]))
    r = subprocess.run([sys.executable, "-c", SPAWN_RSS, K.BIN] + args, capture_output=True,
                       text=True, env=env)
    rc, rss = r.stdout.split()
    return int(rc), r.stderr, int(rss)


class StagesWithoutServer(unittest.TestCase):
    """--max-memory in the archive reader, the live crawl and dedup (no
    fixture server: archives are written by crawlgen in a child, the live
    crawl is refused or lowered before any request, dedup's pairs are
    catalog rows)."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="witpipe-maxmem-")
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def hostile(self, *args):
        r = subprocess.run([sys.executable, "-m", "tests.integration.crawlgen", *args],
                           capture_output=True, text=True, check=True, cwd=K.ROOT)
        return r.stdout.split()

    def fresh(self, name):
        c = os.path.join(self.dir, name)
        r = K.run(["init", c])
        self.assertEqual(r.returncode, 0, r.stderr)
        return c

    def fresh_with_pairs(self, name, n):
        """A fresh corpus with n added (unfetched) pairs of distinct URLs."""
        c = self.fresh(name)
        lst = os.path.join(self.dir, name + ".tsv")
        with open(lst, "w") as f:
            f.write("url\tcaption\n")
            for i in range(n):
                f.write("http://ex.com/%d.jpg\tcap %d\n" % (i, i))
        r = K.run(["-q", "-C", c, "add", lst])
        self.assertEqual(r.returncode, 0, r.stderr)
        return c

    def counts(self, c):
        con = sqlite3.connect(os.path.join(c, "catalog.db"))
        try:
            return json.loads(con.execute("SELECT counts FROM runs ORDER BY id DESC").fetchone()[0])
        finally:
            con.close()

    def archive_pair(self, kind, path, *extra):
        """Crawls path by default and under --max-memory 130M; returns the
        two peak RSS figures after checking both read the same."""
        got = []
        for budget in ([], ["--max-memory", "130M"]):
            c = self.fresh("c%d" % len(got))
            rc, err, rss = run_rss_small(["-q", "-C", c] + budget + ["crawl", kind, path] + list(extra))
            self.assertEqual(rc, 0, err)
            got.append((rss, self.counts(c)))
        (hi, ch), (lo, cl) = got
        print("\n%s %s: peak RSS %d MiB by default, %d MiB with --max-memory 130M"
              % (kind, os.path.basename(path), hi >> 20, lo >> 20))
        for key in ("records", "pages", "images", "pages_capped", "pairs_new"):
            self.assertEqual(ch.get(key), cl.get(key), key)
        self.assertEqual(ch["dropped"], cl["dropped"])
        return hi, lo

    def test_archive_reader_low_budget_lowers_peak_rss(self):
        # 32 WAT records of 200k links (the 1.79 GB case): three
        # batches of 16 MiB in flight by default, one of 2 MiB under 130M
        wat = os.path.join(self.dir, "many.wat.gz")
        self.hostile("wat-links", wat, "http://ex.com/p.html", "200000", "32")
        hi, lo = self.archive_pair("--wat", wat, "--dry-run")
        self.assertLess(lo, 130 << 20)
        self.assertLess(lo + (20 << 20), hi)
        # 16 WARC pages of a long caption over 25k images each
        warc = os.path.join(self.dir, "fig.warc.gz")
        self.hostile("warc-figure", warc, "16", "25000", "2000")
        hi, lo = self.archive_pair("--warc", warc, "--text-from", "alt")
        self.assertLess(lo, 130 << 20)
        self.assertLess(lo + (20 << 20), hi)

    def test_archive_reader_refuses_a_budget_below_one_record(self):
        wat = os.path.join(self.dir, "one.wat.gz")
        self.hostile("wat-links", wat, "http://ex.com/p.html", "10", "1")
        c = self.fresh("c")
        r = K.run(["-C", c, "--max-memory", "100M", "crawl", "--wat", wat, "--dry-run"])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("--max-memory 100 MiB is too low for crawl --wat", r.stderr)
        self.assertIn("--max-record 64 MiB", r.stderr)
        # 32 MiB for the process, a record, two pages, a batch of 1 MiB
        # closed by a page of 16, 1 MiB of whole-tree parse
        self.assertIn("reading needs at least 130 MiB (--max-record 64 MiB, --max-page 8 MiB, "
                      "one batch, one whole-tree parse)", r.stderr)
        self.assertIn("give --max-memory 130M or more", r.stderr)
        # a smaller --max-record makes room
        r = K.run(["-q", "-C", c, "--max-memory", "100M", "crawl", "--wat", wat, "--dry-run",
                   "--max-record", str(16 << 20)])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.counts(c)["images"], 10)

    def test_archive_reader_counts_the_whole_tree_parse(self):
        # Links before Head sends a record to the jansson parser; 2 MiB of
        # empty objects make a tree of about 160 MiB (80 bytes a byte).
        # Under --max-memory 200M the tree gets what the batches leave
        # (88 MiB after one record, two pages and the process: half to two
        # batches, 44.5 MiB for the tree): records up to 583 KiB are parsed
        # whole, this one is skipped and said so; by default it is parsed.
        links = ",".join(["{}"] * (700_000))
        odd = ('{"Envelope":{"WARC-Header-Metadata":{"WARC-Target-URI":"http://ex.com/odd.html"},'
               '"Payload-Metadata":{"HTTP-Response-Metadata":{"HTML-Metadata":{"Links":[%s],'
               '"Head":{"Title":"odd"}}}}}}' % links).encode()
        self.assertGreater(len(odd), 2 << 20)
        small = cg.wat_json("http://ex.com/s.html", [{"path": "IMG@/src", "url": "/s.jpg",
                                                      "alt": "small"}])
        path = os.path.join(self.dir, "odd.wat.gz")
        offs = cg.write_gz_members(path, [cg.wat_record("http://ex.com/odd.html", odd),
                                          cg.wat_record("http://ex.com/s.html", small)])
        got = {}
        for name, budget in (("hi", []), ("lo", ["--max-memory", "200M"])):
            c = self.fresh(name)
            rc, err, rss = run_rss_small(["-C", c] + budget + ["crawl", "--wat", path])
            self.assertEqual(rc, 0, err)
            got[name] = (err, rss, self.counts(c))
            self.assertEqual(cg.pairs(c), [("http://ex.com/s.jpg", "small")])
        err, rss_lo, counts = got["lo"]
        self.assertIn("%s: byte %d: record http://ex.com/odd.html: record of %d bytes is not in "
                      "the usual layout and too large (over %d bytes under --max-memory) to "
                      "parse whole; skipped" % (path, offs[0], len(odd), (int(44.5 * 2**20)) // 80),
                      err)
        self.assertEqual((counts["pages"], counts["pages_skipped"]), (1, 1))
        err, rss_hi, counts = got["hi"]
        self.assertNotIn("too large", err)
        self.assertEqual((counts["pages"], counts["pages_skipped"]), (2, 0))
        print("\nWAT record of %d MiB parsed whole: peak RSS %d MiB by default, %d MiB skipped "
              "under --max-memory 200M" % (len(odd) >> 20, rss_hi >> 20, rss_lo >> 20))
        self.assertLess(rss_lo, 200 << 20)
        self.assertLess(rss_lo + (100 << 20), rss_hi)

    def test_live_crawl_concurrency_follows_the_budget(self):
        seeds = os.path.join(self.dir, "seeds.txt")
        with open(seeds, "w") as f:
            f.write("http://127.0.0.1:9/\n")  # refused by the address guard: no packet
        c = self.fresh("c")
        r = K.run(["-C", c, "--max-memory", "64M", "crawl", "--seeds", seeds])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("--max-memory 64 MiB is too low for crawl --seeds", r.stderr)
        self.assertIn("twice --max-page 8 MiB", r.stderr)
        self.assertEqual(K.db_rows(c, "SELECT count(*) FROM pairs"), [(0,)])
        # 96 MiB: 64 for the crawl, 16 a page in flight: two at once
        r = K.run(["-C", c, "--max-memory", "96M", "crawl", "--seeds", seeds,
                   "--max-pages", "1"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("--concurrency 16 lowered to 2 to fit --max-memory 96 MiB", r.stderr)
        r = K.run(["-C", c, "--max-memory", "96M", "crawl", "--seeds", seeds,
                   "--max-page", str(1 << 20), "--max-pages", "1"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("lowered", r.stderr)  # 1 MiB pages: all 16 fit

    def test_dedup_refuses_a_phash_index_over_the_budget(self):
        n = 400_000
        c = self.fresh_with_pairs("d", n)
        # stored, hashed images (rows only: no step reads the bytes when
        # every hash is current), every pHash distinct
        con = sqlite3.connect(os.path.join(c, "catalog.db"))
        con.execute("UPDATE images SET state = 'ok', store_file = 0, store_offset = 0, "
                    "sha256 = printf('%064x', id)")
        rnd = random.Random(7)  # random 64-bit hashes: no near pairs, a quick join
        con.executemany("INSERT INTO image_phash (image_id, phash, phash_inner, sha256, version) "
                        "VALUES (?, ?, ?, printf('%064x', ?), 2)",
                        [(i, rnd.getrandbits(64) - (1 << 63), rnd.getrandbits(64) - (1 << 63), i)
                         for (i,) in con.execute("SELECT id FROM images").fetchall()])
        con.commit()
        con.close()
        rc, err, rss_lo = run_rss_small(["-C", c, "--max-memory", "64M", "dedup", "--near"])
        self.assertEqual(rc, 1, err)
        self.assertIn("dedup: the pHash index of %d pairs needs about" % n, err)
        self.assertIn("over --max-memory 64 MiB; give --max-memory", err)
        self.assertEqual(K.db_rows(c, "SELECT count(*) FROM decisions WHERE stage = 'dedup'"), [(0,)])
        rc, err, rss_hi = run_rss_small(["-q", "-C", c, "--max-memory", "1G", "dedup", "--near",
                                      "--dry-run"])
        self.assertEqual(rc, 0, err)
        print("\ndedup --near of %d pairs: peak RSS %d MiB refused under 64M, %d MiB run"
              % (n, rss_lo >> 20, rss_hi >> 20))
        self.assertLess(rss_lo, rss_hi)

    def test_balance_refuses_pairs_over_the_budget(self):
        # 900k pairs of about 80 bytes each: 69 MiB, over a 64 MiB budget
        n = 900_000
        c = self.fresh_with_pairs("b", n)
        ents = os.path.join(self.dir, "q.list")
        with open(ents, "w") as f:
            f.write("zebra\nquokka\n")
        r = K.run(["-q", "-C", c, "queries", "import", ents])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = K.run(["-C", c, "--max-memory", "64M", "balance"])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, r"balance: more than \d+ pairs with 0 query matches need over "
                         r"\d+ MiB \(80 bytes a pair, 20 a match\), over --max-memory 64 MiB")
        self.assertEqual(K.db_rows(c, "SELECT count(*) FROM decisions WHERE stage = 'balance'"),
                         [(0,)])
        r = K.run(["-q", "-C", c, "--max-memory", "256M", "balance"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreater(K.db_rows(c, "SELECT count(*) FROM decisions "
                                        "WHERE stage = 'balance'")[0][0], 0)

    def scored_corpus(self, name, n):
        """A catalog of n pairs, each with a CLIP score of model m (rows
        only, written by SQL: no stage reads the images)."""
        return self.rows_corpus(name, n, "state", "'ok'",
                                "INSERT INTO embeddings (pair_id, model, shard, row, clip_score) "
                                "  SELECT id, 'm', 0, id, (id * 7919 % 1000) / 1000.0 FROM pairs;")

    def rows_corpus(self, name, n, cols, vals, more=""):
        """A fresh corpus with images 1..n (url, then the columns cols with
        the SQL values vals, where i is the image's number), a pair each,
        then the SQL more: catalog rows only, written by SQL."""
        c = self.fresh(name)
        con = sqlite3.connect(os.path.join(c, "catalog.db"))
        con.executescript(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %d) "
            "INSERT INTO images (id, url, %s) SELECT i, 'http://ex.com/' || i, %s FROM s;"
            "INSERT INTO pairs (id, uid, image_id, text, added_at) "
            "  SELECT id, printf('%%032x', id), id, 'c', 0 FROM images;" % (n, cols, vals) + more)
        con.commit()
        con.close()
        return c

    def test_filter_refuses_scores_over_the_budget_before_reading_them(self):
        # 1.5M scores with --clip-top: 16 bytes a pair read, up to twice
        # while the arrays grow, 16 more for the cut: 68 MiB, over 64M,
        # known from a COUNT before the scores are read
        n = 1_500_000
        c = self.scored_corpus("f", n)
        args = ["filter", "--model", "m", "--clip-top", "50", "--dry-run"]
        rc, err, rss_lo = run_rss_small(["-C", c, "--max-memory", "64M"] + args)
        self.assertEqual(rc, 1, err)
        self.assertIn("filter: the CLIP scores of %d pairs need about 68 MiB, over --max-memory "
                      "64 MiB; give --max-memory 69M or more" % n, err)
        rc, err, rss_hi = run_rss_small(["-q", "-C", c, "--max-memory", "256M"] + args)
        self.assertEqual(rc, 0, err)
        print("\nfilter --clip-top of %d scores: peak RSS %d MiB refused under 64M, %d MiB run"
              % (n, rss_lo >> 20, rss_hi >> 20))
        # the run holds the scores, ids and the cut's copy (46 MB); the
        # refused one none of them (the margin is loose: the catalog's page
        # cache, filled by the COUNT, dominates both)
        self.assertLess(rss_lo, rss_hi)

    def hashed_corpus(self, name, n):
        """n stored, hashed images with a pair each (rows only, written by
        SQL: every hash current, so no step reads the bytes)."""
        c = self.rows_corpus(name, n, "state, store_file, store_offset, sha256",
                             "'ok', 0, 0, printf('%064x', i)")
        con = sqlite3.connect(os.path.join(c, "catalog.db"))
        rnd = random.Random(7)  # random 64-bit hashes: no near pairs, a quick join
        con.executemany("INSERT INTO image_phash (image_id, phash, phash_inner, sha256, version) "
                        "VALUES (?, ?, ?, printf('%064x', ?), 2)",
                        [(i, rnd.getrandbits(64) - (1 << 63), rnd.getrandbits(64) - (1 << 63), i)
                         for i in range(1, n + 1)])
        con.commit()
        con.close()
        return c

    def test_dedup_against_set_counts_in_the_budget(self):
        K.need_fixtures(self)
        # Under --max-memory 64M: each pair holds its item (128 bytes) and
        # its side of the join (72), 200 bytes; 335394 pairs leave room for
        # an evaluation set grown to 256 images (80 bytes each: pHashes, their
        # copy for the join, the index) but not to 512
        n = 335_394
        c = self.hashed_corpus("a", n)
        sets = {}
        for k in (256, 257):
            d = os.path.join(self.dir, "eval%d" % k)
            os.makedirs(d)
            for i in range(k):
                shutil.copy(os.path.join(K.IMAGES, "tiny_48.jpg"), os.path.join(d, "e%04d.jpg" % i))
            sets[k] = d
        r = K.run(["-C", c, "--max-memory", "64M", "dedup", "--exact", "--against", sets[256],
                   "--dry-run"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("256 images hashed of 256", r.stderr)
        r = K.run(["-C", c, "--max-memory", "64M", "dedup", "--exact", "--against", sets[257]])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("dedup: the evaluation set %s needs more than 65 MiB after 257 images "
                      "(80 bytes an image: its pHashes and their join index; 63 MiB for the "
                      "pairs), over --max-memory 64 MiB" % sets[257], r.stderr)
        self.assertEqual(K.db_rows(c, "SELECT count(*) FROM decisions WHERE stage = 'dedup'"),
                         [(0,)])
        # without a budget the set is read
        r = K.run(["-C", c, "dedup", "--exact", "--against", sets[257], "--dry-run"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("257 images hashed of 257", r.stderr)


if __name__ == "__main__":
    unittest.main()
