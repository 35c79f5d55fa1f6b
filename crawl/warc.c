/*
 * crawl/warc.c: a streaming WARC 1.0/1.1 record reader (ISO 28500), plain
 * or gzip, on top of zlib.
 *
 * Why not libarchive's WARC reader: it accepts only up to WARC/1.0 and
 * drops the host from the target URI. Why zlib directly: Common Crawl
 * writes one gzip member per record, and knowing where each member starts
 * gives us byte offsets to report for corrupt input, resume points for
 * archive_progress, and a place to restart after a damaged member.
 *
 * Memory is flat: a window of decompressed bytes holds at most one record
 * (up to max_record; larger blocks stream through) plus read-ahead.
 *
 * Speed: a member that lies whole in the input buffer and fits the window
 * is inflated in one call by libdeflate, about twice as fast as zlib's
 * streaming inflate. Anything else (a member larger than the buffers, a
 * damaged or truncated one) goes through zlib, which alone decides what is
 * corrupt and where, so both paths report the same errors.
 */
#include "crawl_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <brotli/decode.h>
#include <libdeflate.h>
#include <unistd.h>
#include <zlib.h>

#define IN_CHUNK    (256 * 1024)   /* compressed bytes read at once */
#define OUT_CHUNK   (256 * 1024)   /* decompressed bytes produced at once */
#define SKIP_CHUNK  (1 << 20)      /* a too-large block passes in pieces this big */
#define FAST_MIN_IN (IN_CHUNK / 2) /* compressed bytes at hand before a one-call inflate */
/* Decompressed bytes a member after damaged ones must give before it ends
 * the damaged stretch without reaching its own end (see produce). */
#define STRETCH_PROBE (1 << 20)

struct boundary {
    int64_t dec;  /* decompressed offset where a member starts */
    int64_t comp; /* its compressed offset */
};

struct warc_reader {
    char path[WP_PATH_MAX];
    int fd;
    int gzip;
    z_stream zs;
    int zinit;
    struct libdeflate_decompressor *ld;
    int member_open;
    unsigned char *in;
    size_t in_len;
    int64_t in_file_off; /* file offset of in[0] */
    int file_eof;
    int stream_eof; /* no more decompressed data will come */
    char *win;
    size_t win_cap, wpos, wlen;
    int64_t dbase; /* decompressed offset of win[0] (file offset if plain) */
    struct boundary *bd;
    size_t nbd, capbd;
    size_t max_record;
    uint64_t index;
    int corrupt; /* a gzip-level error is waiting to be reported */
    char corrupt_msg[WP_ERR_MAX];
    /* A damaged stretch being skipped (one bad member header or damaged
     * member after another): reported once, when a member decodes after
     * it or the file ends. */
    int64_t bad_from; /* compressed offset of its first damaged spot; -1: none */
    uint64_t bad_n;   /* damaged spots in it */
    char bad_what[256];
    uint64_t bytes_read; /* from the file, for tests */
};

int64_t warc_consumed(const warc_reader *r)
{
    if (!r->gzip)
        return r->dbase + (int64_t)r->wpos;
    return r->in_file_off + (int64_t)(r->zs.next_in ? (size_t)(r->zs.next_in - r->in) : 0);
}

int warc_is_gzip(const warc_reader *r)
{
    return r->gzip;
}

uint64_t warc_bytes_read(const warc_reader *r)
{
    return r->bytes_read;
}

static int push_boundary(warc_reader *r, int64_t dec, int64_t comp)
{
    if (r->nbd > 0 && r->bd[r->nbd - 1].dec == dec) {
        r->bd[r->nbd - 1].comp = comp;
        return 0;
    }
    if (r->nbd == r->capbd) {
        size_t cap = r->capbd ? r->capbd * 2 : 64;
        struct boundary *p = realloc(r->bd, cap * sizeof *p);
        if (p == NULL)
            return WP_ENOMEM;
        r->bd = p;
        r->capbd = cap;
    }
    r->bd[r->nbd].dec = dec;
    r->bd[r->nbd].comp = comp;
    r->nbd++;
    return 0;
}

/* Compressed offset of the member holding decompressed offset dec; *exact
 * is 1 when a member starts exactly there. */
static int64_t comp_of(const warc_reader *r, int64_t dec, int *exact)
{
    int64_t c = 0;
    *exact = 0;
    if (!r->gzip) {
        *exact = 1;
        return dec;
    }
    for (size_t i = r->nbd; i-- > 0;) {
        if (r->bd[i].dec <= dec) {
            c = r->bd[i].comp;
            *exact = r->bd[i].dec == dec;
            break;
        }
    }
    return c;
}

/* Makes room at the window's end: moves the unread part to the front and
 * grows the window if it is still too small for `want` more bytes. */
