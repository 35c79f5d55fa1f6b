/*
 * cli/cmd_pull.c: `witpipe model pull REPO`: downloads a CLIP model folder
 * from a Hugging Face style hub into the model cache (encode/hub.h), and the
 * `witpipe model` dispatcher (pull here; info where cmd_model_info is linked
 * in).
 */
#include "cli.h"
#include "encode/hub.h"

#include <stdio.h>
#include <string.h>

int cmd_model(cli_ctx *ctx, int argc, char **argv);
int cmd_model_pull(cli_ctx *ctx, int argc, char **argv);
/* `witpipe model info`, defined by the model commands when they are built in. */
int cmd_model_info(cli_ctx *ctx, int argc, char **argv) __attribute__((weak));

int cmd_model_pull(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {{"endpoint", required_argument, NULL, 'e'},
                                             {"cache", required_argument, NULL, 'c'},
                                             {"revision", required_argument, NULL, 'r'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0, 0, 0, 0}};
    enc_hub_opts o = {.rep = &ctx->rep};
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
    enc_hub_result res;
    wp_err err = {0};
    int rc = enc_hub_pull(argv[optind], &o, &res, &err);
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
        return cli_usage_error("model", "needs a subcommand: pull%s",
                               cmd_model_info != NULL ? " or info" : "");
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        cli_print_usage(cli_find("model"));
        return CLI_OK;
    }
    optind = 1;
    if (strcmp(argv[1], "pull") == 0)
        return cmd_model_pull(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "info") == 0 && cmd_model_info != NULL)
        return cmd_model_info(ctx, argc - 1, argv + 1);
    return cli_usage_error("model", "unknown subcommand '%s'", argv[1]);
}
