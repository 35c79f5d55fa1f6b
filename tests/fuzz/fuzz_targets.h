/*
 * tests/fuzz/fuzz_targets.h: what each fuzz target does with one input,
 * shared by the libFuzzer programs (tests/fuzz/fuzz_*.c, `make fuzz`) and
 * by tests/unit/test_fuzz_corpus.c, which replays the checked-in corpora and
 * crash reproducers through the same code in the normal (and ASan) build.
 *
 * Each fuzz_NAME_one(data, size) runs one input through a parser and checks
 * the parser's documented contract on what it returns. It returns 0, or the
 * source line of the first violated check (the caller aborts / fails the
 * test). Error returns of the parser on bad input are expected, not bugs.
 * Functions are static inline so that each includer compiles only what it
 * calls without unused-function warnings.
 */
#ifndef FUZZ_TARGETS_H
#define FUZZ_TARGETS_H

#include "common/wp.h"
#include "crawl/crawl_int.h"
#include "add/add.h"
#include "balance/balance.h"
#include "clip/clip.h"
#include "emb/emb.h"
#include "clip/safetensors.h"
#include "clip/tok_int.h"
#include "dedup/dd_int.h"
#include "image/image.h"
#include "net/net.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* A failed check: the line that failed. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return __LINE__;                                                                       \
    } while (0)

/* For the libFuzzer programs: aborts, naming the failed check, when a
 * fuzz_NAME_one returned one. */
static inline void fuzz_abort_on(int line)
{
    if (line != 0) {
        fprintf(stderr, "fuzz: check at tests/fuzz/fuzz_targets.h:%d failed\n", line);
        abort();
    }
}

#define FUZZ_STR_MAX 4096 /* longest string input (addr, robots tag) kept */

/* ---- image: probe, decode, resize, CLIP preprocessing ------------------ */

#define FUZZ_MAX_PIXELS (4000 * 4000) /* larger images are refused from the header */

static inline int fuzz_image_one(const uint8_t *data, size_t size)
{
    img_info info;
    wp_err err = {0};
    int rc = img_probe(data, size, &info, &err);
    FUZZ_CHECK(rc != 0 || (info.width > 0 && info.height > 0));

    img_decode_opts opts = {.apply_exif = 1,
                            .alpha = IMG_ALPHA_WHITE,
                            .max_pixels = FUZZ_MAX_PIXELS,
                            .min_width = 64,
                            .min_height = 64};
    img_image im = {0};
    rc = img_decode(data, size, &opts, &im, &err);
    if (rc == 0) {
        int ok = im.channels == 3 && im.width > 0 && im.height > 0 &&
                 (int64_t)im.width * im.height <= FUZZ_MAX_PIXELS;
        img_image small = {0};
        if (ok && img_resize_mode(&im, IMG_RESIZE_CENTER_CROP, 32, 1, &small, &err) == 0)
            img_free(&small);
        img_free(&im);
        FUZZ_CHECK(ok);
    }
    if (rc == 0 && (int64_t)info.width * info.height <= FUZZ_MAX_PIXELS) {
        static uint8_t rgb[32 * 32 * 3];
        (void)img_clip_preprocess(data, size, 32, rgb, &err);
    }
    return 0;
}

/* ---- tokenizer: cleaning, html unescape, BPE --------------------------- */

/* tok may be NULL (no vocabulary): cleaning and unescaping only. Checked:
 * the cleaned text is valid UTF-8; the ids start with <|startoftext|>, end
 * with <|endoftext|>, stay inside the vocabulary; the 77-token row is the
 * untruncated ids cut as OpenAI's truncate=True does. */
static inline int fuzz_tokenizer_one(clip_tok *tok, const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    wp_buf out = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    int line = 0;

    if (clip_tok_clean(text, size, &out, NULL) != 0) {
        line = __LINE__; /* only out of memory may fail */
        goto out;
    }
    if (!wp_utf8_valid(out.data ? out.data : "", out.len)) {
        line = __LINE__;
        goto out;
    }
    out.len = 0;
    if (clip_tok_html_unescape(text, size, &out, NULL) != 0) {
        line = __LINE__;
        goto out;
    }
    if (tok == NULL)
        goto out;
    if (clip_tok_encode(tok, text, size, &ids, &n, NULL) != 0) {
        line = __LINE__;
        goto out;
    }
    if (n < 2 || ids[0] != CLIP_TOK_SOT || ids[n - 1] != CLIP_TOK_EOT) {
        line = __LINE__;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= CLIP_TOK_VOCAB) {
            line = __LINE__;
            goto out;
        }
    int32_t row[CLIP_TOK_CTX];
    int k = clip_tok_encode_ctx(tok, text, size, row, CLIP_TOK_CTX, NULL);
    size_t want = n < CLIP_TOK_CTX ? n : CLIP_TOK_CTX;
    if (k != (int)want || memcmp(row, ids, (want - 1) * sizeof *ids) != 0 ||
        row[want - 1] != CLIP_TOK_EOT) {
        line = __LINE__;
        goto out;
    }
    for (size_t i = want; i < CLIP_TOK_CTX; i++)
        if (row[i] != 0) {
            line = __LINE__;
            goto out;
        }
out:
    free(ids);
    wp_buf_free(&out);
    return line;
}

/* ---- add: TSV / CSV / JSONL list reader ----------------------------- */

/* The options the first input byte selects: bits 0-1 the format (TSV, CSV,
 * JSONL, CSV again), bit 2 keep columns "k" and the URL column in
 * pairs.extra, bit 3 columns named "u" / "t" instead of url / caption. */
