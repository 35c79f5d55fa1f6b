/*
 * filter/tags.c: zero-shot content tags. Each label prompt of the list
 * (filter/content_labels.txt or the user's) is embedded with the CLIP text
 * tower; each stored image is read from the store, preprocessed as CLIP's
 * reference does and embedded; its tag is the tag of the closest prompt,
 * with the margin over the closest prompt of any other tag. Tags go to the
 * catalog (pair_tags, kind 'content') one batch per transaction, so a
 * stopped run resumes with the pairs not yet tagged.
 *
 * Image embeddings are computed here because the embeddings reader (emb/)
 * is not yet in the tree; once it is, the stored image embeddings of
 * `witpipe encode` can be read instead of embedding the images again.
 */
#include "filter.h"

#include "clip/clip.h"
#include "image/image.h"
#include "store/store.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TAG_MAX 32

struct flt_labels {
    int n, cap;
    char **tag, **prompt;
};

void flt_labels_free(flt_labels *l)
{
    if (l == NULL)
        return;
    for (int i = 0; i < l->n; i++) {
        free(l->tag[i]);
        free(l->prompt[i]);
    }
    free(l->tag);
    free(l->prompt);
    free(l);
}

int flt_labels_count(const flt_labels *l)
{
    return l->n;
}

const char *flt_labels_tag(const flt_labels *l, int i)
{
    return l->tag[i];
}

const char *flt_labels_prompt(const flt_labels *l, int i)
{
    return l->prompt[i];
}

static char *dup_range(const char *a, const char *z)
{
    char *s = malloc((size_t)(z - a) + 1);
    if (s != NULL) {
        memcpy(s, a, (size_t)(z - a));
        s[z - a] = '\0';
    }
    return s;
}

static void trim(const char **a, const char **z)
{
    while (*a < *z && (**a == ' ' || **a == '\t'))
        (*a)++;
    while (*z > *a && ((*z)[-1] == ' ' || (*z)[-1] == '\t' || (*z)[-1] == '\r'))
        (*z)--;
}

int flt_labels_parse(const char *text, size_t n, const char *name, flt_labels **out, wp_err *err)
{
    flt_labels *l = calloc(1, sizeof *l);
    const char *s = text, *e = text + n;
    int line = 0, rc;

    *out = NULL;
    if (l == NULL)
        return wp_err_set(err, WP_ENOMEM, "out of memory");
    while (s < e) {
        const char *eol = memchr(s, '\n', (size_t)(e - s));
        const char *a = s, *z = eol ? eol : e, *sep, *ta, *tz, *pa, *pz;
        line++;
        s = eol ? eol + 1 : e;
        trim(&a, &z);
        if (a == z || *a == '#')
            continue;
        sep = a;
        while (sep < z && *sep != '|' && *sep != '\t')
            sep++;
        ta = a, tz = sep, pa = sep + 1, pz = z;
        if (sep < z)
            trim(&ta, &tz), trim(&pa, &pz);
        if (sep == z || ta == tz || pa >= pz || tz - ta >= TAG_MAX) {
            rc = wp_err_set(err, FLT_ELIST,
                            "%s:%d: expected TAG|PROMPT (a tag of 1 to %d bytes, a prompt)", name,
                            line, TAG_MAX - 1);
            goto fail;
        }
        if (l->n == l->cap) {
            int nc = l->cap ? 2 * l->cap : 32;
            char **nt = realloc(l->tag, (size_t)nc * sizeof *nt), **np;
            if (nt == NULL)
                goto oom;
            l->tag = nt;
            if ((np = realloc(l->prompt, (size_t)nc * sizeof *np)) == NULL)
                goto oom;
            l->prompt = np;
            l->cap = nc;
        }
        l->tag[l->n] = dup_range(ta, tz);
        l->prompt[l->n] = dup_range(pa, pz);
        if (l->tag[l->n] == NULL || l->prompt[l->n] == NULL) {
            free(l->tag[l->n]);
            free(l->prompt[l->n]);
            goto oom;
        }
        l->n++;
    }
    if (l->n < 2) {
        rc = wp_err_set(err, FLT_ELIST, "%s: fewer than two labels", name);
        goto fail;
    }
    for (int i = 1; i < l->n; i++)
        if (strcmp(l->tag[i], l->tag[0]) != 0)
            goto ok;
    rc = wp_err_set(err, FLT_ELIST, "%s: every label has the same tag '%s'", name, l->tag[0]);
    goto fail;
ok:
    *out = l;
    return 0;
oom:
    rc = wp_err_set(err, WP_ENOMEM, "out of memory");
fail:
    flt_labels_free(l);
    return rc;
}

/* The model folder's name ("model" folders take their parent's), as
 * encode names its models. */
static void model_name(const char *dir, char *out, size_t cap)
{
    char tmp[WP_PATH_MAX];
    char *base;
    size_t n;
    snprintf(tmp, sizeof tmp, "%s", dir);
    n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/')
        tmp[--n] = '\0';
    base = strrchr(tmp, '/');
    base = base ? base + 1 : tmp;
    if (strcmp(base, "model") == 0 && base > tmp + 1) {
        char *p;
        base[-1] = '\0';
        p = strrchr(tmp, '/');
        base = p ? p + 1 : tmp;
    }
    snprintf(out, cap, "%s", base[0] ? base : "model");
}

