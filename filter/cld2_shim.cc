/*
 * filter/cld2_shim.cc: the one C++ file of witpipe: a C-callable wrapper
 * around CLD2's ExtDetectLanguageSummary (Debian libcld2-dev has only a
 * C++ API). It catches every exception, so none crosses into C.
 */
#include <cstdio> /* compact_lang_det.h uses FILE without including it */

#include <cld2/public/compact_lang_det.h>
#include <cld2/public/encodings.h>

#include <cstring>

extern "C" int flt_cld2_detect(const char *text, int n, int best_effort, char code[16],
                               int *percent, int *text_bytes, int *reliable);

/* Runs CLD2 on plain UTF-8 text; writes the top language's code, its
 * percent of the text, the bytes of letters CLD2 scored and is_reliable.
 * Returns 0, or -1 if CLD2 threw (code "un" then). */
extern "C" int flt_cld2_detect(const char *text, int n, int best_effort, char code[16],
                               int *percent, int *text_bytes, int *reliable)
{
    std::strcpy(code, "un");
    *percent = 0;
    *text_bytes = 0;
    *reliable = 0;
    try {
        CLD2::CLDHints hints = {NULL, NULL, CLD2::UNKNOWN_ENCODING, CLD2::UNKNOWN_LANGUAGE};
        CLD2::Language l3[3];
        int p3[3] = {0, 0, 0};
        double s3[3];
        int tb = 0;
        bool rel = false;
        CLD2::Language l = CLD2::ExtDetectLanguageSummary(
            text, n, true, &hints, best_effort ? CLD2::kCLDFlagBestEffort : 0, l3, p3, s3, NULL,
            &tb, &rel);
        const char *c = CLD2::LanguageCode(l);
        if (c != NULL && std::strlen(c) < 16)
            std::strcpy(code, c);
        *percent = p3[0];
        *text_bytes = tb;
        *reliable = rel ? 1 : 0;
        return 0;
    } catch (...) {
        return -1;
    }
}
