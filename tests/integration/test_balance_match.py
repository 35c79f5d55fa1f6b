"""tests/integration/test_balance_match.py: witpipe's matcher against a
plain Python implementation of MetaCLIP's rule, written here with the
standard library only.

MetaCLIP (metaclip/substr_matching.py): the caption padded with a space at
both ends, each of , . ; : ? ! ` surrounded by spaces (successive
str.replace calls, in that order), then tab, LF, CR turned into spaces; an
entry matches when " entry " occurs in that text. MetaCLIP 2: no space on
a side of the entry whose end character is CJK, Thai, Lao, Myanmar, Khmer,
Tibetan or punctuation. The reference below is a loop over every entry with
`in`, the way MetaCLIP's first implementation did it.

Captions and entries are generated: unicode, punctuation at both ends,
overlapping entries, entries that are prefixes/suffixes of others, entries
with spaces and punctuation, CJK/Thai for the metaclip2 rule, empty and
huge captions. `queries grep` prints each caption's matched entry numbers;
`queries match` stores them in the catalog, read back with sqlite3.
"""
import json
import os
import random
import sqlite3
import subprocess
import tempfile
import unicodedata
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("WITPIPE_BIN", os.path.join(ROOT, "build", "witpipe"))

PUNCTS = [",", ".", ";", ":", "?", "!", "`"]


def spacing(text):
    t = f" {text} "
    for p in PUNCTS:
        t = t.replace(p, f" {p} ")
    for c in ["\t", "\n", "\r"]:
        t = t.replace(c, " ")
    return t


NO_PAD_RANGES = [
    (0x0E00, 0x0E7F), (0x0E80, 0x0EFF), (0x0F00, 0x0FFF), (0x1000, 0x109F),
    (0xA9E0, 0xA9FF), (0xAA60, 0xAA7F), (0x1780, 0x17FF), (0x19E0, 0x19FF),
    (0x1100, 0x11FF), (0x2E80, 0x2FDF), (0x3000, 0x303F), (0x3040, 0x30FF),
    (0x3100, 0x31FF), (0x3200, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7AF),
    (0xF900, 0xFAFF), (0xFF00, 0xFFEF), (0x20000, 0x3FFFF),
]


def no_pad(ch):
    cp = ord(ch)
    if any(a <= cp <= b for a, b in NO_PAD_RANGES):
        return True
    return unicodedata.category(ch).startswith("P")


def pattern(entry, rule):
    left = "" if rule == "metaclip2" and no_pad(entry[0]) else " "
    right = "" if rule == "metaclip2" and no_pad(entry[-1]) else " "
    return left + entry + right


def reference(captions, entries, rule="metaclip", ignore_case=False):
    pats = [pattern(e, rule) for e in entries]
    if ignore_case:
        pats = [p.lower() for p in pats]
    out = []
    for c in captions:
        t = spacing(c)
        if ignore_case:
            t = t.lower()
        out.append([i for i, p in enumerate(pats) if p in t])
    return out


def grep(entries, captions, rule="metaclip", ignore_case=False):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "list.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(entries, f, ensure_ascii=False)
        args = [BIN, "-q", "queries", "grep", "--list", path, "--jsonl", "--rule", rule]
        if ignore_case:
            args.append("--ignore-case")
        inp = "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in captions)
        r = subprocess.run(args, input=inp.encode(), capture_output=True)
        if r.returncode != 0:
            raise AssertionError(r.stderr.decode(errors="replace"))
        lines = r.stdout.decode().split("\n")
        assert lines[-1] == ""
        lines = lines[:-1]
        assert len(lines) == len(captions), (len(lines), len(captions))
        return [[int(x) for x in ln.split()] for ln in lines]


WORDS = ["cat", "cats", "at", "a", "black", "black cat", "cat food", "New York",
         "York", "new", "U.S.", "U.S", "e.g", "rock'n'roll", "C++", "C", "café", "Café",
         "naïve", "Ωmega", "straße", "東京", "東京タワー", "タワー", "猫", "ภาษาไทย", "ไทย",
         "a-b", "x:y", "hello world", "world", "!", "?!", "…", "«quote»", "(paren)",
         "ok", "OK", "Ok", "9", "99", "1999", "t\u00e9st", "🙂", "smile🙂"]
FILLER = ["the", "a", "of", "and", "in", "on", "photo", "image", "with", " ", "  ", ",", ".",
          ";", ":", "?", "!", "`", "\t", "\n", "\r", "-", "'", "\"", "(", ")", "、", "。", "「",
          "」", "…", "«", "»", "é", "ß"]


