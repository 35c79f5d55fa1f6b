#!/usr/bin/env python3
"""bench/gen_crawl.py: writes a WARC.gz (and a WAT.gz) of realistic,
deterministic pages for bench/bench_crawl.sh.

usage: gen_crawl.py OUT.warc.gz OUT.wat.gz MEGABYTES [SEED]

Pages look like the web Common Crawl sees: a head with metas, stylesheet
links, inline CSS, inline scripts and JSON-LD; a navigation bar with icons
repeated on every page of a site; article text; 5-25 images per page with
alt text, some lazy-loaded (data-src), some with srcset, some in
<figure>s with captions, some tracking pixels and data: URIs; sidebar and
footer links. Each page is its own response record in its own gzip member,
preceded by its request record, as Common Crawl writes them. MEGABYTES is
the uncompressed size of the WARC to write; the WAT holds the same pages'
metadata in Common Crawl's JSON layout.
"""
import json
import random
import sys
import zlib

WORDS = None


def words(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def gz_member(data, level=6):
    c = zlib.compressobj(level, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def warc(rtype, uri, block, ctype, rid):
    hdr = (f"WARC/1.1\r\nWARC-Type: {rtype}\r\nWARC-Target-URI: {uri}\r\n"
           f"WARC-Date: 2024-03-01T12:00:00Z\r\nWARC-Record-ID: <urn:uuid:{rid:032x}>\r\n"
           f"Content-Type: {ctype}\r\nContent-Length: {len(block)}\r\n\r\n")
    return hdr.encode() + block + b"\r\n\r\n"


def make_page(rng, site, n, sentences, script_pool, css):
    host = f"www.site{site}.example"
    url = f"https://{host}/articles/{n}/story-{rng.randrange(10**6)}.html"
    title = words(rng, rng.randrange(4, 10)).title()
    imgs, links = [], []
    h = ["<!DOCTYPE html>", f"<html lang=\"{rng.choice(['en', 'en-US', 'de', 'fr', 'es'])}\">",
         "<head><meta charset=\"utf-8\">", f"<title>{title} | Site {site}</title>"]
    for k in range(12):
        h.append(f"<meta name=\"m{k}\" content=\"{words(rng, 6)}\">")
    h.append(f"<meta property=\"og:title\" content=\"{title}\">")
    for k in range(6):
        h.append(f"<link rel=\"stylesheet\" href=\"/static/css/s{k}.{site}.css\">")
    h.append(f"<style>{css}</style>")
    for k in range(rng.randrange(2, 5)):
        h.append(f"<script>{rng.choice(script_pool)}</script>")
    h.append("<script type=\"application/ld+json\">" + json.dumps(
        {"@context": "https://schema.org", "@type": "Article", "headline": title,
         "author": words(rng, 2)}) + "</script></head><body>")
    h.append("<header><nav class=\"top\"><ul>")
    for k in range(12):
        href = f"/section/{k}/"
        links.append((href, f"Section {k}"))
        h.append(f"<li><a href=\"{href}\"><img src=\"/static/icons/i{k}.png\" alt=\"Section {k}\" "
                 f"width=\"24\" height=\"24\"> Section {k}</a></li>")
    h.append("</ul></nav></header><main><article>")
    h.append(f"<h1>{title}</h1>")
    nimg = rng.randrange(5, 26)
    npara = rng.randrange(10, 30)
    slots = sorted(rng.sample(range(npara), min(nimg, npara)))
    for p in range(npara):
        body = " ".join(rng.choice(sentences) for _ in range(rng.randrange(3, 9)))
        if rng.random() < 0.7:
            href = f"https://{rng.choice(['www', 'blog', 'shop'])}.site{rng.randrange(300)}.example/" \
                   f"{'/'.join(rng.sample(WORDS, 3))}.html"
            text = words(rng, rng.randrange(2, 6))
            links.append((href, text))
            body += f" <a href=\"{href}\">{text}</a>."
        h.append("<p>" + body + "</p>")
        if slots and p == slots[0]:
            slots.pop(0)
            iid = rng.randrange(10**9)
            src = f"https://img.site{site}.example/media/{iid}.jpg"
            alt = rng.choice(sentences)[: rng.randrange(20, 120)]
            kind = rng.random()
            if kind < 0.2:
                h.append(f"<figure><img src=\"{src}\" alt=\"{alt}\" width=\"800\" height=\"600\">"
                         f"<figcaption>{rng.choice(sentences)}</figcaption></figure>")
            elif kind < 0.4:
                h.append(f"<img src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\" "
                         f"data-src=\"{src}\" alt=\"{alt}\" class=\"lazy\">")
            elif kind < 0.6:
                h.append(f"<img src=\"{src}\" srcset=\"{src}?w=320 320w, {src}?w=640 640w, "
                         f"{src}?w=1280 1280w\" sizes=\"100vw\" alt=\"{alt}\">")
            elif kind < 0.65:
                src = f"https://track.example/p.gif?id={iid}"
                alt = ""
                h.append(f"<img src=\"{src}\" width=\"1\" height=\"1\">")
            else:
                h.append(f"<img src=\"/media/{iid}.jpg\" alt=\"{alt}\" loading=\"lazy\">")
            imgs.append((src, alt))
    h.append("</article><aside><ul>")
    for k in range(rng.randrange(40, 120)):
        href = f"/articles/{rng.randrange(10**5)}/{'-'.join(rng.sample(WORDS, 4))}/"
        text = words(rng, rng.randrange(3, 8))
        links.append((href, text))
        h.append(f"<li><a href=\"{href}\">{text}</a></li>")
    h.append("</ul></aside></main><footer><p>&copy; 2024 Site " + str(site) + " &middot; "
             + words(rng, 20) + "</p></footer>")
    h.append(f"<script>{rng.choice(script_pool)}</script></body></html>")
    return url, title, "\n".join(h).encode(), imgs, links


def wat_payload(rng, url, title, imgs, links, n):
    lk = [{"path": "A@/href", "url": l, "text": t} for l, t in links]
    for s, a in imgs:
        e = {"path": "IMG@/src", "url": s}
        if a:
            e["alt"] = a
        lk.insert(rng.randrange(len(lk) + 1), e)
    sha = "sha1:%032X" % rng.getrandbits(128)
    return json.dumps({
        "Container": {"Filename": "CC-MAIN-bench-00000.warc.gz", "Compressed": True,
                      "Offset": str(1000 * n),
                      "Gzip-Metadata": {"Inflated-Length": "60000", "Footer-Length": "8",
                                        "Inflated-CRC": str(rng.getrandbits(31)),
                                        "Deflate-Length": "15000", "Header-Length": "10"}},
        "Envelope": {
            "Format": "WARC", "WARC-Header-Length": "600", "Actual-Content-Length": "60000",
            "WARC-Header-Metadata": {
                "WARC-Type": "response", "WARC-Date": "2024-03-01T12:00:00Z",
                "WARC-Record-ID": "<urn:uuid:%032x>" % rng.getrandbits(128),
                "Content-Length": "60000", "Content-Type": "application/http; msgtype=response",
                "WARC-Warcinfo-ID": "<urn:uuid:%032x>" % 1,
                "WARC-Concurrent-To": "<urn:uuid:%032x>" % rng.getrandbits(128),
                "WARC-IP-Address": "192.0.2.%d" % rng.randrange(256),
                "WARC-Target-URI": url, "WARC-Payload-Digest": sha, "WARC-Block-Digest": sha,
                "WARC-Identified-Payload-Type": "text/html"},
            "Block-Digest": sha,
            "Payload-Metadata": {
                "Actual-Content-Type": "application/http; msgtype=response",
                "HTTP-Response-Metadata": {
                    "Headers-Length": "450", "Entity-Length": "59500",
                    "Entity-Trailing-Slop-Length": "0",
                    "Response-Message": {"Version": "HTTP/1.1", "Status": "200", "Reason": "OK"},
                    "Headers": {"Date": "Fri, 01 Mar 2024 12:00:00 GMT", "Server": "nginx/1.25",
                                "Content-Type": "text/html; charset=utf-8",
                                "Cache-Control": "max-age=600", "Vary": "Accept-Encoding",
                                "X-Frame-Options": "SAMEORIGIN", "Connection": "close"},
                    "HTML-Metadata": {
                        "Head": {"Title": title,
                                 "Metas": [{"name": f"m{k}", "content": words(rng, 6)}
                                           for k in range(12)],
                                 "Link": [{"path": "LINK@/href", "url": f"/static/css/s{k}.css",
                                           "rel": "stylesheet"} for k in range(6)],
                                 "Scripts": [{"path": "SCRIPT@/src", "url": f"/static/js/{k}.js",
                                              "type": "text/javascript"} for k in range(4)]},
                        "Links": lk},
                    "Entity-Digest": sha}}}}).encode()


def main():
    global WORDS
    out_warc, out_wat, mb = sys.argv[1], sys.argv[2], float(sys.argv[3])
    rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 42)
    WORDS = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randrange(2, 11)))
             for _ in range(5000)]
    sentences = [words(rng, rng.randrange(6, 25)).capitalize() + "." for _ in range(4000)]
    script_pool = ["var " + ";var ".join(f"{w}{k}=function(a,b){{return a+b*{k}}}" for k, w in
                                          enumerate(rng.sample(WORDS, 200))) for _ in range(30)]
    css = " ".join(f".c{k}{{margin:{k}px;padding:{k % 7}px;color:#{k * 1234 % 0xffffff:06x}}}"
                   for k in range(150))
    limit = int(mb * 1024 * 1024)
    written = pages = 0
    with open(out_warc, "wb") as fw, open(out_wat, "wb") as ft:
        info = b"software: witpipe bench/gen_crawl.py\r\nformat: WARC File Format 1.1\r\n"
        fw.write(gz_member(warc("warcinfo", "urn:x", info, "application/warc-fields", 0)))
        ft.write(gz_member(warc("warcinfo", "urn:x", info, "application/warc-fields", 0)))
        while written < limit:
            site = rng.randrange(300)
            url, title, html, imgs, links = make_page(rng, site, pages, sentences, script_pool, css)
            req = f"GET {url} HTTP/1.1\r\nHost: x\r\nUser-Agent: bench\r\n\r\n".encode()
            resp = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                    b"Content-Length: " + str(len(html)).encode() + b"\r\n\r\n" + html)
            r1 = warc("request", url, req, "application/http; msgtype=request", 2 * pages + 1)
            r2 = warc("response", url, resp, "application/http; msgtype=response", 2 * pages + 2)
            fw.write(gz_member(r1))
            fw.write(gz_member(r2))
            ft.write(gz_member(warc("metadata", url, wat_payload(rng, url, title, imgs, links,
                                                                 pages),
                                    "application/json", pages)))
            written += len(r1) + len(r2)
            pages += 1
    print(f"{pages} pages, {written / 1048576:.0f} MB uncompressed")


if __name__ == "__main__":
    main()
