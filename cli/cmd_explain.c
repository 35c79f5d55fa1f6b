/*
 * cli/cmd_explain.c: `witpipe explain UID`: everything the catalog knows
 * about one pair (image fetch outcome, every stage's decision and score,
 * CLIP scores, language, the filter rules it failed, tags), so a user can
 * see why it was dropped. Text by default, the catalog's JSON with --json
 * (schemas/filter_explain.schema.json).
 */
#include "catalog/catalog.h"
#include "cli.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

static void print_num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (json_is_integer(v))
        printf("%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        printf("%.6g", json_real_value(v));
    else
        printf("-");
}

/* A string member, printed through cli_put: captions, URLs and origins
 * come from input rows and may hold escape sequences. */
static void put(json_t *o, const char *k)
{
    cli_put(stdout, str(o, k));
}

/* Prints template t with each {KEY} replaced by o's string member KEY
 * (through put) and each {#KEY} by its number member (print_num). */
static void show(json_t *o, const char *t)
{
    while (*t != '\0') {
        const char *open = strchr(t, '{');
        const char *close = open ? strchr(open, '}') : NULL;
        char key[64];
        if (close == NULL) {
            fputs(t, stdout);
            return;
        }
        fwrite(t, 1, (size_t)(open - t), stdout);
        open++;
        snprintf(key, sizeof key, "%.*s", (int)(close - open - (*open == '#')),
                 open + (*open == '#'));
        if (*open == '#')
            print_num(o, key);
        else
            put(o, key);
        t = close + 1;
    }
}

static void print_text(json_t *j)
{
    json_t *im = json_object_get(j, "image"), *a, *it;
    size_t i;
    const char *dropped = NULL;

    show(j, "pair {uid} (id {#pair_id})\n  text:   {text}\n  origin: {origin}\n");
    show(im, "  image:  {url}\n          state {state}");
    if (json_is_string(json_object_get(im, "error_class")))
        show(im, " ({error_class})");
    show(im, ", served {#orig_width}x{#orig_height} {orig_format}, {#orig_bytes} bytes; "
             "stored {#width}x{#height}, {#bytes} bytes\n");
    it = json_object_get(j, "lang");
    if (json_is_object(it))
        show(it, "  language: {lang}, confidence {#conf}\n");
    a = json_object_get(j, "clip_scores");
    json_array_foreach(a, i, it)
    {
        show(it, "  clip score ({model}): {#clip_score}\n");
    }
    a = json_object_get(j, "tags");
    json_array_foreach(a, i, it)
    {
        show(it, "  tag {kind}: {label} (score {#score}, margin {#margin}, {model})\n");
    }
    a = json_object_get(j, "decisions");
    if (json_array_size(a) == 0)
        printf("  decisions: none yet\n");
    json_array_foreach(a, i, it)
    {
        printf("  %-12s %-5s ", str(it, "stage"), str(it, "decision"));
        if (json_is_string(json_object_get(it, "reason")))
            put(it, "reason");
        if (json_is_number(json_object_get(it, "score")))
            show(it, " (score {#score})");
        printf("\n");
        if (dropped == NULL && strcmp(str(it, "decision"), "drop") == 0)
            dropped = str(it, "stage");
    }
    a = json_object_get(j, "filter_rules");
    if (json_array_size(a) > 0) {
        printf("  filter rules that drop it on their own:");
        json_array_foreach(a, i, it)
        {
            printf(" ");
            cli_put(stdout, json_string_value(it));
        }
        printf("\n");
    }
    if (strcmp(str(im, "state"), "ok") != 0) {
        show(im, "  => not in shards: image state {state}\n");
    } else if (dropped != NULL) {
        printf("  => not in shards: dropped by ");
        cli_put(stdout, dropped);
        printf("\n");
    } else {
        printf("  => selected for shards\n");
    }
}

static const cli_opt explain_opts_table[] = {
    {"json", 0, no_argument, 'j', NULL,
     "the record as one JSON object (schemas/filter_explain.schema.json)"},
    {0, 0, 0, 0, 0, 0},
};

int cmd_explain(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_explain = {
    .name = "explain",
    .summary = "every stage's decision and score for one pair",
    .run = cmd_explain,
    .synopsis = "usage: witpipe explain [-C DIR] [--json] UID\n",
    .about = "Shows what the catalog knows about one pair (UID: its 32 hex digits, or a\n"
             "unique prefix of at least 8): caption, image fetch outcome and sizes,\n"
             "every stage's decision, reason and score, CLIP scores, language, the\n"
             "filter rules that would drop it on their own, tags, and whether shard\n"
             "selects it.\n",
    .opts = explain_opts_table,
};

int cmd_explain(cli_ctx *ctx, int argc, char **argv)
{
    int opt, as_json = 0, rc = CLI_OK;
    cat *c = NULL;
    wp_err err = {0};
    wp_buf out = {0};
    json_t *j = NULL;

    while ((opt = cli_next_opt(&cli_cmd_explain, argc, argv)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(&cli_cmd_explain);
            return CLI_OK;
        case 'j':
            as_json = 1;
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("explain", "give one pair uid");
    if (cat_open(ctx->corpus, CAT_READONLY, &c, &err) != 0 ||
        cat_pair_explain(c, argv[optind], &out, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
        goto out;
    }
    if (as_json) {
        printf("%s\n", out.data);
        goto out;
    }
    j = json_loads(out.data, 0, NULL);
    if (j == NULL) {
        cli_error(ctx, "explain: the catalog's JSON did not parse");
        rc = CLI_FAIL;
        goto out;
    }
    print_text(j);
out:
    json_decref(j);
    wp_buf_free(&out);
    cat_close(c);
    return rc;
}
