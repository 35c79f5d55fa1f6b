/*
 * cli/cmd_model.c: `witpipe model SUBCOMMAND`: dispatch to the model
 * subcommands (info: cli/cmd_clip.c, pull: cli/cmd_pull.c).
 */
#include "cli.h"

#include <string.h>

int cmd_model_info(cli_ctx *ctx, int argc, char **argv);
int cmd_model_pull(cli_ctx *ctx, int argc, char **argv);

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
