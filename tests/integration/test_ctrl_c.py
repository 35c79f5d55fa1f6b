"""tests/integration/test_ctrl_c.py: Ctrl-C (SIGINT) in the middle of each
stage (fetch, crawl --seeds, crawl --wat, encode, dedup, filter, balance,
shard, store compact), against the fixture server on 127.0.0.1.

For each: the signal is sent only once the stage has committed some of its
work and is still running (so the signal lands mid-work, or the test
fails); the process must then exit with status 1 within the bound (2 s as
the issue asks; a guard on a measured wait, widened under ASan or by
WITPIPE_CTRL_C_BOUND_S), its run recorded as stopped, the work committed
before the signal still in the catalog (and not all of it: the stage
really stopped early), the catalog intact; a re-run then completes.
Stages whose work on a test corpus is short get slow commits
(stagekit.delay_env)."""

import os
import signal
import sys
import time
import unittest

from tests.integration import stagekit as K


def bound_s():
    if os.environ.get("WITPIPE_CTRL_C_BOUND_S"):
        return float(os.environ["WITPIPE_CTRL_C_BOUND_S"])
    return 6.0 if K.is_asan() else 2.0


class CtrlC(K.ServerCase):
    TMP_PREFIX = "witpipe-ctrlc-"
    SERVER_ARGS = dict(pages=24, page_ms=120)

    def interrupt(self, base, args, progress, total, delay_ms=0, stage=None):
        """Runs `witpipe -C COPY args`, waits until progress(COPY) > 0,
        sends SIGINT and checks what the module docstring says; returns the
        corpus for more checks. total is the progress of a complete run."""
        c = os.path.join(self.tmp, "c-" + self._testMethodName)
        K.copy_corpus(base, c)
        env = K.delay_env(delay_ms)
        argv = ["-C", c] + [a.replace("{c}", c) for a in args]
        p = K.popen(argv, env=env)
        deadline = time.monotonic() + 120
        seen = 0
        while p.poll() is None and time.monotonic() < deadline:
            try:
                seen = progress(c)
            except Exception:  # the catalog is busy or not created yet
                seen = 0
            if seen > 0:
                break
            time.sleep(0.005)
        self.assertIsNone(p.poll(), "the run ended before the signal (progress %d)" % seen)
        self.assertGreater(seen, 0)
        p.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        try:
            err = p.communicate(timeout=bound_s())[1]
        except Exception:
            p.kill()
            p.communicate()
            self.fail("still running %.1f s after SIGINT" % bound_s())
        took = time.monotonic() - t0
        print("%s: exited %.3f s after SIGINT (bound %.1f s)" % (self._testMethodName, took,
                                                                  bound_s()), file=sys.stderr)
        self.assertEqual(p.returncode, 1, err)
        self.assertIn("stopped", err)
        last = K.db_rows(c, "SELECT stage, status FROM runs ORDER BY id DESC LIMIT 1")[0]
        if stage is not None:
            self.assertEqual(last[0], stage)
        self.assertEqual(last[1], "stopped", err)
        K.check_catalog(self, c)
        saved = progress(c)
        self.assertGreaterEqual(saved, seen, "work committed before the signal was lost")
        self.assertLess(saved, total, "the stage did not stop early")
        r = K.run(argv, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        K.check_catalog(self, c)
        self.assertEqual(progress(c), total)
        return c

    @staticmethod
    def count(sql):
        return lambda c: K.db_rows(c, sql)[0][0]

    def test_fetch(self):
        # fetch commits every second: 40 images at 150 ms, two at a time
        self.interrupt(self.corpora.get("listed_slow"), K.fetch_args("--per-host", "2"),
                       self.count("SELECT count(*) FROM images WHERE state != 'pending'"), 40,
                       stage="fetch")

    def test_crawl_seeds(self):
        seeds = os.path.join(self.tmp, "seeds.txt")
        with open(seeds, "w") as f:
            f.write(self.srv.base + "/slow?ms=120&file=p0.html\n")
        # the crawl commits every second: 24 pages at 120 ms, one at a time
        self.interrupt(self.corpora.get("empty"),
                       ["crawl", "--seeds", seeds, "--delay", "0", "--allow-net", "127.0.0.1/32",
                        "--max-depth", "100", "--concurrency", "1"],
                       self.count("SELECT count(*) FROM pages WHERE state = 'ok'"), 24,
                       stage="crawl")

    def test_crawl_wat(self):
        wat = self.corpora.get("wat")
        size = os.path.getsize(wat)

        def progress(c):
            rows = K.db_rows(c, "SELECT offset, done FROM archive_progress")
            return 0 if not rows else (size if rows[0][1] else rows[0][0])

        self.interrupt(self.corpora.get("empty"), ["crawl", "--wat", wat, "--batch", "16"],
                       progress, size, delay_ms=10, stage="crawl")

    def test_encode(self):
        K.need_fixtures(self, model=True)
        self.interrupt(self.corpora.get("fetched"),
                       ["encode", "--model", K.MODEL, "--batch", "8", "--shard-rows", "40"],
                       self.count("SELECT count(*) FROM embeddings"), 360, delay_ms=20,
                       stage="encode")

    def test_dedup(self):
        self.interrupt(self.corpora.get("fetched"),
                       ["dedup", "--exact", "--near", "--batch", "8", "--batch-delay-ms", "20",
                        "--no-report"],
                       self.count("SELECT count(*) FROM image_phash"), 120, stage="dedup")

    def test_filter(self):
        self.interrupt(self.corpora.get("fetched"),
                       ["filter", "--min-words", "3", "--min-side", "32", "--batch", "10"],
                       self.count("SELECT count(*) FROM decisions WHERE stage = 'filter'"), 360,
                       delay_ms=30, stage="filter")

    def test_balance(self):
        # balance matches captions against the query list first (a
        # "queries" run), then draws: either part may take the signal
        self.interrupt(self.corpora.get("queried"), ["balance", "--t", "20", "--seed", "7"],
                       self.count("SELECT (SELECT count(*) FROM pair_matched) + "
                                  "(SELECT count(*) FROM decisions WHERE stage = 'balance')"),
                       720, delay_ms=60)

    def test_shard(self):
        self.interrupt(self.corpora.get("fetched"),
                       ["shard", "-o", "{c}/shards", "--per-shard", "12"],
                       self.count("SELECT count(*) FROM shards WHERE done = 1"), 30, delay_ms=30,
                       stage="shard")

    def test_store_compact(self):
        # a store of many files with gaps, so compaction takes a while
        c = os.path.join(self.tmp, "gappy")
        K.copy_corpus(self.corpora.get("fetched"), c)
        n = K.make_gappy_store(c, 60)
        self.interrupt(c, ["store", "compact"],
                       self.count("SELECT coalesce(sum(json_extract(counts, '$.files_removed') + "
                                  "json_extract(counts, '$.files_rewritten')), 0) FROM runs "
                                  "WHERE stage = 'compact'"),
                       n, delay_ms=30, stage="compact")


if __name__ == "__main__":
    unittest.main()