int flt_tag_run(cat *c, const flt_tag_opts *o, const wp_reporter *rep, int64_t *tagged, wp_err *err)
{
    static const char *const one_template[] = {"{}"};
    int batch = o->batch > 0 ? o->batch : 32;
    flt_labels *lab = NULL;
    clip_model *m = NULL;
    clip_tok *tok = NULL;
    clip_ws *ws = NULL;
    st_store *st = NULL;
    wp_buf file = {0}, bytes = {0};
    cat_tag_item *items = NULL;
    float *cls = NULL, *pix = NULL, *emb = NULL;
    uint8_t *rgb = NULL;
    int *ok = NULL;
    char name[160];
    wp_progress pr = {"tag", 0, 0, 0, 0, NULL};
    int64_t after = 0;
    int rc, E, S, nl, n;

    *tagged = 0;
    if (o->labels_file != NULL) {
        if ((rc = wp_read_file(o->labels_file, 1u << 20, &file, err)) != 0 ||
            (rc = flt_labels_parse(file.data ? file.data : "", file.len, o->labels_file, &lab,
                                   err)) != 0)
            goto out;
    } else if ((rc = flt_labels_parse(flt_content_labels_txt, strlen(flt_content_labels_txt),
                                      "filter/content_labels.txt", &lab, err)) != 0) {
        goto out;
    }
    if (o->model_name != NULL)
        snprintf(name, sizeof name, "%s", o->model_name);
    else
        model_name(o->model_dir, name, sizeof name);
    if ((rc = clip_model_open(o->model_dir, NULL, &m, err)) != 0 ||
        (rc = clip_tok_open_dir(o->model_dir, &tok, err)) != 0 ||
        (rc = st_open(cat_dir(c), &st, err)) != 0)
        goto out;
    E = clip_model_arch(m)->embed_dim;
    S = clip_model_arch(m)->image_size;
    nl = lab->n;
    ws = clip_ws_new();
    cls = malloc((size_t)nl * (size_t)E * sizeof *cls);
    pix = malloc((size_t)batch * 3 * (size_t)S * (size_t)S * sizeof *pix);
    emb = malloc((size_t)batch * (size_t)E * sizeof *emb);
    rgb = malloc((size_t)S * (size_t)S * 3);
    items = malloc((size_t)batch * sizeof *items);
    ok = malloc((size_t)batch * sizeof *ok);
    if (ws == NULL || cls == NULL || pix == NULL || emb == NULL || rgb == NULL || items == NULL ||
        ok == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = clip_zeroshot_classifier(m, ws, tok, (const char *const *)lab->prompt, nl,
                                       one_template, 1, cls, err)) != 0)
        goto out;
    for (;;) {
        int good = 0;
        if (o->limit > 0 && *tagged >= o->limit)
            break;
        if ((rc = cat_tag_todo(c, "content", name, after, batch, items, &n, err)) != 0)
            goto out;
        if (n == 0)
            break;
        for (int i = 0; i < n; i++) {
            wp_err e2 = {0};
            ok[i] = 0;
            if (items[i].bytes <= 0 || wp_buf_reserve(&bytes, (size_t)items[i].bytes) != 0)
                continue;
            if (st_read_verified(st, items[i].store_file, items[i].store_offset, bytes.data,
                                 (size_t)items[i].bytes, items[i].sha256, &e2) != 0 ||
                img_clip_preprocess(bytes.data, (size_t)items[i].bytes, S, rgb, &e2) != 0) {
                wp_report_event(rep, WP_LOG_WARN, "tag_image", "pair %lld: %s",
                                (long long)items[i].pair_id, e2.msg);
                continue;
            }
            clip_normalize_rgb(m, rgb, pix + (size_t)good * 3 * S * S);
            ok[i] = 1;
            good++;
        }
        if (good > 0 && (rc = clip_encode_images(m, ws, pix, good, emb, err)) != 0)
            goto out;
        if ((rc = cat_begin(c, err)) != 0)
            goto out;
        for (int i = 0, g = 0; i < n; i++) {
            const float *v;
            int best = 0;
            double bs = -INFINITY, other = -INFINITY;
            if (!ok[i]) {
                /* recorded, so later runs do not read it again */
                rc = cat_tag_put(c, items[i].pair_id, "content", "unreadable", 0, 0, name, err);
                if (rc != 0)
                    goto fail_tx;
                continue;
            }
            v = emb + (size_t)g * E;
            g++;
            clip_l2_normalize((float *)v, E);
            for (int k = 0; k < nl; k++) {
                double s = clip_cosine(v, cls + (size_t)k * E, E);
                if (s > bs) {
                    bs = s;
                    best = k;
                }
            }
            for (int k = 0; k < nl; k++) {
                double s = clip_cosine(v, cls + (size_t)k * E, E);
                if (strcmp(lab->tag[k], lab->tag[best]) != 0 && s > other)
                    other = s;
            }
            if ((rc = cat_tag_put(c, items[i].pair_id, "content", lab->tag[best], bs, bs - other,
                                  name, err)) != 0)
                goto fail_tx;
            (*tagged)++;
        }
        if ((rc = cat_commit(c, err)) != 0)
            goto fail_tx;
        after = items[n - 1].pair_id;
        pr.done += (uint64_t)n;
        wp_report_progress(rep, &pr);
        if (wp_stop_requested()) {
            rc = wp_err_set(err, WP_ESTOP, "stopped");
            goto out;
        }
    }
    rc = 0;
    goto out;
fail_tx:
    cat_rollback(c);
out:
    flt_labels_free(lab);
    clip_ws_free(ws);
    clip_tok_free(tok);
    clip_model_free(m);
    st_close(st);
    wp_buf_free(&file);
    wp_buf_free(&bytes);
    free(items);
    free(cls);
    free(pix);
    free(emb);
    free(rgb);
    free(ok);
    return rc;
}
