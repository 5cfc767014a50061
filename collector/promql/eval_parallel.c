/*
 * eval_parallel.c - a range function over a selector's series on several
 * threads.
 *
 * Decoding chunks and sliding the window are most of a range query over
 * many series, and they are independent per series, so they are what the
 * machine's cores can share (VictoriaMetrics spreads a query so). The
 * selection is cut into slices of PAR_SLICE series that the caller's thread
 * and its helpers take in turn from an atomic counter (a slow slice never
 * leaves a thread idle at the end); each slice gets its own iterator
 * (vg_seriesset_slice). Finished slices are committed in the selection's
 * order, one at a time, by whichever thread completes the slice that is next
 * (a thread that finishes early does not wait: it leaves its slice for the
 * committer and takes another). So every consumer (keeping the series, or
 * folding them into `sum by` state without a matrix in between) sees the
 * series in the same order as on one thread: bit-identical answers.
 *
 * Only the commit touches the query context (arena, annotations, limits),
 * and commits never overlap while the caller's thread is busy here as one
 * of the workers. Workers keep the sample limit on an atomic counter
 * checked as samples are held, and poll the deadline once per slice.
 */
#include "promql/eval.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "vigil/alloc.h"
#include "vigil/clock.h"

#define PAR_MIN_SERIES 32
#define PAR_SLICE      16

typedef struct par_job {
    const pq_rsrc *src; /* the window; src->ss the whole selection */
    pq_series_fn fn;
    pq_commit_fn commit;
    void *cud;
    pq_series *out; /* one per selected series */
    size_t n, nslices;
    atomic_size_t next;  /* first series of the next slice to take */
    atomic_ullong held;  /* the query's held samples, as the workers add them */
    atomic_ullong raw;   /* raw samples read (held until the source closes) */
    atomic_int err;      /* the first error; stops every worker */
    uint64_t max;        /* max_samples, 0 = none */
    int64_t deadline_ms; /* 0 = none */
    pthread_mutex_t mu;  /* the commit order: */
    unsigned char *done; /* slice finished, waiting for its turn */
    size_t turn;         /* next slice to commit */
    int committing;      /* a thread is committing (outside mu) */
    pq_series *pool;     /* output arrays the commits left, for reuse (under mu) */
    size_t npool, cappool;
} par_job;

typedef struct par_worker {
    par_job *job;
    void *ud;
    pthread_t th;
    int started;
} par_worker;

size_t pq_par_threads(vg_seriesset_t *ss)
{
    if (!ss || vg_seriesset_len(ss) < PAR_MIN_SERIES) return 1;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) return 1;
    return n > PQ_PAR_MAX_THREADS ? PQ_PAR_MAX_THREADS : (size_t)n;
}

/* Count n more samples held; VG_ELIMIT past max_samples. */
static vg_err_t hold(par_job *j, size_t n)
{
    unsigned long long now = atomic_fetch_add(&j->held, n) + n;
    return j->max && now > j->max ? VG_ELIMIT : VG_OK;
}

/* Output arrays for o from the pool: a consumer that folds the series and
 * lets them go (sum by) then allocates nothing per series, which matters
 * as helper threads' heaps are trimmed and faulted back page by page. */
static void pool_get(par_job *j, pq_series *o)
{
    pthread_mutex_lock(&j->mu);
    if (j->npool) {
        pq_series *p = &j->pool[--j->npool];
        o->t = p->t;
        o->v = p->v;
        o->cap = p->cap;
    }
    pthread_mutex_unlock(&j->mu);
}

/* Under mu: back to the pool, or freed when it cannot grow. */
static void pool_put(par_job *j, pq_series *o)
{
    if (!o->t || !o->v) goto drop;
    if (j->npool == j->cappool) {
        size_t nc = j->cappool ? j->cappool * 2 : 16;
        pq_series *np = vg_realloc(j->pool, nc * sizeof(*np));
        if (!np) goto drop;
        j->pool = np;
        j->cappool = nc;
    }
    j->pool[j->npool++] = (pq_series){.t = o->t, .v = o->v, .cap = o->cap};
    o->t = NULL;
    o->v = NULL;
    return;
drop:
    vg_free(o->t);
    vg_free(o->v);
    o->t = NULL;
    o->v = NULL;
}

/* One slice: decode each series into the worker's buffer, run fn. */
static vg_err_t run_slice(par_job *j, void *ud, pq_rsrc *w, size_t *cap, size_t from)
{
    vg_seriesset_t *sl = NULL;
    vg_err_t rc = vg_seriesset_slice(j->src->ss, from, from + PAR_SLICE, &sl);
    for (size_t i = from; !rc && !atomic_load(&j->err) && vg_seriesset_next(sl); i++) {
        pq_series *o = &j->out[i];
        o->lbl = vg_seriesset_labels(sl, &o->nlbl);
        int64_t *t = w->bt;
        double *v = w->bv;
        size_t n = 0;
        rc = pq_read_series(sl, &t, &v, &n, cap);
        w->bt = t;
        w->bv = v;
        if (rc || (rc = hold(j, n))) break;
        atomic_fetch_add(&j->raw, n);
        w->t = t;
        w->v = v;
        w->n = n;
        pool_get(j, o);
        if (!(rc = j->fn(ud, w, o))) rc = hold(j, o->n);
    }
    vg_seriesset_free(sl);
    return rc;
}

