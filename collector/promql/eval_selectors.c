/*
 * eval_selectors.c - instant-vector and range-vector selection.
 *
 * A selector is read from storage once for all steps of the query (the time
 * span of every step's look-back window or range, offsets and '@' applied),
 * then walked step by step with a cursor, which is how Prometheus avoids a
 * select per step. Semantics:
 *   - instant vector at t: the newest sample in (t - lookback, t]; a stale
 *     marker (NaN 0x7ff0000000000002) as newest sample ends the series;
 *   - range vector at t: the samples in (t - range, t] (left-open,
 *     right-closed, Prometheus 3), stale markers dropped;
 *   - offset shifts t back, '@' pins it (start()/end() are the query's).
 * Raw samples are counted against max_samples while they are held.
 */
#include "promql/eval.h"

#include <string.h>

#include "vigil/alloc.h"
#include "vigil/expfmt.h"

int64_t pq_ref_time(const pq_ev *ev, vg_pq_at at, int64_t at_ms, int64_t offset_ms, int64_t ts)
{
    int64_t base = ts;
    switch (at) {
    case VG_PQ_AT_TS: base = at_ms; break;
    case VG_PQ_AT_START: base = ev->c->q_start; break;
    case VG_PQ_AT_END: base = ev->c->q_end; break;
    case VG_PQ_AT_NONE: break;
    }
    return base - offset_ms;
}

static vg_err_t do_select(pq_ev *ev, const vg_pq_selector *sel, int64_t mint, int64_t maxt,
                          vg_seriesset_t **ss)
{
    pq_ctx *c = ev->c;
    vg_error e = {0};
    if (!c->q.select) return pq_fail(c, VG_EINVAL, "no storage to query");
    vg_err_t rc = c->q.select(c->q.ud, sel->matchers, sel->nmatchers, mint, maxt, ss, &e);
    if (rc) return pq_fail(c, rc, "expanding series: %s", vg_error_msg(&e, rc));
    return VG_OK;
}

/* Copy the current series' labels into the query arena. */
static vg_err_t series_labels(pq_ctx *c, vg_seriesset_t *ss, const vg_label_t **out, size_t *n)
{
    const vg_label_t *l = vg_seriesset_labels(ss, n);
    return pq_lbl_copy(c, l, *n, out);
}

static vg_err_t keep_series(pq_ctx *c, pq_matrix *out, pq_series *tmp)
{
    if (tmp->n == 0) {
        vg_free(tmp->t);
        vg_free(tmp->v);
        return VG_OK;
    }
    size_t k;
    vg_err_t rc = pq_mat_add(c, out, tmp->lbl, tmp->nlbl, tmp->hash, 0, &k);
    if (rc) {
        pq_samples_sub(c, tmp->n);
        vg_free(tmp->t);
        vg_free(tmp->v);
        return rc;
    }
    out->s[k] = *tmp;
    return VG_OK;
}

/* Walk one series' samples across the steps (one sample of look-ahead). */
static vg_err_t walk_series(pq_ev *ev, const vg_pq_selector *sel, vg_seriesset_t *ss, int ts_mode,
                            pq_series *tmp, size_t *loaded)
{
    pq_ctx *c = ev->c;
    int64_t nt = 0, pt = 0;
    double nv = 0, pv = 0;
    int have_prev = 0, have_next = vg_seriesset_sample_next(ss, &nt, &nv);
    vg_err_t rc = VG_OK;
    for (int64_t ts = ev->start; !rc && ts <= ev->end; ts += ev->interval) {
        int64_t ref = pq_ref_time(ev, sel->at, sel->at_ms, sel->offset_ms, ts);
        while (have_next && nt <= ref) {
            pt = nt;
            pv = nv;
            have_prev = 1;
            (*loaded)++;
            if ((rc = pq_samples_add(c, 1))) return rc;
            have_next = vg_seriesset_sample_next(ss, &nt, &nv);
        }
        if (!have_prev || pt <= ref - c->lookback_ms || vg_is_stale_nan(pv)) continue;
        rc = pq_series_push(c, tmp, ts, ts_mode ? (double)pt / 1000.0 : pv);
    }
    return rc;
}

vg_err_t pq_eval_vector_sel(pq_ev *ev, vg_pq_node *n, int ts_mode, pq_matrix *out)
{
    pq_ctx *c = ev->c;
    const vg_pq_selector *sel = &n->u.sel;
    int64_t r0 = pq_ref_time(ev, sel->at, sel->at_ms, sel->offset_ms, ev->start);
    int64_t r1 = pq_ref_time(ev, sel->at, sel->at_ms, sel->offset_ms, ev->end);
    vg_seriesset_t *ss = NULL;
    size_t loaded = 0;
    vg_err_t rc = do_select(ev, sel, r0 - c->lookback_ms + 1, r1, &ss);
    while (!rc && vg_seriesset_next(ss)) {
        pq_series tmp = {0};
        if ((rc = pq_tick(c))) break;
        if ((rc = series_labels(c, ss, &tmp.lbl, &tmp.nlbl))) break;
        tmp.hash = vg_labels_hash(tmp.lbl, tmp.nlbl);
        rc = walk_series(ev, sel, ss, ts_mode, &tmp, &loaded);
        if (rc) {
            pq_samples_sub(c, tmp.n);
            vg_free(tmp.t);
            vg_free(tmp.v);
            break;
        }
        rc = keep_series(c, out, &tmp);
    }
    if (!rc && ss && vg_seriesset_err(ss))
        rc = pq_fail(c, VG_ECORRUPT, "expanding series: chunk decode failed");
    pq_samples_sub(c, loaded);
    vg_seriesset_free(ss);
    return rc;
}

