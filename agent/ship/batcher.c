/*
 * batcher.c - group samples by series into Batch envelopes and ship them in order.
 *
 * Shape, and why:
 *  - Producers call vg_batcher_add under one mutex. Samples are grouped by
 *    series as they arrive (open-addressing map from the series hash to the
 *    TimeSeries being built) so a scrape of N series with one sample each
 *    and repeated scrapes of the same series both encode compactly. Every
 *    label copy, TimeSeries and Sample comes from an arena that is reset
 *    when the batch is cut, so building a batch costs bump allocations and
 *    no per-field frees.
 *  - A batch is cut at max_samples, after max_delay_ms, on flush and on
 *    free. Cutting encodes (protobuf-c + zstd: CPU, not I/O, so done under
 *    the lock) and pushes the bytes into a small bounded FIFO.
 *  - One ship thread owns all I/O. It sends the head of the FIFO and pops it
 *    only when the sink said VG_OK (or said "never"), so a retry resends the
 *    same bytes before anything newer: order is kept without extra
 *    bookkeeping. Retries back off exponentially (100 ms doubling to 30 s,
 *    half of it random so a fleet of agents does not retry in step).
 *  - Adding never blocks on the network. When the FIFO is full the current
 *    batch keeps growing up to a hard cap and then samples are refused with
 *    VG_ELIMIT and counted. The disk spool will take that role next: it sits
 *    between cut and ship, so this file only has to hand it the bytes.
 */
#include "batcher.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sink.h"
#include "vigil/clock.h"
#include "vigil/alloc.h"
#include "vigil/arena.h"
#include "vigil/envelope.h"
#include "vigil/log.h"

#define QUEUE_CAP       16
#define HARD_CAP_FACTOR 4
#define BACKOFF_MIN_MS  100
#define BACKOFF_MAX_MS  30000
#define FREE_WAIT_MS    10000
#define FLUSH_WAIT_MS   60000
#define MAP_INITIAL     1024
#define IDLE_WAIT_MS    1000

struct series {
    Prometheus__TimeSeries ts;
    uint64_t hash;
    size_t cap; /* capacity of ts.samples */
};

struct slot {
    uint64_t hash;
    uint32_t idx1; /* series index + 1; 0 = empty */
};

struct item {
    uint8_t *data;
    size_t len;
    uint64_t seq;
    size_t nsamples;
};

struct batcher_metrics {
    vg_metric_t *batches_sent, *retries, *samples_sent, *queue_len;
    vg_metric_t *drop_rejected, *drop_shutdown, *drop_encode;
    vg_metric_t *sdrop_full, *sdrop_rejected, *sdrop_shutdown, *sdrop_encode;
};

struct vg_batcher {
    pthread_mutex_t mu;
    pthread_cond_t wake; /* ship thread: new batch, time to cut, stop */
    pthread_cond_t done; /* flush/free waiters: a batch left the queue */
    pthread_t thread;
    int thread_started, closing, stop;
    struct vg_sink *sink;
    char *agent_id, *node, *tenant;
    size_t max_samples, hard_cap;
    int64_t max_delay_ms;
    int level;
    unsigned rnd;

    /* the batch being built */
    vg_arena_t *arena;
    struct series **series;
    size_t nseries, cap_series;
    struct slot *map;
    size_t map_cap;
    size_t nsamples;
    int64_t first_ms; /* monotonic time of the batch's first sample */

    /* encoded batches waiting for the sink, oldest at head */
    struct item q[QUEUE_CAP];
    size_t qhead, qlen;
    uint64_t next_seq, done_seq, last_drop_seq;
    int64_t backoff_ms, next_try_ms;

    struct batcher_metrics m;
};

/* Wait on cv until signalled or the monotonic deadline (ms). */
static void wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms)
{
    struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (deadline_ms % 1000) * 1000000};
    pthread_cond_timedwait(cv, mu, &ts);
}

/* ---- building a batch ---- */

