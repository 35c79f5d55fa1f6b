"""tests/integration/test_export.py: `witpipe export` as a program.

A corpus is built from the fixture server (some images fetch fine, some
fail), sharded, and exported: --kept rows are exactly the shards' samples,
with the same metadata as their KEY.json; --all rows are every pair, the
failed ones with kept false; every row validates against
schemas/export_row.schema.json; TSV has the same rows. Then the round trip
the export exists for: the JSONL file added to a new corpus (plain `witpipe
add`, default columns), fetched and sharded, gives the same samples (keys,
captions, image bytes).
"""
import csv
import io
import json
import os
import shutil
import struct
import tarfile
import tempfile
import unittest

from tests.integration import pq_spec_reader
from tests.integration.schema_check import validate
from tests.integration.test_fetch_cli import IMAGES, Server, need_fixtures, run

GOOD = ["astronaut.jpg", "chelsea.jpg", "coffee_progressive.jpg", "motorcycle.png",
        "chelsea.webp", "rocket.jpg"]


def shard_samples(outdir):
    """{key: {ext: bytes}} over every shard in outdir."""
    got = {}
    for name in sorted(os.listdir(outdir)):
        if not name.endswith(".tar"):
            continue
        with tarfile.open(os.path.join(outdir, name)) as t:
            for m in t.getmembers():
                key, ext = m.name.split(".", 1)
                got.setdefault(key, {})[ext] = t.extractfile(m).read()
    return got


