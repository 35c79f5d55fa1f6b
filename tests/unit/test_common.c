/*
 * tests/unit/test_common.c: the common library: errors, arenas, buffers,
 * SHA-256 and pair uids, hex decoding, UTF-8 validation/repair/truncation
 * and encoding, the JSON writer (read back with jansson), durable files;
 * and the status-code table of common/wp.h
 * checked against every module's public header.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "catalog/catalog.h"
#include "clip/clip.h"
#include "common/wp.h"
#include "dedup/dedup.h"
#include "crawl/crawl.h"
#include "add/add.h"
#include "audit/audit.h"
#include "balance/balance.h"
#include "emb/emb.h"
#include "encode/encode.h"
#include "fetch/fetch.h"
#include "filter/filter.h"
#include "image/image.h"
#include "kern/kern.h"
#include "merge/merge.h"
#include "net/net.h"
#include "parquet/parquet.h"
#include "shard/shard.h"
#include "store/store.h"
#include "tests/lib/testlib.h"

#include <iconv.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_err_set_and_prefix(void **state)
{
    wp_err e = {0};
    assert_int_equal(wp_err_set(&e, WP_EIO, "file %s", "x.tsv"), WP_EIO);
    assert_string_equal(e.msg, "file x.tsv");
    assert_int_equal(wp_err_prefix(&e, "line %d", 3), WP_EIO);
    assert_string_equal(e.msg, "line 3: file x.tsv");
    assert_int_equal(wp_err_set(NULL, WP_EINVAL, "ignored"), WP_EINVAL);
}

static void test_arena_alignment_and_reset(void **state)
{
    wp_arena *a = wp_arena_new(256);
    assert_non_null(a);
    for (int i = 1; i < 100; i++) {
        char *p = wp_arena_alloc(a, (size_t)i);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, 0xAB, (size_t)i);
    }
    char *big = wp_arena_alloc(a, 10000); /* larger than a block */
    assert_non_null(big);
    memset(big, 1, 10000);
    wp_arena_reset(a);
    assert_int_equal(wp_arena_used(a), 0);
    char *s = wp_arena_strndup(a, "hello world", 5);
    assert_string_equal(s, "hello");
    wp_arena_free(a);
}

static void test_buf_append_printf_steal(void **state)
{
    wp_buf b = {0};
    for (int i = 0; i < 1000; i++)
        assert_int_equal(wp_buf_printf(&b, "%d,", i), 0);
    assert_int_equal(b.data[b.len], '\0');
    assert_memory_equal(b.data, "0,1,2,", 6);
    char *s = wp_buf_steal(&b);
    assert_null(b.data);
    assert_int_equal(strlen(s), 3890);
    free(s);
    wp_buf_free(&b);
}