static void batch_reset(struct vg_batcher *b)
{
    vg_arena_reset(b->arena);
    memset(b->map, 0, b->map_cap * sizeof(*b->map));
    b->series = NULL;
    b->nseries = b->cap_series = 0;
    b->nsamples = 0;
}

static int same_labels(const Prometheus__TimeSeries *ts, const vg_label_t *l, size_t n)
{
    if (ts->n_labels != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(ts->labels[i]->name, l[i].name) || strcmp(ts->labels[i]->value, l[i].value))
            return 0;
    return 1;
}

static void map_put(struct slot *map, size_t cap, uint64_t h, uint32_t idx1)
{
    size_t i = (size_t)h & (cap - 1);
    while (map[i].idx1) i = (i + 1) & (cap - 1);
    map[i].hash = h;
    map[i].idx1 = idx1;
}

/* Keep the map at most half full so probes stay short. */
static vg_err_t map_grow(struct vg_batcher *b)
{
    if ((b->nseries + 1) * 2 <= b->map_cap) return VG_OK;
    size_t cap = b->map_cap * 2;
    struct slot *map = vg_calloc(cap, sizeof(*map));
    if (!map) return VG_ENOMEM;
    for (size_t i = 0; i < b->nseries; i++)
        map_put(map, cap, b->series[i]->hash, (uint32_t)(i + 1));
    vg_free(b->map);
    b->map = map;
    b->map_cap = cap;
    return VG_OK;
}

/* Grow an arena-held pointer array to hold one more element. */
static void **grow_ptrs(vg_arena_t *a, void **old, size_t n, size_t *cap)
{
    if (n < *cap) return old;
    size_t ncap = *cap ? *cap * 2 : 4;
    void **p = vg_arena_alloc(a, ncap * sizeof(void *));
    if (!p) return NULL;
    if (n) memcpy(p, old, n * sizeof(void *));
    *cap = ncap;
    return p;
}

static struct series *series_new(struct vg_batcher *b, uint64_t h, const vg_label_t *l, size_t n)
{
    struct series *s = vg_arena_calloc(b->arena, sizeof(*s));
    Prometheus__Label *lab = vg_arena_alloc(b->arena, n * sizeof(*lab));
    Prometheus__Label **lp = vg_arena_alloc(b->arena, n * sizeof(*lp));
    void **arr = grow_ptrs(b->arena, (void **)b->series, b->nseries, &b->cap_series);
    if (!s || !lab || !lp || !arr) return NULL;
    b->series = (struct series **)arr;
    prometheus__time_series__init(&s->ts);
    for (size_t i = 0; i < n; i++) {
        prometheus__label__init(&lab[i]);
        lab[i].name = vg_arena_strdup(b->arena, l[i].name);
        lab[i].value = vg_arena_strdup(b->arena, l[i].value);
        if (!lab[i].name || !lab[i].value) return NULL;
        lp[i] = &lab[i];
    }
    s->ts.labels = lp;
    s->ts.n_labels = n;
    s->hash = h;
    return s;
}

static struct series *series_get(struct vg_batcher *b, const vg_label_t *l, size_t n)
{
    uint64_t h = vg_labels_hash(l, n);
    size_t i = (size_t)h & (b->map_cap - 1);
    for (; b->map[i].idx1; i = (i + 1) & (b->map_cap - 1)) {
        struct series *s = b->series[b->map[i].idx1 - 1];
        if (b->map[i].hash == h && same_labels(&s->ts, l, n)) return s;
    }
    if (map_grow(b)) return NULL;
    struct series *s = series_new(b, h, l, n);
    if (!s) return NULL;
    b->series[b->nseries++] = s;
    map_put(b->map, b->map_cap, h, (uint32_t)b->nseries);
    return s;
}

