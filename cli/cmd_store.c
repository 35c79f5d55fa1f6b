/*
 * cli/cmd_store.c: `witpipe store compact`: reclaims the store space that
 * killed runs left behind (store/store.h, st_compact).
 */
#include "catalog/catalog.h"
#include "cli.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

enum { O_JSON = 1000 };

static const cli_opt store_opts_table[] = {
    {"dry-run", 'n', no_argument, 'n', NULL, "say what would be reclaimed, change nothing"},
    {"json", 0, no_argument, O_JSON, NULL, "print the counts as one JSON object on stdout"},
    {0, 0, 0, 0, 0, 0},
};

static int cmd_store(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_store = {
    .name = "store",
    .summary = "the image store: compact (reclaim what killed runs left)",
    .run = cmd_store,
    .synopsis = "usage: witpipe store compact [-C DIR] [--dry-run] [--json]\n",
    .about = "compact: a run killed while fetching or importing leaves bytes in\n"
             "DIR/store that no catalog row points at. compact copies the live images\n"
             "of each store file with such gaps (each checked against its sha256) to a\n"
             "new file, points the catalog at the copies, then removes the old file;\n"
             "a file whose only gap is its end is truncated, files nothing points at\n"
             "are removed whole. It is crash-safe: kill -9 at\n"
             "any moment loses no image, and running it again finishes the job\n"
             "(store/store.h). It holds the corpus lock, so no other stage runs\n"
             "meanwhile. Ctrl-C stops between files.\n",
    .opts = store_opts_table,
    .epilog = "Exit status: 0 done, 1 failed or stopped (what was done stays done).\n",
};

static int cmd_store(cli_ctx *ctx, int argc, char **argv)
{
    st_compact_counts n;
    cat *c = NULL;
    st_store *s = NULL;
    wp_err err = {0};
    int opt, dry = 0, json = 0, rc = CLI_OK, k;

    while ((opt = cli_next_opt(&cli_cmd_store, argc, argv)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(&cli_cmd_store);
            return CLI_OK;
        case 'n':
            dry = 1;
            break;
        case O_JSON:
            json = 1;
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (optind >= argc)
        return cli_usage_error("store", "needs a subcommand: compact");
    if (strcmp(argv[optind], "compact") != 0)
        return cli_usage_error("store", "unknown subcommand '%s' (compact)", argv[optind]);
    if (optind + 1 < argc)
        return cli_usage_error("store", "unexpected argument '%s'", argv[optind + 1]);
    if (cat_open(ctx->corpus, 0, &c, &err) != 0 || st_open(ctx->corpus, &s, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
        goto out;
    }
    k = st_compact(s, c, dry, &ctx->rep, &n, &err);
    cli_progress_done(ctx);
    if (k != 0) {
        if (k == WP_ESTOP)
            cli_warn(ctx, "stopped; the files done are compacted, run again for the rest");
        else
            cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
    }
    if (json) {
        wp_buf b = {0};
        if (st_compact_json(&n, &b) != 0) {
            cli_error(ctx, "out of memory");
            rc = CLI_FAIL;
        } else {
            printf("%s\n", b.data);
        }
        wp_buf_free(&b);
    }
    cli_info(ctx,
             "store compact%s: %lld files removed, %lld rewritten, %lld truncated, %lld images "
             "moved; "
             "%lld of %lld bytes reclaimed (%lld live)",
             dry ? " (dry run)" : "", (long long)n.files_removed, (long long)n.files_rewritten,
             (long long)n.files_truncated, (long long)n.images_moved, (long long)n.bytes_reclaimed,
             (long long)n.bytes_before, (long long)n.bytes_live);
out:
    st_close(s);
    cat_close(c);
    return rc;
}
