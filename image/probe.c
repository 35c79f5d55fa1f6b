/*
 * image/probe.c: identifies an image from its magic bytes and reads its
 * header (size, channels, EXIF orientation, progressive/interlaced) without
 * decoding any pixel. Every read is bounds-checked: the input is whatever a
 * web server sent.
 */
#include "image/img_int.h"

#include <string.h>

/* How far into a text document we look for "<svg" / "<html". */
#define IMG_TEXT_SNIFF_MAX 1024
/* Most IFD0 entries we read while looking for the orientation tag. */
#define IMG_EXIF_MAX_ENTRIES 512

/* The name and file extension of each IMG_FMT_*. */
static const struct {
    const char *name, *ext;
} formats[] = {
    [IMG_FMT_UNKNOWN] = {"unknown", "bin"}, [IMG_FMT_JPEG] = {"jpeg", "jpg"},
    [IMG_FMT_PNG] = {"png", "png"},         [IMG_FMT_WEBP] = {"webp", "webp"},
    [IMG_FMT_GIF] = {"gif", "gif"},         [IMG_FMT_BMP] = {"bmp", "bmp"},
    [IMG_FMT_TIFF] = {"tiff", "tif"},       [IMG_FMT_AVIF] = {"avif", "avif"},
    [IMG_FMT_SVG] = {"svg", "svg"},
};

/* The row of format; the unknown row for a value with none. */
static int format_row(int format)
{
    int n = (int)(sizeof formats / sizeof formats[0]);
    return format > 0 && format < n && formats[format].name != NULL ? format : IMG_FMT_UNKNOWN;
}

const char *img_format_name(int format)
{
    return formats[format_row(format)].name;
}

const char *img_format_ext(int format)
{
    return formats[format_row(format)].ext;
}

static int truncated(wp_err *err, const char *fmt, size_t off)
{
    return wp_err_set(err, IMG_ECORRUPT, "%s: header truncated at byte %zu", fmt, off);
}

/* Reads the orientation tag (0x0112) from IFD0 of an EXIF block (the bytes
 * after "Exif\0\0"). Returns 1..8, or 1 when absent or malformed: a broken
 * EXIF block never makes the image unusable. */
static int exif_orientation(const uint8_t *t, size_t n)
{
    if (n < 8)
        return 1;
    int le;
    if (t[0] == 'I' && t[1] == 'I')
        le = 1;
    else if (t[0] == 'M' && t[1] == 'M')
        le = 0;
    else
        return 1;
    uint32_t magic = le ? img_le16(t + 2) : img_be16(t + 2);
    if (magic != 42)
        return 1;
    uint32_t ifd = le ? img_le32(t + 4) : img_be32(t + 4);
    if (ifd < 8 || ifd > n - 2)
        return 1;
    uint32_t count = le ? img_le16(t + ifd) : img_be16(t + ifd);
    if (count > IMG_EXIF_MAX_ENTRIES)
        count = IMG_EXIF_MAX_ENTRIES;
    for (uint32_t i = 0; i < count; i++) {
        size_t e = (size_t)ifd + 2 + (size_t)i * 12;
        if (e + 12 > n)
            break;
        uint32_t tag = le ? img_le16(t + e) : img_be16(t + e);
        if (tag != 0x0112)
            continue;
        uint32_t type = le ? img_le16(t + e + 2) : img_be16(t + e + 2);
        uint32_t v;
        if (type == 3) /* SHORT, stored left-justified in the value field */
            v = le ? img_le16(t + e + 8) : img_be16(t + e + 8);
        else if (type == 4) /* LONG, seen from some writers */
            v = le ? img_le32(t + e + 8) : img_be32(t + e + 8);
        else
            return 1;
        return (v >= 1 && v <= 8) ? (int)v : 1;
    }
    return 1;
}

