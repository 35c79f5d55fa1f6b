"""tests/integration/stagekit.py: what the crash-resume soak, the Ctrl-C
tests and the store compaction tests share: the fixture server on
127.0.0.1 with a generated docroot (test images, a slow site of linked
pages), corpora built once and copied per run, and the checks every
interrupted run must pass afterwards (SQLite integrity, stored bytes
against their sha256, shards readable by GNU tar and Python's tarfile
with every sample exactly once)."""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.abspath(os.environ.get("WITPIPE_BIN", os.path.join(ROOT, "build", "witpipe")))
SERVER = os.path.join(os.path.dirname(BIN), "fixture_server")
SHARED = os.environ.get("WITPIPE_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
IMAGES = os.path.join(SHARED, "testdata", "images")
GOLDEN = os.path.join(SHARED, "golden", "clip")
NAME = "hf_vit_quickgelu_f32"  # the small golden CLIP the stage tests encode with
MODEL = os.path.join(GOLDEN, NAME, "model")

# the photos the generated corpora cycle through (all decode; varied sizes)
PHOTOS = ["astronaut.jpg", "camera_gray.jpg", "chelsea.jpg", "chelsea.webp", "coffee_progressive.jpg",
          "hubble_deep_field.jpg", "logo_rgba.png", "motorcycle.png", "panorama_4to1.jpg",
          "rocket.jpg", "tiny_48.jpg"]
WORDS = ["cat", "rocket", "photo", "space", "coffee", "camera", "motorcycle", "logo", "tabby",
         "launch", "galaxy", "wooden", "floor", "red", "blue", "old", "new", "small", "large"]


def is_asan():
    """The binary under test is the ASan+UBSan build (make BUILD=build/asan SAN=1)."""
    return "/asan/" in BIN or os.environ.get("WITPIPE_ASAN") == "1"


def need_fixtures(test, model=False):
    """Skips loudly without ../shared; fails when the server is not built."""
    if not os.path.isdir(IMAGES) or (model and not os.path.isdir(MODEL)):
        print("SKIP: %s needs %s" % (test.id(), MODEL if model else IMAGES), file=sys.stderr)
        test.skipTest("no ../shared test data")
    if not os.path.exists(SERVER):
        raise AssertionError("fixture server not built: %s" % SERVER)


def run(args, timeout=600, **kw):
    return subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=timeout, **kw)


def popen(args, env=None):
    return subprocess.Popen([BIN] + list(args), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)


def add_stdin(corpus, n, batch, stderr=subprocess.PIPE):
    """Starts `witpipe -C corpus add --batch batch --format tsv -` and writes
    it a header and n rows (http://h/I.jpg, caption cI); stdin stays open
    for more. Returns the process."""
    p = subprocess.Popen([BIN, "-C", corpus, "add", "--batch", str(batch), "--format", "tsv", "-"],
                         stdin=subprocess.PIPE, stderr=stderr)
    p.stdin.write(b"url\tcaption\n" + b"".join(b"http://h/%d.jpg\tc%d\n" % (i, i)
                                                for i in range(n)))
    p.stdin.flush()
    return p


def wait_for(count, at_least, timeout=60):
    """Polls count() every 50 ms (a busy catalog, sqlite3.OperationalError,
    is no news) until it returns at least at_least or timeout seconds have
    passed, without a timing assumption. Returns its last value."""
    seen, deadline = 0, time.monotonic() + timeout
    while seen < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            seen = count()
        except sqlite3.OperationalError:
            pass
    return seen


def delay_env(ms):
    """The environment with every catalog commit slowed by ms (tests only:
    catalog.h, WITPIPE_TEST_COMMIT_DELAY_MS), so signals land mid-work."""
    return dict(os.environ, WITPIPE_TEST_COMMIT_DELAY_MS=str(ms)) if ms else None