static void test_sha256_known_vector(void **state)
{
    uint8_t md[32];
    char hex[65];
    assert_int_equal(wp_sha256_buf("abc", 3, md), 0);
    wp_hex(md, 32, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    wp_sha256 *h = wp_sha256_new();
    assert_non_null(h);
    wp_sha256_update(h, "a", 1);
    wp_sha256_update(h, "bc", 2);
    uint8_t md2[32];
    assert_int_equal(wp_sha256_final(h, md2), 0);
    wp_sha256_free(h);
    assert_memory_equal(md, md2, 32);
}

static void test_pair_uid_is_sha_of_url_nul_text(void **state)
{
    char uid[WP_UID_HEX + 1], uid2[WP_UID_HEX + 1];
    uint8_t md[32];
    char hex[65];
    assert_int_equal(wp_pair_uid("http://a/x.jpg", 14, "a cat", 5, uid), 0);
    assert_int_equal(wp_sha256_buf("http://a/x.jpg\0a cat", 20, md), 0);
    wp_hex(md, 16, hex);
    assert_string_equal(uid, hex);
    /* the separator keeps ("ab","c") and ("a","bc") apart */
    assert_int_equal(wp_pair_uid("ab", 2, "c", 1, uid), 0);
    assert_int_equal(wp_pair_uid("a", 1, "bc", 2, uid2), 0);
    assert_string_not_equal(uid, uid2);
}

static void test_utf8_valid_rejects_bad_forms(void **state)
{
    assert_true(wp_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
    assert_false(wp_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    assert_false(wp_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(wp_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(wp_utf8_valid("\xe2\x82", 2));         /* truncated */
    assert_false(wp_utf8_valid("\x80", 1));             /* lone continuation */
}

static void test_utf8_repair_replaces_each_bad_char_once(void **state)
{
    wp_buf b = {0};
    long n = wp_utf8_repair("a\xe2\x82z\xffq", 6, &b);
    assert_int_equal(n, 2);
    assert_string_equal(b.data, "a\xef\xbf\xbdz\xef\xbf\xbdq");
    wp_buf_free(&b);
}

static size_t vformat(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    size_t k;
    va_start(ap, fmt);
    k = wp_vformat(out, n, fmt, ap);
    va_end(ap);
    return k;
}

/* A message cut to its buffer ends on a character boundary. */
static void test_vformat_cuts_on_character_boundaries(void **state)
{
    char out[8];
    wp_err e;
    /* "ab" + three 2-byte characters: 8 bytes, 7 fit, so the third goes. */
    assert_int_equal(vformat(out, sizeof out, "ab%s", "\xc3\xa9\xc3\xa9\xc3\xa9"), 6);
    assert_string_equal(out, "ab\xc3\xa9\xc3\xa9");
    assert_int_equal(vformat(out, sizeof out, "%s", "abcde\xe2\x82\xac"), 5); /* euro cut */
    assert_int_equal(vformat(out, sizeof out, "%s", "abcd\xe2\x82\xac"), 7);  /* it fits */
    assert_int_equal(vformat(out, sizeof out, "%s", "abcdef\xf0\x9f\x98\x80"), 6);
    assert_int_equal(vformat(out, sizeof out, "%s", "abcdefgh"), 7); /* ASCII: plain cut */
    assert_int_equal(wp_utf8_uncut("a\x80\x80", 3), 3);              /* stray continuations: kept */
    assert_int_equal(wp_utf8_uncut("a\xf0\x9f\x98", 4), 1);
    /* wp_err messages too: a long one ends valid. */
    char big[WP_ERR_MAX + 8];
    memset(big, 'x', sizeof big);
    memcpy(big + WP_ERR_MAX - 3, "\xe2\x82\xac\xe2\x82\xac", 6);
    big[WP_ERR_MAX + 3] = '\0';
    wp_err_set(&e, WP_EIO, "%s", big);
    assert_true(wp_utf8_valid(e.msg, strlen(e.msg)));
    assert_int_equal(strlen(e.msg), WP_ERR_MAX - 3);
}

/* The terminal policy: controls shown as visible escapes, invalid bytes
 * as U+FFFD, everything else as it is. */
static void test_utf8_printable_shows_controls(void **state)
{
    wp_buf b = {0};
    const char in[] = "a\x1b[31m\x07\t\n\x7f\xc2\x9b\xc3\xa9\xff\xfez";
    assert_int_equal(wp_utf8_printable(in, sizeof in - 1, &b), 0);
    assert_int_equal(b.len,
                     strlen("a\\x1B[31m\\x07\t\\x0A\\x7F\\u009B\xc3\xa9\xef\xbf\xbd\xef\xbf\xbdz"));
    assert_memory_equal(
        b.data, "a\\x1B[31m\\x07\t\\x0A\\x7F\\u009B\xc3\xa9\xef\xbf\xbd\xef\xbf\xbdz", b.len);
    wp_buf_free(&b);
}

static void test_utf8_floor_stays_on_boundary(void **state)
{
    const char *s = "ab\xe2\x82\xac"; /* "ab€" */
    assert_int_equal(wp_utf8_floor(s, 5, 4), 2);
    assert_int_equal(wp_utf8_floor(s, 5, 3), 2);
    assert_int_equal(wp_utf8_floor(s, 5, 2), 2);
    assert_int_equal(wp_utf8_floor(s, 5, 5), 5);
    assert_int_equal(wp_utf8_floor(s, 5, 99), 5);
}

static void test_atomic_write_and_bounded_read(void **state)
{
    char *dir = tl_mkdtemp();
    char path[WP_PATH_MAX];
    wp_err e = {0};
    wp_buf b = {0};
    assert_non_null(dir);
    assert_int_equal(wp_path_join(path, dir, "a/b/c", &e), 0);
    char sub[WP_PATH_MAX];
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    assert_int_equal(wp_mkdir_p(sub, &e), 0);
    assert_int_equal(wp_write_file_atomic(path, "hello", 5, &e), 0);
    assert_int_equal(wp_read_file(path, 100, &b, &e), 0);
    assert_string_equal(b.data, "hello");
    assert_int_equal(wp_read_file(path, 4, &b, &e), WP_ELIMIT);
    assert_non_null(strstr(e.msg, "larger than 4"));
    snprintf(sub, sizeof sub, "%s/missing", dir);
    assert_int_equal(wp_read_file(sub, 4, &b, &e), WP_ENOENT);
    wp_buf_free(&b);
    tl_rmtree(dir);
}

/* wp_fd_reserve raises the soft open-file limit up to the hard one, and
 * past the hard one fails with a message naming the ulimit to ask for. Run
 * in a child: lowering the hard limit cannot be undone. */
static void test_fd_reserve_raises_or_explains(void **state)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {32, 64};
        wp_err err = {0};
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            _exit(10);
        if (wp_fd_reserve(48, "test", &err) != 0)
            _exit(11);
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur != 48)
            _exit(12);
        if (wp_fd_reserve(20, "test", &err) != 0) /* already enough */
            _exit(13);
        if (wp_fd_reserve(100, "fetch --parallel 90", &err) != WP_ELIMIT)
            _exit(14);
        if (strstr(err.msg, "ulimit -n 100") == NULL ||
            strstr(err.msg, "fetch --parallel 90") == NULL)
            _exit(15);
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* wp_hex_digit against the digit strings, for every byte and for code
 * points whose low byte is a digit (no truncation to char). */
static void test_hex_digit_and_unhex(void **state)
{
    static const char lower[] = "0123456789abcdef", upper[] = "0123456789ABCDEF";
    for (int c = 0; c < 256; c++) {
        const char *l = c ? memchr(lower, c, 16) : NULL, *u = c ? memchr(upper, c, 16) : NULL;
        int want = l ? (int)(l - lower) : u ? (int)(u - upper) : -1;
        assert_int_equal(wp_hex_digit((uint32_t)c), want);
        assert_int_equal(wp_hex_digit(0x100u + (uint32_t)c), -1);
        assert_int_equal(wp_hex_digit(0xFF00u + (uint32_t)c), -1); /* fullwidth forms */
    }
    /* wp_unhex inverts wp_hex, in either case. */
    uint8_t bytes[64], back[64];
    char hex[2 * sizeof bytes + 1];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(i * 37 + 11);
    wp_hex(bytes, sizeof bytes, hex);
    assert_int_equal(wp_unhex(hex, sizeof bytes, back), 0);
    assert_memory_equal(back, bytes, sizeof bytes);
    for (char *p = hex; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    memset(back, 0, sizeof back);
    assert_int_equal(wp_unhex(hex, sizeof bytes, back), 0);
    assert_memory_equal(back, bytes, sizeof bytes);
    hex[7] = 'g';
    assert_int_equal(wp_unhex(hex, sizeof bytes, back), WP_EINVAL);
    assert_int_equal(wp_unhex("1", 0, back), 0); /* nothing to do */
    assert_int_equal(wp_unhex("0x", 1, back), WP_EINVAL);
}

/* wp_utf8_put against glibc's iconv (UTF-32 to UTF-8) for every Unicode
 * scalar value, plus the replacement of what UTF-8 cannot hold. */
static void test_utf8_put_matches_iconv(void **state)
{
    iconv_t cd = iconv_open("UTF-8", "UTF-32LE");
    assert_true(cd != (iconv_t)-1);
    size_t mism = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        uint8_t in[4] = {(uint8_t)cp, (uint8_t)(cp >> 8), (uint8_t)(cp >> 16), 0};
        char want[8], got[4], *ip = (char *)in, *op = want;
        size_t il = 4, ol = sizeof want;
        assert_true(iconv(cd, &ip, &il, &op, &ol) != (size_t)-1);
        size_t wn = sizeof want - ol, gn = wp_utf8_put(cp, got);
        if (gn != wn || memcmp(got, want, gn) != 0 || !wp_utf8_valid(got, gn))
            mism++;
    }
    iconv_close(cd);
    assert_int_equal(mism, 0);
    /* RFC 3629 section 7: U+D55C is ED 95 9C, U+233B4 is F0 A3 8E B4. */
    char b[4];
    assert_int_equal(wp_utf8_put(0xD55C, b), 3);
    assert_memory_equal(b, "\xED\x95\x9C", 3);
    assert_int_equal(wp_utf8_put(0x233B4, b), 4);
    assert_memory_equal(b, "\xF0\xA3\x8E\xB4", 4);
    /* Surrogates and values past U+10FFFF become U+FFFD. */
    static const uint32_t bad[] = {0xD800, 0xDBFF, 0xDC00, 0xDFFF, 0x110000, 0xFFFFFFFF};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(wp_utf8_put(bad[i], b), 3);
        assert_memory_equal(b, "\xEF\xBF\xBD", 3);
    }
    wp_buf buf = {0};
    assert_int_equal(wp_utf8_append(&buf, 'A'), 0);
    assert_int_equal(wp_utf8_append(&buf, 0xE9), 0);
    assert_int_equal(wp_utf8_append(&buf, 0x1F600), 0);
    assert_int_equal(buf.len, 7);
    assert_string_equal(buf.data, "A\xC3\xA9\xF0\x9F\x98\x80");
    wp_buf_free(&buf);
}

/* Objects, arrays, every value kind, read back with jansson. */
static void test_json_writer_documents(void **state)
{
    wp_buf b = {0};
    wp_json j;
    assert_int_equal(wp_buf_puts(&b, "prefix:"), 0); /* appends */
    wp_json_init(&j, &b);
    wp_json_obj_begin(&j, NULL);
    wp_json_str(&j, "s", "caf\xC3\xA9 / \"q\" \\ \n\t");
    wp_json_strn(&j, "nul", "a\0b", 3);
    wp_json_str(&j, "none", NULL);
    wp_json_int(&j, "neg", INT64_MIN);
    wp_json_uint(&j, "big", (uint64_t)INT64_MAX + 1); /* jansson reads up to INT64_MAX */
    wp_json_real(&j, "half", 0.5);
    wp_json_real(&j, "tenth", 0.1);
    wp_json_real(&j, "nan", NAN);
    wp_json_real(&j, "inf", -INFINITY);
    wp_json_bool(&j, "t", 1);
    wp_json_arr_begin(&j, "list");
    wp_json_int(&j, NULL, 1);
    wp_json_obj_begin(&j, NULL);
    wp_json_obj_end(&j);
    wp_json_arr_begin(&j, NULL);
    wp_json_arr_end(&j);
    wp_json_raw(&j, NULL, "{\"x\":2}");
    wp_json_arr_end(&j);
    wp_json_obj_end(&j);
    assert_int_equal(wp_json_finish(&j), 0);
    assert_memory_equal(b.data, "prefix:", 7);
    const char *text = b.data + 7;
    assert_non_null(strstr(text, "\"half\":0.5,\"tenth\":0.1,\"nan\":null,\"inf\":null"));
    assert_non_null(strstr(text, "\"big\":9223372036854775808,"));
    assert_non_null(strstr(text, "\"list\":[1,{},[],{\"x\":2}]"));
    assert_non_null(strstr(text, "/ \\\"q\\\" \\\\ \\n\\t\""));
    json_error_t je;
    char *big = strstr(text, "\"big\":9223372036854775808");
    assert_non_null(big);
    big[6 + 18] = '7'; /* INT64_MAX, which jansson reads */
    json_t *v = json_loads(text, JSON_ALLOW_NUL, &je);
    if (v == NULL)
        fail_msg("%s: %s", je.text, text);
    assert_string_equal(json_string_value(json_object_get(v, "s")), "caf\xC3\xA9 / \"q\" \\ \n\t");
    assert_int_equal(json_string_length(json_object_get(v, "nul")), 3);
    assert_true(json_is_null(json_object_get(v, "none")));
    assert_true(json_integer_value(json_object_get(v, "neg")) == INT64_MIN);
    assert_true(json_integer_value(json_object_get(v, "big")) == INT64_MAX);
    assert_true(json_is_true(json_object_get(v, "t")));
    assert_int_equal(json_array_size(json_object_get(v, "list")), 4);
    json_decref(v);
    wp_buf_free(&b);
}

/* Any bytes in, valid JSON and valid UTF-8 out; the string reads back as
 * wp_utf8_repair of the input. Reals read back exactly. */
static void test_json_writer_strings_and_reals(void **state)
{
    uint32_t seed = 12345;
    for (int round = 0; round < 2000; round++) {
        char in[64];
        size_t n = (size_t)(round % 64);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = (char)(seed >> 16);
        }
        wp_buf b = {0}, want = {0};
        wp_json j;
        wp_json_init(&j, &b);
        wp_json_arr_begin(&j, NULL);
        wp_json_strn(&j, NULL, in, n);
        seed = seed * 1103515245u + 12345u;
        double d = ldexp((double)(seed | 1), (int)(seed % 200) - 100) / 3.0;
        wp_json_real(&j, NULL, d);
        wp_json_real(&j, NULL, (double)(round % 7) - 3.0); /* integral: 3.0, -0.0 ... */
        wp_json_arr_end(&j);
        assert_int_equal(wp_json_finish(&j), 0);
        assert_true(wp_utf8_valid(b.data, b.len));
        json_error_t je;
        json_t *v = json_loadb(b.data, b.len, JSON_ALLOW_NUL, &je);
        if (v == NULL)
            fail_msg("round %d: %s: %s", round, je.text, b.data);
        assert_true(wp_utf8_repair(in, n, &want) >= 0);
        json_t *s = json_array_get(v, 0);
        assert_int_equal(json_string_length(s), want.len);
        assert_memory_equal(json_string_value(s), want.data ? want.data : "", want.len);
        assert_true(json_is_real(json_array_get(v, 1)) &&
                    json_real_value(json_array_get(v, 1)) == d);
        assert_true(json_is_real(json_array_get(v, 2)));
        json_decref(v);
        wp_buf_free(&b);
        wp_buf_free(&want);
    }
}

/* The same document built with jansson and with wp_json: identical bytes,
 * compact and indented (what converting a jansson site relies on). */
static json_t *jansson_doc(void)
{
    json_t *o = json_object(), *a = json_array();
    json_object_set_new(o, "s", json_stringn("a\x01\x1f\x7f\n/\"\\ caf\xC3\xA9", 14));
    json_object_set_new(o, "r", json_real(0.1));
    json_object_set_new(o, "i", json_real(3));
    json_object_set_new(o, "n", json_integer(-42));
    json_object_set_new(o, "f", json_false());
    json_object_set_new(o, "z", json_null());
    json_array_append_new(a, json_integer(1));
    json_array_append_new(a, json_object());
    json_array_append_new(a, json_array());
    json_array_append_new(a, json_real(2.5e-300));
    json_object_set_new(o, "a", a);
    json_object_set_new(o, "e", json_object());
    return o;
}

static void wp_doc(wp_json *j, int digits)
{
    wp_json_obj_begin(j, NULL);
    wp_json_strn(j, "s", "a\x01\x1f\x7f\n/\"\\ caf\xC3\xA9", 14);
    wp_json_real_prec(j, "r", 0.1, digits);
    wp_json_real_prec(j, "i", 3, digits);
    wp_json_int(j, "n", -42);
    wp_json_bool(j, "f", 0);
    wp_json_null(j, "z");
    wp_json_arr_begin(j, "a");
    wp_json_int(j, NULL, 1);
    wp_json_obj_begin(j, NULL);
    wp_json_obj_end(j);
    wp_json_arr_begin(j, NULL);
    wp_json_arr_end(j);
    wp_json_real_prec(j, NULL, 2.5e-300, digits);
    wp_json_arr_end(j);
    wp_json_obj_begin(j, "e");
    wp_json_obj_end(j);
    wp_json_obj_end(j);
}

static void test_json_writer_matches_jansson(void **state)
{
    static const struct {
        size_t flags;
        int indent, digits;
    } modes[] = {
        {JSON_COMPACT | JSON_PRESERVE_ORDER, 0, 17},
        {JSON_INDENT(2) | JSON_PRESERVE_ORDER, 2, 17},
        {JSON_INDENT(1) | JSON_PRESERVE_ORDER, 1, 17},
        {JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8), 0, 8},
    };
    json_t *doc = jansson_doc();
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        char *want = json_dumps(doc, modes[m].flags);
        wp_buf b = {0};
        wp_json j;
        assert_non_null(want);
        wp_json_init(&j, &b);
        wp_json_set_indent(&j, modes[m].indent);
        wp_doc(&j, modes[m].digits);
        assert_int_equal(wp_json_finish(&j), 0);
        assert_string_equal(b.data, want);
        free(want);
        wp_buf_free(&b);
    }
    json_decref(doc);
}

