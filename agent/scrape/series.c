/*
 * series.c - what a target remembers between scrapes, for staleness.
 *
 * Staleness needs two things from the last good scrape: which series it
 * had (to see one vanish) and, for the few that vanish, their labels (to
 * emit the marker). Keeping full label sets for every series of every
 * target costs more memory than everything else in the agent, so a target
 * keeps only:
 *   - the sorted 64-bit hashes of the series one body yields, with a byte
 *     of flags each (in the last scrape, tracked for staleness);
 *   - that body, compressed with zstd level 1.
 * Labels of a vanished series are recovered by re-parsing the kept body
 * through the same merge and relabel steps and picking the hashes flagged
 * stale (append.c). The kept body is replaced only when a scrape has a
 * series it does not cover, so a target whose series set is stable
 * compresses its body once; a series that vanishes and comes back costs
 * nothing. Identity is by hash: two different series with the same 64-bit
 * seeded hash would share staleness state (odds ~n^2/2^65 per target).
 */
#include <string.h>
#include <zstd.h>

#include "scrape/scrape_int.h"
#include "vigil/alloc.h"

#define ZSTD_KEEP_LEVEL 1

void vg_scrape_series_reset(vg_scrape_series *s)
{
    vg_free(s->hash);
    vg_free(s->flags);
    vg_free(s->body);
    memset(s, 0, sizeof *s);
}

long vg_scrape_series_find(const vg_scrape_series *s, uint64_t h)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->hash[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n && s->hash[lo] == h ? (long)lo : -1;
}

/* Next ref at or after *j that is not a repeat (DUP, or a collision of the previous hash). */
static int next_cur(const vg_stage_ref *cur, size_t n, size_t *j)
{
    while (*j < n && ((cur[*j].flags & VG_STAGE_DUP) || (*j && cur[*j].hash == cur[*j - 1].hash)))
        (*j)++;
    return *j < n;
}

static uint8_t pending(const vg_stage_ref *r)
{
    unsigned f = VG_SERIES_LAST | (r->flags & VG_STAGE_TRACK ? VG_SERIES_TRACK : 0);
    return (uint8_t)(f * VG_SERIES_NEXT);
}

size_t vg_scrape_series_diff(vg_scrape_series *s, const vg_stage_ref *cur, size_t n, int *covered,
                             size_t *nstale)
{
    size_t i = 0, j = 0, added = 0;
    *covered = 1;
    *nstale = 0;
    int more = next_cur(cur, n, &j);
    while (i < s->n || more) {
        uint8_t *f = i < s->n ? &s->flags[i] : NULL;
        if (!more || (f && s->hash[i] < cur[j].hash)) { /* only in the kept set */
            *f &= VG_SERIES_LAST | VG_SERIES_TRACK;
            if ((*f & VG_SERIES_LAST) && (*f & VG_SERIES_TRACK)) {
                *f |= VG_SERIES_STALE;
                (*nstale)++;
            }
            i++;
            continue;
        }
        if (!f || s->hash[i] > cur[j].hash) { /* new to the kept set */
            added++;
            *covered = 0;
        } else {
            if (!(*f & VG_SERIES_LAST)) added++;
            *f = (uint8_t)((*f & (VG_SERIES_LAST | VG_SERIES_TRACK)) | pending(&cur[j]));
            i++;
        }
        j++;
        more = next_cur(cur, n, &j);
    }
    return added;
}

size_t vg_scrape_series_stale_all(vg_scrape_series *s)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        s->flags[i] &= VG_SERIES_LAST | VG_SERIES_TRACK;
        if (s->flags[i] == (VG_SERIES_LAST | VG_SERIES_TRACK)) {
            s->flags[i] |= VG_SERIES_STALE;
            k++;
        }
    }
    return k;
}

void vg_scrape_series_apply(vg_scrape_series *s)
{
    for (size_t i = 0; i < s->n; i++) s->flags[i] = (uint8_t)(s->flags[i] / VG_SERIES_NEXT);
}

/* Compress body[0..len) into a new exact-size allocation. */
static vg_err_t compress_body(const char *body, size_t len, ZSTD_CCtx *zc, void **out,
                              size_t *outlen)
{
    size_t bound = ZSTD_compressBound(len);
    char *dst = vg_malloc(bound);
    if (!dst) return VG_ENOMEM;
    size_t z = ZSTD_compressCCtx(zc, dst, bound, body, len, ZSTD_KEEP_LEVEL);
    if (ZSTD_isError(z)) {
        vg_free(dst);
        return VG_EINTERNAL;
    }
    char *fit = vg_realloc(dst, z ? z : 1);
    *out = fit ? fit : dst;
    *outlen = z;
    return VG_OK;
}

vg_err_t vg_scrape_series_store(vg_scrape_series *s, const vg_stage_ref *cur, size_t n,
                                const char *body, size_t len, int fmt, void *zc)
{
    vg_scrape_series ns = {.fmt = fmt, .raw_len = len};
    int tracked = 0;
    size_t m = 0;
    for (size_t j = 0; next_cur(cur, n, &j); j++) m++;
    if (m && (!(ns.hash = vg_malloc(m * sizeof *ns.hash)) || !(ns.flags = vg_malloc(m))))
        goto nomem;
    for (size_t j = 0; next_cur(cur, n, &j); j++) {
        ns.hash[ns.n] = cur[j].hash;
        ns.flags[ns.n++] = (uint8_t)(pending(&cur[j]) / VG_SERIES_NEXT);
        tracked |= (cur[j].flags & VG_STAGE_TRACK) != 0;
    }
    if (tracked && zc) {
        vg_err_t rc = compress_body(body, len, zc, &ns.body, &ns.body_len);
        if (rc) {
            vg_scrape_series_reset(&ns);
            return rc;
        }
    }
    vg_scrape_series_reset(s);
    *s = ns;
    return VG_OK;
nomem:
    vg_scrape_series_reset(&ns);
    return VG_ENOMEM;
}
