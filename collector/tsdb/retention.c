/*
 * retention.c - the retention plan and the pass that applies it.
 *
 * Stores hold tens to hundreds of blocks, so the plan uses plain quadratic
 * scans (coverage is a sweep over the next tier's blocks) rather than an
 * interval structure: simple to check against the decision table in
 * retention.h. The pass snapshots every tenant's list with references,
 * plans, and retires the chosen blocks through vg_tsdb_blocks_delete (a
 * query still reading one keeps it on disk until it lets go).
 */
#include "tsdb/retention.h"

#include <stdlib.h>
#include <string.h>

#include "tsdb/blocks_int.h"
#include "tsdb/tiers.h"
#include "vigil/alloc.h"
#include "vigil/log.h"

#define LOGC "tsdb.retention"

static const char *const tier_names[3] = {"raw", "5m", "1h"};

int vg_ret_tier(int64_t res)
{
    return res <= 0 ? 0 : res <= 300000 ? 1 : 2;
}

static int expired(const vg_ret_block *b, const vg_ret_opts *o, int tier)
{
    int64_t keep = o->keep_ms[tier];
    return keep > 0 && b->now != INT64_MIN && b->maxt <= b->now - keep;
}

/* True when blocks of the next tier (same tenant) cover [x->mint, x->maxt). */
static int covered(const vg_ret_block *b, size_t n, const vg_ret_block *x, int next)
{
    int64_t pos = x->mint;
    while (pos < x->maxt) {
        int64_t best = pos;
        for (size_t i = 0; i < n; i++)
            if (b[i].tenant == x->tenant && vg_ret_tier(b[i].res) == next && b[i].mint <= pos &&
                b[i].maxt > best)
                best = b[i].maxt;
        if (best == pos) return 0;
        pos = best;
    }
    return 1;
}

static int age_out(const vg_ret_block *b, size_t n, const vg_ret_block *x, const vg_ret_opts *o)
{
    int tier = vg_ret_tier(x->res);
    if (!expired(x, o, tier)) return 0;
    if (tier == 2) return 1;
    return covered(b, n, x, tier + 1) || expired(x, o, tier + 1);
}

/* Index of the kept block holding the oldest data, or n. */
static size_t oldest_kept(const vg_ret_block *b, size_t n, const vg_ret_reason *out)
{
    size_t best = n;
    for (size_t i = 0; i < n; i++) {
        if (out[i] != VG_RET_KEEP) continue;
        if (best == n || b[i].maxt < b[best].maxt ||
            (b[i].maxt == b[best].maxt && b[i].res < b[best].res))
            best = i;
    }
    return best;
}

void vg_retention_plan(const vg_ret_block *b, size_t n, const vg_ret_opts *o, vg_ret_reason *out)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = age_out(b, n, &b[i], o) ? VG_RET_AGE : VG_RET_KEEP;
        if (out[i] == VG_RET_KEEP) total += b[i].bytes;
    }
    while (o->max_bytes > 0 && total > o->max_bytes) {
        size_t i = oldest_kept(b, n, out);
        if (i == n) break;
        out[i] = VG_RET_BYTES;
        total -= b[i].bytes;
    }
}

/* ---- the pass ---- */

typedef struct snap {
    vg_block_t **b;
    char (*tenant)[VG_TENANT_MAX + 1];
    vg_ret_block *d;
    size_t n;
} snap;

static vg_err_t take_snapshot(vg_tsdb_blocks_t *bs, int64_t now_ms, snap *s)
{
    size_t total = 0;
    pthread_mutex_lock(&bs->mu);
    size_t nt = bs->nt; /* tenants are only added, so indices are stable */
    pthread_mutex_unlock(&bs->mu);
    int64_t *now = vg_malloc((nt ? nt : 1) * sizeof(*now));
    for (size_t i = 0; now && i < nt; i++) now[i] = vg_tiers_tenant_now(bs, i, now_ms);
    pthread_mutex_lock(&bs->mu);
    for (size_t i = 0; i < nt; i++) total += bs->t[i].n;
    s->b = vg_malloc((total ? total : 1) * sizeof(*s->b));
    s->tenant = vg_malloc((total ? total : 1) * sizeof(*s->tenant));
    s->d = vg_malloc((total ? total : 1) * sizeof(*s->d));
    for (size_t i = 0; now && s->b && s->tenant && s->d && i < nt; i++)
        for (size_t j = 0; j < bs->t[i].n; j++) {
            vg_block_t *b = bs->t[i].b[j];
            const vg_block_meta *m = vg_block_get_meta(b);
            vg_block_ref(b);
            s->b[s->n] = b;
            memcpy(s->tenant[s->n], bs->t[i].name, sizeof(*s->tenant));
            s->d[s->n++] =
                (vg_ret_block){i, m->mint, m->maxt, m->resolution_ms, vg_block_size(b), now[i]};
        }
    pthread_mutex_unlock(&bs->mu);
    vg_err_t rc = now && s->b && s->tenant && s->d ? VG_OK : VG_ENOMEM;
    vg_free(now);
    return rc;
}

static void retire(vg_tsdb_blocks_t *bs, snap *s, size_t i, vg_ret_reason r,
                   vg_metric_t *const *deleted)
{
    const vg_block_meta *m = vg_block_get_meta(s->b[i]);
    int tier = vg_ret_tier(m->resolution_ms);
    if (vg_tsdb_blocks_delete(bs, s->tenant[i], m->ulid)) return;
    vg_log_info(LOGC, "deleted block", "tenant=%s block=%s tier=%s reason=%s mint=%lld maxt=%lld",
                s->tenant[i], m->ulid, tier_names[tier],
                r == VG_RET_AGE ? "retention" : "max_bytes", (long long)m->mint,
                (long long)m->maxt);
    if (deleted && deleted[tier * 2 + r - 1]) vg_metric_inc(deleted[tier * 2 + r - 1]);
}

vg_err_t vg_retention_pass(vg_tsdb_blocks_t *bs, int64_t now_ms, const vg_ret_opts *o,
                           vg_metric_t *const *deleted, size_t *ndel, vg_error *err)
{
    snap s = {0};
    size_t dummy = 0;
    if (!ndel) ndel = &dummy;
    *ndel = 0;
    pthread_mutex_lock(&bs->pass_mu);
    vg_err_t rc = take_snapshot(bs, now_ms, &s);
    vg_ret_reason *out = rc ? NULL : vg_malloc((s.n ? s.n : 1) * sizeof(*out));
    if (!out) rc = vg_error_set(err, VG_ENOMEM, "retention: out of memory");
    if (!rc) vg_retention_plan(s.d, s.n, o, out);
    for (size_t i = 0; !rc && i < s.n; i++)
        if (out[i] != VG_RET_KEEP) {
            retire(bs, &s, i, out[i], deleted);
            (*ndel)++;
        }
    pthread_mutex_unlock(&bs->pass_mu);
    if (s.b) vg_tsdb_blocks_release(s.b, s.n);
    vg_free(s.tenant);
    vg_free(s.d);
    vg_free(out);
    return rc;
}

const char *vg_ret_tier_name(int tier)
{
    return tier >= 0 && tier < 3 ? tier_names[tier] : "1h";
}
