/*
 * block_index.c - encode and decode a block's index (format in block_index.h).
 *
 * Building is done in one pass at commit time from series already sorted by
 * labels. Postings are bucketed, not sorted: label pairs get group ids from
 * a hash table, the groups (few) are sorted, and series ids are scattered
 * into their group in series order, so each list comes out ascending. A
 * sort of every (pair, series) triple needed three times the memory at the
 * peak of a block cut. Reading validates the fixed structures at open (symbol offsets,
 * series offset table, postings table) so later look-ups are array accesses,
 * and decodes series entries and postings lists lazily, bounds-checking each.
 */
#include "tsdb/block_index.h"

#include <stdlib.h>
#include <string.h>

#include "vigil/alloc.h"
#include "vigil/crc32c.h"

enum { SEC_SYMS, SEC_SERIES, SEC_SERIES_OFFS, SEC_POSTINGS, SEC_PTABLE, NSEC };
static const char *const sec_name[NSEC] = {"symbols", "series", "series offsets", "postings",
                                           "postings table"};

/* ---- varints ---- */

vg_err_t vg_bx_put_uvarint(vg_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    return vg_buf_append(b, tmp, n);
}

vg_err_t vg_bx_put_varint(vg_buf *b, int64_t v)
{
    uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    return vg_bx_put_uvarint(b, u);
}

vg_err_t vg_bx_put_u32(vg_buf *b, uint32_t v)
{
    uint8_t t[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return vg_buf_append(b, t, 4);
}

vg_err_t vg_bx_put_u64(vg_buf *b, uint64_t v)
{
    vg_err_t rc = vg_bx_put_u32(b, (uint32_t)(v >> 32));
    return rc ? rc : vg_bx_put_u32(b, (uint32_t)v);
}

uint32_t vg_bx_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t vg_bx_get_u64(const uint8_t *p)
{
    return (uint64_t)vg_bx_get_u32(p) << 32 | vg_bx_get_u32(p + 4);
}

uint64_t vg_bx_uvarint(vg_bx_dec *d)
{
    uint64_t v = 0;
    for (int shift = 0; d->ok && shift < 64; shift += 7) {
        if (d->p >= d->end) break;
        uint8_t c = *d->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) return v;
    }
    d->ok = 0;
    return 0;
}

int64_t vg_bx_varint(vg_bx_dec *d)
{
    uint64_t u = vg_bx_uvarint(d);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* ---- building ---- */

/* One label pair's postings list while building. */
typedef struct pgroup {
    uint32_t name, value; /* symbol refs */
    uint32_t count, at;   /* list length; its start, then fill cursor, in ids */
} pgroup;

static int pgroup_cmp(const void *a, const void *b)
{
    const pgroup *x = a, *y = b;
    if (x->name != y->name) return x->name < y->name ? -1 : 1;
    return x->value < y->value ? -1 : x->value > y->value;
}

/* Label pair -> group id (open addressing; 0 = empty, else id + 1). */
typedef struct pgroups {
    pgroup *g;
    size_t n, cap;
    uint32_t *slot;
    size_t nslots;
} pgroups;

static size_t pair_slot(const pgroups *p, uint32_t name, uint32_t value)
{
    uint64_t k = (uint64_t)name << 32 | value;
    size_t i = (size_t)((k * 0x9E3779B97F4A7C15ull) >> 20) & (p->nslots - 1);
    while (p->slot[i]) {
        const pgroup *g = &p->g[p->slot[i] - 1];
        if (g->name == name && g->value == value) break;
        i = (i + 1) & (p->nslots - 1);
    }
    return i;
}

static vg_err_t pgroups_grow(pgroups *p)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 1024;
        pgroup *g = vg_realloc(p->g, cap * sizeof(*g));
        if (!g) return VG_ENOMEM;
        p->g = g;
        p->cap = cap;
    }
    if ((p->n + 1) * 2 <= p->nslots) return VG_OK;
    size_t ns = p->nslots ? p->nslots * 2 : 2048;
    uint32_t *old = p->slot;
    size_t oldn = p->nslots;
    if (!(p->slot = vg_calloc(ns, sizeof(*p->slot)))) {
        p->slot = old;
        return VG_ENOMEM;
    }
    p->nslots = ns;
    for (size_t i = 0; i < oldn; i++)
        if (old[i]) p->slot[pair_slot(p, p->g[old[i] - 1].name, p->g[old[i] - 1].value)] = old[i];
    vg_free(old);
    return VG_OK;
}

