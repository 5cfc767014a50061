/*
 * block_write.c - build one block in a tmp directory, then rename it in.
 *
 * Chunks stream to segment files as series are added (buffered, a new
 * segment past VG_BLOCK_SEGMENT_MAX); labels and chunk metas stay in memory
 * until commit, where the index is encoded in one go. Label strings are
 * interned as series arrive (a block's series share most of them: a copy
 * per series was a tenth of a block cut's peak memory), so the symbol table
 * is just the sorted interned set. Each chunk goes to disk in the smaller of
 * its XOR form and the scaled-integer form (chunk_int.h), which is tried on
 * every chunk and kept only when it decodes back bit for bit: this is where
 * blocks get their bytes per sample, while the head stays XOR (appendable).
 * Every file and both
 * directories are fsynced before and after the rename, so a crash leaves no
 * half block under a real ULID.
 */
#include "tsdb/block.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsdb/block_index.h"
#include "tsdb/chunk.h"
#include "tsdb/chunk_int.h"
#include "tsdb/postings.h"
#include "vigil/alloc.h"
#include "vigil/buf.h"
#include "vigil/clock.h"
#include "vigil/crc32c.h"

#define FLUSH_AT (1u << 20)

typedef struct wseries { /* 24 bytes: one per series of the block until commit */
    vg_label_t *l;
    vg_block_chunk *c; /* ref in .len */
    uint32_t nl, nc;
} wseries;

struct vg_block_writer {
    char *parent, *tmp;
    char ulid[VG_ULID_LEN + 1];
    int64_t mint, maxt, res;
    int fd;
    uint32_t seg;
    uint64_t seg_off;
    vg_buf cbuf;
    vg_buf ibuf;  /* the compact encoding of the chunk being written */
    int64_t *dts; /* samples of an XOR chunk decoded to try the compact form */
    double *dv;
    vg_arena_t *a;
    vg_smap syms; /* interned label strings (key == value, in a) */
    wseries *s;
    size_t ns, cap;
    uint64_t nsamples, nchunks;
    int level;
    char (*src)[VG_ULID_LEN + 1];
    size_t nsrc;
    int committed;
};

static vg_err_t io_err(vg_error *err, const char *what, const char *path)
{
    return vg_error_set(err, VG_EIO, "%s %s: %s", what, path, strerror(errno));
}

static vg_err_t write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return VG_EIO;
        c += w;
        n -= (size_t)w;
    }
    return VG_OK;
}

static vg_err_t fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return VG_EIO;
    int rc = fsync(fd);
    close(fd);
    return rc ? VG_EIO : VG_OK;
}

