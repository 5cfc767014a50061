/*
 * segment.c - write and read sealed audit segments (see segment.h).
 *
 * A segment is built whole in memory (an hour of one tenant's records) and
 * written by the caller with write-temp/fsync/rename. Reading validates the
 * meta block up front, so the accessors below can index without checks,
 * and decompresses a frame only when a record in it is asked for: a query
 * that matches three records of an hour reads one or two frames.
 */
#include "auditstore/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "vigil/alloc.h"
#include "vigil/crc32c.h"
#include "vigil/le.h"

#define MAGIC       "VGAUDSG1"
#define HDR_LEN     64
#define FRAME_RECS  512
#define FRAME_ENT   24
#define REC_ENT     24
#define MAX_SEGFILE (1ull << 32)

struct ientry {
    uint8_t field;
    const char *val; /* into meta, NUL-terminated copy in vals */
    uint16_t vlen;
    uint32_t count;
    const uint8_t *ords; /* count LE u32 */
    uint32_t *ordv;      /* decoded */
};

struct vg_aseg {
    uint8_t *data;
    size_t len;
    uint64_t nrec;
    int64_t hour, min_ts, max_ts;
    uint32_t level, nframes, nkeys, index_len;
    const uint8_t *frames, *recs, *keys, *index;
    uint64_t *keyv;
    struct ientry *ent;
    size_t nent;
    char **raw; /* decompressed frames, lazily */
    size_t *rawlen;
    uint32_t *fieldof[VG_AFIELD__N]; /* ord -> entry index + 1 (0 = none), lazily */
};

static vg_err_t app32(vg_buf *b, uint32_t v)
{
    uint8_t t[4];
    vg_le_put32(t, v);
    return vg_buf_append(b, t, 4);
}

static vg_err_t app64(vg_buf *b, uint64_t v)
{
    uint8_t t[8];
    vg_le_put64(t, v);
    return vg_buf_append(b, t, 8);
}

vg_err_t vg_audit_sha256(const void *p, size_t n, uint8_t out[32])
{
    unsigned int olen = 0;
    return EVP_Digest(p, n, out, &olen, EVP_sha256(), NULL) == 1 ? VG_OK : VG_EINTERNAL;
}

void vg_audit_hex(const uint8_t d[32], char out[65])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[64] = 0;
}

/* ---- encoding ---- */

static const char *fv(const vg_aseg_rec *r, int f)
{
    return r->field[f] ? r->field[f] : "";
}

struct sortent {
    int field;
    const char *val;
    uint32_t ord;
};

static int sortent_cmp(const void *a, const void *b)
{
    const struct sortent *x = a, *y = b;
    if (x->field != y->field) return x->field - y->field;
    int c = strcmp(x->val, y->val);
    if (c) return c;
    return x->ord < y->ord ? -1 : x->ord > y->ord;
}

/* The index: entries sorted by (field, value), each with its ordinals. */
static vg_err_t encode_index(const vg_aseg_rec *recs, size_t n, vg_buf *idx)
{
    vg_err_t rc = VG_OK;
    struct sortent *se = n ? vg_calloc(n * VG_AFIELD__N, sizeof(*se)) : NULL;
    if (n && !se) return VG_ENOMEM;
    size_t ns = 0;
    for (size_t i = 0; i < n; i++)
        for (int f = 0; f < VG_AFIELD__N; f++)
            se[ns++] = (struct sortent){f, fv(&recs[i], f), (uint32_t)i};
    if (ns) qsort(se, ns, sizeof(*se), sortent_cmp);
    for (size_t i = 0; i < ns && !rc;) {
        size_t j = i;
        while (j < ns && se[j].field == se[i].field && !strcmp(se[j].val, se[i].val)) j++;
        size_t vl = strlen(se[i].val);
        if (vl > 65535) vl = 65535;
        uint8_t h[3] = {(uint8_t)se[i].field, (uint8_t)vl, (uint8_t)(vl >> 8)};
        rc = vg_buf_append(idx, h, 3);
        if (!rc) rc = vg_buf_append(idx, se[i].val, vl);
        if (!rc) rc = app32(idx, (uint32_t)(j - i));
        for (size_t k = i; k < j && !rc; k++) rc = app32(idx, se[k].ord);
        i = j;
    }
    vg_free(se);
    return rc;
}

