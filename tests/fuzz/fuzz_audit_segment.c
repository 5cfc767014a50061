/*
 * fuzz_audit_segment.c - the audit segment reader on untrusted bytes.
 *
 * Segment files are read back at open, by queries, by tier moves and by
 * `vigilctl audit verify` on a copy an auditor was handed, so the reader
 * must refuse any damage without crashing. Every segment that parses is
 * read whole (lines, fields, index lookups, digest) and rewritten without
 * every other record; the rewrite must parse again with the right count.
 * Each input is also tried with its meta CRC made valid, so mutations reach
 * the bounds checks behind the checksum (layout as in segment.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auditstore/segment.h"
#include "vigil/alloc.h"
#include "vigil/crc32c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_all(vg_aseg_t *s)
{
    uint8_t d[32];
    for (size_t i = 0; i < vg_aseg_count(s); i++) {
        const char *line;
        size_t len;
        if (vg_aseg_line(s, i, &line, &len, NULL) == VG_OK && len && !line) abort();
        (void)vg_aseg_ts(s, i), (void)vg_aseg_key(s, i);
        for (int f = 0; f < VG_AFIELD__N; f++) (void)vg_aseg_field(s, i, f);
    }
    const uint32_t *o;
    size_t n;
    vg_aseg_lookup(s, VG_AFIELD_USER, "alice", &o, &n);
    for (size_t i = 0; i < n; i++)
        if (o[i] >= vg_aseg_count(s)) abort();
    (void)vg_aseg_digest(s, d, NULL);
}

static void rewrite(vg_aseg_t *s)
{
    size_t n = vg_aseg_count(s), kept = 0;
    uint8_t *drop = vg_calloc(n / 8 + 1, 1);
    if (!drop) return;
    for (size_t i = 0; i < n; i += 2) drop[i / 8] |= (uint8_t)(1u << (i % 8));
    kept = n / 2;
    vg_buf out;
    vg_buf_init(&out, 0);
    uint8_t d[32];
    if (vg_aseg_rewrite(s, drop, 1, &out, d, NULL) == VG_OK) {
        vg_aseg_t *t = NULL;
        if (vg_aseg_parse((const uint8_t *)out.data, out.len, &t, NULL) != VG_OK) abort();
        if (vg_aseg_count(t) != kept) abort();
        vg_aseg_free(t);
    }
    vg_buf_free(&out);
    vg_free(drop);
}

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void one(const uint8_t *data, size_t size)
{
    vg_aseg_t *s = NULL;
    if (vg_aseg_parse(data, size, &s, NULL) != VG_OK) return;
    read_all(s);
    if (vg_aseg_count(s) < 4096) rewrite(s);
    vg_aseg_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (8u << 20)) return 0;
    one(data, size);
    if (size < 64) return 0;
    uint64_t need = 64 + le(data + 48, 4) * 24 + le(data + 16, 8) % (1ull << 32) * 24 +
                    le(data + 52, 4) * 8 + le(data + 56, 4);
    if (need > size) return 0;
    uint8_t *c = vg_malloc(size);
    if (!c) return 0;
    memcpy(c, data, size);
    uint32_t crc = vg_crc32c(0, c, 60);
    crc = vg_crc32c(crc, c + 64, (size_t)need - 64);
    for (int i = 0; i < 4; i++) c[60 + i] = (uint8_t)(crc >> (8 * i));
    one(c, size);
    vg_free(c);
    return 0;
}