vg_err_t vg_block_writer_new(const char *parent, int64_t mint, int64_t maxt, int64_t res,
                             vg_block_writer_t **out, vg_error *err)
{
    *out = NULL;
    vg_block_writer_t *w = vg_calloc(1, sizeof(*w));
    if (!w) return vg_error_set(err, VG_ENOMEM, "out of memory");
    w->fd = -1;
    w->mint = mint;
    w->maxt = maxt;
    w->res = res;
    w->level = 1;
    vg_buf_init(&w->cbuf, 0);
    vg_buf_init(&w->ibuf, 0);
    vg_ulid_new(vg_clock_wall_ms(), w->ulid);
    w->parent = vg_strdup(parent);
    w->a = vg_arena_new(0);
    size_t n = strlen(parent) + VG_ULID_LEN + 16;
    w->tmp = vg_malloc(n);
    w->dts = vg_malloc(VG_CHUNK_INT_MAX_ENCODE * sizeof(*w->dts));
    w->dv = vg_malloc(VG_CHUNK_INT_MAX_ENCODE * sizeof(*w->dv));
    if (!w->parent || !w->a || !w->tmp || !w->dts || !w->dv) {
        vg_block_writer_free(w);
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
    snprintf(w->tmp, n, "%s/%s.tmp", parent, w->ulid);
    char path[4096];
    snprintf(path, sizeof(path), "%s/chunks", w->tmp);
    if ((mkdir(parent, 0755) && errno != EEXIST) || mkdir(w->tmp, 0755) || mkdir(path, 0755)) {
        vg_err_t rc = io_err(err, "creating", path);
        vg_block_writer_free(w);
        return rc;
    }
    *out = w;
    return VG_OK;
}

static vg_err_t seg_flush(vg_block_writer_t *w)
{
    if (!w->cbuf.len) return VG_OK;
    vg_err_t rc = write_all(w->fd, w->cbuf.data, w->cbuf.len);
    vg_buf_reset(&w->cbuf);
    return rc;
}

static vg_err_t seg_close(vg_block_writer_t *w)
{
    if (w->fd < 0) return VG_OK;
    vg_err_t rc = seg_flush(w);
    if (!rc && fsync(w->fd)) rc = VG_EIO;
    if (close(w->fd)) rc = VG_EIO;
    w->fd = -1;
    return rc;
}

static vg_err_t seg_open(vg_block_writer_t *w, vg_error *err)
{
    vg_err_t rc = seg_close(w);
    if (rc) return vg_error_set(err, rc, "writing chunk segment in %s", w->tmp);
    char path[4096];
    snprintf(path, sizeof(path), "%s/chunks/%06u", w->tmp, ++w->seg);
    w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) return io_err(err, "creating", path);
    /* version 2: chunks may be compact (chunk_int.h); 1 held XOR only */
    static const uint8_t hdr[8] = {'V', 'G', 'C', 'K', 2, 0, 0, 0};
    w->seg_off = sizeof(hdr);
    return vg_buf_append(&w->cbuf, hdr, sizeof(hdr));
}

/* Append one chunk to the current segment; its ref goes to *ref. */
static vg_err_t put_chunk(vg_block_writer_t *w, const uint8_t *d, size_t len, uint64_t *ref,
                          vg_error *err)
{
    size_t need = len + 14;
    if (w->fd < 0 || w->seg_off + need > VG_BLOCK_SEGMENT_MAX) {
        vg_err_t rc = seg_open(w, err);
        if (rc) return rc;
    }
    *ref = (uint64_t)w->seg << 32 | w->seg_off;
    size_t before = w->cbuf.len;
    vg_err_t rc = vg_bx_put_uvarint(&w->cbuf, len);
    if (!rc) rc = vg_buf_append(&w->cbuf, d, len);
    if (!rc) rc = vg_bx_put_u32(&w->cbuf, vg_crc32c(0, d, len));
    w->seg_off += w->cbuf.len - before;
    if (!rc && w->cbuf.len >= FLUSH_AT) rc = seg_flush(w);
    return rc ? vg_error_set(err, rc, "writing chunk segment %u in %s", w->seg, w->tmp) : VG_OK;
}

/* The samples of XOR chunk c into the writer's scratch arrays: how many,
 * 0 when it is empty, too long to re-encode, or does not decode. */
static size_t decode_xor(vg_block_writer_t *w, const vg_block_chunk *c)
{
    size_t n = vg_chunk_data_samples(c->data, c->len);
    if (n == 0 || n > VG_CHUNK_INT_MAX_ENCODE) return 0;
    vg_chunk_iter it;
    vg_chunk_iter_init(&it, c->data, c->len);
    size_t got = 0, k;
    while (got < n && (k = vg_chunk_iter_read(&it, w->dts + got, w->dv + got, n - got)) > 0)
        got += k;
    return got == n && !vg_chunk_iter_err(&it) ? n : 0;
}

/* Write chunk c (XOR or already compact) in its smaller form; ts/v are its
 * samples when the caller has them (NULL: decoded here). */
static vg_err_t put_best(vg_block_writer_t *w, const vg_block_chunk *c, const int64_t *ts,
                         const double *v, uint64_t *ref, vg_error *err)
{
    const uint8_t *d = c->data;
    size_t len = c->len, n = 0;
    if (!vg_chunk_is_compact(d, len)) {
        if (ts)
            n = vg_chunk_data_samples(d, len);
        else if ((n = decode_xor(w, c)) > 0)
            ts = w->dts, v = w->dv;
    }
    if (n) {
        vg_err_t rc = vg_chunk_int_encode(ts, v, n, &w->ibuf);
        if (rc == VG_ENOMEM) return vg_error_set(err, rc, "block writer: out of memory");
        if (rc == VG_OK && w->ibuf.len < len) d = (const uint8_t *)w->ibuf.data, len = w->ibuf.len;
    }
    w->nsamples += vg_chunk_data_samples(d, len);
    return put_chunk(w, d, len, ref, err);
}

