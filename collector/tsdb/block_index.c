/*
 * block_index.c - encode and decode a block's index (format in block_index.h).
 *
 * Building is done in one pass at commit time from series already sorted by
 * labels: the (name, value, series) triples are sorted once to produce the
 * postings. Reading validates the fixed structures at open (symbol offsets,
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

typedef struct triple {
    uint32_t name, value, series;
} triple;

static int triple_cmp(const void *a, const void *b)
{
    const triple *x = a, *y = b;
    if (x->name != y->name) return x->name < y->name ? -1 : 1;
    if (x->value != y->value) return x->value < y->value ? -1 : 1;
    return x->series < y->series ? -1 : x->series > y->series;
}

static vg_err_t put_section(vg_buf *out, const vg_buf *payload, uint64_t *off)
{
    *off = out->len;
    if (payload->len > UINT32_MAX) return VG_ETOOLARGE;
    vg_err_t rc = vg_bx_put_u32(out, (uint32_t)payload->len);
    if (!rc && payload->len) rc = vg_buf_append(out, payload->data, payload->len);
    if (!rc) rc = vg_bx_put_u32(out, vg_crc32c(0, payload->data, payload->len));
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

static vg_err_t collect_triples(const vg_bindex_entry *s, size_t ns, triple **out, size_t *n)
{
    size_t total = 0;
    for (size_t i = 0; i < ns; i++) total += s[i].nlabels;
    triple *t = vg_malloc((total ? total : 1) * sizeof(*t));
    if (!t) return VG_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < ns; i++)
        for (size_t j = 0; j < s[i].nlabels; j++)
            t[k++] = (triple){s[i].syms[2 * j], s[i].syms[2 * j + 1], (uint32_t)i};
    qsort(t, k, sizeof(*t), triple_cmp);
    *out = t;
    *n = k;
    return VG_OK;
}

static vg_err_t build_postings(const vg_bindex_entry *s, size_t ns, vg_buf *post, vg_buf *table)
{
    triple *t = NULL;
    size_t nt = 0, ngroups = 0;
    vg_err_t rc = collect_triples(s, ns, &t, &nt);
    if (rc) return rc;
    for (size_t i = 0; i < nt; i++)
        if (i == 0 || t[i].name != t[i - 1].name || t[i].value != t[i - 1].value) ngroups++;
    rc = vg_bx_put_uvarint(table, ngroups);
    for (size_t i = 0; i < nt && !rc;) {
        size_t j = i;
        while (j < nt && t[j].name == t[i].name && t[j].value == t[i].value) j++;
        rc = vg_bx_put_uvarint(table, t[i].name);
        if (!rc) rc = vg_bx_put_uvarint(table, t[i].value);
        if (!rc) rc = vg_bx_put_uvarint(table, post->len);
        if (!rc) rc = vg_bx_put_uvarint(post, j - i);
        for (size_t k = i; k < j && !rc; k++)
            rc = vg_bx_put_uvarint(post, k == i ? t[k].series : t[k].series - t[k - 1].series);
        i = j;
    }
    vg_free(t);
    return rc;
}

vg_err_t vg_bindex_build(const char *const *syms, size_t nsyms, const vg_bindex_entry *s, size_t ns,
                         vg_buf *out)
{
    vg_buf sec[NSEC];
    uint64_t off[NSEC];
    for (int i = 0; i < NSEC; i++) vg_buf_init(&sec[i], 0);
    static const uint8_t hdr[8] = {'V', 'G', 'I', 'X', VG_BINDEX_VERSION, 0, 0, 0};
    vg_err_t rc = vg_buf_append(out, hdr, sizeof(hdr));
    if (!rc) rc = build_symbols(syms, nsyms, &sec[SEC_SYMS]);
    if (!rc) rc = build_series(s, ns, &sec[SEC_SERIES], &sec[SEC_SERIES_OFFS]);
    if (!rc) rc = build_postings(s, ns, &sec[SEC_POSTINGS], &sec[SEC_PTABLE]);
    for (int i = 0; i < NSEC && !rc; i++) rc = put_section(out, &sec[i], &off[i]);
    size_t toc = out->len;
    for (int i = 0; i < NSEC && !rc; i++) rc = vg_bx_put_u64(out, off[i]);
    if (!rc) rc = vg_bx_put_u32(out, vg_crc32c(0, out->data + toc, 8 * NSEC));
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
