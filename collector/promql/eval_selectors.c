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
 *
 * Decoding Gorilla chunks is most of a range query over many series, so a
 * range selector decodes each series a chunk at a time (vg_seriesset_read)
 * into flat arrays, and the range functions slide their window over them.
 * Over many series the decoding runs on a helper thread, a batch of series
 * ahead of the evaluator (see the prefetch section).
 */
#include "promql/eval.h"

#include <pthread.h>
#include <string.h>

#include "tsdb/chunk.h"
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
    int hint = c->sel_aggr; /* set by the function around this selector, used once */
    c->sel_aggr = 0;
    if (!c->q.select) return pq_fail(c, VG_EINVAL, "no storage to query");
    vg_err_t rc = pq_select(c, sel->matchers, sel->nmatchers, mint, maxt, hint, ss, &e);
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
        ev->c->sel_aggr = 0; /* the hint is for a selector, not a subquery's insides */
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

/* A growable pair of sample arrays. */
typedef struct sbuf {
    int64_t *t;
    double *v;
    size_t n, cap;
} sbuf;

/* Room for want more samples. */
static vg_err_t sbuf_reserve(sbuf *b, size_t want)
{
    if (b->n + want <= b->cap) return VG_OK;
    size_t nc = b->cap ? b->cap * 2 : 1024;
    while (nc < b->n + want) nc *= 2;
    int64_t *nt = vg_realloc(b->t, nc * sizeof(*nt));
    if (!nt) return VG_ENOMEM;
    b->t = nt;
    double *nv = vg_realloc(b->v, nc * sizeof(*nv));
    if (!nv) return VG_ENOMEM;
    b->v = nv;
    b->cap = nc;
    return VG_OK;
}

/* Append the current series of ss to b, a chunk at a time, stale markers
 * dropped in place. */
static vg_err_t sbuf_read_series(sbuf *b, vg_seriesset_t *ss)
{
    for (;;) {
        vg_err_t rc = sbuf_reserve(b, VG_CHUNK_MAX_SAMPLES);
        if (rc) return rc;
        int64_t *t = b->t + b->n;
        double *v = b->v + b->n;
        size_t k = vg_seriesset_read(ss, t, v, b->cap - b->n), w = 0;
        if (k == 0) return VG_OK;
        while (w < k && !vg_is_stale_nan(v[w])) w++; /* in place up to the first marker */
        for (size_t q = w; q < k; q++) {
            t[w] = t[q];
            v[w] = v[q];
            w += !vg_is_stale_nan(v[q]);
        }
        b->n += w;
    }
}

vg_err_t pq_read_series(vg_seriesset_t *ss, int64_t **t, double **v, size_t *n, size_t *cap)
{
    sbuf b = {*t, *v, *n, *cap};
    vg_err_t rc = sbuf_read_series(&b, ss);
    *t = b.t;
    *v = b.v;
    *n = b.n;
    *cap = b.cap;
    return rc;
}

/* The current series' samples are in; account for them and expose them. */
static int series_loaded(pq_rsrc *src, const int64_t *t, const double *v, size_t n, vg_err_t *rc)
{
    src->loaded += n;
    if ((*rc = pq_samples_add(src->ev->c, n))) return 0;
    src->t = t;
    src->v = v;
    src->n = n;
    return 1;
}

static int next_selected(pq_rsrc *src, vg_err_t *rc)
{
    pq_ctx *c = src->ev->c;
    if (!vg_seriesset_next(src->ss)) return 0;
    if ((*rc = pq_tick(c))) return 0;
    if ((*rc = series_labels(c, src->ss, &src->lbl, &src->nlbl))) return 0;
    src->drop_name = 0;
    sbuf b = {src->bt, src->bv, 0, src->bcap};
    *rc = sbuf_read_series(&b, src->ss);
    src->bt = b.t;
    src->bv = b.v;
    src->bcap = b.cap;
    return !*rc && series_loaded(src, b.t, b.v, b.n, rc);
}

/* ---- prefetch: batches of series decoded ahead on a helper thread ----
 *
 * With many series, a helper decodes the next batch (about PF_BATCH
 * samples, whole series) while the query's thread evaluates the current
 * one: two batches handed back and forth, so the threads meet once per
 * batch, not once per series (a context switch per series cost more than
 * the overlap gained). Only the helper touches the series set until it is
 * joined; label copies, limits and the arena stay on the query's thread. */

#define PF_MIN_SERIES 32
#define PF_BATCH      (64 * 1024)

typedef struct pf_batch {
    sbuf s;
    size_t *off; /* series i is s[off[i], off[i + 1]) */
    const vg_label_t **lbl;
    size_t *nlbl;
    size_t ns, scap, next;
    int full;
} pf_batch;

struct pq_prefetch {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    vg_seriesset_t *ss;
    pf_batch b[2];
    int prod, cons, cur; /* batch to fill, batch to take, batch in use (-1 none) */
    int done, stop;
    vg_err_t err;
};

static vg_err_t batch_grow(pf_batch *b)
{
    if (b->ns + 1 < b->scap) return VG_OK;
    size_t nc = b->scap ? b->scap * 2 : 64;
    size_t *off = vg_realloc(b->off, nc * sizeof(*off));
    if (!off) return VG_ENOMEM;
    b->off = off;
    const vg_label_t **l = vg_realloc(b->lbl, nc * sizeof(*l));
    if (!l) return VG_ENOMEM;
    b->lbl = l;
    size_t *nl = vg_realloc(b->nlbl, nc * sizeof(*nl));
    if (!nl) return VG_ENOMEM;
    b->nlbl = nl;
    b->scap = nc;
    return VG_OK;
}