/* The writer's copy of string str. */
static const char *intern(vg_block_writer_t *w, const char *str)
{
    char *v = vg_smap_get(&w->syms, str);
    if (v) return v;
    v = vg_arena_strdup(w->a, str);
    if (!v || vg_smap_put(&w->syms, v, v)) return NULL;
    return v;
}

static vg_err_t add_series_slot(vg_block_writer_t *w, const vg_label_t *l, size_t n, size_t nc,
                                wseries **out)
{
    if (w->ns && vg_labels_cmp(w->s[w->ns - 1].l, w->s[w->ns - 1].nl, l, n) >= 0) return VG_EINVAL;
    if (n > UINT32_MAX || nc > UINT32_MAX) return VG_ETOOLARGE;
    if (w->ns == w->cap) {
        size_t nc2 = w->cap ? w->cap + w->cap / 2 : 256;
        wseries *ns = vg_realloc(w->s, nc2 * sizeof(*ns));
        if (!ns) return VG_ENOMEM;
        w->s = ns;
        w->cap = nc2;
    }
    wseries *s = &w->s[w->ns];
    s->l = vg_arena_alloc(w->a, (n ? n : 1) * sizeof(*l));
    s->c = vg_arena_alloc(w->a, (nc ? nc : 1) * sizeof(vg_block_chunk));
    if (!s->l || !s->c) return VG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        s->l[i].name = intern(w, l[i].name);
        s->l[i].value = intern(w, l[i].value);
        if (!s->l[i].name || !s->l[i].value) return VG_ENOMEM;
    }
    s->nl = (uint32_t)n;
    s->nc = 0;
    *out = s;
    return VG_OK;
}

/* Add a series of chunks; ts/v, when not NULL, hold their samples back to
 * back (VG_CHUNK_MAX_SAMPLES per chunk but the last). */
static vg_err_t add_chunks(vg_block_writer_t *w, const vg_label_t *l, size_t n,
                           const vg_block_chunk *c, size_t nc, const int64_t *ts, const double *v,
                           vg_error *err)
{
    wseries *s = NULL;
    if (nc == 0) return VG_OK;
    vg_err_t rc = add_series_slot(w, l, n, nc, &s);
    if (rc == VG_EINVAL) return vg_error_set(err, rc, "block writer: series out of order");
    if (rc == VG_ETOOLARGE) return vg_error_set(err, rc, "block writer: too many labels or chunks");
    if (rc) return vg_error_set(err, rc, "block writer: out of memory");
    for (size_t i = 0; i < nc; i++) {
        uint64_t ref = 0;
        size_t at = i * VG_CHUNK_MAX_SAMPLES;
        rc = put_best(w, &c[i], ts ? ts + at : NULL, v ? v + at : NULL, &ref, err);
        if (rc) return rc;
        s->c[i] = (vg_block_chunk){c[i].mint, c[i].maxt, NULL, (size_t)ref};
    }
    s->nc = (uint32_t)nc;
    w->nchunks += nc;
    w->ns++;
    return VG_OK;
}

vg_err_t vg_block_writer_add(vg_block_writer_t *w, const vg_label_t *l, size_t n,
                             const vg_block_chunk *c, size_t nc, vg_error *err)
{
    return add_chunks(w, l, n, c, nc, NULL, NULL, err);
}

