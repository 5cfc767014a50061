/*
 * tsdb_query.c - the snapshot querier and label name/value look-ups.
 *
 * A select copies what it needs from the head under its locks (see head.h)
 * into an arena owned by the series set, so iterating never holds a lock and
 * is safe against concurrent appends.
 */
#include "tsdb/tsdb_int.h"

#include <string.h>

#include "tsdb/chunk.h"
#include "tsdb/head.h"
#include "vigil/alloc.h"
#include "vigil/arena.h"
#include "vigil/buf.h"

/* ---- querier ---- */

struct vg_seriesset {
    vg_arena_t *arena;
    vg_snap_series *s;
    size_t n, cur; /* cur = index + 1 of the current series; 0 before the first */
    size_t chunk;  /* next chunk of the current series to open */
    vg_chunk_iter it;
    int it_live;
    int64_t mint, maxt;
    vg_err_t err;
};

vg_err_t vg_tsdb_select(vg_tsdb_t *db, const char *tenant, vg_matcher_t *const *m, size_t nm,
                        int64_t mint, int64_t maxt, vg_seriesset_t **out, vg_error *err)
{
    vg_err_t rc = VG_OK;
    *out = NULL;
    if (!vg_tsdb_tenant_valid(tenant))
        return vg_error_set(err, VG_EINVAL, "invalid tenant %.80s", tenant ? tenant : "(null)");
    vg_seriesset_t *ss = vg_calloc(1, sizeof(*ss));
    if (!ss || !(ss->arena = vg_arena_new(0))) {
        rc = VG_ENOMEM;
        goto fail;
    }
    ss->mint = mint;
    ss->maxt = maxt;
    vg_head_t *h = vg_tsdb_tenant_find(db, tenant);
    if (h) rc = vg_head_snapshot(h, m, nm, mint, maxt, ss->arena, &ss->s, &ss->n);
    if (rc) goto fail;
    *out = ss;
    return VG_OK;
fail:
    vg_seriesset_free(ss);
    return vg_error_set(err, rc, "selecting series: %s", vg_strerror(rc));
}

int vg_seriesset_next(vg_seriesset_t *ss)
{
    if (ss->cur >= ss->n) return 0;
    ss->cur++;
    ss->chunk = 0;
    ss->it_live = 0;
    return 1;
}

const vg_label_t *vg_seriesset_labels(vg_seriesset_t *ss, size_t *n)
{
    if (ss->cur == 0) {
        *n = 0;
        return NULL;
    }
    *n = ss->s[ss->cur - 1].nlabels;
    return ss->s[ss->cur - 1].labels;
}

int vg_seriesset_sample_next(vg_seriesset_t *ss, int64_t *ts, double *v)
{
    if (ss->cur == 0) return 0;
    const vg_snap_series *s = &ss->s[ss->cur - 1];
    for (;;) {
        if (!ss->it_live) {
            if (ss->chunk >= s->nchunks) return 0;
            vg_chunk_iter_init(&ss->it, s->chunks[ss->chunk].data, s->chunks[ss->chunk].len);
            ss->chunk++;
            ss->it_live = 1;
        }
        if (!vg_chunk_iter_next(&ss->it, ts, v)) {
            if (vg_chunk_iter_err(&ss->it)) ss->err = vg_chunk_iter_err(&ss->it);
            ss->it_live = 0;
            continue;
        }
        if (*ts < ss->mint) continue;
        if (*ts > ss->maxt) {
            ss->chunk = s->nchunks; /* chunks are in time order: nothing later fits */
            ss->it_live = 0;
            return 0;
        }
        return 1;
    }
}

size_t vg_seriesset_len(const vg_seriesset_t *ss)
{
    return ss->n;
}

vg_err_t vg_seriesset_err(const vg_seriesset_t *ss)
{
    return ss->err;
}

void vg_seriesset_free(vg_seriesset_t *ss)
{
    if (!ss) return;
    vg_arena_free(ss->arena);
    vg_free(ss);
}

/* ---- label names and values ---- */

/* Pack strings into one allocation: the pointer array, then the bytes. */
static vg_err_t pack_strings(const char *const *v, size_t n, char ***out)
{
    size_t bytes = (n ? n : 1) * sizeof(char *);
    for (size_t i = 0; i < n; i++) bytes += strlen(v[i]) + 1;
    char **p = vg_malloc(bytes);
    if (!p) return VG_ENOMEM;
    char *w = (char *)(p + (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]) + 1;
        memcpy(w, v[i], len);
        p[i] = w;
        w += len;
    }
    *out = p;
    return VG_OK;
}

static vg_err_t label_strings(vg_tsdb_t *db, const char *tenant, const char *name,
                              vg_matcher_t *const *m, size_t nm, int64_t mint, int64_t maxt,
                              char ***out, size_t *n, vg_error *err)
{
    const char **v = NULL;
    vg_err_t rc = VG_OK;
    *out = NULL;
    *n = 0;
    if (!vg_tsdb_tenant_valid(tenant))
        return vg_error_set(err, VG_EINVAL, "invalid tenant %.80s", tenant ? tenant : "(null)");
    vg_arena_t *a = vg_arena_new(0);
    if (!a) return vg_error_set(err, VG_ENOMEM, "out of memory");
    vg_head_t *h = vg_tsdb_tenant_find(db, tenant);
    if (h) rc = vg_head_label_strings(h, name, m, nm, mint, maxt, a, &v, n);
    if (!rc) rc = pack_strings(v, *n, out);
    vg_arena_free(a);
    if (rc) {
        *n = 0;
        return vg_error_set(err, rc, "listing labels: %s", vg_strerror(rc));
    }
    return VG_OK;
}

vg_err_t vg_tsdb_label_names(vg_tsdb_t *db, const char *tenant, vg_matcher_t *const *m, size_t nm,
                             int64_t mint, int64_t maxt, char ***out, size_t *n, vg_error *err)
{
    return label_strings(db, tenant, NULL, m, nm, mint, maxt, out, n, err);
}

vg_err_t vg_tsdb_label_values(vg_tsdb_t *db, const char *tenant, const char *name,
                              vg_matcher_t *const *m, size_t nm, int64_t mint, int64_t maxt,
                              char ***out, size_t *n, vg_error *err)
{
    return label_strings(db, tenant, name, m, nm, mint, maxt, out, n, err);
}