static vg_err_t series_append(struct vg_batcher *b, struct series *s, int64_t ts, double v)
{
    Prometheus__Sample *smp = vg_arena_alloc(b->arena, sizeof(*smp));
    void **arr = grow_ptrs(b->arena, (void **)s->ts.samples, s->ts.n_samples, &s->cap);
    if (!smp || !arr) return VG_ENOMEM;
    prometheus__sample__init(smp);
    smp->timestamp = ts;
    smp->value = v;
    s->ts.samples = (Prometheus__Sample **)arr;
    s->ts.samples[s->ts.n_samples++] = smp;
    return VG_OK;
}

/* ---- cutting: encode the current batch into the queue ---- */

static void set_queue_gauge(struct vg_batcher *b)
{
    vg_metric_set(b->m.queue_len, (double)b->qlen);
}

static vg_err_t encode_current(struct vg_batcher *b, uint64_t seq, uint8_t **out, size_t *len,
                               vg_error *err)
{
    Prometheus__TimeSeries **ts = vg_arena_alloc(b->arena, b->nseries * sizeof(*ts));
    if (!ts) return vg_error_set(err, VG_ENOMEM, "batcher: out of memory encoding batch");
    for (size_t i = 0; i < b->nseries; i++) ts[i] = &b->series[i]->ts;
    Vigil__V1__MetricBatch mb = VIGIL__V1__METRIC_BATCH__INIT;
    mb.timeseries = ts;
    mb.n_timeseries = b->nseries;
    vg_batch_t batch = VIGIL__V1__BATCH__INIT;
    batch.agent_id = b->agent_id;
    batch.node = b->node;
    batch.tenant = b->tenant;
    batch.seq = seq;
    batch.created_ms = vg_clock_wall_ms();
    batch.payload_case = VIGIL__V1__BATCH__PAYLOAD_METRICS;
    batch.metrics = &mb;
    return vg_envelope_encode(&batch, b->level, out, len, err);
}

/* Encode and enqueue the current batch. VG_ELIMIT when the queue is full
 * (the batch stays and keeps growing); other errors drop the batch. */
static vg_err_t cut_locked(struct vg_batcher *b, vg_error *err)
{
    vg_err_t rc = VG_OK;
    struct item it = {0};
    if (b->nsamples == 0) return VG_OK;
    if (b->qlen == QUEUE_CAP) return vg_error_set(err, VG_ELIMIT, "batcher: ship queue full");
    rc = encode_current(b, b->next_seq, &it.data, &it.len, err);
    if (rc) {
        vg_log_error("ship", "cannot encode batch; dropping it", "samples=%zu err=%s", b->nsamples,
                     vg_error_msg(err, rc));
        vg_metric_inc(b->m.drop_encode);
        vg_metric_add(b->m.sdrop_encode, (double)b->nsamples);
        pthread_cond_broadcast(&b->done);
        goto out;
    }
    it.seq = b->next_seq++;
    it.nsamples = b->nsamples;
    b->q[(b->qhead + b->qlen) % QUEUE_CAP] = it;
    b->qlen++;
    set_queue_gauge(b);
    pthread_cond_signal(&b->wake);
out:
    batch_reset(b);
    return rc;
}

/* ---- the ship thread ---- */

static int retry_worthy(vg_err_t rc)
{
    return vg_err_retryable(rc) || rc == VG_EIO || rc == VG_ENOMEM;
}

static void pop_head(struct vg_batcher *b)
{
    struct item *it = &b->q[b->qhead];
    b->done_seq = it->seq;
    vg_free(it->data);
    memset(it, 0, sizeof(*it));
    b->qhead = (b->qhead + 1) % QUEUE_CAP;
    b->qlen--;
    set_queue_gauge(b);
    pthread_cond_broadcast(&b->done);
}