/* Count every label pair of every series into its group. */
static vg_err_t count_pairs(const vg_bindex_entry *s, size_t ns, pgroups *p)
{
    for (size_t i = 0; i < ns; i++)
        for (size_t j = 0; j < s[i].nlabels; j++) {
            uint32_t name = s[i].syms[2 * j], value = s[i].syms[2 * j + 1];
            vg_err_t rc = pgroups_grow(p);
            if (rc) return rc;
            size_t at = pair_slot(p, name, value);
            if (!p->slot[at]) {
                p->g[p->n++] = (pgroup){name, value, 0, 0};
                p->slot[at] = (uint32_t)p->n;
            }
            p->g[p->slot[at] - 1].count++;
        }
    return VG_OK;
}

/* Sort the groups by pair, give each its range of ids, scatter the series. */
static vg_err_t scatter_series(const vg_bindex_entry *s, size_t ns, pgroups *p, uint32_t **ids)
{
    if (p->n == 0) return (*ids = vg_malloc(sizeof(**ids))) ? VG_OK : VG_ENOMEM;
    qsort(p->g, p->n, sizeof(*p->g), pgroup_cmp);
    memset(p->slot, 0, p->nslots * sizeof(*p->slot));
    size_t total = 0;
    for (size_t i = 0; i < p->n; i++) {
        p->slot[pair_slot(p, p->g[i].name, p->g[i].value)] = (uint32_t)i + 1;
        p->g[i].at = (uint32_t)total;
        total += p->g[i].count;
    }
    if (!(*ids = vg_malloc((total ? total : 1) * sizeof(**ids)))) return VG_ENOMEM;
    for (size_t i = 0; i < ns; i++)
        for (size_t j = 0; j < s[i].nlabels; j++) {
            pgroup *g = &p->g[p->slot[pair_slot(p, s[i].syms[2 * j], s[i].syms[2 * j + 1])] - 1];
            (*ids)[g->at++] = (uint32_t)i;
        }
    return VG_OK;
}

/* Where vg_bindex_build's bytes go, and how many went. */
typedef struct sink {
    vg_bindex_emit emit;
    void *ud;
    uint64_t pos;
} sink;

static vg_err_t sink_put(sink *k, const void *p, size_t n)
{
    vg_err_t rc = n ? k->emit(k->ud, p, n) : VG_OK;
    k->pos += n;
    return rc;
}