static int make_room(warc_reader *r, size_t want)
{
    if (r->wpos > 0 && r->win_cap - r->wlen < want) {
        memmove(r->win, r->win + r->wpos, r->wlen - r->wpos);
        r->dbase += (int64_t)r->wpos;
        r->wlen -= r->wpos;
        r->wpos = 0;
        /* Forget member starts we can no longer be asked about. */
        size_t keep = 0;
        while (keep + 1 < r->nbd && r->bd[keep + 1].dec <= r->dbase)
            keep++;
        if (keep > 0) {
            memmove(r->bd, r->bd + keep, (r->nbd - keep) * sizeof *r->bd);
            r->nbd -= keep;
        }
    }
    if (r->win_cap - r->wlen < want) {
        size_t cap = r->win_cap;
        char *p;
        while (cap - r->wlen < want)
            cap *= 2;
        if ((p = realloc(r->win, cap + 1)) == NULL)
            return WP_ENOMEM;
        r->win = p;
        r->win_cap = cap;
    }
    return 0;
}

static int read_raw(warc_reader *r, wp_err *err)
{
    size_t keep = r->zs.avail_in;
    ssize_t n;
    if (keep > 0 && r->zs.next_in != r->in)
        memmove(r->in, r->zs.next_in, keep);
    r->in_file_off += (int64_t)(r->in_len - keep);
    r->in_len = keep;
    do
        n = read(r->fd, r->in + keep, IN_CHUNK - keep);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return wp_err_set(err, WP_EIO, "%s: read error at byte %lld: %s", r->path,
                          (long long)(r->in_file_off + (int64_t)keep), strerror(errno));
    if (n == 0)
        r->file_eof = 1;
    r->bytes_read += (uint64_t)n;
    r->in_len += (size_t)n;
    r->zs.next_in = r->in;
    r->zs.avail_in = (uInt)r->in_len;
    return 0;
}

/* After damage: goes on at compressed offset `from` (without reading the
 * file again when the input buffer still holds it) and skips to the first
 * gzip member header (1f 8b 08) there or after it, or to the end of the
 * file. Starting from just after the damaged member's own start (rather
 * than where zlib noticed) keeps the following member when the damaged one
 * was truncated and zlib read on into its neighbour. */
static int seek_next_member(warc_reader *r, int64_t from, wp_err *err)
{
    int rc;
    r->member_open = 0;
    if (from >= r->in_file_off && from <= r->in_file_off + (int64_t)r->in_len) {
        size_t k = (size_t)(from - r->in_file_off);
        r->zs.next_in = r->in + k;
        r->zs.avail_in = (uInt)(r->in_len - k);
    } else {
        if (lseek(r->fd, from, SEEK_SET) < 0)
            return wp_err_set(err, WP_EIO, "%s: cannot seek to %lld", r->path, (long long)from);
        r->in_file_off = from;
        r->in_len = 0;
        r->zs.next_in = r->in;
        r->zs.avail_in = 0;
        r->file_eof = 0;
    }
    for (;;) {
        unsigned char *p = r->zs.next_in, *q;
        size_t n = r->zs.avail_in, i = 0;
        while (n >= 3 && i + 2 < n && (q = memchr(p + i, 0x1f, n - 2 - i)) != NULL) {
            i = (size_t)(q - p);
            if (p[i + 1] == 0x8b && p[i + 2] == 0x08) {
                r->zs.next_in = p + i;
                r->zs.avail_in = (uInt)(n - i);
                return 0;
            }
            i++;
        }
        /* Keep the last two bytes: a magic may straddle reads. */
        if (n > 2) {
            r->zs.next_in = p + n - 2;
            r->zs.avail_in = 2;
        }
        if (r->file_eof) {
            r->zs.next_in += r->zs.avail_in;
            r->zs.avail_in = 0;
            return 0; /* produce reports the stretch and ends */
        }
        if ((rc = read_raw(r, err)) != 0)
            return rc;
    }
}

/* Notes a damaged spot at compressed offset `at` and drops what the reader
 * holds and has not handed out (it belongs to the damage); the report waits
 * for the end of the damaged stretch (flush_bad). */
static void note_bad(warc_reader *r, int64_t at, const char *what)
{
    if (r->bad_from < 0) {
        r->bad_from = at;
        r->bad_n = 0;
        snprintf(r->bad_what, sizeof r->bad_what, "%s", what);
    }
    r->bad_n++;
    r->wlen = r->wpos;
    while (r->nbd > 0 && r->bd[r->nbd - 1].dec > r->dbase + (int64_t)r->wlen)
        r->nbd--;
}

/* Ends a damaged stretch at compressed offset `to` (a member that decodes,
 * or the end of the file): one report for the whole of it. */
