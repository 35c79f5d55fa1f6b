/*
 * filter/lang.c: a caption's language and a confidence that stays low for
 * short text (CLD2 through filter/cld2_shim.cc). CLD2 alone either says
 * "unknown" for a word or two or, in best-effort mode, names a language
 * with 80% and is_reliable set ("die" -> Afrikaans): neither is a
 * confidence a --min-lang-conf can use, hence the formula in filter.h.
 */
#include "filter.h"

#include <limits.h>
#include <string.h>

int flt_cld2_detect(const char *text, int n, int best_effort, char code[16], int *percent,
                    int *text_bytes, int *reliable);

#define FULL_BYTES 32.0 /* scored letter bytes for full confidence */

void flt_lang_detect(const char *text, size_t n, flt_lang *out)
{
    int len = n > INT_MAX / 2 ? INT_MAX / 2 : (int)n;
    double f;
    int guess = 0;

    memset(out, 0, sizeof *out);
    strcpy(out->code, "un");
    if (n == 0)
        return;
    if (flt_cld2_detect(text, len, 0, out->code, &out->percent, &out->text_bytes, &out->reliable) !=
        0)
        return;
    if (strcmp(out->code, "un") == 0) {
        int rel = 0;
        if (flt_cld2_detect(text, len, 1, out->code, &out->percent, &out->text_bytes, &rel) != 0)
            return;
        guess = 1;
    }
    if (strcmp(out->code, "un") == 0) {
        out->conf = 0;
        return;
    }
    f = out->text_bytes / FULL_BYTES;
    if (f > 1)
        f = 1;
    out->conf = out->percent / 100.0 * (out->reliable ? 1.0 : 0.5) * f * (guess ? 0.5 : 1.0);
}