class ServerProcess:
    """build/fixture_server on 127.0.0.1 serving the folder root; stop()
    ends it."""

    def __init__(self, root):
        self.p = subprocess.Popen([SERVER, root], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.port = int(self.p.stdout.readline())
        self.base = "http://127.0.0.1:%d" % self.port

    def stats(self):
        """The server's request log (/__stats)."""
        with urllib.request.urlopen(self.base + "/__stats", timeout=10) as r:
            return json.loads(r.read())

    def stop(self):
        self.p.stdin.close()
        self.p.stdout.close()
        try:
            self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


class Server(ServerProcess):
    """build/fixture_server on 127.0.0.1 over a docroot: the test photos and
    a site of `pages` pages p0.html..., each linking to the next three
    through /slow (so a crawl takes page_ms per page) and showing three
    images with alt text."""

    def __init__(self, pages=0, page_ms=40):
        self.root = tempfile.mkdtemp(prefix="witpipe-docroot-")
        for p in PHOTOS:
            shutil.copy(os.path.join(IMAGES, p), self.root)
        for i in range(pages):
            links = "".join('<a href="/slow?ms=%d&amp;file=p%d.html">next</a>\n' % (page_ms, j)
                            for j in range(i + 1, min(i + 4, pages)))
            imgs = "".join('<img src="/img/%s?p=%d&amp;k=%d" alt="%s %s on page %d">\n'
                           % (PHOTOS[(i + k) % len(PHOTOS)], i, k, WORDS[(i + k) % len(WORDS)],
                              WORDS[(3 * i + k) % len(WORDS)], i) for k in range(3))
            with open(os.path.join(self.root, "p%d.html" % i), "w") as f:
                f.write("<!DOCTYPE html><html><head><title>page %d</title></head><body>\n"
                        "%s%s</body></html>\n" % (i, imgs, links))
        super().__init__(self.root)

    def stop(self):
        super().stop()
        shutil.rmtree(self.root, ignore_errors=True)


def db_rows(corpus, sql, args=()):
    db = sqlite3.connect(os.path.join(corpus, "catalog.db"), timeout=30)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def run_count(corpus):
    """Runs recorded in the corpus's catalog, whatever their state."""
    return db_rows(corpus, "SELECT count(*) FROM runs")[0][0]


def running_runs(corpus):
    """Runs recorded as running (begun, not ended; killed ones stay so);
    0 while the catalog cannot be read yet."""
    try:
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(corpus, "catalog.db"), uri=True,
                             timeout=1)
        try:
            return db.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def init(corpus):
    r = run(["init", corpus])
    assert r.returncode == 0, r.stderr


def add_list(corpus, base, n_images, captions_per_image=1, slow_ms=0, tmpdir=None):
    """Adds captions_per_image pairs for each of n_images image URLs (the
    photos in turn, each URL distinct; through /slow when slow_ms)."""
    lst = os.path.join(tmpdir or corpus, "list.tsv")
    with open(lst, "w") as f:
        f.write("url\tcaption\n")
        for i in range(n_images):
            photo = PHOTOS[i % len(PHOTOS)]
            if slow_ms:
                url = "%s/slow?ms=%d&file=%s&i=%d" % (base, slow_ms, photo, i)
            else:
                url = "%s/img/%s?i=%d" % (base, photo, i)
            for k in range(captions_per_image):
                words = " ".join(WORDS[(i * 7 + k * 3 + j) % len(WORDS)] for j in range(1 + (i + k) % 6))
                f.write("%s\t%s %d\n" % (url, words, k))
    r = run(["-q", "-C", corpus, "add", lst])
    assert r.returncode == 0, r.stderr


def write_lists(paths, rows):
    """Writes (url, caption) rows as TSV lists with a header, row i to
    paths[i % len(paths)]."""
    for k, path in enumerate(paths):
        with open(path, "w") as f:
            f.write("url\tcaption\n")
            f.writelines("%s\t%s\n" % row for row in rows[k::len(paths)])