/* Compress content in frames of FRAME_RECS lines; fills the frame and record tables. */
static vg_err_t encode_frames(const vg_aseg_rec *recs, size_t n, int level, vg_buf *frames,
                              vg_buf *ftab, vg_buf *rtab, EVP_MD_CTX *md)
{
    vg_err_t rc = VG_OK;
    vg_buf raw;
    vg_buf_init(&raw, VG_ASEG_MAX_FRAME);
    for (size_t first = 0; first < n && !rc; first += FRAME_RECS) {
        size_t cnt = n - first < FRAME_RECS ? n - first : FRAME_RECS;
        vg_buf_reset(&raw);
        for (size_t i = first; i < first + cnt && !rc; i++) {
            rc = app64(rtab, (uint64_t)recs[i].ts_ms);
            if (!rc) rc = app64(rtab, recs[i].key);
            if (!rc) rc = app32(rtab, (uint32_t)raw.len);
            if (!rc) rc = app32(rtab, recs[i].len);
            if (!rc) rc = vg_buf_append(&raw, recs[i].line, recs[i].len);
            if (!rc) rc = vg_buf_putc(&raw, '\n');
        }
        if (rc) break;
        EVP_DigestUpdate(md, raw.data, raw.len);
        size_t bound = ZSTD_compressBound(raw.len), off = frames->len;
        rc = vg_buf_reserve(frames, bound);
        if (rc) break;
        ZSTD_CCtx *cc = ZSTD_createCCtx();
        if (!cc) {
            rc = VG_ENOMEM;
            break;
        }
        ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
        ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
        size_t z = ZSTD_compress2(cc, frames->data + off, bound, raw.data, raw.len);
        ZSTD_freeCCtx(cc);
        if (ZSTD_isError(z)) {
            rc = VG_EINTERNAL;
            break;
        }
        frames->len += z;
        rc = app64(ftab, off); /* relative; made absolute by the caller */
        if (!rc) rc = app32(ftab, (uint32_t)z);
        if (!rc) rc = app32(ftab, (uint32_t)first);
        if (!rc) rc = app32(ftab, (uint32_t)cnt);
        if (!rc) rc = app32(ftab, (uint32_t)raw.len);
    }
    vg_buf_free(&raw);
    return rc;
}

static void fill_header(uint8_t *h, const vg_aseg_rec *recs, size_t n, int64_t hour, int level,
                        uint32_t nframes, uint32_t nkeys, uint32_t ilen)
{
    int64_t mn = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        if (!i || recs[i].ts_ms < mn) mn = recs[i].ts_ms;
        if (!i || recs[i].ts_ms > mx) mx = recs[i].ts_ms;
    }
    memcpy(h, MAGIC, 8);
    vg_le_put32(h + 8, 1);
    vg_le_put32(h + 12, (uint32_t)level);
    vg_le_put64(h + 16, n);
    vg_le_put64(h + 24, (uint64_t)hour);
    vg_le_put64(h + 32, (uint64_t)mn);
    vg_le_put64(h + 40, (uint64_t)mx);
    vg_le_put32(h + 48, nframes);
    vg_le_put32(h + 52, nkeys);
    vg_le_put32(h + 56, ilen);
}

static vg_err_t assemble(vg_buf *out, uint8_t *hdr, vg_buf *ftab, vg_buf *rtab, vg_buf *keys,
                         vg_buf *idx, vg_buf *frames)
{
    uint64_t base = HDR_LEN + ftab->len + rtab->len + keys->len + idx->len;
    for (size_t o = 0; o < ftab->len; o += FRAME_ENT)
        vg_le_put64((uint8_t *)ftab->data + o, vg_le_get64((uint8_t *)ftab->data + o) + base);
    uint32_t crc = vg_crc32c(0, hdr, HDR_LEN - 4);
    crc = vg_crc32c(crc, ftab->data, ftab->len);
    crc = vg_crc32c(crc, rtab->data, rtab->len);
    crc = vg_crc32c(crc, keys->data, keys->len);
    crc = vg_crc32c(crc, idx->data, idx->len);
    vg_le_put32(hdr + 60, crc);
    vg_err_t rc = vg_buf_append(out, hdr, HDR_LEN);
    if (!rc) rc = vg_buf_append(out, ftab->data, ftab->len);
    if (!rc) rc = vg_buf_append(out, rtab->data, rtab->len);
    if (!rc) rc = vg_buf_append(out, keys->data, keys->len);
    if (!rc) rc = vg_buf_append(out, idx->data, idx->len);
    if (!rc) rc = vg_buf_append(out, frames->data, frames->len);
    return rc;
}

