"""tests/integration/test_cli.py: the witpipe command layer as a user meets
it: help, version, exit statuses, init, status (table and JSON validated
against schemas/status.schema.json), the corpus lock, newer-schema refusal
and --log-json events validated against schemas/log_event.schema.json.
"""
import json
import os
import pty
import re
import sqlite3
import subprocess
import tempfile
import unittest

from tests.integration.schema_check import validate

BIN = os.environ.get("WITPIPE_BIN", "build/witpipe")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(*args, **kw):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=120, **kw)


class CliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="witpipe-cli.")
        self.dir = os.path.join(self.tmp.name, "corpus")

    def tearDown(self):
        self.tmp.cleanup()

    def test_help_lists_every_command_and_exits_0(self):
        # Every command defined in cli/ (each `const cli_cmd cli_cmd_X` in
        # cli/cmd_*.c, with its .name and .summary), read from the sources,
        # not from a list kept here.
        defined = {}
        for fn in sorted(os.listdir(os.path.join(ROOT, "cli"))):
            if not (fn.startswith("cmd_") and fn.endswith(".c")):
                continue
            with open(os.path.join(ROOT, "cli", fn)) as f:
                src = f.read()
            for m in re.finditer(r'const cli_cmd (cli_cmd_\w+) = \{\s*\.name = "([^"]+)",'
                                 r'\s*\.summary = "([^"]+)"', src):
                defined[m.group(2)] = (m.group(1), m.group(3), fn)
        self.assertGreaterEqual(len(defined), 19, defined)
        # ... all in the table cli/commands.c hands to the dispatcher ...
        with open(os.path.join(ROOT, "cli", "commands.c")) as f:
            table = set(re.findall(r"&(cli_cmd_\w+)", f.read()))
        self.assertEqual(table, {v[0] for v in defined.values()})
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        # ... and all in --help's command list (name, then its summary), no more.
        listed = r.stdout.split("\nCommands:\n", 1)[1].split("\n\n", 1)[0]
        rows = [line.split(None, 1) for line in listed.splitlines()]
        self.assertEqual({name: summary for name, summary in rows},
                         {name: v[1] for name, v in defined.items()})
        for name in defined:
            h = run("help", name)
            self.assertEqual(h.returncode, 0, name)
            self.assertIn("usage: witpipe " + name, h.stdout)
        r2 = run("help", "status")
        self.assertEqual(r2.returncode, 0)
        self.assertIn("usage: witpipe status", r2.stdout)
        r3 = run("status", "--help")
        self.assertEqual(r3.returncode, 0)
        self.assertEqual(r2.stdout, r3.stdout)

    def test_version(self):
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^witpipe \d+\.\d+\.\d+\n$")

    def test_usage_errors_exit_2_with_one_line_naming_the_option(self):
        r = run("status", "--bogus")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)
        self.assertIn("--bogus", r.stderr)
        r = run("frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn("frobnicate", r.stderr)
        r = run()
        self.assertEqual(r.returncode, 2)

    def test_init_then_status_counts_and_json_schema(self):
        r = run("init", self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.isfile(os.path.join(self.dir, "catalog.db")))
        self.assertTrue(os.path.isdir(os.path.join(self.dir, "store")))
        r = run("-C", self.dir, "status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        st = json.loads(r.stdout)
        self.assertEqual(validate("status.schema.json", st), [])
        self.assertEqual(st["pairs"]["total"], 0)
        # global option after the command works too
        r2 = run("status", "-C", self.dir)
        self.assertEqual(r2.returncode, 0)
        self.assertIn("pairs", r2.stdout)
        # init twice changes nothing
        self.assertEqual(run("init", self.dir).returncode, 0)

    def test_status_on_missing_corpus_fails_with_hint(self):
        r = run("-C", os.path.join(self.tmp.name, "nope"), "status")
        self.assertEqual(r.returncode, 1)
        self.assertIn("witpipe init", r.stderr)

    def test_newer_schema_version_is_refused(self):
        self.assertEqual(run("init", self.dir).returncode, 0)
        db = sqlite3.connect(os.path.join(self.dir, "catalog.db"))
        db.execute("PRAGMA user_version = 999")
        db.commit()
        db.close()
        r = run("-C", self.dir, "status")
        self.assertEqual(r.returncode, 1)
        self.assertIn("newer witpipe", r.stderr)

    def test_catalog_schema_is_wal_with_expected_tables(self):
        self.assertEqual(run("init", self.dir).returncode, 0)
        db = sqlite3.connect(os.path.join(self.dir, "catalog.db"))
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = db.execute("PRAGMA user_version").fetchone()[0]
        db.close()
        self.assertEqual(mode, "wal")
        self.assertGreaterEqual(version, 1)
        for t in ("runs", "sources", "images", "pairs", "decisions", "shards", "pages"):
            self.assertIn(t, tables)

    def test_old_catalog_is_migrated_and_keeps_its_rows(self):
        # A catalog at schema 1 (images_state index), as the first release wrote it.
        os.makedirs(self.dir)
        with open(os.path.join(ROOT, "schemas", "catalog.sql")) as f:
            v1 = f.read().split("-- migration 2")[0]
        db = sqlite3.connect(os.path.join(self.dir, "catalog.db"))
        db.executescript(v1 + "\nPRAGMA user_version = 1;")
        db.execute("INSERT INTO images(url) VALUES ('http://a.example/1.jpg')")
        db.execute("INSERT INTO images(url, state) VALUES ('http://a.example/2.jpg', 'ok')")
        db.commit()
        db.close()
        r = run("-C", self.dir, "status")
        self.assertEqual(r.returncode, 1)
        self.assertIn("run any writing command once to migrate", r.stderr)
        r = run("init", self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        db = sqlite3.connect(os.path.join(self.dir, "catalog.db"))
        version = db.execute("PRAGMA user_version").fetchone()[0]
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        plan = " ".join(r[3] for r in db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM images WHERE state = 'pending' AND id > 0 "
            "ORDER BY id LIMIT 10"))
        db.close()
        self.assertGreaterEqual(version, 2)
        self.assertIn("images_pending", indexes)
        self.assertNotIn("images_state", indexes)
        self.assertIn("images_pending", plan)
        st = json.loads(run("-C", self.dir, "status", "--json").stdout)
        self.assertEqual(st["images"], {"pending": 1, "ok": 1})

    def test_only_openmp_commands_restart_with_a_passive_wait_policy(self):
        # libgomp prints its settings once per start with OMP_DISPLAY_ENV.
        env = dict(os.environ, OMP_DISPLAY_ENV="true")
        env.pop("OMP_WAIT_POLICY", None)
        env.pop("GOMP_SPINCOUNT", None)
        self.assertEqual(run("init", self.dir).returncode, 0)

        def starts(*args, **extra):
            r = run(*args, env=dict(env, **extra))
            return r.stderr.count("OPENMP DISPLAY ENVIRONMENT BEGIN"), r

        n, r = starts("-q", "-C", self.dir, "clip", "embed-text", "--model", self.dir, "x")
        self.assertEqual(n, 2, r.stderr)
        self.assertEqual(r.returncode, 1)  # no model there: the second start ran the command
        self.assertIn(self.dir, r.stderr)
        n, r = starts("-C", self.dir, "status")
        self.assertEqual((n, r.returncode), (1, 0), r.stderr)
        n, r = starts("-C", self.dir, "clip", "embed-text", "--model", self.dir, "x",
                      OMP_WAIT_POLICY="active")
        self.assertEqual(n, 1, r.stderr)
        self.assertIn("OMP_WAIT_POLICY = 'ACTIVE'", r.stderr)

    def test_log_json_events_match_schema(self):
        r = run("--log-json", "init", self.dir)
        self.assertEqual(r.returncode, 0)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        self.assertTrue(lines, "init should report an info event")
        for l in lines:
            ev = json.loads(l)
            self.assertEqual(validate("log_event.schema.json", ev), [], l)
        r = run("--log-json", "-C", os.path.join(self.tmp.name, "nope"), "status")
        ev = json.loads(r.stderr.strip().splitlines()[-1])
        self.assertEqual(ev["level"], "error")
        self.assertEqual(validate("log_event.schema.json", ev), [])

    def _big_list(self, rows=40000):
        path = os.path.join(self.tmp.name, "list.tsv")
        with open(path, "w") as f:
            f.write("url\tcaption\n")
            for i in range(rows):
                f.write(f"http://example.com/{i}.jpg\tcaption number {i}\n")
        return path

    def test_progress_line_on_a_tty(self):
        lst = self._big_list()
        self.assertEqual(run("init", self.dir).returncode, 0)
        master, slave = pty.openpty()
        p = subprocess.Popen([BIN, "-C", self.dir, "add", lst], stdout=subprocess.DEVNULL,
                             stderr=slave)
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        os.close(master)
        self.assertEqual(p.wait(timeout=120), 0)
        text = out.decode()
        # redrawn in place (carriage return + erase line), done/total, rate,
        # elapsed at the end, error count
        self.assertIn("\r\x1b[K", text)
        self.assertRegex(text, r"add [0-9.]+ [kMG]B/[0-9.]+ [kMG]B \(100\.0%\) [0-9.]+ [kMG]B/s "
                               r"in [0-9:]+ errors 0")
        self.assertIn("added 40000 pairs", text)

    def test_no_progress_line_when_not_a_tty_and_json_lines_with_log_json(self):
        lst = self._big_list()
        self.assertEqual(run("init", self.dir).returncode, 0)
        r = run("-C", self.dir, "add", lst)
        self.assertEqual(r.returncode, 0)
        self.assertNotIn("\r", r.stderr)
        d2 = os.path.join(self.tmp.name, "c2")
        self.assertEqual(run("init", d2).returncode, 0)
        r = run("-C", d2, "--log-json", "add", lst)
        self.assertEqual(r.returncode, 0, r.stderr)
        events = [json.loads(l) for l in r.stderr.splitlines() if l.strip()]
        for ev in events:
            self.assertEqual(validate("log_event.schema.json", ev), [], ev)
        prog = [e for e in events if e["event"] == "progress"]
        self.assertTrue(prog)
        self.assertEqual(prog[-1]["done"], prog[-1]["total"])
        self.assertEqual(prog[-1]["unit"], "bytes")
        self.assertEqual(prog[-1]["total"], os.path.getsize(lst))


if __name__ == "__main__":
    unittest.main()