def gen_caption(rng, max_tokens=14):
    parts = []
    for _ in range(rng.randint(0, max_tokens)):
        r = rng.random()
        if r < 0.45:
            parts.append(rng.choice(WORDS))
        elif r < 0.8:
            parts.append(rng.choice(FILLER))
        else:
            parts.append(rng.choice(WORDS) + rng.choice(PUNCTS + ["", "s", "'s"]))
        parts.append(rng.choice([" ", " ", " ", "", ", ", ". ", "\t", "!"]))
    if rng.random() < 0.3:
        parts.insert(0, rng.choice(PUNCTS))
    if rng.random() < 0.3:
        parts.append(rng.choice(PUNCTS))
    return "".join(parts)


def gen_entries(rng, n):
    ents = set(WORDS)
    while len(ents) < n:
        k = rng.randint(1, 3)
        e = " ".join(rng.choice(WORDS) for _ in range(k))
        if rng.random() < 0.2:
            e = rng.choice(PUNCTS + ["-", "'", "("]) + e
        if rng.random() < 0.2:
            e = e + rng.choice(PUNCTS + ["-", "'", ")", "。"])
        ents.add(e)
    out = sorted(ents)
    rng.shuffle(out)
    return out


class TestSubcommandOptions(unittest.TestCase):
    def test_option_of_another_subcommand_is_named(self):
        """The queries subcommands share one option table: an option that
        belongs to another subcommand is a usage error naming it, not a
        silent exit 2."""
        for args, opt in ((["match", "--jsonl"], "--jsonl"),
                          (["import", "--rule", "metaclip", "x"], "--rule"),
                          (["grep", "-o", "out"], "--output")):
            r = subprocess.run([BIN, "queries"] + args, capture_output=True, text=True)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(opt + " is not an option of this subcommand", r.stderr)


