/*
 * cli/cmd_add.c: `witpipe add`: URL + caption lists, or local images with
 * --files / --files-list, into the corpus catalog. The option table and
 * the help text sit together here; the stage itself (its run, defaults and
 * counts) is add/add.h.
 */
#include "add/add.h"
#include "catalog/catalog.h"
#include "cli.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADD_KEEP_ARG_MAX 4096 /* the --keep-cols value, bytes */

enum {
    O_FORMAT = 1000,
    O_URL,
    O_TEXT,
    O_KEEP,
    O_BATCH,
    O_FILES,
    O_FILES_LIST,
    O_NOCRC,
    O_PART,
    O_PARTBY,
    O_CONTINUE,
};

static const cli_opt add_opts_table[] = {
    {"format", 0, required_argument, O_FORMAT, "tsv|csv|jsonl|parquet",
     "the input format (default: Parquet by its PAR1\nmagic, else from the file name)"},
    {"url-col", 0, required_argument, O_URL, "NAME",
     "the column (or JSON member) with the image URL\n(default url)"},
    {"text-col", 0, required_argument, O_TEXT, "NAME",
     "the column with the caption (default caption)"},
    {"keep-cols", 0, required_argument, O_KEEP, "A,B,...",
     "further columns kept as JSON in the pair's extra\n"
     "metadata (TSV/CSV: strings; JSONL: any value;\nParquet: typed integers, doubles, strings, "
     "booleans,\nnulls)"},
    {"no-verify-crc", 0, no_argument, O_NOCRC, NULL, "Parquet: do not check page CRCs"},
    {"continue", 0, no_argument, O_CONTINUE, NULL,
     "Parquet: a row group that cannot be read (a corrupt\n"
     "page, a CRC mismatch) is reported, counted and\n"
     "skipped, and the file's other row groups are read"},
    {"batch", 0, required_argument, O_BATCH, "N", "rows per catalog transaction (default 50000)"},
    {"part", 0, required_argument, O_PART, "I/N",
     "only part I of N: Parquet files by row group (the\n"
     "row groups of all of them numbered in byte order of\n"
     "their paths, those with number mod N = I-1); text\n"
     "lists as whole files when there are at least N (file\n"
     "k when k mod N = I-1), else every N-th record of each\n"
     "file (docs/scale-out.md)"},
    {"part-by", 0, required_argument, O_PARTBY, "records|host",
     "host: --part takes the records whose image URL's host\n"
     "is in the part (every file is read), as fetch --part\n"
     "does, so that fetching a part's pairs is polite across\n"
     "parts (default records)"},
    {"files", 0, required_argument, O_FILES, "IMAGEDIR",
     "import a folder of local images instead (recursively,\n"
     "in name order). A file is taken when its header is a\n"
     "JPEG, PNG or WebP, or when a caption file of the same\n"
     "name with .txt for its extension is beside it. The\n"
     "format and size come from the file's header, never\n"
     "its name; a captioned file that is no usable image is\n"
     "recorded with state error and class not_an_image,\n"
     "unsupported, corrupt, too_large or unreadable."},
    {"files-list", 0, required_argument, O_FILES_LIST, "LIST",
     "import the images named in LIST, lines PATH<TAB>CAPTION\n"
     "(relative paths are relative to LIST's folder)"},
    {0, 0, 0, 0, 0, 0},
};