/* A jansson tree written through wp_json (wp_json_tree_text) comes out as
 * jansson's own bytes, in every layout: insertion order or sorted keys,
 * compact or indented, 17 or 8 digits, UTF-8 or ASCII escapes (with a
 * surrogate pair above U+FFFF). */
static void test_json_tree_matches_jansson(void **state)
{
    static const struct {
        size_t jflags;
        int wflags;
    } modes[] = {
        {JSON_COMPACT | JSON_PRESERVE_ORDER, WP_JSON_PREC(17)},
        {JSON_INDENT(2) | JSON_SORT_KEYS, WP_JSON_INDENT(2) | WP_JSON_SORT_KEYS | WP_JSON_PREC(17)},
        {JSON_INDENT(1) | JSON_SORT_KEYS | JSON_REAL_PRECISION(8),
         WP_JSON_INDENT(1) | WP_JSON_SORT_KEYS | WP_JSON_PREC(8)},
        {JSON_COMPACT | JSON_ENSURE_ASCII, WP_JSON_ASCII | WP_JSON_PREC(17)},
    };
    json_t *doc = jansson_doc();
    json_object_set_new(doc, "u", json_string("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80 z"));
    json_object_set_new(doc, "B", json_true());
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        char *want = json_dumps(doc, modes[m].jflags);
        char *got = wp_json_tree_text(doc, modes[m].wflags);
        assert_non_null(want);
        assert_non_null(got);
        assert_string_equal(got, want);
        free(want);
        free(got);
    }
    /* default reals: the shortest exact form */
    json_t *r = json_pack("[f, f, f]", 0.1, 3.0, 1e-5);
    char *got = wp_json_tree_text(r, 0);
    assert_string_equal(got, "[0.1,3.0,0.00001]");
    free(got);
    json_decref(r);
    /* too deep for the writer: NULL, not a truncated text */
    json_t *deep = json_array(), *cur = deep;
    for (int i = 0; i < WP_JSON_DEPTH; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    assert_null(wp_json_tree_text(deep, 0));
    assert_null(wp_json_tree_text(NULL, 0));
    json_decref(deep);
    json_decref(doc);
}