static void flush_bad(warc_reader *r, int64_t to)
{
    if (r->bad_from < 0)
        return;
    if (r->bad_n == 1)
        snprintf(r->corrupt_msg, sizeof r->corrupt_msg,
                 "%s: byte %lld: %s (bytes %lld-%lld skipped)", r->path, (long long)r->bad_from,
                 r->bad_what, (long long)r->bad_from, (long long)to);
    else
        snprintf(r->corrupt_msg, sizeof r->corrupt_msg,
                 "%s: byte %lld: %s; %llu damaged spots in a row (bytes %lld-%lld skipped)",
                 r->path, (long long)r->bad_from, r->bad_what, (unsigned long long)r->bad_n,
                 (long long)r->bad_from, (long long)to);
    r->corrupt = 1;
    r->bad_from = -1;
    r->bad_n = 0;
}

/* The file ended inside a member. That member may have been cut short in
 * the middle of the file with zlib reading on through its neighbours, so
 * look for a later member after the damaged one's start before giving up. */
static int truncated(warc_reader *r, wp_err *err)
{
    int exact;
    int64_t start = r->nbd > 0 ? r->bd[r->nbd - 1].comp : 0;
    note_bad(r, comp_of(r, r->dbase + (int64_t)r->wlen, &exact),
             "truncated gzip member (file ends inside it)");
    return seek_next_member(r, start + 1, err);
}

/* Inflates the member starting at next_in in one call when it lies whole
 * in the input buffer and fits the window. Returns 1 when it did, 0 when
 * the caller must stream it through zlib instead (nothing consumed), or a
 * negative error. */
static int inflate_whole_member(warc_reader *r, int64_t here, wp_err *err)
{
    size_t in_used = 0, out_used = 0;
    int rc;
    if (r->zs.avail_in < FAST_MIN_IN && !r->file_eof) {
        if ((rc = read_raw(r, err)) != 0)
            return rc;
        here = warc_consumed(r);
    }
    if (libdeflate_gzip_decompress_ex(r->ld, r->zs.next_in, r->zs.avail_in, r->win + r->wlen,
                                      r->win_cap - r->wlen, &in_used,
                                      &out_used) != LIBDEFLATE_SUCCESS)
        return 0;
    if ((rc = push_boundary(r, r->dbase + (int64_t)r->wlen, here)) != 0)
        return wp_err_set(err, rc, "%s: out of memory", r->path);
    r->wlen += out_used;
    r->zs.next_in += in_used;
    r->zs.avail_in -= (uInt)in_used;
    if ((rc = push_boundary(r, r->dbase + (int64_t)r->wlen, warc_consumed(r))) != 0)
        return wp_err_set(err, rc, "%s: out of memory", r->path);
    return 1;
}

/* Produces more decompressed bytes at the window's end. Returns 0 (maybe
 * with stream_eof or corrupt set) or a negative error. */