static int is_sof(int m)
{
    /* SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) */
    return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

static int probe_jpeg(const uint8_t *p, size_t n, img_info *info, wp_err *err)
{
    size_t off = 2; /* after SOI */
    int have_sof = 0, unsupported = 0;
    info->orientation = 1;
    info->adobe = -1;
    for (;;) {
        if (off >= n)
            break;
        if (p[off] != 0xFF) {
            if (have_sof)
                break;
            return wp_err_set(err, IMG_ECORRUPT, "jpeg: expected a marker at byte %zu", off);
        }
        while (off < n && p[off] == 0xFF) /* fill bytes may precede a marker */
            off++;
        if (off >= n)
            break;
        int m = p[off++];
        if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7))
            continue; /* standalone markers */
        if (m == 0xD9 || m == 0xDA) {
            if (!have_sof)
                return wp_err_set(err, IMG_ECORRUPT, "jpeg: %s before any frame header at byte %zu",
                                  m == 0xDA ? "SOS" : "EOI", off - 2);
            break; /* scan data follows: the header is complete */
        }
        if (off + 2 > n)
            break;
        size_t len = img_be16(p + off);
        if (len < 2)
            return wp_err_set(err, IMG_ECORRUPT, "jpeg: bad segment length %zu at byte %zu", len,
                              off);
        const uint8_t *seg = p + off + 2;
        size_t avail = n - (off + 2);
        size_t slen = len - 2;
        if (is_sof(m)) {
            if (slen < 6 || avail < 6)
                return truncated(err, "jpeg", off + 2 + (avail < 6 ? avail : slen));
            int h = (int)img_be16(seg + 1), w = (int)img_be16(seg + 3), nc = seg[5];
            if (w == 0 || h == 0)
                return wp_err_set(err, IMG_ECORRUPT, "jpeg: frame size %dx%d at byte %zu", w, h,
                                  off + 3);
            if (nc != 1 && nc != 3 && nc != 4)
                return wp_err_set(err, IMG_ECORRUPT, "jpeg: %d components at byte %zu", nc,
                                  off + 7);
            if (!have_sof) {
                /* 8-bit sequential/progressive, Huffman or arithmetic, is
                 * what libjpeg's 8-bit API decodes; lossless (SOF3/SOF11),
                 * hierarchical (SOF5-7, SOF13-15) and 12-bit are refused */
                if (seg[0] != 8 || m == 0xC3 || m == 0xCB || (m >= 0xC5 && m <= 0xC7) || m >= 0xCD)
                    unsupported = m * 256 + seg[0];
                info->width = w;
                info->height = h;
                info->channels = nc;
                info->cmyk = nc == 4;
                info->progressive = m == 0xC2 || m == 0xC6 || m == 0xCA || m == 0xCE;
                have_sof = 1;
            }
        } else if (m == 0xE1 && slen >= 6 && avail >= 6 && memcmp(seg, "Exif\0\0", 6) == 0 &&
                   info->orientation == 1) {
            size_t have = slen < avail ? slen : avail;
            info->orientation = exif_orientation(seg + 6, have - 6);
        } else if (m == 0xEE && slen >= 12 && avail >= 12 && memcmp(seg, "Adobe", 5) == 0) {
            info->adobe = seg[11]; /* Adobe TN 5116: version, flags0, flags1, transform */
        }
        if (slen > avail) {
            if (have_sof)
                break;
            return truncated(err, "jpeg", n);
        }
        off += len;
    }
    if (!have_sof)
        return truncated(err, "jpeg", n);
    if (unsupported)
        return wp_err_set(err, IMG_EUNSUPPORTED, "jpeg: SOF%d with %d-bit samples is not decoded",
                          (unsupported >> 8) - 0xC0, unsupported & 0xff);
    return 0;
}