static inline void fuzz_add_opts(uint8_t sel, add_opts *o, const char **name)
{
    static const int fmts[4] = {ADD_FMT_TSV, ADD_FMT_CSV, ADD_FMT_JSONL, ADD_FMT_CSV};
    static const char *const names[4] = {"fuzz.tsv", "fuzz.csv", "fuzz.jsonl", "fuzz.csv"};
    memset(o, 0, sizeof *o);
    o->format = fmts[sel & 3];
    *name = names[sel & 3];
    if (sel & 8) {
        o->url_col = "u";
        o->text_col = "t";
    }
    if (sel & 4) {
        o->keep_cols[0] = "k";
        o->keep_cols[1] = o->url_col ? o->url_col : "url";
        o->nkeep = 2;
    }
}

/* The contract of one record of add_reader_next (add/add.h). */
static inline int fuzz_add_check_record(const add_opts *o, const add_record *rec)
{
    FUZZ_CHECK(rec->line >= 1);
    FUZZ_CHECK(rec->bad >= ADD_BAD_NONE && rec->bad < ADD_BAD_NREASONS);
    if (rec->bad != ADD_BAD_NONE) {
        FUZZ_CHECK(rec->detail[0] != '\0');
        FUZZ_CHECK(memchr(rec->detail, '\0', sizeof rec->detail) != NULL);
        return 0;
    }
    const char *u = rec->url;
    size_t n = rec->url_len;
    FUZZ_CHECK(u != NULL && rec->text != NULL);
    FUZZ_CHECK(n > 7 && n <= ADD_URL_MAX);
    FUZZ_CHECK(strncasecmp(u, "http://", 7) == 0 || (n > 8 && strncasecmp(u, "https://", 8) == 0));
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK((unsigned char)u[i] > 0x20 && (unsigned char)u[i] != 0x7f);
    FUZZ_CHECK(wp_utf8_valid(u, n));
    FUZZ_CHECK(rec->text_len <= ADD_TEXT_MAX);
    FUZZ_CHECK(memchr(rec->text, '\0', rec->text_len) == NULL);
    FUZZ_CHECK(wp_utf8_valid(rec->text, rec->text_len));
    FUZZ_CHECK(rec->text_missing == (rec->text_len == 0));
    if (o->nkeep == 0) {
        FUZZ_CHECK(rec->extra_json == NULL);
        return 0;
    }
    /* pairs.extra: a JSON object holding only the kept columns. */
    FUZZ_CHECK(rec->extra_json != NULL);
    json_error_t je;
    json_t *x = json_loads(rec->extra_json, 0, &je);
    int ok = json_is_object(x) && json_object_size(x) <= (size_t)o->nkeep;
    const char *key;
    json_t *v;
    if (ok) {
        json_object_foreach(x, key, v)
        {
            int known = 0;
            for (int i = 0; i < o->nkeep; i++)
                known |= strcmp(key, o->keep_cols[i]) == 0;
            ok &= known;
        }
    }
    json_decref(x);
    FUZZ_CHECK(ok);
    return 0;
}

static inline int fuzz_add_one(const uint8_t *data, size_t size)
{
    add_opts o;
    add_reader *r = NULL;
    add_record rec;
    const char *name;
    wp_err err = {0};
    int64_t prev = 0;
    int rc, line = 0;

    if (size == 0)
        return 0;
    fuzz_add_opts(data[0], &o, &name);
    rc = add_reader_open_mem(data + 1, size - 1, name, &o, &r, &err);
    if (rc != 0) {
        FUZZ_CHECK(rc < 0 && r == NULL && err.msg[0] != '\0');
        return 0;
    }
    for (;;) {
        memset(&err, 0, sizeof err);
        rc = add_reader_next(r, &rec, &err);
        if (rc == 0)
            break;
        if (rc < 0) {
            if (rc != ADD_ESTREAM || err.msg[0] == '\0')
                line = __LINE__;
            break;
        }
        if (rc != 1 || rec.line <= prev) {
            line = __LINE__; /* records come in file order, one per line at most */
            break;
        }
        prev = rec.line;
        if ((line = fuzz_add_check_record(&o, &rec)) != 0)
            break;
    }
    add_reader_close(r);
    return line;
}

/* ---- safetensors header validation -------------------------------------- */

static inline int fuzz_safetensors_one(const uint8_t *data, size_t size)
{
    clip_st *st = NULL;
    wp_err err = {0};
    int rc = clip_st_open_mem(data, size, "fuzz.safetensors", &st, &err);
    if (rc != 0) {
        FUZZ_CHECK(st == NULL && (rc == CLIP_EFORMAT || rc == WP_ENOMEM) && err.msg[0] != '\0');
        return 0;
    }
    /* A valid file: the header length is sane and every tensor lies in the
     * data section, its shape matching its byte range. */
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | data[i];
    uint64_t data_len = size - 8 - hlen;
    int line = 0;
    for (int i = 0; i < clip_st_count(st) && line == 0; i++) {
        const clip_st_tensor *t = clip_st_at(st, i);
        static const int sizes[] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1}; /* enum clip_st_dtype */
        uint64_t numel = 1;
        if (t == NULL || t->ndim < 0 || t->ndim > CLIP_ST_NDIM_MAX || t->dtype < CLIP_DT_F32 ||
            t->dtype > CLIP_DT_BOOL || t->begin > t->end || t->end > data_len ||
            strlen(t->name) >= CLIP_ST_NAME_MAX || clip_st_find(st, t->name) != t) {
            line = __LINE__;
            break;
        }
        for (int d = 0; d < t->ndim; d++)
            numel *= (uint64_t)t->shape[d];
        if (numel != (uint64_t)t->numel || numel * (uint64_t)sizes[t->dtype] != t->end - t->begin) {
            line = __LINE__;
            break;
        }
        if (t->dtype > CLIP_DT_BF16)
            continue;
        /* The float conversion reads exactly the tensor's bytes. */
        float *f = malloc(((size_t)numel + 1) * sizeof *f);
        if (f == NULL)
            continue;
        if (clip_st_read_f32(st, t, f, &err) != 0)
            line = __LINE__;
        const uint8_t *p = data + 8 + hlen + t->begin;
        for (uint64_t k = 0; k < numel && line == 0; k++) {
            float want;
            if (t->dtype == CLIP_DT_F32) {
                memcpy(&want, p + 4 * k, 4);
            } else {
                uint16_t h = (uint16_t)(p[2 * k] | p[2 * k + 1] << 8);
                want = t->dtype == CLIP_DT_F16 ? wp_f16_to_f32(h) : wp_bf16_to_f32(h);
            }
            /* F16C and the portable path agree bit for bit, NaNs aside. */
            if (!(isnan(want) && isnan(f[k])) && memcmp(&want, &f[k], 4) != 0)
                line = __LINE__;
        }
        free(f);
    }
    clip_st_close(st);
    return line;
}

