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
import tarfile
import tempfile
import unittest

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
