"""tests/integration/test_fetch_cli.py: `witpipe fetch` as a program,
against the fixture server (build/fixture_server on 127.0.0.1): recorded
state per case, status --json, the per-host cap from the server's log,
kill -9 at a random moment then resume, Ctrl-C then resume, usage errors.

Candidates come from `witpipe add`; after kill -9 + resume the shards are
read back to check that no sample is missing or duplicated."""

import hashlib
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

from tests.integration import stagekit as K

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("WITPIPE_BIN", os.path.join(ROOT, "build", "witpipe"))
SERVER = os.path.join(os.path.dirname(BIN), "fixture_server")
SHARED = os.environ.get("WITPIPE_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
IMAGES = os.path.join(SHARED, "testdata", "images")


def need_fixtures(test):
    # Without ../shared: a loud skip. With it, missing images are a failure.
    if not os.path.isdir(SHARED):
        print("SKIP: %s needs %s" % (test.id(), IMAGES))
        test.skipTest("no ../shared")
    if not os.path.isdir(IMAGES):
        raise AssertionError("test images missing: %s (../shared is there)" % IMAGES)
    if not os.path.exists(SERVER):
        raise AssertionError("fixture server not built: %s" % SERVER)


class Server(K.ServerProcess):
    """The fixture server over the shared test images."""

    def __init__(self):
        super().__init__(IMAGES)


def run(args, **kw):
    return subprocess.run([BIN] + args, capture_output=True, text=True, timeout=300, **kw)


class FetchCli(unittest.TestCase):
    def setUp(self):
        need_fixtures(self)
        self.srv = Server()
        self.dir = tempfile.mkdtemp(prefix="witpipe-fetch-")
        self.corpus = os.path.join(self.dir, "c")
        r = run(["init", self.corpus])
        self.assertEqual(r.returncode, 0, r.stderr)

    def tearDown(self):
        if hasattr(self, "srv"):
            self.srv.stop()
        if hasattr(self, "dir"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def add(self, paths):
        """Adds one candidate pair per path with `witpipe add`; returns
        {path: image id}."""
        urls = {p: (p if p.startswith("http") else self.srv.base + p) for p in paths}
        lst = os.path.join(self.dir, "list%d.tsv" % len(os.listdir(self.dir)))
        with open(lst, "w") as f:
            f.write("url\tcaption\n")
            for i, p in enumerate(paths):
                f.write("%s\tcaption %d\n" % (urls[p], i))
        r = run(["-q", "-C", self.corpus, "add", lst])
        self.assertEqual(r.returncode, 0, r.stderr)
        db = sqlite3.connect(os.path.join(self.corpus, "catalog.db"))
        ids = {p: db.execute("SELECT id FROM images WHERE url = ?", (u,)).fetchone()[0]
               for p, u in urls.items()}
        db.close()
        return ids

    def rows(self):
        db = sqlite3.connect(os.path.join(self.corpus, "catalog.db"))
        db.row_factory = sqlite3.Row
        rows = {r["id"]: dict(r) for r in db.execute("SELECT * FROM images")}
        db.close()
        return rows

    def fetch(self, *extra, **kw):
        return run(["-C", self.corpus, "fetch", "--allow-net", "127.0.0.1/32",
                    "--low-speed", "100", "--low-speed-time", "1"] + list(extra), **kw)

    def check_consistent(self, rows):
        """Every image is in exactly one final state, and every ok image's
        stored bytes read back and match their sha256."""
        for r in rows.values():
            self.assertIn(r["state"], ("ok", "error"), r)
            if r["state"] == "ok":
                path = os.path.join(self.corpus, "store", "%06d.dat" % r["store_file"])
                with open(path, "rb") as f:
                    f.seek(r["store_offset"])
                    data = f.read(r["bytes"])
                self.assertEqual(len(data), r["bytes"])
                self.assertEqual(hashlib.sha256(data).hexdigest(), r["sha256"])
            else:
                self.assertIsNotNone(r["error_class"])
                self.assertIsNone(r["store_file"])

    def test_open_file_limit_checked_at_start(self):
        """--parallel beyond what the open-file limit allows fails at start
        with the ulimit to ask for, before any request (issue 16 item 13)."""
        import resource
        self.add(["/img/chelsea.jpg"])

        def low_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

        before = self.srv.stats()["requests"]
        r = run(["-C", self.corpus, "fetch", "--allow-net", "127.0.0.1/32", "--parallel", "500"],
                preexec_fn=low_limit)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("ulimit -n 1064", r.stderr)
        self.assertIn("fetch --parallel 500", r.stderr)
        # no request reached the server: only the stats calls themselves
        self.assertEqual(self.srv.stats()["requests"], before + 1)

    def test_cases_recorded_with_expected_state(self):
        port = self.srv.port
        cases = {
            "/img/chelsea.jpg": ("ok", None),
            "/img/chelsea.webp": ("ok", None),
            "/img/logo_rgba.png": ("ok", None),
            "/img/chelsea_cmyk.jpg": ("ok", None),
            "/img/coffee_progressive.jpg?ct=text/html": ("ok", None),
            "/status?code=404": ("error", "http_4xx"),
            "/flaky?key=cli500&n=1&code=500": ("ok", None),
            "/flaky?key=cli429&n=1&code=429&ra=1": ("ok", None),
            "/html": ("error", "not_an_image"),
            "/img/truncated.jpg": ("error", "corrupt"),
            "/bomb": ("error", "too_many_pixels"),
            "/big?n=3000000&cl=0": ("error", "too_large"),
            "/big?n=3000000&cl=1": ("error", "too_large"),
            "/gzbomb?n=30000000": ("error", "too_large"),
            "/trickle?n=5000&delay_ms=400": ("error", "timeout"),
            "/redir?n=3&file=rocket.jpg": ("ok", None),
            "/loop": ("error", "too_many_redirects"),
            "/redirect?to=http://127.0.0.2:%d/img/chelsea.jpg" % port: ("error", "blocked_address"),
            "/xrobots?v=noai": ("error", "opt_out"),
            "/xrobots?v=otherbot:%20noai": ("ok", None),
            "/reset?key=clireset&n=-1": ("error", "reset"),
        }
        ids = self.add(list(cases))
        r = self.fetch("--max-bytes", "2000000", "--retries", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = self.rows()
        for path, (state, cls) in cases.items():
            row = rows[ids[path]]
            self.assertEqual((row["state"], row["error_class"]), (state, cls), (path, row))
        self.assertEqual(rows[ids["/xrobots?v=noai"]]["opt_out"], "noai")
        self.assertEqual(rows[ids["/img/chelsea.jpg"]]["width"], 256)
        self.check_consistent(rows)
        st = run(["-C", self.corpus, "status", "--json"])
        self.assertEqual(st.returncode, 0, st.stderr)
        images = json.loads(st.stdout)["images"]
        self.assertEqual(images.get("ok"), sum(1 for s, _ in cases.values() if s == "ok"))
        self.assertEqual(images.get("error/too_large"), 3)
        self.assertNotIn("pending", images)
        # A second run finds nothing to do.
        r = self.fetch()
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_per_host_cap_from_server_log(self):
        self.add(["/slow?ms=2&file=tiny_48.jpg&i=%d" % i for i in range(1000)])
        r = self.fetch("--per-host", "3", "--parallel", "64", "--resize-mode", "no")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = self.rows()
        self.assertEqual(sum(1 for x in rows.values() if x["state"] == "ok"), 1000)
        host = "127.0.0.1:%d" % self.srv.port
        seen = self.srv.stats()["hosts"][host]
        self.assertGreaterEqual(seen, 1)
        self.assertLessEqual(seen, 3)

    def test_kill9_then_resume(self):
        n = 80
        self.add(["/slow?ms=150&file=chelsea.jpg&i=%d" % i for i in range(n)])
        p = subprocess.Popen([BIN, "-C", self.corpus, "fetch", "--allow-net", "127.0.0.1/32",
                              "--per-host", "4"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        p.send_signal(signal.SIGKILL)
        p.wait()
        rows = self.rows()
        done_before = sum(1 for x in rows.values() if x["state"] != "pending")
        self.assertLess(done_before, n)  # it really was killed mid-run
        for r in rows.values():  # committed rows are already consistent
            if r["state"] == "pending":
                self.assertIsNone(r["sha256"])
        self.check_consistent({k: v for k, v in rows.items() if v["state"] != "pending"})
        r = self.fetch("--per-host", "4")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = self.rows()
        self.assertEqual(len(rows), n)
        self.assertTrue(all(x["state"] == "ok" for x in rows.values()))
        self.check_consistent(rows)
        # Each image stored at a distinct place: no duplicates.
        places = {(x["store_file"], x["store_offset"]) for x in rows.values()}
        self.assertEqual(len(places), n)
        # The shards hold every sample exactly once, with the stored bytes.
        out = os.path.join(self.dir, "shards")
        r = run(["-q", "-C", self.corpus, "shard", "-o", out])
        self.assertEqual(r.returncode, 0, r.stderr)
        keys, shas = [], set()
        for name in sorted(os.listdir(out)):
            if name.endswith(".tar"):
                with tarfile.open(os.path.join(out, name)) as t:
                    for m in t.getmembers():
                        if m.name.endswith(".jpg"):
                            keys.append(m.name[:-4])
                            shas.add(hashlib.sha256(t.extractfile(m).read()).hexdigest())
        self.assertEqual(len(keys), n)
        self.assertEqual(len(set(keys)), n)
        self.assertEqual(shas, {x["sha256"] for x in rows.values()})

    def test_ctrl_c_saves_and_rerun_completes(self):
        n = 60
        self.add(["/slow?ms=200&file=chelsea.jpg&i=%d" % i for i in range(n)])
        p = subprocess.Popen([BIN, "-C", self.corpus, "fetch", "--allow-net", "127.0.0.1/32",
                              "--per-host", "2"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 1, err)
        self.assertIn("stopped", err)
        rows = self.rows()
        pending = sum(1 for x in rows.values() if x["state"] == "pending")
        self.assertGreater(pending, 0)
        self.check_consistent({k: v for k, v in rows.items() if v["state"] != "pending"})
        db = sqlite3.connect(os.path.join(self.corpus, "catalog.db"))
        status = db.execute("SELECT status FROM runs WHERE stage = 'fetch'").fetchall()
        db.close()
        self.assertEqual(status, [("stopped",)])
        r = self.fetch("--per-host", "4")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = self.rows()
        self.assertTrue(all(x["state"] == "ok" for x in rows.values()))
        self.check_consistent(rows)

    def test_usage_errors(self):
        for args in (["--parallel", "0"], ["--allow-net", "nonsense"],
                     ["--resize-mode", "stretch"], ["--ignore-directive", "nofollow"],
                     ["--bogus"], ["extra"]):
            r = run(["-C", self.corpus, "fetch"] + args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)


if __name__ == "__main__":
    unittest.main()