/* The decoder behind ASCII escapes: lengths and code points, and 0 for
 * every invalid form (overlong, surrogate, above U+10FFFF, truncated). */
static void test_utf8_get(void **state)
{
    uint32_t cp = 0;
    assert_int_equal(wp_utf8_get("A", 1, &cp), 1);
    assert_int_equal(cp, 0x41);
    assert_int_equal(wp_utf8_get("\xC3\xA9", 2, &cp), 2);
    assert_int_equal(cp, 0xE9);
    assert_int_equal(wp_utf8_get("\xE2\x82\xAC", 3, &cp), 3);
    assert_int_equal(cp, 0x20AC);
    assert_int_equal(wp_utf8_get("\xF4\x8F\xBF\xBF", 4, &cp), 4);
    assert_int_equal(cp, 0x10FFFF);
    assert_int_equal(wp_utf8_get("\xC0\x80", 2, &cp), 0);         /* overlong NUL */
    assert_int_equal(wp_utf8_get("\xED\xA0\x80", 3, &cp), 0);     /* surrogate */
    assert_int_equal(wp_utf8_get("\xF4\x90\x80\x80", 4, &cp), 0); /* > U+10FFFF */
    assert_int_equal(wp_utf8_get("\xE2\x82", 2, &cp), 0);         /* truncated */
    assert_int_equal(wp_utf8_get("", 0, &cp), 0);
}

