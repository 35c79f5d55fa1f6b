/*
 * crawl/sink.c: from extracted pages to catalog pairs.
 *
 * The text of a pair is the first non-empty candidate in --text-from order
 * (alt by default, as WIT, LAION and MetaCLIP do); every candidate goes
 * into pairs.extra so later stages can choose differently. The pair uid is
 * a hash of (image URL, text), so a pair met on many pages is stored once
 * and each further page is recorded in pair_seen.
 */
#include "crawl.h"

#include <stdlib.h>
#include <string.h>

struct crawl_sink {
    cat *c;
    const crawl_opts *o;
    int64_t run_id;
    crawl_counts counts;
    wp_buf extra;
    uint64_t *seen; /* per-page set of (url, text) hashes */
    size_t seen_cap;
    /* Pairs stored by this run, by uid: a pair met again (nav icons on
     * every page of a site) then costs one sighting insert instead of
     * three catalog statements. Cleared when full. */
    struct known {
        uint8_t uid[16];
        int64_t id;
    } * known;
    size_t n_known;
};

#define KNOWN_CAP (1u << 18) /* slots; the table is cleared at 3/4 full */

crawl_sink *crawl_sink_new(cat *c, const crawl_opts *o, int64_t run_id)
{
    crawl_sink *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->c = c;
    s->o = o;
    s->run_id = run_id;
    return s;
}

void crawl_sink_free(crawl_sink *s)
{
    if (s == NULL)
        return;
    wp_buf_free(&s->extra);
    free(s->seen);
    free(s->known);
    free(s);
}

crawl_counts *crawl_sink_counts(crawl_sink *s)
{
    return &s->counts;
}

const crawl_opts *crawl_sink_opts(const crawl_sink *s)
{
    return s->o;
}

/* pairs.extra: the candidate texts and where the pair came from. */
static int build_extra(wp_buf *b, const crawl_page *p, const crawl_image *im, const char *from)
{
    wp_json j;
    wp_buf_reset(b);
    wp_json_init(&j, b);
    wp_json_obj_begin(&j, NULL);
    if (im->alt)
        wp_json_str(&j, "alt", im->alt);
    if (im->title)
        wp_json_str(&j, "title", im->title);
    if (im->figcaption)
        wp_json_str(&j, "figcaption", im->figcaption);
    if (p->title)
        wp_json_str(&j, "page_title", p->title);
    if (p->lang)
        wp_json_str(&j, "lang", p->lang);
    wp_json_str(&j, "text_from", from);
    wp_json_str(&j, "url_from", im->attr ? im->attr : "src");
    if (im->srcset_n > 0)
        wp_json_int(&j, "srcset_candidates", im->srcset_n);
    if (im->width >= 0)
        wp_json_int(&j, "width", im->width);
    if (im->height >= 0)
        wp_json_int(&j, "height", im->height);
    wp_json_obj_end(&j);
    return wp_json_finish(&j);
}

/* 1 if (url, text) was already emitted for this page; else records it. */
static int seen_on_page(crawl_sink *s, const char *url, const char *text)
{
    uint64_t h = wp_fnv1a64(url, strlen(url)) * 31 + wp_fnv1a64(text, strlen(text));
    size_t mask = s->seen_cap - 1, i;
    if (h == 0)
        h = 1;
    for (i = (size_t)h & mask; s->seen[i] != 0; i = (i + 1) & mask)
        if (s->seen[i] == h)
            return 1;
    s->seen[i] = h;
    return 0;
}

/* Finds uid (hex) in the known table: its slot, with *found. */
static struct known *known_slot(crawl_sink *s, const char *hex, int *found)
{
    uint8_t uid[16];
    uint64_t h = 0;
    size_t i;
    /* hex comes from wp_pair_uid: always 32 hex digits. */
    if (wp_unhex(hex, sizeof uid, uid) != 0)
        memset(uid, 0, sizeof uid);
    memcpy(&h, uid, sizeof h);
    for (i = (size_t)h & (KNOWN_CAP - 1);; i = (i + 1) & (KNOWN_CAP - 1)) {
        struct known *e = &s->known[i];
        if (e->id == 0) {
            memcpy(e->uid, uid, 16);
            *found = 0;
            return e;
        }
        if (memcmp(e->uid, uid, 16) == 0) {
            *found = 1;
            return e;
        }
    }
}