static int cmd_add(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_add = {
    .name = "add",
    .summary = "add URL+caption lists or local images to the corpus",
    .run = cmd_add,
    .synopsis = "usage: witpipe add [-C DIR] [OPTIONS] FILE...\n"
                "       witpipe add [-C DIR] --files IMAGEDIR\n"
                "       witpipe add [-C DIR] --files-list LIST\n",
    .about = "Adds (image URL, caption) pairs from lists in img2dataset's input formats:\n"
             "TSV (tab separated, no quoting, header row), CSV (RFC 4180 quoting: fields in\n"
             "double quotes may hold commas, quotes and line breaks; header row) or JSONL\n"
             "(one JSON object per line). Files may be plain or compressed with gzip,\n"
             "zstd, bzip2, xz, lzma or lz4; the format is taken from the name once the\n"
             "compression suffix is stripped (.tsv .tab .csv .jsonl .ndjson .json).\n"
             "Parquet files (LAION, DataComp, COYO and img2dataset metadata) are told by\n"
             "their PAR1 magic whatever their name, read row group by row group with\n"
             "bounded memory by witpipe's own reader (parquet/); nested columns other\n"
             "than the ones named are skipped and said so. Several Parquet files are\n"
             "decoded in parallel (OMP_NUM_THREADS threads, one per file). A FILE with\n"
             "* ? or [ that names no file is a glob, expanded by witpipe.\n"
             "FILE '-' reads standard input (give --format).\n"
             "\n"
             "Files are streamed: memory stays flat however long they are. A row with\n"
             "no URL, a URL that is not http(s), invalid UTF-8, bad CSV quoting, the\n"
             "wrong number of fields or an over-long field (URL > 8 KiB, caption >\n"
             "64 KiB, record > 1 MiB) is counted as bad and skipped; the first 10 are\n"
             "reported with file:line, the run goes on. An exact duplicate (same URL and\n"
             "caption) is stored once. A row with an empty caption is stored and counted.\n",
    .opts = add_opts_table,
    .epilog = "Exit status: 0 when every input was read to its end (bad rows included,\n"
              "and Parquet row groups skipped by --continue), 1 when an input could not\n"
              "be read or broke off (a truncated gzip, a corrupt Parquet page without\n"
              "--continue: rows before the damage are kept), 2 usage error.\n",
};

static int parse_keep(const char *arg, char *copy, add_opts *o)
{
    char *save = NULL;
    if (strlen(arg) >= ADD_KEEP_ARG_MAX)
        return cli_usage_error("add", "option '--keep-cols' is too long");
    snprintf(copy, ADD_KEEP_ARG_MAX, "%s", arg);
    o->nkeep = 0;
    for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        if (o->nkeep == ADD_KEEP_MAX)
            return cli_usage_error("add", "option '--keep-cols': more than %d columns",
                                   ADD_KEEP_MAX);
        if (strlen(t) > ADD_COLNAME_MAX)
            return cli_usage_error("add", "option '--keep-cols': column name too long");
        o->keep_cols[o->nkeep++] = t;
    }
    if (o->nkeep == 0)
        return cli_usage_error("add", "option '--keep-cols' needs column names");
    return 0;
}

static void print_files(cli_ctx *ctx, const add_files_stats *st)
{
    cli_info(ctx,
             "files: %llu images imported (%llu bytes), %llu already present, %llu "
             "without caption, %llu errors, %llu other files skipped (%llu symbolic links, "
             "%llu not regular files)",
             (unsigned long long)st->imported, (unsigned long long)st->bytes,
             (unsigned long long)st->already, (unsigned long long)st->no_caption,
             (unsigned long long)st->errors, (unsigned long long)st->skipped,
             (unsigned long long)st->skipped_links, (unsigned long long)st->skipped_special);
}

static void print_lists(cli_ctx *ctx, const add_stats *st, double el)
{
    char reasons[512] = "";
    size_t off = 0;
    if (st->reported > ADD_BAD_REPORT)
        cli_warn(ctx, "%llu more bad rows not shown",
                 (unsigned long long)(st->reported - ADD_BAD_REPORT));
    for (int i = 1; i < ADD_BAD_NREASONS; i++)
        if (st->bad_by[i] > 0 && off < sizeof reasons)
            off += (size_t)snprintf(reasons + off, sizeof reasons - off, "%s%s %llu",
                                    off ? ", " : " (", add_bad_name(i),
                                    (unsigned long long)st->bad_by[i]);
    if (off > 0 && off < sizeof reasons - 1)
        strcat(reasons, ")");
    if (st->bad_row_groups > 0)
        cli_warn(ctx, "%llu Parquet row group(s) could not be read and were skipped (--continue)",
                 (unsigned long long)st->bad_row_groups);
    cli_info(ctx,
             "added %llu pairs from %llu rows in %llu file(s): %llu duplicates, %llu with "
             "empty caption, %llu bad rows%s; %.1f s, %.0f rows/s",
             (unsigned long long)st->added, (unsigned long long)st->rows,
             (unsigned long long)(st->files + st->files_failed), (unsigned long long)st->duplicates,
             (unsigned long long)st->empty_text, (unsigned long long)st->bad, reasons, el,
             el > 0 ? (double)st->rows / el : 0.0);
}