class TestMatchRule(unittest.TestCase):
    def check(self, entries, captions, rule="metaclip", ignore_case=False):
        want = reference(captions, entries, rule, ignore_case)
        got = grep(entries, captions, rule, ignore_case)
        for i, (w, g) in enumerate(zip(want, got)):
            self.assertEqual(g, w, f"caption {i} {captions[i]!r} ({rule}, icase={ignore_case}): "
                                   f"witpipe {[entries[k] for k in g]} python "
                                   f"{[entries[k] for k in w]}")

    def test_generated_captions_metaclip(self):
        rng = random.Random(12)
        entries = gen_entries(rng, 300)
        captions = [gen_caption(rng) for _ in range(3000)]
        self.check(entries, captions)
        # the test is not vacuous: most captions match something, some do not
        matched = sum(1 for m in reference(captions, entries) if m)
        self.assertGreater(matched, 1000)
        self.assertLess(matched, 3000)

    def test_generated_captions_metaclip2(self):
        rng = random.Random(13)
        entries = gen_entries(rng, 300)
        captions = [gen_caption(rng) for _ in range(3000)]
        self.check(entries, captions, rule="metaclip2")
        # the rules differ on these captions (CJK/Thai/punctuation ends)
        self.assertNotEqual(reference(captions, entries, "metaclip"),
                            reference(captions, entries, "metaclip2"))

    def test_ignore_case(self):
        rng = random.Random(14)
        entries = gen_entries(rng, 200)
        # characters whose lowercase is one character (simple mapping)
        captions = [gen_caption(rng).upper() if rng.random() < 0.5 else gen_caption(rng)
                    for _ in range(2000)]
        captions = [c for c in captions if all(len(ch.lower()) == 1 for ch in c)]
        entries = [e for e in entries if all(len(ch.lower()) == 1 for ch in e)]
        self.check(entries, captions, ignore_case=True)

    def test_overlapping_prefix_suffix(self):
        entries = ["a", "a a", "a a a", "b", "a b", "ab", "b a", "a b a b", "aa"]
        captions = ["a a a a", "a b a b a", "aa ab", " a", "a", "b a b", "abab", "a  b",
                    "a,a.a;a", "a!b?a", "", " ", "aaa"]
        self.check(entries, captions)

    def test_punctuation_inside_entries(self):
        # entries holding wrapped punctuation can never match (the text has
        # spaces around it); others (- ' ( ) / +) match verbatim
        entries = ["U.S.", "e.g.", "x:y", "a-b", "rock'n'roll", "(paren)", "C++", "a/b", ".",
                   ",", "?!", "a ,", ", a", "Mr .", "dr"]
        captions = ["in the U.S. today", "e.g. this", "x:y", "a-b a/b", "(paren)",
                    "rock'n'roll!", "C++.", "Dr. dr.", "a , b", "end.", "a,b", "Mr. X",
                    "?!", "what?!"]
        self.check(entries, captions)
        self.check(entries, captions, rule="metaclip2")

    def test_unicode_and_cjk(self):
        entries = ["東京", "タワー", "東京タワー", "猫", "ภาษาไทย", "ไทย", "café", "🙂",
                   "straße", "「猫」", "。", "ok。"]
        captions = ["東京タワーの写真", "猫と犬", "ภาษาไทยสวย", "un café 🙂", "Straße straße",
                    "「猫」がいる", "ok。ok", "東京 タワー", "ไทย"]
        self.check(entries, captions)
        self.check(entries, captions, rule="metaclip2")

    def test_empty_and_huge_captions(self):
        rng = random.Random(15)
        entries = gen_entries(rng, 100)
        huge = " ".join(gen_caption(rng) for _ in range(20000))  # ~1 MB
        self.assertGreater(len(huge.encode()), 500000)
        captions = ["", " ", "\t\n\r", huge, "", huge[:100000] + "cat"]
        self.check(entries, captions)

    def test_entry_loading(self):
        # a line list keeps entries verbatim; empty lines and repeats are skipped
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "list.txt")
            with open(path, "w", encoding="utf-8") as f:
                f.write("cat\n\nblack cat\ncat\n a \r\nx" + "y" * 300 + "\n")
            r = subprocess.run([BIN, "queries", "grep", "--list", path],
                               input=b"a cat\nblack cat\n a \n", capture_output=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            # " a " (spaces kept) matches the padded caption " a "
            self.assertEqual(r.stdout.decode().split("\n"), ["0", "0 1", "2", ""])


class TestMatchCatalog(unittest.TestCase):
    def test_match_in_catalog_and_rematch(self):
        rng = random.Random(16)
        entries = gen_entries(rng, 150)
        captions = list(dict.fromkeys(gen_caption(rng) for _ in range(800)))
        with tempfile.TemporaryDirectory() as d:
            corpus = os.path.join(d, "c")
            self.assertEqual(subprocess.run([BIN, "init", corpus], capture_output=True).returncode, 0)
            rows = [{"url": f"https://img.example/{i}.jpg", "caption": c}
                    for i, c in enumerate(captions)]
            lst = os.path.join(d, "pairs.jsonl")
            with open(lst, "w", encoding="utf-8") as f:
                for r in rows:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
            r = subprocess.run([BIN, "-C", corpus, "add", lst], capture_output=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            meta = os.path.join(d, "metadata.json")

            def import_and_match(ents):
                with open(meta, "w", encoding="utf-8") as f:
                    json.dump(ents, f, ensure_ascii=False)
                for args in (["queries", "import", meta], ["queries", "match"]):
                    r = subprocess.run([BIN, "-C", corpus] + args, capture_output=True)
                    self.assertEqual(r.returncode, 0, r.stderr)

            import_and_match(entries)

            def stored():
                db = sqlite3.connect(os.path.join(corpus, "catalog.db"))
                got = {}
                for text, e in db.execute("SELECT p.text, m.entry FROM pairs p JOIN pair_matches m "
                                          "ON m.pair_id = p.id"):
                    got.setdefault(text, []).append(e)
                ver = db.execute("SELECT max(version) FROM query_lists").fetchone()[0]
                stale = db.execute("SELECT count(*) FROM pair_matched WHERE version != ?",
                                   (ver,)).fetchone()[0]
                db.close()
                return {k: sorted(v) for k, v in got.items()}, stale

            want = {c: m for c, m in zip(captions, reference(captions, entries)) if m}
            got, stale = stored()
            self.assertEqual(got, want)
            self.assertEqual(stale, 0)
            # a new list version: pairs matched against the old one are re-matched
            entries2 = entries[::-1][:100]
            import_and_match(entries2)
            want2 = {c: m for c, m in zip(captions, reference(captions, entries2)) if m}
            got2, stale2 = stored()
            self.assertEqual(got2, want2)
            self.assertEqual(stale2, 0)
            # and under another rule
            r = subprocess.run([BIN, "-C", corpus, "queries", "match", "--rule", "metaclip2"],
                               capture_output=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            want3 = {c: m for c, m in zip(captions, reference(captions, entries2, "metaclip2"))
                     if m}
            self.assertEqual(stored()[0], want3)


if __name__ == "__main__":
    unittest.main()