/* ---- net: X-Robots-Tag --------------------------------------------------- */

/* Copies the idx-th newline-separated part of data into out (NUL-terminated,
 * cut at FUZZ_STR_MAX - 1 bytes or at a NUL byte); 0 when there is none. */
static inline int fuzz_part(const uint8_t *data, size_t size, int idx, char *out)
{
    size_t i = 0;
    for (int k = 0; k < idx; k++) {
        const uint8_t *nl = memchr(data + i, '\n', size - i);
        if (nl == NULL)
            return 0;
        i = (size_t)(nl - data) + 1;
    }
    size_t n = 0;
    while (i + n < size && data[i + n] != '\n' && n < FUZZ_STR_MAX - 1)
        n++;
    memcpy(out, data + i, n);
    out[n] = '\0';
    return 1;
}

/* 1 if s[0..n) is one of the comma-separated, space-trimmed words of list
 * (case-insensitive): the reference for directive matching. */
static inline int fuzz_in_list(const char *list, const char *s, size_t n)
{
    const char *p = list;
    while (n > 0 && *p) {
        const char *q = strchr(p, ',');
        const char *a = p, *b = q ? q : p + strlen(p);
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if ((size_t)(b - a) == n && strncasecmp(a, s, n) == 0)
            return 1;
        if (q == NULL)
            break;
        p = q + 1;
    }
    return 0;
}

/* 1 if hit (n bytes) may report an opt-out under dirs: a listed directive;
 * none and unavailable_after stand for noindex and need it listed. */
static inline int fuzz_hit_listed(const char *dirs, const char *hit, size_t n)
{
    if (strcmp(hit, "none") == 0 || strcmp(hit, "unavailable_after") == 0)
        return fuzz_in_list(dirs, "noindex", 7);
    return fuzz_in_list(dirs, hit, n);
}

/* Input: "value\ntokens\ndirectives"; the last two default to "witpipe"
 * and NET_DEFAULT_DIRECTIVES. The parser is net/net_robots.c, shared by
 * fetch and crawl. */
static inline int fuzz_robots_tag_one(const uint8_t *data, size_t size)
{
    static char value[FUZZ_STR_MAX], tokens[FUZZ_STR_MAX], dirs[FUZZ_STR_MAX];
    char hit[NET_DIRECTIVE_MAX], hit2[NET_DIRECTIVE_MAX];

    fuzz_part(data, size, 0, value);
    if (!fuzz_part(data, size, 1, tokens))
        strcpy(tokens, "witpipe");
    if (!fuzz_part(data, size, 2, dirs))
        strcpy(dirs, NET_DEFAULT_DIRECTIVES);
    unsigned flags = net_robots_parse(value, tokens, wp_unix_time());
    FUZZ_CHECK((flags & ~(NET_ROBOTS_OPT_OUT | NET_ROBOTS_NOFOLLOW)) == 0);
    memset(hit, 0x55, sizeof hit);
    int rc = net_robots_tag_optout(value, tokens, dirs, hit);
    FUZZ_CHECK(rc == 0 || rc == 1);
    FUZZ_CHECK(net_robots_tag_optout(value, tokens, dirs, hit2) == rc);
    if (rc == 1) {
        /* hit: a lower-cased directive of the list, found in the value. */
        size_t n = strnlen(hit, sizeof hit);
        FUZZ_CHECK(n > 0 && n < sizeof hit);
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(tolower((unsigned char)hit[i]) == (unsigned char)hit[i]);
        FUZZ_CHECK(strcasestr(value, hit) != NULL);
        FUZZ_CHECK(fuzz_hit_listed(dirs, hit, n));
    }
    FUZZ_CHECK(net_robots_tag_optout(value, tokens, "", hit2) == 0);
    FUZZ_CHECK(net_robots_tag_optout(NULL, tokens, dirs, hit2) == 0);
    /* Without a colon nothing is scoped and nothing has a value: the value
     * opts out exactly when one of its words (split on commas and white
     * space) is a known opt-out directive the list allows. */
    if (strchr(value, ':') == NULL) {
        int want = 0;
        for (const char *p = value; *p;) {
            while (*p && (*p == ',' || isspace((unsigned char)*p)))
                p++;
            const char *w = p;
            while (*p && *p != ',' && !isspace((unsigned char)*p))
                p++;
            char word[NET_DIRECTIVE_MAX];
            size_t k = (size_t)(p - w);
            if (k == 0 || k >= sizeof word)
                continue;
            for (size_t i = 0; i < k; i++)
                word[i] = (char)tolower((unsigned char)w[i]);
            word[k] = '\0';
            /* Only the directives the parser knows opt out (the list
             * narrows them, it cannot add others). */
            static const char *const known[] = {"noai", "noimageai", "noindex", "noimageindex",
                                                "none"};
            int is_known = 0;
            for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
                is_known |= strcmp(word, known[i]) == 0;
            want |= is_known && fuzz_hit_listed(dirs, word, k);
        }
        FUZZ_CHECK(rc == want);
    }
    return 0;
}