static int cmd_add(cli_ctx *ctx, int argc, char **argv)
{
    static char keep_copy[ADD_KEEP_ARG_MAX];
    add_opts o;
    add_stats st;
    add_files_stats fst;
    const char *files_dir = NULL, *files_list = NULL;
    cat *c = NULL;
    st_store *store = NULL;
    wp_err err = {0};
    int64_t v;
    double t0 = wp_now();
    int opt, k, rc = CLI_OK;

    add_opts_init(&o);
    while ((opt = cli_next_opt(&cli_cmd_add, argc, argv)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(&cli_cmd_add);
            return CLI_OK;
        case O_FORMAT:
            if ((o.format = add_format_parse(optarg)) < 0)
                return cli_usage_error(
                    "add", "option '--format': '%s' is not tsv, csv, jsonl or parquet", optarg);
            break;
        case O_NOCRC:
            o.no_verify_crc = 1;
            break;
        case O_CONTINUE:
            o.keep_going = 1;
            break;
        case O_URL:
            if (optarg[0] == '\0')
                return cli_usage_error("add", "option '--url-col' needs a name");
            o.url_col = optarg;
            break;
        case O_TEXT:
            if (optarg[0] == '\0')
                return cli_usage_error("add", "option '--text-col' needs a name");
            o.text_col = optarg;
            break;
        case O_KEEP:
            if (parse_keep(optarg, keep_copy, &o) != 0)
                return CLI_USAGE;
            break;
        case O_BATCH:
            if (cli_parse_i64("add", "--batch", optarg, 1, 1000000, &v) != 0)
                return CLI_USAGE;
            o.batch_rows = (int)v;
            break;
        case O_PART:
            if (cli_parse_part("add", optarg, &o.part) != 0)
                return CLI_USAGE;
            break;
        case O_PARTBY:
            if (strcmp(optarg, "host") != 0 && strcmp(optarg, "records") != 0)
                return cli_usage_error("add", "--part-by '%s': expected records or host", optarg);
            o.part_by_host = strcmp(optarg, "host") == 0;
            break;
        case O_FILES:
            files_dir = optarg;
            break;
        case O_FILES_LIST:
            files_list = optarg;
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (files_dir != NULL && files_list != NULL)
        return cli_usage_error("add", "give --files or --files-list, not both");
    if ((files_dir != NULL || files_list != NULL) && !wp_part_all(&o.part))
        return cli_usage_error("add", "--part splits list files; it does not apply to --files");
    if ((files_dir != NULL || files_list != NULL) && optind < argc)
        return cli_usage_error("add", "--files takes no list files");
    if (files_dir == NULL && files_list == NULL && optind >= argc)
        return cli_usage_error("add", "no input: give FILE... or --files DIR");

    if (cat_open(ctx->corpus, 0, &c, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        return CLI_FAIL;
    }
    if (files_dir != NULL || files_list != NULL) {
        memset(&fst, 0, sizeof fst);
        if (st_open(ctx->corpus, &store, &err) != 0) {
            cli_error(ctx, "%s", err.msg);
            rc = CLI_FAIL;
            goto out;
        }
        k = add_run_files(c, store, files_dir, files_list, &ctx->rep, &fst, &err);
        cli_progress_done(ctx);
        if (k == WP_ESTOP)
            cli_warn(ctx, "stopped; everything imported so far is kept");
        else if (k != 0)
            cli_error(ctx, "%s", err.msg);
        print_files(ctx, &fst);
    } else {
        k = add_run_lists(c, argv + optind, argc - optind, &o, &ctx->rep, &st, &err);
        cli_progress_done(ctx);
        if (k == WP_ESTOP)
            cli_warn(ctx, "stopped; rows read so far are kept");
        else if (k != 0 && k != ADD_EINPUT) /* ADD_EINPUT: each file was reported */
            cli_error(ctx, "%s", err.msg);
        print_lists(ctx, &st, wp_now() - t0);
    }
    if (k != 0)
        rc = CLI_FAIL;
out:
    st_close(store);
    cat_close(c);
    return rc;
}