static void set_err(par_job *j, vg_err_t rc)
{
    int none = 0;
    if (rc) atomic_compare_exchange_strong(&j->err, &none, (int)rc);
}

/* Commit slice k if it is next, and the finished ones after it. */
static void commit_ready(par_job *j, size_t k)
{
    pthread_mutex_lock(&j->mu);
    j->done[k] = 1;
    if (j->committing) {
        pthread_mutex_unlock(&j->mu);
        return;
    }
    j->committing = 1;
    while (j->turn < j->nslices && j->done[j->turn]) {
        size_t from = j->turn * PAR_SLICE, to = from + PAR_SLICE;
        if (to > j->n) to = j->n;
        pthread_mutex_unlock(&j->mu);
        if (!atomic_load(&j->err)) set_err(j, j->commit(j->cud, j->out + from, to - from));
        pthread_mutex_lock(&j->mu);
        for (size_t i = from; i < to; i++) pool_put(j, &j->out[i]);
        j->turn++;
    }
    j->committing = 0;
    pthread_mutex_unlock(&j->mu);
}

static void run_worker(par_worker *pw)
{
    par_job *j = pw->job;
    pq_rsrc w = *j->src; /* the window fields; own decode buffer */
    w.bt = NULL;
    w.bv = NULL;
    size_t cap = 0;
    while (!atomic_load(&j->err)) {
        size_t from = atomic_fetch_add(&j->next, PAR_SLICE);
        if (from >= j->n) break;
        vg_err_t rc = VG_OK;
        if (j->deadline_ms > 0 && vg_clock_mono_ms() > j->deadline_ms) rc = VG_ERETRY;
        if (!rc) rc = run_slice(j, pw->ud, &w, &cap, from);
        set_err(j, rc);
        if (!rc) commit_ready(j, from / PAR_SLICE);
    }
    vg_free(w.bt);
    vg_free(w.bv);
}

static void *worker_main(void *arg)
{
    run_worker(arg);
    return NULL;
}

static void free_out(pq_series *out, size_t n)
{
    for (size_t i = 0; out && i < n; i++) {
        vg_free(out[i].t);
        vg_free(out[i].v);
    }
    vg_free(out);
}

/* The worker's error as the serial path reports it. */
static vg_err_t job_error(pq_ctx *c, vg_err_t rc)
{
    if (rc == VG_ELIMIT) return pq_samples_over(c);
    if (rc == VG_ERETRY) return pq_fail(c, VG_ERETRY, "query timed out in expression evaluation");
    return rc;
}

static void run_threads(par_job *j, size_t nthr, void *const *ud)
{
    par_worker pw[PQ_PAR_MAX_THREADS];
    memset(pw, 0, sizeof(pw));
    for (size_t i = 0; i < nthr; i++) pw[i] = (par_worker){.job = j, .ud = ud[i]};
    /* A helper that cannot start leaves its share to the others. */
    for (size_t i = 1; i < nthr; i++)
        pw[i].started = pthread_create(&pw[i].th, NULL, worker_main, &pw[i]) == 0;
    run_worker(&pw[0]);
    for (size_t i = 1; i < nthr; i++)
        if (pw[i].started) pthread_join(pw[i].th, NULL);
}

vg_err_t pq_rsrc_parallel(pq_rsrc *src, size_t nthr, pq_series_fn fn, void *const *ud,
                          pq_commit_fn commit, void *cud)
{
    pq_ctx *c = src->ev->c;
    par_job j = {.src = src, .fn = fn, .commit = commit, .cud = cud};
    j.n = vg_seriesset_len(src->ss);
    j.nslices = (j.n + PAR_SLICE - 1) / PAR_SLICE;
    if (nthr > PQ_PAR_MAX_THREADS) nthr = PQ_PAR_MAX_THREADS;
    if (nthr < 1) nthr = 1;
    j.out = vg_calloc(j.n ? j.n : 1, sizeof(*j.out));
    j.done = vg_calloc(j.nslices ? j.nslices : 1, 1);
    if (!j.out || !j.done) {
        vg_free(j.out);
        vg_free(j.done);
        return VG_ENOMEM;
    }
    atomic_init(&j.next, 0);
    atomic_init(&j.held, c->cur_samples);
    atomic_init(&j.raw, 0);
    atomic_init(&j.err, 0);
    j.max = c->max_samples;
    j.deadline_ms = c->deadline_ms;
    pthread_mutex_init(&j.mu, NULL);
    run_threads(&j, nthr, ud);
    pthread_mutex_destroy(&j.mu);
    vg_err_t rc = (vg_err_t)atomic_load(&j.err);
    free_out(j.out, j.n); /* what the commits did not take */
    free_out(j.pool, j.npool);
    vg_free(j.done);
    if (rc) return job_error(c, rc);
    /* The raw samples stay counted until the source closes, as pq_rsrc_next
     * counts them. */
    size_t raw = (size_t)atomic_load(&j.raw);
    src->loaded += raw;
    c->cur_samples += raw;
    return VG_OK;
}