/* ---- net: address parsing, classification, CIDR lists ------------------ */

static inline int fuzz_class4(const uint8_t v4[4])
{
    struct sockaddr_in s4;
    memset(&s4, 0, sizeof s4);
    s4.sin_family = AF_INET;
    memcpy(&s4.sin_addr, v4, 4);
    return net_addr_classify((struct sockaddr *)&s4);
}

static inline int fuzz_class6(const uint8_t v6[16])
{
    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof s6);
    s6.sin6_family = AF_INET6;
    memcpy(&s6.sin6_addr, v6, 16);
    return net_addr_classify((struct sockaddr *)&s6);
}

/* The input as text goes through net_addr_parse and net_acl_add; its first
 * bytes as raw IPv4 / IPv6 addresses through the classifier, where every
 * IPv6 spelling that embeds an IPv4 address must be classed as it is. */
static inline int fuzz_addr_one(const uint8_t *data, size_t size)
{
    static char s[FUZZ_STR_MAX];
    struct sockaddr_storage ss;
    int line = 0;

    size_t n = size < FUZZ_STR_MAX - 1 ? size : FUZZ_STR_MAX - 1;
    memcpy(s, data, n);
    s[n] = '\0';
    int rc = net_addr_parse(s, &ss);
    FUZZ_CHECK(rc == 0 || rc == WP_EINVAL);
    if (rc == 0) {
        int cls = net_addr_classify((struct sockaddr *)&ss);
        FUZZ_CHECK(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
        FUZZ_CHECK(cls >= NET_ADDR_PUBLIC && cls < NET_ADDR_UNKNOWN);
        FUZZ_CHECK(strcmp(net_addr_class_name(cls), "unknown") != 0);
        FUZZ_CHECK(net_addr_check(NULL, (struct sockaddr *)&ss) == cls);
        if (ss.ss_family == AF_INET) {
            /* The resolver's reading of the host (brackets, which
             * net_addr_parse takes off any literal, aside). */
            char bare[FUZZ_STR_MAX];
            struct in_addr ia;
            size_t k = strlen(s);
            if (k >= 2 && s[0] == '[' && s[k - 1] == ']')
                snprintf(bare, sizeof bare, "%.*s", (int)(k - 2), s + 1);
            else
                snprintf(bare, sizeof bare, "%s", s);
            FUZZ_CHECK(inet_aton(bare, &ia) == 1);
            FUZZ_CHECK(memcmp(&ia, &((struct sockaddr_in *)&ss)->sin_addr, 4) == 0);
        }
    } else if (strchr(s, ':') == NULL && s[0] != '[') {
        struct in_addr ia;
        FUZZ_CHECK(inet_aton(s, &ia) == 0); /* nothing the resolver takes is refused */
    }

    /* A CIDR range contains its own address, and the guard opens it. */
    net_acl *acl = net_acl_new();
    wp_err err = {0};
    if (acl == NULL)
        return 0;
    rc = net_acl_add(acl, s, &err);
    if (rc != 0) {
        if (rc != NET_EBADCIDR || err.msg[0] == '\0')
            line = __LINE__;
    } else {
        char host[FUZZ_STR_MAX];
        struct sockaddr_storage hs;
        snprintf(host, sizeof host, "%s", s);
        char *slash = strchr(host, '/');
        if (slash != NULL)
            *slash = '\0';
        if (net_addr_parse(host, &hs) != 0 || !net_acl_contains(acl, (struct sockaddr *)&hs) ||
            net_addr_check(acl, (struct sockaddr *)&hs) != NET_ADDR_PUBLIC)
            line = __LINE__;
    }
    net_acl_free(acl);
    if (line != 0)
        return line;

    if (size >= 4) {
        uint8_t v6[16] = {0};
        int c4 = fuzz_class4(data);
        FUZZ_CHECK(c4 >= NET_ADDR_PUBLIC && c4 < NET_ADDR_UNKNOWN);
        v6[10] = v6[11] = 0xff; /* ::ffff:a.b.c.d, RFC 4291 section 2.5.5.2 */
        memcpy(v6 + 12, data, 4);
        FUZZ_CHECK(fuzz_class6(v6) == c4);
        static const uint8_t nat64[4] = {0, 0x64, 0xff, 0x9b}; /* 64:ff9b::/96, RFC 6052 */
        memcpy(v6, nat64, 4);
        v6[10] = v6[11] = 0;
        FUZZ_CHECK(fuzz_class6(v6) == c4);
        memset(v6, 0, sizeof v6);
        v6[0] = 0x20; /* 6to4 2002::/16, RFC 3056 */
        v6[1] = 0x02;
        memcpy(v6 + 2, data, 4);
        FUZZ_CHECK(fuzz_class6(v6) == c4);
        memset(v6, 0, sizeof v6);
        v6[8] = v6[9] = 0xff; /* SIIT ::ffff:0:a.b.c.d, RFC 2765 section 2.1 */
        memcpy(v6 + 12, data, 4);
        FUZZ_CHECK(fuzz_class6(v6) == c4);
        memset(v6, 0, sizeof v6);
        v6[0] = 0x20; /* Teredo 2001::/32, RFC 4380: server 8.8.8.8, client inverted */
        v6[1] = 0x01;
        v6[4] = v6[5] = v6[6] = v6[7] = 8;
        for (int i = 0; i < 4; i++)
            v6[12 + i] = (uint8_t)~data[i];
        FUZZ_CHECK(fuzz_class6(v6) == c4);
        memcpy(v6 + 4, data, 4); /* the server's address counts too */
        FUZZ_CHECK(c4 == NET_ADDR_PUBLIC || fuzz_class6(v6) != NET_ADDR_PUBLIC);
        memset(v6, 0, sizeof v6);
        v6[0] = 0x26; /* ISATAP 2606:4700::200:5efe:a.b.c.d, RFC 5214 section 6.1 */
        v6[1] = 0x06;
        v6[2] = 0x47;
        v6[8] = (uint8_t)(data[0] & 2);
        v6[10] = 0x5e;
        v6[11] = 0xfe;
        memcpy(v6 + 12, data, 4);
        FUZZ_CHECK(fuzz_class6(v6) == c4);
        memset(v6, 0, sizeof v6);
        v6[1] = 0x64; /* 64:ff9b:1::/48, RFC 8215: never reachable */
        v6[2] = 0xff;
        v6[3] = 0x9b;
        v6[5] = 1;
        memcpy(v6 + 6, data, 4);
        FUZZ_CHECK(fuzz_class6(v6) != NET_ADDR_PUBLIC);
    }
    if (size >= 16) {
        int c6 = fuzz_class6(data);
        FUZZ_CHECK(c6 >= NET_ADDR_PUBLIC && c6 < NET_ADDR_UNKNOWN);
    }
    return 0;
}

/* ---- encode: model directories (safetensors + config) ------------------ */

#define FUZZ_MODEL_DATA_MAX (1 << 20) /* data section written, bytes */

/* Writes n bytes to dir/name, or removes it when data is NULL. */
static inline int fuzz_put(const char *dir, const char *name, const void *a, size_t na,
                           const void *b, size_t nb, size_t zeros)
{
    char path[WP_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
    if (a == NULL)
        return 0;
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    int ok = fwrite(a, 1, na, f) == na && (nb == 0 || fwrite(b, 1, nb, f) == nb);
    for (size_t i = 0; ok && i < zeros; i++)
        ok = fputc(0, f) != EOF;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Input: a safetensors header (JSON), then optionally a NUL byte and the
 * config JSON. The model directory dir gets model.safetensors + config.json
 * when the header names Hugging Face tensors (text_model.*), else
 * open_clip_model.safetensors (+ open_clip_config.json); the data section is
 * zeros, as long as the header's largest data_offsets end (at most
 * FUZZ_MODEL_DATA_MAX). A model that loads must satisfy the loader's own
 * consistency rules and describe itself as JSON. */
static inline int fuzz_model_one(const char *dir, const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t hlen = nul != NULL ? (size_t)(nul - data) : size;
    const uint8_t *cfg = nul != NULL ? nul + 1 : NULL;
    size_t clen = nul != NULL ? size - hlen - 1 : 0;
    int hf = memmem(data, hlen, "text_model.", 11) != NULL;
    uint64_t dlen = 0;
    uint8_t len8[8];
    json_error_t je;
    json_t *h = json_loadb((const char *)data, hlen, 0, &je), *v;
    const char *key;

    json_object_foreach(h, key, v)
    {
        json_t *end = json_array_get(json_object_get(v, "data_offsets"), 1);
        if (json_is_integer(end) && json_integer_value(end) > 0 &&
            json_integer_value(end) <= FUZZ_MODEL_DATA_MAX &&
            (uint64_t)json_integer_value(end) > dlen)
            dlen = (uint64_t)json_integer_value(end);
    }
    json_decref(h);
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    if (fuzz_put(dir, "model.safetensors", hf ? len8 : NULL, 8, data, hlen, dlen) != 0 ||
        fuzz_put(dir, "config.json", hf ? cfg : NULL, clen, NULL, 0, 0) != 0 ||
        fuzz_put(dir, "open_clip_model.safetensors", hf ? NULL : len8, 8, data, hlen, dlen) != 0 ||
        fuzz_put(dir, "open_clip_config.json", hf ? NULL : cfg, clen, NULL, 0, 0) != 0)
        return 0; /* the disk, not the loader */

    clip_model *m = NULL;
    wp_err err = {0};
    int rc = clip_model_open(dir, NULL, &m, &err);
    if (rc != 0) {
        FUZZ_CHECK(m == NULL && err.msg[0] != '\0');
        FUZZ_CHECK(rc == CLIP_EFORMAT || rc == CLIP_EMODEL || rc == CLIP_EUNSUP ||
                   rc == WP_ENOENT || rc == WP_ENOMEM || rc == WP_EIO || rc == WP_ELIMIT);
        return 0;
    }
    const clip_arch *a = clip_model_arch(m);
    int line = 0;
    if (a->embed_dim <= 0 || a->t_width <= 0 || a->t_heads <= 0 || a->t_width % a->t_heads != 0 ||
        a->t_ctx <= 1 || a->image_size <= 0 || a->v_width <= 0 || a->v_heads <= 0 ||
        clip_model_params(m) <= 0)
        line = __LINE__;
    wp_buf info = {0};
    if (line == 0 && clip_model_info_json(m, &info) != 0)
        line = __LINE__;
    if (line == 0) {
        json_t *j = json_loadb(info.data, info.len, 0, &je);
        if (!json_is_object(j))
            line = __LINE__;
        json_decref(j);
    }
    wp_buf_free(&info);
    clip_model_free(m);
    return line;
}

/* ---- crawl: HTML extraction, robots.txt, WAT, HTTP bodies, WARC --------- */

/* The same bytes through every crawl parser of hostile input. Checked:
 * the prefiltered and plain HTML extraction find the same images; where
 * the jansson reference accepts a WAT record, the targeted reader finds
 * the same images and opt-out flags; an HTTP body is never decoded past
 * its cap; the WARC reader ends. */
static inline int fuzz_crawl_one(const uint8_t *data, size_t size)
{
    static crawl_opts o, ref;
    static int init;
    const char *p = (const char *)data;
    wp_arena *a = wp_arena_new(1 << 16);
    crawl_page *pg = NULL, *pr = NULL, *w1 = NULL, *w2 = NULL;
    wp_err err = {0};
    int line = 0;

    if (!init) {
        crawl_opts_init(&o);
        o.collect_links = 1;
        ref = o;
        ref.no_prefilter = 1;
        init = 1;
    }
    if (a == NULL)
        return 0;
    if (crawl_extract(p, size, "http://fuzz.example/a/b.html", NULL, NULL, &o, a, &pg, &err) == 0 &&
        crawl_extract(p, size, "http://fuzz.example/a/b.html", NULL, NULL, &ref, a, &pr, &err) == 0)
        if (pg->n_images != pr->n_images) {
            line = __LINE__;
            goto out;
        }

    crawl_robots *r = crawl_robots_parse(p, size, 200, "witpipe");
    if (r != NULL) {
        crawl_robots_allowed(r, "/a/b?c=d");
        crawl_robots_free(r);
    }

    wp_arena_reset(a);
    int r1 = crawl_wat_page(p, size, &o, CRAWL_WAT_FULL_MAX, a, &w1, &err);
    int r2 = crawl_wat_page(p, size, &ref, CRAWL_WAT_FULL_MAX, a, &w2, &err);
    if (r1 == 0 && r2 == 0 && (w1 == NULL) != (w2 == NULL)) {
        line = __LINE__;
        goto out;
    }
    if (r1 == 0 && r2 == 0 && w1 != NULL &&
        (w1->n_images != w2->n_images || w1->noai != w2->noai || w1->noindex != w2->noindex ||
         w1->nofollow != w2->nofollow)) {
        line = __LINE__;
        goto out;
    }

    crawl_http_head h;
    if (crawl_http_split(p, size, &h) == 0) {
        wp_buf t1 = {0}, t2 = {0};
        const char *body;
        size_t blen = 0;
        int br = crawl_http_body(&h, 1 << 20, &t1, &t2, &body, &blen);
        wp_buf_free(&t1);
        wp_buf_free(&t2);
        if (br == 0 && blen > (1 << 20)) {
            line = __LINE__;
            goto out;
        }
    }

    char path[] = "/tmp/fuzz-warc-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) {
        if (write(fd, data, size) == (ssize_t)size) {
            warc_reader *wr = NULL;
            warc_record *rec = malloc(sizeof *rec);
            if (rec != NULL && warc_open(path, 0, 0, 1 << 20, &wr, &err) == 0) {
                for (int i = 0; i < 1000; i++) {
                    int rc = warc_next(wr, rec, &err);
                    if (rc == WARC_END || rc < 0)
                        break;
                }
            }
            warc_close(wr);
            free(rec);
        }
        close(fd);
        unlink(path);
    }
out:
    wp_arena_free(a);
    return line;
}

/* ---- emb: .npy headers ------------------------------------------------ */

/* emb_npy_parse on any bytes: either an EMB_EFORMAT error with a message,
 * or a header whose array lies inside the input. */
static inline int fuzz_npy_one(const uint8_t *data, size_t size)
{
    emb_npy h;
    wp_err err = {0};
    int rc = emb_npy_parse(data, size, &h, &err);
    if (rc != 0) {
        FUZZ_CHECK(rc == EMB_EFORMAT);
        FUZZ_CHECK(err.msg[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(h.itemsize == 2 || h.itemsize == 4);
    FUZZ_CHECK(h.rows >= 0 && h.cols >= 0 && h.cols <= EMB_DIM_MAX);
    FUZZ_CHECK(h.data_offset <= size);
    FUZZ_CHECK(h.rows == 0 ||
               (uint64_t)h.rows * (uint64_t)h.cols * (uint64_t)h.itemsize <= size - h.data_offset);
    return 0;
}

/* ---- queries: list files and MetaCLIP substring matching --------------- */

#define FUZZ_QRY_ENTRIES 64 /* lists up to this size are also matched */

/* MetaCLIP's caption spacing, written plainly from the rule in
 * balance/balance.h: one space each side, each of , . ; : ? ! ` between
 * spaces, tab CR LF as spaces. The reference for the automaton. */
static inline char *fuzz_qry_spaced(const char *t, size_t n, size_t *out_len)
{
    char *o = malloc(3 * n + 2), *w = o;
    if (o == NULL)
        return NULL;
    *w++ = ' ';
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (c != 0 && strchr(",.;:?!`", c) != NULL) {
            *w++ = ' ';
            *w++ = c;
            *w++ = ' ';
        } else {
            *w++ = c == '\t' || c == '\r' || c == '\n' ? ' ' : c;
        }
    }
    *w++ = ' ';
    *out_len = (size_t)(w - o);
    return o;
}

/* Byte 0: bit 0 the rule (MetaCLIP / MetaCLIP 2), bit 1 ignore case, bit
 * 2 every entry in the byte automaton. Then the list file, up to the first
 * 0xFF byte; after it, a caption. The list loads to distinct, non-empty,
 * valid UTF-8 entries of at most QRY_ENTRY_MAX bytes with consistent
 * counts (or a WP_EFORMAT error with a message); a small list's matcher
 * returns ascending distinct ids, and without case folding exactly the
 * entries whose pattern occurs in the spaced caption. */
static inline int fuzz_queries_one(const uint8_t *data, size_t size)
{
    qry_list *l = NULL;
    qry_matcher *m = NULL;
    qry_scratch *sc = NULL;
    qry_load_stats st = {0};
    wp_err err = {0};
    const char *text, *list;
    size_t list_len, text_len;
    int rule, flags, bad = 0;

    if (size < 1)
        return 0;
    rule = data[0] & 1 ? QRY_RULE_METACLIP2 : QRY_RULE_METACLIP;
    flags = (data[0] & 2 ? QRY_IGNORE_CASE : 0) | (data[0] & 4 ? QRY_FORCE_AC : 0);
    list = (const char *)data + 1;
    const char *sep = memchr(list, 0xFF, size - 1);
    list_len = sep ? (size_t)(sep - list) : size - 1;
    text = sep ? sep + 1 : "";
    text_len = sep ? size - 1 - list_len - 1 : 0;

    int rc = qry_list_parse("fuzz", list, list_len, &l, &st, &err);
    if (rc != 0) {
        FUZZ_CHECK(rc == WP_EFORMAT);
        FUZZ_CHECK(err.msg[0] != '\0');
        FUZZ_CHECK(l == NULL);
        return 0;
    }
    size_t n = qry_list_count(l);
    FUZZ_CHECK(st.kept == (int64_t)n);
    FUZZ_CHECK(st.read == st.kept + st.duplicates + st.empty + st.too_long + st.bad_utf8);
    for (size_t i = 0; i < n && !bad; i++) {
        size_t len;
        const char *e = qry_list_entry(l, i, &len);
        bad = len == 0 || len > QRY_ENTRY_MAX || !wp_utf8_valid(e, len);
        for (size_t k = 0; k < i && !bad; k++) {
            size_t len2;
            const char *e2 = qry_list_entry(l, k, &len2);
            bad = len2 == len && memcmp(e, e2, len) == 0;
        }
    }
    if (bad || n > FUZZ_QRY_ENTRIES) {
        qry_list_free(l);
        FUZZ_CHECK(!bad);
        return 0;
    }
    if (qry_matcher_new(l, rule, flags, &m, &err) != 0 || (sc = qry_scratch_new()) == NULL) {
        qry_matcher_free(m);
        qry_list_free(l);
        return 0; /* out of memory */
    }
    const uint32_t *ids = NULL;
    int k = qry_match(m, text, text_len, sc, &ids);
    int line = 0;
    if (k < 0 || (size_t)k > n)
        line = __LINE__;
    for (int i = 1; i < k && line == 0; i++)
        if (ids[i] <= ids[i - 1])
            line = __LINE__;
    if (line == 0 && !(flags & QRY_IGNORE_CASE)) {
        size_t sl;
        char *sp = fuzz_qry_spaced(text, text_len, &sl);
        wp_buf pat = {0};
        int j = 0;
        for (size_t i = 0; sp != NULL && i < n && line == 0; i++) {
            size_t len;
            const char *e = qry_list_entry(l, i, &len);
            wp_buf_reset(&pat);
            if (qry_pattern(e, len, rule, flags, &pat) != 0)
                break;
            int want = memmem(sp, sl, pat.data, pat.len) != NULL;
            int got = j < k && ids[j] == i;
            if (got)
                j++;
            if (want != got)
                line = __LINE__;
        }
        free(sp);
        wp_buf_free(&pat);
    }
    qry_scratch_free(sc);
    qry_matcher_free(m);
    qry_list_free(l);
    return line;
}

/* ---- dedup --against: evaluation sets (dedup/against.c) --------------- */

#define FUZZ_EVAL_MAX_BYTES 65536 /* max_bytes given to dd_eval_each */

typedef struct fuzz_eval_ctx {
    const char *dir;   /* the scratch folder: every name and message is under it */
    const char *shard; /* mode 0: "DIR/set.tar"; names are "SHARD:MEMBER" */
    int bad;           /* the first failed check's line */
    size_t images;
} fuzz_eval_ctx;

static inline int fuzz_eval_image_name(const char *name)
{
    static const char *const ext[] = {".jpg", ".jpeg", ".png", ".webp"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (n >= strlen(ext[i]) && strcasecmp(name + n - strlen(ext[i]), ext[i]) == 0)
            return 1;
    return 0;
}

static inline int fuzz_eval_fn(void *ud, const char *name, const void *data, size_t n, wp_err *err)
{
    fuzz_eval_ctx *x = ud;
    (void)err;
    x->images++;
    if (x->bad == 0 && (name == NULL || (data == NULL && n > 0) || n > FUZZ_EVAL_MAX_BYTES ||
                        strncmp(name, x->dir, strlen(x->dir)) != 0))
        x->bad = __LINE__;
    /* a shard's member: "SHARD:MEMBER" with an image name */
    if (x->bad == 0 && x->shard != NULL &&
        (strncmp(name, x->shard, strlen(x->shard)) != 0 || name[strlen(x->shard)] != ':' ||
         !fuzz_eval_image_name(name + strlen(x->shard) + 1)))
        x->bad = __LINE__;
    return 0;
}

static inline void fuzz_eval_event(void *ud, wp_level level, const char *kind, const char *msg)
{
    fuzz_eval_ctx *x = ud;
    (void)level;
    /* every warning names the file it is about */
    if (x->bad == 0 && (kind == NULL || msg == NULL || strncmp(msg, x->dir, strlen(x->dir)) != 0))
        x->bad = __LINE__;
}

static inline int fuzz_eval_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return fclose(f) == 0 && w == n ? 0 : -1;
}

/* Removes the files of folder path, then the folder (one level: the
 * harness makes no deeper one). */
static inline void fuzz_eval_rmdir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char p[600];
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            if (unlink(p) != 0)
                rmdir(p); /* sub/ (empty) */
        }
        closedir(d);
    }
    rmdir(path);
}

