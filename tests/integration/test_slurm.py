"""tests/integration/test_slurm.py: `witpipe slurm --submit` on a real
single-node Slurm (issue 14).

The test installs Debian's slurm-wlm, munge and libpmix-dev when they are
missing (as root; SLURM_DEBS / `make slurm-deps`), then starts its own
munged, slurmctld and slurmd on 127.0.0.1 from files it writes in a temp
folder: a munge key, and a slurm.conf with no cgroups
(ProctrackType=proctrack/linuxproc, TaskPlugin=task/none),
SlurmctldHost=HOST(127.0.0.1) and NodeName=HOST NodeAddr=127.0.0.1 with this
machine's host name, CPUs and memory, and ports above 1024 that were free.
It writes the pipeline of the demo (crawl of the bundled example site
served by the fixture server on 127.0.0.1 -> fetch -> filter -> shard ->
export), submits it as 4 parts with `witpipe slurm --submit` (sbatch
--parsable), polls squeue until the jobs are gone, and checks that the
shards are exactly those of `witpipe run` over the same pipeline in one
process, with one log per array task. Every daemon is stopped by its pid
when the test ends, however it ends.

Without root, or when the packages cannot be installed or the daemons do
not come up, the test SKIPS and says why (with the daemons' log tails): it
never fails for lack of Slurm. Its own time is bounded (install 150 s,
daemons 40 s, jobs 150 s).
"""
import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from tests.integration.test_export import shard_samples
from tests.integration.test_fetch_cli import BIN, ROOT, SERVER, run
from tests.integration.test_slurm_scripts import tar_bytes

SLURM_DEBS = ["slurm-wlm", "munge", "libpmix-dev"]
SITE = os.path.join(ROOT, "examples", "site")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no %s)\n" % path


class Cluster:
    """munged + slurmctld + slurmd, started in dir, stopped by pid."""

    def __init__(self, d):
        self.d = d
        self.procs = []
        atexit.register(self.stop)

    def spawn(self, args, log):
        f = open(os.path.join(self.d, log), "w")
        p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        f.close()
        self.procs.append(p)
        return p

    def start(self):
        d = self.d
        self.host = socket.gethostname().split(".")[0]
        for sub in ("munge", "state", "spool"):
            os.makedirs(os.path.join(d, sub), mode=0o700, exist_ok=True)
        os.chmod(d, 0o755)
        key = os.path.join(d, "munge", "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        self.sock = os.path.join(d, "munge", "munge.socket")
        self.spawn(["munged", "-F", "--force", "--key-file", key, "--socket", self.sock,
                    "--pid-file", os.path.join(d, "munge", "munged.pid"),
                    "--log-file", os.path.join(d, "munge", "munged.log"),
                    "--seed-file", os.path.join(d, "munge", "seed")], "munged.out")
        for _ in range(50):
            if os.path.exists(self.sock):
                break
            time.sleep(0.1)
        else:
            return "munged did not start:\n" + tail(os.path.join(d, "munged.out")) + \
                tail(os.path.join(d, "munge", "munged.log"))
        cpus = os.cpu_count() or 1
        with open("/proc/meminfo") as f:
            mem_mb = int(f.readline().split()[1]) // 1024
        conf = os.path.join(d, "slurm.conf")
        with open(conf, "w") as f:
            f.write("\n".join([
                "ClusterName=witpipetest",
                "SlurmctldHost=%s(127.0.0.1)" % self.host,
                "SlurmctldPort=%d" % free_port(),
                "SlurmdPort=%d" % free_port(),
                "SlurmUser=root",
                "SlurmdUser=root",
                "AuthType=auth/munge",
                "AuthInfo=socket=%s" % self.sock,
                "CredType=cred/munge",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "MpiDefault=none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_CPU",
                "SchedulerType=sched/backfill",
                "ReturnToService=2",
                "StateSaveLocation=%s/state" % d,
                "SlurmdSpoolDir=%s/spool" % d,
                "SlurmctldPidFile=%s/slurmctld.pid" % d,
                "SlurmdPidFile=%s/slurmd.pid" % d,
                "SlurmctldLogFile=%s/slurmctld.log" % d,
                "SlurmdLogFile=%s/slurmd.log" % d,
                "AccountingStorageType=accounting_storage/none",
                "JobAcctGatherType=jobacct_gather/none",
                "JobCompType=jobcomp/none",
                "SlurmctldTimeout=30",
                "SlurmdTimeout=30",
                "MinJobAge=600",
                "NodeName=%s NodeAddr=127.0.0.1 CPUs=%d RealMemory=%d State=UNKNOWN"
                % (self.host, cpus, max(mem_mb * 9 // 10, 100)),
                "PartitionName=debug Nodes=%s Default=YES MaxTime=INFINITE State=UP" % self.host,
                ""]))
        self.env = dict(os.environ, SLURM_CONF=conf)
        self.spawn(["slurmctld", "-D", "-i", "-f", conf], "slurmctld.out")
        time.sleep(1)
        self.spawn(["slurmd", "-D", "-f", conf, "-N", self.host], "slurmd.out")
        deadline = time.time() + 40
        state = ""
        while time.time() < deadline:
            r = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                               env=self.env, timeout=10)
            state = (r.stdout + r.stderr).strip()
            if r.returncode == 0 and state.startswith("idle"):
                return None
            if any(p.poll() is not None for p in self.procs):
                break
            time.sleep(1)
        return "the node did not become idle (sinfo: %r):\n--- slurmctld\n%s--- slurmd\n%s" % (
            state, tail(os.path.join(d, "slurmctld.log")) + tail(os.path.join(d, "slurmctld.out")),
            tail(os.path.join(d, "slurmd.log")) + tail(os.path.join(d, "slurmd.out")))

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        self.procs = []


def install():
    """None when Slurm and munge are there (installing them if need be),
    else why not."""
    if all(shutil.which(t) for t in ("slurmctld", "slurmd", "munged", "sbatch", "squeue")):
        return None
    if not shutil.which("apt-get"):
        return "no apt-get to install %s" % " ".join(SLURM_DEBS)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends"] + SLURM_DEBS
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=150)
        if r.returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, timeout=60)
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=150)
    except subprocess.TimeoutExpired:
        return "apt-get install %s timed out (no Debian mirror?)" % " ".join(SLURM_DEBS)
    if r.returncode != 0:
        return "apt-get install %s failed: %s" % (" ".join(SLURM_DEBS), r.stderr.strip()[-300:])
    return None


