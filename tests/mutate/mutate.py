#!/usr/bin/env python3
"""tests/mutate/mutate.py: the mutation check of the test suite (`make mutate`).

Applies the mutations listed in tests/mutate/mutations.txt ONE AT A TIME to
a scratch copy of the tree (never the working tree), rebuilds the normal
build there incrementally (only the targets the mutation's tests need),
runs the tests the list names for that mutation, and reports each
mutation as killed (a test failed, crashed or hung) or survived (all
passed). Before any mutation, every test named in the list is run once on
the unmutated copy: a test that fails there would kill every mutation for
nothing, so the run stops.

usage: tests/mutate/mutate.py [--only ID[,ID...]] [--module M[,M...]]
                              [--keep] [--timeout S]

The scratch copy is /tmp/witpipe-mutate.XXXXXX (the tracked and untracked,
not ignored, files of the working tree, plus ./build when present so the
first build is incremental). Reference data: WITPIPE_SHARED, else ../shared
of this checkout. Exit status: 0 when the survivors are at most 10% of the
mutations run and each survivor is explained in the list (a `why:`), else 1.

The list format (tests/mutate/mutations.txt): blocks separated by blank
lines, one `key: value` per line; `#` lines are comments.
  id:     a unique name (module-what)
  file:   the path, relative to the repo root
  from:   an exact snippet of the file (must occur exactly once)
  to:     its replacement
  tests:  space-separated: t/test_X (the cmocka binary build/t/test_X) or
          py/MODULE[.Class[.method]] (python3 -m unittest, with WITPIPE_BIN)
  why:    for a mutation the suite does not catch: why (optional otherwise)
A value is taken as is after "key: "; one written py:"..." is a Python
string literal (for leading spaces or several lines: py:"  a;\n  b;").
"""
import argparse
import ast
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIST = os.path.join(ROOT, "tests", "mutate", "mutations.txt")
KEYS = ("id", "file", "from", "to", "tests", "why")


def parse_list(path):
    muts, cur = [], {}
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for no, line in enumerate(lines + [""], 1):
        if line.startswith("#"):
            continue
        if not line.strip():
            if cur:
                muts.append(cur)
                cur = {}
            continue
        key, sep, val = line.partition(":")
        key = key.strip()
        if not sep or key not in KEYS:
            raise SystemExit("%s:%d: expected 'key: value' with key one of %s" % (path, no, KEYS))
        val = val[1:] if val.startswith(" ") else val
        if key in ("from", "to") and val.startswith("py:"):
            val = ast.literal_eval(val[3:])
        if key in cur:
            raise SystemExit("%s:%d: %s given twice" % (path, no, key))
        cur[key] = val
        cur.setdefault("line", no)
    ids = set()
    for m in muts:
        for k in ("id", "file", "from", "to", "tests"):
            if k not in m:
                raise SystemExit("%s:%d: mutation without %s" % (path, m["line"], k))
        if m["id"] in ids:
            raise SystemExit("%s:%d: duplicate id %s" % (path, m["line"], m["id"]))
        ids.add(m["id"])
        m["tests"] = m["tests"].split()
        m["module"] = m["file"].split("/")[0]
    return muts


# The Python the integration tests are run with (tests/run.sh's): Debian's,
# which has the python3-pil/numpy/scipy packages some of them need.
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def sh(cmd, cwd, env=None, timeout=None, log=None):
    """Runs cmd, its output appended to log; returns (rc, seconds, output);
    rc 124 on timeout."""
    t0 = time.time()
    # A session of its own: a timeout or an interrupt ends the whole tree
    # (a test and the witpipe or servers it started), not just cmd.
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        rc = 124
    except BaseException:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise
    out = out.decode("utf-8", "replace")
    if log is not None:
        log.write(out)
        log.flush()
    return rc, time.time() - t0, out


def make_scratch():
    scratch = tempfile.mkdtemp(prefix="witpipe-mutate.", dir="/tmp")
    files = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True).stdout.split(b"\0")
    for f in files:
        if not f:
            continue
        src = os.path.join(ROOT.encode(), f)
        if not os.path.lexists(src):
            continue  # deleted in the working tree
        dst = os.path.join(scratch.encode(), f)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst, follow_symlinks=False)  # keeps mtimes: make stays incremental
    build = os.path.join(ROOT, "build")
    if os.path.isdir(build):
        # The normal build only (not build/asan or build/fuzz below it).
        os.makedirs(os.path.join(scratch, "build"))
        for n in os.listdir(build):
            if n in ("asan", "fuzz", "bench"):
                continue
            s = os.path.join(build, n)
            d = os.path.join(scratch, "build", n)
            if os.path.isdir(s) and not os.path.islink(s):
                shutil.copytree(s, d, symlinks=True)
            else:
                shutil.copy2(s, d, follow_symlinks=False)
    return scratch


def targets_for(tests):
    t = {"build/witpipe", "build/fixture_server"}
    for x in tests:
        if x.startswith("t/"):
            t.add("build/" + x)
    return sorted(t)


def test_cmd(x):
    if x.startswith("t/"):
        return ["build/" + x]
    if x.startswith("py/"):
        return [PY, "-m", "unittest", x[3:]]
    raise SystemExit("unknown test kind: %s (t/test_X or py/module)" % x)


