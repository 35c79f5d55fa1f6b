/*
 * crawl/prefilter.c: shrinking a page before the HTML parser sees it.
 *
 * The extractor only looks at tags (and their attributes) and at the text
 * inside <title> and <figcaption>. Most of a real page's bytes are
 * something else: the bodies of <script> and <style> (raw text to an HTML
 * tokenizer, never elements), comments, and running text. libxml2 decodes
 * and copies every one of those characters; dropping them first makes the
 * parse several times cheaper without changing what is extracted:
 *  - every tag is kept, in order; the start tags whose attributes we read
 *    (img, source, meta, base, html, and a/area when links are wanted) are
 *    copied byte for byte, the others as a bare <name> (quoted values may
 *    contain '<' and '>', so a tag's end is found exactly as libxml2's
 *    start-tag parser finds it, bogus attributes included);
 *  - a doctype is copied, its end found as htmlParseDocTypeDecl finds
 *    it (quotes hide '>' only in the SYSTEM/PUBLIC literals); after a
 *    doctype in content libxml2 reads a '<' that opens no comment, PI or
 *    element as text, "</x>" included, so what stands there is passed on
 *    as it reads it (a comment or PI whole, a blank run as ' ');
 *  - text inside <title> and <figcaption> is copied, comments and PIs
 *    there too (dropping one could join a '<' or '&' before it with the
 *    text after it); such an element is left when its end tag closes it
 *    as libxml2's htmlAutoCloseOnClose would: not past a <div>, <td>,
 *    <table>... opened inside it (their end priority is higher);
 *  - script/style bodies end at the first "</script" / "</style" (HTML's
 *    script data and RAWTEXT states), comments at the first "-->" or
 *    "--!>" (comment_end); a "<script/>" has no body, as libxml2 reads
 *    it (libxml2's exceptions, end tags at the start of the body and
 *    "</scripts", are left to the plain path: raw_text_end);
 *  - running text is dropped, but not its effect on the tree: character
 *    data that is not all blanks while the open element is <html> or
 *    <head> (or none) makes libxml2 close the head and open body and a
 *    <p> (htmlCheckParagraph), which moves every element after it. The
 *    prefilter does not track the open element, so each text run that
 *    would do so wherever it stood is passed on as one '.' (see
 *    text_effect for what counts).
 * tests/unit/test_extract.c checks that extraction with and without the
 * prefilter gives the same result on every test page.
 *
 * The tags it passes with their attributes are cut to crawl_tag_caps
 * (attributes and bytes per tag) on the way: libxml2's duplicate-attribute
 * check is quadratic in a tag's attributes. crawl_cap_tags does the same
 * alone for pages parsed whole.
 */
#include "crawl_int.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* Case-insensitive search for the ASCII needle (lower case) in s[0..n). */
static const char *find_ci(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    const char *end = s + n;
    while (s + k <= end) {
        const char *lt = memchr(s, needle[0], (size_t)(end - s));
        if (lt == NULL || lt + k > end)
            return NULL;
        if (strncasecmp(lt, needle, k) == 0)
            return lt;
        s = lt + 1;
    }
    return NULL;
}

static int blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int name_char(unsigned char c)
{
    return c < 0x80 && (isalnum(c) || c == ':' || c == '-' || c == '_' || c == '.');
}

/* One attribute at p[i] (a name, then optionally '=' and a value, quoted
 * (quotes may hide '>') or not) or one bogus item (skipped up to the next
 * blank, '>' or "/>"), as libxml2's htmlParseStartTag walks it; p[i] is
 * neither blank nor the tag's end. Returns the index after it (n when a
 * quoted value is unterminated); *is_attr: it was an attribute. */
