/*
 * image/decode_jpeg.c: JPEG decoding with libjpeg-turbo's libjpeg API, to
 * the image's own PIL mode (L, RGB, or CMYK inverted the way PIL reads
 * every 4-component JPEG: rawmode "CMYK;I"), optionally DCT-scaled, or
 * straight to gray (L) when asked.
 *
 * libjpeg reports fatal errors through error_exit, which must not return:
 * ours longjmps back here. Warnings that mean the pixels are incomplete or
 * garbage (premature end of file, a marker inside entropy data, a bad
 * Huffman code) are turned into IMG_ECORRUPT instead of a grey-filled
 * image; harmless ones (extraneous bytes, unknown JFIF revision) are
 * ignored as PIL does.
 */
#include "image/img_int.h"

#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

/* Rows handed to jpeg_read_scanlines at a time (libjpeg returns at most
 * rec_outbuf_height, which is <= 4, per call). */
#define IMG_JPEG_ROWS 16

typedef struct jpeg_fail {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jpeg_fail;

static void on_error_exit(j_common_ptr c)
{
    jpeg_fail *f = (jpeg_fail *)c->err;
    f->pub.format_message(c, f->msg);
    longjmp(f->jb, 1);
}

static void on_emit_message(j_common_ptr c, int level)
{
    jpeg_fail *f = (jpeg_fail *)c->err;
    if (level >= 0)
        return; /* trace messages */
    int code = f->pub.msg_code;
    if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_MUST_RESYNC ||
        code == JWRN_HUFF_BAD_CODE) {
        f->pub.format_message(c, f->msg);
        longjmp(f->jb, 1);
    }
    f->pub.num_warnings++;
}

static void on_output_message(j_common_ptr c)
{
    (void)c; /* library code never prints */
}

int img_jpeg_decode_native(const uint8_t *data, size_t n, int scale_denom, int gray, img_image *out,
                           int *mode, wp_err *err)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_fail fail;
    /* modified after setjmp, read after longjmp: must be volatile */
    uint8_t *volatile pix = NULL;
    volatile int created = 0;
    int rc;

    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&fail.pub);
    fail.pub.error_exit = on_error_exit;
    fail.pub.emit_message = on_emit_message;
    fail.pub.output_message = on_output_message;
    fail.msg[0] = '\0';
    if (n > (size_t)0xffffffffu) /* jpeg_mem_src takes an unsigned long; be explicit */
        return wp_err_set(err, IMG_ETOOBIG, "jpeg: %zu bytes is too large", n);

    if (setjmp(fail.jb)) {
        rc = wp_err_set(err, IMG_ECORRUPT, "jpeg: %s", fail.msg);
        goto out;
    }
    jpeg_create_decompress(&cinfo);
    created = 1;
    jpeg_mem_src(&cinfo, data, (unsigned long)n);
    if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK) {
        rc = wp_err_set(err, IMG_ECORRUPT, "jpeg: no image in header");
        goto out;
    }
    int m;
    switch (cinfo.num_components) {
    case 1:
        cinfo.out_color_space = JCS_GRAYSCALE;
        m = IMG_MODE_L;
        break;
    case 3:
        /* gray: libjpeg hands over Y and skips the chroma components'
         * IDCT and upsampling (an RGB JPEG gets its luma computed) */
        cinfo.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
        m = gray ? IMG_MODE_L : IMG_MODE_RGB;
        break;
    case 4:
        cinfo.out_color_space = JCS_CMYK; /* libjpeg turns YCCK into CMYK */
        m = IMG_MODE_CMYK;
        break;
    default:
        rc = wp_err_set(err, IMG_EUNSUPPORTED, "jpeg: %d components", cinfo.num_components);
        goto out;
    }
    /* PIL's decoder settings: accurate integer IDCT, fancy upsampling */
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    cinfo.scale_num = 1;
    cinfo.scale_denom = (unsigned)(scale_denom >= 1 ? scale_denom : 1);
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
    int ch = cinfo.output_components;
    if (w <= 0 || h <= 0 || w > IMG_MAX_SIDE || h > IMG_MAX_SIDE || ch != img_mode_channels(m)) {
        rc = wp_err_set(err, IMG_ECORRUPT, "jpeg: unexpected output %dx%dx%d", w, h, ch);
        goto out;
    }
    size_t stride = (size_t)w * (size_t)ch;
    pix = malloc(stride * (size_t)h);
    if (!pix) {
        rc = wp_err_set(err, WP_ENOMEM, "jpeg: out of memory for %dx%d", w, h);
        goto out;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rows[IMG_JPEG_ROWS];
        unsigned y0 = cinfo.output_scanline;
        int k = 0;
        for (; k < IMG_JPEG_ROWS && y0 + (unsigned)k < cinfo.output_height; k++)
            rows[k] = pix + (size_t)(y0 + (unsigned)k) * stride;
        if (jpeg_read_scanlines(&cinfo, rows, (JDIMENSION)k) == 0) {
            rc = wp_err_set(err, IMG_ECORRUPT, "jpeg: decoder stalled at row %u", y0);
            goto out;
        }
    }
    if (m == IMG_MODE_CMYK) {
        /* PIL reads 4-component JPEGs as "CMYK;I" (Adobe's inverted CMYK) */
        size_t total = stride * (size_t)h;
        uint8_t *q = pix;
        for (size_t i = 0; i < total; i++)
            q[i] = (uint8_t)(255 - q[i]);
    }
    /* All pixels are in; whatever trails the last scan (a missing EOI,
     * junk) does not change them, so abort instead of finish. */
    img_adopt(out, w, h, ch, stride, pix);
    pix = NULL;
    *mode = m;
    rc = 0;
out:
    if (created)
        jpeg_destroy_decompress(&cinfo);
    free(pix);
    return rc;
}
