/*
 * fuzz_expfmt.c - libFuzzer harness for the exposition parser.
 *
 * Runs each input through both dialects, once with the default line cap and
 * once with a tiny one, touching every string the parser hands out so ASan
 * sees any read past the scratch. The first byte also selects whether the
 * input is fed as a number to vg_expfmt_parse_float. Seeds live in
 * tests/data/fuzz/expfmt/.
 *
 * Differential too: the one-pass sample path with borrowed strings must give
 * exactly what the general scanner gives with copies (every entry field,
 * byte for byte, and the same error code and message), or the harness traps.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
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

static int same_bytes(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static int same_entry(const vg_expfmt_entry *a, const vg_expfmt_entry *b)
{
    if (a->kind != b->kind || a->line != b->line || a->nlabels != b->nlabels ||
        a->has_ts != b->has_ts || a->ts_ms != b->ts_ms || a->created != b->created ||
        a->has_exemplar != b->has_exemplar || a->type != b->type ||
        memcmp(&a->value, &b->value, sizeof a->value) != 0 ||
        !same_bytes(a->name, a->name_len, b->name, b->name_len) ||
        !same_bytes(a->text, a->text_len, b->text, b->text_len))
        return 0;
    for (size_t j = 0; j < a->nlabels; j++)
        if (!same_bytes(a->labels[j].name, a->label_lens[j].name, b->labels[j].name,
                        b->label_lens[j].name) ||
            !same_bytes(a->labels[j].value, a->label_lens[j].value, b->labels[j].value,
                        b->label_lens[j].value))
            return 0;
    return 1;
}

/* Fast path + borrowed strings against the general scanner + copies. */
static void diff(const uint8_t *data, size_t size, vg_expfmt_format fmt)
{
    vg_expfmt_parser_t *f = vg_expfmt_new((const char *)data, size, fmt);
    vg_expfmt_parser_t *g = vg_expfmt_new((const char *)data, size, fmt);
    if (!f || !g) goto out;
    vg_expfmt_set_borrow(f, 1);
    vg_expfmt_set_fast(g, 0);
    for (int i = 0; i < 1000000; i++) {
        vg_expfmt_entry a, b;
        vg_error ea = {0}, eb = {0};
        vg_err_t ra = vg_expfmt_next(f, &a, &ea), rb = vg_expfmt_next(g, &b, &eb);
        if (ra != rb) __builtin_trap();
        if (ra) {
            if (strcmp(vg_error_msg(&ea, ra), vg_error_msg(&eb, rb)) != 0) __builtin_trap();
            break;
        }
        if (!same_entry(&a, &b)) __builtin_trap();
        if (a.kind == VG_EXPFMT_EOF) break;
    }
out:
    vg_expfmt_free(f);
    vg_expfmt_free(g);
}

/* A plain decimal that parsed must be strtod's double, bit for bit (the
 * exact fast path must never round differently). */
static void check_decimal(const uint8_t *data, size_t size, double v)
{
    char buf[512];
    for (size_t i = 0; i < size; i++)
        if (!strchr("0123456789+-.eE", data[i]) || !data[i]) return;
    memcpy(buf, data, size);
    buf[size] = '\0';
    double w = strtod(buf, NULL);
    if (memcmp(&v, &w, sizeof v) != 0) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    diff(data, size, VG_EXPFMT_TEXT);
    diff(data, size, VG_EXPFMT_OPENMETRICS);
    run(data, size, VG_EXPFMT_TEXT, 0);
    run(data, size, VG_EXPFMT_OPENMETRICS, 0);
    run(data, size, VG_EXPFMT_TEXT, 16);
    double v;
    if (size < 512 && vg_expfmt_parse_float((const char *)data, size, &v) == VG_OK)
        check_decimal(data, size, v);
    return 0;
}