static size_t tag_item_end(const char *p, size_t i, size_t n, int *is_attr)
{
    unsigned char c = (unsigned char)p[i];
    *is_attr = c < 0x80 && (isalpha(c) || c == '_' || c == ':' || c == '.');
    if (*is_attr) {
        while (i < n && name_char((unsigned char)p[i]))
            i++;
        while (i < n && blank(p[i]))
            i++;
        if (i < n && p[i] == '=') {
            i++;
            while (i < n && blank(p[i]))
                i++;
            if (i < n && (p[i] == '"' || p[i] == '\'')) {
                const char *q = memchr(p + i + 1, p[i], n - i - 1);
                return q == NULL ? n : (size_t)(q - p) + 1;
            }
            while (i < n && !blank(p[i]) && p[i] != '>')
                i++;
        }
        return i;
    }
    while (i < n && !blank(p[i]) && p[i] != '>' && !(p[i] == '/' && i + 1 < n && p[i + 1] == '>'))
        i++;
    return i;
}

/* Where a start tag ends (the index of its '>', or n), found the way
 * libxml2's htmlParseStartTag walks it (tag_item_end). i is just after the
 * element name. *self_closed: the tag ended in "/>" outside any attribute
 * value (libxml2 then opens and closes the element at once). *nattrs: the
 * attributes it holds (duplicates included). */
static size_t start_tag_end(const char *p, size_t i, size_t n, int *self_closed, size_t *nattrs)
{
    *self_closed = 0;
    *nattrs = 0;
    for (;;) {
        int is_attr;
        while (i < n && blank(p[i]))
            i++;
        if (i >= n)
            return n;
        if (p[i] == '>')
            return i;
        if (p[i] == '/' && i + 1 < n && p[i + 1] == '>') {
            *self_closed = 1;
            return i + 1;
        }
        i = tag_item_end(p, i, n, &is_attr);
        *nattrs += (size_t)is_attr;
    }
}

/* 1 when the start tag p[j..stop) with nattrs attributes is over a cap. */
static int over_caps(const crawl_tag_caps *caps, size_t j, size_t stop, size_t nattrs)
{
    return caps != NULL && (nattrs > (size_t)caps->max_attrs || stop - j > caps->max_tag);
}

/* Appends the start tag p[j..e] (ne just after its name, e the index of
 * its '>' or n) keeping only its first caps->max_attrs attributes and
 * caps->max_tag bytes; what is dropped is counted in caps. libxml2 keeps
 * the first of duplicate attributes, so what it reads from the kept ones
 * is unchanged. Returns 0 or WP_ENOMEM. */
static int copy_capped(const char *p, size_t j, size_t ne, size_t e, size_t n, int self_closed,
                       crawl_tag_caps *caps, wp_buf *out)
{
    size_t i = ne, kept = ne - j, nattr = 0;
    int full = 0;
    if (wp_buf_append(out, p + j, ne - j) != 0)
        return WP_ENOMEM;
    for (;;) {
        size_t s = i, t;
        int is_attr;
        while (i < n && blank(p[i]))
            i++;
        if (i >= n || p[i] == '>' || (p[i] == '/' && i + 1 < n && p[i + 1] == '>'))
            break;
        t = tag_item_end(p, i, n, &is_attr);
        nattr += (size_t)is_attr;
        if (!full && nattr <= (size_t)caps->max_attrs && kept + (t - s) <= caps->max_tag) {
            if (wp_buf_append(out, p + s, t - s) != 0)
                return WP_ENOMEM;
            kept += t - s;
        } else {
            full = 1; /* nothing after the first item dropped is kept */
            caps->attrs_dropped += (uint64_t)is_attr;
        }
        i = t;
    }
    if (e < n && wp_buf_append(out, self_closed ? "/>" : ">", self_closed ? 2 : 1) != 0)
        return WP_ENOMEM;
    return 0;
}

#define PF_UNSURE ((size_t)-1)

/* Just after the comment whose "<!--" ends at k, as htmlParseComment
 * (libxml2 2.9.14) ends it: at the first "-->" or "--!>" after k ("<!-->"
 * does not end there); an unterminated one runs to the end (n). */
