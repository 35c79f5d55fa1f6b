"""tests/integration/test_parquet.py: the independent, standard-library
Parquet reader (pq_spec_reader.py) that checks witpipe's Parquet output
(tests/unit/test_parquet_write.c runs it on files the C writer made) is
itself checked here: on the real files of ../shared/testdata/parquet whose
codecs the standard library has (UNCOMPRESSED, GZIP), it must read the
values another reader (arrow-rs) found, and it must refuse a corrupt page
CRC. Skips loudly without ../shared.
"""
import base64
import json
import math
import os
import unittest

from tests.integration import pq_spec_reader

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("WITPIPE_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
PQ = os.path.join(SHARED, "testdata", "parquet")

FILES = ["alltypes_plain.parquet", "alltypes_dictionary.parquet", "binary.parquet",
         "concatenated_gzip_members.parquet", "fixed_length_byte_array.parquet",
         "int32_with_null_pages.parquet", "plain-dict-uncompressed-checksum.parquet"]


def norm_expected(v, atype):
    """The expected dump's value in the spec reader's output form."""
    if v is None:
        return None
    if isinstance(v, dict):
        return {"hex": base64.b64decode(v["base64"]).hex()}
    if atype.startswith(("Int", "Uint")):
        return int(v)
    if atype.startswith("Timestamp"):
        return int(v) * 1000000  # milliseconds in the dump, nanoseconds here
    return v


@unittest.skipUnless(os.path.isdir(PQ), "SKIP: ../shared/testdata/parquet absent")
class SpecReaderTest(unittest.TestCase):
    def test_reads_reference_files(self):
        compared = 0
        for name in FILES:
            with open(os.path.join(PQ, "expected", name[:-len(".parquet")] + ".json")) as f:
                exp = json.load(f)
            got = pq_spec_reader.read(os.path.join(PQ, name))
            self.assertEqual(got["num_rows"], exp["num_rows"], name)
            types = {s["name"]: s["type"] for s in exp["schema"]}
            self.assertEqual(got["columns"], [s["name"] for s in exp["schema"]], name)
            for i, row in enumerate(exp["rows"]):
                for c, col in enumerate(got["columns"]):
                    want = norm_expected(row[col], types[col])
                    have = got["rows"][i][c]
                    if isinstance(want, float) and math.isnan(want):
                        self.assertEqual(have, "NaN")
                    else:
                        self.assertEqual(have, want, "%s row %d column %s" % (name, i, col))
                    compared += 1
        self.assertGreater(compared, 3000)

    def test_refuses_corrupt_crc(self):
        with self.assertRaisesRegex(pq_spec_reader.ParquetError, "CRC"):
            pq_spec_reader.read(os.path.join(PQ, "datapage_v1-corrupt-checksum.parquet"))


if __name__ == "__main__":
    unittest.main()