/* ASCII mode writes invalid input as \uFFFD, like the UTF-8 mode writes
 * U+FFFD. */
static void test_json_ascii_repairs(void **state)
{
    wp_buf b = {0};
    wp_json j;
    wp_json_init(&j, &b);
    wp_json_set_ascii(&j, 1);
    wp_json_strn(&j, NULL,
                 "a\xFF"
                 "b\xC3",
                 4);
    assert_int_equal(wp_json_finish(&j), 0);
    assert_string_equal(b.data, "\"a\\uFFFDb\\uFFFD\"");
    wp_buf_free(&b);
}

/* Misuse is refused, and the first error sticks. */
static void test_json_writer_errors(void **state)
{
    wp_buf b = {0};
    wp_json j;
    wp_json_init(&j, &b);
    wp_json_arr_begin(&j, NULL);
    assert_int_equal(wp_json_int(&j, "key", 1), WP_EINVAL); /* a key in an array */
    assert_int_equal(wp_json_arr_end(&j), WP_EINVAL);       /* sticky */
    assert_int_equal(wp_json_finish(&j), WP_EINVAL);
    wp_buf_reset(&b);
    wp_json_init(&j, &b);
    wp_json_obj_begin(&j, NULL);
    assert_int_equal(wp_json_int(&j, NULL, 1), WP_EINVAL); /* no key in an object */
    wp_json_init(&j, &b);
    wp_json_obj_begin(&j, NULL);
    assert_int_equal(wp_json_arr_end(&j), WP_EINVAL); /* ] closing { */
    wp_json_init(&j, &b);
    wp_json_obj_begin(&j, NULL);
    assert_int_equal(wp_json_finish(&j), WP_EINVAL); /* unclosed */
    wp_json_init(&j, &b);
    assert_int_equal(wp_json_finish(&j), WP_EINVAL); /* nothing */
    wp_json_init(&j, &b);
    wp_json_int(&j, NULL, 1);
    assert_int_equal(wp_json_int(&j, NULL, 2), WP_EINVAL); /* two top-level values */
    wp_json_init(&j, &b);
    int rc = 0;
    for (int i = 0; i <= WP_JSON_DEPTH && rc == 0; i++)
        rc = wp_json_arr_begin(&j, NULL);
    assert_int_equal(rc, WP_ELIMIT);
    wp_buf_free(&b);
}

