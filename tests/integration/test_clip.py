"""tests/integration/test_clip.py: the built-in CLIP on the command line
with the golden tiny checkpoints (../shared/golden/clip): `model info`
architecture JSON, `clip embed-image` / `embed-text` against the reference
features, `clip zeroshot` against a prompt ensemble recomputed here from
`embed-text` output, and usage errors. (The `encode` stage on a corpus is
covered by tests/unit/test_encode.c, which builds the corpus through the C
API and also runs `witpipe encode`.)
"""
import json
import math
import os
import struct
import subprocess
import tempfile
import unittest

BIN = os.environ.get("WITPIPE_BIN", "build/witpipe")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("WITPIPE_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
GOLDEN = os.path.join(SHARED, "golden", "clip")
IMAGES = os.path.join(SHARED, "testdata", "images")


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=300)


def model(name):
    return os.path.join(GOLDEN, name, "model")


def expected(name, what, rows, dim=32):
    with open(os.path.join(GOLDEN, name, "expected", what), "rb") as f:
        data = f.read()
    vals = struct.unpack("<%df" % (rows * dim), data)
    return [list(vals[i * dim:(i + 1) * dim]) for i in range(rows)]


def cosine(a, b):
    ab = sum(x * y for x, y in zip(a, b))
    return ab / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


