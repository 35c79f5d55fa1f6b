"""tests/integration/test_layout.py: the layout rules of README.md's Layout
section, checked on the source tree:

- the Layout table names every top-level folder, and every folder it names
  as code exists;
- a service includes only common/, itself and other services;
- a stage includes services and itself, never another stage;
- outside a folder (and outside tests/ and bench/), only its public header
  is included: the one the table names;
- SQLite is called only from catalog/;
- JSON is written one way (common/wp.h's policy): no json_dump* calls and no
  printf-built JSON outside common/json.c.

Each rule is checked against a deliberately broken tree too, so a checker
that accepts everything fails here.
"""
import os
import re
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SQLITE = re.compile(r"\bsqlite3_[a-z_]+\s*\(|#\s*include\s*<sqlite3\.h>")
EXEMPT = {"tests", "bench", "tools", "examples", "schemas", "docs", "build"}
JSON_DUMP = re.compile(r"\bjson_dump[a-z_]*\s*\(")
PRINTF = re.compile(r"\b[a-z0-9_]*printf\s*\(")
JSON_KEY_LITERAL = re.compile(r'"(?:[^"\\\n]|\\.)*\\"[A-Za-z_][A-Za-z0-9_]*\\":(?:[^"\\\n]|\\.)*"')


def json_violations(root, table):
    """JSON written outside wp_json: json_dump* calls, and printf-family
    statements whose format holds a "\"key\":" literal with a conversion."""
    bad = []
    for folder, (kind, _) in table.items():
        if kind not in ("service", "stage", "commands"):
            continue
        for path in sources(root, folder):
            rel = os.path.relpath(path, root)
            if rel == os.path.join("common", "json.c"):
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            if JSON_DUMP.search(text):
                bad.append(f"{rel}: json_dump* (write JSON with wp_json)")
            for m in JSON_KEY_LITERAL.finditer(text):
                start = max(text.rfind(";", 0, m.start()), text.rfind("{\n", 0, m.start()),
                            text.rfind("}", 0, m.start()))
                end = text.find(";", m.end())
                stmt = text[start + 1:end]
                if PRINTF.search(stmt) and "%" in m.group(0):
                    line = text.count("\n", 0, m.start()) + 1
                    bad.append(f"{rel}:{line}: printf-built JSON (write JSON with wp_json)")
    return bad


def layout_table(readme):
    """{folder: (kind, public header or None)} from the Layout table."""
    text = readme[readme.index("## Layout"):]
    text = text[: text.index("\n## ", 5)]
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\|\s*`([a-z_]+)/`\s*\|\s*([a-z ]+?)\s*\|\s*(.*)\|\s*$", line)
        if not m:
            continue
        hdr = re.match(r"`([a-z_]+\.h)`", m.group(3).strip())
        rows[m.group(1)] = (m.group(2), hdr.group(1) if hdr else None)
    return rows


def sources(root, folder):
    out = []
    for dirpath, _, files in os.walk(os.path.join(root, folder)):
        for f in files:
            if f.endswith((".c", ".h")):
                out.append(os.path.join(dirpath, f))
    return out


def violations(root, table):
    """Every broken rule, as readable strings."""
    bad = []
    kinds = {f: k for f, (k, _) in table.items()}
    for folder, (kind, _) in table.items():
        if kind not in ("service", "stage", "commands"):
            continue
        for path in sources(root, folder):
            rel = os.path.relpath(path, root)
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            if folder != "catalog" and SQLITE.search(text):
                bad.append(f"{rel}: SQLite outside catalog/")
            for inc in INCLUDE.findall(text):
                if "/" not in inc:
                    continue  # same folder ("cli.h")
                top, name = inc.split("/", 1)
                if top == folder or top not in kinds:
                    continue
                other = kinds[top]
                if kind == "service" and other != "service":
                    bad.append(f"{rel}: service includes {other} {inc}")
                if kind == "stage" and other == "stage":
                    bad.append(f"{rel}: stage includes another stage's {inc}")
                public = table[top][1]
                if public is not None and name != public:
                    bad.append(f"{rel}: includes {inc}, private to {top}/ (public: {public})")
    return bad


