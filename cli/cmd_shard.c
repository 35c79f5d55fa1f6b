/*
 * cli/cmd_shard.c: `witpipe shard`: the corpus as WebDataset tar shards.
 * The option table and the help text sit together here; the stage (its
 * run, defaults and counts) is shard/shard.h.
 */
#include "catalog/catalog.h"
#include "cli.h"
#include "shard/shard.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

enum { O_PER = 1000, O_MAXB, O_SHUF, O_MTIME, O_PARQUET, O_PART };

static const cli_opt shard_opts_table[] = {
    {"output", 'o', required_argument, 'o', "OUTDIR", "where shards go (default DIR/shards)"},
    {"per-shard", 0, required_argument, O_PER, "N", "samples per shard (default 10000)"},
    {"max-bytes", 0, required_argument, O_MAXB, "N",
     "also start a new shard before one would pass N bytes\n"
     "(a single larger sample still gets its own shard)"},
    {"shuffle", 0, required_argument, O_SHUF, "SEED",
     "order samples by a hash of SEED and their uid instead\n"
     "of the order they were added (deterministic)"},
    {"mtime", 0, required_argument, O_MTIME, "T",
     "the mtime of every member, unix seconds (default 0)"},
    {"parquet", 0, no_argument, O_PARQUET, NULL,
     "beside each shard, NNNNN.parquet: img2dataset's per-shard\nmetadata (key, url, caption, "
     "status, error_message, width,\nheight, original_width, original_height, sha256)"},
    {"part", 0, required_argument, O_PART, "I/N",
     "write only part I of N of the shards one run would\n"
     "write (the same names and bytes), into the same -o; a\n"
     "run without --part after the merge writes the manifest"},
    {0, 0, 0, 0, 0, 0},
};

static int cmd_shard(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_shard = {
    .name = "shard",
    .summary = "write WebDataset tar shards of the selected samples",
    .run = cmd_shard,
    .synopsis = "usage: witpipe shard [-C DIR] [-o OUTDIR] [--per-shard N] [--max-bytes N]\n"
                "                     [--shuffle SEED] [--mtime T]\n",
    .about = "Writes the corpus's selected samples (pairs whose image is stored, state ok,\n"
             "and that no stage dropped) as WebDataset shards OUTDIR/00000.tar,\n"
             "00001.tar, ... (use brace notation: {00000..00042}.tar). Each sample is\n"
             "three adjacent members named by its key, the pair uid (32 hex digits, no\n"
             "dots): KEY.jpg (or .png/.webp: the stored bytes unchanged), KEY.txt (the\n"
             "caption, UTF-8) and KEY.json (url, caption, sizes, sha256, source and every\n"
             "decision and score later stages added; schemas/sample.schema.json).\n"
             "\n"
             "Tar members are ustar with fixed owner (0/0, no names), mode 0644 and one\n"
             "mtime, so the same catalog and options give byte-identical shards. Each\n"
             "shard is written as NAME.tmp, synced and renamed: a crash never leaves a\n"
             "shard that looks complete, and running the command again writes only the\n"
             "shards that are missing. OUTDIR also gets manifest.json (per shard: name,\n"
             "samples, bytes, sha256; schemas/manifest.schema.json) and NNNNN_stats.json\n"
             "per shard (the pairs its range covered, by image state, error class and\n"
             "drop reason; schemas/shard_stats.schema.json).\n",
    .opts = shard_opts_table,
};

static int cmd_shard(cli_ctx *ctx, int argc, char **argv)
{
    shard_opts o;
    shard_stats st;
    cat *c = NULL;
    st_store *store = NULL;
    wp_err err = {0};
    int64_t v;
    double t0 = wp_now(), el;
    int opt, rc = CLI_OK, k;

    shard_opts_init(&o);
    memset(&st, 0, sizeof st);
    while ((opt = cli_next_opt(&cli_cmd_shard, argc, argv)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(&cli_cmd_shard);
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
        case O_PARQUET:
            o.parquet = 1;
            break;
        case O_PART:
            if (cli_parse_part("shard", optarg, &o.part) != 0)
                return CLI_USAGE;
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
    if (cat_open(ctx->corpus, 0, &c, &err) != 0 || st_open(ctx->corpus, &store, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
        goto out;
    }
    k = shard_run(c, store, &o, &ctx->rep, &st, &err);
    cli_progress_done(ctx);
    if (k != 0) {
        if (k == WP_ESTOP)
            cli_warn(ctx, "stopped; finished shards are kept, run again to write the rest");
        else
            cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
    }
    el = wp_now() - t0;
    cli_info(ctx,
             "%lld shards (%lld written, %lld already done), %lld samples, %lld bytes; "
             "%lld of %lld pairs excluded; %.2f s, %.1f MB/s written",
             (long long)st.shards, (long long)st.written, (long long)st.skipped,
             (long long)st.samples, (long long)st.bytes, (long long)st.excluded,
             (long long)st.pairs, el, el > 0 ? (double)st.bytes_written / el / 1e6 : 0.0);
out:
    st_close(store);
    cat_close(c);
    return rc;
}