static vg_err_t sink_u32(sink *k, uint32_t v)
{
    uint8_t t[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return sink_put(k, t, 4);
}

/* Emit one section (u32 length, payload, u32 CRC) and free its buffer. */
static vg_err_t put_section(sink *k, vg_buf *payload, uint64_t *off)
{
    *off = k->pos;
    vg_err_t rc = payload->len > UINT32_MAX ? VG_ETOOLARGE : VG_OK;
    if (!rc) rc = sink_u32(k, (uint32_t)payload->len);
    if (!rc) rc = sink_put(k, payload->data, payload->len);
    if (!rc) rc = sink_u32(k, vg_crc32c(0, payload->data, payload->len));
    vg_buf_free(payload);
    return rc;
}

static vg_err_t build_symbols(const char *const *syms, size_t n, vg_buf *p)
{
    vg_err_t rc = vg_bx_put_uvarint(p, n);
    for (size_t i = 0; i < n && !rc; i++) rc = vg_buf_append(p, syms[i], strlen(syms[i]) + 1);
    return rc;
}

static vg_err_t build_one_series(const vg_bindex_entry *s, vg_buf *p)
{
    vg_err_t rc = vg_bx_put_uvarint(p, s->nlabels);
    for (size_t j = 0; j < 2 * s->nlabels && !rc; j++) rc = vg_bx_put_uvarint(p, s->syms[j]);
    if (!rc) rc = vg_bx_put_uvarint(p, s->nchunks);
    int64_t prev_maxt = 0;
    uint64_t prev_ref = 0;
    for (size_t j = 0; j < s->nchunks && !rc; j++) {
        const vg_block_chunk *c = &s->chunks[j];
        rc = vg_bx_put_varint(p, j ? c->mint - prev_maxt : c->mint);
        if (!rc) rc = vg_bx_put_uvarint(p, (uint64_t)(c->maxt - c->mint));
        if (!rc) rc = vg_bx_put_uvarint(p, j ? c->len - prev_ref : c->len);
        prev_maxt = c->maxt;
        prev_ref = c->len;
    }
    return rc;
}

static vg_err_t build_series(const vg_bindex_entry *s, size_t ns, vg_buf *ser, vg_buf *offs)
{
    vg_err_t rc = vg_bx_put_uvarint(offs, ns);
    for (size_t i = 0; i < ns && !rc; i++) {
        if (ser->len > UINT32_MAX) return VG_ETOOLARGE;
        rc = vg_bx_put_u32(offs, (uint32_t)ser->len);
        if (!rc) rc = build_one_series(&s[i], ser);
    }
    return rc;
}

/* Postings of each group in pair order; group g's ids end at g->at. */
static vg_err_t write_postings(const pgroups *p, const uint32_t *ids, vg_buf *post, vg_buf *table)
{
    vg_err_t rc = vg_bx_put_uvarint(table, p->n);
    for (size_t i = 0; i < p->n && !rc; i++) {
        const pgroup *g = &p->g[i];
        const uint32_t *v = ids + (g->at - g->count);
        rc = vg_bx_put_uvarint(table, g->name);
        if (!rc) rc = vg_bx_put_uvarint(table, g->value);
        if (!rc) rc = vg_bx_put_uvarint(table, post->len);
        if (!rc) rc = vg_bx_put_uvarint(post, g->count);
        for (size_t k = 0; k < g->count && !rc; k++)
            rc = vg_bx_put_uvarint(post, k == 0 ? v[k] : v[k] - v[k - 1]);
    }
    return rc;
}

static vg_err_t build_postings(const vg_bindex_entry *s, size_t ns, vg_buf *post, vg_buf *table)
{
    pgroups p = {0};
    uint32_t *ids = NULL;
    vg_err_t rc = count_pairs(s, ns, &p);
    if (!rc) rc = scatter_series(s, ns, &p, &ids);
    if (!rc) rc = write_postings(&p, ids, post, table);
    vg_free(ids);
    vg_free(p.g);
    vg_free(p.slot);
    return rc;
}

/* Sections are emitted as soon as they are built and freed, so at most the
 * series section and its offsets are in memory at once, not the index twice. */
vg_err_t vg_bindex_build(const char *const *syms, size_t nsyms, const vg_bindex_entry *s, size_t ns,
                         vg_bindex_emit emit, void *ud)
{
    sink k = {emit, ud, 0};
    vg_buf sec[NSEC];
    uint64_t off[NSEC];
    uint8_t toc[8 * NSEC + 4];
    for (int i = 0; i < NSEC; i++) vg_buf_init(&sec[i], 0);
    static const uint8_t hdr[8] = {'V', 'G', 'I', 'X', VG_BINDEX_VERSION, 0, 0, 0};
    vg_err_t rc = sink_put(&k, hdr, sizeof(hdr));
    if (!rc) rc = build_symbols(syms, nsyms, &sec[SEC_SYMS]);
    if (!rc) rc = put_section(&k, &sec[SEC_SYMS], &off[SEC_SYMS]);
    if (!rc) rc = build_series(s, ns, &sec[SEC_SERIES], &sec[SEC_SERIES_OFFS]);
    if (!rc) rc = put_section(&k, &sec[SEC_SERIES], &off[SEC_SERIES]);
    if (!rc) rc = put_section(&k, &sec[SEC_SERIES_OFFS], &off[SEC_SERIES_OFFS]);
    if (!rc) rc = build_postings(s, ns, &sec[SEC_POSTINGS], &sec[SEC_PTABLE]);
    if (!rc) rc = put_section(&k, &sec[SEC_POSTINGS], &off[SEC_POSTINGS]);
    if (!rc) rc = put_section(&k, &sec[SEC_PTABLE], &off[SEC_PTABLE]);
    for (int i = 0; i < NSEC && !rc; i++)
        for (int b = 0; b < 8; b++) toc[8 * i + b] = (uint8_t)(off[i] >> (56 - 8 * b));
    uint32_t crc = vg_crc32c(0, toc, 8 * NSEC);
    for (int b = 0; b < 4; b++) toc[8 * NSEC + b] = (uint8_t)(crc >> (24 - 8 * b));
    if (!rc) rc = sink_put(&k, toc, sizeof(toc));
    for (int i = 0; i < NSEC; i++) vg_buf_free(&sec[i]);
    return rc;
}

/* ---- reading ---- */

typedef struct ptent {
    uint32_t name, value, off;
} ptent;

struct vg_bindex {
    const uint8_t *sec[NSEC];
    size_t seclen[NSEC];
    uint32_t nsyms, nseries;
    uint32_t *symoff;
    const uint8_t *seroffs; /* nseries x u32 */
    ptent *pt;
    size_t npt;
};

static vg_err_t corrupt(vg_error *err, int sec, const char *what)
{
    return vg_error_set(err, VG_ECORRUPT, "index: %s: %s", sec >= 0 ? sec_name[sec] : "header",
                        what);
}

static vg_err_t open_sections(vg_bindex_t *ix, const uint8_t *d, size_t len, int crc, vg_error *err)
{
    if (len < 8 + VG_BINDEX_TOC_LEN || memcmp(d, "VGIX", 4) != 0 || d[4] != VG_BINDEX_VERSION ||
        (d[5] | d[6] | d[7]) != 0)
        return corrupt(err, -1, "bad magic, version or size");
    const uint8_t *toc = d + len - VG_BINDEX_TOC_LEN;
    if (crc && vg_crc32c(0, toc, 8 * NSEC) != vg_bx_get_u32(toc + 8 * NSEC))
        return corrupt(err, -1, "table of contents checksum mismatch");
    size_t limit = len - VG_BINDEX_TOC_LEN;
    for (int i = 0; i < NSEC; i++) {
        uint64_t off = vg_bx_get_u64(toc + 8 * i);
        if (off < 8 || off > limit || limit - off < 8)
            return corrupt(err, i, "section offset out of bounds");
        uint32_t n = vg_bx_get_u32(d + off);
        if (n > limit - off - 8) return corrupt(err, i, "section length out of bounds");
        ix->sec[i] = d + off + 4;
        ix->seclen[i] = n;
        if (crc && vg_crc32c(0, ix->sec[i], n) != vg_bx_get_u32(ix->sec[i] + n))
            return corrupt(err, i, "checksum mismatch");
    }
    return VG_OK;
}

static vg_err_t open_symbols(vg_bindex_t *ix, vg_error *err)
{
    vg_bx_dec d = {ix->sec[SEC_SYMS], ix->sec[SEC_SYMS] + ix->seclen[SEC_SYMS], 1};
    uint64_t n = vg_bx_uvarint(&d);
    if (!d.ok || n > ix->seclen[SEC_SYMS]) return corrupt(err, SEC_SYMS, "bad count");
    ix->symoff = vg_malloc((n ? n : 1) * sizeof(uint32_t));
    if (!ix->symoff) return vg_error_set(err, VG_ENOMEM, "out of memory");
    const char *prev = NULL;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *nul = memchr(d.p, 0, (size_t)(d.end - d.p));
        if (!nul) return corrupt(err, SEC_SYMS, "unterminated symbol");
        if (prev && strcmp(prev, (const char *)d.p) >= 0)
            return corrupt(err, SEC_SYMS, "symbols out of order");
        prev = (const char *)d.p;
        ix->symoff[i] = (uint32_t)(d.p - ix->sec[SEC_SYMS]);
        d.p = nul + 1;
    }
    ix->nsyms = (uint32_t)n;
    return VG_OK;
}

