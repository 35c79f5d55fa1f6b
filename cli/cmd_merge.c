/*
 * cli/cmd_merge.c: `witpipe merge -C DIR PART_DIR...`: folds part corpora
 * (their catalogs, store files and embedding shards) into DIR's corpus,
 * by content keys, refusing a part merged before (merge/merge.h).
 */
#include "catalog/catalog.h"
#include "cli.h"
#include "merge/merge.h"

#include <string.h>

enum { O_PARTIAL = 1000, O_SKIP };

static const cli_opt merge_opts_table[] = {
    {"partial", 0, no_argument, O_PARTIAL, NULL, "also merge parts whose runs did not all finish"},
    {"skip-merged", 0, no_argument, O_SKIP, NULL, "skip a part merged before instead of stopping"},
    {0, 0, 0, 0, 0, 0},
};

static int cmd_merge(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_merge = {
    .name = "merge",
    .summary = "fold part corpora (--part I/N runs) into this corpus",
    .run = cmd_merge,
    .synopsis = "usage: witpipe merge [-C DIR] [--partial] [--skip-merged] PART_DIR...\n",
    .about = "Merges each PART_DIR's corpus into DIR's (created if missing), in the order\n"
             "given, one transaction per part (docs/scale-out.md): pairs by uid, images\n"
             "by URL (a fetched result wins over an error, an error over pending),\n"
             "sources, pair sightings, decisions, embeddings, languages, tags, pages,\n"
             "robots and shards by their keys; runs are copied with the part they came\n"
             "from. Store files and embedding shards are copied in under new numbers.\n"
             "\n"
             "Each part is recorded by a fingerprint of its content (its runs and the\n"
             "extent of its pairs), wherever it lies: merging a part again is refused\n"
             "and changes nothing (--skip-merged: skipped). A part whose runs did not\n"
             "all finish is refused unless --partial. A merge that is killed leaves the\n"
             "corpus as it was before that part; run it again.\n",
    .opts = merge_opts_table,
    .epilog = "Exit status: 0 when every part was merged (or skipped), 1 at the first\n"
              "part that could not be (the parts before it stay merged).\n",
};

static int cmd_merge(cli_ctx *ctx, int argc, char **argv)
{
    mrg_opts o = {0};
    mrg_counts n;
    wp_err err = {0};
    int opt, k;

    while ((opt = cli_next_opt(&cli_cmd_merge, argc, argv)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(&cli_cmd_merge);
            return CLI_OK;
        case O_PARTIAL:
            o.partial = 1;
            break;
        case O_SKIP:
            o.skip_merged = 1;
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (optind >= argc)
        return cli_usage_error("merge", "needs at least one PART_DIR");
    k = mrg_merge(ctx->corpus, (const char *const *)argv + optind, argc - optind, &o, &n, &err);
    if (k != 0) {
        cli_error(ctx, "%s", err.msg);
        return CLI_FAIL;
    }
    cli_info(ctx,
             "merge: %lld part(s) merged, %lld skipped: %lld pairs (%lld new), %lld new images, "
             "%lld store files, %lld embedding shards",
             (long long)n.parts, (long long)n.skipped, (long long)n.pairs, (long long)n.pairs_new,
             (long long)n.images_new, (long long)n.store_files, (long long)n.emb_shards);
    return CLI_OK;
}