static int probe_png(const uint8_t *p, size_t n, img_info *info, wp_err *err)
{
    if (n < 33)
        return truncated(err, "png", n);
    if (img_be32(p + 8) != 13 || memcmp(p + 12, "IHDR", 4) != 0)
        return wp_err_set(err, IMG_ECORRUPT, "png: first chunk is not IHDR at byte 8");
    uint32_t w = img_be32(p + 16), h = img_be32(p + 20);
    int depth = p[24], ct = p[25], interlace = p[28];
    if (w == 0 || h == 0 || w > 0x7fffffffu || h > 0x7fffffffu)
        return wp_err_set(err, IMG_ECORRUPT, "png: bad size %ux%u at byte 16", w, h);
    int ok_depth;
    switch (ct) {
    case 0:
        ok_depth = depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
        info->channels = 1;
        break;
    case 2:
        ok_depth = depth == 8 || depth == 16;
        info->channels = 3;
        break;
    case 3:
        ok_depth = depth == 1 || depth == 2 || depth == 4 || depth == 8;
        info->channels = 3;
        break;
    case 4:
        ok_depth = depth == 8 || depth == 16;
        info->channels = 2;
        info->has_alpha = 1;
        break;
    case 6:
        ok_depth = depth == 8 || depth == 16;
        info->channels = 4;
        info->has_alpha = 1;
        break;
    default:
        return wp_err_set(err, IMG_ECORRUPT, "png: colour type %d at byte 25", ct);
    }
    if (!ok_depth)
        return wp_err_set(err, IMG_ECORRUPT, "png: bit depth %d for colour type %d at byte 24",
                          depth, ct);
    if (interlace > 1)
        return wp_err_set(err, IMG_ECORRUPT, "png: interlace method %d at byte 28", interlace);
    info->width = (int)w;
    info->height = (int)h;
    info->progressive = interlace == 1;
    info->orientation = 1;
    /* Walk the chunks: a palette image is transparent when tRNS precedes
     * IDAT; an eXIf chunk (PNG 1.5 extensions) carries the orientation.
     * Every step advances >= 12 bytes, so the walk is bounded by n. */
    size_t off = 33;
    int seen_idat = 0;
    while (off + 8 <= n) {
        uint32_t len = img_be32(p + off);
        const uint8_t *type = p + off + 4;
        if (len > n - off - 8)
            break; /* cut short: what we have is enough for a header */
        if (memcmp(type, "tRNS", 4) == 0 && ct == 3 && !seen_idat) {
            info->has_alpha = 1;
            info->channels = 4;
        } else if (memcmp(type, "eXIf", 4) == 0) {
            info->orientation = exif_orientation(p + off + 8, len);
        } else if (memcmp(type, "IDAT", 4) == 0) {
            seen_idat = 1;
        } else if (memcmp(type, "IEND", 4) == 0) {
            break;
        }
        off += 12 + (size_t)len;
    }
    return 0;
}

static int probe_webp(const uint8_t *p, size_t n, img_info *info, wp_err *err)
{
    if (n < 30)
        return truncated(err, "webp", n);
    const uint8_t *c = p + 12; /* first chunk */
    const uint8_t *d = p + 20; /* its payload */
    info->orientation = 1;
    if (memcmp(c, "VP8 ", 4) == 0) {
        /* RFC 6386 section 9.1: 3-byte frame tag, start code, 14-bit sizes */
        if (d[0] & 1)
            return wp_err_set(err, IMG_ECORRUPT, "webp: VP8 frame is not a key frame at byte 20");
        if (d[3] != 0x9d || d[4] != 0x01 || d[5] != 0x2a)
            return wp_err_set(err, IMG_ECORRUPT, "webp: bad VP8 start code at byte 23");
        info->width = (int)(img_le16(d + 6) & 0x3fff);
        info->height = (int)(img_le16(d + 8) & 0x3fff);
        info->channels = 3;
    } else if (memcmp(c, "VP8L", 4) == 0) {
        if (d[0] != 0x2f)
            return wp_err_set(err, IMG_ECORRUPT, "webp: bad VP8L signature at byte 20");
        uint32_t bits = img_le32(d + 1);
        info->width = (int)(bits & 0x3fff) + 1;
        info->height = (int)((bits >> 14) & 0x3fff) + 1;
        info->has_alpha = (int)((bits >> 28) & 1);
        info->channels = info->has_alpha ? 4 : 3;
    } else if (memcmp(c, "VP8X", 4) == 0) {
        int flags = d[0];
        info->width = (int)img_le24(d + 4) + 1;
        info->height = (int)img_le24(d + 7) + 1;
        info->has_alpha = (flags & 0x10) != 0;
        info->channels = info->has_alpha ? 4 : 3;
        if (flags & 0x02)
            return wp_err_set(err, IMG_EUNSUPPORTED, "webp: animated WebP is not decoded");
    } else {
        return wp_err_set(err, IMG_ECORRUPT, "webp: unknown first chunk at byte 12");
    }
    if (info->width == 0 || info->height == 0)
        return wp_err_set(err, IMG_ECORRUPT, "webp: zero size at byte 26");
    if (memcmp(c, "VP8X", 4) == 0 && (d[0] & 0x08)) {
        /* the EXIF chunk usually follows the image data; RIFF chunks are
         * padded to even sizes */
        size_t off = 12;
        while (off + 8 <= n) {
            size_t len = img_le32(p + off + 4);
            if (len > n - off - 8)
                break;
            if (memcmp(p + off, "EXIF", 4) == 0) {
                const uint8_t *x = p + off + 8;
                if (len >= 6 && memcmp(x, "Exif\0\0", 6) == 0)
                    x += 6, len -= 6;
                info->orientation = exif_orientation(x, len);
                break;
            }
            off += 8 + len + (len & 1);
        }
    }
    return 0;
}

