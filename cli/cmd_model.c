/*
 * cli/cmd_model.c: `witpipe model info DIR` (the architecture as JSON) and
 * `witpipe model pull REPO` (a CLIP model folder from a Hugging Face style
 * hub into the model cache, clip/clip.h's hub client).
 */
#include "cli.h"
#include "clip/clip.h"

#include <stdio.h>
#include <string.h>

static int cmd_model_info(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {{"precision", required_argument, NULL, 'p'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0, 0, 0, 0}};
    clip_open_opts oo = {CLIP_F32};
    clip_model *m = NULL;
    wp_err err = {0};
    wp_buf b = {0};
    int c;

    optind = 1;
    while ((c = cli_getopt("model info", argc, argv, "", longopts)) != -1) {
        if (c == 'h') {
            cli_print_usage(cli_find("model"));
            return CLI_OK;
        }
        if (c == 'p' && cli_parse_precision("model info", optarg, &oo.precision) == 0)
            continue;
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
    static const struct option longopts[] = {{"endpoint", required_argument, NULL, 'e'},
                                             {"cache", required_argument, NULL, 'c'},
                                             {"revision", required_argument, NULL, 'r'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0, 0, 0, 0}};
    clip_hub_opts o = {.rep = &ctx->rep};
    int c;
    while ((c = cli_getopt("model pull", argc, argv, "", longopts)) != -1) {
        switch (c) {
        case 'e':
            o.endpoint = optarg;
            break;
        case 'c':
            o.cache = optarg;
            break;
        case 'r':
            o.revision = optarg;
            break;
        case 'h':
            cli_print_usage(cli_find("model"));
            return CLI_OK;
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
        cli_print_usage(cli_find("model"));
        return CLI_OK;
    }
    if (strcmp(argv[1], "info") == 0)
        return cmd_model_info(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "pull") == 0)
        return cmd_model_pull(ctx, argc - 1, argv + 1);
    return cli_usage_error("model", "unknown subcommand '%s'", argv[1]);
}
