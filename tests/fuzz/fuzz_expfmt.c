/*
 * fuzz_expfmt.c - libFuzzer harness for the exposition parser.
 *
 * Runs each input through both dialects, once with the default line cap and
 * once with a tiny one, touching every string the parser hands out so ASan
 * sees any read past the scratch. The first byte also selects whether the
 * input is fed as a number to vg_expfmt_parse_float. Seeds live in
 * tests/data/fuzz/expfmt/.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vigil/expfmt.h"

static size_t touch(const char *s)
{
    return s ? strlen(s) : 0;
}

static void run(const uint8_t *data, size_t size, vg_expfmt_format fmt, size_t max_line)
{
    vg_expfmt_parser_t *p = vg_expfmt_new((const char *)data, size, fmt);
    if (!p) return;
    vg_expfmt_set_max_line(p, max_line);
    vg_expfmt_entry e;
    vg_error err;
    volatile size_t sink = 0;
    for (int i = 0; i < 1000000; i++) {
        if (vg_expfmt_next(p, &e, &err) != VG_OK || e.kind == VG_EXPFMT_EOF) break;
        sink += touch(e.name) + touch(e.text) + e.nlabels;
        for (size_t j = 0; j < e.nlabels; j++)
            sink += touch(e.labels[j].name) + touch(e.labels[j].value);
    }
    (void)sink;
    vg_expfmt_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size, VG_EXPFMT_TEXT, 0);
    run(data, size, VG_EXPFMT_OPENMETRICS, 0);
    run(data, size, VG_EXPFMT_TEXT, 16);
    double v;
    if (size < 512) (void)vg_expfmt_parse_float((const char *)data, size, &v);
    return 0;
}