static int produce(warc_reader *r, wp_err *err)
{
    int rc;
    if ((rc = make_room(r, OUT_CHUNK)) != 0)
        return wp_err_set(err, rc, "%s: out of memory", r->path);
    if (!r->gzip) {
        ssize_t n;
        do
            n = read(r->fd, r->win + r->wlen, r->win_cap - r->wlen);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return wp_err_set(err, WP_EIO, "%s: read error: %s", r->path, strerror(errno));
        if (n == 0)
            r->stream_eof = 1;
        r->wlen += (size_t)n;
        return 0;
    }
    /* Damaged members and junk are skipped here, without returning, until
     * a member decodes or the file ends; then the stretch is reported once
     * (flush_bad) before the caller reads on. */
    for (;;) {
        if (r->zs.avail_in < 18 && !r->file_eof) {
            if ((rc = read_raw(r, err)) != 0)
                return rc;
        }
        if (r->zs.avail_in == 0 && r->file_eof) {
            if (r->member_open) {
                if ((rc = truncated(r, err)) != 0)
                    return rc;
                continue;
            }
            flush_bad(r, warc_consumed(r));
            r->stream_eof = 1;
            return 0;
        }
        int64_t here = warc_consumed(r);
        if (!r->member_open) {
            const unsigned char *h = r->zs.next_in;
            if (r->zs.avail_in < 2 && r->file_eof) {
                note_bad(r, here, "trailing junk after the last gzip member");
                r->zs.next_in += r->zs.avail_in;
                r->zs.avail_in = 0;
                continue;
            }
            if (h[0] != 0x1f || h[1] != 0x8b) {
                note_bad(r, here, "not gzip data between members; skipping to the next one");
                if ((rc = seek_next_member(r, here + 1, err)) != 0)
                    return rc;
                continue;
            }
            /* RFC 1952 section 2.3: method 8, reserved flag bits zero. A bad
             * header is skipped at once, without zlib. */
            if (r->zs.avail_in >= 4 && (h[2] != 8 || (h[3] & 0xE0) != 0)) {
                note_bad(r, here, "bad gzip member header; skipping to the next member");
                if ((rc = seek_next_member(r, here + 1, err)) != 0)
                    return rc;
                continue;
            }
            if ((rc = inflate_whole_member(r, here, err)) < 0)
                return rc;
            if (rc == 1) {
                flush_bad(r, here);
                return 0;
            }
            here = warc_consumed(r); /* the input buffer may have been refilled */
            if (inflateReset(&r->zs) != Z_OK)
                return wp_err_set(err, WP_ENOMEM, "%s: zlib reset failed", r->path);
            if ((rc = push_boundary(r, r->dbase + (int64_t)r->wlen, here)) != 0)
                return wp_err_set(err, rc, "%s: out of memory", r->path);
            r->member_open = 1;
        }
        r->zs.next_out = (Bytef *)r->win + r->wlen;
        r->zs.avail_out = (uInt)(r->win_cap - r->wlen);
        size_t before = r->zs.avail_out;
        int zr = inflate(&r->zs, Z_NO_FLUSH);
        r->wlen += before - r->zs.avail_out;
        if (zr == Z_STREAM_END || (zr == Z_OK && before != r->zs.avail_out)) {
            int exact;
            /* While a damaged stretch is open, a member ends it only by
             * decoding to its end or past STRETCH_PROBE bytes: what it
             * gives until then stays here, unread, so one that decodes a
             * little and then fails (crafted stored blocks) joins the
             * stretch and the stretch stays one event. */
            if (r->bad_from >= 0 && zr != Z_STREAM_END && r->nbd > 0 &&
                r->dbase + (int64_t)r->wlen - r->bd[r->nbd - 1].dec < STRETCH_PROBE) {
                if ((rc = make_room(r, OUT_CHUNK)) != 0)
                    return wp_err_set(err, rc, "%s: out of memory", r->path);
                continue;
            }
            /* This member decodes: a damaged stretch before it ends here. */
            if (r->bad_from >= 0)
                flush_bad(r, comp_of(r, r->dbase + (int64_t)r->wlen, &exact));
            if (zr == Z_STREAM_END) {
                r->member_open = 0;
                if ((rc = push_boundary(r, r->dbase + (int64_t)r->wlen, warc_consumed(r))) != 0)
                    return wp_err_set(err, rc, "%s: out of memory", r->path);
            }
            return 0;
        }
        if (zr == Z_OK)
            continue;
        if (zr == Z_BUF_ERROR && r->zs.avail_out > 0 && !r->file_eof)
            continue; /* needs more input */
        if (zr == Z_BUF_ERROR && r->file_eof) {
            if ((rc = truncated(r, err)) != 0)
                return rc;
            continue;
        }
        {
            char what[256];
            int exact;
            int64_t start = r->nbd > 0 ? r->bd[r->nbd - 1].comp : here;
            snprintf(what, sizeof what, "corrupt gzip data (%s); skipping to the next member",
                     r->zs.msg ? r->zs.msg : "zlib error");
            note_bad(r, comp_of(r, r->dbase + (int64_t)r->wlen, &exact), what);
            if ((rc = seek_next_member(r, start + 1, err)) != 0)
                return rc;
        }
    }
}

/* Ensures `need` unread bytes (fewer only at the end). Returns 0, 1 when
 * a gzip-level corruption interrupted (the caller drops what it holds),
 * or a negative error. */
static int fill(warc_reader *r, size_t need, wp_err *err)
{
    while (r->wlen - r->wpos < need && !r->stream_eof) {
        int rc = produce(r, err);
        if (rc != 0)
            return rc;
        if (r->corrupt)
            return 1;
    }
    return r->corrupt ? 1 : 0;
}

int warc_open(const char *path, int64_t start_offset, uint64_t first_index, size_t max_record,
              warc_reader **out, wp_err *err)
{
    warc_reader *r = calloc(1, sizeof *r);
    unsigned char magic[2];
    int rc;
    *out = NULL;
    if (r == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    snprintf(r->path, sizeof r->path, "%s", path);
    r->max_record = max_record;
    r->index = first_index;
    r->bad_from = -1;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        rc = wp_err_set(err, errno == ENOENT ? WP_ENOENT : WP_EIO, "%s: cannot open: %s", path,
                        strerror(errno));
        free(r);
        return rc;
    }
    if (pread(r->fd, magic, 2, start_offset) == 2 && magic[0] == 0x1f && magic[1] == 0x8b)
        r->gzip = 1;
    if (lseek(r->fd, start_offset, SEEK_SET) < 0) {
        rc = wp_err_set(err, WP_EIO, "%s: cannot seek to %lld", path, (long long)start_offset);
        goto fail;
    }
    r->win_cap = 4 * OUT_CHUNK;
    r->win = malloc(r->win_cap + 1);
    r->in = malloc(IN_CHUNK);
    if (r->win == NULL || r->in == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto fail;
    }
    r->dbase = r->gzip ? 0 : start_offset;
    r->in_file_off = start_offset;
    if (r->gzip) {
        if (inflateInit2(&r->zs, 15 + 16) != Z_OK) {
            rc = wp_err_set(err, WP_ENOMEM, "%s: zlib init failed", path);
            goto fail;
        }
        r->zinit = 1;
        if ((r->ld = libdeflate_alloc_decompressor()) == NULL) {
            rc = wp_err_set(err, WP_ENOMEM, "out of memory");
            goto fail;
        }
        r->zs.next_in = r->in;
        r->zs.avail_in = 0;
    }
    *out = r;
    return 0;
fail:
    warc_close(r);
    return rc;
}