static void schedule_retry(struct vg_batcher *b, const struct item *it, vg_err_t rc,
                           const vg_error *e)
{
    b->backoff_ms = b->backoff_ms ? b->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (b->backoff_ms > BACKOFF_MAX_MS) b->backoff_ms = BACKOFF_MAX_MS;
    int64_t half = b->backoff_ms / 2;
    int64_t delay = half + (int64_t)(rand_r(&b->rnd) % (unsigned)(half + 1));
    b->next_try_ms = vg_clock_mono_ms() + delay;
    vg_metric_inc(b->m.retries);
    vg_log_warn("ship", "send failed; will retry", "seq=%" PRIu64 " retry_in_ms=%" PRId64 " err=%s",
                it->seq, delay, vg_error_msg(e, rc));
}

static void handle_result(struct vg_batcher *b, const struct item *it, vg_err_t rc,
                          const vg_error *e)
{
    if (rc == VG_OK) {
        vg_metric_inc(b->m.batches_sent);
        vg_metric_add(b->m.samples_sent, (double)it->nsamples);
        b->backoff_ms = 0;
        b->next_try_ms = 0;
        pop_head(b);
    } else if (retry_worthy(rc)) {
        schedule_retry(b, it, rc, e);
    } else {
        vg_log_error("ship", "sink refused batch; dropping it",
                     "seq=%" PRIu64 " samples=%zu err=%s", it->seq, it->nsamples,
                     vg_error_msg(e, rc));
        vg_metric_inc(b->m.drop_rejected);
        vg_metric_add(b->m.sdrop_rejected, (double)it->nsamples);
        b->last_drop_seq = it->seq;
        b->backoff_ms = 0;
        b->next_try_ms = 0;
        pop_head(b);
    }
}

/* Send the head of the queue with the lock released around the I/O. */
static void send_head(struct vg_batcher *b)
{
    struct item it = b->q[b->qhead];
    vg_sink_msg msg = {.kind = VG_SINK_METRICS,
                       .tenant = b->tenant,
                       .data = it.data,
                       .len = it.len,
                       .seq = it.seq};
    vg_error e = {0};
    pthread_mutex_unlock(&b->mu);
    vg_err_t rc = vg_sink_send(b->sink, &msg, &e);
    pthread_mutex_lock(&b->mu);
    handle_result(b, &it, rc, &e);
}

static int64_t next_wake(const struct vg_batcher *b, int64_t now)
{
    int64_t t = now + IDLE_WAIT_MS;
    if (b->qlen && b->next_try_ms < t) t = b->next_try_ms;
    /* A due batch that cannot be cut (queue full) waits for the head's send instead. */
    if (b->nsamples && b->qlen < QUEUE_CAP && b->first_ms + b->max_delay_ms < t)
        t = b->first_ms + b->max_delay_ms;
    return t;
}

static void *ship_main(void *arg)
{
    struct vg_batcher *b = arg;
    pthread_mutex_lock(&b->mu);
    while (!b->stop) {
        int64_t now = vg_clock_mono_ms();
        int due = b->nsamples && (b->closing || now - b->first_ms >= b->max_delay_ms ||
                                  b->nsamples >= b->max_samples);
        if (due) cut_locked(b, NULL);
        if (b->qlen && now >= b->next_try_ms) {
            send_head(b);
            continue;
        }
        int64_t wake = next_wake(b, now);
        if (wake > now) wait_until(&b->wake, &b->mu, wake);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* ---- public API ---- */

static void register_metrics(struct batcher_metrics *m, vg_metrics_t *r)
{
    static const char bd[] = "Batches the agent gave up on, by reason.";
    static const char sd[] = "Samples the agent dropped, by reason.";
    if (!r) return;
    m->batches_sent = vg_metrics_counter(r, "vigil_agent_batches_sent_total",
                                         "Batches accepted by the sink.", NULL);
    m->retries = vg_metrics_counter(r, "vigil_agent_batch_send_retries_total",
                                    "Batch sends that failed transiently and were retried.", NULL);
    m->samples_sent = vg_metrics_counter(r, "vigil_agent_samples_sent_total",
                                         "Samples in batches accepted by the sink.", NULL);
    m->queue_len = vg_metrics_gauge(r, "vigil_agent_ship_queue_length",
                                    "Encoded batches waiting for the sink.", NULL);
    m->drop_rejected =
        vg_metrics_counter(r, "vigil_agent_batches_dropped_total", bd, "reason=\"rejected\"");
    m->drop_shutdown =
        vg_metrics_counter(r, "vigil_agent_batches_dropped_total", bd, "reason=\"shutdown\"");
    m->drop_encode =
        vg_metrics_counter(r, "vigil_agent_batches_dropped_total", bd, "reason=\"encode\"");
    m->sdrop_full =
        vg_metrics_counter(r, "vigil_agent_samples_dropped_total", sd, "reason=\"queue_full\"");
    m->sdrop_rejected =
        vg_metrics_counter(r, "vigil_agent_samples_dropped_total", sd, "reason=\"rejected\"");
    m->sdrop_shutdown =
        vg_metrics_counter(r, "vigil_agent_samples_dropped_total", sd, "reason=\"shutdown\"");
    m->sdrop_encode =
        vg_metrics_counter(r, "vigil_agent_samples_dropped_total", sd, "reason=\"encode\"");
}

static vg_err_t init_sync(struct vg_batcher *b)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca)) return VG_ENOMEM;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->wake, &ca);
    pthread_cond_init(&b->done, &ca);
    pthread_condattr_destroy(&ca);
    return VG_OK;
}

