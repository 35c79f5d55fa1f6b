/*
 * crawl/live.c: `witpipe crawl --seeds FILE`: a polite breadth-first crawl.
 *
 * The frontier is the catalog's pages table (one row per normalised URL,
 * taken shallowest first), so a crawl resumes where it stopped and a page
 * is fetched once; a kill -9 loses at most the pages in flight, which are
 * still 'pending' and are fetched again. Every page result, the links it
 * adds and the pairs it gives are written in the same transaction.
 *
 * Networking is the shared net/ engine (SSRF guard, timeouts, size caps,
 * retries, per-host connection caps, user agent). On top of it this file
 * keeps, per origin, the robots.txt verdict (RFC 9309: fetched first,
 * cached 24 hours in the catalog) and the time the next page may start,
 * which honours Crawl-delay when it asks for more than --delay.
 *
 * --part I/N: a part crawls the seeds and pages whose site (registrable
 * domain, or host: crawl_url_site_key) is in part I. Scope stays that of
 * all the seeds; a link that is in scope but of another part's site is
 * counted (links_other_part) and not followed: under the default scope a
 * site's own links stay in it, so whole sites, and with them robots.txt and
 * the per-host delay, belong to one part (docs/scale-out.md has the cost).
 *
 * Redirects: libcurl is not allowed to follow a page's redirects, since it
 * would fetch the target without asking robots.txt or checking scope. A
 * 3xx instead puts its target in the frontier (same depth, one more hop),
 * where it is vetted like any link; at most NET_MAX_REDIRECTS hops.
 */
#include "crawl.h"
#include "net/net.h"

#include <ctype.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROBOTS_TTL_S   (24 * 3600) /* RFC 9309 section 2.4 */
#define ORIGIN_MAX     512
#define BATCH_PAGES    256 /* pending pages looked at per round */
#define COMMIT_EVERY_S 1.0 /* longest time results wait for a commit */
#define SEED_LINE_MAX  8192

enum { R_UNKNOWN, R_FETCHING, R_READY };
enum { W_NO, W_YES, W_OTHER_PART }; /* what wanted() says of a link */

typedef struct origin {
    char name[ORIGIN_MAX];
    int robots_state;
    crawl_robots *robots;
    double next_start; /* wp_now() before which no page may start */
    double gap;        /* seconds between page starts here */
    int active;
} origin;

typedef struct req {
    int is_robots;
    int64_t page_id;
    int depth;
    int redirects; /* hops that led to this page */
    size_t origin;
} req;

typedef struct live {
    cat *c;
    crawl_sink *sink;
    const crawl_live_opts *lo;
    const crawl_opts *o;
    int64_t source_id;
    net_engine *net;
    origin *origins;
    size_t n_origins, cap_origins;
    int64_t *inflight; /* page ids submitted and not yet done */
    size_t n_inflight, cap_inflight;
    char **seeds;
    size_t n_seeds;
    wp_arena *arena;
    int64_t fetched; /* pages no longer pending (this and earlier runs) */
    int64_t links_out_of_scope, robots_denied;
    int fail; /* a catalog error inside a callback */
    wp_err cb_err;
} live;

static int find_origin(live *L, const char *url, size_t *idx)
{
    char name[ORIGIN_MAX];
    if (crawl_url_origin(url, name, sizeof name) != 0)
        return WP_EINVAL;
    /* Linear: a crawl touches few origins compared with pages. */
    for (size_t i = 0; i < L->n_origins; i++)
        if (strcmp(L->origins[i].name, name) == 0) {
            *idx = i;
            return 0;
        }
    if (L->n_origins == L->cap_origins) {
        size_t cap = L->cap_origins ? L->cap_origins * 2 : 16;
        origin *p = realloc(L->origins, cap * sizeof *p);
        if (p == NULL)
            return WP_ENOMEM;
        L->origins = p;
        L->cap_origins = cap;
    }
    origin *o = &L->origins[L->n_origins];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", name);
    o->gap = L->lo->delay;
    *idx = L->n_origins++;
    return 0;
}

static int inflight_has(const live *L, int64_t id)
{
    for (size_t i = 0; i < L->n_inflight; i++)
        if (L->inflight[i] == id)
            return 1;
    return 0;
}