class ExportCli(unittest.TestCase):
    def setUp(self):
        need_fixtures(self)
        self.srv = Server()
        self.dir = tempfile.mkdtemp(prefix="witpipe-export-")

    def tearDown(self):
        self.srv.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def corpus(self, name, lst):
        c = os.path.join(self.dir, name)
        r = run(["init", c])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(["-q", "-C", c, "add", lst])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(["-q", "-C", c, "fetch", "--allow-net", "127.0.0.1/32", "--retries", "0"])
        self.assertIn(r.returncode, (0, 1), r.stderr)
        out = os.path.join(c, "shards")
        r = run(["-q", "-C", c, "shard", "-o", out, "--per-shard", "4"])
        self.assertEqual(r.returncode, 0, r.stderr)
        return c, shard_samples(out)

    def export(self, c, *args):
        ext = "tsv" if "tsv" in args else "jsonl"
        path = os.path.join(self.dir, "export-%d.%s" % (len(os.listdir(self.dir)), ext))
        r = run(["-C", c, "export", "-o", path] + list(args))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(path + ".tmp"))
        with open(path, encoding="utf-8") as f:
            return path, f.read()

    def test_rows_match_shards_and_round_trip(self):
        lst = os.path.join(self.dir, "list.tsv")
        with open(lst, "w") as f:
            f.write("url\tcaption\n")
            for i, g in enumerate(GOOD):
                f.write("%s/img/%s\ta photo, number %d \u00e9\n" % (self.srv.base, g, i))
            f.write("%s/status?code=404\tmissing one\n" % self.srv.base)
            f.write("%s/html\tnot an image\n" % self.srv.base)
        c, samples = self.corpus("a", lst)
        self.assertEqual(len(samples), len(GOOD))

        # --kept (the default): the shards' samples, same metadata
        path, text = self.export(c)
        rows = [json.loads(line) for line in text.splitlines()]
        self.assertEqual(sorted(r["uid"] for r in rows), sorted(samples))
        for r in rows:
            self.assertEqual(validate("export_row.schema.json", r), [])
            self.assertTrue(r["kept"])
            self.assertIsNone(r["dropped_by"])
            meta = json.loads(samples[r["uid"]]["json"])
            del meta["key"]
            self.assertEqual({k: v for k, v in r.items() if k not in ("kept", "dropped_by")},
                             meta)
            self.assertEqual(r["caption"], samples[r["uid"]]["txt"].decode())

        # --all: every pair; the two failures are there, not kept
        _, text = self.export(c, "--all")
        rows_all = [json.loads(line) for line in text.splitlines()]
        self.assertEqual(len(rows_all), len(GOOD) + 2)
        bad = [r for r in rows_all if not r["kept"]]
        self.assertEqual(sorted(r["caption"] for r in bad), ["missing one", "not an image"])
        for r in rows_all:
            self.assertEqual(validate("export_row.schema.json", r), [])
            self.assertEqual(r["kept"], r["uid"] in samples)

        # TSV: the same rows
        _, tsv = self.export(c, "--all", "--format", "tsv")
        table = list(csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE))
        self.assertEqual([t["uid"] for t in table], [r["uid"] for r in rows_all])
        for t, r in zip(table, rows_all):
            self.assertEqual(t["url"], r["url"])
            self.assertEqual(t["caption"], r["caption"])
            self.assertEqual(t["kept"], "true" if r["kept"] else "false")

        # Parquet: the same pairs, read back by add (typed kept columns)
        pq = os.path.join(self.dir, "all.parquet")
        for comp in ("snappy", "zstd"):
            r = run(["-C", c, "export", "-o", pq, "--all", "--format", "parquet",
                     "--compression", comp, "--row-group-rows", "3"])
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(pq, "rb") as f:
                buf = f.read()
            self.assertEqual(buf[:4], b"PAR1")
            # the footer, decoded by the independent reader's Thrift code:
            # row groups of --row-group-rows rows, every chunk in --compression
            (flen,) = struct.unpack("<I", buf[-8:-4])
            meta = pq_spec_reader.Thrift(buf, len(buf) - 8 - flen).struct()
            self.assertEqual(meta[3], len(rows_all))
            self.assertEqual([rg[3] for rg in meta[4]],
                             [min(3, len(rows_all) - i) for i in range(0, len(rows_all), 3)])
            codec = {"snappy": 1, "zstd": 6}[comp]
            for rg in meta[4]:
                self.assertEqual({cc[3][4] for cc in rg[1]}, {codec})
            c3 = os.path.join(self.dir, "pq-" + comp)
            self.assertEqual(run(["init", c3]).returncode, 0)
            r = run(["-q", "-C", c3, "add", pq, "--keep-cols", "kept,clip_score,width"])
            self.assertEqual(r.returncode, 0, r.stderr)
            r = run(["-C", c3, "export", "-o", os.path.join(self.dir, "back-%s.jsonl" % comp),
                     "--all"])
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(os.path.join(self.dir, "back-%s.jsonl" % comp)) as f:
                back = [json.loads(l) for l in f]
            self.assertEqual(sorted(b["uid"] for b in back), sorted(r0["uid"] for r0 in rows_all))
            kept = {b["uid"]: b["extra"]["kept"] for b in back}
            for r0 in rows_all:
                self.assertIs(kept[r0["uid"]], r0["kept"])

        # shard --parquet: img2dataset's per-shard metadata beside each tar,
        # holding exactly that tar's samples
        pout = os.path.join(self.dir, "pshards")
        r = run(["-q", "-C", c, "shard", "-o", pout, "--per-shard", "4", "--parquet"])
        self.assertEqual(r.returncode, 0, r.stderr)
        tars = sorted(n for n in os.listdir(pout) if n.endswith(".tar"))
        self.assertEqual(len(tars), 2)
        for t in tars:
            pqf = os.path.join(pout, t.replace(".tar", ".parquet"))
            self.assertTrue(os.path.exists(pqf), pqf)
            cx = os.path.join(self.dir, "px-" + t)
            self.assertEqual(run(["init", cx]).returncode, 0)
            r = run(["-q", "-C", cx, "add", pqf, "--keep-cols", "key,status,sha256,width"])
            self.assertEqual(r.returncode, 0, r.stderr)
            r = run(["-C", cx, "export", "-o", os.path.join(self.dir, t + ".jsonl"), "--all"])
            with open(os.path.join(self.dir, t + ".jsonl")) as f:
                prow = [json.loads(l) for l in f]
            with tarfile.open(os.path.join(pout, t)) as tf:
                keys = sorted({m.name.split(".")[0] for m in tf.getmembers()})
            self.assertEqual(sorted(p["extra"]["key"] for p in prow), keys)
            for p in prow:
                self.assertEqual(p["extra"]["status"], "success")
                self.assertEqual(p["uid"], p["extra"]["key"])  # same url + caption
                meta = json.loads(samples[p["extra"]["key"]]["json"])
                self.assertEqual(p["extra"]["sha256"], meta["sha256"])
                self.assertEqual(p["extra"]["width"], meta["width"])

        # round trip: add the export into a new corpus, fetch, shard
        c2, samples2 = self.corpus("b", path)
        self.assertEqual(sorted(samples2), sorted(samples))
        for k in samples:
            self.assertEqual(samples2[k]["txt"], samples[k]["txt"])
            img = [e for e in samples[k] if e not in ("txt", "json")]
            self.assertEqual(len(img), 1)
            self.assertEqual(samples2[k][img[0]], samples[k][img[0]])

    def test_usage_errors(self):
        c = os.path.join(self.dir, "u")
        self.assertEqual(run(["init", c]).returncode, 0)
        r = run(["-C", c, "export"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("-o FILE", r.stderr)
        r = run(["-C", c, "export", "-o", os.path.join(self.dir, "x"), "--format", "csv"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("--format", r.stderr)
        # an empty corpus exports an empty file
        path = os.path.join(self.dir, "empty.jsonl")
        r = run(["-C", c, "export", "-o", path])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.path.getsize(path), 0)


if __name__ == "__main__":
    unittest.main()
