/*
 * cli/cmd_export.c: `witpipe export -o FILE [--all] [--format jsonl|tsv]`:
 * the per-sample list of the corpus (shard/shard.h, shard_export). Reads
 * the catalog only, so it runs beside any other stage.
 */
#include "catalog/catalog.h"
#include "cli.h"
#include "shard/shard.h"

#include <string.h>

int cmd_export(cli_ctx *ctx, int argc, char **argv)
{
    enum { O_ALL = 1000, O_KEPT, O_FORMAT };
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'}, {"all", no_argument, NULL, O_ALL},
        {"kept", no_argument, NULL, O_KEPT},      {"format", required_argument, NULL, O_FORMAT},
        {"help", no_argument, NULL, 'h'},         {0, 0, 0, 0}};
    shard_export_opts o = {0};
    shard_export_counts n;
    cat *c = NULL;
    wp_err err = {0};
    int opt, k;

    while ((opt = cli_getopt("export", argc, argv, "o:", longopts)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(cli_find("export"));
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
