/*
 * tests/unit/test_clip_api.c: the public model header (clip/clip.h) is
 * enough for a stage to embed an image and a text: this file includes no
 * other witpipe header (tests/lib/testlib.h only finds ../shared). The
 * embeddings of one golden photo and one golden caption, made with the
 * three calls of the header's example, equal the float64 PyTorch
 * reference's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clip/clip.h"
#include "tests/lib/testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define E 32 /* embed_dim of the tiny golden checkpoints */

static double max_rel_err(const float *got, const float *want, int n)
{
    double mx = 0, err = 0;
    for (int j = 0; j < n; j++) {
        if (fabs(want[j]) > mx)
            mx = fabs(want[j]);
        if (fabs(got[j] - want[j]) > err)
            err = fabs(got[j] - want[j]);
    }
    return err / mx;
}

static void three_calls(void **state)
{
    const char *shared = tl_shared_dir("golden CLIP checkpoints");
    char dir[1024], photo[1024], rel[256];
    float img[E], txt[E];
    wp_err err = {0};
    clip_model *m = NULL;
    clip_tok *tok = NULL;
    size_t len = 0;

    if (shared == NULL) {
        skip();
        return;
    }
    snprintf(dir, sizeof dir, "%s/golden/clip/hf_vit_quickgelu_f32/model", shared);
    snprintf(photo, sizeof photo, "%s/testdata/images/astronaut.jpg", shared);

    /* 1: open */
    if (clip_model_open(dir, NULL, &m, &err) != 0 || clip_tok_open_dir(dir, &tok, &err) != 0)
        fail_msg("open: %s", err.msg);
    assert_int_equal(clip_model_arch(m)->embed_dim, E);
    /* 2: embed (inputs_images[0] is astronaut.jpg, inputs_texts[0] this caption) */
    if (clip_embed_image_file(m, photo, img, &err) != 0)
        fail_msg("image: %s", err.msg);
    if (clip_embed_text(m, tok, "a photo of a cat", txt, &err) != 0)
        fail_msg("text: %s", err.msg);

    snprintf(rel, sizeof rel, "golden/clip/hf_vit_quickgelu_f32/expected/image_features.f32");
    float *wi = (float *)tl_slurp(tl_shared_path(rel), &len);
    assert_non_null(wi);
    /* preprocessing may differ from PIL by one grey level on a few pixels */
    assert_true(max_rel_err(img, wi, E) < 1e-2);
    assert_true(clip_cosine(img, wi, E) > 1.0 - 1e-5);
    snprintf(rel, sizeof rel, "golden/clip/hf_vit_quickgelu_f32/expected/text_features.f32");
    float *wt = (float *)tl_slurp(tl_shared_path(rel), &len);
    assert_non_null(wt);
    assert_true(max_rel_err(txt, wt, E) < 1e-3);
    assert_true(clip_cosine(txt, wt, E) > 1.0 - 1e-5);

    /* an unreadable file is an error naming it, not a crash */
    assert_int_not_equal(clip_embed_image_file(m, "/nonexistent/x.jpg", img, &err), 0);
    assert_non_null(strstr(err.msg, "/nonexistent/x.jpg"));

    /* 3: free */
    clip_tok_free(tok);
    clip_model_free(m);
    free(wi);
    free(wt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(three_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