/* ------------------------------------------------------- range sources */

vg_err_t pq_rsrc_open(pq_ev *ev, vg_pq_node *n, pq_rsrc *src)
{
    memset(src, 0, sizeof(*src));
    src->ev = ev;
    n = pq_unwrap(n);
    if (n->kind == VG_PQ_SUBQUERY) {
        src->range_ms = n->u.sub.range_ms;
        src->offset_ms = n->u.sub.offset_ms;
        src->at = n->u.sub.at;
        src->at_ms = n->u.sub.at_ms;
        return pq_eval_subquery(ev, n, &src->sub);
    }
    if (n->kind != VG_PQ_MATRIX_SEL)
        return pq_fail(ev->c, VG_EINVAL, "expected a range vector argument");
    const vg_pq_selector *sel = &n->u.sel;
    src->is_selector = 1;
    src->range_ms = sel->range_ms;
    src->offset_ms = sel->offset_ms;
    src->at = sel->at;
    src->at_ms = sel->at_ms;
    int64_t r0 = pq_ref_time(ev, sel->at, sel->at_ms, sel->offset_ms, ev->start);
    int64_t r1 = pq_ref_time(ev, sel->at, sel->at_ms, sel->offset_ms, ev->end);
    return do_select(ev, sel, r0 - sel->range_ms + 1, r1, &src->ss);
}

static vg_err_t buf_push(pq_rsrc *src, int64_t t, double v)
{
    if (src->n == src->bcap) {
        size_t nc = src->bcap ? src->bcap * 2 : 64;
        int64_t *nt = vg_realloc(src->bt, nc * sizeof(*nt));
        if (!nt) return VG_ENOMEM;
        src->bt = nt;
        double *nv = vg_realloc(src->bv, nc * sizeof(*nv));
        if (!nv) return VG_ENOMEM;
        src->bv = nv;
        src->bcap = nc;
    }
    src->bt[src->n] = t;
    src->bv[src->n] = v;
    src->n++;
    return VG_OK;
}

static int next_selected(pq_rsrc *src, vg_err_t *rc)
{
    pq_ctx *c = src->ev->c;
    if (!vg_seriesset_next(src->ss)) return 0;
    if ((*rc = pq_tick(c))) return 0;
    if ((*rc = series_labels(c, src->ss, &src->lbl, &src->nlbl))) return 0;
    src->drop_name = 0;
    src->n = 0;
    int64_t t;
    double v;
    while (vg_seriesset_sample_next(src->ss, &t, &v)) {
        if (vg_is_stale_nan(v)) continue;
        src->loaded++;
        if ((*rc = pq_samples_add(c, 1)) || (*rc = buf_push(src, t, v))) return 0;
    }
    src->t = src->bt;
    src->v = src->bv;
    return 1;
}

int pq_rsrc_next(pq_rsrc *src, vg_err_t *rc)
{
    *rc = VG_OK;
    if (src->is_selector) return next_selected(src, rc);
    if (src->si >= src->sub.n) return 0;
    pq_series *s = &src->sub.s[src->si++];
    src->lbl = s->lbl;
    src->nlbl = s->nlbl;
    src->drop_name = 0;
    /* A name-dropping function inside a subquery is respected. */
    if (s->drop_name &&
        (*rc = pq_lbl_without(src->ev->c, s->lbl, s->nlbl, NULL, 0, 1, &src->lbl, &src->nlbl)))
        return 0;
    src->t = s->t;
    src->v = s->v;
    src->n = s->n;
    return 1;
}

void pq_rsrc_close(pq_rsrc *src)
{
    pq_ctx *c = src->ev ? src->ev->c : NULL;
    if (c) pq_samples_sub(c, src->loaded);
    vg_seriesset_free(src->ss);
    vg_free(src->bt);
    vg_free(src->bv);
    pq_mat_free(c, &src->sub);
    memset(src, 0, sizeof(*src));
}

/* A matrix selector or subquery evaluated at one instant: the raw window. */
vg_err_t pq_eval_matrix_sel(pq_ev *ev, vg_pq_node *n, pq_matrix *out)
{
    pq_rsrc src;
    vg_err_t rc = pq_rsrc_open(ev, n, &src);
    int64_t maxt = pq_ref_time(ev, src.at, src.at_ms, src.offset_ms, ev->start);
    int64_t mint = maxt - src.range_ms;
    while (!rc && pq_rsrc_next(&src, &rc)) {
        pq_series tmp = {0};
        tmp.lbl = src.lbl;
        tmp.nlbl = src.nlbl;
        tmp.hash = vg_labels_hash(tmp.lbl, tmp.nlbl);
        for (size_t i = 0; i < src.n && !rc; i++)
            if (src.t[i] > mint && src.t[i] <= maxt)
                rc = pq_series_push(ev->c, &tmp, src.t[i], src.v[i]);
        if (rc) {
            pq_samples_sub(ev->c, tmp.n);
            vg_free(tmp.t);
            vg_free(tmp.v);
            break;
        }
        rc = keep_series(ev->c, out, &tmp);
    }
    pq_rsrc_close(&src);
    return rc;
}