@unittest.skipUnless(os.path.isdir(GOLDEN), "SKIP: ../shared/golden/clip missing")
class ClipCliTest(unittest.TestCase):
    def test_model_info_reports_each_layout(self):
        r = run("model", "info", model("oc_rn_bf16"))
        self.assertEqual(r.returncode, 0, r.stderr)
        info = json.loads(r.stdout)
        self.assertEqual(info["layout"], "openai")
        self.assertEqual(info["vision"]["type"], "modified_resnet")
        self.assertEqual(info["vision"]["layers"], [1, 1, 1, 1])
        self.assertEqual(info["vision"]["width"], 16)
        self.assertEqual(info["dtype"], "BF16")
        self.assertEqual(info["embed_dim"], 32)
        self.assertEqual(info["text"]["heads"], 2)
        self.assertGreater(info["parameters"], 1000000)
        r = run("model", "info", model("hf_vit_gelu_f16"))
        self.assertEqual(r.returncode, 0, r.stderr)
        info = json.loads(r.stdout)
        self.assertEqual(info["layout"], "huggingface")
        self.assertEqual(info["vision"]["type"], "vit")
        self.assertEqual(info["vision"]["patch"], 16)
        self.assertEqual(info["vision"]["heads"], 4)
        self.assertEqual(info["vision"]["activation"], "gelu")
        self.assertEqual(info["image_size"], 224)
        self.assertEqual(info["dtype"], "F16")

    def test_model_info_reports_each_towers_precision(self):
        # f32: both towers f32. bf16: a ViT image tower plain bf16; the text
        # tower and a ModifiedResNet split bf16 where the kernel path says it
        # pays (the same standing as "kernel" states), else f32, with why.
        for name, vit in (("hf_vit_quickgelu_f32", True), ("oc_rn_bf16", False)):
            r = run("model", "info", model(name))
            self.assertEqual(r.returncode, 0, r.stderr)
            info = json.loads(r.stdout)
            for t in ("vision", "text"):
                self.assertEqual(info[t]["precision"], "f32")
                self.assertEqual(info[t]["precision_why"], "f32 requested")
            r = run("model", "info", "--precision", "bf16", model(name))
            self.assertEqual(r.returncode, 0, r.stderr)
            info = json.loads(r.stdout)
            kernel = info["kernel"]
            self.assertIn("split bf16 (bf16x3): ", kernel)
            split = "bf16x3" if "bf16x3): worth it" in kernel else "f32"
            self.assertEqual(info["text"]["precision"], split)
            self.assertIn("plain bf16 breaks the accuracy rule", info["text"]["precision_why"])
            self.assertEqual(info["vision"]["precision"], "bf16" if vit else split)
            self.assertEqual(info["precision"], "bf16" if vit or split != "f32" else "f32")

    def test_model_info_parameter_count_is_exact(self):
        # every learned tensor of the file (BatchNorm running statistics are
        # buffers, not parameters)
        for name in ("hf_vit_quickgelu_f32", "oc_rn_bf16"):
            d = model(name)
            f = [x for x in os.listdir(d) if x.endswith(".safetensors")][0]
            with open(os.path.join(d, f), "rb") as fh:
                n = struct.unpack("<Q", fh.read(8))[0]
                header = json.loads(fh.read(n))
            want = 0
            for k, v in header.items():
                if k == "__metadata__" or "running_" in k or "num_batches" in k:
                    continue
                want += math.prod(v["shape"])
            info = json.loads(run("model", "info", d).stdout)
            self.assertEqual(info["parameters"], want, name)

    def test_model_info_missing_dir_fails_with_message(self):
        r = run("model", "info", "/nonexistent/model")
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/model", r.stderr)

    def test_embed_image_matches_reference(self):
        for name in ("hf_vit_quickgelu_f32", "oc_rn_bf16"):
            r = run("clip", "embed-image", "--model", model(name),
                    os.path.join(IMAGES, "astronaut.jpg"), os.path.join(IMAGES, "chelsea.jpg"))
            self.assertEqual(r.returncode, 0, r.stderr)
            out = json.loads(r.stdout)
            self.assertEqual(out["embed_dim"], 32)
            exp = expected(name, "image_features.f32", 14)
            # inputs order: astronaut.jpg is 0, chelsea.jpg is 3
            for got, want in zip(out["images"], (exp[0], exp[3])):
                self.assertGreater(cosine(got["embedding"], want), 0.9999, name)

    def test_embed_text_matches_reference(self):
        r = run("clip", "embed-text", "--model", model("oc_vit_quickgelu_f32"),
                "a photo of a cat", "Hubble Deep Field: thousands of galaxies")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        exp = expected("oc_vit_quickgelu_f32", "text_features.f32", 13)
        for got, want in zip(out["texts"], (exp[0], exp[5])):
            mx = max(abs(x) for x in want)
            err = max(abs(a - b) for a, b in zip(got["embedding"], want))
            self.assertLess(err / mx, 1e-3)
        r = run("clip", "embed-text", "--normalize", "--model", model("oc_vit_quickgelu_f32"),
                "a photo of a cat")
        v = json.loads(r.stdout)["texts"][0]["embedding"]
        self.assertAlmostEqual(sum(x * x for x in v), 1.0, places=5)

    def test_embed_image_bad_file_exits_1_and_names_it(self):
        with tempfile.NamedTemporaryFile(suffix=".jpg") as f:
            f.write(b"<html>not an image</html>")
            f.flush()
            r = run("clip", "embed-image", "--model", model("hf_vit_quickgelu_f32"), f.name,
                    os.path.join(IMAGES, "rocket.jpg"))
            self.assertEqual(r.returncode, 1)
            self.assertIn(f.name, r.stderr)
            out = json.loads(r.stdout)
            self.assertTrue(out["images"][0]["error"])
            self.assertEqual(len(out["images"][1]["embedding"]), 32)

    def test_zeroshot_is_the_normalised_template_ensemble(self):
        m = model("hf_vit_quickgelu_f32")
        labels = ["cat", "rocket", "astronaut", "cup of coffee"]
        templates = ["a photo of a {}.", "a blurry drawing of the {}.", "{} in space"]
        with tempfile.TemporaryDirectory() as d:
            lf = os.path.join(d, "labels.txt")
            tf = os.path.join(d, "templates.txt")
            with open(lf, "w") as f:
                f.write("\n".join(labels) + "\n\n")
            with open(tf, "w") as f:
                f.write("\n".join(templates) + "\n")
            img = os.path.join(IMAGES, "rocket.jpg")
            r = run("clip", "zeroshot", "--model", m, "--labels", lf, "--templates", tf,
                    "--top", "4", img)
            self.assertEqual(r.returncode, 0, r.stderr)
            zs = json.loads(r.stdout)
        self.assertEqual(zs["labels"], 4)
        self.assertEqual(zs["templates"], 3)
        prompts = [t.replace("{}", l) for l in labels for t in templates]
        te = json.loads(run("clip", "embed-text", "--normalize", "--model", m, *prompts).stdout)
        ie = json.loads(run("clip", "embed-image", "--normalize", "--model", m, img).stdout)
        v = ie["images"][0]["embedding"]
        cls = []
        for i in range(len(labels)):
            rows = [te["texts"][i * 3 + j]["embedding"] for j in range(3)]
            cls.append(unit([sum(c) / 3 for c in zip(*rows)]))
        cos = [sum(a * b for a, b in zip(v, c)) for c in cls]
        scale = zs["logit_scale"]
        ex = [math.exp(scale * c) for c in cos]
        probs = [e / sum(ex) for e in ex]
        top = zs["images"][0]["top"]
        self.assertEqual([t["label"] for t in top],
                         [labels[i] for i in sorted(range(4), key=lambda i: -cos[i])])
        for t in top:
            i = labels.index(t["label"])
            self.assertAlmostEqual(t["cosine"], cos[i], places=5)
            self.assertAlmostEqual(t["prob"], probs[i], places=5)

    def test_zeroshot_default_templates_are_the_80_imagenet_ones(self):
        with tempfile.TemporaryDirectory() as d:
            lf = os.path.join(d, "labels.txt")
            with open(lf, "w") as f:
                f.write("cat\ndog\n")
            r = run("clip", "zeroshot", "--model", model("oc_vit_quickgelu_f32"), "--labels", lf,
                    os.path.join(IMAGES, "chelsea.jpg"))
        self.assertEqual(r.returncode, 0, r.stderr)
        zs = json.loads(r.stdout)
        self.assertEqual(zs["templates"], 80)
        probs = [t["prob"] for t in zs["images"][0]["top"]]
        self.assertAlmostEqual(sum(probs), 1.0, places=5)

    def test_usage_errors_exit_2(self):
        self.assertEqual(run("clip").returncode, 2)
        self.assertEqual(run("clip", "embed-image", "x.jpg").returncode, 2)  # no --model
        self.assertEqual(run("clip", "frobnicate", "--model", "m").returncode, 2)
        self.assertEqual(run("clip", "zeroshot", "--model", "m", "x.jpg").returncode, 2)
        self.assertEqual(run("clip", "embed-text", "--model", "m", "--precision", "f8",
                             "hi").returncode, 2)
        self.assertEqual(run("model").returncode, 2)
        self.assertEqual(run("encode", "--batch", "0", "--model", "m").returncode, 2)
        r = run("help", "encode")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--precision", r.stdout)


if __name__ == "__main__":
    unittest.main()