static void inflight_del(live *L, int64_t id)
{
    for (size_t i = 0; i < L->n_inflight; i++)
        if (L->inflight[i] == id) {
            L->inflight[i] = L->inflight[--L->n_inflight];
            return;
        }
}

static int inflight_add(live *L, int64_t id)
{
    if (L->n_inflight == L->cap_inflight) {
        size_t cap = L->cap_inflight ? L->cap_inflight * 2 : 64;
        int64_t *p = realloc(L->inflight, cap * sizeof *p);
        if (p == NULL)
            return WP_ENOMEM;
        L->inflight = p;
        L->cap_inflight = cap;
    }
    L->inflight[L->n_inflight++] = id;
    return 0;
}

/* "*pat*" glob match, so a plain pattern means "contains". */
static int pattern_match(const char *pat, const char *url)
{
    char g[1024];
    snprintf(g, sizeof g, "*%s*", pat);
    return fnmatch(g, url, 0) == 0;
}

static int in_part(const live *L, const char *url)
{
    return wp_part_all(&L->lo->part) || wp_part_has(&L->lo->part, crawl_url_site_key(url));
}

/* W_YES if url may join the frontier: in scope (the seeds' registrable
 * domains unless --any-domain), through --include / --exclude, and of a
 * site in this part; W_OTHER_PART (counted) when only the part says no;
 * else W_NO. */
static int wanted(live *L, const char *url)
{
    const crawl_live_opts *lo = L->lo;
    if (!lo->any_domain) {
        int in = 0;
        for (size_t i = 0; i < L->n_seeds && !in; i++)
            in = crawl_same_site(url, L->seeds[i]);
        if (!in) {
            L->links_out_of_scope++;
            return W_NO;
        }
    }
    if (lo->include != NULL) {
        int any = 0;
        for (int i = 0; lo->include[i] != NULL && !any; i++)
            any = pattern_match(lo->include[i], url);
        if (!any)
            return W_NO;
    }
    if (lo->exclude != NULL)
        for (int i = 0; lo->exclude[i] != NULL; i++)
            if (pattern_match(lo->exclude[i], url))
                return W_NO;
    if (!in_part(L, url)) {
        crawl_sink_counts(L->sink)->links_other_part++;
        return W_OTHER_PART;
    }
    return W_YES;
}

static int load_seeds(live *L, wp_err *err)
{
    FILE *f = fopen(L->lo->seeds_file, "r");
    char line[SEED_LINE_MAX];
    int lineno = 0, rc = 0;
    if (f == NULL)
        return wp_err_set(err, WP_ENOENT, "%s: cannot open the seeds file", L->lo->seeds_file);
    while (fgets(line, sizeof line, f) != NULL) {
        char *s = line, *e;
        const char *u = NULL;
        lineno++;
        while (isspace((unsigned char)*s))
            s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1]))
            *--e = '\0';
        if (*s == '\0' || *s == '#')
            continue;
        wp_arena_reset(L->arena);
        rc = crawl_url_normalize(s, L->arena, &u);
        if (rc < 0)
            break;
        if (rc > 0) {
            wp_report_event(L->lo->rep, WP_LOG_WARN, "bad_seed", "%s:%d: not an http(s) URL: %s",
                            L->lo->seeds_file, lineno, s);
            rc = 0;
            continue;
        }
        char **p = realloc(L->seeds, (L->n_seeds + 1) * sizeof *p);
        if (p == NULL || (p[L->n_seeds] = strdup(u)) == NULL) {
            if (p != NULL)
                L->seeds = p;
            rc = WP_ENOMEM;
            break;
        }
        L->seeds = p;
        L->n_seeds++;
        /* Every seed sets the scope; a part starts from its own sites'. */
        if (in_part(L, u) && (rc = cat_page_add(L->c, u, 0, 0, L->source_id, NULL, err)) != 0)
            break;
    }
    fclose(f);
    if (rc == WP_ENOMEM)
        return wp_err_set(err, rc, "out of memory reading seeds");
    return rc;
}

static void robots_ready(live *L, origin *o, int status, const char *body, size_t len)
{
    double delay;
    crawl_robots_free(o->robots);
    o->robots = crawl_robots_parse(body, len, status, L->o->token);
    o->robots_state = R_READY;
    if (o->robots != NULL && (delay = crawl_robots_delay(o->robots)) > o->gap)
        o->gap = delay > 60 ? 60 : delay; /* a huge Crawl-delay would stall us forever */
}

