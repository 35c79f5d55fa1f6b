"""tests/integration/test_model_pull.py: `witpipe model pull` driven through
the binary against a Hugging Face style hub served by this test on
127.0.0.1 (http.server, ephemeral port).

The hub answers the file-list API, redirects the weights to a "CDN" path
with X-Linked-Etag / X-Linked-Size as huggingface.co does, honours Range,
and cuts the first weights download half way, so the command must resume.
Checked: exit codes, the folder printed on stdout, the bytes of every file,
that only CLIP files are fetched, HF_ENDPOINT, and a second run that
downloads nothing.
"""
import hashlib
import http.server
import json
import os
import random
import shutil
import subprocess
import tempfile
import threading
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("WITPIPE_BIN", os.path.join(ROOT, "build", "witpipe"))

REPO = "acme/tiny-clip"
RNG = random.Random(5)
WEIGHTS = bytes(RNG.getrandbits(8) for _ in range(200_003))
FILES = {
    "config.json": (b'{"model_type": "clip"}', False),
    "vocab.json": (b'{"a": 0}', False),
    "merges.txt": (b"#version: 0.2\n", False),
    "preprocessor_config.json": (b'{"crop_size": 224}', False),
    "model.safetensors": (WEIGHTS, True),
    "flax_model.msgpack": (b"not needed", True),
}


class Hub(http.server.BaseHTTPRequestHandler):
    cuts = {}
    log = []

    def log_message(self, *args):
        pass

    def send_bytes(self, data, lfs_sha=None):
        rng = self.headers.get("Range")
        start = 0
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % len(data))
                self.end_headers()
                return
        body = data[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        if rng:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        if lfs_sha is None:
            self.send_header("ETag", '"%s"' % hashlib.sha256(data).hexdigest())
        self.end_headers()
        name = self.path.rsplit("/", 1)[-1]
        if self.cuts.get(name, 0) > 0:
            self.cuts[name] -= 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def do_GET(self):
        self.log.append((self.path, self.headers.get("Range")))
        api = "/api/models/%s/revision/" % REPO
        resolve = "/%s/resolve/main/" % REPO
        if self.path.startswith(api):
            body = json.dumps({"id": REPO, "siblings": [{"rfilename": f} for f in FILES]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path.startswith(resolve) and self.path[len(resolve):] in FILES:
            name = self.path[len(resolve):]
            data, lfs = FILES[name]
            if lfs:
                self.send_response(302)
                self.send_header("Location", "/cdn/" + name)
                self.send_header("X-Linked-Etag", '"%s"' % hashlib.sha256(data).hexdigest())
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self.send_bytes(data)
        elif self.path.startswith("/cdn/") and self.path[5:] in FILES:
            self.send_bytes(FILES[self.path[5:]][0], lfs_sha=True)
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()


class ModelPullTest(unittest.TestCase):
    def setUp(self):
        Hub.cuts = {"model.safetensors": 1}
        Hub.log = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.cache = tempfile.mkdtemp(prefix="witpipe-pull-")

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.cache, ignore_errors=True)

    def run_pull(self, *args, env=None):
        e = dict(os.environ)
        e.pop("HF_TOKEN", None)
        e.update(env or {})
        return subprocess.run([BIN, "model", "pull", *args], capture_output=True, env=e, timeout=120)

    def test_pull_resumes_and_verifies(self):
        r = self.run_pull(REPO, "--endpoint", self.endpoint, "--cache", self.cache)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        folder = r.stdout.decode().strip()
        self.assertEqual(folder, os.path.join(self.cache, REPO))
        for name, (data, _) in FILES.items():
            path = os.path.join(folder, name)
            if name == "flax_model.msgpack":
                self.assertFalse(os.path.exists(path))
                continue
            with open(path, "rb") as f:
                self.assertEqual(f.read(), data, name)
        self.assertEqual(sorted(os.listdir(folder)), sorted(n for n in FILES if n != "flax_model.msgpack"))
        cdn = [rng for path, rng in Hub.log if path == "/cdn/model.safetensors"]
        self.assertEqual(len(cdn), 2)
        self.assertIsNone(cdn[0])
        self.assertTrue(cdn[1].startswith("bytes=") and cdn[1] != "bytes=0-", cdn[1])

        # everything is in place: only the file list is asked for
        Hub.log = []
        r = self.run_pull(REPO, "--cache", self.cache, env={"HF_ENDPOINT": self.endpoint})
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual([p for p, _ in Hub.log], ["/api/models/%s/revision/main" % REPO])

    def test_errors(self):
        r = self.run_pull("acme/missing", "--endpoint", self.endpoint, "--cache", self.cache)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"404", r.stderr)
        r = self.run_pull("--endpoint", self.endpoint)
        self.assertEqual(r.returncode, 2)
        r = self.run_pull(REPO, "--bogus")
        self.assertEqual(r.returncode, 2)
        r = subprocess.run([BIN, "model", "frobnicate"], capture_output=True)
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
