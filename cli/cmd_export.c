/*
 * cli/cmd_export.c: `witpipe export -o FILE [--all] [--format jsonl|tsv]`:
 * the per-sample list of the corpus (shard/shard.h, shard_export). Reads
 * the catalog only, so it runs beside any other stage.
 */
#include "catalog/catalog.h"
#include "cli.h"
#include "shard/shard.h"

#include <string.h>

enum { O_ALL = 1000, O_KEPT, O_FORMAT };

static const cli_opt export_opts_table[] = {
    {"output", 'o', required_argument, 'o', "FILE", "where the list goes"},
    {"kept", 0, no_argument, O_KEPT, NULL, "only the pairs shard would ship (default)"},
    {"all", 0, no_argument, O_ALL, NULL, "every pair, with why it was dropped"},
    {"format", 0, required_argument, O_FORMAT, "F", "jsonl (default) or tsv"},
    {0, 0, 0, 0, 0, 0},
};

static int cmd_export(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_export = {
    .name = "export",
    .summary = "the per-sample list: URL, caption, hashes, scores, decisions",
    .run = cmd_export,
    .synopsis = "usage: witpipe export [-C DIR] -o FILE [--kept | --all] [--format jsonl|tsv]\n",
    .about = "Writes one row per pair: the pairs `witpipe shard` would ship (--kept, the\n"
             "default) or every pair (--all), in the order they were added. This is the\n"
             "list a curated dataset publishes instead of its images, and what `witpipe\n"
             "add FILE` reads back (columns url and caption) to rebuild the corpus\n"
             "elsewhere with the same pair uids.\n"
             "\n"
             "jsonl: the shard's KEY.json object without \"key\", plus \"kept\" and\n"
             "\"dropped_by\" (schemas/export_row.schema.json). tsv: a header line, then\n"
             "uid, url, caption, sha256, kept, dropped_by, clip_score (the first model's);\n"
             "tabs and line breaks inside a field become spaces, so use jsonl for an\n"
             "exact round trip. The file is written as FILE.tmp and renamed when whole.\n",
    .opts = export_opts_table,
};

static int cmd_export(cli_ctx *ctx, int argc, char **argv)
{
    shard_export_opts o = {0};
    shard_export_counts n;
    cat *c = NULL;
    wp_err err = {0};
    int opt, k;

    while ((opt = cli_next_opt(&cli_cmd_export, argc, argv)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(&cli_cmd_export);
            return CLI_OK;
        case 'o':
            o.path = optarg;
            break;
        case O_ALL:
            o.all = 1;
            break;
        case O_KEPT:
            o.all = 0;
            break;
        case O_FORMAT:
            if (strcmp(optarg, "jsonl") == 0)
                o.format = SHARD_EXPORT_JSONL;
            else if (strcmp(optarg, "tsv") == 0)
                o.format = SHARD_EXPORT_TSV;
            else
                return cli_usage_error("export", "--format must be jsonl or tsv, not '%s'", optarg);
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error("export", "unexpected argument '%s'", argv[optind]);
    if (o.path == NULL)
        return cli_usage_error("export", "needs -o FILE");
    if (cat_open(ctx->corpus, CAT_READONLY, &c, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        return CLI_FAIL;
    }
    k = shard_export(c, &o, &ctx->rep, &n, &err);
    cli_progress_done(ctx);
    cat_close(c);
    if (k == WP_ESTOP) {
        cli_warn(ctx, "stopped; nothing written, run again");
        return CLI_FAIL;
    }
    if (k != 0) {
        cli_error(ctx, "%s", err.msg);
        return CLI_FAIL;
    }
    cli_info(ctx, "export: %lld rows to %s (%lld of %lld pairs kept)", (long long)n.rows, o.path,
             (long long)n.kept, (long long)n.pairs);
    return CLI_OK;
}