def fetch_args(*extra):
    return ["fetch", "--allow-net", "127.0.0.1/32", "--low-speed", "100",
            "--low-speed-time", "5"] + list(extra)


def kill_at(base, work, args, moment, env=None, tries=6):
    """Copies the corpus base to work and runs `witpipe args` there, killed
    with SIGKILL after moment seconds; when the run was over by then, work
    is removed and it tries again at half the moment, tries times in all.
    Returns the moment a kill landed at, or None when none did."""
    for _ in range(tries):
        copy_corpus(base, work)
        p = popen(args, env=env)
        time.sleep(moment)
        if p.poll() is None:
            p.kill()
            p.communicate()
            if p.returncode == -9:
                return moment
        else:
            p.communicate()
        shutil.rmtree(work)
        moment /= 2
    return None


def copy_corpus(src, dst):
    shutil.copytree(src, dst, symlinks=True)


def store_file_sizes(corpus):
    d = os.path.join(corpus, "store")
    return {n: os.path.getsize(os.path.join(d, n)) for n in os.listdir(d) if n.endswith(".dat")}


def live_bytes(corpus):
    """Bytes catalog rows point at: the union of their ranges per file."""
    rows = db_rows(corpus, "SELECT store_file, store_offset, bytes FROM images "
                           "WHERE store_file IS NOT NULL ORDER BY store_file, store_offset")
    total, cur, end = 0, None, 0
    for f, off, n in rows:
        if f != cur:
            cur, end = f, 0
        if off + n > end:
            total += off + n - max(off, end)
            end = off + n
    return total


def check_catalog(tc, corpus):
    """PRAGMA integrity_check and foreign keys; every image in exactly one
    state, its stored bytes matching its sha256."""
    tc.assertEqual(db_rows(corpus, "PRAGMA integrity_check"), [("ok",)])
    tc.assertEqual(db_rows(corpus, "PRAGMA foreign_key_check"), [])
    for iid, state, f, off, n, sha, cls in db_rows(
            corpus, "SELECT id, state, store_file, store_offset, bytes, sha256, error_class "
                    "FROM images"):
        tc.assertIn(state, ("pending", "ok", "error"), iid)
        if state == "ok":
            with open(os.path.join(corpus, "store", "%06d.dat" % f), "rb") as fh:
                fh.seek(off)
                data = fh.read(n)
            tc.assertEqual(hashlib.sha256(data).hexdigest(), sha, "image %d" % iid)
        elif state == "error":
            tc.assertIsNotNone(cls, iid)
            tc.assertIsNone(f, iid)
        else:
            tc.assertIsNone(sha, iid)


def read_shards(tc, out):
    """Every .tar in out through GNU tar and tarfile; returns {key: {ext:
    sha256}} after checking each key appears in one shard only and the two
    readers list the same members."""
    samples = {}
    names = sorted(n for n in os.listdir(out) if n.endswith(".tar"))
    for name in names:
        path = os.path.join(out, name)
        r = subprocess.run(["tar", "-tf", path], capture_output=True, text=True)
        tc.assertEqual(r.returncode, 0, "GNU tar: %s: %s" % (name, r.stderr))
        gnu = r.stdout.split()
        with tarfile.open(path) as t:
            members = t.getmembers()
            tc.assertEqual([m.name for m in members], gnu, name)
            here = {}
            for m in members:
                key, ext = m.name.split(".", 1)
                here.setdefault(key, {})[ext] = hashlib.sha256(t.extractfile(m).read()).hexdigest()
        for key, v in here.items():
            tc.assertNotIn(key, samples, "sample %s in two shards" % key)
            samples[key] = v
    return samples