void warc_close(warc_reader *r)
{
    if (r == NULL)
        return;
    if (r->zinit)
        inflateEnd(&r->zs);
    if (r->ld != NULL)
        libdeflate_free_decompressor(r->ld);
    if (r->fd >= 0)
        close(r->fd);
    free(r->in);
    free(r->win);
    free(r->bd);
    free(r);
}

/* Copies a header value (trimmed) into out (size n). */
static void copy_value(const char *v, size_t len, char *out, size_t n)
{
    while (len > 0 && (*v == ' ' || *v == '\t'))
        v++, len--;
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t' || v[len - 1] == '\r'))
        len--;
    if (len >= n)
        len = n - 1;
    memcpy(out, v, len);
    out[len] = '\0';
}

/* Parses header lines in h[0..n) (after the version line). Returns 0, or
 * -1 when Content-Length is missing or not a number. */
static int parse_header(const char *h, size_t n, warc_record *rec)
{
    const char *p = h, *end = h + n;
    int have_len = 0;
    while (p < end) {
        const char *le = memchr(p, '\n', (size_t)(end - p));
        const char *colon;
        if (le == NULL)
            le = end;
        colon = memchr(p, ':', (size_t)(le - p));
        if (colon != NULL) {
            size_t kn = (size_t)(colon - p);
            const char *v = colon + 1;
            size_t vn = (size_t)(le - v);
            if (kn == 9 && strncasecmp(p, "WARC-Type", 9) == 0) {
                copy_value(v, vn, rec->type, sizeof rec->type);
                for (char *q = rec->type; *q; q++)
                    *q = (char)tolower((unsigned char)*q);
            } else if (kn == 15 && strncasecmp(p, "WARC-Target-URI", 15) == 0) {
                copy_value(v, vn, rec->target_uri, sizeof rec->target_uri);
                /* WARC 1.0 drafts wrote <uri>. */
                size_t l = strlen(rec->target_uri);
                if (l >= 2 && rec->target_uri[0] == '<' && rec->target_uri[l - 1] == '>') {
                    memmove(rec->target_uri, rec->target_uri + 1, l - 2);
                    rec->target_uri[l - 2] = '\0';
                }
            } else if (kn == 12 && strncasecmp(p, "Content-Type", 12) == 0) {
                copy_value(v, vn, rec->content_type, sizeof rec->content_type);
            } else if (kn == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
                char num[32];
                char *e;
                copy_value(v, vn, num, sizeof num);
                errno = 0;
                unsigned long long cl = strtoull(num, &e, 10);
                if (num[0] < '0' || num[0] > '9' || *e != '\0' || errno != 0 ||
                    cl > (unsigned long long)INT64_MAX)
                    return -1;
                rec->block_len = (size_t)cl;
                have_len = 1;
            }
        }
        p = le + 1;
    }
    return have_len ? 0 : -1;
}

/* Skips to the next "WARC/1." at the start of a line (or of a member),
 * searching from window position `from`. */
static int resync(warc_reader *r, size_t from, wp_err *err)
{
    r->wpos = from < r->wlen ? from : r->wlen;
    for (;;) {
        char *hit = NULL, *p = r->win + r->wpos;
        size_t avail = r->wlen - r->wpos;
        while (avail >= 7 && (hit = memmem(p, avail, "WARC/1.", 7)) != NULL) {
            size_t at = (size_t)(hit - r->win);
            int exact = 0;
            comp_of(r, r->dbase + (int64_t)at, &exact);
            if ((at > 0 && r->win[at - 1] == '\n') || (r->gzip && exact)) {
                r->wpos = at;
                return 0;
            }
            avail -= (size_t)(hit + 1 - p);
            p = hit + 1;
            hit = NULL;
        }
        if (r->stream_eof) {
            r->wpos = r->wlen;
            return 0;
        }
        /* Keep a few bytes in case the marker straddles the refill. */
        if (r->wlen - r->wpos > 8)
            r->wpos = r->wlen - 8;
        int rc = fill(r, r->wlen - r->wpos + 1, err);
        if (rc < 0)
            return rc;
        if (rc == 1)
            return 0; /* the gzip error is reported first */
    }
}

static int report(warc_reader *r, int64_t dec_at, const char *what, wp_err *err)
{
    int exact;
    int64_t at = comp_of(r, dec_at, &exact);
    wp_err_set(err, CRAWL_ECORRUPT, "%s: byte %lld%s: %s", r->path, (long long)at,
               r->gzip ? " (gzip member)" : "", what);
    return WARC_CORRUPT;
}

