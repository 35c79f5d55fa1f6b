/*
 * tests/unit/test_cli.c: the command layer's option tables. For every
 * command with a table (cli/cmd_X.c): each option is in its help text
 * (`witpipe help X`), every --option the help text names is in the table,
 * names and values are unique, and the parser returns each option's value
 * with its argument. A later `witpipe run` config reads these tables, so
 * they must be the whole truth about a command's options. Linked with
 * cli/ minus main.c (see the Makefile).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/cli.h"
#include "common/wp.h"

#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

/* Commands whose help is one hand-written text: none any more. A command
 * added here must say why it cannot have a table. */
static const char *const untabled[] = {""};

static int is_untabled(const char *name)
{
    for (size_t i = 0; i < sizeof untabled / sizeof untabled[0]; i++)
        if (strcmp(untabled[i], name) == 0)
            return 1;
    return 0;
}

static const cli_opt *find_opt(const cli_cmd *c, const char *name, size_t n)
{
    for (const cli_opt *o = c->opts; o->name || o->help; o++)
        if (o->name != NULL && strlen(o->name) == n && strncmp(o->name, name, n) == 0)
            return o;
    return NULL;
}

/* 1 if text has "--name" followed by a character that cannot continue an
 * option name. */
static int mentions(const char *text, const char *name)
{
    char pat[128];
    size_t n;
    snprintf(pat, sizeof pat, "--%s", name);
    n = strlen(pat);
    for (const char *p = strstr(text, pat); p != NULL; p = strstr(p + 1, pat)) {
        char next = p[n];
        if (!(isalnum((unsigned char)next) || next == '-'))
            return 1;
    }
    return 0;
}

static void test_every_command_has_a_table_or_is_known_untabled(void **state)
{
    int n = 0;
    for (const cli_cmd *const *c = cli_commands; *c != NULL; c++, n++) {
        assert_non_null((*c)->name);
        assert_non_null((*c)->summary);
        assert_non_null((*c)->run);
        assert_ptr_equal(cli_find((*c)->name), *c);
        if ((*c)->opts == NULL) {
            if (!is_untabled((*c)->name))
                fail_msg("command %s has no option table", (*c)->name);
            assert_non_null((*c)->usage);
        } else {
            assert_false(is_untabled((*c)->name));
            assert_non_null((*c)->synopsis);
        }
    }
    assert_true(n >= 9);
    assert_null(cli_find("no-such-command"));
}

static void test_table_and_help_text_agree(void **state)
{
    wp_buf text = {0};
    int tables = 0;
    for (const cli_cmd *const *cp = cli_commands; *cp != NULL; cp++) {
        const cli_cmd *c = *cp;
        char want[64];
        int count = 0;
        if (c->opts == NULL)
            continue;
        tables++;
        assert_int_equal(cli_usage_text(c, &text), 0);
        snprintf(want, sizeof want, "usage: witpipe %s", c->name);
        assert_memory_equal(text.data, want, strlen(want));
        /* table -> help: every option, with its short form and value name */
        for (const cli_opt *o = c->opts; o->name || o->help; o++) {
            char line[128];
            count++;
            if (o->name == NULL) { /* a heading is printed as it is */
                assert_non_null(strstr(text.data, o->help));
                continue;
            }
            if (!mentions(text.data, o->name))
                fail_msg("%s: --%s is not in its help", c->name, o->name);
            assert_non_null(o->help);
            assert_true(o->help[0] != '\0');
            snprintf(line, sizeof line, "%s%c%s--%s%s%s", o->short_name ? "-" : "",
                     o->short_name ? o->short_name : ' ', o->short_name ? ", " : "", o->name,
                     o->arg ? " " : "", o->arg ? o->arg : "");
            if (strstr(text.data, o->short_name ? line : line + 1) == NULL)
                fail_msg("%s: '%s' is not in its help", c->name, line);
            assert_true(o->has_arg == no_argument || o->has_arg == required_argument);
            assert_true(o->has_arg == no_argument || o->arg != NULL);
            assert_int_not_equal(o->val, 'h');
            assert_int_not_equal(o->val, '?');
            assert_int_not_equal(o->val, ':');
            assert_true(o->val > 0);
            /* names and values unique within the table */
            for (const cli_opt *p = o + 1; p->name || p->help; p++) {
                if (p->name == NULL)
                    continue;
                if (strcmp(p->name, o->name) == 0 || p->val == o->val)
                    fail_msg("%s: --%s and --%s clash", c->name, o->name, p->name);
            }
        }
        assert_true(count < CLI_OPTS_MAX);
        assert_true(mentions(text.data, "help"));
        /* help -> table: every --word the text names is an option */
        for (const char *p = strstr(text.data, "--"); p != NULL; p = strstr(p + 2, "--")) {
            const char *s = p + 2;
            size_t n = 0;
            while (isalnum((unsigned char)s[n]) || s[n] == '-')
                n++;
            if (n == 0 || (n == 4 && strncmp(s, "help", 4) == 0))
                continue;
            if (find_opt(c, s, n) == NULL)
                fail_msg("%s: its help names --%.*s, which it does not take", c->name, (int)n, s);
        }
    }
    assert_true(tables >= 6); /* init, status, add, crawl, fetch, shard */
    wp_buf_free(&text);
}

static void test_parser_returns_each_options_value(void **state)
{
    for (const cli_cmd *const *cp = cli_commands; *cp != NULL; cp++) {
        const cli_cmd *c = *cp;
        if (c->opts == NULL)
            continue;
        for (const cli_opt *o = c->opts; o->name || o->help; o++) {
            for (int form = 0; form < 2; form++) {
                char flag[80], value[] = "v4lue";
                char *argv[5];
                int argc = 0, got;
                if (o->name == NULL || (form == 1 && o->short_name == 0))
                    continue;
                if (form == 0)
                    snprintf(flag, sizeof flag, "--%s", o->name);
                else
                    snprintf(flag, sizeof flag, "-%c", o->short_name);
                argv[argc++] = (char *)c->name;
                argv[argc++] = flag;
                if (o->has_arg == required_argument)
                    argv[argc++] = value;
                argv[argc] = NULL;
                optind = 0; /* glibc: start a fresh scan */
                got = cli_next_opt(c, argc, argv);
                if (got != o->val)
                    fail_msg("%s %s: parser gave %d, table says %d", c->name, flag, got, o->val);
                if (o->has_arg == required_argument)
                    assert_string_equal(optarg, "v4lue");
                optind = 0;
            }
        }
        {
            char *argv[] = {(char *)c->name, "--help", NULL};
            optind = 0;
            assert_int_equal(cli_next_opt(c, 2, argv), 'h');
        }
        {
            char *argv[] = {(char *)c->name, "--no-such-option-here", NULL};
            optind = 0;
            assert_int_equal(cli_next_opt(c, 2, argv), '?');
        }
    }
    optind = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_command_has_a_table_or_is_known_untabled),
        cmocka_unit_test(test_table_and_help_text_agree),
        cmocka_unit_test(test_parser_returns_each_options_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
