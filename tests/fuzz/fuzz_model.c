/*
 * tests/fuzz/fuzz_model.c: libFuzzer target for CLIP model loading
 * (clip/clip_load.c, clip/safetensors.c): a safetensors header and a
 * config, written as a model directory and opened with clip_model_open
 * (fuzz_model_one in fuzz_targets.h). Seeds: tests/fuzz/make_model_seeds.py.
 * The directory lives under $TMPDIR (or /tmp) and is removed at exit.
 */
#include "tests/fuzz/fuzz_targets.h"

#include <stdio.h>

static char dir[WP_PATH_MAX];

static void cleanup(void)
{
    static const char *const names[] = {"model.safetensors", "config.json",
                                        "open_clip_model.safetensors", "open_clip_config.json"};
    char p[WP_PATH_MAX + 64];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/fuzz_model.XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("fuzz_model: mkdtemp");
        abort();
    }
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_abort_on(fuzz_model_one(dir, data, size));
    return 0;
}
