"""tests/integration/test_slurm_scripts.py: `witpipe slurm` without Slurm.

- The generated scripts' text: a job array of N tasks for the per-part
  stages with one log per task, "part": "I/N" on the first of them (add,
  by host since fetch follows; the later ones do all of their part
  corpus), a merge job over all N
  part corpora, one job per global stage with its own resources, and
  submit.sh chaining each job on the one before with afterok.
- --submit with a stand-in sbatch on PATH: the job ids printed and the
  dependency each job was submitted with.
- The scripts run by hand in Slurm's order (each array task with its
  SLURM_ARRAY_TASK_ID) give exactly the shards of `witpipe run` over the
  same pipeline in one process.
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
from tests.integration.test_fetch_cli import BIN, Server, need_fixtures, run

IMGS = ["astronaut.jpg", "chelsea.jpg", "rocket.jpg", "motorcycle.png", "coffee_progressive.jpg",
        "camera_gray.jpg", "logo_rgba.png", "hubble_deep_field.jpg"]


def read(path):
    with open(path) as f:
        return f.read()


def write_pipeline(dirname, base, corpus, shards, name="pipeline.json"):
    """A small pipeline over the fixture server: add dirname/list.tsv ->
    fetch -> shard -> export. Returns the config's path (dirname/name)."""
    lst = os.path.join(dirname, "list.tsv")
    with open(lst, "w") as f:
        f.write("url\tcaption\n")
        for i, g in enumerate(IMGS):
            f.write("%s/img/%s\tphoto %d of %s\n" % (base, g, i, g))
        f.write("%s/status?code=404\tgone\n" % base)
    cfg = {"corpus": corpus, "stages": [
        {"stage": "add", "args": [lst]},
        {"stage": "fetch", "allow-net": "127.0.0.1/32", "retries": 0, "image-size": 128,
         "resize-mode": "border"},
        {"stage": "shard", "output": shards, "per-shard": 3},
        {"stage": "export", "output": corpus + "-export.jsonl", "all": True},
    ]}
    path = os.path.join(dirname, name)
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def tar_bytes(outdir):
    got = {}
    for n in sorted(os.listdir(outdir)):
        if n.endswith(".tar"):
            with open(os.path.join(outdir, n), "rb") as f:
                got[n] = f.read()
    return got


def sbatch_lines(path):
    return [l[len("#SBATCH "):] for l in read(path).splitlines()
            if l.startswith("#SBATCH ")]


