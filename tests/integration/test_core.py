"""tests/integration/test_core.py: `witpipe init`, `add` and `shard` driven
through the binary.

add: every list format and compression, --keep-cols, bad inputs (truncated
gzip, broken CSV quoting, invalid UTF-8, an empty file, a 1 GB line piped
in), add --files with real images. shard: shards read back by GNU tar and
by Python's tarfile, grouped by key the way WebDataset does (key = member
name up to the first dot) and compared with the catalog (sqlite3);
manifest/stats/sample JSON checked against the JSON Schemas in schemas/;
byte-identical re-runs; a killed run and a leftover .tmp; exit codes.
"""
import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import tarfile
import tempfile
import time
import unittest

from tests.integration import stagekit as K

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("WITPIPE_BIN", os.path.join(ROOT, "build", "witpipe"))
DATA = os.path.join(ROOT, "tests", "data", "core")
SCHEMAS = os.path.join(ROOT, "schemas")


def run(*args, stdin=None, input=None):
    return subprocess.run([BIN, *args], stdin=stdin, input=input, capture_output=True)


def proc_state(pid):
    """The state letter of /proc/PID/stat (R, S, D, T...); "" once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def validate(value, schema, path="$"):
    """A small JSON Schema checker for the keywords schemas/ uses."""
    t = schema.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        ok = False
        for ty in types:
            if ty == "object" and isinstance(value, dict):
                ok = True
            elif ty == "array" and isinstance(value, list):
                ok = True
            elif ty == "string" and isinstance(value, str):
                ok = True
            elif ty == "integer" and isinstance(value, int) and not isinstance(value, bool):
                ok = True
            elif ty == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
                ok = True
            elif ty == "null" and value is None:
                ok = True
        if not ok:
            raise AssertionError(f"{path}: {value!r} is not {t}")
    if "const" in schema and value != schema["const"]:
        raise AssertionError(f"{path}: {value!r} != {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        raise AssertionError(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        raise AssertionError(f"{path}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, (int, float)) and "minimum" in schema and value < schema["minimum"]:
        raise AssertionError(f"{path}: {value} < {schema['minimum']}")
    if isinstance(value, dict):
        for k in schema.get("required", []):
            if k not in value:
                raise AssertionError(f"{path}: missing {k}")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                validate(v, props[k], f"{path}.{k}")
            elif extra is False:
                raise AssertionError(f"{path}: unexpected member {k}")
            elif isinstance(extra, dict):
                validate(v, extra, f"{path}.{k}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            validate(v, schema["items"], f"{path}[{i}]")


def load_schema(name):
    return load_json(os.path.join(SCHEMAS, name))


def slurp(path):
    with open(path, "rb") as f:
        return f.read()


def load_json(path):
    with open(path, "rb") as f:
        return json.load(f)


class CoreBase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="witpipe-core-")
        self.corpus = os.path.join(self.tmp, "corpus")
        r = run("init", self.corpus)
        self.assertEqual(r.returncode, 0, r.stderr)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write(self, name, data, opener=open):
        p = self.path(name)
        with opener(p, "wb") as f:
            f.write(data)
        return p

    def add(self, *args, **kw):
        return run("-C", self.corpus, "add", *args, **kw)

    def db(self):
        return sqlite3.connect(os.path.join(self.corpus, "catalog.db"))

    def pairs(self):
        with self.db() as d:
            return d.execute(
                "SELECT i.url, p.text, p.extra, p.origin FROM pairs p JOIN images i "
                "ON i.id = p.image_id ORDER BY p.id").fetchall()

    def last_counts(self):
        with self.db() as d:
            row = d.execute("SELECT status, counts FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return row[0], json.loads(row[1])


def rows(tag, n=3):
    return [(f"http://h/{tag}/{i}.jpg", f"{tag} caption {i}, with \"quotes\"") for i in range(n)]


class TestAdd(CoreBase):
    def test_each_format_and_compression(self):
        inputs = []
        tsv = "url\tcaption\n" + "".join(f"{u}\t{c}\n" for u, c in rows("tsv"))
        inputs.append(self.write("a.tsv.gz", tsv.encode(), gzip.open))
        def csv_of(tag):
            # RFC 4180: quotes inside a quoted field are doubled.
            return "url,caption\r\n" + "".join(
                f"{u},\"{c.replace(chr(34), chr(34) * 2)}\"\r\n" for u, c in rows(tag))
        inputs.append(self.write("b.csv.bz2", csv_of("csv").encode(), bz2.open))
        jl = "".join(json.dumps({"url": u, "caption": c}) + "\n" for u, c in rows("jsonl"))
        inputs.append(self.write("c.jsonl.xz", jl.encode(), lzma.open))
        inputs.append(self.write("d.csv", csv_of("plain").encode()))
        expect = rows("tsv") + rows("csv") + rows("jsonl") + rows("plain")
        if shutil.which("zstd"):
            raw = self.write("e.tsv", ("url\tcaption\n" + "".join(
                f"{u}\t{c}\n" for u, c in rows("zst"))).encode())
            subprocess.run(["zstd", "-q", "--rm", raw], check=True)
            inputs.append(raw + ".zst")
            expect += rows("zst")
        else:
            print("SKIP: zstd tool missing: .zst input not tested")
        r = self.add(*inputs)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = [(u, t) for u, t, _, _ in self.pairs()]
        self.assertEqual(got, expect)
        origins = [o for _, _, _, o in self.pairs()]
        self.assertTrue(origins[0].endswith("a.tsv.gz:2"), origins[0])
        status, counts = self.last_counts()
        self.assertEqual(status, "done")
        self.assertEqual(counts["added"], len(expect))
        self.assertEqual(counts["bad"], 0)

    def test_keep_cols_and_exact_duplicates(self):
        p = self.write("k.tsv", b"url\tcaption\tlang\tscore\n"
                       b"http://h/1.jpg\tone\ten\t0.5\n"
                       b"http://h/1.jpg\tone\ten\t0.5\n"
                       b"http://h/2.jpg\ttwo\tfr\t0.7\n")
        r = self.add("--keep-cols", "lang,score", p)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.add("--keep-cols", "lang,score", p)  # the whole file again
        self.assertEqual(r.returncode, 0, r.stderr)
        got = self.pairs()
        self.assertEqual(len(got), 2)
        self.assertEqual(json.loads(got[0][2]), {"lang": "en", "score": "0.5"})
        self.assertEqual(json.loads(got[1][2]), {"lang": "fr", "score": "0.7"})
        _, counts = self.last_counts()
        self.assertEqual(counts["duplicates"], 3)

    def test_truncated_gzip(self):
        body = "url\tcaption\n" + "".join(f"http://h/{i}.jpg\tcaption {i} {i * 7919}\n"
                                          for i in range(30000))
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb") as g:
            g.write(body.encode())
        data = buf.getvalue()
        p = self.write("cut.tsv.gz", data[: len(data) // 2])
        r = self.add(p)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"cut.tsv.gz", r.stderr)
        self.assertIn(b"truncated", r.stderr)
        n = len(self.pairs())
        self.assertGreater(n, 1000)
        self.assertLess(n, 30000)
        # Every stored row is a complete, correct one.
        for u, t, _, o in self.pairs()[-5:]:
            i = int(u.split("/")[-1].split(".")[0])
            self.assertEqual(t, f"caption {i} {i * 7919}")
        status, counts = self.last_counts()
        self.assertEqual(status, "failed")
        self.assertEqual(counts["files_failed"], 1)

    def test_broken_csv_quoting(self):
        p = self.write("q.csv", b'url,caption\n'
                       b'http://h/1.jpg,ok\n'
                       b'http://h/2.jpg,"unclosed\n'
                       b'http://h/3.jpg,fine\n'
                       b'http://h/4.jpg,st"ray\n')
        r = self.add(p)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"q.csv:3: bad_quoting", r.stderr)
        self.assertIn(b"q.csv:5: bad_quoting", r.stderr)
        self.assertEqual([t for _, t, _, _ in self.pairs()], ["ok", "fine"])
        _, counts = self.last_counts()
        self.assertEqual(counts["bad_by_reason"], {"bad_quoting": 2})

    def test_invalid_utf8(self):
        p = self.write("u.tsv", b"url\tcaption\nhttp://h/1.jpg\tgood\n"
                       b"http://h/2.jpg\tbad \xff\xfe\nhttp://h/3.jpg\tover\xc0\xaflong\n")
        r = self.add(p)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"u.tsv:3: invalid_utf8", r.stderr)
        self.assertIn(b"u.tsv:4: invalid_utf8", r.stderr)
        self.assertEqual([t for _, t, _, _ in self.pairs()], ["good"])

    def test_empty_file(self):
        p = self.write("empty.tsv", b"")
        r = self.add(p)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.pairs(), [])
        _, counts = self.last_counts()
        self.assertEqual(counts["rows"], 0)

    def test_one_gigabyte_line_is_rejected_streaming(self):
        proc = subprocess.Popen([BIN, "-C", self.corpus, "add", "--format", "tsv", "-"],
                                stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        chunk = b"a" * (1 << 20)
        proc.stdin.write(b"url\tcaption\nhttp://h/1.jpg\tbefore\nhttp://h/2.jpg\t")
        for _ in range(1024):  # 1 GiB, never held here
            proc.stdin.write(chunk)
        proc.stdin.write(b"\nhttp://h/3.jpg\tafter\n")
        proc.stdin.close()
        err = proc.stderr.read()
        self.assertEqual(proc.wait(), 0, err)
        self.assertIn(b"(stdin):3: too_long", err)
        self.assertEqual([t for _, t, _, _ in self.pairs()], ["before", "after"])
        # Memory stayed flat: far below the line's size.
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        self.assertLess(peak_kb, 256 * 1024)
        _, counts = self.last_counts()
        self.assertEqual(counts["bad_by_reason"], {"too_long": 1})

    def test_ctrl_c_keeps_rows_read_so_far(self):
        proc = K.add_stdin(self.corpus, 10000, 1000)
        def count():
            with self.db() as d:
                return d.execute("SELECT count(*) FROM pairs").fetchone()[0]

        seen = K.wait_for(count, 9000)  # until most rows are committed
        self.assertGreaterEqual(seen, 9000)
        proc.send_signal(signal.SIGINT)
        try:
            proc.stdin.write(b"".join(b"http://h/x%d.jpg\tc%d\n" % (i, i) for i in range(20000)))
            proc.stdin.close()
        except BrokenPipeError:
            pass
        err = proc.stderr.read()
        self.assertEqual(proc.wait(), 1, err)
        self.assertIn(b"stopped", err)
        n = len(self.pairs())
        # Everything read before the stop is kept (the rows waiting in the
        # pipe included); it stops within one progress tick (4096 rows).
        self.assertGreaterEqual(n, 10000)
        self.assertLess(n, 30000)
        status, counts = self.last_counts()
        self.assertEqual(status, "stopped")
        self.assertEqual(counts["added"], n)

    def test_missing_column_names_the_columns(self):
        p = self.write("m.tsv", b"link\ttext\nhttp://h/1.jpg\tx\n")
        r = self.add(p)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"no column 'url'", r.stderr)
        r = self.add("--url-col", "link", "--text-col", "text", p)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.pairs()[0][:2], ("http://h/1.jpg", "x"))


def make_image_dir(dest, copies=1):
    """Test images with captions; names do not tell the format (a PNG is
    called .jpg); a cut JPEG and a text file posing as one are captioned."""
    os.makedirs(dest, exist_ok=True)
    srcs = [("tiny_48.jpg", "jpg"), ("chelsea.webp", "webp"), ("small_20x10.png", "jpg")]
    for k in range(copies):
        for i, (name, ext) in enumerate(srcs):
            stem = f"img{k:04d}_{i}"
            shutil.copy(os.path.join(DATA, name), os.path.join(dest, f"{stem}.{ext}"))
            with open(os.path.join(dest, f"{stem}.txt"), "w") as f:
                f.write(f"caption {k} {i} ünïcode\n")
    shutil.copy(os.path.join(DATA, "truncated.jpg"), os.path.join(dest, "broken.jpg"))
    with open(os.path.join(dest, "broken.txt"), "w") as f:
        f.write("broken")
    with open(os.path.join(dest, "fake.jpg"), "w") as f:
        f.write("<html>not an image</html>")
    with open(os.path.join(dest, "fake.txt"), "w") as f:
        f.write("fake")


def webdataset_groups(tar_path):
    """Groups members as WebDataset does: key = basename up to the first dot."""
    groups, order = {}, []
    with tarfile.open(tar_path) as tf:
        for m in tf.getmembers():
            base = os.path.basename(m.name)
            key, ext = base.split(".", 1)
            if key not in groups:
                groups[key] = {}
                order.append(key)
            groups[key][ext] = tf.extractfile(m).read()
            assert m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.mode == 0o644, m
    return order, groups


class TestFilesAndShard(CoreBase):
    def setUp(self):
        super().setUp()
        self.imgs = self.path("imgs")
        make_image_dir(self.imgs, copies=3)
        r = self.add("--files", self.imgs)
        self.assertEqual(r.returncode, 0, r.stderr)

    def shard(self, out, *extra):
        r = run("-C", self.corpus, "shard", "-o", out, *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def test_files_formats_from_headers(self):
        with self.db() as d:
            got = dict(((os.path.basename(u), (s, c, f, w, h)) for u, s, c, f, w, h in d.execute(
                "SELECT url, state, error_class, format, width, height FROM images")))
        self.assertEqual(got["img0000_0.jpg"], ("ok", None, "jpeg", 48, 48))
        self.assertEqual(got["img0000_1.webp"], ("ok", None, "webp", 451, 300))
        self.assertEqual(got["img0000_2.jpg"], ("ok", None, "png", 20, 10))  # a PNG named .jpg
        self.assertEqual(got["broken.jpg"][:2], ("error", "corrupt"))
        self.assertEqual(got["fake.jpg"][:2], ("error", "not_an_image"))
        self.assertEqual(len(got), 11)

    def test_shards_read_back_match_catalog(self):
        out = self.path("shards")
        self.shard(out, "--per-shard", "4")
        man = load_json(os.path.join(out, "manifest.json"))
        validate(man, load_schema("manifest.schema.json"))
        sample_schema = load_schema("sample.schema.json")
        stats_schema = load_schema("shard_stats.schema.json")
        self.assertEqual(len(man["shards"]), 3)  # 9 samples, 4 per shard
        with self.db() as d:
            want = d.execute(
                "SELECT p.uid, p.text, i.url, i.sha256, i.format, i.width, i.height FROM pairs p "
                "JOIN images i ON i.id = p.image_id WHERE i.state = 'ok' AND NOT EXISTS "
                "(SELECT 1 FROM decisions x WHERE x.pair_id = p.id AND x.decision = 'drop') "
                "ORDER BY p.id").fetchall()
        seen = []
        ext_of = {"jpeg": "jpg", "png": "png", "webp": "webp"}
        for entry in man["shards"]:
            p = os.path.join(out, entry["name"])
            blob = slurp(p)
            self.assertEqual(hashlib.sha256(blob).hexdigest(), entry["sha256"])
            self.assertEqual(len(blob), entry["bytes"])
            # GNU tar reads it too.
            t = subprocess.run(["tar", "-tvf", p], capture_output=True, text=True)
            self.assertEqual(t.returncode, 0, t.stderr)
            self.assertEqual(len(t.stdout.splitlines()), 3 * entry["samples"])
            self.assertIn("0/0", t.stdout.splitlines()[0])
            order, groups = webdataset_groups(p)
            self.assertEqual(len(order), entry["samples"])
            for key in order:
                seen.append((key, groups[key]))
            stats = load_json(p[:-4] + "_stats.json")
            validate(stats, stats_schema)
            self.assertEqual(stats["samples"], entry["samples"])
        self.assertEqual(len(seen), len(want))
        for (key, g), (uid, text, url, sha, fmt, w, h) in zip(seen, want):
            self.assertEqual(key, uid)
            self.assertNotIn(".", key)
            self.assertEqual(set(g), {ext_of[fmt], "txt", "json"})
            self.assertEqual(g["txt"].decode("utf-8"), text)
            self.assertEqual(hashlib.sha256(g[ext_of[fmt]]).hexdigest(), sha)
            meta = json.loads(g["json"])
            validate(meta, sample_schema)
            self.assertEqual((meta["url"], meta["caption"], meta["width"], meta["height"]),
                             (url, text, w, h))
            self.assertEqual(meta["source"]["kind"], "files")

    def test_byte_identical_rerun_and_leftover_tmp(self):
        a, b = self.path("a"), self.path("b")
        self.shard(a, "--per-shard", "2", "--shuffle", "42")
        self.shard(b, "--per-shard", "2", "--shuffle", "42")
        names = sorted(os.listdir(a))
        self.assertEqual(names, sorted(os.listdir(b)))
        for n in names:
            self.assertEqual(slurp(os.path.join(a, n)),
                             slurp(os.path.join(b, n)), n)
        # A lost shard and a crashed run's .tmp: only the missing one is made.
        os.unlink(os.path.join(a, "00002.tar"))
        with open(os.path.join(a, "00003.tar.tmp"), "wb") as f:
            f.write(b"partial")
        r = self.shard(a, "--per-shard", "2", "--shuffle", "42")
        self.assertIn(b"1 written", r.stderr)
        self.assertEqual(sorted(os.listdir(a)), names)
        for n in names:
            self.assertEqual(slurp(os.path.join(a, n)),
                             slurp(os.path.join(b, n)), n)

    def test_killed_run_never_leaves_a_complete_looking_shard(self):
        more = self.path("more")
        make_image_dir(more, copies=40)
        r = self.add("--files", more)
        self.assertEqual(r.returncode, 0, r.stderr)
        ref, out = self.path("ref"), self.path("out")
        self.shard(ref, "--per-shard", "3")
        # Each shard is fsync'ed, so a run takes long enough to be killed
        # part-way; several kills at different moments, resuming each time.
        for delay in (0.05, 0.15, 0.3):
            proc = subprocess.Popen(
                [BIN, "-C", self.corpus, "shard", "-o", out, "--per-shard", "3"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            # Whatever got a final name is a complete shard, equal to the reference.
            if os.path.isdir(out):
                for n in os.listdir(out):
                    if n.endswith(".tar"):
                        self.assertEqual(slurp(os.path.join(out, n)),
                                         slurp(os.path.join(ref, n)), n)
        self.shard(out, "--per-shard", "3")
        self.assertEqual(sorted(os.listdir(out)), sorted(os.listdir(ref)))
        for n in os.listdir(ref):
            self.assertEqual(slurp(os.path.join(out, n)),
                             slurp(os.path.join(ref, n)), n)

    def test_ctrl_c_stops_cleanly_and_resumes(self):
        more = self.path("more")
        make_image_dir(more, copies=40)
        self.assertEqual(self.add("--files", more).returncode, 0)
        ref, out = self.path("ref"), self.path("out")
        self.shard(ref, "--per-shard", "3")
        last = max(n for n in os.listdir(ref) if n.endswith(".tar"))
        proc = subprocess.Popen([BIN, "-C", self.corpus, "shard", "-o", out, "--per-shard", "3"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # Once the first shard is in place (42 more are to come), freeze the
        # run with SIGSTOP, check it is still short of its last shard, and
        # only then send SIGINT and let it go on: the signal lands while the
        # run is in progress, so the stop path runs every time.
        deadline = time.time() + 60
        while not os.path.exists(os.path.join(out, "00000.tar")) and time.time() < deadline:
            time.sleep(0.002)
        proc.send_signal(signal.SIGSTOP)
        while proc.poll() is None and proc_state(proc.pid) != "T" and time.time() < deadline:
            time.sleep(0.002)
        self.assertIsNone(proc.poll(), "shard finished before it could be stopped")
        self.assertEqual(proc_state(proc.pid), "T")
        self.assertFalse(os.path.exists(os.path.join(out, last)),
                         "shard wrote its last shard before it could be stopped")
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGCONT)
        err = proc.stderr.read()
        self.assertEqual(proc.wait(), 1, err)
        self.assertIn(b"stopped", err)
        with self.db() as d:
            status = d.execute("SELECT status FROM runs WHERE stage = 'shard' "
                               "ORDER BY id DESC LIMIT 1").fetchone()[0]
        self.assertEqual(status, "stopped")
        self.assertFalse(os.path.exists(os.path.join(out, last)))
        self.assertEqual([n for n in os.listdir(out) if ".tmp" in n], [])
        self.shard(out, "--per-shard", "3")
        for n in os.listdir(ref):
            self.assertEqual(slurp(os.path.join(out, n)), slurp(os.path.join(ref, n)), n)

    def test_dropped_pairs_are_not_shipped(self):
        with self.db() as d:
            pid, uid = d.execute("SELECT p.id, p.uid FROM pairs p JOIN images i ON "
                                 "i.id = p.image_id WHERE i.state = 'ok' LIMIT 1").fetchone()
            d.execute("INSERT INTO decisions(pair_id, stage, decision, reason) "
                      "VALUES (?, 'filter', 'drop', 'too_small')", (pid,))
            pid2 = d.execute("SELECT p.id FROM pairs p JOIN images i ON i.id = p.image_id "
                             "WHERE i.state = 'ok' AND p.id != ? LIMIT 1", (pid,)).fetchone()[0]
            d.execute("INSERT INTO decisions(pair_id, stage, decision, score) "
                      "VALUES (?, 'clip', 'keep', 0.31)", (pid2,))
        out = self.path("s")
        self.shard(out)
        order, groups = webdataset_groups(os.path.join(out, "00000.tar"))
        self.assertNotIn(uid, order)
        self.assertEqual(len(order), 8)
        scored = [json.loads(g["json"]) for g in groups.values()
                  if "clip" in json.loads(g["json"])["decisions"]]
        self.assertEqual(len(scored), 1)
        self.assertEqual(scored[0]["decisions"]["clip"],
                         {"decision": "keep", "reason": None, "score": 0.31})
        stats = load_json(os.path.join(out, "00000_stats.json"))
        self.assertEqual(stats["dropped"], {"filter/too_small": 1})
        self.assertEqual(stats["by_error_class"], {"corrupt": 1, "not_an_image": 1})


class TestFilesList(CoreBase):
    def test_files_list_paths_and_captions(self):
        d = self.path("pics")
        os.makedirs(d)
        shutil.copy(os.path.join(DATA, "tiny_48.jpg"), os.path.join(d, "a.bin"))
        shutil.copy(os.path.join(DATA, "small_20x10.png"), os.path.join(d, "b.bin"))
        lst = self.write("list.tsv", b"pics/a.bin\ta tiny jpeg\n"
                         + os.path.join(d, "b.bin").encode() + b"\ta small png\n"
                         b"pics/missing.jpg\tgone\n")
        r = self.add("--files-list", lst)
        self.assertEqual(r.returncode, 0, r.stderr)
        with self.db() as db:
            got = db.execute("SELECT p.text, i.state, i.error_class, i.format, i.width "
                             "FROM pairs p JOIN images i ON i.id = p.image_id "
                             "ORDER BY p.id").fetchall()
        self.assertEqual(got, [("a tiny jpeg", "ok", None, "jpeg", 48),
                               ("a small png", "ok", None, "png", 20),
                               ("gone", "error", "unreadable", None, None)])

    def test_files_reads_only_regular_files_inside_the_folder(self):
        """Links out of the folder (a caption, an image, a subfolder) are not
        followed and FIFOs are never opened for reading: each is skipped,
        counted and reported; only the plain captioned image is imported."""
        out = self.path("elsewhere")
        os.makedirs(os.path.join(out, "sub"))
        with open(os.path.join(out, "secret.txt"), "wb") as f:
            f.write(b"SECRET text from outside the folder")
        shutil.copy(os.path.join(DATA, "small_20x10.png"), os.path.join(out, "other.jpg"))
        shutil.copy(os.path.join(DATA, "tiny_48.jpg"), os.path.join(out, "sub", "deep.jpg"))
        d = self.path("pics")
        os.makedirs(d)
        shutil.copy(os.path.join(DATA, "tiny_48.jpg"), os.path.join(d, "a.jpg"))
        os.symlink(os.path.join(out, "secret.txt"), os.path.join(d, "a.txt"))
        os.symlink(os.path.join(out, "other.jpg"), os.path.join(d, "b.jpg"))
        os.symlink(os.path.join(out, "sub"), os.path.join(d, "linked"))
        shutil.copy(os.path.join(DATA, "small_20x10.png"), os.path.join(d, "c.png"))
        os.mkfifo(os.path.join(d, "c.txt"))  # a caption that would block a reader
        os.mkfifo(os.path.join(d, "d.jpg"))
        shutil.copy(os.path.join(DATA, "tiny_48.jpg"), os.path.join(d, "ok.jpg"))
        with open(os.path.join(d, "ok.txt"), "wb") as f:
            f.write(b"a plain caption")
        # The timeout only guards the suite: the run must not wait on a FIFO.
        r = subprocess.run([BIN, "-C", self.corpus, "add", "--files", d], capture_output=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = [(os.path.basename(u), t) for u, t, _, _ in self.pairs()]
        self.assertEqual(got, [("ok.jpg", "a plain caption")])
        with self.db() as db:
            self.assertEqual(db.execute("SELECT count(*) FROM pairs WHERE text LIKE '%SECRET%'")
                             .fetchone()[0], 0)
            self.assertEqual(db.execute("SELECT count(*) FROM images").fetchone()[0], 1)
        status, counts = self.last_counts()
        self.assertEqual(status, "done")
        self.assertEqual((counts["imported"], counts["skipped_links"],
                          counts["skipped_special"]), (1, 3, 2))
        err = r.stderr.decode()
        for rel, why in (("a.jpg", "caption a.txt: symbolic link"), ("b.jpg", "symbolic link"),
                         ("linked", "symbolic link"), ("c.png", "caption c.txt: not a regular "
                                                       "file (FIFO)"),
                         ("d.jpg", "not a regular file (FIFO)")):
            self.assertIn(f"{rel}: skipped: {why}", err)

    def test_files_list_refuses_a_fifo(self):
        d = self.path("pics")
        os.makedirs(d)
        os.mkfifo(os.path.join(d, "pipe.jpg"))
        lst = self.write("list.tsv", b"pics/pipe.jpg\ta pipe\n")
        r = subprocess.run([BIN, "-C", self.corpus, "add", "--files-list", lst],
                           capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        with self.db() as db:
            got = db.execute("SELECT i.state, i.error_class, i.error_detail FROM images i"
                             ).fetchall()
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0][:2], ("error", "unreadable"))
        self.assertIn("not a regular file (FIFO)", got[0][2])

    def test_shard_byte_cap(self):
        d = self.path("pics")
        make_image_dir(d, copies=4)
        self.assertEqual(self.add("--files", d).returncode, 0)
        out = self.path("s")
        r = run("-C", self.corpus, "shard", "-o", out, "--max-bytes", "40000")
        self.assertEqual(r.returncode, 0, r.stderr)
        man = load_json(os.path.join(out, "manifest.json"))
        self.assertEqual(sum(e["samples"] for e in man["shards"]), 12)
        for e in man["shards"]:
            size = os.path.getsize(os.path.join(out, e["name"]))
            self.assertEqual(size, e["bytes"])
            # Over the cap only when a single sample is bigger by itself.
            self.assertTrue(size <= 40000 or e["samples"] == 1, e)


class TestOutputHygiene(CoreBase):
    """Text from input rows (URLs, captions, file names) reaches stderr and
    stdout only as valid UTF-8 without terminal control characters; every
    --log-json line is valid JSON in valid UTF-8, cut on character
    boundaries."""

    def inputs(self):
        lst = self.write("rows.tsv", b"url\tcaption\n"
                         b"\x1b]0;pwned\x07\x1b[2J not a url\tcap\n"
                         + b"x" + "\u00e9".encode() * 30 + b"\tcut at 40 bytes\n"
                         b"http://h/a.jpg\tred \x1b[31mtext\x1b[0m \xc2\x9b31m\n")
        d = self.path("files")
        os.makedirs(d)
        # A file name with an escape sequence and bytes that are not UTF-8.
        name = b"\x1b[31m\xff\xfe"
        with open(os.path.join(d.encode(), name + b".jpg"), "wb") as f:
            f.write(b"<html>not an image</html>")
        with open(os.path.join(d.encode(), name + b".txt"), "wb") as f:
            f.write(b"a caption")
        return lst, d

    def test_log_json_is_valid_utf8_json(self):
        lst, d = self.inputs()
        for args in (("add", lst), ("add", "--files", d)):
            r = run("--log-json", "-C", self.corpus, *args)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn(b"\x1b", r.stderr)
            text = r.stderr.decode("utf-8")  # strict: raises on invalid UTF-8
            events = [json.loads(line) for line in text.splitlines()]
            msgs = [e["msg"] for e in events if "msg" in e]
            if args[1] == lst:
                # The URL quoted up to 40 bytes: 19 whole characters, not 19.5.
                self.assertIn("URL: 'x" + "\u00e9" * 19 + "'", "\n".join(msgs))
                self.assertIn("\x1b]0;pwned\x07", "\n".join(msgs))
            else:
                bad = [m for m in msgs if "not_an_image" in m]
                self.assertEqual(len(bad), 1, msgs)
                self.assertIn("\x1b[31m\ufffd", bad[0])

    def test_terminal_output_has_no_control_characters(self):
        lst, d = self.inputs()
        outs = []
        for args in (("add", lst), ("add", "--files", d)):
            r = run("-C", self.corpus, *args)
            self.assertEqual(r.returncode, 0, r.stderr)
            outs.append(r.stderr)
        with self.db() as db:
            uid = db.execute("SELECT uid FROM pairs WHERE text LIKE 'red%'").fetchone()[0]
        r = run("-C", self.corpus, "explain", uid)
        self.assertEqual(r.returncode, 0, r.stderr)
        outs.append(r.stdout)
        r = run("-C", self.corpus, "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        outs.append(r.stdout)
        for out in outs:
            text = out.decode("utf-8")  # strict
            bad = [c for c in text if (ord(c) < 0x20 and c not in "\n\t") or 0x7f <= ord(c) <= 0x9f]
            self.assertEqual(bad, [], out)
        # Shown, as visible escapes.
        self.assertIn(b"URL: '\\x1B]0;pwned\\x07\\x1B[2J not a url'", outs[0])
        self.assertIn(b"\\x1B[31m\xef\xbf\xbd", outs[1])
        self.assertIn(b"text:   red \\x1B[31mtext\\x1B[0m \\u009B31m", outs[2])


class TestExitCodes(CoreBase):
    def test_help_unknown_option_bad_value(self):
        for cmd in ("add", "shard"):
            r = run(cmd, "--help")
            self.assertEqual(r.returncode, 0)
            self.assertIn(f"usage: witpipe {cmd}".encode(), r.stdout)
            r = run("-C", self.corpus, cmd, "--no-such-option")
            self.assertEqual(r.returncode, 2)
            self.assertIn(b"unknown option", r.stderr)
        cases = [("add", "--format", "xml", "x.tsv"), ("add",), ("add", "--batch", "0", "x"),
                 ("add", "--files", "d", "x.tsv"), ("shard", "--per-shard", "0"),
                 ("shard", "--per-shard", "ten"), ("shard", "--shuffle", "-1"),
                 ("shard", "extra-arg")]
        for c in cases:
            r = run("-C", self.corpus, *c)
            self.assertEqual(r.returncode, 2, (c, r.stderr))
            self.assertEqual(len(r.stderr.decode().strip().splitlines()), 1, r.stderr)

    def test_run_failures_exit_1(self):
        r = run("-C", self.path("nowhere"), "add", self.path("x.tsv"))
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"witpipe init", r.stderr)
        r = self.add(self.path("missing.tsv"))
        self.assertEqual(r.returncode, 1)
        # a file that starts like Parquet is read as Parquet, whatever its name:
        # a truncated one is a clear error naming it
        r = self.add(self.write("x.parquet", b"PAR1"))
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"x.parquet: not a Parquet file", r.stderr)
        # a name that says nothing about the format
        r = self.add(self.write("x.dat", b"hello\n"))
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"--format", r.stderr)


if __name__ == "__main__":
    unittest.main()