int warc_next(warc_reader *r, warc_record *rec, wp_err *err)
{
    int rc;
    for (;;) {
        if (r->corrupt) {
            r->corrupt = 0; /* what we held of the damage is gone (note_bad) */
            wp_err_set(err, CRAWL_ECORRUPT, "%s", r->corrupt_msg);
            return WARC_CORRUPT;
        }
        /* Records are separated by CRLF CRLF; be lenient about extra. */
        for (;;) {
            if ((rc = fill(r, 1, err)) < 0)
                return rc;
            if (rc == 1)
                break;
            if (r->wpos >= r->wlen)
                return WARC_END;
            if (r->win[r->wpos] != '\r' && r->win[r->wpos] != '\n')
                break;
            r->wpos++;
        }
        if (r->corrupt)
            continue;
        break;
    }
    memset(rec, 0, sizeof *rec);
    int64_t start = r->dbase + (int64_t)r->wpos;
    /* The header: up to the first empty line. */
    char *hend = NULL;
    size_t scanned = 0;
    for (;;) {
        size_t avail = r->wlen - r->wpos;
        size_t from = scanned > 3 ? scanned - 3 : 0;
        hend = avail > from ? memmem(r->win + r->wpos + from, avail - from, "\r\n\r\n", 4) : NULL;
        if (hend != NULL || avail >= WARC_MAX_HEADER || r->stream_eof)
            break;
        scanned = avail;
        if ((rc = fill(r, avail + 4096, err)) < 0)
            return rc;
        if (rc == 1)
            return warc_next(r, rec, err);
        start = r->dbase + (int64_t)r->wpos;
    }
    if (r->wlen - r->wpos < 8 || memcmp(r->win + r->wpos, "WARC/", 5) != 0) {
        report(r, start, "no WARC record here; skipping to the next record", err);
        if ((rc = resync(r, r->wpos + 1, err)) < 0)
            return rc;
        return WARC_CORRUPT;
    }
    if (hend == NULL) {
        report(r, start, "record header has no end; skipping to the next record", err);
        if ((rc = resync(r, r->wpos + 1, err)) < 0)
            return rc;
        return WARC_CORRUPT;
    }
    {
        const char *h = r->win + r->wpos;
        const char *vl = memchr(h, '\n', (size_t)(hend - h) + 2);
        size_t vlen = (size_t)(vl - h);
        copy_value(h, vlen, rec->version, sizeof rec->version);
        if (parse_header(vl + 1, (size_t)(hend + 2 - (vl + 1)), rec) != 0) {
            report(r, start, "missing or bad Content-Length; skipping to the next record", err);
            if ((rc = resync(r, r->wpos + 1, err)) < 0)
                return rc;
            return WARC_CORRUPT;
        }
    }
    size_t hlen = (size_t)(hend + 4 - (r->win + r->wpos));
    size_t cl = rec->block_len;
    {
        int exact;
        rec->offset = comp_of(r, start, &exact);
    }
    rec->index = r->index;
    if (cl <= r->max_record) {
        if ((rc = fill(r, hlen + cl + 4, err)) < 0)
            return rc;
        if (rc == 1)
            return warc_next(r, rec, err);
        size_t avail = r->wlen - r->wpos;
        const char *tail = r->win + r->wpos + hlen + cl;
        int ok = avail >= hlen + cl + 2 && tail[0] == '\r' && tail[1] == '\n' &&
                 (avail == hlen + cl + 2 ||
                  (avail >= hlen + cl + 4 && tail[2] == '\r' && tail[3] == '\n'));
        if (!ok) {
            char what[160];
            snprintf(what, sizeof what,
                     "Content-Length %zu does not end the record (bad length or truncated); "
                     "skipping to the next record",
                     cl);
            report(r, start, what, err);
            if ((rc = resync(r, r->wpos + hlen, err)) < 0)
                return rc;
            return WARC_CORRUPT;
        }
        rec->block = r->win + r->wpos + hlen;
        r->wpos += hlen + cl + (avail >= hlen + cl + 4 ? 4 : 2);
    } else {
        /* Too large to hold: let it stream past. */
        size_t left = cl;
        r->wpos += hlen;
        while (left > 0) {
            size_t want = left < SKIP_CHUNK ? left : SKIP_CHUNK;
            if ((rc = fill(r, want, err)) < 0)
                return rc;
            if (rc == 1)
                return warc_next(r, rec, err);
            size_t have = r->wlen - r->wpos;
            if (have == 0) {
                report(r, start, "truncated record (file ends inside it)", err);
                return WARC_CORRUPT;
            }
            if (have > want)
                have = want;
            r->wpos += have;
            left -= have;
        }
        if ((rc = fill(r, 4, err)) < 0)
            return rc;
        if (r->wlen - r->wpos < 2 || memcmp(r->win + r->wpos, "\r\n", 2) != 0) {
            report(r, start, "Content-Length does not end the record; skipping ahead", err);
            if ((rc = resync(r, r->wpos, err)) < 0)
                return rc;
            return WARC_CORRUPT;
        }
        rec->block = NULL;
    }
    r->index++;
    {
        int exact = 0;
        int64_t here = r->dbase + (int64_t)r->wpos;
        int64_t c = comp_of(r, here, &exact);
        rec->next_offset = exact ? c : -1;
    }
    return WARC_RECORD;
}

