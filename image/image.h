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

/* Reads only the header (JPEG markers up to SOS: SOFn, APP1 EXIF in either
 * byte order, APP14 Adobe; PNG IHDR, tRNS before IDAT, eXIf; WebP VP8 /
 * VP8L / VP8X and its EXIF chunk) and sniffs GIF, BMP, TIFF, ISO-BMFF (AVIF), SVG and HTML/text.
 * Safe on any bytes; never allocates. Returns 0 (width, height > 0),
 * IMG_ENOTIMAGE (HTML, text, junk, empty), IMG_EUNSUPPORTED (info->format
 * set, and the size when the header gives it cheaply; animated WebP too) or
 * IMG_ECORRUPT (a signature, but the header is cut or inconsistent; the
 * message names the byte offset). info is always initialised. */
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
    int64_t budget;  /* bytes charged to the decode budget, returned by img_free */
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
    /* 1: hand out 8-bit gray (channels 1) instead of RGB: PIL's
     * convert("L") of the RGB result (img_to_gray), except that a gray,
     * YCbCr or RGB JPEG is decoded straight to gray by libjpeg
     * (JCS_GRAYSCALE: its luma, with no chroma IDCT, upsampling or colour
     * conversion; what PIL's draft("L", ...) hands out), which is within
     * a rounding step of convert("L") except where RGB clipped. */
    int gray;
} img_decode_opts;

/* Decodes to 8-bit RGB (channels = 3; 1 with opts->gray). Grayscale is expanded, CMYK/YCCK
 * (including Adobe's inverted CMYK) converted the way PIL does, alpha
 * handled per opts (opts NULL: apply_exif 1, IMG_ALPHA_WHITE, no limit).
 * The size check (max_pixels, and 65535 per side always) is made from the
 * header before any pixel memory is allocated. A JPEG cut short, or with
 * entropy data that is garbage, is IMG_ECORRUPT, not a grey-padded image.
 * Returns 0, IMG_ENOTIMAGE, IMG_EUNSUPPORTED, IMG_ECORRUPT, IMG_ETOOBIG or
 * WP_ENOMEM; out is untouched on error; on success the caller owns out
 * (img_free). Thread-safe. */
int img_decode(const void *data, size_t n, const img_decode_opts *opts, img_image *out,
               wp_err *err);

/* RGB (channels 3) to 8-bit gray as PIL's convert("L"): ITU-R 601 luma
 * in 16-bit fixed point. out is a new image owned by the caller. Returns
 * 0, WP_EINVAL (not RGB) or WP_ENOMEM. */
int img_to_gray(const img_image *rgb, img_image *out, wp_err *err);

/* High-quality antialiased resampling (PIL's bicubic, a = -0.5, with its
 * 22-bit fixed-point arithmetic, horizontal pass first): the result equals
 * PIL's Image.resize((w, h), BICUBIC) byte for byte for an image in mode
 * L / LA-premultiplied / RGB / RGBA-premultiplied / CMYK (channels 1..4,
 * each resampled independently). out is a new w x h image owned by the
 * caller. Returns 0, WP_EINVAL (bad sizes) or WP_ENOMEM. */
int img_resize_bicubic(const img_image *src, int w, int h, img_image *out, wp_err *err);

/* The box [x0, x1) x [y0, y1) of src (source pixels, fractional as in
 * PIL's Image.resize(size, BICUBIC, box=...), which this equals byte for
 * byte) resampled to w x h. out is a new image owned by the caller.
 * Returns 0, WP_EINVAL (a box outside src, bad sizes) or WP_ENOMEM. */
int img_resize_bicubic_box(const img_image *src, float x0, float y0, float x1, float y1, int w,
                           int h, img_image *out, wp_err *err);