class LayoutTest(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            self.table = layout_table(f.read())

    def test_table_names_every_folder(self):
        self.assertGreater(len(self.table), 10)
        ignored = set()
        gi = os.path.join(ROOT, ".gitignore")
        if os.path.exists(gi):
            with open(gi) as f:
                ignored = {l.strip().strip("/") for l in f if l.strip().startswith("/")}
        tracked = set()
        for name in os.listdir(ROOT):
            if name in ignored:
                continue
            p = os.path.join(ROOT, name)
            if os.path.isdir(p) and not name.startswith(".") and name != "build":
                tracked.add(name)
        missing = sorted(tracked - set(self.table))
        self.assertEqual(missing, [], "folders missing from README's Layout table")
        for folder, (kind, hdr) in self.table.items():
            if kind in ("service", "stage", "commands"):
                self.assertTrue(os.path.isdir(os.path.join(ROOT, folder)), folder)
            if hdr is not None:
                self.assertTrue(os.path.isfile(os.path.join(ROOT, folder, hdr)),
                                f"{folder}/{hdr} named as public header")

    def test_include_and_sql_rules_hold(self):
        self.assertEqual(violations(ROOT, self.table), [])

    def test_json_written_one_way(self):
        self.assertEqual(json_violations(ROOT, self.table), [])

    def test_json_checker_catches_each_form(self):
        import tempfile
        table = {"common": ("service", "wp.h"), "shard": ("stage", "shard.h")}
        cases = {
            "shard/a.c": "char *f(json_t *j) { return json_dumps(j, 0); }\n",
            "shard/b.c": 'void f(wp_buf *b, int n) {\n    wp_buf_printf(b, "{\\"n\\":%d}", n);\n}\n',
            "shard/c.c": 'void f(int n) {\n    printf("{\\"done\\":%d,"\n           "\\"x\\":1}", n);\n}\n',
        }
        with tempfile.TemporaryDirectory() as d:
            for rel, text in cases.items():
                os.makedirs(os.path.join(d, os.path.dirname(rel)), exist_ok=True)
                with open(os.path.join(d, rel), "w") as f:
                    f.write(text)
            # allowed: a constant JSON text, help text quoting JSON, json.c
            with open(os.path.join(d, "shard", "ok.c"), "w") as f:
                f.write('int g(void) { return run_begin("{\\"action\\":\\"match\\"}"); }\n'
                        'const char *h = "use {\\"stage\\": \\"fetch\\"}";\n')
            os.makedirs(os.path.join(d, "common"))
            with open(os.path.join(d, "common", "json.c"), "w") as f:
                f.write('void w(FILE *f) { fprintf(f, "{\\"k\\":%d}", 1); json_dumps(0, 0); }\n')
            got = json_violations(d, table)
        self.assertEqual(len(got), 3, got)
        for rel in cases:
            self.assertTrue(any(g.startswith(rel) for g in got), (rel, got))

    def test_checker_catches_each_broken_rule(self):
        import tempfile
        table = {
            "common": ("service", "wp.h"),
            "catalog": ("service", "catalog.h"),
            "clip": ("service", "clip.h"),
            "encode": ("stage", "encode.h"),
            "dedup": ("stage", "dedup.h"),
            "cli": ("commands", None),
        }
        cases = {
            "clip/a.c": '#include "encode/encode.h"\n',  # service -> stage
            "dedup/b.c": '#include "encode/encode.h"\n',  # stage -> stage
            "encode/c.c": '#include "clip/clip_int.h"\n',  # private header
            "dedup/d.c": "int f(void) { return sqlite3_exec(0, 0, 0, 0, 0); }\n",
        }
        with tempfile.TemporaryDirectory() as d:
            for rel, text in cases.items():
                os.makedirs(os.path.join(d, os.path.dirname(rel)), exist_ok=True)
                with open(os.path.join(d, rel), "w") as f:
                    f.write(text)
            # allowed: a stage using a service's public header, cli anything
            os.makedirs(os.path.join(d, "cli"))
            with open(os.path.join(d, "cli", "x.c"), "w") as f:
                f.write('#include "encode/encode.h"\n#include "dedup/dedup.h"\n')
            with open(os.path.join(d, "encode", "ok.c"), "w") as f:
                f.write('#include "clip/clip.h"\n#include "catalog/catalog.h"\n')
            got = violations(d, table)
        self.assertEqual(len(got), 4, got)
        for rel in cases:
            self.assertTrue(any(g.startswith(rel) for g in got), (rel, got))


if __name__ == "__main__":
    unittest.main()