vg_err_t vg_aseg_encode(const vg_aseg_rec *recs, size_t n, const uint64_t *extra_keys,
                        size_t nextra, int64_t hour_ms, int level, vg_buf *out, uint8_t digest[32],
                        vg_error *err)
{
    if (n > VG_ASEG_MAX_RECORDS)
        return vg_error_set(err, VG_ETOOLARGE, "segment over %u records", VG_ASEG_MAX_RECORDS);
    vg_buf ftab, rtab, keys, idx, frames;
    vg_buf_init(&ftab, 0), vg_buf_init(&rtab, 0), vg_buf_init(&keys, 0);
    vg_buf_init(&idx, 0), vg_buf_init(&frames, 0);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    vg_err_t rc = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ? VG_OK : VG_ENOMEM;
    if (!rc) rc = encode_frames(recs, n, level, &frames, &ftab, &rtab, md);
    for (size_t i = 0; i < n && !rc; i++) rc = app64(&keys, recs[i].key);
    for (size_t i = 0; i < nextra && !rc; i++) rc = app64(&keys, extra_keys[i]);
    if (!rc) rc = encode_index(recs, n, &idx);
    unsigned int dl = 0;
    if (!rc && EVP_DigestFinal_ex(md, digest, &dl) != 1) rc = VG_EINTERNAL;
    uint8_t hdr[HDR_LEN] = {0};
    fill_header(hdr, recs, n, hour_ms, level, (uint32_t)(ftab.len / FRAME_ENT),
                (uint32_t)(n + nextra), (uint32_t)idx.len);
    if (!rc) rc = assemble(out, hdr, &ftab, &rtab, &keys, &idx, &frames);
    if (rc) vg_error_set(err, rc, "cannot encode audit segment: %s", vg_strerror(rc));
    EVP_MD_CTX_free(md);
    vg_buf_free(&ftab), vg_buf_free(&rtab), vg_buf_free(&keys);
    vg_buf_free(&idx), vg_buf_free(&frames);
    return rc;
}

/* ---- parsing ---- */

static vg_err_t bad(vg_error *err, const char *what)
{
    return vg_error_set(err, VG_ECORRUPT, "corrupt audit segment: %s", what);
}

static vg_err_t parse_index(vg_aseg_t *s, vg_error *err)
{
    const uint8_t *p = s->index, *end = s->index + s->index_len;
    size_t cap = 0;
    while (p < end) {
        if (end - p < 7) return bad(err, "index entry truncated");
        struct ientry e = {.field = p[0], .vlen = (uint16_t)(p[1] | p[2] << 8)};
        if (e.field >= VG_AFIELD__N) return bad(err, "index field");
        p += 3;
        if ((size_t)(end - p) < (size_t)e.vlen + 4) return bad(err, "index value truncated");
        e.val = (const char *)p;
        p += e.vlen;
        e.count = vg_le_get32(p);
        p += 4;
        if (e.count > s->nrec || (size_t)(end - p) / 4 < e.count) return bad(err, "index ordinals");
        e.ords = p;
        p += (size_t)e.count * 4;
        if (s->nent == cap) {
            cap = cap ? cap * 2 : 16;
            struct ientry *ne = vg_realloc(s->ent, cap * sizeof(*ne));
            if (!ne) return vg_error_set(err, VG_ENOMEM, "out of memory");
            s->ent = ne;
        }
        s->ent[s->nent++] = e;
    }
    for (size_t i = 0; i < s->nent; i++) {
        struct ientry *e = &s->ent[i];
        e->ordv = vg_malloc(((size_t)e->count + 1) * sizeof(uint32_t));
        if (!e->ordv) return vg_error_set(err, VG_ENOMEM, "out of memory");
        for (uint32_t k = 0; k < e->count; k++) {
            e->ordv[k] = vg_le_get32(e->ords + 4 * (size_t)k);
            if (e->ordv[k] >= s->nrec) return bad(err, "index ordinal out of range");
        }
    }
    return VG_OK;
}

