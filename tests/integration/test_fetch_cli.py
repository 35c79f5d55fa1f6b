"""tests/integration/test_fetch_cli.py: `witpipe fetch` as a program,
against the fixture server (build/fixture_server on 127.0.0.1): recorded
state per case, status --json, the per-host cap from the server's log,
kill -9 at a random moment then resume, Ctrl-C then resume, usage errors.

Candidates are inserted with Python's sqlite3 into the schema's images and
pairs tables (the `add` command lives on another branch)."""

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import unittest
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("WITPIPE_BIN", os.path.join(ROOT, "build", "witpipe"))
SERVER = os.path.join(os.path.dirname(BIN), "fixture_server")
SHARED = os.environ.get("WITPIPE_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
IMAGES = os.path.join(SHARED, "testdata", "images")


def need_fixtures(test):
    if not os.path.isdir(IMAGES):
        print("SKIP: %s needs %s" % (test.id(), IMAGES))
        test.skipTest("no test images")
    if not os.path.exists(SERVER):
        raise AssertionError("fixture server not built: %s" % SERVER)


class Server:
    def __init__(self):
        self.p = subprocess.Popen([SERVER, IMAGES], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.port = int(self.p.stdout.readline())
        self.base = "http://127.0.0.1:%d" % self.port

    def stats(self):
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
        """Adds one candidate pair per path; returns {path: image id}."""
        db = sqlite3.connect(os.path.join(self.corpus, "catalog.db"))
        ids = {}
        now = int(time.time())
        with db:
            for p in paths:
                url = p if p.startswith("http") else self.srv.base + p
                text = "caption"
                uid = hashlib.sha256(url.encode() + b"\0" + text.encode()).hexdigest()[:32]
                cur = db.execute("INSERT INTO images(url) VALUES (?)", (url,))
                ids[p] = cur.lastrowid
                db.execute("INSERT INTO pairs(uid, image_id, text, added_at) VALUES (?,?,?,?)",
                           (uid, cur.lastrowid, text, now))
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