static size_t comment_end(const char *p, size_t k, size_t n)
{
    while (k + 3 <= n) {
        const char *d = memmem(p + k, n - k, "--", 2);
        if (d == NULL)
            return n;
        size_t s = (size_t)(d - p);
        if (s + 2 < n && p[s + 2] == '>')
            return s + 3;
        if (s + 3 < n && p[s + 2] == '!' && p[s + 3] == '>')
            return s + 4;
        k = s + 1;
    }
    return n;
}

/* Just after a quoted literal of a doctype (htmlParseSystemLiteral,
 * htmlParsePubidLiteral: to the matching quote, whatever is inside; an
 * unterminated one runs to the end), or i when there is none. */
static size_t literal_end(const char *p, size_t i, size_t n)
{
    if (i >= n || (p[i] != '"' && p[i] != '\''))
        return i;
    const char *q = memchr(p + i + 1, p[i], n - i - 1);
    return q ? (size_t)(q - p) + 1 : n;
}

static int keyword_at(const char *p, size_t i, size_t n, const char *kw)
{
    return n - i >= 6 && strncasecmp(p + i, kw, 6) == 0;
}

/* Where "<!DOCTYPE ..." ends (the index of its '>', or n), read as
 * htmlParseDocTypeDecl reads it: i is just after "<!DOCTYPE"; blanks, a
 * name, blanks, then SYSTEM "literal" or PUBLIC "literal" ["literal"]
 * (only there may quotes hide a '>'), then anything up to the first '>'.
 * PF_UNSURE when the name meets a non-ASCII character (or a NUL, which
 * becomes U+FFFD): whether that is a name character is up to libxml2's
 * Unicode tables. */
static size_t doctype_end(const char *p, size_t i, size_t n)
{
    while (i < n && blank(p[i]))
        i++;
    unsigned char c = i < n ? (unsigned char)p[i] : '>';
    if (c >= 0x80 || c == 0)
        return PF_UNSURE;
    if (isalpha(c) || c == '_' || c == ':') {
        while (i < n && name_char((unsigned char)p[i]))
            i++;
        if (i < n && ((unsigned char)p[i] >= 0x80 || p[i] == 0))
            return PF_UNSURE;
        while (i < n && blank(p[i]))
            i++;
        if (keyword_at(p, i, n, "system") || keyword_at(p, i, n, "public")) {
            int pub = (p[i] | 0x20) == 'p';
            i += 6;
            while (i < n && blank(p[i]))
                i++;
            i = literal_end(p, i, n);
            if (pub) {
                while (i < n && blank(p[i]))
                    i++;
                i = literal_end(p, i, n);
            }
        }
    }
    const char *gt = i < n ? memchr(p + i, '>', n - i) : NULL;
    return gt ? (size_t)(gt - p) : n;
}

/* libxml2 hands character data over in pieces of this many bytes
 * (HTML_PARSER_BIG_BUFFER_SIZE); a full piece of blanks is not followed
 * by '<', so it counts as text, not as blanks (areBlanks). */
#define PF_TEXT_PIECE 1000

enum {
    PF_TEXT_NONE, /* the run cannot change the tree */
    PF_TEXT_MARK, /* it can: pass one '.' on */
    PF_TEXT_COPY  /* only the parser can tell: pass s[*from..n) on */
};

/* What the character data s[0..n) (a run between two pieces of markup)
 * does to libxml2's tree, mirroring htmlParseCharData, areBlanks and
 * htmlParseReference: blanks ending at '<' or at the end do nothing;
 * C0 controls and U+FFFE/U+FFFF are not XML characters and are dropped
 * uncounted; blanks ending at '&', 1000 blanks in one run, or any other
 * character (a NUL too: the page's NULs become U+FFFD) make a paragraph.
 * A run that starts with "&#" is copied: an invalid character reference
 * ("&#0;") is dropped without effect, and telling which are invalid is
 * the parser's job. *prolog: the document has seen nothing but blanks,
 * comments, PIs and one doctype yet; libxml2 skips blanks there
 * (htmlParseDocument) without counting them. '.' is the mark because it
 * cannot extend a character reference copied just before it. */