static vg_err_t check_tables(vg_aseg_t *s, size_t meta_end, vg_error *err)
{
    uint64_t next = 0;
    for (uint32_t i = 0; i < s->nframes; i++) {
        const uint8_t *f = s->frames + (size_t)i * FRAME_ENT;
        uint64_t off = vg_le_get64(f), clen = vg_le_get32(f + 8), first = vg_le_get32(f + 16 - 4);
        uint32_t cnt = vg_le_get32(f + 16), rawlen = vg_le_get32(f + 20);
        if (off < meta_end || off > s->len || clen > s->len - off) return bad(err, "frame bounds");
        if (first != next || cnt == 0 || cnt > s->nrec - next) return bad(err, "frame records");
        if (rawlen > VG_ASEG_MAX_FRAME) return bad(err, "frame size");
        for (uint32_t k = 0; k < cnt; k++) {
            const uint8_t *r = s->recs + (size_t)(first + k) * REC_ENT;
            uint64_t ro = vg_le_get32(r + 16), rl = vg_le_get32(r + 20);
            if (ro + rl + 1 > rawlen) return bad(err, "record bounds");
        }
        next += cnt;
    }
    if (next != s->nrec) return bad(err, "frames do not cover the records");
    return VG_OK;
}

static vg_err_t parse_meta(vg_aseg_t *s, vg_error *err)
{
    const uint8_t *h = s->data;
    if (s->len < HDR_LEN || memcmp(h, MAGIC, 8) != 0) return bad(err, "magic");
    if (vg_le_get32(h + 8) != 1) return bad(err, "version");
    s->level = vg_le_get32(h + 12);
    s->nrec = vg_le_get64(h + 16);
    s->hour = (int64_t)vg_le_get64(h + 24), s->min_ts = (int64_t)vg_le_get64(h + 32);
    s->max_ts = (int64_t)vg_le_get64(h + 40);
    s->nframes = vg_le_get32(h + 48), s->nkeys = vg_le_get32(h + 52),
    s->index_len = vg_le_get32(h + 56);
    if (s->nrec > VG_ASEG_MAX_RECORDS || s->nframes > s->nrec || s->nkeys > 2 * VG_ASEG_MAX_RECORDS)
        return bad(err, "counts");
    uint64_t need = HDR_LEN + (uint64_t)s->nframes * FRAME_ENT + s->nrec * REC_ENT +
                    (uint64_t)s->nkeys * 8 + s->index_len;
    if (need > s->len) return bad(err, "meta truncated");
    uint32_t crc = vg_crc32c(0, h, HDR_LEN - 4);
    crc = vg_crc32c(crc, h + HDR_LEN, (size_t)need - HDR_LEN);
    if (crc != vg_le_get32(h + 60)) return bad(err, "meta checksum");
    s->frames = h + HDR_LEN;
    s->recs = s->frames + (size_t)s->nframes * FRAME_ENT;
    s->keys = s->recs + (size_t)s->nrec * REC_ENT;
    s->index = s->keys + (size_t)s->nkeys * 8;
    vg_err_t rc = check_tables(s, (size_t)need, err);
    if (!rc) rc = parse_index(s, err);
    return rc;
}

static vg_err_t alloc_views(vg_aseg_t *s, vg_error *err)
{
    s->keyv = vg_malloc(((size_t)s->nkeys + 1) * sizeof(uint64_t));
    s->raw = vg_calloc((size_t)s->nframes + 1, sizeof(char *));
    s->rawlen = vg_calloc((size_t)s->nframes + 1, sizeof(size_t));
    if (!s->keyv || !s->raw || !s->rawlen) return vg_error_set(err, VG_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < s->nkeys; i++) s->keyv[i] = vg_le_get64(s->keys + 8 * (size_t)i);
    return VG_OK;
}

vg_err_t vg_aseg_parse(const uint8_t *data, size_t len, vg_aseg_t **out, vg_error *err)
{
    *out = NULL;
    if (len > MAX_SEGFILE) return bad(err, "file too large");
    vg_aseg_t *s = vg_calloc(1, sizeof(*s));
    if (!s) return vg_error_set(err, VG_ENOMEM, "out of memory");
    s->data = vg_malloc(len ? len : 1);
    if (!s->data) {
        vg_free(s);
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
    if (len) memcpy(s->data, data, len);
    s->len = len;
    vg_err_t rc = parse_meta(s, err);
    if (!rc) rc = alloc_views(s, err);
    if (rc)
        vg_aseg_free(s);
    else
        *out = s;
    return rc;
}

vg_err_t vg_aseg_load(const char *path, vg_aseg_t **out, vg_error *err)
{
    *out = NULL;
    vg_err_t rc = VG_OK;
    uint8_t *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = vg_error_set(err, errno == ENOENT ? VG_ENOTFOUND : VG_EIO, "%s: %s", path,
                          strerror(errno));
        goto out;
    }
    if ((uint64_t)st.st_size > MAX_SEGFILE) {
        rc = vg_error_set(err, VG_ETOOLARGE, "%s: too large", path);
        goto out;
    }
    buf = vg_malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r <= 0) {
            rc = vg_error_set(err, VG_EIO, "%s: short read", path);
            goto out;
        }
        got += (size_t)r;
    }
    rc = vg_aseg_parse(buf, got, out, err);
    if (rc) vg_error_prefix(err, "%s", path);
