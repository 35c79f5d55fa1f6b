/*
 * cli/cmd_pull.c: `witpipe model pull REPO`: downloads a CLIP model folder
 * from a Hugging Face style hub into the model cache (clip/hub.h).
 * cli/cmd_model.c dispatches to it.
 */
#include "cli.h"
#include "clip/clip.h"

#include <stdio.h>
#include <string.h>

int cmd_model_pull(cli_ctx *ctx, int argc, char **argv);

int cmd_model_pull(cli_ctx *ctx, int argc, char **argv)
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