/* Case-insensitive search for needle in the first max bytes of p. */
static int text_has(const uint8_t *p, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    if (n > IMG_TEXT_SNIFF_MAX)
        n = IMG_TEXT_SNIFF_MAX;
    for (size_t i = 0; i + k <= n; i++) {
        size_t j = 0;
        while (j < k) {
            int c = p[i + j];
            if (c >= 'A' && c <= 'Z')
                c += 32;
            if (c != needle[j])
                break;
            j++;
        }
        if (j == k)
            return 1;
    }
    return 0;
}

static int is_avif_brand(const uint8_t *b)
{
    return memcmp(b, "avif", 4) == 0 || memcmp(b, "avis", 4) == 0;
}

int img_probe(const void *data, size_t n, img_info *info, wp_err *err)
{
    const uint8_t *p = data;
    memset(info, 0, sizeof *info);
    info->orientation = 1;
    info->adobe = -1;
    if (p == NULL || n == 0)
        return wp_err_set(err, IMG_ENOTIMAGE, "image: empty input");

    if (n >= 2 && p[0] == 0xFF && p[1] == 0xD8) {
        info->format = IMG_FMT_JPEG;
        return probe_jpeg(p, n, info, err);
    }
    if (n >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) {
        info->format = IMG_FMT_PNG;
        return probe_png(p, n, info, err);
    }
    if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0) {
        info->format = IMG_FMT_WEBP;
        return probe_webp(p, n, info, err);
    }
    if (n >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0)) {
        info->format = IMG_FMT_GIF;
        if (n >= 10) {
            info->width = (int)img_le16(p + 6);
            info->height = (int)img_le16(p + 8);
        }
        info->channels = 3;
        return wp_err_set(err, IMG_EUNSUPPORTED, "gif: not decoded");
    }
    if (n >= 14 && p[0] == 'B' && p[1] == 'M' && img_le32(p + 14 - 4) < 0x10000000u) {
        info->format = IMG_FMT_BMP;
        if (n >= 26) {
            int32_t w = (int32_t)img_le32(p + 18), h = (int32_t)img_le32(p + 22);
            info->width = w > 0 ? w : 0;
            info->height = h == INT32_MIN ? 0 : (h < 0 ? -h : h);
        }
        info->channels = 3;
        return wp_err_set(err, IMG_EUNSUPPORTED, "bmp: not decoded");
    }
    if (n >= 4 && (memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0)) {
        info->format = IMG_FMT_TIFF;
        return wp_err_set(err, IMG_EUNSUPPORTED, "tiff: not decoded");
    }
    if (n >= 12 && memcmp(p + 4, "ftyp", 4) == 0) {
        /* ISO BMFF: the major brand, then compatible brands in the box */
        size_t box = img_be32(p);
        if (box > n)
            box = n;
        int avif = is_avif_brand(p + 8);
        for (size_t o = 16; !avif && o + 4 <= box; o += 4)
            avif = is_avif_brand(p + o);
        if (avif) {
            info->format = IMG_FMT_AVIF;
            return wp_err_set(err, IMG_EUNSUPPORTED, "avif: not decoded");
        }
        return wp_err_set(err, IMG_EUNSUPPORTED, "image: ISO media (%.4s) is not decoded",
                          (const char *)p + 8);
    }
    /* Text: SVG is an image we do not rasterise; HTML and the rest are not
     * images at all (an error page served as 200). */
    size_t s = 0;
    if (n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
        s = 3;
    while (s < n && (p[s] == ' ' || p[s] == '\t' || p[s] == '\r' || p[s] == '\n'))
        s++;
    int html =
        s < n && (text_has(p + s, n - s, "<html") || text_has(p + s, n - s, "<!doctype html") ||
                  text_has(p + s, n - s, "<head") || text_has(p + s, n - s, "<body"));
    if (s < n && p[s] == '<' && !html && text_has(p + s, n - s, "<svg")) {
        info->format = IMG_FMT_SVG;
        return wp_err_set(err, IMG_EUNSUPPORTED, "svg: not rasterised");
    }
    if (s < n && p[s] == '<')
        return wp_err_set(err, IMG_ENOTIMAGE, "image: markup (HTML/XML), not an image");
    return wp_err_set(err, IMG_ENOTIMAGE, "image: no known image signature (first byte 0x%02x)",
                      p[0]);
}