out:
    if (fd >= 0) close(fd);
    vg_free(buf);
    return rc;
}

vg_err_t vg_aseg_peek(const char *path, uint64_t *nrec, int64_t *hour_ms, vg_error *err)
{
    uint8_t h[HDR_LEN];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vg_error_set(err, VG_EIO, "%s: %s", path, strerror(errno));
    ssize_t r = read(fd, h, sizeof(h));
    close(fd);
    if (r != HDR_LEN || memcmp(h, MAGIC, 8) != 0) return bad(err, "header");
    *nrec = vg_le_get64(h + 16);
    *hour_ms = (int64_t)vg_le_get64(h + 24);
    return VG_OK;
}

void vg_aseg_free(vg_aseg_t *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->nent; i++) vg_free(s->ent[i].ordv);
    for (uint32_t i = 0; s->raw && i < s->nframes; i++) vg_free(s->raw[i]);
    for (int f = 0; f < VG_AFIELD__N; f++) vg_free(s->fieldof[f]);
    vg_free(s->ent), vg_free(s->raw), vg_free(s->rawlen), vg_free(s->keyv);
    vg_free(s->data);
    vg_free(s);
}

size_t vg_aseg_count(const vg_aseg_t *s)
{
    return (size_t)s->nrec;
}
int64_t vg_aseg_hour(const vg_aseg_t *s)
{
    return s->hour;
}
int64_t vg_aseg_min_ts(const vg_aseg_t *s)
{
    return s->min_ts;
}
int64_t vg_aseg_max_ts(const vg_aseg_t *s)
{
    return s->max_ts;
}
int vg_aseg_level(const vg_aseg_t *s)
{
    return (int)s->level;
}

int64_t vg_aseg_ts(const vg_aseg_t *s, size_t ord)
{
    return (int64_t)vg_le_get64(s->recs + ord * REC_ENT);
}

uint64_t vg_aseg_key(const vg_aseg_t *s, size_t ord)
{
    return vg_le_get64(s->recs + ord * REC_ENT + 8);
}

const uint64_t *vg_aseg_keys(const vg_aseg_t *s, size_t *n)
{
    *n = s->nkeys;
    return s->keyv;
}

void vg_aseg_lookup(const vg_aseg_t *s, int field, const char *value, const uint32_t **ords,
                    size_t *n)
{
    size_t vl = strlen(value);
    *ords = NULL, *n = 0;
    for (size_t i = 0; i < s->nent; i++) {
        const struct ientry *e = &s->ent[i];
        if (e->field == field && e->vlen == vl && !memcmp(e->val, value, vl)) {
            *ords = e->ordv, *n = e->count;
            return;
        }
    }
}

const char *vg_aseg_field(const vg_aseg_t *s, size_t ord, int field)
{
    static const char empty[] = "";
    vg_aseg_t *m = (vg_aseg_t *)s; /* lazily built inverse, a cache */
    if (!m->fieldof[field]) {
        m->fieldof[field] = vg_calloc((size_t)s->nrec + 1, sizeof(uint32_t));
        if (!m->fieldof[field]) return empty;
        for (size_t i = 0; i < s->nent; i++)
            if (s->ent[i].field == field)
                for (uint32_t k = 0; k < s->ent[i].count; k++)
                    m->fieldof[field][s->ent[i].ordv[k]] = (uint32_t)i + 1;
    }
    uint32_t e = m->fieldof[field][ord];
    return e ? s->ent[e - 1].val : empty; /* not NUL-terminated: see field_dup */
}

static vg_err_t load_frame(vg_aseg_t *s, uint32_t fi, vg_error *err)
{
    if (s->raw[fi]) return VG_OK;
    const uint8_t *f = s->frames + (size_t)fi * FRAME_ENT;
    size_t off = (size_t)vg_le_get64(f), clen = vg_le_get32(f + 8), rawlen = vg_le_get32(f + 20);
    char *raw = vg_malloc(rawlen + 1);
    if (!raw) return vg_error_set(err, VG_ENOMEM, "out of memory");
    size_t z = ZSTD_decompress(raw, rawlen, s->data + off, clen);
    if (ZSTD_isError(z) || z != rawlen) {
        vg_free(raw);
        return bad(err, "frame does not decompress");
    }
    raw[rawlen] = 0;
    s->raw[fi] = raw, s->rawlen[fi] = rawlen;
    return VG_OK;
}

