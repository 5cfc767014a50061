/*
 * fuzz_matcher.c - untrusted regexes (from PromQL selectors and relabel
 * configs) through vg_matcher_new and vg_matcher_matches.
 *
 * Input layout: byte 0 picks the operator (mod 4), then the pattern up to the
 * first NUL, then the value to match (the rest, up to its own NUL). Each
 * compiled matcher is tried on the value, on "" (absent label) and on the
 * pattern itself.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/labels.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    buf[size] = '\0';
    const char *pattern = buf;
    size_t plen = strlen(pattern);
    const char *value = plen < size - 1 ? buf + plen + 1 : "";
    vg_matcher_t *m = NULL;
    if (vg_matcher_new((vg_match_op)(data[0] % 4), "job", pattern, &m, NULL) == VG_OK) {
        volatile int r = vg_matcher_matches(m, value);
        r += vg_matcher_matches(m, NULL);
        r += vg_matcher_matches(m, pattern);
        r += vg_matcher_matches_empty(m);
        (void)r;
        vg_matcher_free(m);
    }
    free(buf);
    return 0;
}
