/*
 * cli/cmd_fetch.c: `witpipe fetch`: the option table and help text of the
 * fetch stage side by side, option parsing and the final summary. The
 * stage's defaults are fetch_opts_init's (fetch/fetch.h).
 */
#include "catalog/catalog.h"
#include "cli.h"
#include "fetch/fetch.h"
#include "image/image.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UA_MAX             512
#define DIRECTIVE_LIST_MAX 512

enum {
    O_PARALLEL = 1000,
    O_PER_HOST,
    O_HOST_DELAY,
    O_CONNECT_TIMEOUT,
    O_TIMEOUT,
    O_LOW_SPEED,
    O_LOW_SPEED_TIME,
    O_MAX_BYTES,
    O_RETRIES,
    O_USER_AGENT,
    O_IGNORE_DIRECTIVE,
    O_ALLOW_NET,
    O_RESIZE_MODE,
    O_IMAGE_SIZE,
    O_ONLY_BIGGER,
    O_QUALITY,
    O_NO_REENCODE,
    O_MAX_PIXELS,
    O_MIN_SIZE,
    O_MAX_ASPECT,
    O_MAX_AREA,
    O_WORKERS,
    O_LIMIT,
    O_PART,
    O_STATS_JSON,
};

static const cli_opt fetch_opts_table[] = {
    {NULL, 0, 0, 0, NULL, "Network:"},
    {"parallel", 0, required_argument, O_PARALLEL, "N",
     "transfers at once (default 64; lowered to the bodies\nof --max-bytes a given memory "
     "budget holds)"},
    {"per-host", 0, required_argument, O_PER_HOST, "N",
     "transfers at once to one host (default 4)"},
    {"host-delay", 0, required_argument, O_HOST_DELAY, "S",
     "minimum seconds between requests to one host (default 0)"},
    {"connect-timeout", 0, required_argument, O_CONNECT_TIMEOUT, "S",
     "connect timeout in seconds (default 10)"},
    {"timeout", 0, required_argument, O_TIMEOUT, "S",
     "whole-transfer timeout in seconds (default 60)"},
    {"low-speed", 0, required_argument, O_LOW_SPEED, "B",
     "abort below B bytes/s sustained for --low-speed-time\n"
     "seconds (defaults 1024 and 10; 0 disables)"},
    {"low-speed-time", 0, required_argument, O_LOW_SPEED_TIME, "S",
     "the seconds --low-speed must last (default 10)"},
    {"max-bytes", 0, required_argument, O_MAX_BYTES, "N",
     "body size cap after decompression (default 20000000)"},
    {"retries", 0, required_argument, O_RETRIES, "N",
     "retries for timeouts, resets, 429 and 5xx, with\n"
     "exponential backoff and jitter (default 2)"},
    {"user-agent", 0, required_argument, O_USER_AGENT, "TOKEN",
     "contact token added to the User-Agent; X-Robots-Tag\n"
     "directives scoped to TOKEN: (or witpipe:) apply to us"},
    {"ignore-directive", 0, required_argument, O_IGNORE_DIRECTIVE, "D",
     "do not honour X-Robots-Tag directive D (repeatable;\n"
     "honoured by default: noai, noimageai, noindex,\n"
     "noimageindex)"},
    {"allow-net", 0, required_argument, O_ALLOW_NET, "CIDR",
     "allow connecting to this range although it is\n"
     "loopback/private/link-local/... (repeatable; the SSRF\n"
     "guard checks every resolved address, redirects too)"},
    {NULL, 0, 0, 0, NULL, "Images:"},
    {"resize-mode", 0, required_argument, O_RESIZE_MODE, "M",
     "no, border, keep_ratio, keep_ratio_largest or\n"
     "center_crop (default border)"},
    {"image-size", 0, required_argument, O_IMAGE_SIZE, "N", "target size in pixels (default 256)"},
    {"resize-only-if-bigger", 0, no_argument, O_ONLY_BIGGER, NULL,
     "leave smaller images at their size"},
    {"quality", 0, required_argument, O_QUALITY, "Q",
     "JPEG quality of the stored images (default 95)"},
    {"no-reencode", 0, no_argument, O_NO_REENCODE, NULL,
     "with --resize-mode no: store the original bytes"},
    {"max-pixels", 0, required_argument, O_MAX_PIXELS, "N",
     "refuse images with more pixels, from the header\n"
     "(default 89478485)"},
    {"min-image-size", 0, required_argument, O_MIN_SIZE, "N",
     "refuse images whose shorter side is below N"},
    {"max-aspect-ratio", 0, required_argument, O_MAX_ASPECT, "R",
     "refuse images with longer/shorter side above R"},
    {"max-image-area", 0, required_argument, O_MAX_AREA, "N",
     "refuse images with width*height above N"},
    {NULL, 0, 0, 0, NULL, "Run:"},
    {"workers", 0, required_argument, O_WORKERS, "N", "image threads (default: one per CPU)"},
    {"limit", 0, required_argument, O_LIMIT, "N", "handle at most N images in this run"},
    {"part", 0, required_argument, O_PART, "I/N",
     "only the images whose URL host is in part I of N\n(so one host is fetched by one part)"},
    {"stats-json", 0, no_argument, O_STATS_JSON, NULL,
     "print the run's figures as one JSON line on stdout"},
    {0, 0, 0, 0, 0, 0},
};

