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
  - encode lowers a --batch the budget cannot hold, and says so;
  - a bad or too small --max-memory is a usage error of one line.
"""

import os
import shutil
import struct
import subprocess
import tempfile
import unittest
import zlib

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
    p = subprocess.Popen([K.BIN] + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
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


if __name__ == "__main__":
    unittest.main()
