/*
 * bench/fetch_corpus.c: makes the fetch benchmark's image set with
 * witpipe's own image module: `fetch_corpus SRC_DIR OUT_DIR N` writes N
 * distinct JPEGs (OUT_DIR/000000.jpg ...) of 30-600 KB, made from the test
 * photos at several sizes and qualities, and prints their total size.
 */
#include "common/wp.h"
#include "image/image.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SRC_MAX   32
#define MIN_BYTES 30000
#define MAX_BYTES 600000

static const int long_sides[] = {480, 640, 800, 1024, 1280, 1600, 2048};
static const int qualities[] = {80, 85, 90, 95};

int main(int argc, char **argv)
{
    img_image src[SRC_MAX];
    int nsrc = 0, made = 0, tries = 0;
    long n;
    double total = 0;
    wp_err err = {0};
    DIR *d;
    struct dirent *de;

    if (argc != 4 || (n = strtol(argv[3], NULL, 10)) <= 0) {
        fprintf(stderr, "usage: fetch_corpus SRC_DIR OUT_DIR N\n");
        return 2;
    }
    if (wp_mkdir_p(argv[2], &err) != 0 || (d = opendir(argv[1])) == NULL) {
        fprintf(stderr, "fetch_corpus: cannot use %s / %s\n", argv[1], argv[2]);
        return 1;
    }
    while ((de = readdir(d)) != NULL && nsrc < SRC_MAX) {
        char path[WP_PATH_MAX];
        wp_buf b = {0};
        img_decode_opts o = {.apply_exif = 1, .alpha = IMG_ALPHA_WHITE};
        /* photos only: tiny, truncated and panorama files make poor samples */
        if (strstr(de->d_name, "tiny") || strstr(de->d_name, "truncated") ||
            strstr(de->d_name, "panorama") || strstr(de->d_name, "logo"))
            continue;
        if (wp_path_join(path, argv[1], de->d_name, &err) != 0 ||
            wp_read_file(path, 64 << 20, &b, &err) != 0) {
            wp_buf_free(&b);
            continue;
        }
        if (img_decode(b.data, b.len, &o, &src[nsrc], &err) == 0)
            nsrc++;
        wp_buf_free(&b);
    }
    closedir(d);
    if (nsrc == 0) {
        fprintf(stderr, "fetch_corpus: no decodable photos in %s\n", argv[1]);
        return 1;
    }
    while (made < n && tries < 20 * n) {
        int k = tries++;
        const img_image *s = &src[k % nsrc];
        int side = long_sides[(k / nsrc) % 7] + (k / (nsrc * 7)) % 16; /* distinct bytes */
        int q = qualities[(k / (nsrc * 7 * 16)) % 4];
        int w = s->width >= s->height ? side : (int)((double)side * s->width / s->height + 0.5);
        int h = s->width >= s->height ? (int)((double)side * s->height / s->width + 0.5) : side;
        img_image r = {0};
        wp_buf out = {0};
        char path[WP_PATH_MAX], name[32];
        if (img_resize_bicubic(s, w, h, &r, &err) != 0 || img_encode_jpeg(&r, q, &out, &err) != 0) {
            fprintf(stderr, "fetch_corpus: %s\n", err.msg);
            return 1;
        }
        img_free(&r);
        if (out.len >= MIN_BYTES && out.len <= MAX_BYTES) {
            snprintf(name, sizeof name, "%06d.jpg", made);
            FILE *f = NULL;
            /* Scratch files: no fsync, unlike wp_write_file_atomic. */
            if (wp_path_join(path, argv[2], name, &err) != 0 || (f = fopen(path, "wb")) == NULL ||
                fwrite(out.data, 1, out.len, f) != out.len || fclose(f) != 0) {
                fprintf(stderr, "fetch_corpus: cannot write %s\n", path);
                return 1;
            }
            total += (double)out.len;
            made++;
        }
        wp_buf_free(&out);
    }
    for (int i = 0; i < nsrc; i++)
        img_free(&src[i]);
    printf("%d images, %.1f MB\n", made, total / 1e6);
    return made == n ? 0 : 1;
}
