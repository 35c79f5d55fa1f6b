"""tests/integration/test_encode.py: `witpipe encode` on a small corpus made
with `witpipe add --files` (test photos with caption files) and the golden
tiny CLIP hf_vit_quickgelu_f32: float16 .npy shards whose rows match the
reference features, metadata rows naming the pairs, the catalog's
embeddings table with clip_score = image-text cosine, resumption, a new
shard for new pairs. Skips loudly when ../shared or `add --files` is
missing.
"""
import json
import math
import os
import shutil
import sqlite3
import struct
import subprocess
import tempfile
import unittest

from tests.integration.stagekit import BIN, GOLDEN, IMAGES, MODEL, NAME, SHARED


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=300)


def have_add_files():
    r = run("help", "add")
    return r.returncode == 0 and "--files" in r.stdout


def read_npy_f16(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x93NUMPY\x01\x00", path
    hl = struct.unpack("<H", data[8:10])[0]
    header = data[10:10 + hl].decode("latin1")
    assert "'descr': '<f2'" in header and "'fortran_order': False" in header, header
    shape = header[header.index("(") + 1:header.index(")")]
    rows, cols = (int(x) for x in shape.split(",") if x.strip())
    body = data[10 + hl:]
    assert len(body) == rows * cols * 2, path
    vals = struct.unpack("<%de" % (rows * cols), body)
    return [list(vals[i * cols:(i + 1) * cols]) for i in range(rows)]


def expected(what, rows):
    with open(os.path.join(GOLDEN, NAME, "expected", what), "rb") as f:
        vals = struct.unpack("<%df" % (rows * 32), f.read())
    return [list(vals[i * 32:(i + 1) * 32]) for i in range(rows)]


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b))


# (file, caption, index of the image / caption in the golden inputs)
PHOTOS = [
    ("astronaut.jpg", "a photo of a cat", 0, 0),
    ("chelsea.jpg", "Chelsea the tabby cat sitting on a wooden floor", 3, 2),
    ("rocket.jpg", "Saturn V rocket on the launch pad at Kennedy Space Center", 12, 4),
]


@unittest.skipUnless(os.path.isdir(GOLDEN) and os.path.isdir(SHARED),  # images missing: FAIL
                     "SKIP: ../shared/golden/clip missing")
class EncodeTest(unittest.TestCase):
    def setUp(self):
        if not have_add_files():
            self.skipTest("SKIP: this witpipe has no `add --files`")
        self.tmp = tempfile.TemporaryDirectory(prefix="witpipe-encode.")
        self.dir = os.path.join(self.tmp.name, "corpus")
        self.imgs = os.path.join(self.tmp.name, "photos")
        os.makedirs(self.imgs)
        for name, caption, _, _ in PHOTOS:
            shutil.copy(os.path.join(IMAGES, name), self.imgs)
            with open(os.path.join(self.imgs, os.path.splitext(name)[0] + ".txt"), "w") as f:
                f.write(caption + "\n")
        r = run("init", self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run("-C", self.dir, "add", "--files", self.imgs)
        self.assertEqual(r.returncode, 0, r.stderr)

    def tearDown(self):
        self.tmp.cleanup()

    def emb_dir(self):
        return os.path.join(self.dir, "embeddings", NAME)

    def test_encode_writes_shards_metadata_and_catalog_rows(self):
        r = run("-C", self.dir, "encode", "--model", MODEL, "--batch", "2", "--shard-rows", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        db = sqlite3.connect(os.path.join(self.dir, "catalog.db"))
        uid_of = dict(db.execute("SELECT p.uid, p.text FROM pairs p"))
        self.assertEqual(len(uid_of), 3)
        rows = db.execute("SELECT p.uid, p.text, e.shard, e.row, e.clip_score FROM embeddings e "
                          "JOIN pairs p ON p.id = e.pair_id WHERE e.model = ?", (NAME,)).fetchall()
        self.assertEqual(len(rows), 3)
        self.assertEqual(sorted({r[2] for r in rows}), [0, 1])
        exp_i = expected("image_features.f32", 14)
        exp_t = expected("text_features.f32", 13)
        by_text = {p[1]: p for p in PHOTOS}
        shards = {}
        for uid, text, shard, row, score in rows:
            if shard not in shards:
                img = read_npy_f16(os.path.join(self.emb_dir(), "img_emb", "img_emb_%d.npy" % shard))
                txt = read_npy_f16(
                    os.path.join(self.emb_dir(), "text_emb", "text_emb_%d.npy" % shard))
                with open(os.path.join(self.emb_dir(), "metadata",
                                       "metadata_%d.jsonl" % shard)) as f:
                    meta = [json.loads(l) for l in f]
                self.assertEqual(len(img), len(meta))
                self.assertEqual(len(txt), len(meta))
                shards[shard] = (img, txt, meta)
            img, txt, meta = shards[shard]
            self.assertEqual(meta[row]["uid"], uid)
            self.assertEqual(meta[row]["row"], row)
            _, _, ii, ti = by_text[text]
            self.assertGreater(cosine(img[row], exp_i[ii]), 0.999)
            self.assertGreater(cosine(txt[row], exp_t[ti]), 0.9999)
            # stored L2-normalised; clip_score is their cosine
            self.assertAlmostEqual(sum(x * x for x in img[row]), 1.0, places=2)
            self.assertAlmostEqual(score, cosine(img[row], txt[row]), places=2)
            self.assertAlmostEqual(score, cosine(exp_i[ii], exp_t[ti]), places=2)
        runs = db.execute("SELECT status, counts FROM runs WHERE stage = 'encode'").fetchall()
        self.assertEqual(runs[-1][0], "done")
        self.assertEqual(json.loads(runs[-1][1])["pairs"], 3)
        db.close()

    def test_encode_resumes_and_new_pairs_get_a_new_shard(self):
        r = run("-C", self.dir, "encode", "--model", MODEL, "--limit", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        db = sqlite3.connect(os.path.join(self.dir, "catalog.db"))
        self.assertEqual(db.execute("SELECT count(*) FROM embeddings").fetchone()[0], 2)
        r = run("-C", self.dir, "encode", "--model", MODEL)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(db.execute("SELECT count(*) FROM embeddings").fetchone()[0], 3)
        self.assertEqual(db.execute("SELECT max(shard) FROM embeddings").fetchone()[0], 1)
        r = run("-C", self.dir, "encode", "--model", MODEL)  # nothing left
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(db.execute("SELECT count(*) FROM embeddings").fetchone()[0], 3)
        self.assertFalse(os.path.exists(os.path.join(self.emb_dir(), "img_emb", "img_emb_2.npy")))
        db.close()


if __name__ == "__main__":
    unittest.main()