static vg_err_t encode_chunks(const int64_t *ts, const double *v, size_t ns, vg_chunk_t **ch,
                              vg_block_chunk *bc, size_t *nc)
{
    size_t k = 0;
    for (size_t i = 0; i < ns; i += VG_CHUNK_MAX_SAMPLES, k++) {
        size_t end = i + VG_CHUNK_MAX_SAMPLES < ns ? i + VG_CHUNK_MAX_SAMPLES : ns;
        if (!(ch[k] = vg_chunk_new())) return VG_ENOMEM;
        for (size_t j = i; j < end; j++) {
            vg_err_t rc = vg_chunk_append(ch[k], ts[j], v[j]);
            if (rc) return rc;
        }
        bc[k].mint = ts[i];
        bc[k].maxt = ts[end - 1];
        bc[k].data = vg_chunk_bytes(ch[k], &bc[k].len);
    }
    *nc = k;
    return VG_OK;
}

vg_err_t vg_block_writer_add_samples(vg_block_writer_t *w, const vg_label_t *l, size_t n,
                                     const int64_t *ts, const double *v, size_t ns, vg_error *err)
{
    if (ns == 0) return VG_OK;
    size_t max = (ns + VG_CHUNK_MAX_SAMPLES - 1) / VG_CHUNK_MAX_SAMPLES, nc = 0;
    vg_chunk_t **ch = vg_calloc(max, sizeof(*ch));
    vg_block_chunk *bc = vg_calloc(max, sizeof(*bc));
    vg_err_t rc = ch && bc ? encode_chunks(ts, v, ns, ch, bc, &nc) : VG_ENOMEM;
    if (rc)
        vg_error_set(err, rc, "block writer: encoding chunks: %s", vg_strerror(rc));
    else
        rc = add_chunks(w, l, n, bc, nc, ts, v, err);
    for (size_t i = 0; ch && i < max; i++) vg_chunk_free(ch[i]);
    vg_free(ch);
    vg_free(bc);
    return rc;
}

vg_err_t vg_block_writer_set_sources(vg_block_writer_t *w, int level, const char *const *src,
                                     size_t n)
{
    vg_free(w->src);
    w->src = vg_calloc(n ? n : 1, sizeof(*w->src));
    if (!w->src) return VG_ENOMEM;
    for (size_t i = 0; i < n; i++) snprintf(w->src[i], sizeof(w->src[i]), "%s", src[i]);
    w->nsrc = n;
    w->level = level;
    return VG_OK;
}

/* ---- commit ---- */

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static uint32_t sym_ref(const char *const *syms, size_t n, const char *s)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(syms[mid], s) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint32_t)lo;
}

/* Sorted distinct label strings of every series: the interned set. */
static vg_err_t collect_symbols(vg_block_writer_t *w, const char ***out, size_t *n)
{
    size_t k = 0;
    const char **v = vg_arena_alloc(w->a, (w->syms.n ? w->syms.n : 1) * sizeof(*v));
    if (!v) return VG_ENOMEM;
    for (size_t i = 0; i < w->syms.cap; i++)
        if (w->syms.e[i].key) v[k++] = w->syms.e[i].key;
    qsort(v, k, sizeof(*v), str_cmp);
    *out = v;
    *n = k;
    return VG_OK;
}

static vg_err_t emit_fd(void *ud, const void *p, size_t n)
{
    return write_all(*(const int *)ud, p, n);
}

/* Encode the index straight into the file at fd. */
static vg_err_t build_index(vg_block_writer_t *w, int fd)
{
    const char **syms = NULL;
    size_t nsyms = 0;
    vg_err_t rc = collect_symbols(w, &syms, &nsyms);
    vg_bindex_entry *bs = vg_arena_alloc(w->a, (w->ns ? w->ns : 1) * sizeof(*bs));
    if (rc || !bs) return VG_ENOMEM;
    for (size_t i = 0; i < w->ns; i++) {
        uint32_t *r = vg_arena_alloc(w->a, (2 * w->s[i].nl + 1) * sizeof(uint32_t));
        if (!r) return VG_ENOMEM;
        for (size_t j = 0; j < w->s[i].nl; j++) {
            r[2 * j] = sym_ref(syms, nsyms, w->s[i].l[j].name);
            r[2 * j + 1] = sym_ref(syms, nsyms, w->s[i].l[j].value);
        }
        bs[i] = (vg_bindex_entry){r, w->s[i].nl, w->s[i].c, w->s[i].nc};
    }
    return vg_bindex_build(syms, nsyms, bs, w->ns, emit_fd, &fd);
}

