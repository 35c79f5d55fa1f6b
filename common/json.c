/*
 * common/json.c: the one way witpipe writes JSON (wp_json, see the policy
 * in common/wp.h): a streaming writer onto a wp_buf that places commas
 * itself, escapes strings per RFC 8259 section 7, writes only valid UTF-8
 * (invalid input bytes become U+FFFD) and never writes NaN or infinity.
 *
 * Why not jansson for writing: pairs.extra is written once per pair on the
 * crawl's hot path, where building and freeing a tree per record costs more
 * than the record, and json_dumps refuses (returns NULL for) a string with
 * invalid UTF-8 instead of repairing it. jansson stays the parser.
 */
#include "wp.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>

void wp_json_init(wp_json *j, wp_buf *b)
{
    memset(j, 0, sizeof *j);
    j->b = b;
}

/* Sets the sticky status once; returns it. */
static int fail(wp_json *j, int code)
{
    if (j->status == 0)
        j->status = code;
    return j->status;
}

static int put(wp_json *j, const char *s, size_t n)
{
    if (j->status == 0 && wp_buf_append(j->b, s, n) != 0)
        fail(j, WP_ENOMEM);
    return j->status;
}

/* A string body (no quotes): '"', '\\' and U+0000..U+001F escaped, runs of
 * other bytes copied when valid UTF-8 and repaired otherwise (a run ends
 * only at an ASCII byte, so no sequence is split). */
static int put_ascii_run(wp_json *j, const char *s, size_t n);

static int put_escaped(wp_json *j, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF"; /* upper case, as jansson writes */
    size_t i = 0;
    while (i < n && j->status == 0) {
        size_t r = i;
        while (r < n && (unsigned char)s[r] >= 0x20 && s[r] != '"' && s[r] != '\\')
            r++;
        if (r > i && j->ascii) {
            put_ascii_run(j, s + i, r - i);
            i = r;
            continue;
        }
        if (r > i) {
            if (wp_utf8_valid(s + i, r - i))
                put(j, s + i, r - i);
            else if (wp_utf8_repair(s + i, r - i, j->b) < 0)
                fail(j, WP_ENOMEM);
            i = r;
            continue;
        }
        unsigned char c = (unsigned char)s[i++];
        char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        const char *shortf = c == '"'    ? "\\\""
                             : c == '\\' ? "\\\\"
                             : c == '\n' ? "\\n"
                             : c == '\r' ? "\\r"
                             : c == '\t' ? "\\t"
                             : c == '\b' ? "\\b"
                             : c == '\f' ? "\\f"
                                         : NULL;
        if (shortf != NULL)
            put(j, shortf, 2);
        else
            put(j, e, 6);
    }
    return j->status;
}

/* A run of printable bytes in ASCII mode: ASCII copied, every other
 * character as \uXXXX, above U+FFFF as a surrogate pair (RFC 8259 section
 * 7), an invalid sequence as \uFFFD. */
static int put_ascii_run(wp_json *j, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && j->status == 0) {
        size_t r = i;
        while (r < n && (unsigned char)s[r] < 0x80)
            r++;
        if (r > i) {
            put(j, s + i, r - i);
            i = r;
            continue;
        }
        uint32_t cp = 0xFFFD;
        size_t k = wp_utf8_get(s + i, n - i, &cp);
        char e[16];
        i += k > 0 ? k : 1;
        if (cp > 0xFFFF) {
            cp -= 0x10000;
            snprintf(e, sizeof e, "\\u%04X\\u%04X", 0xD800 + (unsigned)(cp >> 10),
                     0xDC00 + (unsigned)(cp & 0x3FF));
            put(j, e, 12);
        } else {
            snprintf(e, sizeof e, "\\u%04X", (unsigned)cp);
            put(j, e, 6);
        }
    }
    return j->status;
}

void wp_json_set_ascii(wp_json *j, int on)
{
    j->ascii = on != 0;
}

void wp_json_set_indent(wp_json *j, int n)
{
    j->indent = n < 0 ? 0 : n > 16 ? 16 : n;
}

/* With an indent: a line break and depth levels of indentation. */
static int newline(wp_json *j, int depth)
{
    static const char spaces[] = "                ";
    if (j->indent == 0)
        return j->status;
    put(j, "\n", 1);
    for (int i = 0; i < depth; i++)
        put(j, spaces, (size_t)j->indent);
    return j->status;
}

