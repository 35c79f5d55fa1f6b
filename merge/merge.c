/*
 * merge/merge.c: `witpipe merge` (merge/merge.h). The files a part's rows
 * point at are copied first, under numbers computed from the corpus
 * catalog alone, so a merge killed after copying and rerun copies the
 * same files to the same names; the catalog rows follow in one transaction
 * (catalog/cat_merge.c). Nothing here is SQL.
 */
#include "merge.h"

#include "catalog/catalog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Copies src to dst through dst.tmp, fsynced and renamed. A missing src
 * is WP_ENOENT. */
static int copy_file(const char *src, const char *dst, wp_err *err)
{
    char tmp[WP_PATH_MAX + 8];
    char buf[1 << 16];
    int in = -1, out = -1, rc = 0;
    ssize_t k;

    if (snprintf(tmp, sizeof tmp, "%s.tmp", dst) >= (int)sizeof tmp)
        return wp_err_set(err, WP_EINVAL, "%s: path too long", dst);
    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return wp_err_set(err, errno == ENOENT ? WP_ENOENT : WP_EIO, "%s: cannot open: %s", src,
                          strerror(errno));
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (out < 0) {
        rc = wp_err_set(err, WP_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    while ((k = read(in, buf, sizeof buf)) != 0) {
        if (k < 0) {
            if (errno == EINTR)
                continue;
            rc = wp_err_set(err, WP_EIO, "%s: read failed: %s", src, strerror(errno));
            goto out;
        }
        for (ssize_t o = 0; o < k;) {
            ssize_t w = write(out, buf + o, (size_t)(k - o));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = wp_err_set(err, WP_EIO, "%s: write failed: %s", tmp, strerror(errno));
                goto out;
            }
            o += w;
        }
    }
    if (fsync(out) != 0) {
        rc = wp_err_set(err, WP_EIO, "%s: fsync failed: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(out) != 0) {
        out = -1;
        rc = wp_err_set(err, WP_EIO, "%s: close failed: %s", tmp, strerror(errno));
        goto out;
    }
    out = -1;
    if (rename(tmp, dst) != 0)
        rc = wp_err_set(err, WP_EIO, "%s: rename failed: %s", dst, strerror(errno));
out:
    if (in >= 0)
        close(in);
    if (out >= 0) {
        close(out);
        unlink(tmp);
    }
    return rc;
}

typedef struct emb_list {
    cat_merge_emb *v;
    size_t n, cap;
} emb_list;

static int emb_collect(void *ud, const char *model, int64_t shard)
{
    emb_list *l = ud;
    char *m;

    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        cat_merge_emb *nv = realloc(l->v, nc * sizeof *nv);
        if (nv == NULL)
            return WP_ENOMEM;
        l->v = nv;
        l->cap = nc;
    }
    if ((m = strdup(model)) == NULL)
        return WP_ENOMEM;
    l->v[l->n].model = m;
    l->v[l->n].old_shard = shard;
    l->v[l->n].new_shard = -1;
    l->n++;
    return 0;
}

static void emb_free(emb_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free((char *)l->v[i].model);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Copies shard old of model from part to shard new of the corpus: the
 * image file always, the text and metadata files when the part has them. */
static int copy_emb_shard(const char *dir, const char *part, const cat_merge_emb *e, wp_err *err)
{
    static const char *const kinds[][2] = {
        {"img_emb", "img_emb_%lld.npy"},
        {"text_emb", "text_emb_%lld.npy"},
        {"metadata", "metadata_%lld.jsonl"},
    };
    for (int k = 0; k < 3; k++) {
        char sub[WP_PATH_MAX], src[WP_PATH_MAX * 2], dst[WP_PATH_MAX * 2], name[64];
        int rc;
        snprintf(sub, sizeof sub, "%s/embeddings/%s/%s", dir, e->model, kinds[k][0]);
        if ((rc = wp_mkdir_p(sub, err)) != 0)
            return rc;
        snprintf(name, sizeof name, kinds[k][1], (long long)e->old_shard);
        snprintf(src, sizeof src, "%s/embeddings/%s/%s/%s", part, e->model, kinds[k][0], name);
        snprintf(name, sizeof name, kinds[k][1], (long long)e->new_shard);
        snprintf(dst, sizeof dst, "%s/%s", sub, name);
        rc = copy_file(src, dst, err);
        if (rc == WP_ENOENT && k > 0)
            continue;
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* 1 when the part's image file of shard e->old_shard is the corpus's file
 * of that number (the part's embeddings/ a link to the corpus's: a part of
 * a stage that reads embeddings). */
static int same_emb_shard(const char *dir, const char *part, const cat_merge_emb *e)
{
    char a[WP_PATH_MAX * 2], b[WP_PATH_MAX * 2];
    struct stat sa, sb;
    snprintf(a, sizeof a, "%s/embeddings/%s/img_emb/img_emb_%lld.npy", part, e->model,
             (long long)e->old_shard);
    snprintf(b, sizeof b, "%s/embeddings/%s/img_emb/img_emb_%lld.npy", dir, e->model,
             (long long)e->old_shard);
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* Next free embedding shard number of model in the corpus. */
static int emb_base(cat *c, const char *model, int64_t *base, wp_err *err)
{
    return cat_encode_next_shard(c, model, base, err);
}

static int merge_one(cat *c, const char *dir, const char *part, const mrg_opts *o,
                     mrg_counts *counts, wp_err *err)
{
    char catalog[WP_PATH_MAX], fp[WP_SHA256_LEN * 2 + 1], when_path[WP_PATH_MAX];
    char rdir[PATH_MAX], rpart[PATH_MAX];
    cat *pc = NULL;
    int64_t *files = NULL, *newf = NULL, base = 0, merged_at = 0, unfinished;
    size_t nfiles = 0;
    emb_list emb = {0};
    cat_merge_counts mc;
    int rc;

    if (realpath(dir, rdir) != NULL && realpath(part, rpart) != NULL && strcmp(rdir, rpart) == 0)
        return wp_err_set(err, MRG_ESAME, "%s: a corpus cannot be merged into itself", part);
    if ((rc = cat_open(part, 0, &pc, err)) != 0)
        return wp_err_prefix(err, "part %s", part);
    if ((rc = cat_merge_fingerprint(pc, fp, err)) != 0)
        goto out;
    rc = cat_merge_find(c, fp, &merged_at, when_path, sizeof when_path, err);
    if (rc == 1) {
        if (o->skip_merged) {
            counts->skipped++;
            rc = 0;
            goto out;
        }
        rc = wp_err_set(err, CAT_EMERGED,
                        "%s: this part (fingerprint %.16s) was merged already, at unix time %lld "
                        "from %s; nothing changed",
                        part, fp, (long long)merged_at, when_path);
        goto out;
    }
    if (rc != 0)
        goto out;
    unfinished = cat_merge_unfinished_runs(pc, err);
    if (unfinished < 0) {
        rc = err->code;
        goto out;
    }
    if (unfinished > 0 && !o->partial) {
        rc = wp_err_set(err, MRG_EUNFINISHED,
                        "%s: %lld run(s) did not finish; finish the part or merge with --partial",
                        part, (long long)unfinished);
        goto out;
    }
    /* store files: copied under base, base+1, ... in the part's order */
    if ((rc = cat_merge_store_files(pc, &files, &nfiles, err)) != 0 ||
        (rc = cat_merge_store_base(c, &base, err)) != 0)
        goto out;
    if (nfiles > 0 && (newf = malloc(nfiles * sizeof *newf)) == NULL) {
        rc = wp_err_set(err, WP_ENOMEM, "out of memory");
        goto out;
    }
    if (nfiles > 0) {
        char sd[WP_PATH_MAX];
        snprintf(sd, sizeof sd, "%s/store", dir);
        if ((rc = wp_mkdir_p(sd, err)) != 0)
            goto out;
        for (size_t i = 0; i < nfiles; i++) {
            char src[WP_PATH_MAX * 2], dst[WP_PATH_MAX * 2];
            struct stat a, b;
            snprintf(src, sizeof src, "%s/store/%06lld.dat", part, (long long)files[i]);
            snprintf(dst, sizeof dst, "%s/%06lld.dat", sd, (long long)files[i]);
            /* A part that reads the corpus's own store (its store/ a link to
             * it: a dedup, encode, filter or shard part) keeps those files'
             * numbers; only files the part wrote itself are copied. */
            if (stat(src, &a) == 0 && stat(dst, &b) == 0 && a.st_dev == b.st_dev &&
                a.st_ino == b.st_ino) {
                newf[i] = files[i];
                continue;
            }
            newf[i] = base++;
            snprintf(dst, sizeof dst, "%s/%06lld.dat", sd, (long long)newf[i]);
            if ((rc = copy_file(src, dst, err)) != 0)
                goto out;
            counts->store_files++;
        }
        if ((rc = wp_fsync_dir(sd, err)) != 0)
            goto out;
    }
    /* embedding shards: per model, after the corpus's last */
    if ((rc = cat_merge_emb_shards(pc, emb_collect, &emb, err)) != 0) {
        if (rc == WP_ENOMEM)
            wp_err_set(err, rc, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < emb.n; i++) {
        if (i == 0 || strcmp(emb.v[i].model, emb.v[i - 1].model) != 0) {
            if ((rc = emb_base(c, emb.v[i].model, &base, err)) != 0)
                goto out;
        }
        if (same_emb_shard(dir, part, &emb.v[i])) {
            emb.v[i].new_shard = emb.v[i].old_shard; /* the corpus's own shard */
            continue;
        }
        emb.v[i].new_shard = base++;
        if ((rc = copy_emb_shard(dir, part, &emb.v[i], err)) != 0)
            goto out;
        counts->emb_shards++;
    }
    snprintf(catalog, sizeof catalog, "%s/catalog.db", part);
    cat_merge_in in = {
        .catalog_path = catalog,
        .path = part,
        .fingerprint = fp,
        .store_old = files,
        .store_new = newf,
        .nstore = nfiles,
        .emb = emb.v,
        .nemb = emb.n,
    };
    if ((rc = cat_merge_part(c, &in, &mc, err)) != 0)
        goto out;
    counts->parts++;
    counts->pairs += mc.pairs;
    counts->pairs_new += mc.pairs_new;
    counts->images_new += mc.images_new;
out:
    if (rc != 0 && strstr(err->msg, part) == NULL)
        wp_err_prefix(err, "part %s", part);
    free(files);
    free(newf);
    emb_free(&emb);
    cat_close(pc);
    return rc;
}

int mrg_merge(const char *dir, const char *const *parts, int n, const mrg_opts *o,
              mrg_counts *counts, wp_err *err)
{
    static const mrg_opts defaults = {0};
    cat *c = NULL;
    int rc;

    memset(counts, 0, sizeof *counts);
    if (o == NULL)
        o = &defaults;
    if ((rc = cat_open(dir, CAT_CREATE, &c, err)) != 0)
        return rc;
    for (int i = 0; i < n && rc == 0; i++)
        rc = merge_one(c, dir, parts[i], o, counts, err);
    cat_close(c);
    return rc;
}

/* dir/name as a symbolic link to the absolute path of corpus/name. */
static int link_into(const char *corpus, const char *dir, const char *name, wp_err *err)
{
    char src[WP_PATH_MAX], abs[PATH_MAX], dst[WP_PATH_MAX];
    int rc;
    if ((rc = wp_path_join(src, corpus, name, err)) != 0 ||
        (rc = wp_path_join(dst, dir, name, err)) != 0)
        return rc;
    if (realpath(src, abs) == NULL)
        return wp_err_set(err, WP_EIO, "%s: %s", src, strerror(errno));
    if (symlink(abs, dst) != 0)
        return wp_err_set(err, WP_EIO, "%s: cannot link to %s: %s", dst, abs, strerror(errno));
    return 0;
}

int mrg_part_init(const char *corpus, const char *dir, const char *stage, wp_err *err)
{
    static const char *const readers[] = {"dedup", "encode", "filter", "balance", "shard"};
    char path[WP_PATH_MAX], sub[WP_PATH_MAX];
    int reads = 0, rc;
    cat *c = NULL;

    for (size_t i = 0; i < sizeof readers / sizeof readers[0]; i++)
        reads |= strcmp(stage, readers[i]) == 0;
    if (!reads && strcmp(stage, "fetch") != 0)
        return wp_err_set(err, WP_EINVAL,
                          "%s: a part of '%s' cannot start from a corpus (fetch, dedup, encode, "
                          "filter, balance and shard can; add and crawl parts start empty)",
                          dir, stage);
    if ((rc = wp_path_join(path, dir, "catalog.db", err)) != 0)
        return rc;
    if (wp_file_exists(path))
        return wp_err_set(err, WP_EINVAL, "%s: has a catalog already", dir);
    if ((rc = wp_mkdir_p(dir, err)) != 0)
        return rc;
    if ((rc = cat_open(corpus, CAT_READONLY, &c, err)) != 0)
        return rc;
    rc = cat_backup(c, path, err);
    cat_close(c);
    c = NULL;
    if (rc != 0)
        return rc;
    if (!reads) {
        if ((rc = wp_path_join(sub, dir, "store", err)) != 0 || (rc = wp_mkdir_p(sub, err)) != 0)
            return rc;
    } else {
        if ((rc = link_into(corpus, dir, "store", err)) != 0)
            return rc;
        if ((rc = wp_path_join(sub, corpus, "embeddings", err)) != 0)
            return rc;
        if (strcmp(stage, "encode") != 0 && wp_file_exists(sub) &&
            (rc = link_into(corpus, dir, "embeddings", err)) != 0)
            return rc;
    }
    /* opened once: the lock file, and the schema of this build */
    if ((rc = cat_open(dir, 0, &c, err)) != 0)
        return rc;
    cat_close(c);
    return 0;
}
