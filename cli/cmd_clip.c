/*
 * cli/cmd_clip.c: `witpipe clip embed-image | embed-text | zeroshot`: the
 * built-in CLIP (clip/clip.h) on files and strings, JSON on stdout.
 */
#include "cli.h"
#include "clip/clip.h"
#include "image/image.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIP_FILE_MAX   ((size_t)64 << 20) /* largest image / label file read */
#define CLIP_LABELS_MAX 100000             /* labels or templates per file */
#define CLIP_TOP_MAX    1000               /* labels printed per image */
#define CLIP_BATCH      16                 /* images per forward pass */

static int print_json(json_t *j)
{
    char *s = wp_json_tree_text(j, WP_JSON_PREC(8));
    if (s == NULL)
        return CLI_FAIL;
    puts(s);
    free(s);
    return CLI_OK;
}

static json_t *vec_json(const float *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; a != NULL && i < n; i++)
        json_array_append_new(a, json_real(v[i]));
    return a;
}

/* Lines of a file (trailing CR/LF and blank lines dropped), in one
 * malloc'ed block: *lines points into *blob; both freed by the caller. */
static int read_lines(cli_ctx *ctx, const char *path, char **blob, char ***lines, int *n)
{
    wp_buf b = {0};
    wp_err err = {0};
    *blob = NULL;
    *lines = NULL;
    *n = 0;
    if (wp_read_file(path, CLIP_FILE_MAX, &b, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        return CLI_FAIL;
    }
    char **ls = malloc(CLIP_LABELS_MAX * sizeof *ls);
    if (ls == NULL) {
        wp_buf_free(&b);
        cli_error(ctx, "out of memory");
        return CLI_FAIL;
    }
    int k = 0;
    char *save = NULL;
    for (char *line = strtok_r(b.data, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        size_t len = strlen(line);
        while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
            line[--len] = '\0';
        if (len == 0)
            continue;
        if (k == CLIP_LABELS_MAX) {
            cli_error(ctx, "%s: more than %d lines", path, CLIP_LABELS_MAX);
            free(ls);
            wp_buf_free(&b);
            return CLI_FAIL;
        }
        ls[k++] = line;
    }
    if (k == 0) {
        cli_error(ctx, "%s: no lines", path);
        free(ls);
        wp_buf_free(&b);
        return CLI_FAIL;
    }
    *blob = wp_buf_steal(&b);
    *lines = ls;
    *n = k;
    return CLI_OK;
}

/* Embeds image files into out (n x E), CLIP_BATCH at a time; failed files
 * get ok[i] = 0 and a printed error. Returns the number that failed. */
static int embed_files(cli_ctx *ctx, const clip_model *m, clip_ws *ws, char **files, int n,
                       float *out, int *ok)
{
    int S = clip_model_arch(m)->image_size, E = clip_model_arch(m)->embed_dim, failed = 0;
    size_t px = (size_t)3 * S * S;
    uint8_t *rgb = malloc(px);
    float *pix = malloc(CLIP_BATCH * px * sizeof *pix);
    float *emb = malloc((size_t)CLIP_BATCH * E * sizeof *emb);
    int idx[CLIP_BATCH];
    wp_buf b = {0};

    for (int i = 0; i < n; i++)
        ok[i] = 0;
    if (rgb == NULL || pix == NULL || emb == NULL) {
        free(rgb);
        free(pix);
        free(emb);
        cli_error(ctx, "out of memory");
        return n;
    }
    for (int i0 = 0; i0 < n; i0 += CLIP_BATCH) {
        int k = 0;
        wp_err err = {0};
        for (int i = i0; i < n && i < i0 + CLIP_BATCH; i++) {
            if (wp_read_file(files[i], CLIP_FILE_MAX, &b, &err) != 0) {
                cli_error(ctx, "%s", err.msg);
                failed++;
                continue;
            }
            if (img_clip_preprocess(b.data, b.len, S, rgb, &err) != 0) {
                cli_error(ctx, "%s: %s", files[i], err.msg);
                failed++;
                continue;
            }
            clip_normalize_rgb(m, rgb, pix + (size_t)k * px);
            idx[k++] = i;
        }
        if (k == 0)
            continue;
        if (clip_encode_images(m, ws, pix, k, emb, &err) != 0) {
            cli_error(ctx, "%s", err.msg);
            failed += k;
            continue;
        }
        for (int j = 0; j < k; j++) {
            memcpy(out + (size_t)idx[j] * E, emb + (size_t)j * E, (size_t)E * sizeof *emb);
            ok[idx[j]] = 1;
        }
    }
    wp_buf_free(&b);
    free(rgb);
    free(pix);
    free(emb);
    return failed;
}

typedef struct clip_cmd_opts {
    const char *model_dir;
    const char *labels;
    const char *templates;
    int precision;
    int normalize;
    int top;
} clip_cmd_opts;

static int cmd_embed_image(cli_ctx *ctx, const clip_model *m, clip_ws *ws, const clip_cmd_opts *o,
                           char **files, int n)
{
    int E = clip_model_arch(m)->embed_dim, failed;
    float *out = calloc((size_t)n * E, sizeof *out);
    int *ok = calloc((size_t)n, sizeof *ok);
    json_t *root = json_object(), *arr = json_array();

    if (out == NULL || ok == NULL || root == NULL || arr == NULL) {
        free(out);
        free(ok);
        json_decref(root);
        json_decref(arr);
        cli_error(ctx, "out of memory");
        return CLI_FAIL;
    }
    failed = embed_files(ctx, m, ws, files, n, out, ok);
    for (int i = 0; i < n; i++) {
        json_t *it = json_object();
        json_object_set_new(it, "file", json_string(files[i]));
        if (ok[i]) {
            if (o->normalize)
                clip_l2_normalize(out + (size_t)i * E, E);
            json_object_set_new(it, "embedding", vec_json(out + (size_t)i * E, E));
        } else {
            json_object_set_new(it, "error", json_true());
        }
        json_array_append_new(arr, it);
    }
    json_object_set_new(root, "model", json_string(o->model_dir));
    json_object_set_new(root, "embed_dim", json_integer(E));
    json_object_set_new(root, "normalized", json_boolean(o->normalize));
    json_object_set_new(root, "images", arr);
    print_json(root);
    json_decref(root);
    free(out);
    free(ok);
    return failed ? CLI_FAIL : CLI_OK;
}

static int cmd_embed_text(cli_ctx *ctx, const clip_model *m, clip_ws *ws, clip_tok *tok,
                          const clip_cmd_opts *o, char **texts, int n)
{
    int E = clip_model_arch(m)->embed_dim;
    float *out = calloc((size_t)n * E, sizeof *out);
    wp_err err = {0};
    json_t *root, *arr;

    if (out == NULL) {
        cli_error(ctx, "out of memory");
        return CLI_FAIL;
    }
    if (clip_embed_strings(m, ws, tok, (const char *const *)texts, n, out, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        free(out);
        return CLI_FAIL;
    }
    root = json_object();
    arr = json_array();
    for (int i = 0; i < n; i++) {
        json_t *it = json_object();
        if (o->normalize)
            clip_l2_normalize(out + (size_t)i * E, E);
        json_object_set_new(it, "text", json_string(texts[i]));
        json_object_set_new(it, "embedding", vec_json(out + (size_t)i * E, E));
        json_array_append_new(arr, it);
    }
    json_object_set_new(root, "model", json_string(o->model_dir));
    json_object_set_new(root, "embed_dim", json_integer(E));
    json_object_set_new(root, "normalized", json_boolean(o->normalize));
    json_object_set_new(root, "texts", arr);
    print_json(root);
    json_decref(root);
    free(out);
    return CLI_OK;
}

static int cmd_zeroshot(cli_ctx *ctx, const clip_model *m, clip_ws *ws, clip_tok *tok,
                        const clip_cmd_opts *o, char **files, int n)
{
    int E = clip_model_arch(m)->embed_dim, nl = 0, nt = CLIP_IMAGENET_TEMPLATES, rc = CLI_FAIL;
    char *lblob = NULL, *tblob = NULL, **labels = NULL, **tmpl = NULL;
    float *cls = NULL, *img = NULL, *logit = NULL;
    int *ok = NULL, *order = NULL;
    wp_err err = {0};
    json_t *root = NULL, *arr;

    if (read_lines(ctx, o->labels, &lblob, &labels, &nl) != CLI_OK)
        goto out;
    if (o->templates != NULL && read_lines(ctx, o->templates, &tblob, &tmpl, &nt) != CLI_OK)
        goto out;
    cls = malloc((size_t)nl * E * sizeof *cls);
    img = calloc((size_t)n * E, sizeof *img);
    logit = malloc((size_t)nl * sizeof *logit);
    ok = calloc((size_t)n, sizeof *ok);
    order = malloc((size_t)nl * sizeof *order);
    if (!cls || !img || !logit || !ok || !order) {
        cli_error(ctx, "out of memory");
        goto out;
    }
    if (clip_zeroshot_classifier(m, ws, tok, (const char *const *)labels, nl,
                                 tmpl ? (const char *const *)tmpl : clip_imagenet_templates, nt,
                                 cls, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        goto out;
    }
    int failed = embed_files(ctx, m, ws, files, n, img, ok);
    float scale = clip_model_logit_scale(m);
    root = json_object();
    arr = json_array();
    for (int i = 0; i < n; i++) {
        json_t *it = json_object(), *top = json_array();
        json_object_set_new(it, "file", json_string(files[i]));
        if (!ok[i]) {
            json_object_set_new(it, "error", json_true());
            json_decref(top);
            json_array_append_new(arr, it);
            continue;
        }
        float *v = img + (size_t)i * E;
        clip_l2_normalize(v, E);
        double mx = -1e30, sum = 0;
        for (int l = 0; l < nl; l++) {
            float s = 0;
            for (int j = 0; j < E; j++)
                s += v[j] * cls[(size_t)l * E + j];
            logit[l] = s;
            if (scale * s > mx)
                mx = scale * s;
            order[l] = l;
        }
        for (int l = 0; l < nl; l++)
            sum += exp(scale * logit[l] - mx);
        int k = o->top < nl ? o->top : nl;
        /* partial selection sort: k is small */
        for (int a = 0; a < k; a++) {
            int best = a;
            for (int b = a + 1; b < nl; b++)
                if (logit[order[b]] > logit[order[best]])
                    best = b;
            int t = order[a];
            order[a] = order[best];
            order[best] = t;
            json_t *e = json_object();
            json_object_set_new(e, "label", json_string(labels[order[a]]));
            json_object_set_new(e, "prob", json_real(exp(scale * logit[order[a]] - mx) / sum));
            json_object_set_new(e, "cosine", json_real(logit[order[a]]));
            json_array_append_new(top, e);
        }
        json_object_set_new(it, "top", top);
        json_array_append_new(arr, it);
    }
    json_object_set_new(root, "model", json_string(o->model_dir));
    json_object_set_new(root, "labels", json_integer(nl));
    json_object_set_new(root, "templates", json_integer(nt));
    json_object_set_new(root, "logit_scale", json_real(scale));
    json_object_set_new(root, "images", arr);
    print_json(root);
    rc = failed ? CLI_FAIL : CLI_OK;
out:
    json_decref(root);
    free(lblob);
    free(tblob);
    free(labels);
    free(tmpl);
    free(cls);
    free(img);
    free(logit);
    free(ok);
    free(order);
    return rc;
}

enum { O_PREC = 1000, O_NORM, O_LABELS, O_TEMPLATES, O_TOP };

static const cli_opt clip_opts_table[] = {
    {"model", 0, required_argument, 'm', "MDIR", "model folder (see witpipe help encode)"},
    {"normalize", 0, no_argument, O_NORM, NULL, "L2-normalise the printed embeddings"},
    {"precision", 0, required_argument, O_PREC, "P",
     "f32 (default) or bf16 (see witpipe help encode)"},
    {"labels", 0, required_argument, O_LABELS, "FILE", "zeroshot: class names, one per line"},
    {"templates", 0, required_argument, O_TEMPLATES, "FILE",
     "zeroshot: prompt templates, one per line"},
    {"top", 0, required_argument, O_TOP, "K", "zeroshot: labels printed per image (default 5)"},
    {0, 0, 0, 0, 0, 0},
};

int cmd_clip(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_clip = {
    .name = "clip",
    .summary = "embed images or texts, zero-shot classify (JSON)",
    .run = cmd_clip,
    .uses_openmp = 1,
    .synopsis =
        "usage: witpipe clip embed-image --model MDIR [--normalize] [--precision P] FILE...\n"
        "       witpipe clip embed-text  --model MDIR [--normalize] TEXT...\n"
        "       witpipe clip zeroshot    --model MDIR --labels FILE [--templates FILE]\n"
        "                                [--top K] [--precision P] IMAGE...\n",
    .about = "Runs the built-in CLIP and prints one JSON object on stdout.\n"
             "embed-image: CLIP preprocessing (shorter side to the model's size with\n"
             "PIL's bicubic, centre crop) and the image tower; {\"images\": [{\"file\",\n"
             "\"embedding\"}]}. embed-text: the tokenizer (cut to 77 tokens) and the text\n"
             "tower; {\"texts\": [{\"text\", \"embedding\"}]}. Embeddings are the\n"
             "projected features, un-normalised unless --normalize.\n"
             "zeroshot: every label (one per line of --labels) is put in each prompt\n"
             "template (default: the CLIP paper's 80 ImageNet templates; --templates\n"
             "FILE gives one per line, '{}' marks the label), each prompt embedded and\n"
             "normalised, averaged per label and renormalised; each image gets its top\n"
             "K labels with softmax(logit_scale * cosine) probabilities.\n",
    .opts = clip_opts_table,
    .epilog = "Exit status 1 if any file could not be read or decoded.\n",
};

int cmd_clip(cli_ctx *ctx, int argc, char **argv)
{
    clip_cmd_opts o = {NULL, NULL, NULL, CLIP_F32, 0, 5};
    clip_model *m = NULL;
    clip_tok *tok = NULL;
    clip_ws *ws = NULL;
    clip_open_opts oo;
    wp_err err = {0};
    const char *sub;
    int c, rc = CLI_FAIL;
    int64_t v;

    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            cli_print_usage(&cli_cmd_clip);
            return CLI_OK;
        }
        return cli_usage_error("clip", "needs a subcommand: embed-image, embed-text, zeroshot");
    }
    sub = argv[1];
    if (strcmp(sub, "embed-image") != 0 && strcmp(sub, "embed-text") != 0 &&
        strcmp(sub, "zeroshot") != 0)
        return cli_usage_error("clip", "unknown subcommand '%s'", sub);
    argc--;
    argv++;
    optind = 1;
    while ((c = cli_next_opt(&cli_cmd_clip, argc, argv)) != -1) {
        switch (c) {
        case 'h':
            cli_print_usage(&cli_cmd_clip);
            return CLI_OK;
        case 'm':
            o.model_dir = optarg;
            break;
        case O_PREC:
            if (cli_parse_precision("clip", optarg, &o.precision) != 0)
                return CLI_USAGE;
            break;
        case O_NORM:
            o.normalize = 1;
            break;
        case O_LABELS:
            o.labels = optarg;
            break;
        case O_TEMPLATES:
            o.templates = optarg;
            break;
        case O_TOP:
            if (cli_parse_i64("clip", "--top", optarg, 1, CLIP_TOP_MAX, &v) != 0)
                return CLI_USAGE;
            o.top = (int)v;
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (o.model_dir == NULL)
        return cli_usage_error("clip", "%s needs --model DIR", sub);
    if (optind >= argc)
        return cli_usage_error("clip", "%s needs at least one %s", sub,
                               strcmp(sub, "embed-text") == 0 ? "TEXT" : "IMAGE");
    if (strcmp(sub, "zeroshot") == 0 && o.labels == NULL)
        return cli_usage_error("clip", "zeroshot needs --labels FILE");
    oo.precision = o.precision;
    if (clip_model_open(o.model_dir, &oo, &m, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        return CLI_FAIL;
    }
    if (strcmp(sub, "embed-image") != 0 && clip_tok_open_dir(o.model_dir, &tok, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        goto out;
    }
    if ((ws = clip_ws_new()) == NULL) {
        cli_error(ctx, "out of memory");
        goto out;
    }
    if (strcmp(sub, "embed-image") == 0)
        rc = cmd_embed_image(ctx, m, ws, &o, argv + optind, argc - optind);
    else if (strcmp(sub, "embed-text") == 0)
        rc = cmd_embed_text(ctx, m, ws, tok, &o, argv + optind, argc - optind);
    else
        rc = cmd_zeroshot(ctx, m, ws, tok, &o, argv + optind, argc - optind);
out:
    clip_ws_free(ws);
    clip_tok_free(tok);
    clip_model_free(m);
    return rc;
}
