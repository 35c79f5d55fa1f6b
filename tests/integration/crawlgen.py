"""tests/integration/crawlgen.py: builders for WARC and Common Crawl WAT
files used by the crawl tests and the crawl benchmark (stdlib only).

A WARC record is built per ISO 28500 (WARC/1.0 or 1.1 header, Content-Length,
block, CRLF CRLF); a .warc.gz file holds one gzip member per record, as
Common Crawl writes them. WAT records follow Common Crawl's JSON layout:
Envelope.WARC-Header-Metadata / Payload-Metadata.HTTP-Response-Metadata.
HTML-Metadata.{Head, Links}.

Run as `python3 -m tests.integration.crawlgen KIND ...` it writes the
hostile archives of the memory-budget tests (see hostile_main), so the
test process that measures witpipe's peak RSS never holds them.
"""
import gzip
import json
import os
import sqlite3
import subprocess
import tempfile


def warc_record(rtype, uri, block, content_type, version="1.1", extra=None):
    hdr = [f"WARC/{version}", f"WARC-Type: {rtype}"]
    if uri is not None:
        hdr.append(f"WARC-Target-URI: {uri}")
    hdr.append("WARC-Date: 2024-01-01T00:00:00Z")
    hdr.append("WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-%012d>" % (hash(uri) % 10**12))
    if content_type:
        hdr.append(f"Content-Type: {content_type}")
    for k, v in (extra or {}).items():
        hdr.append(f"{k}: {v}")
    hdr.append(f"Content-Length: {len(block)}")
    return ("\r\n".join(hdr) + "\r\n\r\n").encode() + block + b"\r\n\r\n"


def http_response(html, ctype="text/html; charset=utf-8", status=200, headers=None):
    if isinstance(html, str):
        html = html.encode()
    lines = [f"HTTP/1.1 {status} OK", f"Content-Type: {ctype}", f"Content-Length: {len(html)}"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + html


def response_record(uri, html, version="1.1", **kw):
    return warc_record("response", uri, http_response(html, **kw),
                       "application/http; msgtype=response", version)


def wat_json(uri, links, title=None, base=None, metas=None, rtype="response", headers=None):
    head = {}
    if title is not None:
        head["Title"] = title
    if base is not None:
        head["Base"] = base
    if metas:
        head["Metas"] = metas
    return json.dumps({
        "Container": {"Filename": "x.warc.gz", "Compressed": True},
        "Envelope": {
            "Format": "WARC",
            "WARC-Header-Length": "500",
            "WARC-Header-Metadata": {"WARC-Type": rtype, "WARC-Target-URI": uri},
            "Payload-Metadata": {
                "Actual-Content-Type": "application/http; msgtype=response",
                "HTTP-Response-Metadata": {
                    "Response-Message": {"Status": "200", "Version": "HTTP/1.1"},
                    "Headers": headers if headers is not None else {"Content-Type": "text/html"},
                    "HTML-Metadata": {"Head": head, "Links": links},
                },
            },
        },
    }).encode()


def wat_record(uri, payload):
    return warc_record("metadata", uri, payload, "application/json")


def write_gz_members(path, records):
    """Writes one gzip member per record; returns the member start offsets."""
    offsets = []
    with open(path, "wb") as f:
        for r in records:
            offsets.append(f.tell())
            f.write(gzip.compress(r, compresslevel=6, mtime=0))
    return offsets


def pairs(corpus):
    """The catalog's pairs as a sorted list of (image URL, text)."""
    db = sqlite3.connect(os.path.join(corpus, "catalog.db"))
    try:
        rows = db.execute("SELECT i.url, p.text FROM pairs p JOIN images i ON i.id = p.image_id"
                          ).fetchall()
    finally:
        db.close()
    return sorted(rows)


def query(corpus, sql, args=()):
    db = sqlite3.connect(os.path.join(corpus, "catalog.db"))
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


ROBOTS_OPT_OUT = {"noai", "noimageai", "noindex", "noimageindex", "none", "unavailable_after"}


def robots_cases():
    """The shared robots-directive table (tests/data/robots_cases.tsv, also
    read by the C tests through tests/lib/robots_cases.c): a list of
    (field lines, expected flag words, opts out) for product token witpipe."""
    path = os.path.join(os.path.dirname(__file__), "..", "data", "robots_cases.tsv")
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line or line.startswith("#"):
                continue
            value, flags = line.split("\t")
            words = set(flags.split()) - {"-"}
            out.append((value.split("\\n"), words, bool(words & ROBOTS_OPT_OUT)))
    return out



def wat_links_json(uri, n, start=0):
    """A WAT record's JSON (the usual layout) with n IMG@/src links, built
    as text: a 64 MB one in about a second."""
    links = ",".join('{"path":"IMG@/src","url":"/i/%d.jpg","alt":"picture %d"}' % (i, i)
                     for i in range(start, start + n))
    return ('{"Envelope":{"Format":"WARC","WARC-Header-Metadata":{"WARC-Type":"response",'
            '"WARC-Target-URI":"%s"},"Payload-Metadata":{"HTTP-Response-Metadata":{"Headers":'
            '{"Content-Type":"text/html"},"HTML-Metadata":{"Head":{"Title":"t"},"Links":[%s]}}}}}'
            % (uri, links)).encode()


def hostile_main(argv):
    """wat-links OUT URI LINKS COPIES: one WAT record of LINKS image links,
    its gzip member written COPIES times (prints the record's size);
    warc-figure OUT PAGES IMAGES CAPTION_CHARS: PAGES response records, each
    one <figure> with a caption of CAPTION_CHARS characters over IMAGES
    <img> (prints the member offsets)."""
    kind, out = argv[0], argv[1]
    if kind == "wat-links":
        uri, n, copies = argv[2], int(argv[3]), int(argv[4])
        payload = wat_links_json(uri, n)
        member = gzip.compress(wat_record(uri, payload), compresslevel=6, mtime=0)
        with open(out, "wb") as f:
            for _ in range(copies):
                f.write(member)
        print(len(payload))
    elif kind == "warc-figure":
        pages, n, chars = int(argv[2]), int(argv[3]), int(argv[4])
        caption = ("a long caption " * (chars // 15 + 1))[:chars]
        imgs = "".join("<img src=/i/%d.jpg>" % i for i in range(n))
        html = ("<html><body><figure><figcaption>%s</figcaption>%s</figure></body></html>"
                % (caption, imgs))
        offs = write_gz_members(out, [response_record("http://ex.com/p%d.html" % k, html)
                                      for k in range(pages)])
        print(" ".join(map(str, offs)))
    else:
        raise SystemExit("unknown kind " + kind)


if __name__ == "__main__":
    import sys
    hostile_main(sys.argv[1:])