static const char *sym(const vg_bindex_t *ix, uint32_t i)
{
    return (const char *)ix->sec[SEC_SYMS] + ix->symoff[i];
}

static vg_err_t open_series_offsets(vg_bindex_t *ix, vg_error *err)
{
    vg_bx_dec d = {ix->sec[SEC_SERIES_OFFS], ix->sec[SEC_SERIES_OFFS] + ix->seclen[SEC_SERIES_OFFS],
                   1};
    uint64_t n = vg_bx_uvarint(&d);
    if (!d.ok || n > UINT32_MAX || n * 4 != (uint64_t)(d.end - d.p))
        return corrupt(err, SEC_SERIES_OFFS, "bad count");
    for (uint64_t i = 0; i < n; i++)
        if (vg_bx_get_u32(d.p + 4 * i) >= ix->seclen[SEC_SERIES])
            return corrupt(err, SEC_SERIES_OFFS, "offset out of bounds");
    ix->nseries = (uint32_t)n;
    ix->seroffs = d.p;
    return VG_OK;
}

static int ptent_cmp(const ptent *a, const ptent *b)
{
    if (a->name != b->name) return a->name < b->name ? -1 : 1;
    return a->value < b->value ? -1 : a->value > b->value;
}

static vg_err_t open_ptable(vg_bindex_t *ix, vg_error *err)
{
    vg_bx_dec d = {ix->sec[SEC_PTABLE], ix->sec[SEC_PTABLE] + ix->seclen[SEC_PTABLE], 1};
    uint64_t n = vg_bx_uvarint(&d);
    if (!d.ok || n > ix->seclen[SEC_PTABLE]) return corrupt(err, SEC_PTABLE, "bad count");
    ix->pt = vg_malloc((n ? n : 1) * sizeof(ptent));
    if (!ix->pt) return vg_error_set(err, VG_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i++) {
        uint64_t a = vg_bx_uvarint(&d), b = vg_bx_uvarint(&d), o = vg_bx_uvarint(&d);
        if (!d.ok || a >= ix->nsyms || b >= ix->nsyms || o >= ix->seclen[SEC_POSTINGS])
            return corrupt(err, SEC_PTABLE, "entry out of bounds");
        ix->pt[i] = (ptent){(uint32_t)a, (uint32_t)b, (uint32_t)o};
        if (i && ptent_cmp(&ix->pt[i - 1], &ix->pt[i]) >= 0)
            return corrupt(err, SEC_PTABLE, "entries out of order");
    }
    ix->npt = (size_t)n;
    return VG_OK;
}

