/*
 * cli/cmd_model.c: `witpipe model info DIR` (the architecture as JSON) and
 * `witpipe model pull REPO` (a CLIP model folder from a Hugging Face style
 * hub into the model cache, clip/clip.h's hub client).
 */
#include "cli.h"
#include "clip/clip.h"

#include <stdio.h>
#include <string.h>

enum { O_PREC = 1000, O_ENDPOINT, O_CACHE, O_REVISION };

static const cli_opt model_opts_table[] = {
    {NULL, 0, 0, 0, NULL, "pull:"},
    {"endpoint", 0, required_argument, O_ENDPOINT, "URL",
     "the hub (default: $HF_ENDPOINT, else https://huggingface.co)"},
    {"cache", 0, required_argument, O_CACHE, "DIR",
     "the cache root; the model goes to DIR/org/name (default:\n$HF_HOME/witpipe/models, else "
     "~/.cache/witpipe/models)"},
    {"revision", 0, required_argument, O_REVISION, "REV",
     "branch, tag or commit (default: main; the folder then\ngets an @REV suffix)"},
    {NULL, 0, 0, 0, NULL, "info:"},
    {"precision", 0, required_argument, O_PREC, "P", "f32 (default) or bf16: load as encode would"},
    {0, 0, 0, 0, 0, 0},
};

int cmd_model(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_model = {
    .name = "model",
    .summary = "download a CLIP model folder (pull), inspect one (info)",
    .run = cmd_model,
    .synopsis = "usage: witpipe model pull REPO [--endpoint URL] [--cache DIR] [--revision REV]\n"
                "       witpipe model info [--precision f32|bf16] MDIR\n",
    .about = "pull: downloads the files a CLIP needs from a Hugging Face style hub:\n"
             "config.json + model.safetensors (or open_clip_config.json +\n"
             "open_clip_model.safetensors), the tokenizer files (vocab.json, merges.txt,\n"
             "tokenizer*.json, bpe_simple_vocab_16e6.txt.gz) and preprocessor_config.json,\n"
             "whichever the repository has. Downloads resume where an interrupted one\n"
             "stopped (FILE.part) and are checked against the size and SHA-256 the hub\n"
             "announces before they are put in place (a file with neither is refused);\n"
             "files already there are kept. Redirects may lead only to public addresses\n"
             "(or the endpoint's own). Prints the model folder on stdout. A token in\n"
             "$HF_TOKEN is sent to the hub (never to the CDN it redirects to).\n"
             "\n"
             "info: loads MDIR and prints its architecture as one JSON object: layout\n"
             "(huggingface | openai), vision tower (vit | modified_resnet: width,\n"
             "layers, heads, patch, image size, activation), text tower (width,\n"
             "layers, heads, context length, vocabulary, activation, EOT rule), embed\n"
             "dim, normalisation mean/std, stored dtype, parameter count, logit scale.\n",
    .opts = model_opts_table,
};

static int cmd_model_info(cli_ctx *ctx, int argc, char **argv)
{
    clip_open_opts oo = {CLIP_F32};
    clip_model *m = NULL;
    wp_err err = {0};
    wp_buf b = {0};
    int c;

    optind = 1;
    while ((c = cli_next_opt(&cli_cmd_model, argc, argv)) != -1) {
        if (c == 'h') {
            cli_print_usage(&cli_cmd_model);
            return CLI_OK;
        }
        if (c == O_PREC && cli_parse_precision("model info", optarg, &oo.precision) == 0)
            continue;
        if (c == O_ENDPOINT || c == O_CACHE || c == O_REVISION)
            return cli_usage_error("model info", "--%s is an option of model pull",
                                   argv[optind - 1] + 2);
        return CLI_USAGE;
    }
    if (optind + 1 != argc)
        return cli_usage_error("model info", "takes one model directory");
    if (clip_model_open(argv[optind], &oo, &m, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        return CLI_FAIL;
    }
    if (clip_model_info_json(m, &b) != 0) {
        cli_error(ctx, "out of memory");
        clip_model_free(m);
        return CLI_FAIL;
    }
    puts(b.data);
    wp_buf_free(&b);
    clip_model_free(m);
    return CLI_OK;
}

static int cmd_model_pull(cli_ctx *ctx, int argc, char **argv)
{
    clip_hub_opts o = {.rep = &ctx->rep};
    int c;
    optind = 1;
    while ((c = cli_next_opt(&cli_cmd_model, argc, argv)) != -1) {
        switch (c) {
        case O_ENDPOINT:
            o.endpoint = optarg;
            break;
        case O_CACHE:
            o.cache = optarg;
            break;
        case O_REVISION:
            o.revision = optarg;
            break;
        case 'h':
            cli_print_usage(&cli_cmd_model);
            return CLI_OK;
        case O_PREC:
            return cli_usage_error("model pull", "--precision is an option of model info");
        default:
            return CLI_USAGE;
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("model pull", "takes one repository (org/name)");
    clip_hub_result res;
    wp_err err = {0};
    int rc = clip_hub_pull(argv[optind], &o, &res, &err);
    cli_progress_done(ctx);
    if (rc != 0) {
        cli_error(ctx, "%s", err.msg);
        return CLI_FAIL;
    }
    cli_info(ctx, "model %s: %d files downloaded (%lld bytes), %d already there", argv[optind],
             res.fetched, (long long)res.bytes, res.kept);
    printf("%s\n", res.dir);
    return CLI_OK;
}

int cmd_model(cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("model", "needs a subcommand: pull or info");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cli_print_usage(&cli_cmd_model);
        return CLI_OK;
    }
    if (strcmp(argv[1], "info") == 0)
        return cmd_model_info(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "pull") == 0)
        return cmd_model_pull(ctx, argc - 1, argv + 1);
    return cli_usage_error("model", "unknown subcommand '%s'", argv[1]);
}
