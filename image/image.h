/*
 * image/image.h: image identification, decoding, resampling and JPEG
 * encoding, the one module that fetch, add --files, encode, dedup and audit
 * all use.
 *
 * Formats are identified from magic bytes, never from a file name or a
 * Content-Type. Decoders are libjpeg-turbo, libspng and libwebp. Nothing
 * here allocates per pixel row; an img_image owns one pixel buffer.
 */
#ifndef IMAGE_H
#define IMAGE_H

#include "common/wp.h"

#include <stddef.h>
#include <stdint.h>

enum img_status {
    IMG_ENOTIMAGE = -300,    /* no known image signature (HTML, text, junk) */
    IMG_EUNSUPPORTED = -301, /* an image, but a format we do not decode (gif, bmp, avif...) */
    IMG_ECORRUPT = -302,     /* truncated or corrupt data */
    IMG_ETOOBIG = -303,      /* more pixels than allowed (pixel bomb), from the header */
};

enum img_format {
    IMG_FMT_UNKNOWN = 0,
    IMG_FMT_JPEG,
    IMG_FMT_PNG,
    IMG_FMT_WEBP,
    IMG_FMT_GIF,  /* identified, not decoded */
    IMG_FMT_BMP,  /* identified, not decoded */
    IMG_FMT_TIFF, /* identified, not decoded */
    IMG_FMT_AVIF, /* identified, not decoded */
    IMG_FMT_SVG,  /* identified, not decoded */
};

/* What the header says, without decoding pixels. */
typedef struct img_info {
    int format; /* enum img_format */
    int width;  /* as stored, before EXIF orientation */
    int height;
    int channels; /* 1 gray, 2 gray+alpha, 3 RGB/YCbCr, 4 RGBA/CMYK */
    int cmyk;     /* JPEG in CMYK/YCCK */
    int has_alpha;
    int progressive; /* JPEG progressive / PNG interlaced */
    int orientation; /* EXIF orientation 1..8 (1 when absent) */
    int adobe;       /* JPEG Adobe APP14 transform 0..2 (1 = YCbCr, 2 = YCCK); -1 absent */
} img_info;

/* Reads only the header (JPEG SOF + APP1 EXIF, PNG IHDR, WebP VP8/VP8L/VP8X).
 * Returns 0, IMG_ENOTIMAGE, IMG_EUNSUPPORTED (info->format still set) or
 * IMG_ECORRUPT (a signature, but the header is cut or inconsistent). */
int img_probe(const void *data, size_t n, img_info *info, wp_err *err);

/* "jpeg", "png", "webp", "gif", ... and "unknown"; static strings. */
const char *img_format_name(int format);
/* File extension for WebDataset members: "jpg", "png", "webp", ... */
const char *img_format_ext(int format);

/* An 8-bit interleaved image. pixels has height rows of stride bytes. */
typedef struct img_image {
    int width, height;
    int channels; /* 3 (RGB) after img_decode; 1..4 internally */
    size_t stride;
    uint8_t *pixels; /* owned; free with img_free */
} img_image;

void img_free(img_image *im);
/* Allocates a width x height x channels image (stride = width*channels).
 * Returns 0 or WP_ENOMEM. */
int img_alloc(img_image *im, int width, int height, int channels);

enum img_alpha {
    IMG_ALPHA_WHITE = 0, /* composite transparent pixels on white (fetch) */
    IMG_ALPHA_DROP = 1,  /* discard alpha like PIL's convert("RGB") */
};

typedef struct img_decode_opts {
    int apply_exif;     /* rotate/flip per EXIF orientation (fetch: 1, CLIP: 0) */
    int alpha;          /* enum img_alpha */
    int64_t max_pixels; /* refuse larger images from the header; 0 = no limit */
    /* DCT scaling: a JPEG may be decoded at 1/2, 1/4 or 1/8 scale as long as
     * both sides stay >= min_width x min_height (after orientation). 0 = full
     * size. */
    int min_width, min_height;
} img_decode_opts;

/* Decodes to 8-bit RGB (channels = 3). Grayscale is expanded, CMYK/YCCK
 * (including Adobe's inverted CMYK) converted the way PIL does, alpha
 * handled per opts. Returns 0, IMG_ENOTIMAGE, IMG_EUNSUPPORTED,
 * IMG_ECORRUPT, IMG_ETOOBIG or WP_ENOMEM; out is untouched on error. */
int img_decode(const void *data, size_t n, const img_decode_opts *opts, img_image *out,
               wp_err *err);

/* High-quality antialiased resampling (PIL's bicubic, a = -0.5, with its
 * 22-bit fixed-point arithmetic, horizontal pass first): the result equals
 * PIL's Image.resize((w, h), BICUBIC) byte for byte. */
int img_resize_bicubic(const img_image *src, int w, int h, img_image *out, wp_err *err);

/* img2dataset's resize modes. */
enum img_resize_mode {
    IMG_RESIZE_NO = 0,
    IMG_RESIZE_BORDER,             /* fit inside size x size, pad with black */
    IMG_RESIZE_KEEP_RATIO,         /* shorter side to size */
    IMG_RESIZE_KEEP_RATIO_LARGEST, /* longer side to size */
    IMG_RESIZE_CENTER_CROP,        /* shorter side to size, then crop the centre */
};
/* Parses "no", "border", ...; returns the mode or -1. */
int img_resize_mode_parse(const char *s);
/* The decode size hint (for img_decode_opts min_width/min_height) that lets
 * a JPEG be DCT-scaled without changing the result's quality for this mode. */
void img_resize_mode_hint(int mode, int size, int src_w, int src_h, int *min_w, int *min_h);
/* Applies a mode; only_if_bigger leaves images already within size as they
 * are (except border padding). out is a new image. */
int img_resize_mode(const img_image *src, int mode, int size, int only_if_bigger, img_image *out,
                    wp_err *err);

/* Encodes RGB to baseline JPEG (4:2:0, quality 1..100) into out (replaced). */
int img_encode_jpeg(const img_image *im, int quality, wp_buf *out, wp_err *err);

/* CLIP preprocessing exactly as the reference pipeline: decode without EXIF
 * rotation, resize the shorter side to size with PIL's bicubic in the
 * image's own mode (RGBA premultiplied, CMYK before conversion, as PIL
 * does), centre crop with Python's rounding, convert("RGB").
 * out_rgb receives size*size*3 bytes. */
int img_clip_preprocess(const void *data, size_t n, int size, uint8_t *out_rgb, wp_err *err);

#endif /* IMAGE_H */
