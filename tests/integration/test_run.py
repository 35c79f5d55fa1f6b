"""tests/integration/test_run.py: `witpipe run PIPELINE.json`.

- Every option of every pipeline stage is accepted as a config key of the
  same name and lands on that stage's command line (the options are read
  from each command's --help, which test_cli checks is generated from its
  option table).
- Config errors name the key and its path, and nothing runs.
- A pipeline (add -> fetch -> shard, against the fixture server) runs end to
  end and gives the same shards as the commands run by hand; run again, every
  step is skipped; with one stage's options changed, that stage and those
  after it run again, the ones before are skipped.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from tests.integration.schema_check import validate
from tests.integration.test_export import shard_samples
from tests.integration.test_fetch_cli import Server, need_fixtures, run

STAGES = ["add", "crawl", "fetch", "encode", "shard", "export"]


def options_of(stage):
    """[(name, takes_value)] from `witpipe STAGE --help`."""
    r = run([stage, "--help"])
    assert r.returncode == 0, r.stderr
    opts = []
    for m in re.finditer(r"^\s+(?:-\w, )?--([a-z0-9-]+)(?: (\S+))?(?:\s{2,}|$)", r.stdout, re.M):
        if m.group(1) != "help":
            # "--warc FILE..." is a flag whose files are the positional args
            value = m.group(2) is not None and not m.group(2).endswith("...")
            opts.append((m.group(1), value))
    return opts


class RunCli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="witpipe-run-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def config(self, obj, name="p.json"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            json.dump(obj, f)
        return path

    def test_every_option_is_a_config_key(self):
        corpus = os.path.join(self.dir, "c")
        for stage in STAGES + [s for s in ("dedup", "filter", "balance", "audit")
                               if run([s, "--help"]).returncode == 0]:
            opts = options_of(stage)
            self.assertGreater(len(opts), 0, stage)
            st = {"stage": stage, "args": ["x"]}
            for name, value in opts:
                st[name] = "7" if value else True
            # the help shows a flag's positional files as "--warc FILE..." and
            # a list value as "--keep-cols A,B,...": run itself says which
            for _ in range(len(opts) + 1):
                cfg = self.config({"stages": [st]})
                r = run(["-C", corpus, "run", "--dry-run", cfg])
                m = re.search(r"\.([a-z0-9-]+): (a flag takes true|--\S+ takes a string)",
                              r.stderr)
                if r.returncode == 0 or not m:
                    break
                flag = m.group(2).startswith("a flag")
                st[m.group(1)] = True if flag else "7"
                opts = [(n, (not flag) if n == m.group(1) else v) for n, v in opts]
            self.assertEqual(r.returncode, 0, (stage, r.stderr))
            line = [l for l in r.stdout.splitlines() if re.match(r"\s*1\. ", l)][0]
            for name, value in opts:
                want = " --%s 7" % name if value else " --%s" % name
                self.assertIn(want, line + " ", (stage, name))
            self.assertTrue(line.endswith(" -- x"), line)
        self.assertFalse(os.path.exists(corpus), "a dry run created the corpus")

    def test_part_is_a_config_key_of_every_item_stage(self):
        """--part I/N (docs/scale-out.md) on every item-by-item stage, and
        so a config key "part" that runs as --part."""
        corpus = os.path.join(self.dir, "c")
        for stage in ("add", "crawl", "fetch", "dedup", "encode", "filter", "balance", "shard"):
            self.assertIn(("part", True), options_of(stage), stage)
            cfg = self.config({"stages": [{"stage": stage, "part": "2/3", "args": ["x"]}]})
            r = run(["-C", corpus, "run", "--dry-run", cfg])
            self.assertEqual(r.returncode, 0, (stage, r.stderr))
            self.assertIn("%s --part 2/3 -- x" % stage, r.stdout, stage)

    def test_config_errors_name_key_and_path(self):
        corpus = os.path.join(self.dir, "c")
        cases = [
            ({"stages": [{"stage": "fetch", "paralel": 4}]},
             "$.stages[0].paralel: fetch has no option --paralel (did you mean parallel?)"),
            ({"stages": [{"stage": "add"}, {"stage": "nope"}]},
             "$.stages[1].stage: 'nope' is not a pipeline stage"),
            ({"stages": [{"stage": "status"}]}, "$.stages[0].stage: 'status' is not"),
            ({"stages": [{"parallel": 4}]}, "$.stages[0].stage: missing"),
            ({"stages": [{"stage": "fetch", "parallel": {"a": 1}}]},
             "$.stages[0].parallel: --parallel takes a string or a number"),
            ({"stages": [{"stage": "shard", "shuffle": True}]},
             "$.stages[0].shuffle: --shuffle takes a string or a number"),
            ({"stages": [{"stage": "export", "all": "yes"}]},
             "$.stages[0].all: a flag takes true or false"),
            ({"stages": [{"stage": "add", "args": "list.tsv"}]},
             "$.stages[0].args: a list of strings"),
            ({"stages": []}, "$.stages: a non-empty list"),
            ({"stage": []}, "$.stage: unknown key"),
            ([1, 2], "$: a pipeline is a JSON object"),
        ]
        for obj, msg in cases:
            r = run(["-C", corpus, "run", self.config(obj)])
            self.assertEqual(r.returncode, 2, (obj, r.stderr))
            self.assertIn(msg, r.stderr, obj)
        path = os.path.join(self.dir, "bad.json")
        with open(path, "w") as f:
            f.write('{"stages": [\n {"stage": "add",}]}')
        r = run(["-C", corpus, "run", path])
        self.assertEqual(r.returncode, 2)
        self.assertIn("line 2", r.stderr)
        self.assertFalse(os.path.exists(corpus), "a bad config created the corpus")

    def test_pipeline_runs_skips_and_reruns(self):
        need_fixtures(self)
        srv = Server()
        try:
            lst = os.path.join(self.dir, "list.tsv")
            with open(lst, "w") as f:
                f.write("url\tcaption\n")
                for i, g in enumerate(["astronaut.jpg", "chelsea.jpg", "rocket.jpg",
                                       "motorcycle.png", "coffee_progressive.jpg"]):
                    f.write("%s/img/%s\tphoto %d\n" % (srv.base, g, i))
                f.write("%s/status?code=404\tgone\n" % srv.base)
            corpus = os.path.join(self.dir, "corpus")
            out = os.path.join(self.dir, "shards")
            stages = [
                {"stage": "add", "args": [lst]},
                {"stage": "fetch", "allow-net": "127.0.0.1/32", "retries": 0,
                 "image-size": 128, "resize-mode": "border"},
                {"stage": "shard", "output": out, "per-shard": 2},
            ]
            self.assertEqual(validate("pipeline.schema.json", {"corpus": corpus, "stages": stages}),
                             [])
            cfg = self.config({"corpus": corpus, "stages": stages})
            r = run(["run", cfg])
            self.assertEqual(r.returncode, 0, r.stderr)
            got = shard_samples(out)
            self.assertEqual(len(got), 5)

            # the same by hand, in another corpus
            hand = os.path.join(self.dir, "hand")
            hout = os.path.join(self.dir, "hshards")
            for args in (["init", hand], ["-C", hand, "add", lst],
                         ["-C", hand, "fetch", "--allow-net", "127.0.0.1/32", "--retries", "0",
                          "--image-size", "128", "--resize-mode", "border"],
                         ["-C", hand, "shard", "-o", hout, "--per-shard", "2"]):
                self.assertIn(run(args).returncode, (0, 1))
            self.assertEqual(sorted(os.listdir(out)), sorted(os.listdir(hout)))
            for name in os.listdir(out):
                if name.endswith(".tar"):
                    with open(os.path.join(out, name), "rb") as a, \
                            open(os.path.join(hout, name), "rb") as b:
                        self.assertEqual(a.read(), b.read(), name)

            # again: every step skipped
            r = run(["run", "--dry-run", cfg])
            self.assertEqual(r.stdout.count("[done: skip]"), 3, r.stdout)
            r = run(["run", cfg])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr.count("skipped"), 3, r.stderr)

            # the shard step changed: only it runs
            stages[2]["per-shard"] = 3
            cfg = self.config({"corpus": corpus, "stages": stages})
            r = run(["run", "--dry-run", cfg])
            self.assertEqual(r.stdout.count("[done: skip]"), 2, r.stdout)
            self.assertIn("shard    [will run]", r.stdout)
            os.makedirs(os.path.join(self.dir, "old"))
            for name in os.listdir(out):
                shutil.move(os.path.join(out, name), os.path.join(self.dir, "old"))
            r = run(["run", cfg])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(len([n for n in os.listdir(out) if n.endswith(".tar")]), 2)
            self.assertEqual(sorted(shard_samples(out)), sorted(got))

            # a failing step stops the pipeline with its status
            bad = self.config({"corpus": corpus, "stages": [
                {"stage": "add", "args": [os.path.join(self.dir, "missing.tsv")]},
                {"stage": "shard", "output": out}]}, "bad.json")
            r = run(["run", bad])
            self.assertEqual(r.returncode, 1)
            self.assertIn("step 1/2 add failed; later steps not run", r.stderr)
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main()