class SlurmScripts(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="witpipe-slurm-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def generate(self, cfg, parts, *extra):
        out = os.path.join(self.dir, "jobs")
        r = run(["slurm", cfg, "--parts", str(parts), "-o", out] + list(extra), cwd=self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        return out, r

    def test_script_text(self):
        corpus = os.path.join(self.dir, "corpus")
        cfg = write_pipeline(self.dir, "http://127.0.0.1:1", corpus, os.path.join(self.dir, "s"))
        out, r = self.generate(cfg, 4, "--partition", "cpu", "--resources", "shard=3,5G,1:00:00")
        self.assertNotIn("has no --part", r.stderr)
        names = sorted(os.listdir(out))
        self.assertEqual([n for n in names if n.endswith(".sbatch")],
                         ["01-parts.sbatch", "02-merge.sbatch", "03-shard.sbatch",
                          "04-export.sbatch"])
        self.assertEqual([n for n in names if n.startswith("part-")],
                         ["part-%d.json" % i for i in range(1, 5)])
        arr = sbatch_lines(os.path.join(out, "01-parts.sbatch"))
        self.assertIn("array=1-4", " ".join(arr))
        self.assertIn("--output=%s/logs/parts-%%a.log" % out, arr)
        self.assertIn("--partition=cpu", arr)
        self.assertIn("--chdir=%s" % self.dir, arr)
        text = read(os.path.join(out, "01-parts.sbatch"))
        self.assertIn("SLURM_ARRAY_TASK_ID", text)
        self.assertIn('-C "%s/parts/part-$I-of-4" run "%s/part-$I.json"' % (out, out), text)
        for i in range(1, 5):
            pc = json.loads(read(os.path.join(out, "part-%d.json" % i)))
            self.assertEqual(validate("pipeline.schema.json", pc), [])
            self.assertEqual(pc["corpus"], "%s/parts/part-%d-of-4" % (out, i))
            self.assertEqual([s["stage"] for s in pc["stages"]], ["add", "fetch"])
            # add splits, by host since fetch follows; fetch then takes all
            # of its part corpus (its pairs are the part's)
            self.assertEqual(pc["stages"][0]["part"], "%d/4" % i)
            self.assertEqual(pc["stages"][0]["part-by"], "host")
            self.assertNotIn("part", pc["stages"][1])
        merge = read(os.path.join(out, "02-merge.sbatch"))
        self.assertIn("merge --skip-merged", merge)
        self.assertIn("'%s'" % corpus, merge)
        for i in range(1, 5):
            self.assertIn("%s/parts/part-%d-of-4" % (out, i), merge)
        self.assertIn("--output=%s/logs/merge.log" % out,
                      sbatch_lines(os.path.join(out, "02-merge.sbatch")))
        shard = sbatch_lines(os.path.join(out, "03-shard.sbatch"))
        self.assertIn("--cpus-per-task=3", shard)
        self.assertIn("--mem=5G", shard)
        self.assertIn("--time=1:00:00", shard)
        self.assertNotIn("--array", " ".join(shard))
        g = json.loads(read(os.path.join(out, "global-03-shard.json")))
        self.assertEqual(validate("pipeline.schema.json", g), [])
        self.assertEqual(g["corpus"], corpus)
        self.assertEqual([s["stage"] for s in g["stages"]], ["shard"])
        # every job after the one before it
        sub = read(os.path.join(out, "submit.sh"))
        deps = re.findall(r"^(j\d+)=\$\(sbatch --parsable (?:--dependency=afterok:\$\{(j\d+)%%;\*\} )?'"
                          r"[^']*/([^/']+)\.sbatch'\)$", sub, re.M)
        self.assertEqual(deps, [("j0", "", "01-parts"), ("j1", "j0", "02-merge"),
                                ("j2", "j1", "03-shard"), ("j3", "j2", "04-export")])

    def test_crawl_archives_get_part(self):
        cfg = os.path.join(self.dir, "p.json")
        with open(cfg, "w") as f:
            json.dump({"corpus": "c", "stages": [
                {"stage": "crawl", "warc": True, "args": ["a.warc.gz", "b.warc.gz"]},
                {"stage": "shard"}]}, f)
        out, _ = self.generate(cfg, 2)
        for i in (1, 2):
            pc = json.loads(read(os.path.join(out, "part-%d.json" % i)))
            self.assertEqual(pc["stages"][0]["part"], "%d/2" % i)

    def test_seed_crawl_split_by_site_and_fetch_first_refused(self):
        """A crawl of seeds takes --part (by site) like any first stage: no
        warning, part I/N in each part's config, and the part config runs
        as `crawl --part I/N --seeds FILE` (witpipe run --dry-run)."""
        cfg = os.path.join(self.dir, "p.json")
        with open(cfg, "w") as f:
            json.dump({"corpus": "c", "stages": [
                {"stage": "crawl", "seeds": "seeds.txt"}, {"stage": "fetch"},
                {"stage": "shard"}]}, f)
        out, r = self.generate(cfg, 2)
        self.assertNotIn("has no --part", r.stderr)
        for i in (1, 2):
            pc = json.loads(read(os.path.join(out, "part-%d.json" % i)))
            self.assertEqual(pc["stages"][0]["part"], "%d/2" % i)
            self.assertNotIn("part", pc["stages"][1])
            self.assertNotIn("part-by", pc["stages"][0])
            r = run(["-C", os.path.join(self.dir, "dry-%d" % i), "run", "--dry-run",
                     os.path.join(out, "part-%d.json" % i)])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(" crawl --part %d/2 --seeds seeds.txt\n" % i, r.stdout)
        with open(cfg, "w") as f:
            json.dump({"corpus": "c", "stages": [{"stage": "fetch"}, {"stage": "shard"}]}, f)
        r = run(["slurm", cfg, "--parts", "2", "-o", os.path.join(self.dir, "o")])
        self.assertEqual(r.returncode, 2)
        self.assertIn("must start with add or crawl", r.stderr)

    def test_filter_by_clip_percentile_is_global(self):
        cfg = os.path.join(self.dir, "p.json")
        with open(cfg, "w") as f:
            json.dump({"corpus": "c", "stages": [
                {"stage": "add", "args": ["l.tsv"]}, {"stage": "fetch"},
                {"stage": "filter", "min-words": 2}, {"stage": "filter", "clip-top": 30},
                {"stage": "shard"}]}, f)
        out, _ = self.generate(cfg, 2)
        pc = json.loads(read(os.path.join(out, "part-1.json")))
        self.assertEqual([s["stage"] for s in pc["stages"]], ["add", "fetch", "filter"])
        self.assertEqual(sorted(n for n in os.listdir(out) if n.endswith(".sbatch")),
                         ["01-parts.sbatch", "02-merge.sbatch", "03-filter.sbatch",
                          "04-shard.sbatch"])

    def test_errors(self):
        cfg = os.path.join(self.dir, "p.json")
        with open(cfg, "w") as f:
            json.dump({"stages": [{"stage": "shard"}]}, f)
        r = run(["slurm", cfg, "--parts", "2", "-o", os.path.join(self.dir, "o")])
        self.assertEqual(r.returncode, 2)
        self.assertIn("$.stages[0]", r.stderr)
        with open(cfg, "w") as f:
            json.dump({"stages": [{"stage": "nosuch"}]}, f)
        r = run(["slurm", cfg, "--parts", "2", "-o", os.path.join(self.dir, "o")])
        self.assertEqual(r.returncode, 2)
        self.assertIn("$.stages[0].stage", r.stderr)
        r = run(["slurm", cfg, "-o", os.path.join(self.dir, "o")])
        self.assertEqual(r.returncode, 2)
        self.assertIn("--parts", r.stderr)

    def test_submit_with_stand_in_sbatch(self):
        cfg = write_pipeline(self.dir, "http://127.0.0.1:1", os.path.join(self.dir, "c"),
                             os.path.join(self.dir, "s"))
        fake = os.path.join(self.dir, "bin")
        os.makedirs(fake)
        log = os.path.join(self.dir, "sbatch.log")
        with open(os.path.join(fake, "sbatch"), "w") as f:
            f.write("#!/bin/sh\nn=$(( $(cat %s 2>/dev/null | wc -l) + 100 ))\n"
                    "echo \"$n $*\" >> %s\necho \"$n;cluster\"\n" % (log, log))
        os.chmod(os.path.join(fake, "sbatch"), 0o755)
        env = dict(os.environ, PATH=fake + os.pathsep + os.environ["PATH"])
        out = os.path.join(self.dir, "jobs")
        r = subprocess.run([BIN, "slurm", cfg, "--parts", "3", "-o", out, "--submit"],
                           capture_output=True, text=True, env=env, cwd=self.dir, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split("\n")[:4],
                         ["01-parts 100", "02-merge 101", "03-shard 102", "04-export 103"])
        calls = read(log).splitlines()
        self.assertEqual(len(calls), 4)
        self.assertNotIn("dependency", calls[0])
        for k in range(1, 4):
            self.assertIn("--parsable --dependency=afterok:%d " % (99 + k), calls[k])

    def test_scripts_run_by_hand_equal_one_process(self):
        need_fixtures(self)
        srv = Server()
        try:
            # both read the same list file: the source is in each sample
            one = os.path.join(self.dir, "one")
            cfg1 = write_pipeline(self.dir, srv.base, one, one + "-shards", "one.json")
            r = run(["run", cfg1])
            self.assertEqual(r.returncode, 0, r.stderr)

            many = os.path.join(self.dir, "many")
            cfg = write_pipeline(self.dir, srv.base, many, many + "-shards", "many.json")
            out, _ = self.generate(cfg, 3)
            env = dict(os.environ)
            for i in (1, 2, 3):
                env["SLURM_ARRAY_TASK_ID"] = str(i)
                r = subprocess.run(["bash", os.path.join(out, "01-parts.sbatch")], cwd=self.dir,
                                   capture_output=True, text=True, env=env, timeout=300)
                self.assertEqual(r.returncode, 0, r.stderr)
            for s in ("02-merge", "03-shard", "04-export"):
                r = subprocess.run(["bash", os.path.join(out, s + ".sbatch")], cwd=self.dir,
                                   capture_output=True, text=True, timeout=300)
                self.assertEqual(r.returncode, 0, s + ": " + r.stderr)
            want = shard_samples(one + "-shards")
            self.assertEqual(len(want), len(IMGS))
            self.assertEqual(shard_samples(many + "-shards"), want)
            self.assertEqual(tar_bytes(many + "-shards"), tar_bytes(one + "-shards"))
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main()