int crawl_http_split(const char *block, size_t len, crawl_http_head *h)
{
    const char *end = block + len, *p, *hend;
    memset(h, 0, sizeof *h);
    if (len < 12 || strncmp(block, "HTTP/", 5) != 0)
        return WP_EFORMAT;
    p = memchr(block, ' ', len);
    if (p == NULL || end - p < 4)
        return WP_EFORMAT;
    /* RFC 9112 section 4: status-code = 3DIGIT, right after the space. The
     * block is not NUL-terminated, so no atoi. */
    if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]) ||
        !isdigit((unsigned char)p[3]))
        return WP_EFORMAT;
    h->status = (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
    hend = memmem(block, len, "\r\n\r\n", 4);
    size_t sep = 4;
    if (hend == NULL) {
        hend = memmem(block, len, "\n\n", 2);
        sep = 2;
    }
    if (hend == NULL) {
        hend = end;
        sep = 0;
    }
    p = memchr(block, '\n', (size_t)(hend - block));
    while (p != NULL && p < hend) {
        const char *ls = p + 1, *le = memchr(ls, '\n', (size_t)(end - ls));
        if (le == NULL || le > hend)
            le = hend;
        const char *colon = memchr(ls, ':', (size_t)(le - ls));
        if (colon != NULL) {
            size_t kn = (size_t)(colon - ls), vn = (size_t)(le - colon - 1);
            char te[64];
            if (kn == 12 && strncasecmp(ls, "Content-Type", 12) == 0) {
                copy_value(colon + 1, vn, h->ct, sizeof h->ct);
            } else if (kn == 12 && strncasecmp(ls, "X-Robots-Tag", 12) == 0) {
                /* Repeated field lines are kept apart, one per line: each
                 * may name its own bot (crawl_robots_directives). */
                size_t have = strlen(h->xrobots);
                if (have > 0 && have + 1 < sizeof h->xrobots)
                    h->xrobots[have++] = '\n';
                copy_value(colon + 1, vn, h->xrobots + have, sizeof h->xrobots - have);
            } else if (kn == 16 && strncasecmp(ls, "Content-Encoding", 16) == 0) {
                copy_value(colon + 1, vn, h->encoding, sizeof h->encoding);
            } else if (kn == 17 && strncasecmp(ls, "Transfer-Encoding", 17) == 0) {
                copy_value(colon + 1, vn, te, sizeof te);
                h->chunked = strcasestr(te, "chunked") != NULL;
            }
        }
        p = le < hend ? le : NULL;
    }
    h->body = hend + sep;
    h->body_len = (size_t)(end - h->body);
    return 0;
}

/* RFC 9112 section 7.1: chunk-size [ext] CRLF data CRLF ... 0 CRLF. A
 * broken or truncated framing keeps what was decoded so far. */
static int dechunk(const char *p, size_t n, size_t max, wp_buf *out)
{
    size_t i = 0;
    wp_buf_reset(out);
    while (i < n) {
        /* chunk-size = 1*HEXDIG, read within the block (it has no NUL, so
         * no strtoull); blanks before it are tolerated. */
        size_t j = i, d;
        unsigned long long sz = 0;
        const char *nl;
        while (j < n && (p[j] == ' ' || p[j] == '\t'))
            j++;
        for (d = j; d < n && wp_hex_digit((unsigned char)p[d]) >= 0; d++) {
            int v = wp_hex_digit((unsigned char)p[d]);
            sz = sz > (ULLONG_MAX >> 4) ? ULLONG_MAX : sz * 16 + (unsigned)v;
        }
        if (d == j)
            break;
        nl = memchr(p + d, '\n', n - d);
        if (nl == NULL || sz == 0)
            break;
        i = (size_t)(nl - p) + 1;
        if (sz > n - i)
            sz = n - i;
        if (out->len + sz > max)
            return WP_ELIMIT;
        if (wp_buf_append(out, p + i, (size_t)sz) != 0)
            return WP_ENOMEM;
        i += (size_t)sz;
        while (i < n && (p[i] == '\r' || p[i] == '\n'))
            i++;
    }
    return out->data == NULL ? wp_buf_reserve(out, 0) : 0;
}