class Corpora:
    """The corpora the stages start from, built once under tmp (the server
    must outlive them) and copied for every run:
      empty    a new corpus
      listed   40 images behind a 30 ms delay (/slow), not fetched
      listed_slow  the same behind 150 ms
      fetched  120 small stored images (fetch --image-size 64), 3 captions each
      queried  fetched plus a query list (WORDS)
      wat      not a corpus: a generated 16 MB (uncompressed) WAT file"""

    def __init__(self, tmp, srv):
        self.tmp, self.srv, self.done = tmp, srv, {}

    def get(self, name):
        if name in self.done:
            return self.done[name]
        d = os.path.join(self.tmp, "base-" + name)
        if name == "empty":
            init(d)
        elif name in ("listed", "listed_slow"):
            init(d)
            add_list(d, self.srv.base, 40, 1, slow_ms=30 if name == "listed" else 150,
                     tmpdir=self.tmp)
        elif name == "fetched":
            init(d)
            add_list(d, self.srv.base, 120, 3, tmpdir=self.tmp)
            r = run(["-q", "-C", d] + fetch_args("--image-size", "64", "--per-host", "8"))
            assert r.returncode == 0, r.stderr
        elif name == "queried":
            copy_corpus(self.get("fetched"), d)
            q = os.path.join(self.tmp, "queries.txt")
            with open(q, "w") as f:
                f.write("\n".join(WORDS) + "\n")
            r = run(["-q", "-C", d, "queries", "import", q])
            assert r.returncode == 0, r.stderr
        elif name == "wat":
            d = os.path.join(self.tmp, "g.wat.gz")
            subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_crawl.py"),
                            os.path.join(self.tmp, "g.warc.gz"), d, "16", "7"], check=True,
                           capture_output=True)
        else:
            raise ValueError(name)
        self.done[name] = d
        return d


class ServerCase(unittest.TestCase):
    """A test class whose tests share one fixture server (started by the
    first test that runs, with the keyword arguments SERVER_ARGS), one
    temporary folder (cls.tmp, named with TMP_PREFIX) and the Corpora built
    in it (cls.corpora); all are removed after the last test. A subclass's
    setUp calls this one first (it skips without ../shared)."""

    TMP_PREFIX = "witpipe-"
    SERVER_ARGS = {}

    @classmethod
    def setUpClass(cls):
        cls.srv = None
        cls.corpora = None
        cls.tmp = tempfile.mkdtemp(prefix=cls.TMP_PREFIX)

    @classmethod
    def tearDownClass(cls):
        if cls.srv is not None:
            cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        need_fixtures(self)
        cls = type(self)
        if cls.srv is None:
            cls.srv = Server(**cls.SERVER_ARGS)
            cls.corpora = Corpora(cls.tmp, cls.srv)


def make_gappy_store(corpus, nfiles, gap=997):
    """Rewrites corpus's store as nfiles data files, each holding its share
    of the stored images with gap junk bytes before each (what killed runs
    leave), and points the catalog at the new places. Returns nfiles."""
    d = os.path.join(corpus, "store")
    db = sqlite3.connect(os.path.join(corpus, "catalog.db"))
    rows = db.execute("SELECT id, store_file, store_offset, bytes FROM images "
                      "WHERE store_file IS NOT NULL ORDER BY id").fetchall()
    data = {}
    for iid, f, off, n in rows:
        with open(os.path.join(d, "%06d.dat" % f), "rb") as fh:
            fh.seek(off)
            data[iid] = fh.read(n)
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    files = [bytearray() for _ in range(nfiles)]
    moves = []
    for k, (iid, _, _, _) in enumerate(rows):
        buf = files[k % nfiles]
        buf += b"\xa5" * gap
        moves.append((k % nfiles + 1, len(buf), iid))
        buf += data[iid]
    for i, buf in enumerate(files):
        with open(os.path.join(d, "%06d.dat" % (i + 1)), "wb") as fh:
            fh.write(buf)
    db.executemany("UPDATE images SET store_file = ?, store_offset = ? WHERE id = ?", moves)
    db.commit()
    db.close()
    return nfiles
