/*
 * encode.c - a scrape's samples written straight into protobuf bytes.
 *
 * With an encoded emit callback (vg_scraper_set_emit_encoded) the samples,
 * staleness markers and report series of one scrape are not handed over one
 * by one: each becomes a MetricBatch field 1 (a prometheus.TimeSeries with
 * its labels and one sample) appended to a buffer the sink reuses, and the
 * whole scrape goes to the callback in one call, which the agent wires to
 * vg_batcher_add_encoded. So the batcher neither hashes nor copies labels
 * per sample, and the bytes are written once, here, where the labels are
 * already sorted. The agent's external labels are merged in here too, as
 * the lowest-priority labels (a sample's own label of the same name wins,
 * as in Prometheus), so the scrape path needs no per-sample merge upstream.
 * Wire format by hand: a TimeSeries is tiny and fixed in shape, and a
 * protobuf-c message per sample would cost more than the bytes themselves.
 */
#include <stdlib.h>
#include <string.h>

#include "scrape/scrape_int.h"
#include "vigil/alloc.h"

/* Varints: nearly every length here is under 128, so that case is inline. */
static size_t vlen(uint64_t v)
{
    if (v < 0x80) return 1;
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

static char *put_varint(char *p, uint64_t v)
{
    if (v < 0x80) {
        *p = (char)(uint8_t)v;
        return p + 1;
    }
    while (v >= 0x80) *p++ = (char)(uint8_t)(v | 0x80), v >>= 7;
    *p++ = (char)(uint8_t)v;
    return p;
}

static char *put_str(char *p, char tag, const char *s, size_t n)
{
    if (!n) return p; /* proto3: empty strings are not written */
    *p++ = tag;
    p = put_varint(p, n);
    memcpy(p, s, n);
    return p + n;
}

static size_t str_len(size_t n)
{
    return n ? 1 + vlen(n) + n : 0;
}

static int ext_cmp(const void *a, const void *b)
{
    return strcmp(((const vg_scrape_label *)a)->name, ((const vg_scrape_label *)b)->name);
}

vg_err_t vg_scrape_encode_set_external(vg_scrape_sink *k, const vg_label_t *l, size_t n)
{
    if (!k->enc.data) vg_buf_init(&k->enc, 0);
    vg_free(k->ext);
    k->ext = NULL;
    k->next = 0;
    if (!n) return VG_OK;
    k->ext = vg_malloc(n * sizeof *k->ext);
    if (!k->ext) return VG_ENOMEM;
    for (size_t i = 0; i < n; i++)
        k->ext[i] = (vg_scrape_label){l[i].name, l[i].value, strlen(l[i].name), strlen(l[i].value)};
    qsort(k->ext, n, sizeof *k->ext, ext_cmp);
    k->next = n;
    return VG_OK;
}

/* l merged with the external labels (l wins on equal names) into k->ebuf. */
static size_t merge_ext(vg_scrape_sink *k, const vg_label_t *l, size_t n)
{
    size_t i = 0, j = 0, o = 0;
    while (i < n || j < k->next) {
        int c = i == n ? 1 : j == k->next ? -1 : strcmp(l[i].name, k->ext[j].name);
        if (c <= 0) {
            k->ebuf[o++] =
                (vg_scrape_label){l[i].name, l[i].value, strlen(l[i].name), strlen(l[i].value)};
            i++;
            if (c == 0) j++;
        } else {
            k->ebuf[o++] = k->ext[j++];
        }
    }
    return o;
}

static int ebuf_reserve(vg_scrape_sink *k, size_t n)
{
    if (n <= k->ecap) return 1;
    vg_scrape_label *e = vg_realloc(k->ebuf, n * sizeof *e);
    if (!e) return 0;
    k->ebuf = e;
    k->ecap = n;
    return 1;
}

/* One TimeSeries field from the labels in k->ebuf[0..n). */
static vg_err_t write_series(vg_scrape_sink *k, size_t n, int64_t ts, double v)
{
    size_t body = 0;
    for (size_t i = 0; i < n; i++) {
        size_t lab = str_len(k->ebuf[i].nlen) + str_len(k->ebuf[i].vlen);
        body += 1 + vlen(lab) + lab;
    }
    size_t smp = 9 + (ts ? 1 + vlen((uint64_t)ts) : 0);
    body += 1 + vlen(smp) + smp;
    vg_err_t rc = vg_buf_reserve(&k->enc, 1 + vlen(body) + body);
    if (rc) return rc;
    char *p = k->enc.data + k->enc.len;
    *p++ = 0x0a;
    p = put_varint(p, body);
    for (size_t i = 0; i < n; i++) {
        const vg_scrape_label *x = &k->ebuf[i];
        *p++ = 0x0a;
        p = put_varint(p, str_len(x->nlen) + str_len(x->vlen));
        p = put_str(p, 0x0a, x->name, x->nlen);
        p = put_str(p, 0x12, x->value, x->vlen);
    }
    *p++ = 0x12;
    p = put_varint(p, smp);
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    *p++ = 0x09;
    for (int i = 0; i < 8; i++) *p++ = (char)(uint8_t)(bits >> (8 * i)); /* little-endian */
    if (ts) *p++ = 0x10, p = put_varint(p, (uint64_t)ts);
    k->enc.len = (size_t)(p - k->enc.data);
    k->enc_n++;
    return VG_OK;
}

vg_err_t vg_scrape_encode(vg_scrape_sink *k, const vg_label_t *l, size_t n, int64_t ts, double v)
{
    if (!ebuf_reserve(k, n + k->next)) return VG_ENOMEM;
    return write_series(k, merge_ext(k, l, n), ts, v);
}

/* strcmp order of two label names from their lengths (names hold no NUL). */
static int name_cmp(const vg_scrape_label *a, const vg_scrape_label *b)
{
    int c = memcmp(a->name, b->name, a->nlen < b->nlen ? a->nlen : b->nlen);
    return c ? c : (a->nlen > b->nlen) - (a->nlen < b->nlen);
}

/* Label i of a staged record: name and value lengths from the offsets
 * (each string is followed by its NUL; the key ends at `end`). */
static vg_scrape_label rec_label(const char *base, const uint32_t *offs, uint32_t i, uint32_t n,
                                 uint32_t end)
{
    uint32_t no = offs[2 * i], vo = offs[2 * i + 1], nx = i + 1 < n ? offs[2 * i + 2] : end;
    return (vg_scrape_label){base + no, base + vo, vo - no - 1, nx - vo - 1};
}

vg_err_t vg_scrape_encode_rec(vg_scrape_sink *k, const vg_stage_rec *r)
{
    if (!ebuf_reserve(k, r->n + k->next)) return VG_ENOMEM;
    const char *base = (const char *)r;
    const uint32_t *offs = (const uint32_t *)(const void *)(base + sizeof *r);
    uint32_t end = (uint32_t)(sizeof *r + 2 * r->n * sizeof(uint32_t)) + r->keylen;
    size_t i = 0, j = 0, o = 0;
    while (i < r->n || j < k->next) {
        vg_scrape_label x = {0};
        if (i < r->n) x = rec_label(base, offs, (uint32_t)i, r->n, end);
        int c = i == r->n ? 1 : j == k->next ? -1 : name_cmp(&x, &k->ext[j]);
        if (c <= 0) {
            k->ebuf[o++] = x;
            i++;
            if (c == 0) j++;
        } else {
            k->ebuf[o++] = k->ext[j++];
        }
    }
    return write_series(k, o, r->ts_ms, r->v);
}

void vg_scrape_encode_flush(vg_scrape_sink *k)
{
    if (!k->enc.len) return;
    if (k->emit_enc(k->ud, k->enc.data, k->enc.len, k->enc_n) == VG_OK)
        k->emitted += k->enc_n;
    else
        k->emit_errors += k->enc_n;
    if (k->enc.cap > ((size_t)16 << 20)) vg_buf_free(&k->enc);
    vg_buf_reset(&k->enc);
    k->enc_n = 0;
}

void vg_scrape_encode_destroy(vg_scrape_sink *k)
{
    vg_buf_free(&k->enc);
    vg_free(k->ext);
    vg_free(k->ebuf);
    k->ext = k->ebuf = NULL;
    k->next = k->ecap = k->enc_n = 0;
}