vg_err_t vg_bindex_open(const uint8_t *data, size_t len, int verify_crc, vg_bindex_t **out,
                        vg_error *err)
{
    *out = NULL;
    vg_bindex_t *ix = vg_calloc(1, sizeof(*ix));
    if (!ix) return vg_error_set(err, VG_ENOMEM, "out of memory");
    vg_err_t rc = open_sections(ix, data, len, verify_crc, err);
    if (!rc) rc = open_symbols(ix, err);
    if (!rc) rc = open_series_offsets(ix, err);
    if (!rc) rc = open_ptable(ix, err);
    if (rc) {
        vg_bindex_free(ix);
        return rc;
    }
    *out = ix;
    return VG_OK;
}

void vg_bindex_free(vg_bindex_t *ix)
{
    if (!ix) return;
    vg_free(ix->symoff);
    vg_free(ix->pt);
    vg_free(ix);
}

uint32_t vg_bindex_num_series(const vg_bindex_t *ix)
{
    return ix->nseries;
}

vg_err_t vg_bindex_series(const vg_bindex_t *ix, uint32_t i, vg_arena_t *a, vg_label_t **labels,
                          size_t *nlabels, vg_block_chunk **chunks, size_t *nchunks, vg_error *err)
{
    if (i >= ix->nseries) return corrupt(err, SEC_SERIES, "series number out of range");
    uint32_t off = vg_bx_get_u32(ix->seroffs + 4 * (size_t)i);
    vg_bx_dec d = {ix->sec[SEC_SERIES] + off, ix->sec[SEC_SERIES] + ix->seclen[SEC_SERIES], 1};
    uint64_t nl = vg_bx_uvarint(&d);
    if (!d.ok || nl > (uint64_t)(d.end - d.p) / 2) return corrupt(err, SEC_SERIES, "bad labels");
    vg_label_t *l = vg_arena_alloc(a, (nl ? nl : 1) * sizeof(*l));
    if (!l) return vg_error_set(err, VG_ENOMEM, "out of memory");
    for (uint64_t j = 0; j < nl; j++) {
        uint64_t n = vg_bx_uvarint(&d), v = vg_bx_uvarint(&d);
        if (!d.ok || n >= ix->nsyms || v >= ix->nsyms)
            return corrupt(err, SEC_SERIES, "label symbol out of range");
        l[j] = (vg_label_t){sym(ix, (uint32_t)n), sym(ix, (uint32_t)v)};
    }
    uint64_t nc = vg_bx_uvarint(&d);
    if (!d.ok || nc > (uint64_t)(d.end - d.p) / 3) return corrupt(err, SEC_SERIES, "bad chunks");
    vg_block_chunk *c = vg_arena_alloc(a, (nc ? nc : 1) * sizeof(*c));
    if (!c) return vg_error_set(err, VG_ENOMEM, "out of memory");
    int64_t prev = 0;
    uint64_t ref = 0;
    for (uint64_t j = 0; j < nc; j++) {
        int64_t mint = vg_bx_varint(&d);
        uint64_t span = vg_bx_uvarint(&d), dref = vg_bx_uvarint(&d);
        c[j].mint = (int64_t)((uint64_t)(j ? prev : 0) + (uint64_t)mint);
        c[j].maxt = (int64_t)((uint64_t)c[j].mint + span);
        ref += dref;
        c[j].len = (size_t)ref;
        c[j].data = NULL;
        prev = c[j].maxt;
    }
    if (!d.ok) return corrupt(err, SEC_SERIES, "truncated chunk metas");
    *labels = l;
    *nlabels = (size_t)nl;
    *chunks = c;
    *nchunks = (size_t)nc;
    return VG_OK;
}

