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

enum { O_BATCH = 1000, O_PREC, O_NAME, O_ROWS, O_LIMIT, O_DECODE, O_PART };

static const cli_opt encode_opts_table[] = {
    {"model", 0, required_argument, 'm', "MDIR",
     "model folder: Hugging Face (config.json +\nmodel.safetensors) or OpenAI/open_clip\n"
     "(open_clip_config.json + open_clip_model.safetensors)"},
    {"batch", 0, required_argument, O_BATCH, "N", "pairs per forward pass (default 32, max 1024)"},
    {"precision", 0, required_argument, O_PREC, "P",
     "f32 (default) or bf16: a ViT image tower's weights\nand activations in bfloat16 "
     "(AVX512_BF16 dot\nproducts where the CPU has them); text towers and\nModifiedResNets "
     "stay f32 (bf16 moved their CLIP\nscores by more than 0.005)"},
    {"name", 0, required_argument, O_NAME, "NAME",
     "folder under DIR/embeddings and the catalog's model\nkey (default: the model folder's "
     "name, or its\nparent's when it is called 'model')"},
    {"shard-rows", 0, required_argument, O_ROWS, "N", "rows per .npy shard (default 10000)"},
    {"limit", 0, required_argument, O_LIMIT, "N", "embed at most N pairs this run (default: all)"},
    {"part", 0, required_argument, O_PART, "I/N", "only the pairs whose uid is in part I of N"},
    {"decode-threads", 0, required_argument, O_DECODE, "N",
     "threads reading and preprocessing the next batch's\nimages while the model runs "
     "(default: one per 4\ncores, at least 1, at most 8)"},
    {0, 0, 0, 0, 0, 0},
};

static int cmd_encode(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_encode = {
    .name = "encode",
    .summary = "CLIP embeddings of every stored pair (float16 .npy shards)",
    .run = cmd_encode,
    .uses_openmp = 1,
    .synopsis = "usage: witpipe encode [-C DIR] --model MDIR [--batch N] [--precision f32|bf16]\n"
                "                      [--name NAME] [--shard-rows N] [--limit N]\n"
                "                      [--decode-threads N]\n",
    .about = "Embeds every pair whose image is stored ok with the built-in CLIP: image\n"
             "and caption embeddings (float16, as the model returns them) go to\n"
             "DIR/embeddings/NAME/img_emb/img_emb_N.npy and text_emb/text_emb_N.npy,\n"
             "row r of shard N described by line r of metadata/metadata_N.jsonl\n"
             "(pair id, uid, clip_score; clip-retrieval's layout, emb/emb.h); the\n"
             "catalog's embeddings table records each pair's shard, row and clip_score\n"
             "(image-text cosine). Resumable: pairs already embedded for NAME are\n"
             "skipped; a stopped run loses at most its unfinished shard. Images that\n"
             "cannot be decoded get an encode:NAME drop decision and are not retried.\n",
    .opts = encode_opts_table,
};

static int cmd_encode(cli_ctx *ctx, int argc, char **argv)
{
    enc_run_opts o;
    enc_run_counts counts;
    cat *c = NULL;
    st_store *st = NULL;
    wp_err err = {0};
    int64_t v;
    int ch, rc;

    enc_run_opts_init(&o);
    while ((ch = cli_next_opt(&cli_cmd_encode, argc, argv)) != -1) {
        switch (ch) {
        case 'h':
            cli_print_usage(&cli_cmd_encode);
            return CLI_OK;
        case 'm':
            o.model_dir = optarg;
            break;
        case O_BATCH:
            if (cli_parse_i64("encode", "--batch", optarg, 1, 1024, &v) != 0)
                return CLI_USAGE;
            o.batch = (int)v;
            break;
        case O_PREC:
            if (cli_parse_precision("encode", optarg, &o.precision) != 0)
                return CLI_USAGE;
            break;
        case O_NAME:
            o.model_name = optarg;
            break;
        case O_ROWS:
            if (cli_parse_i64("encode", "--shard-rows", optarg, 1, 1000000, &v) != 0)
                return CLI_USAGE;
            o.shard_rows = (int)v;
            break;
        case O_PART:
            if (cli_parse_part("encode", optarg, &o.part) != 0)
                return CLI_USAGE;
            break;
        case O_LIMIT:
            if (cli_parse_i64("encode", "--limit", optarg, 0, INT64_MAX, &v) != 0)
                return CLI_USAGE;
            o.limit = v;
            break;
        case O_DECODE:
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
