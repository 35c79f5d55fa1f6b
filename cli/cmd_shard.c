/*
 * cli/cmd_shard.c: `witpipe shard`: the corpus as WebDataset tar shards.
 */
#include "catalog/catalog.h"
#include "cli.h"
#include "shard/shard.h"
#include "store/store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_shard(cli_ctx *ctx, int argc, char **argv)
{
    enum { O_PER = 1000, O_MAXB, O_SHUF, O_MTIME };
    static const struct option longopts[] = {{"output", required_argument, NULL, 'o'},
                                             {"per-shard", required_argument, NULL, O_PER},
                                             {"max-bytes", required_argument, NULL, O_MAXB},
                                             {"shuffle", required_argument, NULL, O_SHUF},
                                             {"mtime", required_argument, NULL, O_MTIME},
                                             {"help", no_argument, NULL, 'h'},
                                             {0, 0, 0, 0}};
    shard_opts o;
    shard_stats st;
    char outdef[WP_PATH_MAX];
    cat *c = NULL;
    st_store *store = NULL;
    wp_err err = {0};
    json_t *params = NULL, *counts = NULL;
    char *pjs = NULL, *cjs = NULL;
    int64_t run_id = 0, v;
    double t0 = wp_now();
    int opt, rc = CLI_OK, k;

    memset(&o, 0, sizeof o);
    memset(&st, 0, sizeof st);
    o.per_shard = SHARD_PER_DEFAULT;
    while ((opt = cli_getopt("shard", argc, argv, "o:", longopts)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(cli_find("shard"));
            return CLI_OK;
        case 'o':
            o.output = optarg;
            break;
        case O_PER:
            if (cli_parse_i64("shard", "--per-shard", optarg, 1, 100000000, &o.per_shard) != 0)
                return CLI_USAGE;
            break;
        case O_MAXB:
            if (cli_parse_i64("shard", "--max-bytes", optarg, 4096, INT64_MAX / 2, &o.max_bytes))
                return CLI_USAGE;
            break;
        case O_SHUF:
            if (cli_parse_i64("shard", "--shuffle", optarg, 0, INT64_MAX, &v) != 0)
                return CLI_USAGE;
            o.shuffle = 1;
            o.seed = (uint64_t)v;
            break;
        case O_MTIME:
            if (cli_parse_i64("shard", "--mtime", optarg, 0, 077777777777LL, &o.mtime) != 0)
                return CLI_USAGE;
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error("shard", "unexpected argument '%s'", argv[optind]);
    if (o.output == NULL) {
        if (wp_path_join(outdef, ctx->corpus, "shards", &err) != 0) {
            cli_error(ctx, "%s", err.msg);
            return CLI_FAIL;
        }
        o.output = outdef;
    }
    if (cat_open(ctx->corpus, 0, &c, &err) != 0 || st_open(ctx->corpus, &store, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
        goto out;
    }
    params = json_object();
    json_object_set_new(params, "output", json_string(o.output));
    json_object_set_new(params, "per_shard", json_integer(o.per_shard));
    json_object_set_new(params, "max_bytes", json_integer(o.max_bytes));
    json_object_set_new(params, "shuffle",
                        o.shuffle ? json_integer((json_int_t)o.seed) : json_null());
    json_object_set_new(params, "mtime", json_integer(o.mtime));
    pjs = json_dumps(params, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (pjs == NULL || cat_run_start(c, "shard", pjs, &run_id, &err) != 0) {
        cli_error(ctx, "%s", pjs ? err.msg : "out of memory");
        rc = CLI_FAIL;
        goto out;
    }
    o.run_id = run_id;
    k = shard_run(c, store, &o, &ctx->rep, &st, &err);
    cli_progress_done(ctx);
    if (k != 0) {
        if (k == WP_ESTOP)
            cli_warn(ctx, "stopped; finished shards are kept, run again to write the rest");
        else
            cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
    }
    {
        double el = wp_now() - t0;
        cli_info(ctx,
                 "%lld shards (%lld written, %lld already done), %lld samples, %lld bytes; "
                 "%lld of %lld pairs excluded; %.2f s, %.1f MB/s written",
                 (long long)st.shards, (long long)st.written, (long long)st.skipped,
                 (long long)st.samples, (long long)st.bytes, (long long)st.excluded,
                 (long long)st.pairs, el, el > 0 ? (double)st.bytes_written / el / 1e6 : 0.0);
    }
    counts = json_object();
    json_object_set_new(counts, "shards", json_integer(st.shards));
    json_object_set_new(counts, "written", json_integer(st.written));
    json_object_set_new(counts, "skipped", json_integer(st.skipped));
    json_object_set_new(counts, "samples", json_integer(st.samples));
    json_object_set_new(counts, "pairs", json_integer(st.pairs));
    json_object_set_new(counts, "excluded", json_integer(st.excluded));
    json_object_set_new(counts, "bytes", json_integer(st.bytes));
    json_object_set_new(counts, "bytes_written", json_integer(st.bytes_written));
    json_object_set_new(counts, "elapsed_s", json_real(wp_now() - t0));
    cjs = json_dumps(counts, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (cli_end_run(ctx, c, run_id, k == WP_ESTOP, k != 0, cjs) != CLI_OK)
        rc = CLI_FAIL;
out:
    st_close(store);
    cat_close(c);
    json_decref(params);
    json_decref(counts);
    free(pjs);
    free(cjs);
    return rc;
}
