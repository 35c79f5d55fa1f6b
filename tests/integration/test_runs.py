"""tests/integration/test_runs.py: stage runs as `witpipe status` shows them,
through the binary: each stage's run count and last run (status from the
stage's outcome, params, counts, the error of a failed run), in the table
and in `status --json` (validated against schemas/status.schema.json), and
the counts a killed run leaves behind (reported with every commit).
"""
import gzip
import json
import os
import signal
import sqlite3
import subprocess
import tempfile
import unittest

from tests.integration import stagekit as K
from tests.integration.schema_check import validate

BIN = os.environ.get("WITPIPE_BIN", "build/witpipe")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGES = os.path.join(ROOT, "tests", "data", "images")


def run(*args, **kw):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=120, **kw)


class RunsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="witpipe-runs.")
        self.corpus = os.path.join(self.tmp.name, "c")
        self.assertEqual(run("init", self.corpus).returncode, 0)

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, data):
        p = os.path.join(self.tmp.name, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def status_json(self):
        r = run("-C", self.corpus, "status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        st = json.loads(r.stdout)
        self.assertEqual(validate("status.schema.json", st), [])
        return st

    def pairs(self):
        db = sqlite3.connect(os.path.join(self.corpus, "catalog.db"))
        try:
            return db.execute("SELECT count(*) FROM pairs").fetchone()[0]
        finally:
            db.close()

    def test_each_stage_shows_its_run_count_and_last_run(self):
        good = self.write("good.tsv", b"url\tcaption\n"
                          b"http://h/1.jpg\tone\nhttp://h/2.jpg\ttwo\nftp://h/3.jpg\tbad\n")
        r = run("-C", self.corpus, "add", "--url-col", "url", good)
        self.assertEqual(r.returncode, 0, r.stderr)
        st = self.status_json()
        add = st["runs"]["add"]
        self.assertEqual(add["runs"], 1)
        self.assertEqual(add["last"]["status"], "done")
        self.assertEqual(add["last"]["params"]["inputs"], [good])
        self.assertEqual(add["last"]["params"]["url_col"], "url")
        self.assertEqual(add["last"]["counts"]["added"], 2)
        self.assertEqual(add["last"]["counts"]["bad"], 1)
        self.assertIsInstance(add["last"]["ended_at"], int)
        self.assertGreaterEqual(add["last"]["ended_at"], add["last"]["started_at"])
        self.assertNotIn("error", add["last"])

        # A second add that fails: the count goes up, the last run is it.
        body = gzip.compress(b"url\tcaption\n" + b"".join(
            b"http://h/x%d.jpg\tcaption %d\n" % (i, i) for i in range(20000)))
        cut = self.write("cut.tsv.gz", body[: len(body) // 2])
        r = run("-C", self.corpus, "add", cut)
        self.assertEqual(r.returncode, 1)
        st = self.status_json()
        add = st["runs"]["add"]
        self.assertEqual(add["runs"], 2)
        self.assertEqual(add["last"]["status"], "failed")
        self.assertEqual(add["last"]["counts"]["files_failed"], 1)
        self.assertIn("could not be read", add["last"]["error"])

        # Another stage gets its own entry.
        r = run("-C", self.corpus, "add", "--files", IMAGES)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = os.path.join(self.tmp.name, "shards")
        r = run("-C", self.corpus, "shard", "-o", out, "--per-shard", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        st = self.status_json()
        self.assertEqual(st["runs"]["add"]["runs"], 3)
        shard = st["runs"]["shard"]
        self.assertEqual(shard["runs"], 1)
        self.assertEqual(shard["last"]["status"], "done")
        self.assertEqual(shard["last"]["params"]["per_shard"], 2)
        self.assertEqual(shard["last"]["params"]["output"], out)
        self.assertGreater(shard["last"]["counts"]["shards"], 0)
        self.assertEqual(shard["last"]["counts"]["written"], shard["last"]["counts"]["shards"])

        # The table lists the same.
        r = run("-C", self.corpus, "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        i = lines.index("runs")
        self.assertRegex(lines[i + 1], r"^  add\s+3$")
        self.assertIn("done", lines[i + 2])
        self.assertRegex(r.stdout, r"  shard\s+1\n    last: run \d+, done, started \S+Z, ended \S+Z")

    def test_a_killed_run_shows_the_counts_of_its_last_commit(self):
        proc = K.add_stdin(self.corpus, 3000, 500, stderr=subprocess.DEVNULL)
        seen = K.wait_for(self.pairs, 2500)
        self.assertGreaterEqual(seen, 2500)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdin.close()
        st = self.status_json()
        last = st["runs"]["add"]["last"]
        self.assertEqual(last["status"], "running")
        self.assertIsNone(last["ended_at"])
        # The counts commit with each batch: they match what the catalog holds.
        self.assertEqual(last["counts"]["added"], self.pairs())
        self.assertEqual(last["counts"]["added"] % 500, 0)

    def test_status_has_no_runs_before_any_stage_ran(self):
        st = self.status_json()
        self.assertNotIn("runs", st)


if __name__ == "__main__":
    unittest.main()