static vg_err_t init_fields(struct vg_batcher *b, const vg_batcher_opts *o)
{
    b->agent_id = vg_strdup(o->agent_id ? o->agent_id : "");
    b->node = vg_strdup(o->node ? o->node : "");
    b->tenant = vg_strdup(o->tenant && *o->tenant ? o->tenant : "default");
    b->max_samples = o->max_samples ? o->max_samples : 10000;
    b->hard_cap = b->max_samples * HARD_CAP_FACTOR;
    b->max_delay_ms = o->max_delay_ms > 0 ? o->max_delay_ms : 1000;
    b->level = o->zstd_level;
    b->rnd = (unsigned)vg_clock_wall_ms() ^ (unsigned)(uintptr_t)b;
    b->next_seq = 1;
    b->arena = vg_arena_new(64 * 1024);
    b->map_cap = MAP_INITIAL;
    b->map = vg_calloc(b->map_cap, sizeof(*b->map));
    if (!b->agent_id || !b->node || !b->tenant || !b->arena || !b->map) return VG_ENOMEM;
    return VG_OK;
}

static void destroy(struct vg_batcher *b)
{
    for (size_t i = 0; i < b->qlen; i++) vg_free(b->q[(b->qhead + i) % QUEUE_CAP].data);
    vg_arena_free(b->arena);
    vg_free(b->map);
    vg_free(b->agent_id);
    vg_free(b->node);
    vg_free(b->tenant);
    pthread_cond_destroy(&b->wake);
    pthread_cond_destroy(&b->done);
    pthread_mutex_destroy(&b->mu);
    vg_free(b);
}

vg_err_t vg_batcher_new(const vg_batcher_opts *opts, struct vg_sink *sink, vg_metrics_t *metrics,
                        vg_batcher_t **out, vg_error *err)
{
    *out = NULL;
    if (!opts || !sink) return vg_error_set(err, VG_EINVAL, "batcher: options and sink required");
    struct vg_batcher *b = vg_calloc(1, sizeof(*b));
    if (!b || init_sync(b)) {
        vg_free(b);
        return vg_error_set(err, VG_ENOMEM, "batcher: out of memory");
    }
    b->sink = sink;
    register_metrics(&b->m, metrics);
    if (init_fields(b, opts)) {
        destroy(b);
        return vg_error_set(err, VG_ENOMEM, "batcher: out of memory");
    }
    if (pthread_create(&b->thread, NULL, ship_main, b)) {
        destroy(b);
        return vg_error_set(err, VG_EINTERNAL, "batcher: cannot start ship thread");
    }
    b->thread_started = 1;
    *out = b;
    return VG_OK;
}

