"""tests/integration/test_schemas.py: every JSON document witpipe writes (and
the JSONL lists it reads) checked against its JSON Schema in schemas/, so the
schemas stay a true description of the tool: model info, clip outputs, encode
metadata lines, fetch --stats-json, and the JSONL list row. (status, log
events, manifests, shard stats and sample JSON are checked in test_cli.py and
test_core.py.)
"""
import glob
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from tests.integration.schema_check import ROOT, validate

BIN = os.environ.get("WITPIPE_BIN", "build/witpipe")
SHARED = os.environ.get("WITPIPE_SHARED", os.path.join(ROOT, "..", "shared"))
GOLDEN = os.path.join(SHARED, "golden", "clip")
MODELS = ["hf_vit_quickgelu_f32", "hf_vit_gelu_f16", "oc_vit_quickgelu_f32", "oc_rn_bf16"]
IMAGES = os.path.join(ROOT, "tests", "data", "images")


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=300)


def need_golden(test):
    if not os.path.isdir(GOLDEN):
        print(f"SKIP: !!! reference data missing at {GOLDEN}: {test.id()} not tested !!!")
        test.skipTest("../shared missing")


class SchemaTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="witpipe-schemas.")

    def tearDown(self):
        self.tmp.cleanup()

    def test_every_schema_file_is_valid_json_with_an_id(self):
        files = glob.glob(os.path.join(ROOT, "schemas", "*.json"))
        self.assertGreaterEqual(len(files), 10)
        for f in files:
            with open(f) as fh:
                s = json.load(fh)
            self.assertIn("$id", s, f)
            self.assertIn("title", s, f)

    def test_model_info_of_every_golden_checkpoint(self):
        need_golden(self)
        for m in MODELS:
            r = run("model", "info", os.path.join(GOLDEN, m, "model"))
            self.assertEqual(r.returncode, 0, r.stderr)
            info = json.loads(r.stdout)
            self.assertEqual(validate("model_info.schema.json", info), [], m)
        rn = json.loads(run("model", "info", os.path.join(GOLDEN, "oc_rn_bf16", "model")).stdout)
        self.assertEqual(rn["vision"]["type"], "modified_resnet")
        self.assertEqual(rn["dtype"], "BF16")

    def test_clip_outputs(self):
        need_golden(self)
        model = os.path.join(GOLDEN, "hf_vit_quickgelu_f32", "model")
        r = run("clip", "embed-text", "--model", model, "a cat", "a dog on a sofa")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(validate("clip_output.schema.json", out), [])
        self.assertEqual(len(out["texts"]), 2)
        self.assertEqual(len(out["texts"][0]["embedding"]), out["embed_dim"])
        r = run("clip", "embed-image", "--model", model, "--normalize",
                os.path.join(IMAGES, "chelsea.jpg"), os.path.join(IMAGES, "truncated.jpg"))
        self.assertEqual(r.returncode, 1)  # one image is bad
        out = json.loads(r.stdout)
        self.assertEqual(validate("clip_output.schema.json", out), [])
        self.assertTrue(out["images"][1]["error"])
        self.assertAlmostEqual(sum(x * x for x in out["images"][0]["embedding"]), 1.0, places=4)
        labels = os.path.join(self.tmp.name, "labels.txt")
        with open(labels, "w") as f:
            f.write("cat\ndog\nrocket\n")
        r = run("clip", "zeroshot", "--model", model, "--labels", labels, "--top", "3",
                os.path.join(IMAGES, "chelsea.jpg"))
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(validate("clip_output.schema.json", out), [])
        probs = [t["prob"] for t in out["images"][0]["top"]]
        self.assertAlmostEqual(sum(probs), 1.0, places=4)
        self.assertEqual(probs, sorted(probs, reverse=True))

    def test_encode_metadata_and_fetch_stats(self):
        need_golden(self)
        corpus = os.path.join(self.tmp.name, "c")
        imgs = os.path.join(self.tmp.name, "imgs")
        shutil.copytree(IMAGES, imgs, ignore=shutil.ignore_patterns("README.md"))
        for f in os.listdir(imgs):
            with open(os.path.join(imgs, os.path.splitext(f)[0] + ".txt"), "w") as fh:
                fh.write(f"a photo named {f}")
        self.assertEqual(run("init", corpus).returncode, 0)
        r = run("-C", corpus, "add", "--files", imgs)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run("-C", corpus, "fetch", "--stats-json")
        self.assertEqual(r.returncode, 0, r.stderr)
        stats = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual(validate("fetch_stats.schema.json", stats), [])
        self.assertEqual(stats["done"], 0)  # imported images need no fetch
        model = os.path.join(GOLDEN, "oc_vit_quickgelu_f32", "model")
        r = run("-C", corpus, "encode", "--model", model, "--name", "t", "--shard-rows", "4")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = []
        for f in sorted(glob.glob(os.path.join(corpus, "embeddings", "t", "metadata", "*.jsonl"))):
            with open(f) as fh:
                lines += [json.loads(l) for l in fh if l.strip()]
        self.assertGreater(len(lines), 4)  # more than one shard
        for l in lines:
            self.assertEqual(validate("encode_metadata.schema.json", l), [], l)

    def test_jsonl_rows_that_match_the_list_schema_are_added_and_others_are_bad_rows(self):
        good = [{"url": "http://a.example/1.jpg", "caption": "one"},
                {"url": "https://a.example/2.jpg", "caption": None, "license": "cc0"},
                {"url": "HTTP://a.example/3.jpg"}]
        bad = [{"caption": "no url"}, {"url": "ftp://a.example/4.jpg", "caption": "x"},
               {"url": 5, "caption": "x"}]
        for row in good:
            self.assertEqual(validate("list_row.schema.json", row), [], row)
        for row in bad:
            self.assertNotEqual(validate("list_row.schema.json", row), [], row)
        lst = os.path.join(self.tmp.name, "l.jsonl")
        with open(lst, "w") as f:
            for row in good + bad:
                f.write(json.dumps(row) + "\n")
        corpus = os.path.join(self.tmp.name, "c")
        self.assertEqual(run("init", corpus).returncode, 0)
        r = run("-C", corpus, "--log-json", "add", lst)
        self.assertEqual(r.returncode, 0, r.stderr)
        st = json.loads(run("-C", corpus, "status", "--json").stdout)
        self.assertEqual(st["pairs"]["total"], len(good))


if __name__ == "__main__":
    unittest.main()