class SlurmRun(unittest.TestCase):
    def skip(self, why):
        print("\nSKIP: %s: %s" % (self.id(), why))
        self.skipTest(why)

    def setUp(self):
        if os.geteuid() != 0:
            self.skip("starting slurmctld, slurmd and munged needs root")
        if not os.path.exists(SERVER):
            raise AssertionError("fixture server not built: %s" % SERVER)
        why = install()
        if why:
            self.skip(why)
        self.dir = tempfile.mkdtemp(prefix="witpipe-slurmrun-")
        self.cluster = Cluster(os.path.join(self.dir, "slurm"))
        os.makedirs(self.cluster.d)
        self.srv = None

    def tearDown(self):
        if hasattr(self, "cluster"):
            self.cluster.stop()
        if self.srv is not None:
            self.srv.stdin.close()
            self.srv.stdout.close()
            try:
                self.srv.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.srv.kill()
                self.srv.wait()
        if hasattr(self, "dir"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def pipeline(self, name, port, corpus):
        seeds = os.path.join(self.dir, "seeds.txt")
        with open(seeds, "w") as f:
            f.write("http://127.0.0.1:%d/\n" % port)
        stages = [
            {"stage": "crawl", "seeds": seeds, "allow-net": "127.0.0.1/32"},
            {"stage": "fetch", "allow-net": "127.0.0.1/32", "retries": 0, "image-size": 256,
             "resize-mode": "border"},
            {"stage": "filter", "min-words": 2},
            {"stage": "shard", "output": corpus + "-shards", "per-shard": 5},
            {"stage": "export", "output": corpus + "-export.jsonl", "all": True},
        ]
        import json
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            json.dump({"corpus": corpus, "stages": stages}, f)
        return path

    def test_four_parts_through_slurm_equal_one_process(self):
        why = self.cluster.start()
        if why:
            self.skip("Slurm did not come up: " + why)
        env = self.cluster.env
        self.srv = subprocess.Popen([SERVER, SITE], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        port = int(self.srv.stdout.readline())

        one = os.path.join(self.dir, "one")
        r = run(["run", self.pipeline("one.json", port, one)], cwd=self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)

        many = os.path.join(self.dir, "many")
        jobs = os.path.join(self.dir, "jobs")
        r = subprocess.run([BIN, "slurm", self.pipeline("many.json", port, many), "--parts", "4",
                            "-o", jobs, "--submit", "--cpus", "1", "--mem", "500M",
                            "--time", "10:00"],
                           capture_output=True, text=True, env=env, cwd=self.dir, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        ids = [l.split()[1] for l in r.stdout.splitlines() if l.strip()]
        self.assertEqual(len(ids), 4, r.stdout)  # parts, merge, shard, export
        deadline = time.time() + 150
        left = ""
        while time.time() < deadline:
            q = subprocess.run(["squeue", "-h", "-j", ",".join(ids), "-o", "%i %T %r"],
                               capture_output=True, text=True, env=env, timeout=10)
            left = q.stdout.strip()
            if q.returncode == 0 and not left:
                break
            if "DependencyNeverSatisfied" in left:
                break
            time.sleep(1)
        logs = sorted(os.listdir(os.path.join(jobs, "logs")))
        msg = "squeue: %r\nlogs: %s\n%s" % (left, logs, "".join(
            "--- %s\n%s" % (n, tail(os.path.join(jobs, "logs", n))) for n in logs))
        self.assertEqual(left, "", msg)
        self.assertEqual([n for n in logs if n.startswith("parts-")],
                         ["parts-%d.log" % i for i in range(1, 5)], msg)
        self.assertTrue(os.path.isdir(many + "-shards"), msg)
        want = shard_samples(one + "-shards")
        self.assertGreater(len(want), 3)
        self.assertEqual(shard_samples(many + "-shards"), want, msg)
        self.assertEqual(tar_bytes(many + "-shards"), tar_bytes(one + "-shards"), msg)


if __name__ == "__main__":
    unittest.main()