vg_err_t vg_batcher_add(vg_batcher_t *b, const vg_label_t *labels, size_t nlabels, int64_t ts_ms,
                        double value)
{
    vg_err_t rc = VG_OK;
    if (!b || !labels || nlabels == 0) return VG_EINVAL;
    pthread_mutex_lock(&b->mu);
    if (b->closing) {
        rc = VG_ECLOSED;
        goto out;
    }
    if (b->nsamples >= b->hard_cap && cut_locked(b, NULL) == VG_ELIMIT) {
        vg_metric_inc(b->m.sdrop_full);
        rc = VG_ELIMIT;
        goto out;
    }
    struct series *s = series_get(b, labels, nlabels);
    if (!s || series_append(b, s, ts_ms, value)) {
        rc = VG_ENOMEM;
        goto out;
    }
    if (b->nsamples++ == 0) {
        b->first_ms = vg_clock_mono_ms();
        pthread_cond_signal(&b->wake);
    }
    if (b->nsamples >= b->max_samples) cut_locked(b, NULL);
out:
    pthread_mutex_unlock(&b->mu);
    return rc;
}

void vg_batcher_commit(vg_batcher_t *b)
{
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    /* At a scrape boundary a half-full batch is worth sending now rather than
     * splitting the next scrape across two batches. */
    if (b->nsamples >= b->max_samples / 2) cut_locked(b, NULL);
    pthread_mutex_unlock(&b->mu);
}

/* Cut the current batch, waiting for queue room until deadline. */
static vg_err_t cut_waiting(struct vg_batcher *b, int64_t deadline, vg_error *err)
{
    vg_err_t rc;
    while ((rc = cut_locked(b, err)) == VG_ELIMIT && vg_clock_mono_ms() < deadline && !b->stop)
        wait_until(&b->done, &b->mu, deadline);
    return rc;
}

vg_err_t vg_batcher_flush(vg_batcher_t *b, vg_error *err)
{
    if (!b) return VG_EINVAL;
    int64_t deadline = vg_clock_mono_ms() + FLUSH_WAIT_MS;
    pthread_mutex_lock(&b->mu);
    uint64_t start = b->done_seq;
    vg_err_t rc = cut_waiting(b, deadline, err);
    uint64_t target = b->next_seq - 1;
    while (!rc && b->done_seq < target && vg_clock_mono_ms() < deadline && !b->stop)
        wait_until(&b->done, &b->mu, deadline);
    if (!rc && b->done_seq < target)
        rc = vg_error_set(err, VG_ERETRY, "batcher: sink has not accepted pending batches yet");
    else if (!rc && b->last_drop_seq > start)
        rc = vg_error_set(err, VG_EPROTO, "batcher: the sink refused some pending batches");
    pthread_mutex_unlock(&b->mu);
    return rc;
}

static void count_leftovers(struct vg_batcher *b)
{
    size_t batches = b->qlen + (b->nsamples ? 1 : 0), samples = b->nsamples;
    for (size_t i = 0; i < b->qlen; i++) samples += b->q[(b->qhead + i) % QUEUE_CAP].nsamples;
    if (!batches) return;
    vg_log_warn("ship", "stopping with undelivered batches", "batches=%zu samples=%zu", batches,
                samples);
    vg_metric_add(b->m.drop_shutdown, (double)batches);
    vg_metric_add(b->m.sdrop_shutdown, (double)samples);
}

void vg_batcher_free(vg_batcher_t *b)
{
    if (!b) return;
    int64_t deadline = vg_clock_mono_ms() + FREE_WAIT_MS;
    pthread_mutex_lock(&b->mu);
    b->closing = 1;
    pthread_cond_signal(&b->wake);
    while ((b->qlen || b->nsamples) && vg_clock_mono_ms() < deadline)
        wait_until(&b->done, &b->mu, deadline);
    b->stop = 1;
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->mu);
    if (b->thread_started) pthread_join(b->thread, NULL);
    count_leftovers(b);
    destroy(b);
}