/* The comma before a value and, inside an object, its key. */
static int lead(wp_json *j, const char *key)
{
    if (j->status != 0)
        return j->status;
    if (j->depth == 0) {
        if (j->done)
            return fail(j, WP_EINVAL); /* a second top-level value */
    } else {
        int in_obj = j->obj[j->depth - 1];
        if ((key != NULL) != in_obj)
            return fail(j, WP_EINVAL); /* a key in an array, or none in an object */
        if (j->count[j->depth - 1]++ > 0)
            put(j, ",", 1);
        newline(j, j->depth);
        if (in_obj) {
            put(j, "\"", 1);
            put_escaped(j, key, strlen(key));
            put(j, j->indent ? "\": " : "\":", j->indent ? 3 : 2);
        }
    }
    return j->status;
}

/* After a complete value at the top level. */
static int end_value(wp_json *j)
{
    if (j->depth == 0)
        j->done = 1;
    return j->status;
}

static int open_(wp_json *j, const char *key, int obj)
{
    if (lead(j, key) != 0)
        return j->status;
    if (j->depth == WP_JSON_DEPTH)
        return fail(j, WP_ELIMIT);
    j->obj[j->depth] = obj;
    j->count[j->depth] = 0;
    j->depth++;
    return put(j, obj ? "{" : "[", 1);
}

static int close_(wp_json *j, int obj)
{
    if (j->status != 0)
        return j->status;
    if (j->depth == 0 || j->obj[j->depth - 1] != obj)
        return fail(j, WP_EINVAL);
    j->depth--;
    if (j->count[j->depth] > 0)
        newline(j, j->depth);
    put(j, obj ? "}" : "]", 1);
    return end_value(j);
}

int wp_json_obj_begin(wp_json *j, const char *key)
{
    return open_(j, key, 1);
}

int wp_json_obj_end(wp_json *j)
{
    return close_(j, 1);
}

int wp_json_arr_begin(wp_json *j, const char *key)
{
    return open_(j, key, 0);
}

int wp_json_arr_end(wp_json *j)
{
    return close_(j, 0);
}

int wp_json_strn(wp_json *j, const char *key, const char *s, size_t n)
{
    if (s == NULL)
        return wp_json_null(j, key);
    if (lead(j, key) != 0)
        return j->status;
    put(j, "\"", 1);
    put_escaped(j, s, n);
    put(j, "\"", 1);
    return end_value(j);
}

int wp_json_str(wp_json *j, const char *key, const char *s)
{
    return wp_json_strn(j, key, s, s != NULL ? strlen(s) : 0);
}

static int put_number(wp_json *j, const char *key, const char *num)
{
    if (lead(j, key) != 0)
        return j->status;
    put(j, num, strlen(num));
    return end_value(j);
}

/* u in decimal at the end of d[0..24), returning where it starts; without
 * printf: add writes millions of kept columns. */
static char *decimal(char d[24], uint64_t u)
{
    char *w = d + 23;
    *w = '\0';
    do {
        *--w = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    return w;
}

int wp_json_int(wp_json *j, const char *key, int64_t v)
{
    char num[24];
    char *w = decimal(num, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
    if (v < 0)
        *--w = '-';
    return put_number(j, key, w);
}

int wp_json_uint(wp_json *j, const char *key, uint64_t v)
{
    char num[24];
    return put_number(j, key, decimal(num, v));
}

/* The shortest form's fast path, without printf: the smallest k with
 * r = round(|v| * 10^k) an integer below 2^53 and r / 10^k == |v| in IEEE
 * division. That division is the correctly rounded value of the decimal
 * r * 10^-k, so every correctly rounding reader (strtod, JSON parsers)
 * reads v back. Writes the decimal (with ".0" when k is 0) to num and
 * returns 1, or returns 0 when v is outside [1e-5, 1e15) or no such k is
 * found (the caller then uses %g). */
static int short_decimal(double v, char num[48])
{
    double a = fabs(v), p = 1;
    if (!(a >= 1e-5 && a < 1e15))
        return 0;
    for (int k = 0; k <= 17; k++, p *= 10) {
        double sc = a * p, r = nearbyint(sc);
        if (sc >= 9007199254740992.0)
            return 0;
        if (r / p != a)
            continue;
        char dig[24], *d = decimal(dig, (uint64_t)r), *w = num;
        int nd = (int)strlen(d);
        if (v < 0)
            *w++ = '-';
        if (nd <= k) { /* 0.000ddd */
            *w++ = '0';
            *w++ = '.';
            for (int z = 0; z < k - nd; z++)
                *w++ = '0';
            memcpy(w, d, (size_t)nd);
            w += nd;
        } else {
            memcpy(w, d, (size_t)(nd - k));
            w += nd - k;
            *w++ = '.';
            if (k == 0) {
                *w++ = '0'; /* integral: a ".0", so readers see a real */
            } else {
                memcpy(w, d + nd - k, (size_t)k);
                w += k;
            }
        }
        *w = '\0';
        return 1;
    }
    return 0;
}

/* v with "%.<digits>g"; digits 0: the shortest that reads back as v
 * (0.5 stays 0.5, and no digit is lost). printf and strtod run in the C
 * locale, which witpipe never changes. */
static int put_real(wp_json *j, const char *key, double v, int digits)
{
    char num[48];
    if (!isfinite(v))
        return wp_json_null(j, key); /* RFC 8259 section 6: no NaN, no Infinity */
    if (digits > 0) {
        snprintf(num, sizeof num, "%.*g", digits > 17 ? 17 : digits, v);
    } else if (short_decimal(v, num)) {
        return put_number(j, key, num);
    } else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(num, sizeof num, "%.*g", prec, v);
            if (strtod(num, NULL) == v)
                break;
        }
    }
    /* An integral value keeps a ".0", so that readers see a real (as
     * jansson writes it). */
    if (strpbrk(num, ".e") == NULL)
        strcat(num, ".0");
    return put_number(j, key, num);
}

