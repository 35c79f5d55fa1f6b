"""tests/integration/test_balance_build.py: `witpipe queries build` on the
small shipped corpus (tests/data/balance: corpus.txt, titles.txt and a
WordNet-format sample). The test tokenises the corpus itself (cut at white
space and at , . ; : ? ! `; punctuation breaks bigrams), computes unigram
counts and bigram PMI = ln(c(ab) N / (c(a) c(b))), and checks the list:
every unigram at or above --min-count and every bigram at or above
--min-pmi (and --min-bigram-count) is in it, none below; WordNet lemmas
(underscores as spaces, adjective markers stripped), titles and numbers are
in it; --max-entries keeps the most frequent; a gzip corpus gives the same
list; a bounded counting table still finds the frequent items; the real
WordNet (Debian's wordnet-base) when installed.
"""
import gzip
import math
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("WITPIPE_BIN", os.path.join(ROOT, "build", "witpipe"))
DATA = os.path.join(ROOT, "tests", "data", "balance")


def tokens_of(line):
    out, cur = [], []
    for piece in re.split(r"([ \t\r\n,.;:?!`])", line):
        if piece == "" or piece in " \t\r\n":
            continue
        if piece in ",.;:?!`":
            out.append(None)  # a cut
            continue
        out.append(piece)
    return out


def corpus_stats(path):
    uni, bi, n = {}, {}, 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            prev = None
            for tok in tokens_of(line.rstrip("\n")):
                if tok is None:
                    prev = None
                    continue
                n += 1
                uni[tok] = uni.get(tok, 0) + 1
                if prev is not None:
                    bi[(prev, tok)] = bi.get((prev, tok), 0) + 1
                prev = tok
    return uni, bi, n


def build(*args):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "list.txt")
        r = subprocess.run([BIN, "queries", "build", "-o", out, *args], capture_output=True)
        if r.returncode != 0:
            raise AssertionError(r.stderr.decode())
        with open(out, encoding="utf-8") as f:
            return f.read().split("\n")[:-1]


class TestQueriesBuild(unittest.TestCase):
    CORPUS = os.path.join(DATA, "corpus.txt")
    WN = os.path.join(DATA, "wordnet")
    ARGS = ["--wordnet", WN, "--titles", os.path.join(DATA, "titles.txt"),
            "--min-count", "50", "--min-pmi", "2.0", "--min-bigram-count", "5",
            "--text-corpus", CORPUS]

    def test_entries(self):
        got = build(*self.ARGS)
        self.assertEqual(len(got), len(set(got)))
        s = set(got)
        uni, bi, n = corpus_stats(self.CORPUS)
        # WordNet lemmas (underscore -> space, markers stripped), titles, numbers
        for e in ["ice cream", "cat", "true cat", "drink", "able", "elect", "elite", "quickly",
                  "The Starry Night", "Mona Lisa", "Guernica", "0", "42", "99"]:
            self.assertIn(e, s)
        self.assertNotIn("elect(ip)", s)
        self.assertNotIn("", s)
        # unigrams by count
        for w, c in uni.items():
            if c >= 50:
                self.assertIn(w, s)
        # bigrams by PMI: checked both ways, with known cases on each side
        above = below = 0
        for (a, b), c in bi.items():
            pmi = math.log(c * n / (uni[a] * uni[b]))
            entry = f"{a} {b}"
            listed_otherwise = entry in ("ice cream",)  # also a WordNet lemma
            if c >= 5 and pmi >= 2.0:
                self.assertIn(entry, s, (entry, pmi))
                above += 1
            elif not listed_otherwise:
                self.assertNotIn(entry, s, (entry, c, pmi))
                if c >= 5:
                    below += 1
        self.assertGreater(above, 2)
        self.assertGreater(below, 2)
        pmi_ny = math.log(bi[("New", "York")] * n / (uni["New"] * uni["York"]))
        pmi_the_cat = math.log(bi[("the", "cat")] * n / (uni["the"] * uni["cat"]))
        self.assertGreater(pmi_ny, 2.0)
        self.assertLess(pmi_the_cat, 2.0)
        self.assertIn("New York", s)
        self.assertNotIn("the cat", s)
        # ranked by corpus count: "the" is the most frequent token
        self.assertEqual(got[0], "the")

    def test_max_entries_and_gzip(self):
        full = build(*self.ARGS)
        top = build(*self.ARGS, "--max-entries", "10")
        self.assertEqual(top, full[:10])
        with tempfile.TemporaryDirectory() as d:
            gz = os.path.join(d, "corpus.txt.gz")
            with open(self.CORPUS, "rb") as f, gzip.open(gz, "wb") as g:
                g.write(f.read())
            args = [a if a != self.CORPUS else gz for a in self.ARGS]
            self.assertEqual(build(*args), full)

    def test_bounded_table(self):
        # far fewer slots than the corpus has distinct items: frequent ones survive
        got = set(build(*self.ARGS, "--table-max", "1024", "--no-numbers"))
        uni, _, _ = corpus_stats(self.CORPUS)
        for w, c in uni.items():
            if c >= 400:
                self.assertIn(w, got)
        self.assertNotIn("42", got)

    def test_default_corpus_is_the_catalog_and_import(self):
        with tempfile.TemporaryDirectory() as d:
            corpus = os.path.join(d, "c")
            self.assertEqual(subprocess.run([BIN, "init", corpus], capture_output=True).returncode, 0)
            lst = os.path.join(d, "l.tsv")
            with open(self.CORPUS) as f, open(lst, "w") as o:
                o.write("url\tcaption\n")
                for i, line in enumerate(f):
                    o.write(f"https://img.example/{i}.jpg\t{line}")
            self.assertEqual(subprocess.run([BIN, "-C", corpus, "add", lst],
                                            capture_output=True).returncode, 0)
            out = os.path.join(d, "q.txt")
            r = subprocess.run([BIN, "-C", corpus, "queries", "build", "-o", out, "--import",
                                "--wordnet", self.WN, "--min-count", "50", "--min-pmi", "2.0",
                                "--min-bigram-count", "5"], capture_output=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out) as f:
                got = f.read().split("\n")[:-1]
            self.assertEqual(got, build(*[a for a in self.ARGS if a not in (
                "--titles", os.path.join(DATA, "titles.txt"))]))
            db = sqlite3.connect(os.path.join(corpus, "catalog.db"))
            stored = [t for (t,) in db.execute("SELECT text FROM queries ORDER BY entry")]
            db.close()
            self.assertEqual(stored, got)

    def test_real_wordnet(self):
        if not os.path.exists("/usr/share/wordnet/data.noun"):
            self.skipTest("SKIP: /usr/share/wordnet absent (apt-get install wordnet-base)")
        got = set(build(self.CORPUS, "--max-entries", "1000000"))
        for e in ["dog", "ice cream", "New York", "run", "quickly", "United States"]:
            self.assertIn(e, got)
        self.assertGreater(len(got), 100000)

    def test_missing_wordnet_is_an_error(self):
        with tempfile.TemporaryDirectory() as d:
            r = subprocess.run([BIN, "queries", "build", "-o", os.path.join(d, "x"), "--wordnet",
                                d, self.CORPUS], capture_output=True)
            self.assertEqual(r.returncode, 1)
            self.assertIn(b"WordNet", r.stderr)


if __name__ == "__main__":
    unittest.main()