/* ---- postings ---- */

static vg_err_t read_postings(const vg_bindex_t *ix, uint32_t off, vg_postings *out, vg_error *err)
{
    vg_bx_dec d = {ix->sec[SEC_POSTINGS] + off, ix->sec[SEC_POSTINGS] + ix->seclen[SEC_POSTINGS],
                   1};
    uint64_t n = vg_bx_uvarint(&d);
    if (!d.ok || n > ix->nseries) return corrupt(err, SEC_POSTINGS, "bad list length");
    uint64_t v = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t delta = vg_bx_uvarint(&d);
        if (!d.ok || (i && delta == 0) || delta >= ix->nseries)
            return corrupt(err, SEC_POSTINGS, "series number out of range");
        v += delta;
        if (v >= ix->nseries) return corrupt(err, SEC_POSTINGS, "series number out of range");
        if (vg_postings_add(out, (uint32_t)v)) return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
    return VG_OK;
}

/* Index of symbol s, or -1. */
static int64_t sym_find(const vg_bindex_t *ix, const char *s)
{
    size_t lo = 0, hi = ix->nsyms;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(sym(ix, (uint32_t)mid), s);
        if (c == 0) return (int64_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* First table entry with name >= nm (and value >= val). */
static size_t pt_lower(const vg_bindex_t *ix, uint32_t nm, uint32_t val)
{
    ptent key = {nm, val, 0};
    size_t lo = 0, hi = ix->npt;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ptent_cmp(&ix->pt[mid], &key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void sort_unique(vg_postings *p)
{
    if (p->n < 2) return;
    qsort(p->v, p->n, sizeof(uint32_t), u32_cmp);
    size_t w = 1;
    for (size_t i = 1; i < p->n; i++)
        if (p->v[i] != p->v[w - 1]) p->v[w++] = p->v[i];
    p->n = w;
}

/* Union of the lists of m's label values for which matches() == want. */
static vg_err_t union_values(const vg_bindex_t *ix, const vg_matcher_t *m, int want,
                             vg_postings *out, vg_error *err)
{
    int64_t nm = sym_find(ix, vg_matcher_name(m));
    if (nm < 0) return VG_OK;
    vg_match_op op = vg_matcher_op(m);
    if ((op == VG_MATCH_EQ && want) || (op == VG_MATCH_NEQ && !want)) {
        int64_t v = sym_find(ix, vg_matcher_value(m));
        if (v < 0) return VG_OK;
        size_t i = pt_lower(ix, (uint32_t)nm, (uint32_t)v);
        if (i >= ix->npt || ix->pt[i].name != nm || ix->pt[i].value != v) return VG_OK;
        return read_postings(ix, ix->pt[i].off, out, err);
    }
    vg_err_t rc = VG_OK;
    for (size_t i = pt_lower(ix, (uint32_t)nm, 0); i < ix->npt && ix->pt[i].name == nm && !rc; i++)
        if (!vg_matcher_matches(m, sym(ix, ix->pt[i].value)) == !want)
            rc = read_postings(ix, ix->pt[i].off, out, err);
    sort_unique(out);
    return rc;
}

static vg_err_t combine(vg_postings *acc, vg_postings *set, int subtract, vg_error *err)
{
    vg_postings tmp = {0};
    vg_err_t rc =
        subtract ? vg_postings_subtract(acc, set, &tmp) : vg_postings_intersect(acc, set, &tmp);
    vg_postings_free(acc);
    *acc = tmp;
    return rc ? vg_error_set(err, rc, "out of memory") : VG_OK;
}

static vg_err_t select_all(uint32_t n, vg_postings *out, vg_error *err)
{
    for (uint32_t i = 0; i < n; i++)
        if (vg_postings_add(out, i)) return vg_error_set(err, VG_ENOMEM, "out of memory");
    return VG_OK;
}

vg_err_t vg_bindex_select(const vg_bindex_t *ix, vg_matcher_t *const *m, size_t nm,
                          vg_postings *out, vg_error *err)
{
    vg_postings acc = {0}, exclude = {0};
    int have_acc = 0;
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < nm && !rc; i++) {
        int empty_ok = vg_matcher_matches_empty(m[i]);
        vg_postings set = {0};
        rc = union_values(ix, m[i], !empty_ok, empty_ok ? &exclude : &set, err);
        if (!rc && !empty_ok) {
            if (have_acc)
                rc = combine(&acc, &set, 0, err);
            else
                acc = set, set = (vg_postings){0};
            have_acc = 1;
        }
        vg_postings_free(&set);
        if (have_acc && acc.n == 0) break;
    }
    sort_unique(&exclude);
    if (!rc && !have_acc) rc = select_all(ix->nseries, &acc, err);
    if (!rc && exclude.n) rc = combine(&acc, &exclude, 1, err);
    vg_postings_free(&exclude);
    if (rc) {
        vg_postings_free(&acc);
        return rc;
    }
    *out = acc;
    return VG_OK;
}

vg_err_t vg_bindex_strings(const vg_bindex_t *ix, const char *name, vg_arena_t *a,
                           const char ***out, size_t *n)
{
    size_t lo = 0, hi = ix->npt, k = 0;
    if (name) {
        int64_t nm = sym_find(ix, name);
        if (nm < 0) hi = 0;
        lo = nm < 0 ? 0 : pt_lower(ix, (uint32_t)nm, 0);
        if (nm >= 0) hi = pt_lower(ix, (uint32_t)nm + 1, 0);
    }
    const char **v = vg_arena_alloc(a, (hi > lo ? hi - lo : 1) * sizeof(*v));
    if (!v) return VG_ENOMEM;
    for (size_t i = lo; i < hi; i++) {
        if (!name && k && ix->pt[i].name == ix->pt[i - 1].name) continue;
        v[k++] = sym(ix, name ? ix->pt[i].value : ix->pt[i].name);
    }
    *out = v;
    *n = k;
    return VG_OK;
}
