/*
 * fuzz_am_matcher.c - Alertmanager matcher syntax from untrusted text.
 *
 * The text comes from config files and from the silences API's filter=
 * argument. Every list that parses is printed back (route-key form) and
 * re-parsed: the printed form must give the same matchers back; every matcher is run against a
 * value. Nothing may crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alerting/amconfig.h"
#include "vigil/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(vg_matcher_t **ms, size_t n)
{
    vg_buf b;
    vg_buf_init(&b, 1u << 20);
    int ok = vg_buf_putc(&b, '{') == VG_OK;
    for (size_t i = 0; ok && i < n; i++) {
        if (i) ok = vg_buf_putc(&b, ',') == VG_OK;
        ok = ok && vg_am_matcher_format(ms[i], &b) == VG_OK;
        (void)vg_matcher_matches(ms[i], "value");
    }
    ok = ok && vg_buf_putc(&b, '}') == VG_OK;
    vg_matcher_t **again = NULL;
    size_t n2 = 0;
    if (!ok) goto out; /* out of memory */
    if (vg_am_matchers_parse(b.data, &again, &n2, NULL) != VG_OK || n2 != n) abort();
    for (size_t i = 0; i < n2; i++) {
        if (strcmp(vg_matcher_name(again[i]), vg_matcher_name(ms[i])) ||
            strcmp(vg_matcher_value(again[i]), vg_matcher_value(ms[i])) ||
            vg_matcher_op(again[i]) != vg_matcher_op(ms[i]))
            abort();
        vg_matcher_free(again[i]);
    }
    vg_free(again);
out:
    vg_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192) return 0;
    char *text = vg_malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    vg_matcher_t **ms = NULL;
    size_t n = 0;
    if (vg_am_matchers_parse(text, &ms, &n, NULL) == VG_OK) {
        roundtrip(ms, n);
        for (size_t i = 0; i < n; i++) vg_matcher_free(ms[i]);
        vg_free(ms);
    }
    vg_matcher_t *one = NULL;
    if (vg_am_matcher_parse(text, &one, NULL) == VG_OK) vg_matcher_free(one);
    vg_free(text);
    return 0;
}