def skipped(out):
    """Whether a test run's output reports skipped tests (cmocka or unittest)."""
    return "[  SKIPPED ]" in out or re.search(r"^OK \(.*skipped=", out, re.M) is not None


def run_tests(tests, scratch, env, timeout, log, no_skips=False):
    """None when all pass, else the first test that failed (and how). With
    no_skips, a test command that skips anything counts as failing: a
    skipped test cannot catch a mutation."""
    for x in tests:
        print("---- %s" % x, file=log, flush=True)
        rc, _, out = sh(test_cmd(x), scratch, env, timeout, log)
        if rc == 124:
            return x + " (timeout)"
        if rc != 0:
            return x + " (rc %d)" % rc
        if no_skips and skipped(out):
            return x + " (skips tests: give it what it needs, e.g. ../shared)"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--module", default="")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copy")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per test command")
    ap.add_argument("--list", default=LIST)
    a = ap.parse_args()
    muts = parse_list(a.list)
    if a.only:
        want = set(a.only.split(","))
        muts = [m for m in muts if m["id"] in want]
    if a.module:
        want = set(a.module.split(","))
        muts = [m for m in muts if m["module"] in want]
    for m in muts:
        with open(os.path.join(ROOT, m["file"]), encoding="utf-8") as f:
            n = f.read().count(m["from"])
        if n != 1:
            raise SystemExit("%s: the 'from' snippet occurs %d times in %s (must be once)"
                             % (m["id"], n, m["file"]))
    scratch = make_scratch()
    try:
        return run_all(a, muts, scratch)
    finally:
        if not a.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print("mutate: kept %s" % scratch)


def run_all(a, muts, scratch):
    logdir = tempfile.mkdtemp(prefix="witpipe-mutate-logs.", dir="/tmp")
    env = dict(os.environ)
    env["WITPIPE_BIN"] = os.path.join(scratch, "build", "witpipe")
    env.setdefault("WITPIPE_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
    env["WITPIPE_SHARED"] = os.path.abspath(env["WITPIPE_SHARED"])
    jobs = os.environ.get("MUTATE_JOBS", "2")
    print("mutate: %d mutations, scratch copy %s" % (len(muts), scratch), flush=True)

    # The unmutated baseline: builds, and every named test passes.
    all_tests = sorted({x for m in muts for x in m["tests"]})
    with open(os.path.join(logdir, "baseline.log"), "w") as log:
        rc, secs, _ = sh(["make", "-j" + jobs, "--no-print-directory", *targets_for(all_tests)],
                      scratch, env, None, log)
        if rc != 0:
            raise SystemExit("mutate: the unmutated tree does not build (%s)" % log.name)
        print("mutate: baseline build %.0f s" % secs, flush=True)
        for x in all_tests:
            bad = run_tests([x], scratch, env, a.timeout, log, no_skips=True)
            if bad:
                raise SystemExit("mutate: %s fails on the unmutated tree; see %s" % (bad, log.name))
    print("mutate: baseline: %d test commands pass" % len(all_tests), flush=True)

    results = []
    for i, m in enumerate(muts, 1):
        path = os.path.join(scratch, m["file"])
        with open(path, encoding="utf-8") as f:
            orig = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write(orig.replace(m["from"], m["to"], 1))
        t0 = time.time()
        with open(os.path.join(logdir, m["id"] + ".log"), "w") as log:
            rc, _, _ = sh(["make", "-j" + jobs, "--no-print-directory", *targets_for(m["tests"])],
                       scratch, env, None, log)
            if rc != 0:
                verdict, how = "build-error", "does not compile: fix the list"
            else:
                bad = run_tests(m["tests"], scratch, env, a.timeout, log)
                verdict, how = ("killed", bad) if bad else ("SURVIVED", m.get("why", "(unexplained)"))
        with open(path, "w", encoding="utf-8") as f:
            f.write(orig)
        secs = time.time() - t0
        results.append((m, verdict, how, secs))
        print("[%2d/%d] %-9s %-34s %5.0f s  %s" % (i, len(muts), verdict, m["id"], secs, how),
              flush=True)
    # Rebuild the restored tree so a --keep'd copy is the unmutated one.
    sh(["make", "-j" + jobs, "--no-print-directory", "build/witpipe"], scratch, env, None, None)

    print("\nmutate: by module (killed / survived / build errors)")
    mods = {}
    for m, v, _, _ in results:
        k = mods.setdefault(m["module"], [0, 0, 0])
        k[0 if v == "killed" else 1 if v == "SURVIVED" else 2] += 1
    for mod in sorted(mods):
        print("  %-9s %3d killed %3d survived %3d errors" % (mod, *mods[mod]))
    killed = sum(v[0] for v in mods.values())
    surv = [(m, how) for m, v, how, _ in results if v == "SURVIVED"]
    errs = sum(v[2] for v in mods.values())
    n = len(results)
    print("mutate: %d mutations: %d killed, %d survived, %d build errors" % (n, killed, len(surv), errs))
    for m, how in surv:
        print("  survivor %s (%s): %s" % (m["id"], m["file"], how))
    print("mutate: logs in %s" % logdir)
    ok = errs == 0 and len(surv) * 10 <= n and all("why" in m for m, _ in surv)
    print("mutate: %s (at most 10%% may survive, each explained by a why:)" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


def on_term(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_term)
    sys.exit(main())
