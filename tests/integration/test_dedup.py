"""tests/integration/test_dedup.py: `witpipe dedup` end to end on corpora
made with `witpipe add --files` from the test photos and copies of them
transformed here with PIL (re-encoded at quality 50, half size, 5% cropped
from each side, grayscale, a small watermark): the expected near-duplicate
groups and no others, pHash values equal to an independent Python
implementation (PIL + scipy's DCT), exact duplicates, decisions in the
catalog that shard honours, a rerun with another radius replacing them,
kill -9 mid-run then a rerun giving the uninterrupted result,
decontamination against an evaluation set, --dry-run, the HTML picture and
SemDeDup over `encode`'s embeddings. Skips loudly without ../shared or PIL.
"""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tarfile
import tempfile
import time
import unittest

BIN = os.environ.get("WITPIPE_BIN", "build/witpipe")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("WITPIPE_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
IMAGES = os.path.join(SHARED, "testdata", "images")
MODEL = os.path.join(SHARED, "golden", "clip", "hf_vit_quickgelu_f32", "model")

try:
    import numpy as np
    from PIL import Image, ImageDraw, ImageOps
    from scipy.fft import dct
    HAVE_PY = True
except ImportError:  # Debian: python3-pil python3-numpy python3-scipy
    HAVE_PY = False

PHOTOS = [("astronaut", "jpg"), ("chelsea", "jpg"), ("rocket", "jpg"),
          ("hubble_deep_field", "jpg"), ("coffee_progressive", "jpg"), ("motorcycle", "png")]
VARIANTS = ["q50", "half", "crop", "gray", "wm"]


def run(*args, **kw):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=600, **kw)


def load(name, ext):
    return Image.open(os.path.join(IMAGES, "%s.%s" % (name, ext))).convert("RGB")