static void on_robots(live *L, req *q, net_result *r)
{
    origin *o = &L->origins[q->origin];
    int status = r->http_status;
    if (r->error_class != NULL && status < 400)
        status = 0; /* network failure or too large: unreachable, RFC 9309 2.3.1.4 */
    if (!L->fail && cat_robots_put(L->c, o->name, status, r->body.data, r->body.len, &L->cb_err))
        L->fail = 1;
    robots_ready(L, o, status, r->body.data ? r->body.data : "", r->body.len);
}

static int is_html(const char *ct)
{
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || strncasecmp(ct, "text/html", 9) == 0 ||
           strncasecmp(ct, "application/xhtml+xml", 21) == 0;
}

/* A page answered 3xx (pages are fetched with NET_REQ_NO_FOLLOW): its
 * target joins the frontier at the same depth, so the scheduler checks
 * robots.txt, scope and politeness for it as for any page. Chains stop
 * after NET_MAX_REDIRECTS hops, as curl's own limit did. */
static void on_redirect(live *L, req *q, net_result *r)
{
    const char *target = NULL, *state = "redirect", *cls = NULL;
    int rc, w;

    wp_arena_reset(L->arena);
    rc = crawl_url_normalize(r->redirect_url, L->arena, &target);
    if (rc < 0) {
        wp_err_set(&L->cb_err, WP_ENOMEM, "out of memory");
        L->fail = 1;
        return;
    }
    if (rc > 0) {
        state = "error";
        cls = NET_EC_SCHEME; /* only http(s) targets are followed */
    } else if (q->redirects + 1 > NET_MAX_REDIRECTS) {
        state = "error";
        cls = NET_EC_REDIRECTS;
    } else if ((w = wanted(L, target)) != W_YES) {
        cls = w == W_OTHER_PART ? "other_part" : "out_of_scope";
    } else if (cat_page_add(L->c, target, q->depth, q->redirects + 1, L->source_id, NULL,
                            &L->cb_err) != 0) {
        L->fail = 1;
        return;
    }
    wp_report_event(L->lo->rep, WP_LOG_DEBUG, "redirect", "%s -> %s%s%s", r->url, r->redirect_url,
                    cls ? ": " : "", cls ? cls : "");
    if (cat_page_set_result(L->c, q->page_id, state, cls, r->http_status, 0, &L->cb_err))
        L->fail = 1;
}

static void on_page(live *L, req *q, net_result *r)
{
    const char *page_url = r->final_url ? r->final_url : r->url;
    crawl_page *pg = NULL;
    int pairs_before, rc;
    crawl_counts *k = crawl_sink_counts(L->sink);

    L->fetched++;
    if (r->redirect_url != NULL) {
        on_redirect(L, q, r);
        return;
    }
    if (r->error_class != NULL) {
        const char *state = strcmp(r->error_class, NET_EC_OPT_OUT) == 0 ? "skipped" : "error";
        if (strcmp(r->error_class, NET_EC_OPT_OUT) == 0)
            k->pages_opt_out++;
        wp_report_event(L->lo->rep, WP_LOG_DEBUG, "page_error", "%s", r->detail);
        if (cat_page_set_result(L->c, q->page_id, state, r->error_class, r->http_status, 0,
                                &L->cb_err))
            L->fail = 1;
        return;
    }
    if (!is_html(r->content_type)) {
        k->pages_skipped++;
        if (cat_page_set_result(L->c, q->page_id, "skipped", "not_html", r->http_status, 0,
                                &L->cb_err))
            L->fail = 1;
        return;
    }
    wp_arena_reset(L->arena);
    /* The engine has already refused a page whose X-Robots-Tag opts out;
     * the rest (nofollow) is the extractor's, read by the same parser. */
    rc = crawl_extract(r->body.data ? r->body.data : "", r->body.len, page_url, r->content_type,
                       r->x_robots, L->o, L->arena, &pg, &L->cb_err);
    if (rc != 0) {
        L->fail = 1;
        return;
    }
    pairs_before = (int)(k->pairs_new + k->pairs_seen);
    /* noindex: the page's own content is not taken; its links still are
     * (unless nofollow). */
    if (!pg->noindex && crawl_sink_page(L->sink, pg, L->source_id, &L->cb_err) != 0) {
        L->fail = 1;
        return;
    }
    if (q->depth < L->lo->max_depth)
        for (size_t i = 0; i < pg->n_links; i++)
            if (wanted(L, pg->links[i]) == W_YES &&
                cat_page_add(L->c, pg->links[i], q->depth + 1, 0, L->source_id, NULL, &L->cb_err)) {
                L->fail = 1;
                return;
            }
    if (cat_page_set_result(L->c, q->page_id, "ok", pg->noindex ? "noindex" : NULL, r->http_status,
                            (int)(k->pairs_new + k->pairs_seen) - pairs_before, &L->cb_err))
        L->fail = 1;
}

