/*
 * cli/opts.c: commands' option tables: getopt_long's table and the help
 * text are both made from a command's cli_opt table, so what `witpipe help
 * CMD` lists and what the parser accepts cannot drift apart.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#define HELP_COLUMN_MAX 28 /* help text starts here at most; longer names wrap */

const cli_cmd *cli_find(const char *name)
{
    for (const cli_cmd *const *c = cli_commands; *c != NULL; c++)
        if (strcmp((*c)->name, name) == 0)
            return *c;
    return NULL;
}

int cli_next_opt(const cli_cmd *cmd, int argc, char **argv)
{
    /* Built once per command: a process parses one command's options. */
    static const cli_cmd *built_for;
    static struct option longopts[CLI_OPTS_MAX + 2];
    static char shortopts[2 * CLI_OPTS_MAX + 1];

    if (built_for != cmd) {
        int n = 0;
        size_t k = 0;
        for (const cli_opt *o = cmd->opts; o != NULL && (o->name || o->help); o++) {
            if (o->name == NULL)
                continue;
            if (n == CLI_OPTS_MAX) /* a table this long is a bug; test_cli checks */
                break;
            longopts[n++] = (struct option){o->name, o->has_arg, NULL, o->val};
            if (o->short_name != 0) {
                shortopts[k++] = (char)o->short_name;
                if (o->has_arg == required_argument)
                    shortopts[k++] = ':';
            }
        }
        longopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
        longopts[n] = (struct option){0, 0, 0, 0};
        shortopts[k] = '\0';
        built_for = cmd;
    }
    return cli_getopt(cmd->name, argc, argv, shortopts, longopts);
}

/* "  -o, --output OUTDIR" for o into out (size n); its length. */
static int left_part(const cli_opt *o, char *out, size_t n)
{
    char shortf[8] = "";
    if (o->short_name != 0)
        snprintf(shortf, sizeof shortf, "-%c, ", o->short_name);
    return snprintf(out, n, "  %s--%s%s%s", shortf, o->name, o->arg ? " " : "",
                    o->arg ? o->arg : "");
}

/* One option: the left part, then its help from column col, each further
 * help line indented to col. */
static int put_option(wp_buf *b, const cli_opt *o, int col)
{
    char left[256];
    int len = left_part(o, left, sizeof left);
    const char *h = o->help ? o->help : "";
    if (wp_buf_puts(b, left) != 0)
        return WP_ENOMEM;
    if (len + 2 > col) { /* too long: the help starts on the next line */
        if (wp_buf_putc(b, '\n') != 0)
            return WP_ENOMEM;
        len = 0;
    }
    for (;;) {
        const char *nl = strchr(h, '\n');
        size_t n = nl ? (size_t)(nl - h) : strlen(h);
        if (wp_buf_printf(b, "%*s%.*s\n", col - len, "", (int)n, h) != 0)
            return WP_ENOMEM;
        if (nl == NULL)
            return 0;
        h = nl + 1;
        len = 0;
    }
}

int cli_usage_text(const cli_cmd *cmd, wp_buf *out)
{
    static const cli_opt help = {"help", 'h', no_argument, 'h', NULL, "this help"};
    int col = 0;

    wp_buf_reset(out);
    if (cmd->opts == NULL)
        return wp_buf_puts(out, cmd->usage ? cmd->usage : "");
    for (const cli_opt *o = cmd->opts;; o++) {
        const cli_opt *e = o->name || o->help ? o : &help; /* the table, then --help */
        char left[256];
        int len;
        if (e->name != NULL) {
            len = left_part(e, left, sizeof left) + 2;
            if (len > col && len <= HELP_COLUMN_MAX)
                col = len;
        }
        if (e == &help)
            break;
    }
    if (wp_buf_puts(out, cmd->synopsis) != 0 || wp_buf_putc(out, '\n') != 0)
        return WP_ENOMEM;
    if (cmd->about != NULL && (wp_buf_puts(out, cmd->about) != 0 || wp_buf_putc(out, '\n') != 0))
        return WP_ENOMEM;
    for (const cli_opt *o = cmd->opts; o->name || o->help; o++) {
        if (o->name == NULL) {
            if (wp_buf_printf(out, "%s\n", o->help) != 0)
                return WP_ENOMEM;
        } else if (put_option(out, o, col) != 0) {
            return WP_ENOMEM;
        }
    }
    if (put_option(out, &help, col) != 0)
        return WP_ENOMEM;
    if (cmd->epilog != NULL && (wp_buf_putc(out, '\n') != 0 || wp_buf_puts(out, cmd->epilog) != 0))
        return WP_ENOMEM;
    return 0;
}

void cli_print_usage(const cli_cmd *c)
{
    wp_buf b = {0};
    if (cli_usage_text(c, &b) == 0)
        fputs(b.data, stdout);
    else
        fputs("witpipe: out of memory\n", stderr);
    wp_buf_free(&b);
}