static uint32_t frame_of(const vg_aseg_t *s, size_t ord)
{
    uint32_t lo = 0, hi = s->nframes - 1;
    while (lo < hi) {
        uint32_t mid = (lo + hi + 1) / 2;
        if (vg_le_get32(s->frames + (size_t)mid * FRAME_ENT + 12) <= ord)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

vg_err_t vg_aseg_line(vg_aseg_t *s, size_t ord, const char **line, size_t *len, vg_error *err)
{
    if (ord >= s->nrec) return vg_error_set(err, VG_EINVAL, "no record %zu", ord);
    uint32_t fi = frame_of(s, ord);
    vg_err_t rc = load_frame(s, fi, err);
    if (rc) return rc;
    const uint8_t *r = s->recs + ord * REC_ENT;
    *line = s->raw[fi] + vg_le_get32(r + 16);
    *len = vg_le_get32(r + 20);
    return VG_OK;
}

vg_err_t vg_aseg_digest(vg_aseg_t *s, uint8_t out[32], vg_error *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    vg_err_t rc = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ? VG_OK : VG_ENOMEM;
    for (uint32_t i = 0; i < s->nframes && !rc; i++) {
        rc = load_frame(s, i, err);
        if (!rc) EVP_DigestUpdate(md, s->raw[i], s->rawlen[i]);
    }
    unsigned int dl = 0;
    if (!rc && EVP_DigestFinal_ex(md, out, &dl) != 1) rc = VG_EINTERNAL;
    EVP_MD_CTX_free(md);
    return rc;
}

static char *field_dup(const vg_aseg_t *s, size_t ord, int f)
{
    const char *v = vg_aseg_field(s, ord, f);
    size_t n = 0; /* entry values are length-prefixed: find the entry to size it */
    for (size_t i = 0; i < s->nent; i++)
        if (s->ent[i].val == v) n = s->ent[i].vlen;
    char *d = vg_malloc(n + 1);
    if (d) memcpy(d, v, n), d[n] = 0;
    return d;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void free_recs(vg_aseg_rec *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++)
        for (int f = 0; f < VG_AFIELD__N; f++) vg_free((char *)r[i].field[f]);
    vg_free(r);
}

vg_err_t vg_aseg_rewrite(vg_aseg_t *s, const uint8_t *drop, int level, vg_buf *out,
                         uint8_t digest[32], vg_error *err)
{
    vg_aseg_rec *r = vg_calloc((size_t)s->nrec + 1, sizeof(*r));
    if (!r) return vg_error_set(err, VG_ENOMEM, "out of memory");
    size_t n = 0, ndrop = 0;
    vg_err_t rc = VG_OK;
    uint64_t *dk = vg_calloc((size_t)s->nkeys + 1, sizeof(uint64_t));
    if (!dk) rc = vg_error_set(err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < s->nrec && !rc; i++) {
        if (drop && (drop[i / 8] >> (i % 8) & 1)) continue;
        size_t len = 0;
        rc = vg_aseg_line(s, i, &r[n].line, &len, err);
        r[n].len = (uint32_t)len, r[n].ts_ms = vg_aseg_ts(s, i), r[n].key = vg_aseg_key(s, i);
        for (int f = 0; f < VG_AFIELD__N && !rc; f++)
            if (!(r[n].field[f] = field_dup(s, i, f))) rc = VG_ENOMEM;
        n++;
    }
    /* every key that is not a live record stays as an erased key */
    uint64_t *live = rc ? NULL : vg_calloc(n + 1, sizeof(uint64_t));
    if (!rc && !live) rc = vg_error_set(err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) live[i] = r[i].key;
    if (!rc && n) qsort(live, n, sizeof(*live), u64_cmp);
    for (size_t k = 0; k < s->nkeys && !rc; k++)
        if (!bsearch(&s->keyv[k], live, n, sizeof(*live), u64_cmp)) dk[ndrop++] = s->keyv[k];
    vg_free(live);
    if (!rc) rc = vg_aseg_encode(r, n, dk, ndrop, s->hour, level, out, digest, err);
    free_recs(r, n);
    vg_free(dk);
    return rc;
}