static int text_effect(const char *s, size_t n, int *prolog, size_t *from)
{
    size_t k = 0, blanks = 0;

    if (*prolog) {
        while (k < n && blank(s[k]))
            k++;
        if (k == n)
            return PF_TEXT_NONE;
        *prolog = 0;
    }
    for (; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if (blank((char)c)) {
            if (++blanks >= PF_TEXT_PIECE)
                return PF_TEXT_MARK;
        } else if (c == '&') {
            if (blanks > 0 || k + 1 >= n || s[k + 1] != '#')
                return PF_TEXT_MARK;
            *from = k;
            return PF_TEXT_COPY;
        } else if (c == 0xEF && k + 2 < n && (unsigned char)s[k + 1] == 0xBF &&
                   ((unsigned char)s[k + 2] & 0xFE) == 0xBE) {
            k += 2; /* U+FFFE, U+FFFF */
        } else if (c >= 0x20 || c == 0) {
            return PF_TEXT_MARK;
        }
    }
    return PF_TEXT_NONE;
}

static int name_is(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

static int name_start(unsigned char c)
{
    return c < 0x80 && (isalpha(c) || c == '_' || c == ':' || c == '.');
}

/* Where the body of a <script> or <style> starting at i ends: the index
 * of the end tag's '<', n when there is none, PF_UNSURE when it depends on
 * which elements are open. libxml2 (htmlParseContentInternal with
 * htmlParseScript, recovering) reads the body up to the first "</script"
 * (close = "</script" or "</style"), but an end tag right at the start
 * of the body is parsed as one, and may close an open element, the
 * script with it; so is "</script" followed by more name characters,
 * and after that ignored end tag the body goes on. A "</" with no name
 * after it is dropped there. Only the ordinary cases are followed. */
static size_t raw_text_end(const char *p, size_t i, size_t n, const char *close)
{
    size_t k = strlen(close);
    while (i + 1 < n && p[i] == '<' && p[i + 1] == '/') {
        if (i + 2 < n && name_start((unsigned char)p[i + 2])) {
            size_t e = i + 2;
            while (e < n && name_char((unsigned char)p[e]))
                e++;
            return name_is(p + i + 2, e - i - 2, close + 2) ? i : PF_UNSURE;
        }
        i += 2;
    }
    const char *c = find_ci(p + i, n - i, close);
    if (c == NULL)
        return n;
    if ((size_t)(c - p) + k < n && name_char((unsigned char)c[k]))
        return PF_UNSURE;
    return (size_t)(c - p);
}

/* The elements libxml2 gives an end priority above the default 100
 * (htmlEndPriority; <title> and <figcaption> have 100): a misplaced end
 * tag does not close them, and while one is open above a <title> or
 * <figcaption>, that element's end tag is ignored. pf_hi_name[c] is the
 * name of code c, pf_hi_prio[c] its priority; code 0 is any other. */
static const char *const pf_hi_name[] = {"",      "div",   "td",    "th",   "tr",   "thead",
                                         "tbody", "tfoot", "table", "head", "body", "html"};
static const short pf_hi_prio[] = {100, 150, 160, 160, 170, 180, 180, 180, 190, 200, 200, 220};

/* How many of those the prefilter follows inside one kept element; a page
 * with more falls back to the plain path. */
#define PF_HI_MAX 64

static int hi_code(const char *name, size_t nl)
{
    if (nl < 2 || nl > 5)
        return 0;
    for (int c = 1; c < (int)(sizeof pf_hi_name / sizeof *pf_hi_name); c++)
        if (name_is(name, nl, pf_hi_name[c]))
            return c;
    return 0;
}

/* Start tags whose attributes extraction reads; every other start tag is
 * passed on as a bare <name> (attributes never change how libxml2 builds
 * the tree, only names do). */
static int wanted_attrs(const char *name, size_t nl, int keep_links)
{
    switch (nl) {
    case 1:
        return keep_links && (name[0] == 'a' || name[0] == 'A');
    case 3:
        return name_is(name, nl, "img");
    case 4:
        return name_is(name, nl, "meta") || name_is(name, nl, "base") ||
               name_is(name, nl, "html") || (keep_links && name_is(name, nl, "area"));
    case 6:
        return name_is(name, nl, "source");
    default:
        return 0;
    }
}

int crawl_cap_tags(const char *p, size_t n, crawl_tag_caps *caps, wp_buf *out)
{
    size_t i = 0, done = 0;
    int wrote = 0;
    while (i < n) {
        const char *lt = memchr(p + i, '<', n - i);
        size_t j, ne, e, stop, na;
        int sc;
        if (lt == NULL)
            break;
        j = (size_t)(lt - p);
        ne = j + 1;
        /* Comments and script/style bodies hold no tags (as the prefilter
         * reads them). */
        if (n - j >= 4 && memcmp(p + j, "<!--", 4) == 0) {
            i = comment_end(p, j + 4, n);
            continue;
        }
        if (ne >= n ||
            ((unsigned char)(p[ne] | 0x20) < 'a' || (unsigned char)(p[ne] | 0x20) > 'z')) {
            i = j + 1;
            continue;
        }
        while (ne < n && name_char((unsigned char)p[ne]))
            ne++;
        e = start_tag_end(p, ne, n, &sc, &na);
        stop = e < n ? e + 1 : n;
        if (over_caps(caps, j, stop, na)) {
            if (!wrote) {
                wp_buf_reset(out);
                wrote = 1;
            }
            if (wp_buf_append(out, p + done, j - done) != 0 ||
                copy_capped(p, j, ne, e, n, sc, caps, out) != 0)
                return WP_ENOMEM;
            done = stop;
        }
        i = stop;
        if (!sc &&
            (name_is(p + j + 1, ne - j - 1, "script") || name_is(p + j + 1, ne - j - 1, "style"))) {
            size_t re = raw_text_end(p, i, n, ne - j - 1 == 6 ? "</script" : "</style");
            if (re != PF_UNSURE)
                i = re;
        }
    }
    if (wrote && (wp_buf_append(out, p + done, n - done) != 0 ||
                  (out->data == NULL && wp_buf_reserve(out, 0) != 0)))
        return WP_ENOMEM;
    return wrote;
}

int crawl_prefilter(const char *p, size_t n, int keep_links, crawl_tag_caps *caps, wp_buf *out)
{
    size_t i = 0;
    int kept[2] = {0, 0}; /* open <title>, <figcaption> elements */
    int keep = 0;         /* kept[0] + kept[1]: text is copied */
    /* While keep > 0: the high-priority elements opened since (hi_code),
     * innermost last, as far as end tags tell; libxml2 may have closed
     * more of them (start tags close some), never fewer. */
    unsigned char hi[PF_HI_MAX];
    size_t nhi = 0;
    int prolog = 2;   /* text_effect; 1: after the doctype, 0: in content */
    int after_dt = 0; /* just after a doctype in content: see below */

    wp_buf_reset(out);
    if (wp_buf_reserve(out, n / 2 + 64) != 0)
        return WP_ENOMEM;
    while (i < n) {
        const char *lt = memchr(p + i, '<', n - i);
        size_t j = lt ? (size_t)(lt - p) : n;
        if (keep > 0) {
            if (j > i && wp_buf_append(out, p + i, j - i) != 0)
                return WP_ENOMEM;
            after_dt &= j == i;
        } else if (j > i) {
            size_t from = 0;
            int eff = text_effect(p + i, j - i, &prolog, &from);
            /* Text that does nothing still takes the place after a
             * doctype in content; a blank does so without effect. */
            if (eff == PF_TEXT_NONE && after_dt && wp_buf_putc(out, ' ') != 0)
                return WP_ENOMEM;
            after_dt = 0;
            switch (eff) {
            case PF_TEXT_MARK:
                if (wp_buf_putc(out, '.') != 0)
                    return WP_ENOMEM;
                break;
            case PF_TEXT_COPY:
                if (wp_buf_append(out, p + i + from, j - i - from) != 0)
                    return WP_ENOMEM;
                break;
            default:
                break;
            }
        }
        if (lt == NULL)
            break;
        if (j + 1 >= n) {
            /* A '<' at the very end is text, of a title or caption too. */
            if (keep > 0 && wp_buf_putc(out, '<') != 0)
                return WP_ENOMEM;
            break;
        }
        char c = p[j + 1];
        /* A doctype in content is parsed in the middle of an iteration of
         * htmlParseContentInternal, which goes on with what follows it
         * without looking for an end tag or another doctype first: there
         * a '<' not followed by "!--", '?' or a letter is one character
         * of text, "</x>" included. So that construct is passed on as
         * libxml2 reads it: a comment or a PI whole, any other '<' alone
         * (what follows is then text). */
        int dt_next = after_dt;
        after_dt = 0;
        if (dt_next && c != '?' && !(c == '!' && j + 3 < n && p[j + 2] == '-' && p[j + 3] == '-') &&
            !(((unsigned char)c | 0x20) >= 'a' && ((unsigned char)c | 0x20) <= 'z')) {
            if (wp_buf_putc(out, '<') != 0)
                return WP_ENOMEM;
            i = j + 1;
            continue;
        }
        if (c == '!') {
            if (j + 3 < n && p[j + 2] == '-' && p[j + 3] == '-') {
                i = comment_end(p, j + 4, n);
                if ((dt_next || keep > 0) && wp_buf_append(out, p + j, i - j) != 0)
                    return WP_ENOMEM;
                continue;
            }
            if (n - j >= 9 && strncasecmp(p + j + 2, "doctype", 7) == 0) {
                size_t e = doctype_end(p, j + 9, n);
                if (e == PF_UNSURE)
                    return 1; /* parse the whole page */
                /* A second doctype is content (htmlParseDocument). */
                after_dt = prolog != 2;
                prolog = prolog == 2;
                if (wp_buf_append(out, p + j, (e < n ? e + 1 : n) - j) != 0)
                    return WP_ENOMEM;
                i = e < n ? e + 1 : n;
                continue;
            }
            /* Any other "<!" is text to libxml2: fall through. */
        }
        if (c == '?') {
            /* htmlParsePI: "<?target ...>" ends at the first '>'; without
             * a target only "<?" is consumed and the rest is content. */
            unsigned char t = j + 2 < n ? (unsigned char)p[j + 2] : 0;
            if (t >= 0x80)
                return 1; /* whether libxml2 sees a target depends on its
                             Unicode letter tables: parse the whole page */
            if (isalpha(t) || t == '_' || t == ':') {
                const char *gt = memchr(p + j + 2, '>', n - j - 2);
                i = gt ? (size_t)(gt - p) + 1 : n;
            } else {
                i = j + 2;
            }
            if ((dt_next || keep > 0) && wp_buf_append(out, p + j, i - j) != 0)
                return WP_ENOMEM;
            continue;
        }
        /* Anything else starts the content, text or tag. */
        prolog = 0;
        int is_end = c == '/';
        size_t ns = j + 1 + (size_t)is_end, ne = ns;
        /* libxml2 opens an element on '<' + ASCII letter; an end tag's
         * name may also start with '_', ':' or '.' (htmlParseHTMLName). */
        unsigned char f = ne < n ? (unsigned char)p[ne] : 0;
        int letter = (f | 0x20) >= 'a' && (f | 0x20) <= 'z';
        if (ne >= n || !(letter || (is_end && (f == '_' || f == ':' || f == '.')))) {
            /* A lone '<' is text (passed to the SAX handler as such, with
             * no effect on the tree); "</" not followed by a name is
             * dropped (htmlParseEndTag). */
            if (is_end) {
                /* (Kept in a title: "<?" before it would take what
                 * follows as its target.) */
                if (keep > 0 && wp_buf_append(out, "</", 2) != 0)
                    return WP_ENOMEM;
                i = j + 2;
                continue;
            }
            if (keep > 0 && wp_buf_putc(out, '<') != 0)
                return WP_ENOMEM;
            i = j + 1;
            continue;
        }
        /* The name as libxml2 reads it (htmlParseHTMLName): ASCII letters,
         * digits and ":-_."; anything else ends it and is attribute junk. */
        while (ne < n && name_char((unsigned char)p[ne]))
            ne++;
        size_t e, nattrs = 0;
        int self_closed = 0;
        if (is_end) {
            /* htmlParseEndTag: the first '>' ends it, quotes or not. */
            const char *gt = memchr(p + ne, '>', n - ne);
            e = gt ? (size_t)(gt - p) : n;
        } else {
            e = start_tag_end(p, ne, n, &self_closed, &nattrs);
        }
        size_t stop = e < n ? e + 1 : n;
        const char *name = p + ns;
        size_t nl = ne - ns;
        if (is_end || e >= n || wanted_attrs(name, nl, keep_links)) {
            /* libxml2 checks each attribute against those before it: a
             * tag with thousands is cut to the caps first. */
            if (!is_end && over_caps(caps, j, stop, nattrs)) {
                if (copy_capped(p, j, ne, e, n, self_closed, caps, out) != 0)
                    return WP_ENOMEM;
            } else if (wp_buf_append(out, p + j, stop - j) != 0) {
                return WP_ENOMEM;
            }
        } else if (wp_buf_append(out, p + j, ne - j) != 0 ||
                   (self_closed && wp_buf_putc(out, '/') != 0) || wp_buf_putc(out, '>') != 0) {
            return WP_ENOMEM;
        }
        i = stop;
        int kw = name_is(name, nl, "title") ? 0 : name_is(name, nl, "figcaption") ? 1 : -1;
        if (keep > 0) {
            /* htmlAutoCloseOnClose: an end tag closes the elements above
             * its own unless one of them has a higher priority. */
            int hc = hi_code(name, nl);
            if (hc > 0 && !is_end && !self_closed) {
                if (nhi == PF_HI_MAX)
                    return 1; /* parse the whole page */
                hi[nhi++] = (unsigned char)hc;
            } else if (hc > 0 && is_end) {
                for (size_t k = nhi; k-- > 0;) {
                    if (hi[k] == hc) {
                        nhi = k;
                        break;
                    }
                    if (pf_hi_prio[hi[k]] > pf_hi_prio[hc])
                        break;
                }
            }
        }
        if (is_end) {
            /* An end tag closes only its own element ("</figcaption>"
             * leaves a title open), and not past a <div> or <table> ...
             * opened inside it. */
            if (kw >= 0 && kept[kw] > 0 && nhi == 0) {
                kept[kw]--;
                keep--;
            }
            continue;
        }
        /* "<script/>" is an empty element to libxml2 (an HTML5 browser
         * would read on as script; the prefilter follows the parser it
         * stands in front of). */
        if ((name_is(name, nl, "script") || name_is(name, nl, "style")) && !self_closed) {
            i = raw_text_end(p, i, n, nl == 6 ? "</script" : "</style");
            if (i == PF_UNSURE)
                return 1; /* parse the whole page */
        } else if (kw >= 0) {
            kept[kw]++;
            keep++;
        }
    }
    return 0;
}