static void on_done(void *ud, net_result *r)
{
    live *L = ud;
    req *q = r->ud;
    if (r->error_class != NULL && strcmp(r->error_class, NET_EC_ABORTED) == 0) {
        /* Shutting down: the page stays pending for the next run. */
        free(q);
        return;
    }
    if (q->is_robots) {
        L->origins[q->origin].active = 0;
        on_robots(L, q, r);
    } else {
        L->origins[q->origin].active--;
        inflight_del(L, q->page_id);
        on_page(L, q, r);
    }
    free(q);
}

static int submit(live *L, const char *url, int is_robots, const cat_page_todo *page, size_t oi,
                  wp_err *err)
{
    req *q = calloc(1, sizeof *q);
    int rc;
    if (q == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    q->is_robots = is_robots;
    if (page != NULL) {
        q->page_id = page->id;
        q->depth = page->depth;
        q->redirects = page->redirects;
    }
    q->origin = oi;
    /* robots.txt: its 4xx/5xx status is the answer, so keep error bodies
     * and never let an X-Robots-Tag refuse it; its redirects are followed
     * (RFC 9309 section 2.3.1.2: at least five). A page's redirects come
     * back to us (on_redirect). */
    rc = net_submit(L->net, url,
                    is_robots ? NET_REQ_NO_OPTOUT | NET_REQ_KEEP_ERROR_BODY : NET_REQ_NO_FOLLOW, q,
                    err);
    if (rc != 0) {
        free(q);
        return rc;
    }
    return 0;
}

/* Looks at the shallowest pending pages and starts those whose origin is
 * ready. Returns 0 or an error; *idle is 1 when nothing is pending. */
static int schedule(live *L, int *idle, wp_err *err)
{
    cat_page_todo todo[BATCH_PAGES];
    int n = 0, rc;
    double now = wp_now();
    *idle = 0;
    wp_arena_reset(L->arena);
    if ((rc = cat_pages_pending(L->c, BATCH_PAGES, todo, &n, L->arena, err)) != 0)
        return rc;
    if (n == 0) {
        *idle = 1;
        return 0;
    }
    for (int i = 0; i < n; i++) {
        cat_page_todo *t = &todo[i];
        size_t oi;
        origin *o;
        if (inflight_has(L, t->id))
            continue;
        if ((int64_t)L->n_inflight + L->fetched >= L->lo->max_pages)
            break;
        if (!in_part(L, t->url)) {
            /* Left by a run of another part (or none) in this catalog. */
            if ((rc = cat_page_set_result(L->c, t->id, "skipped", "other_part", -1, 0, err)) != 0)
                return rc;
            continue;
        }
        if (t->depth > L->lo->max_depth) {
            if ((rc = cat_page_set_result(L->c, t->id, "skipped", "max_depth", -1, 0, err)) != 0)
                return rc;
            continue;
        }
        if ((rc = find_origin(L, t->url, &oi)) == WP_ENOMEM)
            return wp_err_set(err, rc, "out of memory");
        if (rc != 0) {
            if ((rc = cat_page_set_result(L->c, t->id, "error", "bad_url", -1, 0, err)) != 0)
                return rc;
            continue;
        }
        o = &L->origins[oi];
        if (o->robots_state == R_UNKNOWN) {
            int st = 0, found = 0;
            wp_buf body = {0};
            rc = cat_robots_get(L->c, o->name, wp_unix_time() - ROBOTS_TTL_S, &st, &body, &found,
                                err);
            if (rc == 0 && found) {
                robots_ready(L, o, st, body.data ? body.data : "", body.len);
            } else if (rc == 0) {
                char url[ORIGIN_MAX + 16];
                snprintf(url, sizeof url, "%s/robots.txt", o->name);
                o->robots_state = R_FETCHING;
                o->active = 1;
                rc = submit(L, url, 1, NULL, oi, err);
            }
            wp_buf_free(&body);
            if (rc != 0)
                return rc;
        }
        if (o->robots_state != R_READY || o->active > 0 || now < o->next_start)
            continue; /* one page at a time per origin, --delay apart */
        if (o->robots == NULL)
            return wp_err_set(err, WP_ENOMEM, "out of memory parsing robots.txt");
        const char *pq = crawl_url_path_query(t->url, L->arena);
        if (pq == NULL)
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        if (!crawl_robots_allowed(o->robots, pq)) {
            L->robots_denied++;
            if ((rc = cat_page_set_result(L->c, t->id, "skipped", "robots", -1, 0, err)) != 0)
                return rc;
            continue;
        }
        if ((rc = inflight_add(L, t->id)) != 0)
            return wp_err_set(err, rc, "out of memory");
        o->active++;
        o->next_start = now + o->gap;
        if ((rc = submit(L, t->url, 0, t, oi, err)) != 0)
            return rc;
    }
    return 0;
}

/* Pages in flight under --max-memory: each may hold its download (up to
 * --max-page) and its decoded body (again up to --max-page) at once, beside
 * LIVE_BASE_BYTES for the process (frontier, robots cache, catalog). Lowers
 * *parallel to what fits (a `concurrency_lowered` warning); WP_ELIMIT naming
 * both options when one page does not fit. */
#define LIVE_BASE_BYTES ((int64_t)64 << 20)
static int live_budget(live *L, int *parallel, wp_err *err)
{
    int64_t budget, per, fit;
    if (!wp_mem_is_set())
        return 0;
    budget = wp_mem_budget(1);
    per = 2 * (int64_t)L->o->max_page;
    fit = per > 0 ? (budget - LIVE_BASE_BYTES) / per : *parallel;
    if (fit < 1)
        return wp_err_set(err, WP_ELIMIT,
                          "--max-memory %lld MiB is too low for crawl --seeds: a page in flight "
                          "needs up to %lld MiB (twice --max-page %lld MiB) beside %lld MiB for "
                          "the crawl; give --max-memory %lldM or more, or lower --max-page",
                          (long long)(budget >> 20), (long long)(per >> 20),
                          (long long)(L->o->max_page >> 20), (long long)(LIVE_BASE_BYTES >> 20),
                          (long long)((LIVE_BASE_BYTES + per + (1 << 20) - 1) >> 20));
    if (fit < *parallel) {
        wp_report_event(L->lo->rep, WP_LOG_WARN, "concurrency_lowered",
                        "crawl: --concurrency %d lowered to %lld to fit --max-memory %lld MiB "
                        "(up to %lld MiB a page in flight)",
                        *parallel, (long long)fit, (long long)(budget >> 20),
                        (long long)(per >> 20));
        *parallel = (int)fit;
    }
    return 0;
}

static int open_net(live *L, net_acl **acl, wp_err *err)
{
    net_opts no;
    int rc;
    net_opts_init(&no);
    no.parallel = L->lo->concurrency > 0 ? L->lo->concurrency : 16;
    if ((rc = live_budget(L, &no.parallel, err)) != 0)
        return rc;
    no.per_host = 1;
    no.host_delay_s = 0; /* spacing is ours (per origin, with Crawl-delay) */
    no.total_timeout_ms = (long)(L->lo->timeout * 1000);
    if (no.connect_timeout_ms > no.total_timeout_ms)
        no.connect_timeout_ms = no.total_timeout_ms;
    no.max_bytes = (int64_t)L->o->max_page;
    no.retries = L->lo->retries;
    if (L->lo->user_agent)
        no.user_agent = L->lo->user_agent;
    no.robot_tokens = L->o->token;
    if (L->lo->allow_net != NULL) {
        if ((*acl = net_acl_new()) == NULL)
            return wp_err_set(err, WP_ENOMEM, "out of memory");
        for (int i = 0; L->lo->allow_net[i] != NULL; i++)
            if ((rc = net_acl_add(*acl, L->lo->allow_net[i], err)) != 0)
                return rc;
        no.allow = *acl;
    }
    {
        char what[64];
        snprintf(what, sizeof what, "crawl --parallel %d", no.parallel);
        if ((rc = wp_fd_reserve((int64_t)no.parallel * 2 + 64, what, err)) != 0)
            return rc;
    }
    return net_new(&no, on_done, NULL, L, &L->net, err);
}

int crawl_live(cat *c, crawl_sink *sink, const crawl_live_opts *lo, wp_err *err)
{
    live L;
    net_acl *acl = NULL;
    char abs[PATH_MAX];
    double last_commit;
    int rc, idle = 0;

    memset(&L, 0, sizeof L);
    L.c = c;
    L.sink = sink;
    L.lo = lo;
    L.o = crawl_sink_opts(sink);
    if ((L.arena = wp_arena_new(1 << 16)) == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    if ((rc = open_net(&L, &acl, err)) != 0)
        goto out;
    if ((rc = cat_begin(c, err)) != 0)
        goto out;
    rc = cat_source_get_or_add(c, "seeds", realpath(lo->seeds_file, abs) ? abs : lo->seeds_file,
                               NULL, &L.source_id, err);
    if (rc == 0)
        rc = load_seeds(&L, err);
    if (rc == 0)
        rc = cat_commit(c, err);
    if (rc != 0)
        goto out;
    L.fetched = cat_count_pages(c, NULL) - cat_count_pages(c, "pending");
    last_commit = wp_now();
    if ((rc = cat_begin(c, err)) != 0)
        goto out;
    for (;;) {
        if (wp_stop_requested()) {
            rc = WP_ESTOP;
            break;
        }
        if ((rc = schedule(&L, &idle, err)) != 0)
            break;
        if (net_pending(L.net) == 0 &&
            (idle || (int64_t)L.n_inflight + L.fetched >= lo->max_pages)) {
            /* Nothing in flight and nothing more to start. A page whose
             * origin waits for its delay keeps the loop alive. */
            int waiting = 0;
            for (size_t i = 0; i < L.n_origins; i++)
                waiting |= L.origins[i].robots_state == R_FETCHING;
            if (!waiting)
                break;
        }
        if ((rc = net_run(L.net, 50, err)) != 0)
            break;
        if (L.fail) {
            *err = L.cb_err;
            rc = err->code ? err->code : WP_EIO;
            break;
        }
        if (wp_now() - last_commit >= COMMIT_EVERY_S) {
            crawl_counts *k = crawl_sink_counts(sink);
            if ((rc = cat_commit(c, err)) != 0 || (rc = cat_begin(c, err)) != 0)
                break;
            last_commit = wp_now();
            wp_progress p = {.stage = "crawl",
                             .done = (uint64_t)L.fetched,
                             .errors = k->corrupt,
                             .bytes = k->bytes};
            wp_report_progress(lo->rep, &p);
        }
    }
    if (cat_in_transaction(c)) {
        /* Pages still in flight stay pending: the next run fetches them. */
        int r2 = cat_commit(c, err);
        if (rc == 0)
            rc = r2;
    }
    {
        uint64_t other = crawl_sink_counts(sink)->links_other_part;
        if (L.links_out_of_scope > 0 || L.robots_denied > 0 || other > 0)
            wp_report_event(lo->rep, WP_LOG_INFO, "crawl_scope",
                            "crawl: %lld links out of scope, %lld pages refused by robots.txt, "
                            "%llu links to other parts' sites",
                            (long long)L.links_out_of_scope, (long long)L.robots_denied,
                            (unsigned long long)other);
    }
out:
    if (L.net != NULL) {
        net_abort_all(L.net);
        net_free(L.net);
    }
    if (cat_in_transaction(c))
        cat_rollback(c);
    net_acl_free(acl);
    for (size_t i = 0; i < L.n_origins; i++)
        crawl_robots_free(L.origins[i].robots);
    free(L.origins);
    for (size_t i = 0; i < L.n_seeds; i++)
        free(L.seeds[i]);
    free(L.seeds);
    free(L.inflight);
    wp_arena_free(L.arena);
    return rc;
}