/* Every public status code of every module, with the range common/wp.h
 * gives its module. A code added to a public header must be added here
 * (wp.h says so). */
static const struct status_code {
    const char *name;
    int code;
    int lo, hi; /* the module's range, inclusive */
} status_codes[] = {
#define CODE(c, lo, hi)                                                                            \
    {                                                                                              \
#c, c, lo, hi                                                                              \
    }
    CODE(WP_ENOMEM, -99, -1),
    CODE(WP_EIO, -99, -1),
    CODE(WP_EINVAL, -99, -1),
    CODE(WP_ELIMIT, -99, -1),
    CODE(WP_ESTOP, -99, -1),
    CODE(WP_ENOENT, -99, -1),
    CODE(WP_EFORMAT, -99, -1),
    CODE(CAT_ESQL, -199, -100),
    CODE(CAT_ENEWER, -199, -100),
    CODE(CAT_ELOCKED, -199, -100),
    CODE(CAT_ENOCORPUS, -199, -100),
    CODE(CAT_EMERGED, -199, -100),
    CODE(CAT_ECONFLICT, -199, -100),
    CODE(ST_ECORRUPT, -299, -200),
    CODE(IMG_ENOTIMAGE, -399, -300),
    CODE(IMG_EUNSUPPORTED, -399, -300),
    CODE(IMG_ECORRUPT, -399, -300),
    CODE(IMG_ETOOBIG, -399, -300),
    CODE(NET_ECURL, -499, -400),
    CODE(NET_EBADCIDR, -499, -400),
    CODE(SHARD_ECHANGED, -599, -500),
    CODE(SHARD_ETAR, -599, -500),
    CODE(CLIP_EFORMAT, -649, -600), /* clip: model -600 .. -649 */
    CODE(CLIP_EMODEL, -649, -600),
    CODE(CLIP_EUNSUP, -649, -600),
    CODE(CLIP_TOK_EVOCAB, -659, -650), /* tokenizer -650 .. -659 */
    CODE(CLIP_HUB_EHTTP, -699, -660),  /* hub -660 .. -699 */
    CODE(CLIP_HUB_EVERIFY, -699, -660),
    CODE(CLIP_HUB_ENOFILES, -699, -660),
    CODE(CRAWL_EPARSE, -799, -700),
    CODE(CRAWL_ECORRUPT, -799, -700),
    CODE(CRAWL_ENET, -799, -700),
    CODE(CRAWL_EINPUT, -799, -700),
    CODE(ADD_ECOLUMN, -899, -800), /* add */
    CODE(ADD_ESTREAM, -899, -800),
    CODE(ADD_EINPUT, -899, -800),
    CODE(EMB_EFORMAT, -1199, -1100), /* emb */
    CODE(EMB_EMISMATCH, -1199, -1100),
    CODE(DD_EFORMAT, -1399, -1300), /* dedup */
    CODE(DD_EMODEL, -1399, -1300),
    CODE(DD_EAGAINST, -1399, -1300),
    CODE(FLT_ENOSCORES, -1499, -1400), /* filter */
    CODE(FLT_EMODEL, -1499, -1400),
    CODE(FLT_ELIST, -1499, -1400),
    CODE(FLT_EPRESET, -1499, -1400),
    CODE(FLT_ERULE, -1499, -1400),
    CODE(QRY_ENOLIST, -1549, -1500), /* balance: queries -1500 .. -1549 */
    CODE(QRY_EENTRY, -1549, -1500),
    CODE(QRY_ETOOMANY, -1549, -1500),
    CODE(BAL_ENOLANG, -1599, -1550), /* balancing -1550 .. -1599 */
    CODE(BAL_EOPTS, -1599, -1550),
    CODE(AUD_ELEXICON, -1699, -1600),
    CODE(AUD_ELABELS, -1699, -1600),
    CODE(AUD_ENOEMB, -1699, -1600),
    CODE(MRG_EUNFINISHED, -1799, -1700), /* merge */
    CODE(MRG_ESAME, -1799, -1700),
    CODE(PQ_EFORMAT, -1899, -1800), /* parquet */
    CODE(PQ_EUNSUPPORTED, -1899, -1800),
    CODE(PQ_ECRC, -1899, -1800),
    CODE(PQ_ECODEC, -1899, -1800),
    CODE(PQ_ENOCOL, -1899, -1800),
    CODE(PQ_ENESTED, -1899, -1800),
    CODE(PQ_ETYPE, -1899, -1800),
#undef CODE
};

