"""tests/integration/test_store_compact.py: `witpipe store compact`
reclaims the store bytes killed runs left, and is crash-safe itself.

  - after a fetch killed with SIGKILL, the bytes reclaimed equal the
    orphaned bytes (the store's size minus the bytes catalog rows point
    at, computed here from the files and the catalog), every stored image
    still reads back matching its sha256, and the fetch then completes;
  - kill -9 at seeded random moments during a compaction of a store of
    many files with gaps, then a re-run: no image lost or changed, every
    sha256 verified, the store exactly its live bytes, shards written from
    it hold every sample once;
  - what a crash between the steps leaves (a copy no row points at yet, an
    old file no row points at any more) is removed by the next run;
  - --dry-run reports the same numbers and changes nothing.
"""

import json
import os
import random
import shutil
import sys
import time
import unittest

from tests.integration import stagekit as K

SEED = int(os.environ.get("WITPIPE_SOAK_SEED") or random.SystemRandom().randrange(1 << 31))


class StoreCompact(K.ServerCase):
    TMP_PREFIX = "witpipe-compact-"

    def setUp(self):
        super().setUp()
        self.rng = random.Random("%d:%s" % (SEED, self._testMethodName))

    def compact(self, c, *extra, env=None):
        r = K.run(["-C", c, "store", "compact", "--json"] + list(extra), env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def stored(self, c):
        return sorted(K.db_rows(c, "SELECT id, sha256, bytes FROM images WHERE state = 'ok'"))

    def test_reclaims_the_orphaned_bytes_of_a_killed_fetch(self):
        c = os.path.join(self.tmp, "killed")
        orphan = 0
        for attempt in range(10):
            shutil.rmtree(c, ignore_errors=True)
            K.copy_corpus(self.corpora.get("listed"), c)
            # some images stored and committed first: compaction must keep them
            r = K.run(["-C", c] + K.fetch_args("--per-host", "4", "--limit", "10"))
            self.assertIn(r.returncode, (0, 1), r.stderr)
            self.assertGreater(K.live_bytes(c), 0)
            # then a fetch killed once it appended bytes it has not
            # committed (a small corpus is one commit at the end, so the
            # window is the whole run: no race with a fast machine)
            p = K.popen(["-C", c] + K.fetch_args("--per-host", "4"))
            while p.poll() is None:
                if sum(K.store_file_sizes(c).values()) > K.live_bytes(c):
                    break
                time.sleep(0.002)
            if p.poll() is not None:
                continue
            p.kill()
            p.communicate()
            self.assertEqual(p.returncode, -9)
            orphan = sum(K.store_file_sizes(c).values()) - K.live_bytes(c)
            if orphan > 0:
                break
        self.assertGreater(orphan, 0, "no kill left orphaned bytes in 10 tries")
        live = K.live_bytes(c)
        before = self.stored(c)
        dry = self.compact(c, "--dry-run")
        self.assertEqual(dry["bytes_reclaimed"], orphan)
        self.assertEqual(sum(K.store_file_sizes(c).values()), live + orphan)  # unchanged
        n = self.compact(c)
        self.assertEqual(n["bytes_reclaimed"], orphan)
        self.assertEqual(n["bytes_live"], live)
        self.assertEqual(n["bytes_after"], live)
        self.assertEqual(sum(K.store_file_sizes(c).values()), live)
        self.assertEqual(self.stored(c), before)
        K.check_catalog(self, c)  # every stored image matches its sha256
        self.assertEqual(self.compact(c)["bytes_reclaimed"], 0)
        r = K.run(["-C", c] + K.fetch_args("--per-host", "4"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(K.db_rows(c, "SELECT state, count(*) FROM images GROUP BY 1"),
                         [("ok", 40)])
        K.check_catalog(self, c)

    def test_kill_9_during_compaction_loses_nothing(self):
        base = os.path.join(self.tmp, "gappy")
        K.copy_corpus(self.corpora.get("fetched"), base)
        K.make_gappy_store(base, 40)
        want = self.stored(base)
        live = K.live_bytes(base)
        env = K.delay_env(20)
        ref = os.path.join(self.tmp, "gappy-ref")
        K.copy_corpus(base, ref)
        t0 = time.monotonic()
        n = self.compact(ref, env=env)
        span = time.monotonic() - t0
        self.assertEqual(n["files_rewritten"], 40)
        kills = 3 if K.is_asan() else 6
        for k in range(kills):
            c = os.path.join(self.tmp, "gappy-%d" % k)
            moment = self.rng.uniform(0.2, 0.9) * span
            if K.kill_at(base, c, ["-C", c, "store", "compact"], moment, env=env) is None:
                self.fail("no kill landed on a running compaction")
            K.check_catalog(self, c)  # readable and verified right after the kill
            self.assertEqual(self.stored(c), want)
            self.compact(c, env=env)
            K.check_catalog(self, c)
            self.assertEqual(self.stored(c), want)
            self.assertEqual(sum(K.store_file_sizes(c).values()), live, "kill %d" % k)
            self.assertEqual(self.compact(c)["bytes_reclaimed"], 0)
            out = os.path.join(c, "shards")
            r = K.run(["-q", "-C", c, "shard", "-o", out, "--per-shard", "100"])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(len(K.read_shards(self, out)), 360)
            shutil.rmtree(c)
        print("compact: %d kills in a %.2f s run (seed %d), nothing lost" % (kills, span, SEED),
              file=sys.stderr)

    def test_crash_leftovers_are_removed(self):
        c = os.path.join(self.tmp, "leftover")
        K.copy_corpus(self.corpora.get("fetched"), c)
        want = self.stored(c)
        live = K.live_bytes(c)
        d = os.path.join(c, "store")
        # a crash before the commit: a copy no row points at yet, numbered
        # above the rest; a crash after it: an old file no row points at
        shutil.copy(os.path.join(d, "000001.dat"), os.path.join(d, "000007.dat"))
        with open(os.path.join(d, "000003.dat"), "wb") as f:
            f.write(b"\x00" * 5000)
        n = self.compact(c)
        self.assertEqual(n["files_removed"], 2)
        self.assertEqual(n["bytes_reclaimed"], live + 5000)
        # left: the live file, and the empty one appends go to next
        self.assertEqual(sorted(k for k, v in K.store_file_sizes(c).items() if v > 0),
                         ["000001.dat"])
        self.assertEqual(self.stored(c), want)
        K.check_catalog(self, c)

    def test_corrupt_image_is_refused_and_its_file_kept(self):
        c = os.path.join(self.tmp, "corrupt")
        K.copy_corpus(self.corpora.get("fetched"), c)
        K.make_gappy_store(c, 2)
        f, off = K.db_rows(c, "SELECT store_file, store_offset FROM images WHERE state = 'ok' "
                              "ORDER BY id LIMIT 1")[0]
        path = os.path.join(c, "store", "%06d.dat" % f)
        with open(path, "r+b") as fh:
            fh.seek(off)
            b = fh.read(1)
            fh.seek(off)
            fh.write(bytes([b[0] ^ 0xff]))
        size = os.path.getsize(path)
        r = K.run(["-C", c, "store", "compact"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("do not match its sha256", r.stderr)
        self.assertEqual(os.path.getsize(path), size)
        self.assertGreater(K.db_rows(c, "SELECT count(*) FROM images WHERE store_file = ?",
                                     (f,))[0][0], 0)


if __name__ == "__main__":
    unittest.main()