int crawl_sink_page(crawl_sink *s, const crawl_page *p, int64_t source_id, wp_err *err)
{
    static const char *const from_names[CRAWL_TEXT_NSRC] = {"alt", "title", "figcaption"};
    crawl_counts *k = &s->counts;
    size_t need = 16;
    int rc;

    k->pages++;
    for (int i = 0; i < CRAWL_DROP_N; i++)
        k->drops[i] += p->drops[i];
    k->attrs_capped += p->attrs_capped;
    k->pages_capped += p->drops[CRAWL_DROP_OVER_CAP] > 0 || p->attrs_capped > 0;
    k->images += p->n_images;
    /* noai / noimageai / noimageindex, and noindex (none, an expired
     * unavailable_after): the page's images are not for us, as in fetch
     * (NET_ROBOTS_OPT_OUT). */
    if (p->noai || p->noindex) {
        k->pages_opt_out++;
        k->drops[CRAWL_DROP_OPT_OUT] += p->n_images;
        return 0;
    }
    while (need < 2 * p->n_images)
        need *= 2;
    if (need > s->seen_cap) {
        uint64_t *n = realloc(s->seen, need * sizeof *n);
        if (n == NULL)
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        s->seen = n;
        s->seen_cap = need;
    }
    memset(s->seen, 0, s->seen_cap * sizeof *s->seen);
    for (size_t i = 0; i < p->n_images; i++) {
        const crawl_image *im = &p->images[i];
        const char *cand[CRAWL_TEXT_NSRC] = {im->alt, im->title, im->figcaption};
        const char *text = NULL, *from = NULL;
        int refused = 0;
        for (int j = 0; j < s->o->n_text_from && text == NULL; j++) {
            int src = s->o->text_from[j];
            if (cand[src] != NULL) {
                text = cand[src];
                from = from_names[src];
            } else if (refused == 0 && im->refused[src] > 0) {
                refused = im->refused[src] - 1;
            }
        }
        if (text == NULL) {
            k->drops[refused ? refused : CRAWL_DROP_NO_TEXT]++;
            continue;
        }
        if (seen_on_page(s, im->url, text)) {
            k->drops[CRAWL_DROP_DUP_ON_PAGE]++;
            continue;
        }
        if (build_extra(&s->extra, p, im, from) != 0)
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        cat_pair_in in = {
            .url = im->url,
            .url_len = strlen(im->url),
            .text = text,
            .text_len = strlen(text),
            .source_id = source_id,
            .origin = p->url,
            .extra_json = s->extra.data,
            .run_id = s->run_id,
        };
        int64_t pair_id = 0;
        int is_new = 0;
        if (s->o->dry_run) {
            k->pairs_new++; /* counted, not stored (within-page duplicates aside) */
            continue;
        }
        if (s->known == NULL && (s->known = calloc(KNOWN_CAP, sizeof *s->known)) == NULL)
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        char uid[WP_UID_HEX + 1];
        int found = 0;
        if (wp_pair_uid(in.url, in.url_len, in.text, in.text_len, uid) != 0)
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        in.uid = uid;
        struct known *slot = known_slot(s, uid, &found);
        if (found) {
            if ((rc = cat_pair_seen(s->c, slot->id, source_id, p->url, err)) != 0)
                return rc;
            k->pairs_seen++;
            continue;
        }
        if ((rc = cat_pair_add(s->c, &in, &pair_id, NULL, &is_new, err)) != 0)
            return rc;
        slot->id = pair_id;
        if (++s->n_known >= KNOWN_CAP / 4 * 3) {
            memset(s->known, 0, KNOWN_CAP * sizeof *s->known);
            s->n_known = 0;
        }
        if (is_new) {
            k->pairs_new++;
        } else {
            if ((rc = cat_pair_seen(s->c, pair_id, source_id, p->url, err)) != 0)
                return rc;
            k->pairs_seen++;
        }
    }
    return 0;
}
