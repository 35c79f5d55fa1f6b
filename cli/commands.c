/*
 * cli/commands.c: the command table `witpipe --help` lists, in pipeline
 * order. Each command defines its cli_cmd (option table and help text)
 * beside its parser in cli/cmd_X.c.
 */
#include "cli.h"

#include <stddef.h>

const cli_cmd *const cli_commands[] = {
    &cli_cmd_init,  &cli_cmd_status, &cli_cmd_add,     &cli_cmd_crawl,   &cli_cmd_fetch,
    &cli_cmd_dedup, &cli_cmd_encode, &cli_cmd_filter,  &cli_cmd_queries, &cli_cmd_balance,
    &cli_cmd_shard, &cli_cmd_store,  &cli_cmd_audit,   &cli_cmd_export,  &cli_cmd_run,
    &cli_cmd_merge, &cli_cmd_slurm,  &cli_cmd_explain, &cli_cmd_clip,    &cli_cmd_model,
    NULL,
};