/* Removes the scratch folder and what is in it (f/ of mode 2 first). */
static inline void fuzz_eval_clean(const char *dir)
{
    char f[600];
    snprintf(f, sizeof f, "%s/f", dir);
    fuzz_eval_rmdir(f);
    fuzz_eval_rmdir(dir);
}

/* Input: byte 0 picks the set's form, 0 a .tar shard (the rest of the
 * input), 1 a list file, 2 a folder; for 1 and 2 the text part runs up to
 * the first 0xFF byte (the list's lines, or the folder's file names one a
 * line) and the data part follows (a tar shard, compressed or not, or
 * anything). Mode 1's folder also holds a.tar (the data), b.png, sub/ (a
 * folder) and p (a FIFO: reading it would block, so it must be skipped);
 * list lines that are absolute or hold ".." are dropped (the harness reads
 * only its own folder). Checked: dd_eval_each returns 0 (the set exists;
 * its files' troubles are warnings), or for a list a DD_EAGAINST naming
 * "LIST:LINE" (a line too long for a path); every image's name is under the folder
 * and its bytes within max_bytes; a shard's images are its image members;
 * every warning starts with the file it is about. */
static inline int fuzz_against_one(const uint8_t *data, size_t size)
{
    char dir[] = "/tmp/witpipe-fuzz-eval-XXXXXX", path[512], loc[512];
    fuzz_eval_ctx x = {.dir = dir};
    wp_reporter rep = {.event = fuzz_eval_event, .ud = &x};
    wp_err err = {0};
    const uint8_t *sep, *bin;
    size_t tlen, blen;
    int mode, rc = 0;

    if (size < 1 || mkdtemp(dir) == NULL)
        return 0;
    mode = data[0] % 3;
    data++;
    size--;
    sep = memchr(data, 0xFF, size);
    tlen = sep ? (size_t)(sep - data) : size;
    bin = sep ? sep + 1 : data + size;
    blen = sep ? size - tlen - 1 : 0;

    if (mode == 0) {
        snprintf(loc, sizeof loc, "%s/set.tar", dir);
        if (fuzz_eval_write(loc, data, size) != 0)
            goto out;
        x.shard = loc;
    } else if (mode == 1) {
        static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        char *list = malloc(tlen + 2), *w = list;
        if (list == NULL)
            goto out;
        for (size_t i = 0; i < tlen;) {
            const uint8_t *nl = memchr(data + i, '\n', tlen - i);
            size_t l = nl ? (size_t)(nl - (data + i)) : tlen - i;
            int keep = l > 0 && data[i] != '/' && memchr(data + i, 0, l) == NULL;
            for (size_t k = 0; keep && k + 1 < l; k++)
                if (data[i + k] == '.' && data[i + k + 1] == '.')
                    keep = 0;
            if (keep) {
                memcpy(w, data + i, l);
                w += l;
                *w++ = '\n';
            }
            i += l + 1;
        }
        snprintf(path, sizeof path, "%s/a.tar", dir);
        rc |= fuzz_eval_write(path, bin, blen);
        snprintf(path, sizeof path, "%s/b.png", dir);
        rc |= fuzz_eval_write(path, png, sizeof png);
        snprintf(path, sizeof path, "%s/sub", dir);
        rc |= mkdir(path, 0700);
        snprintf(path, sizeof path, "%s/p", dir);
        rc |= mkfifo(path, 0600);
        snprintf(loc, sizeof loc, "%s/list.txt", dir);
        rc |= fuzz_eval_write(loc, list, (size_t)(w - list));
        free(list);
        if (rc != 0)
            goto out;
    } else {
        int files = 0;
        snprintf(loc, sizeof loc, "%s/f", dir);
        if (mkdir(loc, 0700) != 0)
            goto out;
        for (size_t i = 0; i < tlen && files < 16;) {
            const uint8_t *nl = memchr(data + i, '\n', tlen - i);
            size_t l = nl ? (size_t)(nl - (data + i)) : tlen - i;
            if (l > 0 && l <= 100 && data[i] != '.' && memchr(data + i, '/', l) == NULL &&
                memchr(data + i, 0, l) == NULL) {
                snprintf(path, sizeof path, "%s/%.*s", loc, (int)l, (const char *)data + i);
                if (fuzz_eval_write(path, bin, blen) == 0)
                    files++;
            }
            i += l + 1;
        }
    }
    rc = dd_eval_each(loc, FUZZ_EVAL_MAX_BYTES, fuzz_eval_fn, &x, &rep, &err);
    /* a list's line too long for a path stops it, naming the list and line */
    if (x.bad == 0 && rc != 0 &&
        (mode != 1 || rc != DD_EAGAINST || strncmp(err.msg, loc, strlen(loc)) != 0 ||
         err.msg[strlen(loc)] != ':'))
        x.bad = __LINE__;
out:
    fuzz_eval_clean(dir);
    return x.bad;
}

#endif /* FUZZ_TARGETS_H */