static vg_err_t write_index(vg_block_writer_t *w, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return VG_EIO;
    vg_err_t rc = build_index(w, fd);
    if (!rc && fsync(fd)) rc = VG_EIO;
    if (close(fd) && !rc) rc = VG_EIO;
    return rc;
}

static vg_err_t write_file(const char *path, const void *d, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return VG_EIO;
    vg_err_t rc = write_all(fd, d, n);
    if (!rc && fsync(fd)) rc = VG_EIO;
    if (close(fd)) rc = VG_EIO;
    return rc;
}

static vg_err_t meta_json(vg_block_writer_t *w, vg_buf *b)
{
    vg_err_t rc = vg_buf_printf(
        b,
        "{\n\t\"ulid\": \"%s\",\n\t\"minTime\": %lld,\n\t\"maxTime\": %lld,\n"
        "\t\"stats\": {\"numSamples\": %llu, \"numSeries\": %zu, "
        "\"numChunks\": %llu},\n\t\"compaction\": {\"level\": %d, "
        "\"sources\": [",
        w->ulid, (long long)w->mint, (long long)w->maxt, (unsigned long long)w->nsamples, w->ns,
        (unsigned long long)w->nchunks, w->level);
    if (!w->src && !rc) rc = vg_buf_printf(b, "\"%s\"", w->ulid);
    for (size_t i = 0; i < w->nsrc && !rc; i++)
        rc = vg_buf_printf(b, "%s\"%s\"", i ? ", " : "", w->src[i]);
    if (!rc)
        rc = vg_buf_printf(b, "]},\n\t\"version\": 1,\n\t\"vigil\": {\"resolution\": %lld}\n}\n",
                           (long long)w->res);
    return rc;
}

static vg_err_t commit_files(vg_block_writer_t *w, vg_error *err)
{
    char path[4096];
    vg_buf b;
    vg_buf_init(&b, 0);
    vg_err_t rc = seg_close(w);
    if (rc) return vg_error_set(err, rc, "writing chunks of %s", w->tmp);
    snprintf(path, sizeof(path), "%s/index", w->tmp);
    rc = write_index(w, path);
    if (!rc) rc = meta_json(w, &b);
    snprintf(path + strlen(w->tmp), sizeof(path) - strlen(w->tmp), "/meta.json");
    if (!rc) rc = write_file(path, b.data, b.len);
    vg_buf_free(&b);
    if (rc) return vg_error_set(err, rc, "writing %s: %s", path, vg_strerror(rc));
    snprintf(path, sizeof(path), "%s/chunks", w->tmp);
    if (fsync_path(path) || fsync_path(w->tmp)) return io_err(err, "syncing", w->tmp);
    return VG_OK;
}

vg_err_t vg_block_writer_commit(vg_block_writer_t *w, char *ulid, vg_error *err)
{
    if (w->ns == 0) return VG_EAGAIN;
    vg_err_t rc = commit_files(w, err);
    if (rc) return rc;
    char dst[4096];
    snprintf(dst, sizeof(dst), "%s/%s", w->parent, w->ulid);
    if (rename(w->tmp, dst)) return io_err(err, "renaming", w->tmp);
    w->committed = 1;
    if (fsync_path(w->parent)) return io_err(err, "syncing", w->parent);
    if (ulid) memcpy(ulid, w->ulid, VG_ULID_LEN + 1);
    return VG_OK;
}

void vg_block_writer_free(vg_block_writer_t *w)
{
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    if (!w->committed && w->tmp) vg_block_rmdir(w->tmp);
    vg_buf_free(&w->cbuf);
    vg_buf_free(&w->ibuf);
    vg_free(w->dts);
    vg_free(w->dv);
    vg_arena_free(w->a);
    vg_smap_free(&w->syms);
    vg_free(w->s);
    vg_free(w->src);
    vg_free(w->parent);
    vg_free(w->tmp);
    vg_free(w);
}
