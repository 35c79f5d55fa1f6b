/*
 * cli/cmd_core.c: `witpipe init` and `witpipe status`.
 */
#include "catalog/catalog.h"
#include "cli.h"
#include "store/store.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

int cmd_init(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    const char *dir;
    cat *c = NULL;
    st_store *st = NULL;
    wp_err err = {0};
    int o;

    while ((o = cli_getopt("init", argc, argv, "", longopts)) != -1) {
        if (o == 'h') {
            cli_print_usage(cli_find("init"));
            return CLI_OK;
        }
        return CLI_USAGE;
    }
    if (optind + 1 < argc)
        return cli_usage_error("init", "takes one directory");
    dir = optind < argc ? argv[optind] : ctx->corpus;
    if (cat_open(dir, CAT_CREATE, &c, &err) != 0 || st_open(dir, &st, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        cat_close(c);
        return CLI_FAIL;
    }
    cli_info(ctx, "corpus ready: %s (catalog schema %d)", dir, cat_schema_version(c));
    st_close(st);
    cat_close(c);
    return CLI_OK;
}

#define STATUS_SECTION_MAX 64

struct status_acc {
    json_t *root;
    /* A copy: the strings handed to status_print die with the next row. */
    char last_section[STATUS_SECTION_MAX];
};

static void status_print(void *ud, const char *section, const char *key, int64_t count)
{
    struct status_acc *acc = ud;
    if (acc->root != NULL) {
        json_t *sec = json_object_get(acc->root, section);
        if (sec == NULL) {
            sec = json_object();
            json_object_set_new(acc->root, section, sec);
        }
        json_object_set_new(sec, key ? key : "", json_integer(count));
        return;
    }
    if (strcmp(acc->last_section, section) != 0) {
        printf("%s\n", section);
        snprintf(acc->last_section, sizeof acc->last_section, "%s", section);
    }
    printf("  %-40s %12lld\n", key ? key : "", (long long)count);
}

int cmd_status(cli_ctx *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    struct status_acc acc = {0};
    cat *c = NULL;
    wp_err err = {0};
    int o, as_json = 0, rc = CLI_OK;
    while ((o = cli_getopt("status", argc, argv, "", longopts)) != -1) {
        if (o == 'h') {
            cli_print_usage(cli_find("status"));
            return CLI_OK;
        }
        if (o == 'j')
            as_json = 1;
        else
            return CLI_USAGE;
    }
    if (optind < argc)
        return cli_usage_error("status", "unexpected argument '%s'", argv[optind]);
    if (cat_open(ctx->corpus, CAT_READONLY, &c, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        return CLI_FAIL;
    }
    if (as_json)
        acc.root = json_object();
    else
        printf("corpus %s\n", ctx->corpus);
    if (cat_stats(c, status_print, &acc, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
    }
    if (acc.root != NULL) {
        if (rc == CLI_OK) {
            json_dumpf(acc.root, stdout, JSON_INDENT(1) | JSON_SORT_KEYS);
            fputc('\n', stdout);
        }
        json_decref(acc.root);
    }
    cat_close(c);
    return rc;
}