/* Decode whole series into b until it holds PF_BATCH samples or the set
 * ends: the number of series (0 at the end), or -1 on ENOMEM. */
static long batch_fill(vg_seriesset_t *ss, pf_batch *b)
{
    b->ns = b->next = b->s.n = 0;
    while (b->s.n < PF_BATCH) {
        if (batch_grow(b)) return -1;
        if (!vg_seriesset_next(ss)) break;
        b->lbl[b->ns] = vg_seriesset_labels(ss, &b->nlbl[b->ns]);
        b->off[b->ns] = b->s.n;
        if (sbuf_read_series(&b->s, ss)) return -1;
        b->off[++b->ns] = b->s.n;
    }
    return (long)b->ns;
}

static void *prefetch_main(void *arg)
{
    struct pq_prefetch *pf = arg;
    for (;;) {
        pthread_mutex_lock(&pf->mu);
        while (pf->b[pf->prod].full && !pf->stop) pthread_cond_wait(&pf->cv, &pf->mu);
        int stop = pf->stop;
        pthread_mutex_unlock(&pf->mu);
        long got = stop ? 0 : batch_fill(pf->ss, &pf->b[pf->prod]);
        pthread_mutex_lock(&pf->mu);
        if (got > 0) {
            pf->b[pf->prod].full = 1;
            pf->prod ^= 1;
        } else {
            pf->done = 1;
            if (got < 0) pf->err = VG_ENOMEM;
        }
        pthread_cond_broadcast(&pf->cv);
        pthread_mutex_unlock(&pf->mu);
        if (got <= 0) return NULL;
    }
}

static void prefetch_free(struct pq_prefetch *pf)
{
    if (!pf) return;
    pthread_mutex_lock(&pf->mu);
    pf->stop = 1;
    pthread_cond_broadcast(&pf->cv);
    pthread_mutex_unlock(&pf->mu);
    pthread_join(pf->th, NULL);
    pthread_mutex_destroy(&pf->mu);
    pthread_cond_destroy(&pf->cv);
    for (int i = 0; i < 2; i++) {
        vg_free(pf->b[i].s.t);
        vg_free(pf->b[i].s.v);
        vg_free(pf->b[i].off);
        vg_free(pf->b[i].lbl);
        vg_free(pf->b[i].nlbl);
    }
    vg_free(pf);
}

/* Start the helper when the set is big enough to be worth a thread; on any
 * failure the source simply stays on the inline path. */
void pq_rsrc_prefetch(pq_rsrc *src)
{
    if (!src->is_selector || src->pf || vg_seriesset_len(src->ss) < PF_MIN_SERIES) return;
    struct pq_prefetch *pf = vg_calloc(1, sizeof(*pf));
    if (!pf) return;
    pf->ss = src->ss;
    pf->cur = -1;
    pthread_mutex_init(&pf->mu, NULL);
    pthread_cond_init(&pf->cv, NULL);
    if (pthread_create(&pf->th, NULL, prefetch_main, pf) != 0) {
        pthread_mutex_destroy(&pf->mu);
        pthread_cond_destroy(&pf->cv);
        vg_free(pf);
        return;
    }
    src->pf = pf;
}

/* The batch in use, or the next decoded one once it is used up (the used
 * one goes back to the helper); NULL at the end (*rc: the helper's error). */
static pf_batch *prefetch_batch(struct pq_prefetch *pf, vg_err_t *rc)
{
    if (pf->cur >= 0 && pf->b[pf->cur].next < pf->b[pf->cur].ns) return &pf->b[pf->cur];
    pthread_mutex_lock(&pf->mu);
    if (pf->cur >= 0) {
        pf->b[pf->cur].full = 0;
        pf->cur = -1;
        pthread_cond_broadcast(&pf->cv);
    }
    while (!pf->b[pf->cons].full && !pf->done) pthread_cond_wait(&pf->cv, &pf->mu);
    pf_batch *b = NULL;
    if (pf->b[pf->cons].full) {
        pf->cur = pf->cons;
        pf->cons ^= 1;
        b = &pf->b[pf->cur];
    } else {
        *rc = pf->err;
    }
    pthread_mutex_unlock(&pf->mu);
    return b;
}

static int next_prefetched(pq_rsrc *src, vg_err_t *rc)
{
    pq_ctx *c = src->ev->c;
    if ((*rc = pq_tick(c))) return 0;
    pf_batch *b = prefetch_batch(src->pf, rc);
    if (!b) return 0;
    size_t i = b->next++;
    if ((*rc = pq_lbl_copy(c, b->lbl[i], b->nlbl[i], &src->lbl))) return 0;
    src->nlbl = b->nlbl[i];
    src->drop_name = 0;
    size_t o = b->off[i];
    return series_loaded(src, b->s.t + o, b->s.v + o, b->off[i + 1] - o, rc);
}

int pq_rsrc_next(pq_rsrc *src, vg_err_t *rc)
{
    *rc = VG_OK;
    if (src->is_selector) return src->pf ? next_prefetched(src, rc) : next_selected(src, rc);
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
    prefetch_free(src->pf); /* joins the helper before the set goes */
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
    if (!rc) pq_rsrc_prefetch(&src);
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