static int cmd_fetch(cli_ctx *ctx, int argc, char **argv);

const cli_cmd cli_cmd_fetch = {
    .name = "fetch",
    .summary = "download, check, resize and store every pending image",
    .run = cmd_fetch,
    .synopsis = "usage: witpipe fetch [-C DIR] [OPTIONS]\n",
    .about = "Downloads every image still pending in the catalog, identifies it from its\n"
             "bytes, applies the filters, decodes, resizes, re-encodes and stores it, and\n"
             "records one final state per image (ok, or error with a class: dns, connect,\n"
             "timeout, reset, http_4xx, http_5xx, too_large, opt_out, blocked_address,\n"
             "too_many_redirects, not_an_image, unsupported_format, corrupt,\n"
             "too_many_pixels, too_small, aspect_ratio, too_large_area, ...).\n"
             "Ctrl-C stops taking new work and saves what is done (exit 1); run again to\n"
             "continue. A killed run loses nothing committed and resumes the same way.\n",
    .opts = fetch_opts_table,
};

/* Removes word from the comma-separated list in place; 0 if absent. */
static int list_remove(char *list, const char *word)
{
    char out[DIRECTIVE_LIST_MAX] = "";
    char *save = NULL, *tok;
    int found = 0;
    for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strcasecmp(tok, word) == 0) {
            found = 1;
            continue;
        }
        if (out[0])
            strncat(out, ",", sizeof out - strlen(out) - 1);
        strncat(out, tok, sizeof out - strlen(out) - 1);
    }
    strcpy(list, out);
    return found;
}