static void test_status_codes_unique_and_in_range(void **state)
{
    size_t n = sizeof status_codes / sizeof status_codes[0];
    for (size_t i = 0; i < n; i++) {
        const struct status_code *a = &status_codes[i];
        if (a->code < a->lo || a->code > a->hi)
            fail_msg("%s = %d is outside its module's range %d..%d (common/wp.h)", a->name, a->code,
                     a->lo, a->hi);
        for (size_t j = i + 1; j < n; j++)
            if (a->code == status_codes[j].code)
                fail_msg("%s and %s are both %d", a->name, status_codes[j].name, a->code);
    }
    /* The ranges themselves do not overlap (one owner per number). */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (status_codes[i].lo != status_codes[j].lo &&
                status_codes[i].lo <= status_codes[j].hi &&
                status_codes[j].lo <= status_codes[i].hi)
                fail_msg("ranges of %s and %s overlap", status_codes[i].name, status_codes[j].name);
}

/* near:ID / semantic:ID count by kind; every other reason is whole. */
static void test_reason_kind_groups_dedup_groups_only(void **state)
{
    (void)state;
    assert_int_equal(wp_reason_kind_len("near:1234"), 4);
    assert_int_equal(wp_reason_kind_len("semantic:7"), 8);
    assert_int_equal(wp_reason_kind_len("exact"), 5);
    assert_int_equal(wp_reason_kind_len("contaminated:coco"), 17);
    assert_int_equal(wp_reason_kind_len("contaminated:2024"), 17); /* a set, not a group */
    assert_int_equal(wp_reason_kind_len("near:"), 5);
    assert_int_equal(wp_reason_kind_len("near:12a"), 8);
    assert_int_equal(wp_reason_kind_len("nearby:12"), 9);
    assert_int_equal(wp_reason_kind_len(""), 0);
    assert_int_equal(wp_reason_kind_len(NULL), 0);
}

/* --part I/N: parsing takes exactly "I/N" with 1 <= I <= N. */
static void test_part_parse(void **state)
{
    (void)state;
    wp_part p = {7, 7};
    assert_int_equal(wp_part_parse("2/5", &p), 0);
    assert_int_equal(p.i, 2);
    assert_int_equal(p.n, 5);
    assert_int_equal(wp_part_parse("1/1", &p), 0);
    assert_true(wp_part_all(&p));
    static const char *const bad[] = {"",     "1",    "0/3",  "4/3", "1/0",       "1/3x", "-1/3",
                                      "1//3", " 1/3", "1/3 ", "a/b", "1/2000000", "1/"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        p = (wp_part){9, 9};
        assert_int_equal(wp_part_parse(bad[k], &p), WP_EINVAL);
        assert_int_equal(p.i, 9); /* unchanged */
    }
}

/* Every key is in exactly one of the N parts, for N = 1..8, and the parts
 * of uid keys are about even (bounded: no part over twice its share). */
static void test_part_each_key_in_one_part(void **state)
{
    (void)state;
    for (int n = 1; n <= 8; n++) {
        int64_t per[8] = {0};
        for (int k = 0; k < 4000; k++) {
            uint8_t uid[WP_UID_LEN];
            char hex[WP_UID_HEX + 1], txt[32];
            int in = 0;
            snprintf(txt, sizeof txt, "caption %d", k);
            assert_int_equal(wp_pair_uid("http://a/x.jpg", 14, txt, strlen(txt), hex), 0);
            assert_int_equal(wp_unhex(hex, WP_UID_LEN, uid), 0);
            assert_true(wp_part_key_uid(uid) == wp_part_key_hex(hex));
            for (int i = 1; i <= n; i++) {
                wp_part p = {i, n};
                if (wp_part_has(&p, wp_part_key_uid(uid))) {
                    in++;
                    per[i - 1]++;
                }
            }
            assert_int_equal(in, 1);
        }
        for (int i = 0; i < n; i++)
            assert_true(per[i] > 0 && per[i] < 2 * 4000 / n);
    }
}

/* The host key: the same for every URL of a host, whatever the path,
 * port, userinfo or case; different hosts differ. */
