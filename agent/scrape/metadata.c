/*
 * metadata.c - a target's # TYPE / # HELP / # UNIT as MetricBatch.metadata.
 *
 * Shape, and why: the scrape path must not pay for metadata that did not
 * change, so the parse folds the metadata lines into a hash (xxh3 over name,
 * kind, type and the raw text; per family line) and only a hash that
 * differs from the last good scrape's leads here to a second parse of the
 * body with HELP text decoded. The entries are kept per target as the bytes
 * that go on the wire (MetricBatch field 2, prometheus.MetricMetadata), so
 * sending them is one append to the scrape's encoded TimeSeries, and the
 * batcher needs no change: protobuf fields may come in any order.
 *
 * Like Prometheus's scrape cache, one entry per family name: a later line
 * for the same name wins, a HELP without TYPE is type "unknown".
 */
#include "scrape/metadata.h"

#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL /* short inputs: no call through the PLT per family line */
#include <xxhash.h>

#include "vigil/alloc.h"
#include "vigil/log.h"

struct vg_scrape_meta {
    uint64_t hash;
    int have;        /* hash and enc describe a good scrape */
    int pending;     /* enc changed and was not sent yet */
    int64_t sent_ms; /* monotonic time enc last went out */
    vg_buf enc;      /* MetricBatch field 2 entries */
};

/* One family's metadata while the body is re-read. */
typedef struct fam {
    const char *name, *help, *unit; /* in the parser's scratch: copied below */
    size_t nlen, hlen, ulen;
    int type; /* prometheus.MetricMetadata.MetricType */
    size_t order;
} fam;

void vg_scrape_meta_fold(uint64_t *h, const vg_expfmt_entry *e)
{
    if (e->kind != VG_EXPFMT_HELP && e->kind != VG_EXPFMT_TYPE && e->kind != VG_EXPFMT_UNIT) return;
    uint64_t seed = *h ^ ((uint64_t)e->kind << 8 | (uint64_t)e->type);
    uint64_t x = XXH3_64bits_withSeed(e->name, e->name_len, seed);
    if (e->kind != VG_EXPFMT_TYPE && e->text) x = XXH3_64bits_withSeed(e->text, e->text_len, x);
    *h = x * 0x9e3779b97f4a7c15ull + 1;
}

/* vg_expfmt_mtype -> prometheus.MetricMetadata.MetricType. */
static int wire_type(vg_expfmt_mtype t)
{
    switch (t) {
    case VG_EXPFMT_COUNTER: return 1;
    case VG_EXPFMT_GAUGE: return 2;
    case VG_EXPFMT_HISTOGRAM: return 3;
    case VG_EXPFMT_GAUGEHISTOGRAM: return 4;
    case VG_EXPFMT_SUMMARY: return 5;
    case VG_EXPFMT_INFO: return 6;
    case VG_EXPFMT_STATESET: return 7;
    default: return 0;
    }
}

