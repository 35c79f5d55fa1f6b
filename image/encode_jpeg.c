/*
 * image/encode_jpeg.c: baseline JPEG encoding with libjpeg-turbo straight
 * into a wp_buf (a libjpeg destination manager that grows the buffer, so no
 * second copy). 4:2:0 chroma subsampling for colour, accurate integer DCT.
 * Fatal libjpeg errors longjmp back here; nothing is printed.
 */
#include "image/img_int.h"

#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE */
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

/* Growth step of the output buffer. */
#define IMG_JPEG_OUT_CHUNK (64 * 1024)

typedef struct jpg_fail {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jpg_fail;

typedef struct buf_dest {
    struct jpeg_destination_mgr pub;
    wp_buf *b;
} buf_dest;

static void jpg_error_exit(j_common_ptr c)
{
    jpg_fail *f = (jpg_fail *)c->err;
    f->pub.format_message(c, f->msg);
    longjmp(f->jb, 1);
}

static void jpg_output_message(j_common_ptr c)
{
    (void)c;
}

/* Points libjpeg at the free space after b->len (keeping room for the
 * buffer's NUL); grows the buffer first. Fails through ERREXIT. */
static void dest_make_room(j_compress_ptr c)
{
    buf_dest *d = (buf_dest *)c->dest;
    if (wp_buf_reserve(d->b, IMG_JPEG_OUT_CHUNK) != 0)
        ERREXIT1(c, JERR_OUT_OF_MEMORY, 0);
    d->pub.next_output_byte = (JOCTET *)d->b->data + d->b->len;
    d->pub.free_in_buffer = d->b->cap - d->b->len - 1;
}

static void dest_init(j_compress_ptr c)
{
    wp_buf_reset(((buf_dest *)c->dest)->b);
    dest_make_room(c);
}

static boolean dest_empty(j_compress_ptr c)
{
    buf_dest *d = (buf_dest *)c->dest;
    /* libjpeg calls this only when the whole free area is full */
    d->b->len = d->b->cap - 1;
    dest_make_room(c);
    return TRUE;
}

static void dest_term(j_compress_ptr c)
{
    buf_dest *d = (buf_dest *)c->dest;
    d->b->len = (size_t)((char *)d->pub.next_output_byte - d->b->data);
    d->b->data[d->b->len] = '\0';
}

int img_encode_jpeg(const img_image *im, int quality, wp_buf *out, wp_err *err)
{
    if (!im || !im->pixels || im->width <= 0 || im->height <= 0 ||
        (im->channels != 3 && im->channels != 1) || im->width > JPEG_MAX_DIMENSION ||
        im->height > JPEG_MAX_DIMENSION)
        return wp_err_set(err, WP_EINVAL, "jpeg encode: need a 1- or 3-channel image");
    if (quality < 1 || quality > 100)
        return wp_err_set(err, WP_EINVAL, "jpeg encode: quality %d not in 1..100", quality);
    struct jpeg_compress_struct cinfo;
    jpg_fail fail;
    buf_dest dest;
    volatile int created = 0;
    int rc;

    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&fail.pub);
    fail.pub.error_exit = jpg_error_exit;
    fail.pub.output_message = jpg_output_message;
    fail.msg[0] = '\0';
    if (setjmp(fail.jb)) {
        rc = wp_err_set(err, WP_ENOMEM, "jpeg encode: %s", fail.msg);
        wp_buf_reset(out);
        goto out;
    }
    jpeg_create_compress(&cinfo);
    created = 1;
    memset(&dest, 0, sizeof dest);
    dest.b = out;
    dest.pub.init_destination = dest_init;
    dest.pub.empty_output_buffer = dest_empty;
    dest.pub.term_destination = dest_term;
    cinfo.dest = &dest.pub;
    cinfo.image_width = (JDIMENSION)im->width;
    cinfo.image_height = (JDIMENSION)im->height;
    cinfo.input_components = im->channels;
    cinfo.in_color_space = im->channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    cinfo.dct_method = JDCT_ISLOW;
    if (im->channels == 3) { /* 4:2:0 */
        cinfo.comp_info[0].h_samp_factor = 2;
        cinfo.comp_info[0].v_samp_factor = 2;
        cinfo.comp_info[1].h_samp_factor = cinfo.comp_info[1].v_samp_factor = 1;
        cinfo.comp_info[2].h_samp_factor = cinfo.comp_info[2].v_samp_factor = 1;
    }
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(im->pixels + (size_t)cinfo.next_scanline * im->stride);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    rc = 0;
out:
    if (created)
        jpeg_destroy_compress(&cinfo);
    return rc;
}