static void test_part_host_key(void **state)
{
    (void)state;
#define HK(u) wp_part_key_host(u, strlen(u))
    uint64_t a = HK("http://example.com/a.jpg");
    assert_true(HK("https://EXAMPLE.com:8443/b/c.png?x=1") == a);
    assert_true(HK("http://user:pw@example.com/") == a);
    assert_true(HK("http://example.com") == a);
    assert_true(HK("http://example.com#frag") == a);
    assert_true(HK("http://example.org/a.jpg") != a);
    assert_true(HK("http://[::1]:8080/x") == HK("http://[::1]/y"));
    assert_true(HK("http://127.0.0.1:1/x") == HK("http://127.0.0.1:2/y"));
    assert_true(HK("http://127.0.0.1/x") == wp_fnv1a64("127.0.0.1", 9));
    assert_true(HK("no-scheme") == wp_fnv1a64("no-scheme", 9));
#undef HK
}

/* Ranges: the N ranges of 0..T-1 are contiguous, disjoint, cover all, and
 * differ in length by at most one. */
static void test_part_ranges_cover(void **state)
{
    (void)state;
    static const int64_t totals[] = {0, 1, 2, 3, 7, 10, 99, 1000, INT64_MAX / 2};
    for (size_t t = 0; t < sizeof totals / sizeof totals[0]; t++)
        for (int n = 1; n <= 9; n++) {
            int64_t next = 0, minlen = INT64_MAX, maxlen = 0;
            for (int i = 1; i <= n; i++) {
                wp_part p = {i, n};
                int64_t lo, hi;
                wp_part_range(&p, totals[t], &lo, &hi);
                assert_true(lo == next);
                assert_true(hi >= lo);
                next = hi;
                if (hi - lo < minlen)
                    minlen = hi - lo;
                if (hi - lo > maxlen)
                    maxlen = hi - lo;
            }
            assert_true(next == totals[t]);
            assert_true(maxlen - minlen <= 1);
        }
}

/* --max-memory sizes: suffixes are powers of 1024, garbage and overflow
 * refused; the default grows with workers from 2 GiB (two counted at least). */
static void test_mem_parse_and_default(void **state)
{
    wp_err err = {0};
    int64_t v = 0;
    assert_int_equal(wp_mem_parse("1073741824", &v, &err), 0);
    assert_int_equal(v, (int64_t)1 << 30);
    assert_int_equal(wp_mem_parse("700M", &v, &err), 0);
    assert_int_equal(v, (int64_t)700 << 20);
    assert_int_equal(wp_mem_parse("2GiB", &v, &err), 0);
    assert_int_equal(v, (int64_t)2 << 30);
    assert_int_equal(wp_mem_parse("64k", &v, &err), 0);
    assert_int_equal(v, 64 << 10);
    const char *bad[] = {"", "M", "-1G", "1.5G", "12Q", "3GX", "99999999999T"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(wp_mem_parse(bad[i], &v, &err), WP_EINVAL);
    assert_true(wp_mem_default(1) == wp_mem_default(2));
    assert_true(wp_mem_default(2) >= (int64_t)2 << 30);
    assert_true(wp_mem_default(2) <= wp_mem_default(4));
    wp_mem_set((int64_t)700 << 20);
    assert_true(wp_mem_is_set());
    assert_int_equal(wp_mem_budget(64), (int64_t)700 << 20);
    wp_mem_set(0);
    assert_false(wp_mem_is_set());
    assert_int_equal(wp_mem_budget(2), wp_mem_default(2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mem_parse_and_default),
        cmocka_unit_test(test_err_set_and_prefix),
        cmocka_unit_test(test_arena_alignment_and_reset),
        cmocka_unit_test(test_buf_append_printf_steal),
        cmocka_unit_test(test_sha256_known_vector),
        cmocka_unit_test(test_pair_uid_is_sha_of_url_nul_text),
        cmocka_unit_test(test_utf8_valid_rejects_bad_forms),
        cmocka_unit_test(test_utf8_repair_replaces_each_bad_char_once),
        cmocka_unit_test(test_utf8_floor_stays_on_boundary),
        cmocka_unit_test(test_vformat_cuts_on_character_boundaries),
        cmocka_unit_test(test_utf8_printable_shows_controls),
        cmocka_unit_test(test_atomic_write_and_bounded_read),
        cmocka_unit_test(test_fd_reserve_raises_or_explains),
        cmocka_unit_test(test_hex_digit_and_unhex),
        cmocka_unit_test(test_utf8_put_matches_iconv),
        cmocka_unit_test(test_status_codes_unique_and_in_range),
        cmocka_unit_test(test_reason_kind_groups_dedup_groups_only),
        cmocka_unit_test(test_json_writer_documents),
        cmocka_unit_test(test_json_writer_strings_and_reals),
        cmocka_unit_test(test_json_writer_errors),
        cmocka_unit_test(test_json_writer_matches_jansson),
        cmocka_unit_test(test_json_tree_matches_jansson),
        cmocka_unit_test(test_utf8_get),
        cmocka_unit_test(test_json_ascii_repairs),
        cmocka_unit_test(test_part_parse),
        cmocka_unit_test(test_part_each_key_in_one_part),
        cmocka_unit_test(test_part_host_key),
        cmocka_unit_test(test_part_ranges_cover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
