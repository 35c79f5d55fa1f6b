/*
 * cli/cmd_encode.c: `witpipe encode -C DIR --model MDIR`: the encode stage
 * (encode/encode.h) on a corpus: CLIP embeddings and scores of every
 * stored pair.
 */
#include "catalog/catalog.h"
#include "cli.h"
#include "clip/clip.h"
#include "encode/encode.h"
#include "store/store.h"

#include <stdint.h>

int cmd_encode(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {{"model", required_argument, NULL, 'm'},
                                             {"batch", required_argument, NULL, 'b'},
                                             {"precision", required_argument, NULL, 'p'},
                                             {"name", required_argument, NULL, 'n'},
                                             {"shard-rows", required_argument, NULL, 's'},
                                             {"limit", required_argument, NULL, 'l'},
                                             {"decode-threads", required_argument, NULL, 'd'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0, 0, 0, 0}};
    enc_run_opts o = {0};
    enc_run_counts counts;
    cat *c = NULL;
    st_store *st = NULL;
    wp_err err = {0};
    int64_t v;
    int ch, rc;

    o.batch = 32;
    o.shard_rows = 10000;
    while ((ch = cli_getopt("encode", argc, argv, "", longopts)) != -1) {
        switch (ch) {
        case 'h':
            cli_print_usage(cli_find("encode"));
            return CLI_OK;
        case 'm':
            o.model_dir = optarg;
            break;
        case 'b':
            if (cli_parse_i64("encode", "--batch", optarg, 1, 1024, &v) != 0)
                return CLI_USAGE;
            o.batch = (int)v;
            break;
        case 'p':
            if (cli_parse_precision("encode", optarg, &o.precision) != 0)
                return CLI_USAGE;
            break;
        case 'n':
            o.model_name = optarg;
            break;
        case 's':
            if (cli_parse_i64("encode", "--shard-rows", optarg, 1, 1000000, &v) != 0)
                return CLI_USAGE;
            o.shard_rows = (int)v;
            break;
        case 'l':
            if (cli_parse_i64("encode", "--limit", optarg, 0, INT64_MAX, &v) != 0)
                return CLI_USAGE;
            o.limit = v;
            break;
        case 'd':
            if (cli_parse_i64("encode", "--decode-threads", optarg, 1, 8, &v) != 0)
                return CLI_USAGE;
            o.decode_threads = (int)v;
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error("encode", "unexpected argument '%s'", argv[optind]);
    if (o.model_dir == NULL)
        return cli_usage_error("encode", "needs --model DIR");
    if (cat_open(ctx->corpus, 0, &c, &err) != 0 || st_open(ctx->corpus, &st, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        cat_close(c);
        return CLI_FAIL;
    }
    rc = enc_run(c, st, &o, &ctx->rep, &counts, &err);
    cli_progress_done(ctx);
    if (rc != 0 && rc != WP_ESTOP)
        cli_error(ctx, "encode: %s", err.msg);
    cli_info(ctx,
             "encode: %lld pairs embedded (%lld images, %lld texts) in %lld shards, %lld failed%s",
             (long long)counts.pairs, (long long)counts.images, (long long)counts.texts,
             (long long)counts.shards, (long long)counts.failed,
             rc == WP_ESTOP ? "; stopped, run again to resume" : "");
    st_close(st);
    cat_close(c);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}