/* img2dataset's resize modes. */
enum img_resize_mode {
    IMG_RESIZE_NO = 0,
    IMG_RESIZE_BORDER,             /* fit inside size x size, pad with white */
    IMG_RESIZE_KEEP_RATIO,         /* shorter side to size */
    IMG_RESIZE_KEEP_RATIO_LARGEST, /* longer side to size */
    IMG_RESIZE_CENTER_CROP,        /* shorter side to size, then crop the centre */
};
/* Parses "no", "border", ...; returns the mode or -1. */
int img_resize_mode_parse(const char *s);
/* The decode size hint (for img_decode_opts min_width/min_height) that lets
 * a JPEG be DCT-scaled while staying >= what this mode needs: both sides >=
 * size for keep_ratio/center_crop, the longer side >= size for
 * keep_ratio_largest/border, 0 x 0 (full size) for no. src_w/src_h are the
 * dimensions after EXIF orientation. Output sizes computed from the reduced
 * image can differ from full-size ones by a rounding pixel on the longer
 * side (keep_ratio). */
void img_resize_mode_hint(int mode, int size, int src_w, int src_h, int *min_w, int *min_h);
/* Applies a mode, sizes as albumentations computes them for img2dataset:
 * scaled side = Python's round(side * (size / reference side)), centre crop
 * offset (side - size) / 2, border pads white (as img2dataset) around the
 * image centred with (size - side) / 2 before it. only_if_bigger leaves an
 * image as it is (unpadded too) unless its shorter side (keep_ratio,
 * center_crop) or longer side (border, keep_ratio_largest) is > size, as
 * img2dataset decides. Resampling is PIL's bicubic in
 * both directions. out is a new image owned by the caller. Returns 0,
 * WP_EINVAL, WP_ELIMIT (an output side over 65535) or WP_ENOMEM. */
int img_resize_mode(const img_image *src, int mode, int size, int only_if_bigger, img_image *out,
                    wp_err *err);

/* Encodes RGB (or 1-channel gray) to baseline JPEG (4:2:0, quality
 * 1..100, accurate DCT) into out, replacing its contents. Returns 0,
 * WP_EINVAL (bad image or quality) or WP_ENOMEM. */
int img_encode_jpeg(const img_image *im, int quality, wp_buf *out, wp_err *err);

/* CLIP preprocessing exactly as the reference pipeline: decode without EXIF
 * rotation, resize the shorter side to size with PIL's bicubic in the
 * image's own mode (RGBA premultiplied, CMYK before conversion, as PIL
 * does; palette images NEAREST, as PIL does), centre crop with Python's
 * rounding, convert("RGB") (alpha dropped, not composited). Byte-exact
 * with torchvision Resize(size, BICUBIC) + CenterCrop(size) on PIL for all
 * reference images. out_rgb receives size*size*3 bytes (HWC). Returns 0,
 * IMG_ENOTIMAGE, IMG_EUNSUPPORTED, IMG_ECORRUPT, IMG_ETOOBIG (over PIL's
 * decompression-bomb limit of 2 * 89478485 pixels), WP_EINVAL or
 * WP_ENOMEM. Thread-safe. */
int img_clip_preprocess(const void *data, size_t n, int size, uint8_t *out_rgb, wp_err *err);

/* ---- the decode budget (image/budget.c) ------------------------------- */

/* Default process-wide budget of decoded-pixel memory: 2 GiB, so that a
 * 2-core 24 GB machine holds any mix of pixel bombs under --max-pixels on
 * every worker. Each img_decode / img_clip_preprocess charges about 11
 * bytes per decoded pixel (native pixels, RGB conversion, orientation)
 * while it runs and waits while the budget is spent; the image it returns
 * keeps its own bytes charged until img_free. */
#define IMG_BUDGET_DEFAULT ((int64_t)2 << 30)
/* Sets the budget in bytes (0: no limit); wakes waiting decodes. */
void img_budget_set(int64_t bytes);
int64_t img_budget_get(void);
/* The highest charge held at once since the last img_budget_set (tests). */
int64_t img_budget_peak(void);
/* What one decode of an image of `pixels` pixels may charge at most (a
 * stage checks its budget against its --max-pixels with it). */
int64_t img_budget_need(int64_t pixels);

#endif /* IMAGE_H */