int wp_json_real(wp_json *j, const char *key, double v)
{
    return put_real(j, key, v, 0);
}

int wp_json_real_prec(wp_json *j, const char *key, double v, int digits)
{
    return put_real(j, key, v, digits < 1 ? 1 : digits);
}

int wp_json_bool(wp_json *j, const char *key, int v)
{
    return put_number(j, key, v ? "true" : "false");
}

int wp_json_null(wp_json *j, const char *key)
{
    return put_number(j, key, "null");
}

int wp_json_raw(wp_json *j, const char *key, const char *json)
{
    if (json == NULL || json[0] == '\0')
        return wp_json_null(j, key);
    return put_number(j, key, json);
}

int wp_json_finish(wp_json *j)
{
    if (j->status == 0 && (j->depth != 0 || !j->done))
        fail(j, WP_EINVAL);
    return j->status;
}

/* ---- jansson trees --------------------------------------------------- */

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int wp_json_tree(wp_json *j, const char *key, const struct json_t *cv, int flags)
{
    json_t *v = (json_t *)cv; /* jansson's getters take non-const pointers */
    int digits = (flags >> 10) & 0x1F;

    if (v == NULL)
        return wp_json_null(j, key);
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        const char **keys = NULL;
        const char *k;
        json_t *m;
        if (wp_json_obj_begin(j, key) != 0)
            return j->status;
        if (n == 0)
            return wp_json_obj_end(j);
        if ((flags & WP_JSON_SORT_KEYS) == 0) {
            json_object_foreach(v, k, m)
            {
                if (wp_json_tree(j, k, m, flags) != 0)
                    return j->status;
            }
            return wp_json_obj_end(j);
        }
        if ((keys = malloc(n * sizeof *keys)) == NULL)
            return fail(j, WP_ENOMEM);
        json_object_foreach(v, k, m)
        {
            keys[i++] = k;
        }
        qsort(keys, i, sizeof *keys, cmp_key);
        for (size_t x = 0; x < i && j->status == 0; x++)
            wp_json_tree(j, keys[x], json_object_get(v, keys[x]), flags);
        free(keys);
        return wp_json_obj_end(j);
    }
    case JSON_ARRAY: {
        size_t x;
        json_t *m;
        if (wp_json_arr_begin(j, key) != 0)
            return j->status;
        json_array_foreach(v, x, m)
        {
            if (wp_json_tree(j, NULL, m, flags) != 0)
                return j->status;
        }
        return wp_json_arr_end(j);
    }
    case JSON_STRING:
        return wp_json_strn(j, key, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return wp_json_int(j, key, (int64_t)json_integer_value(v));
    case JSON_REAL:
        return put_real(j, key, json_real_value(v), digits);
    case JSON_TRUE:
        return wp_json_bool(j, key, 1);
    case JSON_FALSE:
        return wp_json_bool(j, key, 0);
    case JSON_NULL:
    default:
        return wp_json_null(j, key);
    }
}

char *wp_json_tree_text(const struct json_t *v, int flags)
{
    wp_buf b = {0};
    wp_json j;
    wp_json_init(&j, &b);
    wp_json_set_indent(&j, flags & 0x1F);
    wp_json_set_ascii(&j, (flags & WP_JSON_ASCII) != 0);
    if (v == NULL || wp_json_tree(&j, NULL, v, flags) != 0 || wp_json_finish(&j) != 0) {
        wp_buf_free(&b);
        return NULL;
    }
    return wp_buf_steal(&b);
}