static int cmp_fam(const void *a, const void *b)
{
    const fam *x = a, *y = b;
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    int c = memcmp(x->name, y->name, n);
    if (c) return c;
    if (x->nlen != y->nlen) return x->nlen < y->nlen ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Copy s[0..n) into the arena buffer strs; returns its offset. */
static size_t keep(vg_buf *strs, const char *s, size_t n, vg_err_t *rc)
{
    size_t off = strs->len;
    if (!*rc) *rc = vg_buf_append(strs, s ? s : "", n);
    return off;
}

/* Every metadata line of body, in order, into *v (names and texts copied
 * into strs, pointers fixed up once the buffer stops moving). */
static vg_err_t collect(const char *body, size_t len, vg_expfmt_format fmt, fam **v, size_t *n,
                        vg_buf *strs)
{
    vg_expfmt_parser_t *p = vg_expfmt_new(body, len, fmt);
    if (!p) return VG_ENOMEM;
    size_t cap = 0;
    vg_expfmt_entry e;
    vg_err_t rc = VG_OK;
    while (!rc && vg_expfmt_next(p, &e, NULL) == VG_OK && e.kind != VG_EXPFMT_EOF) {
        if (e.kind != VG_EXPFMT_HELP && e.kind != VG_EXPFMT_TYPE && e.kind != VG_EXPFMT_UNIT)
            continue;
        if (*n == cap) {
            fam *g = vg_realloc(*v, (cap = cap ? 2 * cap : 64) * sizeof *g);
            if (!g) {
                rc = VG_ENOMEM;
                break;
            }
            *v = g;
        }
        fam *f = &(*v)[(*n)++];
        *f = (fam){.nlen = e.name_len, .order = *n, .type = -1};
        f->name = (const char *)(uintptr_t)keep(strs, e.name, e.name_len, &rc);
        if (e.kind == VG_EXPFMT_TYPE) f->type = wire_type(e.type);
        if (e.kind == VG_EXPFMT_HELP)
            f->help = (const char *)(uintptr_t)keep(strs, e.text, f->hlen = e.text_len, &rc);
        if (e.kind == VG_EXPFMT_UNIT)
            f->unit = (const char *)(uintptr_t)keep(strs, e.text, f->ulen = e.text_len, &rc);
    }
    vg_expfmt_free(p);
    return rc;
}

static size_t vsize(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

static void put_varint(vg_buf *b, uint64_t v)
{
    while (v >= 0x80) b->data[b->len++] = (char)(uint8_t)(v | 0x80), v >>= 7;
    b->data[b->len++] = (char)(uint8_t)v;
}

static void put_str(vg_buf *b, uint8_t tag, const char *s, size_t n)
{
    if (!n) return;
    b->data[b->len++] = (char)tag;
    put_varint(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static size_t str_size(size_t n)
{
    return n ? 1 + vsize(n) + n : 0;
}

/* One family as MetricBatch field 2 (a MetricMetadata). */
static vg_err_t encode_fam(vg_buf *out, const fam *f)
{
    size_t body = (f->type > 0 ? 2 : 0) + str_size(f->nlen) + str_size(f->hlen) + str_size(f->ulen);
    vg_err_t rc = vg_buf_reserve(out, 1 + vsize(body) + body);
    if (rc) return rc;
    out->data[out->len++] = 0x12;
    put_varint(out, body);
    if (f->type > 0) out->data[out->len++] = 0x08, out->data[out->len++] = (char)f->type;
    put_str(out, 0x12, f->name, f->nlen);
    put_str(out, 0x22, f->help, f->hlen);
    put_str(out, 0x2a, f->unit, f->ulen);
    return VG_OK;
}

/* Merge the lines of each name (sorted, in body order) and encode them. */
static vg_err_t encode_all(fam *v, size_t n, const char *base, vg_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        v[i].name = base + (uintptr_t)v[i].name;
        if (v[i].help) v[i].help = base + (uintptr_t)v[i].help;
        if (v[i].unit) v[i].unit = base + (uintptr_t)v[i].unit;
    }
    if (n > 1) qsort(v, n, sizeof *v, cmp_fam); /* v is NULL when n is 0 */
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < n && !rc;) {
        fam m = {.name = v[i].name, .nlen = v[i].nlen, .type = 0};
        for (; i < n && v[i].nlen == m.nlen && memcmp(v[i].name, m.name, m.nlen) == 0; i++) {
            if (v[i].type >= 0) m.type = v[i].type;
            if (v[i].help) m.help = v[i].help, m.hlen = v[i].hlen;
            if (v[i].unit) m.unit = v[i].unit, m.ulen = v[i].ulen;
        }
        rc = encode_fam(out, &m);
    }
    return rc;
}

void vg_scrape_meta_update(vg_scrape_target_t *t, const char *body, size_t len,
                           vg_expfmt_format fmt, uint64_t h)
{
    if (!t->meta) {
        if (!(t->meta = vg_calloc(1, sizeof *t->meta))) return;
        vg_buf_init(&t->meta->enc, 0);
    }
    struct vg_scrape_meta *m = t->meta;
    if (m->have && m->hash == h) return;
    fam *v = NULL;
    size_t n = 0;
    vg_buf strs;
    vg_buf_init(&strs, 0);
    vg_buf_reset(&m->enc);
    vg_err_t rc = collect(body, len, fmt, &v, &n, &strs);
    if (!rc) rc = encode_all(v, n, strs.data, &m->enc);
    vg_free(v);
    vg_buf_free(&strs);
    if (rc) {
        vg_buf_reset(&m->enc);
        m->have = 0; /* try again on the next scrape */
        vg_log_warn("scrape", "cannot collect metric metadata", "url=%s err=%s", t->url,
                    vg_strerror(rc));
        return;
    }
    m->hash = h;
    m->have = 1;
    m->pending = 1;
}

void vg_scrape_meta_emit(vg_scrape_target_t *t, vg_scrape_sink *k, int64_t now_ms)
{
    struct vg_scrape_meta *m = t->meta;
    if (!m || !m->have || !m->enc.len || !k->emit_enc) return;
    if (!m->pending && now_ms - m->sent_ms < VG_SCRAPE_META_RESEND_MS) return;
    if (vg_buf_append(&k->enc, m->enc.data, m->enc.len)) return;
    m->pending = 0;
    m->sent_ms = now_ms;
}

void vg_scrape_meta_free(struct vg_scrape_meta *m)
{
    if (!m) return;
    vg_buf_free(&m->enc);
    vg_free(m);
}
