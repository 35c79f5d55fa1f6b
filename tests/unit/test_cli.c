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
#include "tests/fuzz/fuzz_pipeline.h"

#include <ctype.h>
#include <dirent.h>
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

/* Replays the pipeline-config fuzz inputs (tests/fuzz/corpus/pipeline,
 * tests/fuzz/regress/pipeline) through fuzz_pipeline_one: each file's
 * contract holds. Returns how many ran. */
static int replay_pipeline_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char path[1200];
        wp_buf b = {0};
        wp_err err = {0};
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (wp_read_file(path, (size_t)1 << 24, &b, &err) != 0)
            fail_msg("%s", err.msg);
        int line = fuzz_pipeline_one((const uint8_t *)b.data, b.len);
        wp_buf_free(&b);
        if (line != 0)
            fail_msg("%s: check at tests/fuzz/fuzz_pipeline.h:%d failed", path, line);
        n++;
    }
    closedir(d);
    return n;
}

static void test_pipeline_fuzz_corpus(void **state)
{
    (void)state;
    assert_true(replay_pipeline_dir("tests/fuzz/corpus/pipeline") >= 8);
    replay_pipeline_dir("tests/fuzz/regress/pipeline");
    /* the check can fail: an accepted config's vectors go through getopt */
    static const char ok[] = "{\"stages\": [{\"stage\": \"fetch\", \"parallel\": 4, "
                             "\"args\": []}, {\"stage\": \"add\", \"args\": [\"l.tsv\"]}]}";
    char msg[256];
    cli_plan *p = cli_plan_parse("x.json", ok, strlen(ok), NULL, msg, sizeof msg);
    int argc;
    char *const *argv;
    assert_non_null(p);
    assert_int_equal(cli_plan_steps(p), 2);
    assert_ptr_equal(cli_plan_step(p, 0, &argc, &argv), &cli_cmd_fetch);
    assert_int_equal(argc, 3);
    assert_string_equal(argv[1], "--parallel");
    assert_string_equal(argv[2], "4");
    assert_ptr_equal(cli_plan_step(p, 1, &argc, &argv), &cli_cmd_add);
    assert_int_equal(argc, 3);
    assert_string_equal(argv[1], "--");
    cli_plan_free(p);
    static const char bad[] = "{\"stages\": [{\"stage\": \"fetch\"}, {\"stage\": \"fetch\", "
                              "\"paralel\": 4}]}";
    assert_null(cli_plan_parse("x.json", bad, strlen(bad), NULL, msg, sizeof msg));
    assert_string_equal(msg, "x.json: $.stages[1].paralel: fetch has no option --paralel (did you "
                             "mean parallel?)");
    assert_int_equal(fuzz_pipeline_one((const uint8_t *)bad, strlen(bad)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_command_has_a_table_or_is_known_untabled),
        cmocka_unit_test(test_table_and_help_text_agree),
        cmocka_unit_test(test_parser_returns_each_options_value),
        cmocka_unit_test(test_pipeline_fuzz_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
