/*
 * block_read.c - open a block through mmap and answer selects from it.
 *
 * Open reads meta.json, maps the index (checked whole: block_index.c) and
 * every chunk segment (header checked). A select resolves postings, decodes
 * the selected series entries and points each chunk straight into the
 * segment map after checking its bounds and CRC32C, so queries copy only
 * descriptors. The reference count lets compaction and retention retire a
 * block while a query still iterates it: the last unref unmaps and, for a
 * retired block, removes the directory.
 */
#include "tsdb/block.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsdb/block_index.h"
#include "vigil/alloc.h"
#include "vigil/crc32c.h"

#define MAX_SEGMENTS 100000

typedef struct mapping {
    uint8_t *p;
    size_t len;
} mapping;

struct vg_block {
    char *dir;
    vg_block_meta meta;
    mapping index;
    mapping *segs;
    size_t nsegs;
    vg_bindex_t *ix;
    uint64_t bytes;
    int refs;
    int deleted;
};

static vg_err_t map_file(const char *path, mapping *m, vg_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vg_error_set(err, VG_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    vg_err_t rc = VG_OK;
    if (fstat(fd, &st) || st.st_size <= 0) {
        rc = vg_error_set(err, VG_ECORRUPT, "%s: empty or unreadable", path);
    } else {
        m->len = (size_t)st.st_size;
        m->p = mmap(NULL, m->len, PROT_READ, MAP_SHARED, fd, 0);
        if (m->p == MAP_FAILED) {
            m->p = NULL;
            rc = vg_error_set(err, VG_EIO, "%s: mmap: %s", path, strerror(errno));
        }
    }
    close(fd);
    return rc;
}

static void unmap(mapping *m)
{
    if (m->p) munmap(m->p, m->len);
    m->p = NULL;
}

static vg_err_t read_meta(vg_block_t *b, vg_error *err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/meta.json", b->dir);
    mapping m = {0};
    vg_err_t rc = map_file(path, &m, err);
    if (!rc) rc = vg_block_meta_parse((const char *)m.p, m.len, &b->meta, err);
    if (rc && m.p) vg_error_prefix(err, "%s", path);
    unmap(&m);
    return rc;
}

static vg_err_t open_index(vg_block_t *b, vg_error *err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/index", b->dir);
    vg_err_t rc = map_file(path, &b->index, err);
    if (!rc) rc = vg_bindex_open(b->index.p, b->index.len, 1, &b->ix, err);
    if (rc && b->index.p) vg_error_prefix(err, "%s", path);
    b->bytes += b->index.len;
    return rc;
}

static vg_err_t open_segment(vg_block_t *b, uint32_t no, vg_error *err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/chunks/%06u", b->dir, no);
    mapping *m = &b->segs[no - 1];
    vg_err_t rc = map_file(path, m, err);
    if (rc) return rc;
    b->bytes += m->len;
    if (m->len < 8 || memcmp(m->p, "VGCK", 4) != 0 || m->p[4] < 1 || m->p[4] > 2 ||
        (m->p[5] | m->p[6] | m->p[7]) != 0)
        return vg_error_set(err, VG_ECORRUPT, "%s: chunks: bad header", path);
    return VG_OK;
}

static vg_err_t open_segments(vg_block_t *b, vg_error *err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/chunks", b->dir);
    DIR *d = opendir(path);
    if (!d) return vg_error_set(err, VG_ECORRUPT, "%s: %s", path, strerror(errno));
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    if (n > MAX_SEGMENTS) return vg_error_set(err, VG_ECORRUPT, "%s: too many segments", path);
    b->segs = vg_calloc(n ? n : 1, sizeof(*b->segs));
    if (!b->segs) return vg_error_set(err, VG_ENOMEM, "out of memory");
    b->nsegs = n;
    for (size_t i = 0; i < n; i++) {
        vg_err_t rc = open_segment(b, (uint32_t)i + 1, err);
        if (rc) return rc;
    }
    return VG_OK;
}

static void block_close(vg_block_t *b)
{
    if (!b) return;
    vg_bindex_free(b->ix);
    unmap(&b->index);
    for (size_t i = 0; i < b->nsegs; i++) unmap(&b->segs[i]);
    vg_free(b->segs);
    if (b->deleted && b->dir) vg_block_rmdir(b->dir);
    vg_block_meta_clear(&b->meta);
    vg_free(b->dir);
    vg_free(b);
}

vg_err_t vg_block_open(const char *dir, vg_block_t **out, vg_error *err)
{
    *out = NULL;
    vg_block_t *b = vg_calloc(1, sizeof(*b));
    if (!b || !(b->dir = vg_strdup(dir))) {
        vg_free(b);
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
    b->refs = 1;
    vg_err_t rc = read_meta(b, err);
    if (!rc) rc = open_index(b, err);
    if (!rc) rc = open_segments(b, err);
    if (rc) {
        block_close(b);
        return rc;
    }
    *out = b;
    return VG_OK;
}

void vg_block_ref(vg_block_t *b)
{
    __atomic_add_fetch(&b->refs, 1, __ATOMIC_ACQ_REL);
}

void vg_block_unref(vg_block_t *b)
{
    if (b && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0) block_close(b);
}

void vg_block_mark_deleted(vg_block_t *b)
{
    __atomic_store_n(&b->deleted, 1, __ATOMIC_RELEASE);
}

const vg_block_meta *vg_block_get_meta(const vg_block_t *b)
{
    return &b->meta;
}

const char *vg_block_dir(const vg_block_t *b)
{
    return b->dir;
}

uint64_t vg_block_size(const vg_block_t *b)
{
    return b->bytes;
}

/* Point c->data into its segment after checking bounds and CRC. */
static vg_err_t resolve_chunk(const vg_block_t *b, vg_block_chunk *c, vg_error *err)
{
    uint64_t ref = c->len;
    uint32_t seg = (uint32_t)(ref >> 32), off = (uint32_t)ref;
    if (seg == 0 || seg > b->nsegs || off < 8 || off >= b->segs[seg - 1].len)
        return vg_error_set(err, VG_ECORRUPT, "%s/index: series: chunk ref out of bounds", b->dir);
    const mapping *m = &b->segs[seg - 1];
    vg_bx_dec d = {m->p + off, m->p + m->len, 1};
    uint64_t len = vg_bx_uvarint(&d);
    if (!d.ok || len > (uint64_t)(d.end - d.p) || (uint64_t)(d.end - d.p) - len < 4)
        return vg_error_set(err, VG_ECORRUPT, "%s/chunks/%06u: chunk at %u out of bounds", b->dir,
                            seg, off);
    if (vg_crc32c(0, d.p, len) != vg_bx_get_u32(d.p + len))
        return vg_error_set(err, VG_ECORRUPT, "%s/chunks/%06u: chunk at %u: checksum mismatch",
                            b->dir, seg, off);
    c->data = d.p;
    c->len = (size_t)len;
    return VG_OK;
}

/* Keep the chunks overlapping [mint, maxt], resolved. */
static vg_err_t filter_chunks(const vg_block_t *b, vg_block_chunk *c, size_t *nc, int64_t mint,
                              int64_t maxt, vg_error *err)
{
    size_t k = 0;
    for (size_t i = 0; i < *nc; i++) {
        if (c[i].maxt < mint || c[i].mint > maxt) continue;
        c[k] = c[i];
        vg_err_t rc = resolve_chunk(b, &c[k++], err);
        if (rc) return rc;
    }
    *nc = k;
    return VG_OK;
}

vg_err_t vg_block_select(vg_block_t *b, vg_matcher_t *const *m, size_t nm, int64_t mint,
                         int64_t maxt, vg_arena_t *a, vg_block_series **out, size_t *n,
                         vg_error *err)
{
    vg_postings p = {0};
    *out = NULL;
    *n = 0;
    if (b->meta.maxt <= mint || b->meta.mint > maxt) return VG_OK;
    vg_err_t rc = vg_bindex_select(b->ix, m, nm, &p, err);
    vg_block_series *s = rc ? NULL : vg_arena_alloc(a, (p.n ? p.n : 1) * sizeof(*s));
    if (!rc && !s) rc = vg_error_set(err, VG_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < p.n && !rc; i++) {
        vg_label_t *l;
        rc =
            vg_bindex_series(b->ix, p.v[i], a, &l, &s[k].nlabels, &s[k].chunks, &s[k].nchunks, err);
        if (!rc) rc = filter_chunks(b, s[k].chunks, &s[k].nchunks, mint, maxt, err);
        s[k].labels = l;
        if (!rc && s[k].nchunks) k++;
    }
    vg_postings_free(&p);
    if (rc) {
        if (rc == VG_ECORRUPT && !strstr(err ? err->msg : "", b->dir))
            vg_error_prefix(err, "%s/index", b->dir);
        return rc;
    }
    *out = s;
    *n = k;
    return VG_OK;
}

static vg_err_t strings_matching(vg_block_t *b, const char *name, vg_matcher_t *const *m, size_t nm,
                                 vg_arena_t *a, const char ***out, size_t *n, vg_error *err);

vg_err_t vg_block_label_strings(vg_block_t *b, const char *name, vg_matcher_t *const *m, size_t nm,
                                vg_arena_t *a, const char ***out, size_t *n, vg_error *err)
{
    if (nm == 0) {
        vg_err_t rc = vg_bindex_strings(b->ix, name, a, out, n);
        return rc ? vg_error_set(err, rc, "out of memory") : VG_OK;
    }
    return strings_matching(b, name, m, nm, a, out, n, err);
}

static int str_cmp(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static vg_err_t strings_matching(vg_block_t *b, const char *name, vg_matcher_t *const *m, size_t nm,
                                 vg_arena_t *a, const char ***out, size_t *n, vg_error *err)
{
    vg_postings p = {0};
    vg_err_t rc = vg_bindex_select(b->ix, m, nm, &p, err);
    size_t cap = 64, k = 0;
    const char **v = rc ? NULL : vg_malloc(cap * sizeof(*v));
    if (!rc && !v) rc = VG_ENOMEM;
    for (size_t i = 0; i < p.n && !rc; i++) {
        vg_label_t *l;
        vg_block_chunk *c;
        size_t nl, nc;
        rc = vg_bindex_series(b->ix, p.v[i], a, &l, &nl, &c, &nc, err);
        for (size_t j = 0; j < nl && !rc; j++) {
            if (name && strcmp(l[j].name, name) != 0) continue;
            if (k == cap) {
                const char **nv = vg_realloc(v, 2 * cap * sizeof(*v));
                if (!nv) {
                    rc = VG_ENOMEM;
                    break;
                }
                v = nv;
                cap *= 2;
            }
            v[k++] = name ? l[j].value : l[j].name;
        }
    }
    vg_postings_free(&p);
    if (!rc) qsort(v, k, sizeof(*v), str_cmp);
    size_t u = 0;
    for (size_t i = 0; i < k && !rc; i++)
        if (u == 0 || strcmp(v[u - 1], v[i]) != 0) v[u++] = v[i];
    const char **res = rc ? NULL : vg_arena_alloc(a, (u ? u : 1) * sizeof(*res));
    if (res) memcpy(res, v, u * sizeof(*res));
    vg_free(v);
    if (!rc && !res) rc = VG_ENOMEM;
    if (rc == VG_ENOMEM) return vg_error_set(err, rc, "out of memory");
    if (rc) return rc;
    *out = res;
    *n = u;
    return VG_OK;
}