def variant(im, v):
    w, h = im.size
    if v == "half":
        return im.resize((w // 2, h // 2), Image.BICUBIC)
    if v == "crop":
        dx, dy = int(w * 0.05), int(h * 0.05)
        return im.crop((dx, dy, w - dx, h - dy))
    if v == "gray":
        return im.convert("L")
    if v == "wm":  # a small semi-transparent text mark in a corner
        ov = Image.new("RGBA", im.size, (0, 0, 0, 0))
        d = ImageDraw.Draw(ov)
        tx, ty = w - 110, h - 18
        d.rectangle((tx - 4, ty - 3, w - 6, h - 5), fill=(0, 0, 0, 90))
        d.text((tx, ty), "(c) witpipe stock", fill=(255, 255, 255, 200))
        return Image.alpha_composite(im.convert("RGBA"), ov).convert("RGB")
    return im


def save(im, folder, stem, caption, quality=90):
    im.save(os.path.join(folder, stem + ".jpg"), quality=quality)
    with open(os.path.join(folder, stem + ".txt"), "w") as f:
        f.write(caption + "\n")


def write_photo_set(folder, names=PHOTOS, variants=VARIANTS, extra=("camera_gray",)):
    """Each photo as name.jpg (caption 'NAME original') and its variants as
    name_V.jpg ('NAME V'); photos in extra without variants."""
    os.makedirs(folder, exist_ok=True)
    for name, ext in names:
        im = load(name, ext)
        save(im, folder, name, name + " original", quality=95)
        for v in variants:
            save(variant(im, v), folder, name + "_" + v, name + " " + v,
                 quality=50 if v == "q50" else 90)
    for name in extra:
        save(load(name, "jpg"), folder, name, name + " original", quality=95)


def py_phash(path, crop=0.0):
    """The pHash as dedup/phash.c defines it, written independently: PIL's
    draft("L") (a JPEG decoded straight to gray at the DCT scale that keeps
    >= 32 px), EXIF transpose, convert('L') of anything else, bicubic
    32x32 of the whole or of the box 5% in from each side (fractional), 2-D DCT-II, 8x8 block > its median,
    row-major, first bit most significant."""
    im = Image.open(path)
    if im.format == "JPEG":
        im.draft("L", (32, 32))
    im = ImageOps.exif_transpose(im)
    if im.mode != "L":
        im = im.convert("RGB").convert("L")
    w, h = im.size
    box = (w * crop, h * crop, w - w * crop, h - h * crop)  # fractional pixels
    a = np.asarray(im.resize((32, 32), Image.BICUBIC, box=box), dtype=np.float64)
    f = dct(dct(a, axis=0), axis=1)[:8, :8]
    v = 0
    for bit in (f > np.median(f)).flatten():
        v = v << 1 | int(bit)
    return v


def db(corpus):
    return sqlite3.connect(os.path.join(corpus, "catalog.db"))


def decisions(corpus):
    """{caption: reason with the keeper's pair id replaced by its caption}"""
    con = db(corpus)
    text = dict(con.execute("SELECT id, text FROM pairs"))
    out = {}
    for pid, reason, decision in con.execute(
            "SELECT pair_id, reason, decision FROM decisions WHERE stage = 'dedup'"):
        assert decision == "drop", decision
        kind, _, rest = reason.partition(":")
        if kind in ("near", "semantic"):
            rest = text[int(rest)]
        out[text[pid]] = (kind, rest)
    con.close()
    return out


def shard_captions(corpus, out):
    r = run("-C", corpus, "shard", "-o", out)
    assert r.returncode == 0, r.stderr
    caps = set()
    for name in sorted(os.listdir(out)):
        if name.endswith(".tar"):
            with tarfile.open(os.path.join(out, name)) as t:
                for m in t.getmembers():
                    if m.name.endswith(".txt"):
                        caps.add(t.extractfile(m).read().decode().strip())
    return caps


@unittest.skipUnless(os.path.isdir(SHARED), "SKIP: ../shared missing")  # images missing from it: FAIL
@unittest.skipUnless(HAVE_PY, "SKIP: python3-pil, python3-numpy or python3-scipy missing")
class DedupTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="witpipe-dedup.")
        self.photos = os.path.join(self.tmp.name, "photos")

    def tearDown(self):
        self.tmp.cleanup()

    def corpus(self, folder, name="corpus"):
        c = os.path.join(self.tmp.name, name)
        r = run("init", c)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run("-C", c, "add", "--files", folder)
        self.assertEqual(r.returncode, 0, r.stderr)
        return c

    def test_near_groups_of_transformed_photos(self):
        write_photo_set(self.photos)
        c = self.corpus(self.photos)
        r = run("-C", c, "dedup", "--near")
        self.assertEqual(r.returncode, 0, r.stderr)
        got = decisions(c)
        # every variant joins its own original, which is kept (same size
        # as q50/gray/wm, first added); nothing else is dropped
        want = {"%s %s" % (n, v): ("near", n + " original") for n, _ in PHOTOS for v in VARIANTS}
        self.assertEqual(got, want)
        self.assertNotIn("camera_gray original", got)
        self.assertIn("30 near (6 groups)", r.stderr + r.stdout)
        self.assertIn("largest groups", r.stderr + r.stdout)

    def test_phash_matches_independent_python(self):
        write_photo_set(self.photos, names=PHOTOS[:4], variants=["half", "crop", "gray"])
        for name in ("chelsea_exif_rot90", "coffee_progressive", "astronaut_444"):
            shutil.copy(os.path.join(IMAGES, name + ".jpg"), self.photos)
            with open(os.path.join(self.photos, name + ".txt"), "w") as f:
                f.write(name)
        c = self.corpus(self.photos)
        r = run("-C", c, "dedup", "--near", "--no-report")
        self.assertEqual(r.returncode, 0, r.stderr)
        con = db(c)
        rows = con.execute("SELECT p.text, h.phash, h.phash_inner FROM image_phash h "
                           "JOIN pairs p ON p.image_id = h.image_id").fetchall()
        paths = {}
        for f in os.listdir(self.photos):
            if f.endswith(".txt"):
                with open(os.path.join(self.photos, f)) as fh:
                    paths[fh.read().strip()] = os.path.join(self.photos, f[:-4] + ".jpg")
        self.assertEqual(len(rows), len(paths))
        exact = 0
        for text, ph, inner in rows:
            for got, want in ((ph & (2**64 - 1), py_phash(paths[text])),
                              (inner & (2**64 - 1), py_phash(paths[text], 0.05))):
                d = bin(got ^ want).count("1")
                self.assertLessEqual(d, 2, "%s: %016x vs python %016x" % (text, got, want))
                exact += d == 0
        print("pHash: %d of %d equal to the Python reference bit for bit" % (exact, 2 * len(rows)))
        # A bit or two may differ where a coefficient lies within rounding
        # of the median, but that is rare: a wrong median rule (e.g. the
        # upper middle value instead of the mean of the two) moves one bit
        # in nearly every hash, each within the tolerance above.
        self.assertGreaterEqual(exact, 0.9 * 2 * len(rows))

    def test_exact_duplicates_keep_the_first(self):
        os.makedirs(self.photos)
        for i, cap in enumerate(["first copy", "second copy", "third copy"]):
            shutil.copy(os.path.join(IMAGES, "rocket.jpg"), os.path.join(self.photos, "r%d.jpg" % i))
            with open(os.path.join(self.photos, "r%d.txt" % i), "w") as f:
                f.write(cap)
        shutil.copy(os.path.join(IMAGES, "chelsea.jpg"), self.photos)
        with open(os.path.join(self.photos, "chelsea.txt"), "w") as f:
            f.write("a cat")
        c = self.corpus(self.photos)
        r = run("-C", c, "dedup", "--exact")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(decisions(c), {"second copy": ("exact", ""), "third copy": ("exact", "")})

    def test_decisions_shards_and_rerun_with_other_radius(self):
        write_photo_set(self.photos, names=PHOTOS[:3])
        c = self.corpus(self.photos)
        every = {"%s %s" % (n, v) for n, _ in PHOTOS[:3] for v in VARIANTS + ["original"]}
        every.add("camera_gray original")
        r = run("-C", c, "dedup")
        self.assertEqual(r.returncode, 0, r.stderr)
        first = decisions(c)
        self.assertEqual(len(first), 15)
        caps = shard_captions(c, os.path.join(self.tmp.name, "shards1"))
        self.assertEqual(caps, every - set(first))
        # status and shard stats count drops by kind, not one line per group
        kinds = {}
        for k, _ in first.values():
            kinds[k] = kinds.get(k, 0) + 1
        r = run("-C", c, "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [l.split() for l in r.stdout.splitlines() if l.strip().startswith("dedup/")]
        self.assertEqual({l[0]: int(l[1]) for l in lines},
                         {"dedup/drop/" + k: n for k, n in kinds.items()})
        dropped = {}
        for name in os.listdir(os.path.join(self.tmp.name, "shards1")):
            if name.endswith("_stats.json"):
                with open(os.path.join(self.tmp.name, "shards1", name)) as f:
                    for k, n in json.load(f)["dropped"].items():
                        dropped[k] = dropped.get(k, 0) + n
        self.assertEqual(dropped, {"dedup/" + k: n for k, n in kinds.items()})
        # radius 0: only identical hashes group; crops (2+ bits off even
        # against the centre hash) and marked copies come back
        r = run("-C", c, "dedup", "--radius", "0")
        self.assertEqual(r.returncode, 0, r.stderr)
        second = decisions(c)
        self.assertLess(len(second), len(first))
        self.assertTrue(set(second) < set(first))
        caps2 = shard_captions(c, os.path.join(self.tmp.name, "shards2"))
        self.assertEqual(caps2, every - set(second))
        con = db(c)
        runs = con.execute("SELECT status, counts FROM runs WHERE stage = 'dedup'").fetchall()
        self.assertEqual([s for s, _ in runs], ["done", "done"])
        self.assertIn('"near":%d' % len(second), runs[1][1])

    def test_hashes_of_an_older_version_are_computed_again(self):
        """Rows hashed by the earlier definition (image_phash.version 1,
        migration 9) are hashed again; current ones are not."""
        write_photo_set(self.photos, names=PHOTOS[:2], variants=["q50"], extra=())
        c = self.corpus(self.photos)
        r = run("-C", c, "dedup", "--near", "--no-report")
        self.assertEqual(r.returncode, 0, r.stderr)
        con = db(c)
        want = sorted(con.execute("SELECT image_id, phash, phash_inner, version FROM image_phash"))
        self.assertEqual({v for _, _, _, v in want}, {2})
        # two rows as an older witpipe left them: other bits, version 1
        con.execute("UPDATE image_phash SET phash = phash + 1, version = 1 "
                    "WHERE image_id IN (SELECT image_id FROM image_phash ORDER BY image_id LIMIT 2)")
        con.commit()
        r = run("-C", c, "dedup", "--near", "--no-report")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("2 images hashed", r.stderr + r.stdout)
        self.assertEqual(sorted(con.execute(
            "SELECT image_id, phash, phash_inner, version FROM image_phash")), want)
        r = run("-C", c, "dedup", "--near", "--no-report")
        self.assertIn("0 images hashed", r.stderr + r.stdout)
        con.close()

    def test_kill_mid_run_then_rerun_gives_the_uninterrupted_result(self):
        os.makedirs(self.photos)
        rng = np.random.default_rng(7)
        for i in range(80):  # distinct synthetic pictures, each with a re-encoded copy
            a = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
            im = Image.fromarray(a).resize((160, 128), Image.BICUBIC)
            save(im, self.photos, "p%03d" % i, "picture %d" % i, quality=95)
            save(im, self.photos, "p%03d_q50" % i, "picture %d again" % i, quality=50)
        c = self.corpus(self.photos)
        ref = os.path.join(self.tmp.name, "reference")
        shutil.copytree(c, ref)
        r = run("-C", ref, "dedup", "--no-report")
        self.assertEqual(r.returncode, 0, r.stderr)
        want = decisions(ref)
        self.assertEqual(len(want), 80)
        p = subprocess.Popen([BIN, "-C", c, "dedup", "--batch", "1", "--batch-delay-ms", "40",
                              "--no-report"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        hashed = 0
        deadline = time.time() + 60
        while time.time() < deadline and p.poll() is None:
            try:
                con = db(c)
                hashed = con.execute("SELECT count(*) FROM image_phash").fetchone()[0]
                con.close()
            except sqlite3.Error:
                hashed = 0
            if hashed >= 20:
                break
            time.sleep(0.02)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        self.assertGreaterEqual(hashed, 20)
        con = db(c)
        at_kill = con.execute("SELECT count(*) FROM image_phash").fetchone()[0]
        self.assertEqual(con.execute("SELECT count(*) FROM decisions").fetchone()[0], 0)
        con.close()
        self.assertLess(at_kill, 160, "the run finished before it was killed")
        r = run("-C", c, "dedup", "--no-report")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("%d images hashed" % (160 - at_kill), r.stderr + r.stdout)
        self.assertEqual(decisions(c), want)

    def test_decontamination_drops_exactly_the_three(self):
        os.makedirs(self.photos)
        for name, ext in PHOTOS[:5] + [("camera_gray", "jpg")]:
            save(load(name, ext), self.photos, name, name + " original", quality=95)
        evalset = os.path.join(self.tmp.name, "evalset")
        os.makedirs(evalset)
        variant(load("astronaut", "jpg"), "q50").save(os.path.join(evalset, "a.jpg"), quality=50)
        variant(load("chelsea", "jpg"), "crop").save(os.path.join(evalset, "b.jpg"))
        variant(load("rocket", "jpg"), "wm").save(os.path.join(evalset, "c.jpg"))
        load("motorcycle", "png").save(os.path.join(evalset, "d.jpg"))  # not in the corpus
        c = self.corpus(self.photos)
        r = run("-C", c, "dedup", "--against", evalset)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(decisions(c), {n + " original": ("contaminated", "evalset")
                                        for n in ("astronaut", "chelsea", "rocket")})
        # a list file names the set too
        lst = os.path.join(self.tmp.name, "bench.txt")
        with open(lst, "w") as f:
            f.write("evalset/b.jpg\n# comment\nevalset/d.jpg\n")
        r = run("-C", c, "dedup", "--against", lst)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(decisions(c), {"chelsea original": ("contaminated", "bench")})

    def test_decontamination_against_tar_shards(self):
        """The evaluation set as WebDataset shards: witpipe's own shard
        output (a folder of .tar with manifest and stats beside them), a
        list file naming .tar shards, and one .tar given directly."""
        os.makedirs(self.photos)
        for name, ext in PHOTOS[:5] + [("camera_gray", "jpg")]:
            save(load(name, ext), self.photos, name, name + " original", quality=95)
        evalimgs = os.path.join(self.tmp.name, "evalimgs")
        os.makedirs(evalimgs)
        save(variant(load("astronaut", "jpg"), "q50"), evalimgs, "a", "eval a", quality=50)
        save(variant(load("chelsea", "jpg"), "crop"), evalimgs, "b", "eval b")
        save(variant(load("rocket", "jpg"), "wm"), evalimgs, "c", "eval c")
        save(load("motorcycle", "png"), evalimgs, "d", "eval d")  # not in the corpus
        ev = self.corpus(evalimgs, "evalcorpus")
        shards = os.path.join(self.tmp.name, "evalshards")
        r = run("-C", ev, "shard", "-o", shards, "--per-shard", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        tars = sorted(f for f in os.listdir(shards) if f.endswith(".tar"))
        self.assertEqual(len(tars), 2)
        self.assertGreater(len(os.listdir(shards)), 2)  # manifest and stats beside them
        c = self.corpus(self.photos)
        r = run("-C", c, "dedup", "--against", shards)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(decisions(c), {n + " original": ("contaminated", "evalshards")
                                        for n in ("astronaut", "chelsea", "rocket")})
        self.assertIn("4 images hashed of 4", r.stderr)
        # shards written here: members in subfolders, a caption and json
        # beside each image; a list file names two of them
        own = os.path.join(self.tmp.name, "own")
        os.makedirs(own)
        for tname, members in (("p0.tar", ["a", "d"]), ("p1.tar", ["c"])):
            with tarfile.open(os.path.join(own, tname), "w") as t:
                for m in members:
                    t.add(os.path.join(evalimgs, m + ".jpg"), "x/%s.jpg" % m)
                    t.add(os.path.join(evalimgs, m + ".txt"), "x/%s.txt" % m)
        lst = os.path.join(self.tmp.name, "shardlist.txt")
        with open(lst, "w") as f:
            f.write("own/p0.tar\n# b is not listed\nown/p1.tar\n")
        r = run("-C", c, "dedup", "--against", lst)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(decisions(c), {n + " original": ("contaminated", "shardlist")
                                        for n in ("astronaut", "rocket")})
        r = run("-C", c, "dedup", "--against", os.path.join(own, "p1.tar"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(decisions(c), {"rocket original": ("contaminated", "p1")})

    def same_scene_pairs(self, pairs):
        """Saves each (scene, first shot, second shot), adds them, runs
        dedup --near; returns the decisions and each scene's nearest
        distance of its 4 hash combinations (whole/centre each side)."""
        os.makedirs(self.photos)
        for scene, a, b in pairs:
            save(a, self.photos, scene + "_1", scene + " shot 1")
            save(b, self.photos, scene + "_2", scene + " shot 2")
        c = self.corpus(self.photos)
        r = run("-C", c, "dedup", "--near")
        self.assertEqual(r.returncode, 0, r.stderr)
        con = db(c)
        hs = {}
        for t, ph, inner in con.execute("SELECT p.text, h.phash, h.phash_inner FROM image_phash h "
                                        "JOIN pairs p ON p.image_id = h.image_id"):
            hs.setdefault(t.split()[0], []).append((ph, inner))
        con.close()
        dist = {}
        for scene, two in hs.items():
            self.assertEqual(len(two), 2, scene)
            dist[scene] = min(bin((x ^ y) & (2**64 - 1)).count("1") for x in two[0] for y in two[1])
            print("same scene twice: %s nearest hash distance %d" % (scene, dist[scene]))
        return decisions(c), dist

    def test_same_scene_shot_twice_does_not_group(self):
        """Two framings of one scene that are not copies, built from each
        test photo: the camera panned by a fifth of the frame, a little
        closer and brighter the second time."""
        pairs = []
        for name, ext in PHOTOS[:5]:
            im = load(name, ext)
            w, h = im.size
            a = im.crop((0, 0, int(w * 0.8), int(h * 0.9)))
            b = im.crop((int(w * 0.2), int(h * 0.06), w, int(h * 0.94)))
            b = b.resize((a.width, a.height), Image.BICUBIC).point(lambda v: min(255, int(v * 1.1)))
            pairs.append((name, a, b))
        got, dist = self.same_scene_pairs(pairs)
        self.assertEqual(got, {})
        for scene, d in dist.items():
            self.assertGreater(d, 6, scene)  # the default radius

    STEREO = "/usr/lib/python3/dist-packages/skimage/data/motorcycle_right.png"

    @unittest.skipUnless(os.path.exists(STEREO), "SKIP: python3-skimage (the stereo pair) missing")
    def test_stereo_pair_does_not_group(self):
        """A real same-scene pair: motorcycle.png (Middlebury's motorcycle,
        left camera) and its right camera view from Debian's
        python3-skimage. The whole-image pHashes are only 6 bits apart
        (about 20 px of parallax in 741, less than a 5% crop), within the
        default radius; their centres are 10 apart and neither whole is
        within 6 of the other's centre, so they do not group: a near pair
        needs the whole and the centre hashes both within the radius, or a
        crop match (whole against centre)."""
        got, dist = self.same_scene_pairs([("motorcycle", load("motorcycle", "png"),
                                            Image.open(self.STEREO).convert("RGB"))])
        self.assertEqual(got, {})
        self.assertLessEqual(dist["motorcycle"], 6)  # what any-of-four would have grouped

    def test_dry_run_prints_what_it_would_drop_and_records_nothing(self):
        write_photo_set(self.photos, names=PHOTOS[:2], variants=["q50", "crop"])
        c = self.corpus(self.photos)
        r = run("-C", c, "dedup", "--dry-run")
        self.assertEqual(r.returncode, 0, r.stderr)
        printed = {}
        for line in r.stdout.splitlines():
            pid, reason = line.split("\t")
            printed[int(pid)] = reason
        self.assertEqual(len(printed), 4)
        con = db(c)
        self.assertEqual(con.execute("SELECT count(*) FROM decisions").fetchone()[0], 0)
        con.close()
        r = run("-C", c, "dedup")
        self.assertEqual(r.returncode, 0, r.stderr)
        con = db(c)
        got = dict(con.execute("SELECT pair_id, reason FROM decisions"))
        self.assertEqual(got, printed)

    def test_html_picture_of_the_groups(self):
        write_photo_set(self.photos, names=PHOTOS[:3], variants=["q50", "half"])
        c = self.corpus(self.photos)
        out = os.path.join(self.tmp.name, "groups.html")
        r = run("-C", c, "dedup", "--report", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out) as f:
            html = f.read()
        self.assertEqual(html.count("<h2>"), 3)
        self.assertEqual(html.count("data:image/jpeg;base64,"), 9)
        for n, _ in PHOTOS[:3]:
            self.assertIn(n + " original", html)
            self.assertIn(n + " q50", html)

    def test_text_dup_flags_captions_for_the_filter_stage(self):
        lst = os.path.join(self.tmp.name, "list.tsv")
        rows = [("http://x.test/1.jpg", "logo"), ("http://x.test/2.jpg", "logo"),
                ("http://x.test/3.jpg", "logo"), ("http://x.test/4.jpg", "a red car"),
                ("http://x.test/4.jpg", "car"), ("http://x.test/4.jpg", "vehicle"),
                ("http://x.test/5.jpg", "sunset"), ("http://x.test/6.jpg", "logo2"),
                ("http://x.test/7.jpg", "logo2")]
        with open(lst, "w") as f:
            f.write("url\tcaption\n")
            for u, t in rows:
                f.write("%s\t%s\n" % (u, t))
        c = os.path.join(self.tmp.name, "corpus")
        self.assertEqual(run("init", c).returncode, 0)
        r = run("-C", c, "add", lst)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run("-C", c, "dedup", "--exact", "--text-dup", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        con = db(c)
        got = {(u, t): (d, reason, score) for u, t, d, reason, score in con.execute(
            "SELECT i.url, p.text, d.decision, d.reason, d.score FROM decisions d "
            "JOIN pairs p ON p.id = d.pair_id JOIN images i ON i.id = p.image_id "
            "WHERE d.stage = 'dedup-text'")}
        want = {(u, t): ("keep", "caption_shared", 3) for u, t in rows[:3]}
        want.update({(u, t): ("keep", "many_captions", 3) for u, t in rows[3:6]})
        self.assertEqual(got, want)
        # a rerun with a higher bar replaces them
        r = run("-C", c, "dedup", "--exact", "--text-dup", "3")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(con.execute("SELECT count(*) FROM decisions").fetchone()[0], 0)
        con.close()

    @unittest.skipUnless(os.path.isdir(MODEL), "SKIP: ../shared/golden/clip model missing")
    def test_decontamination_by_embeddings(self):
        os.makedirs(self.photos)
        for name, ext in PHOTOS[:4]:
            save(load(name, ext), self.photos, name, name + " original", quality=95)
        evalset = os.path.join(self.tmp.name, "evalset")
        os.makedirs(evalset)
        variant(load("astronaut", "jpg"), "q50").save(os.path.join(evalset, "a.jpg"), quality=50)
        variant(load("rocket", "jpg"), "half").save(os.path.join(evalset, "b.jpg"))
        load("motorcycle", "png").save(os.path.join(evalset, "c.jpg"))  # not in the corpus
        c = self.corpus(self.photos)
        r = run("-C", c, "dedup", "--against", evalset, "--against-eps", "0.01")
        self.assertEqual(r.returncode, 2)  # needs --clip-model
        r = run("-C", c, "encode", "--model", MODEL)
        self.assertEqual(r.returncode, 0, r.stderr)
        # embeddings only (no pHash check, no image hashed): the two
        # copies' originals go
        r = run("-C", c, "dedup", "--exact", "--against", evalset, "--against-radius", "off",
                "--against-eps", "0.05", "--clip-model", MODEL)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(decisions(c), {n + " original": ("contaminated", "evalset")
                                        for n in ("astronaut", "rocket")})
        con = db(c)
        self.assertEqual(con.execute("SELECT count(*) FROM image_phash").fetchone()[0], 0)
        con.close()

    @unittest.skipUnless(os.path.isdir(MODEL), "SKIP: ../shared/golden/clip model missing")
    def test_semantic_over_encode_embeddings(self):
        write_photo_set(self.photos, names=PHOTOS[:4], variants=["q50", "half", "gray"])
        c = self.corpus(self.photos)
        r = run("-C", c, "dedup", "--semantic")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("encode", r.stderr)
        r = run("-C", c, "encode", "--model", MODEL)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run("-C", c, "dedup", "--semantic", "--dry-run", "--clusters", "2",
                "--eps", "0.01,0.1,0.5")
        self.assertEqual(r.returncode, 0, r.stderr)
        frac = [int(line.split(":")[1].split()[0]) for line in r.stderr.splitlines()
                if line.startswith("semantic eps")]
        self.assertEqual(len(frac), 3)
        self.assertTrue(frac[0] <= frac[1] <= frac[2], frac)
        r = run("-C", c, "dedup", "--semantic", "--clusters", "2", "--eps", "0.01")
        self.assertEqual(r.returncode, 0, r.stderr)
        got = decisions(c)
        self.assertEqual(len(got), frac[0])
        self.assertGreater(len(got), 0)
        for cap, (kind, keeper) in got.items():
            # at eps 0.01 a copy only ever joins a copy of the same photo
            self.assertEqual(kind, "semantic")
            self.assertEqual(cap.split()[0], keeper.split()[0], (cap, keeper))


if __name__ == "__main__":
    unittest.main()