/* gzip, x-gzip or deflate (zlib or raw) bodies, up to max bytes. */
static int decode_body(const char *p, size_t n, const char *encoding, size_t max, wp_buf *out)
{
    z_stream z;
    int raw = 0, zr;
    memset(&z, 0, sizeof z);
    wp_buf_reset(out);
again:
    if (inflateInit2(&z, raw ? -15 : 15 + 32) != Z_OK)
        return WP_ENOMEM;
    z.next_in = (Bytef *)p;
    z.avail_in = (uInt)n;
    do {
        if (wp_buf_reserve(out, 64 * 1024) != 0) {
            inflateEnd(&z);
            return WP_ENOMEM;
        }
        z.next_out = (Bytef *)out->data + out->len;
        z.avail_out = (uInt)(out->cap - out->len - 1);
        zr = inflate(&z, Z_NO_FLUSH);
        out->len = (size_t)((char *)z.next_out - out->data);
        out->data[out->len] = '\0';
        if (out->len > max) {
            inflateEnd(&z);
            return WP_ELIMIT;
        }
    } while (zr == Z_OK && z.avail_in > 0);
    inflateEnd(&z);
    if (zr == Z_DATA_ERROR && !raw && out->len == 0 && strcasecmp(encoding, "deflate") == 0) {
        raw = 1; /* servers send raw deflate as "deflate" too */
        goto again;
    }
    return zr == Z_STREAM_END || zr == Z_OK || zr == Z_BUF_ERROR ? 0 : WP_EFORMAT;
}

/* Output room asked for per brotli decoder call: the decoder writes what
 * fits and says NEEDS_MORE_OUTPUT, so a bomb never outgrows max by more
 * than this. */
#define BR_STEP (64 * 1024)

/* RFC 7932 (brotli, "br" per RFC 9110 section 8.4.1) bodies, up to max
 * bytes. Returns 0 (a stream cut short keeps what was decoded, as the
 * gzip path does), WP_ELIMIT (more than max bytes; decoding stops there),
 * WP_EFORMAT (corrupt) or WP_ENOMEM. */
static int decode_br(const char *p, size_t n, size_t max, wp_buf *out)
{
    BrotliDecoderState *s;
    BrotliDecoderResult br;
    const uint8_t *next_in = (const uint8_t *)p;
    size_t avail_in = n;
    int rc = 0;
    wp_buf_reset(out);
    if ((s = BrotliDecoderCreateInstance(NULL, NULL, NULL)) == NULL)
        return WP_ENOMEM;
    do {
        uint8_t *next_out;
        size_t room, avail_out;
        if (wp_buf_reserve(out, BR_STEP) != 0) {
            rc = WP_ENOMEM;
            goto out;
        }
        /* Ask for at most max + 1 bytes in all: one past the cap is enough
         * to know the body is too large. out->len <= max here. */
        room = out->cap - out->len - 1;
        if (max - out->len < room)
            room = max - out->len + 1;
        next_out = (uint8_t *)out->data + out->len;
        avail_out = room;
        br = BrotliDecoderDecompressStream(s, &avail_in, &next_in, &avail_out, &next_out, NULL);
        out->len += room - avail_out;
        out->data[out->len] = '\0';
        if (out->len > max) {
            rc = WP_ELIMIT;
            goto out;
        }
    } while (br == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT);
    if (br == BROTLI_DECODER_RESULT_ERROR) {
        BrotliDecoderErrorCode code = BrotliDecoderGetErrorCode(s);
        rc = code <= BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MODES &&
                     code >= BROTLI_DECODER_ERROR_ALLOC_BLOCK_TYPE_TREES
                 ? WP_ENOMEM
                 : WP_EFORMAT;
    }
    /* BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT with all input used: truncated. */
out:
    BrotliDecoderDestroyInstance(s);
    return rc;
}

int crawl_http_body(const crawl_http_head *h, size_t max, wp_buf *tmp1, wp_buf *tmp2,
                    const char **body, size_t *len)
{
    const char *b = h->body;
    size_t n = h->body_len;
    int rc;
    if (h->chunked) {
        if ((rc = dechunk(b, n, max, tmp1)) != 0)
            return rc;
        b = tmp1->data;
        n = tmp1->len;
    }
    if (h->encoding[0] != '\0' && strcasecmp(h->encoding, "identity") != 0) {
        if (strcasecmp(h->encoding, "br") == 0)
            rc = decode_br(b, n, max, tmp2);
        else if (strcasecmp(h->encoding, "gzip") == 0 || strcasecmp(h->encoding, "x-gzip") == 0 ||
                 strcasecmp(h->encoding, "deflate") == 0)
            rc = decode_body(b, n, h->encoding, max, tmp2);
        else
            return WP_EFORMAT; /* zstd, compress, stacked codings...: not decoded */
        if (rc != 0)
            return rc;
        b = tmp2->data;
        n = tmp2->len;
    }
    *body = b;
    *len = n;
    return 0;
}
