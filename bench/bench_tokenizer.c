/*
 * bench/bench_tokenizer.c: throughput of the CLIP tokenizer
 * (clip/tokenizer.h): texts/s and MB/s for clip_tok_encode_ctx (77-token
 * rows) on the 94 golden captions (unicode, mojibake, entities: the slow
 * path) and on plain ASCII alt-text-like captions (the common case), one
 * thread, word cache warm and cold; plus the vocabulary load time. Needs
 * ../shared (or WITPIPE_SHARED). WITPIPE_BENCH_QUICK=1 shortens every case.
 */
#include "clip/tok_int.h"
#include "tests/lib/testlib.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_SYNTH 2000

static double min_time = 2.0;

typedef struct texts {
    char **s;
    size_t *len;
    size_t n, bytes;
} texts;

static void run_case(const char *name, const char *vocab, const texts *tx, int cold)
{
    clip_tok *t = NULL;
    if (clip_tok_open_bpe_gz(vocab, &t, NULL) != 0)
        exit(1);
    int32_t row[CLIP_TOK_CTX];
    double best = 0, start = wp_now();
    long tokens = 0;
    while (wp_now() - start < min_time) {
        if (cold) {
            clip_tok_free(t);
            if (clip_tok_open_bpe_gz(vocab, &t, NULL) != 0)
                exit(1);
        }
        double t0 = wp_now();
        for (size_t i = 0; i < tx->n; i++)
            tokens += clip_tok_encode_ctx(t, tx->s[i], tx->len[i], row, CLIP_TOK_CTX, NULL);
        double rate = (double)tx->n / (wp_now() - t0);
        if (rate > best)
            best = rate;
    }
    printf("%-34s %10.0f texts/s %8.1f MB/s\n", name, best,
           best * (double)tx->bytes / (double)tx->n / 1e6);
    clip_tok_free(t);
    (void)tokens;
}

int main(void)
{
    if (getenv("WITPIPE_BENCH_QUICK") != NULL)
        min_time = 0.3;
    if (tl_shared_dir("tokenizer benchmark") == NULL)
        return 0;
    char vocab[4096];
    snprintf(vocab, sizeof vocab, "%s", tl_shared_path("vocab/bpe_simple_vocab_16e6.txt.gz"));
    json_t *cases = json_load_file(tl_shared_path("golden/clip/tokenizer_cases.json"), 0, NULL);
    if (cases == NULL)
        return 1;
    texts golden = {0}, synth = {0};
    golden.n = json_array_size(cases);
    golden.s = calloc(golden.n, sizeof *golden.s);
    golden.len = calloc(golden.n, sizeof *golden.len);
    for (size_t i = 0; i < golden.n; i++) {
        json_t *t = json_object_get(json_array_get(cases, i), "text");
        golden.s[i] = (char *)json_string_value(t);
        golden.len[i] = json_string_length(t);
        golden.bytes += golden.len[i];
    }
    static const char *const words[] = {"a",        "photo",    "of",           "the",   "cat",
                                        "sitting",  "on",       "wooden",       "floor", "Stock",
                                        "image",    "-",        "2021",         "Free",  "vector",
                                        "graphic:", "portrait", "DSC00123.JPG", "woman", "smiling",
                                        "at",       "camera,",  "close-up"};
    synth.n = N_SYNTH;
    synth.s = calloc(N_SYNTH, sizeof *synth.s);
    synth.len = calloc(N_SYNTH, sizeof *synth.len);
    uint32_t x = 7;
    for (size_t i = 0; i < N_SYNTH; i++) {
        char buf[512];
        size_t n = 0;
        int nw = 4 + (int)(i % 12);
        for (int w = 0; w < nw; w++) {
            x = x * 1664525u + 1013904223u;
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", w ? " " : "",
                                  words[(x >> 16) % (sizeof words / sizeof words[0])]);
        }
        synth.s[i] = strdup(buf);
        synth.len[i] = n;
        synth.bytes += n;
    }
    double t0 = wp_now();
    clip_tok *t = NULL;
    if (clip_tok_open_bpe_gz(vocab, &t, NULL) != 0)
        return 1;
    printf("%-34s %10.3f s\n", "load bpe_simple_vocab_16e6.txt.gz", wp_now() - t0);
    clip_tok_free(t);
    run_case("golden captions (94), warm cache", vocab, &golden, 0);
    run_case("ascii captions (2000), warm cache", vocab, &synth, 0);
    run_case("ascii captions (2000), cold cache", vocab, &synth, 1);
    for (size_t i = 0; i < N_SYNTH; i++)
        free(synth.s[i]);
    free(synth.s);
    free(synth.len);
    free(golden.s);
    free(golden.len);
    json_decref(cases);
    return 0;
}