static int cmd_fetch(cli_ctx *ctx, int argc, char **argv)
{
    fetch_opts o;
    fetch_stats stats;
    net_acl *acl = net_acl_new();
    char ua[UA_MAX], tokens[UA_MAX], directives[DIRECTIVE_LIST_MAX] = NET_DEFAULT_DIRECTIVES;
    const char *token = NULL;
    cat *c = NULL;
    st_store *st = NULL;
    wp_err err = {0};
    int opt, rc = CLI_OK, stats_json = 0;
    int64_t v;
    double d;

    if (acl == NULL) {
        cli_error(ctx, "fetch: out of memory");
        return CLI_FAIL;
    }
    fetch_opts_init(&o);
    while ((opt = cli_next_opt(&cli_cmd_fetch, argc, argv)) != -1) {
        switch (opt) {
        case 'h':
            cli_print_usage(&cli_cmd_fetch);
            goto out;
        case O_PARALLEL:
            if (cli_parse_i64("fetch", "--parallel", optarg, 1, 4096, &v))
                goto usage;
            o.net.parallel = (int)v;
            break;
        case O_PER_HOST:
            if (cli_parse_i64("fetch", "--per-host", optarg, 1, 1024, &v))
                goto usage;
            o.net.per_host = (int)v;
            break;
        case O_HOST_DELAY:
            if (cli_parse_double("fetch", "--host-delay", optarg, 0, 3600, &d))
                goto usage;
            o.net.host_delay_s = d;
            break;
        case O_CONNECT_TIMEOUT:
            if (cli_parse_double("fetch", "--connect-timeout", optarg, 0.001, 3600, &d))
                goto usage;
            o.net.connect_timeout_ms = (long)(d * 1000);
            break;
        case O_TIMEOUT:
            if (cli_parse_double("fetch", "--timeout", optarg, 0.001, 86400, &d))
                goto usage;
            o.net.total_timeout_ms = (long)(d * 1000);
            break;
        case O_LOW_SPEED:
            if (cli_parse_i64("fetch", "--low-speed", optarg, 0, 1L << 30, &v))
                goto usage;
            o.net.low_speed_bytes = (long)v;
            break;
        case O_LOW_SPEED_TIME:
            if (cli_parse_i64("fetch", "--low-speed-time", optarg, 1, 3600, &v))
                goto usage;
            o.net.low_speed_time_s = (long)v;
            break;
        case O_MAX_BYTES:
            if (cli_parse_i64("fetch", "--max-bytes", optarg, 1, (int64_t)1 << 40, &v))
                goto usage;
            o.net.max_bytes = v;
            break;
        case O_RETRIES:
            if (cli_parse_i64("fetch", "--retries", optarg, 0, 100, &v))
                goto usage;
            o.net.retries = (int)v;
            break;
        case O_USER_AGENT:
            if (strlen(optarg) == 0 || strlen(optarg) > 200 || strpbrk(optarg, "\r\n,;()")) {
                rc = cli_usage_error("fetch", "--user-agent: a short token without , ; ( ) or "
                                              "line breaks");
                goto out;
            }
            token = optarg;
            break;
        case O_IGNORE_DIRECTIVE:
            if (!list_remove(directives, optarg)) {
                rc = cli_usage_error("fetch", "--ignore-directive '%s': not one of %s", optarg,
                                     NET_DEFAULT_DIRECTIVES);
                goto out;
            }
            break;
        case O_ALLOW_NET:
            if (net_acl_add(acl, optarg, &err) != 0) {
                rc = cli_usage_error("fetch", "%s", err.msg);
                goto out;
            }
            break;
        case O_RESIZE_MODE:
            o.resize_mode = img_resize_mode_parse(optarg);
            if (o.resize_mode < 0) {
                rc = cli_usage_error("fetch",
                                     "--resize-mode '%s': use no, border, keep_ratio, "
                                     "keep_ratio_largest or center_crop",
                                     optarg);
                goto out;
            }
            break;
        case O_IMAGE_SIZE:
            if (cli_parse_i64("fetch", "--image-size", optarg, 1, 16384, &v))
                goto usage;
            o.image_size = (int)v;
            break;
        case O_ONLY_BIGGER:
            o.resize_only_if_bigger = 1;
            break;
        case O_QUALITY:
            if (cli_parse_i64("fetch", "--quality", optarg, 1, 100, &v))
                goto usage;
            o.quality = (int)v;
            break;
        case O_NO_REENCODE:
            o.reencode = 0;
            break;
        case O_MAX_PIXELS:
            if (cli_parse_i64("fetch", "--max-pixels", optarg, 1, INT64_MAX, &v))
                goto usage;
            o.max_pixels = v;
            break;
        case O_MIN_SIZE:
            if (cli_parse_i64("fetch", "--min-image-size", optarg, 0, 1 << 20, &v))
                goto usage;
            o.min_image_size = (int)v;
            break;
        case O_MAX_ASPECT:
            if (cli_parse_double("fetch", "--max-aspect-ratio", optarg, 1, 1e9, &d))
                goto usage;
            o.max_aspect_ratio = d;
            break;
        case O_MAX_AREA:
            if (cli_parse_i64("fetch", "--max-image-area", optarg, 1, INT64_MAX, &v))
                goto usage;
            o.max_image_area = v;
            break;
        case O_WORKERS:
            if (cli_parse_i64("fetch", "--workers", optarg, 1, 64, &v))
                goto usage;
            o.workers = (int)v;
            break;
        case O_LIMIT:
            if (cli_parse_i64("fetch", "--limit", optarg, 0, INT64_MAX, &v))
                goto usage;
            o.limit = v;
            break;
        case O_PART:
            if (cli_parse_part("fetch", optarg, &o.part))
                goto usage;
            break;
        case O_STATS_JSON:
            stats_json = 1;
            break;
        default:
            goto usage;
        }
    }
    if (optind < argc) {
        rc = cli_usage_error("fetch", "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    /* Like img2dataset's user_agent_token: a name site owners can address in
     * X-Robots-Tag and a way to reach whoever runs the crawl. Without one,
     * net_opts_init's User-Agent and token stand. */
    if (token != NULL) {
        snprintf(ua, sizeof ua, "witpipe/%s (compatible; %s; +https://github.com/witpipe/witpipe)",
                 WP_VERSION, token);
        snprintf(tokens, sizeof tokens, "witpipe,%s", token);
        o.net.user_agent = ua;
        o.net.robot_tokens = tokens;
    }
    o.net.directives = directives;
    o.net.allow = acl;

    if (cat_open(ctx->corpus, 0, &c, &err) != 0 || st_open(ctx->corpus, &st, &err) != 0) {
        cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
        goto out;
    }
    int frc = fetch_run(c, st, &o, &ctx->rep, &stats, &err);
    cli_progress_done(ctx);
    if (stats_json) {
        wp_buf b = {0};
        wp_json j;
        wp_json_init(&j, &b);
        wp_json_obj_begin(&j, NULL);
        wp_json_uint(&j, "done", stats.done);
        wp_json_uint(&j, "ok", stats.ok);
        wp_json_uint(&j, "errors", stats.errors);
        wp_json_uint(&j, "retried", stats.retried);
        wp_json_uint(&j, "bytes_in", stats.bytes_in);
        wp_json_uint(&j, "bytes_out", stats.bytes_out);
        wp_json_real_prec(&j, "wall_s", stats.wall_s, 6);
        wp_json_real_prec(&j, "cpu_net_s", stats.cpu_net_s, 6);
        wp_json_real_prec(&j, "cpu_decode_s", stats.cpu_decode_s, 6);
        wp_json_real_prec(&j, "cpu_resize_s", stats.cpu_resize_s, 6);
        wp_json_real_prec(&j, "cpu_encode_s", stats.cpu_encode_s, 6);
        wp_json_int(&j, "max_host_active", stats.max_host_active);
        wp_json_real_prec(&j, "cpu_process_s", wp_cpu_time(), 6);
        wp_json_uint(&j, "peak_rss_kb", wp_peak_rss_kb());
        wp_json_int(&j, "stopped", stats.stopped);
        wp_json_obj_end(&j);
        if (wp_json_finish(&j) == 0)
            puts(b.data);
        wp_buf_free(&b);
        fflush(stdout);
    }
    if (frc == WP_ESTOP) {
        cli_warn(ctx, "%s (run witpipe fetch again to continue)", err.msg);
        rc = CLI_FAIL;
    } else if (frc != 0) {
        cli_error(ctx, "%s", err.msg);
        rc = CLI_FAIL;
    } else {
        cli_info(ctx, "fetch: %llu images, %llu ok, %llu errors, %.1f MB in %.1f s",
                 (unsigned long long)stats.done, (unsigned long long)stats.ok,
                 (unsigned long long)stats.errors, (double)stats.bytes_in / 1e6, stats.wall_s);
    }
    goto out;
usage:
    rc = CLI_USAGE;
out:
    st_close(st);
    cat_close(c);
    net_acl_free(acl);
    return rc;
}
