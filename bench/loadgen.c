/*
 * loadgen.c - a node_exporter-like dataset, sent as Prometheus remote-write.
 *
 * The benches need the same realistic data in Vigil, Prometheus and
 * VictoriaMetrics, so the data is a pure function of (series, hours, step,
 * end, seed): run the generator once per target and every target gets the
 * same samples bit for bit. Each instance carries 100 series in node_exporter
 * shapes: CPU-seconds counters per cpu and mode, memory and load gauges that
 * wander around a level, network and disk byte counters (that reset now and
 * then), filesystem gauges, and a classic histogram with `le` buckets, under
 * job/instance labels. Instances are spread over five jobs.
 *
 * Samples go out in time order: a request holds --steps-per-request
 * consecutive timestamps of every series, so a receiver that refuses samples
 * far behind its head (Prometheus) still accepts a 24 h backfill. Requests
 * are protobuf WriteRequests in one snappy block with the 1.0 headers; a 5xx,
 * 429 or transport error is retried with backoff, a 4xx is counted and
 * reported. A generator thread builds and compresses the next requests while
 * --conns sender threads (each with its own connection) have others in
 * flight, through a bounded queue, so the generator runs ahead of the
 * receiver instead of alternating with it. --series-per-request splits each
 * time slice into requests of that many series (Prometheus senders batch a
 * few thousand samples), which is what lets 1M series go out as requests of
 * a realistic size; the slices stay in time order, so with more requests per
 * slice than connections every series still arrives in order.
 *
 * --om FILE writes the same samples as OpenMetrics text with timestamps
 * instead (for `promtool tsdb create-blocks-from openmetrics`).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <snappy-c.h>

#include "prometheus/remote.pb-c.h"
#include "vigil/alloc.h"
#include "vigil/httpc.h"

#define PER_INSTANCE 100
#define MAX_URLS     4
#define MAX_LBL      6
#define NBUCKETS     12
#define QCAP         32 /* requests built ahead of the senders */
#define MAX_CONNS    16

typedef enum kind { K_COUNTER, K_CPU, K_GAUGE, K_BUCKET, K_HSUM, K_HCOUNT } kind;

typedef struct hist {
    double cum[NBUCKETS]; /* cumulative bucket counts */
    double sum, rate, mean;
} hist;

typedef struct gseries {
    Prometheus__Label lbl[MAX_LBL];
    Prometheus__Label *lblp[MAX_LBL];
    size_t nlbl;
    kind k;
    int integer; /* counter of whole units (bytes, packets) */
    double v, rate, level, sigma;
    hist *h;
    int bucket;
} gseries;

typedef struct opts {
    long series;
    double hours;
    long step_s;
    int64_t end_ms;
    long steps_per_req;
    long series_per_req; /* 0: every series in one request */
    int conns;
    uint64_t seed;
    const char *urls[MAX_URLS];
    int nurls;
    const char *tenant;
    const char *om_path;
} opts;

typedef struct gen {
    opts o;
    gseries *s;
    size_t n;
    hist *h;
    size_t nh;
    uint64_t rng;
    char *strings; /* one block for every label string */
    size_t strings_used, strings_cap;
} gen;

/* ---- deterministic randomness ---- */

static uint64_t rnd(gen *g)
{
    g->rng ^= g->rng >> 12;
    g->rng ^= g->rng << 25;
    g->rng ^= g->rng >> 27;
    return g->rng * 2685821657736338717ULL;
}

static double unif(gen *g)
{
    return (double)(rnd(g) >> 11) / 9007199254740992.0;
}

static double normal(gen *g)
{
    double u = unif(g), v = unif(g);
    return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

/* ---- the series table ---- */

static char *str(gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *str(gen *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g->strings + g->strings_used, g->strings_cap - g->strings_used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n + 1 > g->strings_cap - g->strings_used) {
        fprintf(stderr, "loadgen: label string space exhausted\n");
        exit(1);
    }
    char *s = g->strings + g->strings_used;
    g->strings_used += (size_t)n + 1;
    return s;
}

static int cmp_label(const void *a, const void *b)
{
    return strcmp((*(Prometheus__Label *const *)a)->name, (*(Prometheus__Label *const *)b)->name);
}

/* Add a series: name, job, instance, then up to 3 extra name/value pairs (NULL ends). */
static gseries *add(gen *g, kind k, const char *name, const char *job, const char *inst,
                    const char *n1, const char *v1, const char *n2, const char *v2, const char *n3,
                    const char *v3)
{
    gseries *s = &g->s[g->n++];
    memset(s, 0, sizeof(*s));
    const char *kv[] = {"__name__", name, "job", job, "instance", inst, n1, v1, n2, v2, n3, v3};
    for (size_t i = 0; i < 6 && kv[2 * i]; i++) {
        prometheus__label__init(&s->lbl[i]);
        s->lbl[i].name = (char *)kv[2 * i];
        s->lbl[i].value = (char *)kv[2 * i + 1];
        s->lblp[i] = &s->lbl[i];
        s->nlbl++;
    }
    qsort(s->lblp, s->nlbl, sizeof(s->lblp[0]), cmp_label); /* the spec wants them sorted */
    s->k = k;
    return s;
}

static void counter(gen *g, gseries *s, double rate, int integer)
{
    s->rate = rate * (0.5 + unif(g));
    s->integer = integer;
    s->v = floor(unif(g) * s->rate * 86400);
}

static void gauge(gen *g, gseries *s, double level, double sigma)
{
    s->level = level * (0.5 + unif(g));
    s->sigma = sigma * s->level;
    s->v = s->level;
}

static const double le_bounds[NBUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                           0.5,   1,    2.5,   5,    10,  INFINITY};

static void add_histogram(gen *g, const char *job, const char *inst, const char *handler)
{
    hist *h = &g->h[g->nh++];
    memset(h, 0, sizeof(*h));
    h->rate = 5 + 50 * unif(g);
    h->mean = 0.02 + 0.3 * unif(g);
    for (int b = 0; b < NBUCKETS; b++) {
        const char *le = isinf(le_bounds[b]) ? "+Inf" : str(g, "%g", le_bounds[b]);
        gseries *s = add(g, K_BUCKET, "http_request_duration_seconds_bucket", job, inst, "handler",
                         handler, "le", le, NULL, NULL);
        s->h = h;
        s->bucket = b;
    }
    add(g, K_HSUM, "http_request_duration_seconds_sum", job, inst, "handler", handler, NULL, NULL,
        NULL, NULL)
        ->h = h;
    add(g, K_HCOUNT, "http_request_duration_seconds_count", job, inst, "handler", handler, NULL,
        NULL, NULL, NULL)
        ->h = h;
}

static void add_instance(gen *g, long i)
{
    static const char *jobs[] = {"node", "api", "db", "cache", "web"};
    static const char *modes[] = {"idle", "user",    "system", "iowait",
                                  "irq",  "softirq", "steal",  "nice"};
    static const double mode_share[] = {0.7, 0.15, 0.08, 0.03, 0.005, 0.01, 0.002, 0.003};
    static const char *mem[] = {"MemAvailable", "MemFree", "Cached",
                                "Buffers",      "Active",  "Inactive"};
    static const char *nets[] = {"eth0", "eth1", "lo"};
    static const char *disks[] = {"sda", "sdb"};
    static const char *mounts[] = {"/", "/var", "/home"};
    const char *job = jobs[i % 5], *inst = str(g, "host-%04ld:9100", i);
    for (int c = 0; c < 4; c++)
        for (int m = 0; m < 8; m++)
            counter(g,
                    add(g, K_CPU, "node_cpu_seconds_total", job, inst, "cpu", str(g, "%d", c),
                        "mode", modes[m], NULL, NULL),
                    mode_share[m], 0);
    for (int m = 0; m < 6; m++)
        gauge(g,
              add(g, K_GAUGE, str(g, "node_memory_%s_bytes", mem[m]), job, inst, NULL, NULL, NULL,
                  NULL, NULL, NULL),
              4e9, 0.02);
    gauge(g, add(g, K_GAUGE, "node_load1", job, inst, NULL, NULL, NULL, NULL, NULL, NULL), 1.5,
          0.2);
    gauge(g, add(g, K_GAUGE, "node_load5", job, inst, NULL, NULL, NULL, NULL, NULL, NULL), 1.5,
          0.1);
    gauge(g, add(g, K_GAUGE, "node_load15", job, inst, NULL, NULL, NULL, NULL, NULL, NULL), 1.5,
          0.05);
    for (int d = 0; d < 3; d++) {
        const char *dir[] = {"receive", "transmit"};
        for (int x = 0; x < 2; x++) {
            counter(g,
                    add(g, K_COUNTER, str(g, "node_network_%s_bytes_total", dir[x]), job, inst,
                        "device", nets[d], NULL, NULL, NULL, NULL),
                    2e5, 1);
            counter(g,
                    add(g, K_COUNTER, str(g, "node_network_%s_packets_total", dir[x]), job, inst,
                        "device", nets[d], NULL, NULL, NULL, NULL),
                    300, 1);
        }
    }
    for (int d = 0; d < 2; d++) {
        counter(g,
                add(g, K_COUNTER, "node_disk_read_bytes_total", job, inst, "device", disks[d], NULL,
                    NULL, NULL, NULL),
                1e6, 1);
        counter(g,
                add(g, K_COUNTER, "node_disk_written_bytes_total", job, inst, "device", disks[d],
                    NULL, NULL, NULL, NULL),
                2e6, 1);
        counter(g,
                add(g, K_COUNTER, "node_disk_io_time_seconds_total", job, inst, "device", disks[d],
                    NULL, NULL, NULL, NULL),
                0.05, 0);
    }
    for (int m = 0; m < 3; m++) {
        const char *dev = str(g, "/dev/sd%c%d", 'a' + m % 2, m + 1);
        gauge(g,
              add(g, K_GAUGE, "node_filesystem_avail_bytes", job, inst, "device", dev, "fstype",
                  "ext4", "mountpoint", mounts[m]),
              5e10, 0.005);
        gauge(g,
              add(g, K_GAUGE, "node_filesystem_size_bytes", job, inst, "device", dev, "fstype",
                  "ext4", "mountpoint", mounts[m]),
              1e11, 0);
    }
    static const char *handlers[] = {"/api/v1/query", "/api/v1/write"};
    for (int h = 0; h < 2; h++) {
        add_histogram(g, job, inst, handlers[h]);
        counter(g,
                add(g, K_COUNTER, "http_requests_total", job, inst, "code", "200", "handler",
                    handlers[h], NULL, NULL),
                20, 1);
        counter(g,
                add(g, K_COUNTER, "http_requests_total", job, inst, "code", "500", "handler",
                    handlers[h], NULL, NULL),
                0.2, 1);
    }
    counter(g,
            add(g, K_COUNTER, "node_context_switches_total", job, inst, NULL, NULL, NULL, NULL,
                NULL, NULL),
            5000, 1);
    counter(g, add(g, K_COUNTER, "node_intr_total", job, inst, NULL, NULL, NULL, NULL, NULL, NULL),
            3000, 1);
    counter(g, add(g, K_COUNTER, "node_forks_total", job, inst, NULL, NULL, NULL, NULL, NULL, NULL),
            5, 1);
}

static int gen_init(gen *g, const opts *o)
{
    memset(g, 0, sizeof(*g));
    g->o = *o;
    g->rng = o->seed ? o->seed : 0x9e3779b97f4a7c15ULL;
    long ninst = (o->series + PER_INSTANCE - 1) / PER_INSTANCE;
    g->s = vg_calloc((size_t)ninst * PER_INSTANCE, sizeof(gseries));
    g->h = vg_calloc((size_t)ninst * 2, sizeof(hist));
    g->strings_cap = (size_t)ninst * 4096;
    g->strings = vg_malloc(g->strings_cap);
    if (!g->s || !g->h || !g->strings) return -1;
    for (long i = 0; i < ninst; i++) {
        size_t before = g->n;
        add_instance(g, i);
        if (g->n - before != PER_INSTANCE) {
            fprintf(stderr, "loadgen: instance has %zu series, want %d\n", g->n - before,
                    PER_INSTANCE);
            return -1;
        }
    }
    return 0;
}

/* ---- advancing one step ---- */

static void step_hist(gen *g, hist *h, double dt)
{
    double n = floor(h->rate * dt * (0.7 + 0.6 * unif(g)));
    double mean = h->mean * (0.8 + 0.4 * unif(g));
    for (int b = 0; b < NBUCKETS; b++) {
        /* exponential latency distribution around mean: P(x <= le) */
        double p = isinf(le_bounds[b]) ? 1 : 1 - exp(-le_bounds[b] / mean);
        h->cum[b] += floor(n * p);
    }
    h->cum[NBUCKETS - 1] = fmax(h->cum[NBUCKETS - 1], h->cum[NBUCKETS - 2]);
    h->sum += n * mean;
}

static double step_series(gen *g, gseries *s, double dt)
{
    switch (s->k) {
    case K_CPU:
        s->v += s->rate * dt * (0.8 + 0.4 * unif(g));
        s->v = round(s->v * 100) / 100;
        break;
    case K_COUNTER:
        if (unif(g) < 1.0 / 20000) s->v = 0; /* a restart: the counter resets */
        s->v += s->rate * dt * (0.5 + unif(g));
        if (s->integer) s->v = floor(s->v);
        break;
    case K_GAUGE:
        s->v += (s->level - s->v) * 0.05 + s->sigma * normal(g);
        if (s->v < 0) s->v = 0;
        break;
    case K_BUCKET: s->v = s->h->cum[s->bucket]; break;
    case K_HSUM: s->v = s->h->sum; break;
    case K_HCOUNT: s->v = s->h->cum[NBUCKETS - 1]; break;
    }
    return s->v;
}

static void step_all(gen *g, double *vals)
{
    double dt = (double)g->o.step_s;
    for (size_t i = 0; i < g->nh; i++) step_hist(g, &g->h[i], dt);
    for (size_t i = 0; i < g->n; i++) vals[i] = step_series(g, &g->s[i], dt);
}

/* ---- requests ---- */

typedef struct request {
    uint8_t *data;
    size_t len;
    uint64_t samples;
    int last;
} request;

typedef struct pipe_q {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    request slot[QCAP];
    int head, count;
} pipe_q;

static void q_put(pipe_q *q, request r)
{
    pthread_mutex_lock(&q->mu);
    while (q->count == QCAP) pthread_cond_wait(&q->cv, &q->mu);
    q->slot[(q->head + q->count) % QCAP] = r;
    q->count++;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* The next request; the end marker stays queued so every sender sees it. */
static request q_get(pipe_q *q)
{
    pthread_mutex_lock(&q->mu);
    while (q->count == 0) pthread_cond_wait(&q->cv, &q->mu);
    request r = q->slot[q->head];
    if (!r.last) {
        q->head = (q->head + 1) % QCAP;
        q->count--;
    }
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return r;
}

typedef struct builder {
    Prometheus__WriteRequest wr;
    Prometheus__TimeSeries *ts, **tsp;
    Prometheus__Sample *sm, **smp;
    long k;
} builder;

static int builder_init(builder *b, gen *g)
{
    size_t n = g->n, k = (size_t)g->o.steps_per_req;
    b->k = (long)k;
    prometheus__write_request__init(&b->wr);
    b->ts = vg_calloc(n, sizeof(*b->ts));
    b->tsp = vg_calloc(n, sizeof(*b->tsp));
    b->sm = vg_calloc(n * k, sizeof(*b->sm));
    b->smp = vg_calloc(n * k, sizeof(*b->smp));
    if (!b->ts || !b->tsp || !b->sm || !b->smp) return -1;
    for (size_t i = 0; i < n; i++) {
        prometheus__time_series__init(&b->ts[i]);
        b->ts[i].labels = g->s[i].lblp;
        b->ts[i].n_labels = g->s[i].nlbl;
        b->ts[i].samples = &b->smp[i * k];
        b->tsp[i] = &b->ts[i];
        for (size_t j = 0; j < k; j++) {
            prometheus__sample__init(&b->sm[i * k + j]);
            b->smp[i * k + j] = &b->sm[i * k + j];
        }
    }
    return 0;
}

/* One request of series [off, off+cnt) with nsteps samples each. */
static request pack(builder *b, size_t off, size_t cnt, size_t nsteps)
{
    request r = {0};
    b->wr.timeseries = b->tsp + off;
    b->wr.n_timeseries = cnt;
    for (size_t i = off; i < off + cnt; i++) b->ts[i].n_samples = nsteps;
    size_t raw_len = prometheus__write_request__get_packed_size(&b->wr);
    uint8_t *raw = vg_malloc(raw_len + 1);
    size_t zlen = snappy_max_compressed_length(raw_len);
    r.data = vg_malloc(zlen);
    if (!raw || !r.data) {
        fprintf(stderr, "loadgen: out of memory\n");
        exit(1);
    }
    prometheus__write_request__pack(&b->wr, raw);
    if (snappy_compress((char *)raw, raw_len, (char *)r.data, &zlen) != SNAPPY_OK) {
        fprintf(stderr, "loadgen: snappy_compress failed\n");
        exit(1);
    }
    vg_free(raw);
    r.len = zlen;
    r.samples = (uint64_t)nsteps * b->wr.n_timeseries;
    return r;
}

typedef struct producer {
    gen *g;
    pipe_q *q;
    int64_t start_ms;
    long nsteps;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    gen *g = p->g;
    builder b;
    double *vals = vg_malloc(g->n * sizeof(double));
    if (!vals || builder_init(&b, g)) {
        fprintf(stderr, "loadgen: out of memory\n");
        exit(1);
    }
    for (long t0 = 0; t0 < p->nsteps; t0 += b.k) {
        long n = p->nsteps - t0 < b.k ? p->nsteps - t0 : b.k;
        for (long j = 0; j < n; j++) {
            int64_t ts = p->start_ms + (t0 + j) * g->o.step_s * 1000;
            step_all(g, vals);
            for (size_t i = 0; i < g->n; i++) {
                b.sm[i * (size_t)b.k + (size_t)j].value = vals[i];
                b.sm[i * (size_t)b.k + (size_t)j].timestamp = ts;
            }
        }
        /* samples of one series are contiguous from index i*k */
        size_t per = g->o.series_per_req > 0 ? (size_t)g->o.series_per_req : g->n;
        for (size_t off = 0; off < g->n; off += per)
            q_put(p->q, pack(&b, off, g->n - off < per ? g->n - off : per, (size_t)n));
    }
    q_put(p->q, (request){.last = 1});
    vg_free(vals);
    return NULL;
}

/* ---- sending ---- */

typedef struct url_stats {
    uint64_t requests, samples, retries, failed_requests, failed_samples;
} url_stats;

static int send_one(vg_httpc_t *c, const opts *o, const char *url, const request *r, url_stats *st)
{
    char tenant[128];
    snprintf(tenant, sizeof tenant, "X-Scope-OrgID: %s", o->tenant ? o->tenant : "default");
    const char *hdr[] = {"Content-Type: application/x-protobuf",
                         "Content-Encoding: snappy",
                         "X-Prometheus-Remote-Write-Version: 0.1.0",
                         "Expect:",
                         o->tenant ? tenant : NULL,
                         NULL};
    vg_buf body;
    vg_buf_init(&body, 1 << 20);
    for (int attempt = 0; attempt < 30; attempt++) {
        int status = 0;
        vg_error err = {0};
        vg_httpc_req req = {
            .url = url, .headers = hdr, .body = r->data, .body_len = r->len, .timeout_ms = 120000};
        vg_buf_reset(&body);
        vg_err_t rc = vg_httpc_do(c, &req, &status, &body, &err);
        if (!rc && status / 100 == 2) {
            st->requests++;
            st->samples += r->samples;
            vg_buf_free(&body);
            return 0;
        }
        if (!rc && status / 100 == 4 && status != 429) {
            st->failed_requests++;
            st->failed_samples += r->samples;
            if (st->failed_requests <= 5)
                fprintf(stderr, "loadgen: %s answered %d: %.300s\n", url, status,
                        body.data ? body.data : "");
            vg_buf_free(&body);
            return -1;
        }
        st->retries++;
        fprintf(stderr, "loadgen: %s: %s; retrying\n", url,
                rc ? vg_error_msg(&err, rc) : "retryable status");
        usleep((useconds_t)(100000 * (attempt + 1)));
    }
    st->failed_requests++;
    st->failed_samples += r->samples;
    vg_buf_free(&body);
    return -1;
}

typedef struct sender {
    const opts *o;
    pipe_q *q;
    url_stats st[MAX_URLS];
    uint64_t bytes;
} sender;

/* One connection: send queued requests to every URL until the end marker. */
static void *send_loop(void *arg)
{
    sender *s = arg;
    vg_httpc_t *c = vg_httpc_new();
    if (!c) {
        fprintf(stderr, "loadgen: out of memory\n");
        exit(1);
    }
    for (request r = q_get(s->q); !r.last; r = q_get(s->q)) {
        for (int u = 0; u < s->o->nurls; u++) send_one(c, s->o, s->o->urls[u], &r, &s->st[u]);
        s->bytes += r.len;
        vg_free(r.data);
    }
    vg_httpc_free(c);
    return NULL;
}

static void url_stats_add(url_stats *to, const url_stats *from)
{
    to->requests += from->requests;
    to->samples += from->samples;
    to->retries += from->retries;
    to->failed_requests += from->failed_requests;
    to->failed_samples += from->failed_samples;
}

/* ---- OpenMetrics output ---- */

static void fmt_value(char *buf, size_t n, double v)
{
    if (isinf(v))
        snprintf(buf, n, v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        snprintf(buf, n, "NaN");
    else
        snprintf(buf, n, "%.17g", v);
}

/* OpenMetrics wants one metric family's samples together, so the series
 * values are generated once into a [series][step] matrix and written family
 * by family (each family's series are added consecutively per instance, so a
 * family is found by name across instances). */
static int write_om(gen *g, int64_t start_ms, long nsteps)
{
    FILE *f = fopen(g->o.om_path, "w");
    if (!f) {
        fprintf(stderr, "loadgen: %s: %s\n", g->o.om_path, strerror(errno));
        return 1;
    }
    double *m = vg_malloc(g->n * (size_t)nsteps * sizeof(double));
    double *vals = vg_malloc(g->n * sizeof(double));
    if (!m || !vals) {
        fprintf(stderr, "loadgen: matrix of %zu x %ld values does not fit\n", g->n, nsteps);
        return 1;
    }
    for (long t = 0; t < nsteps; t++) {
        step_all(g, vals);
        for (size_t i = 0; i < g->n; i++) m[i * (size_t)nsteps + (size_t)t] = vals[i];
    }
    static const char *fams[] = {"node_cpu_seconds",
                                 "node_memory_MemAvailable_bytes",
                                 "node_memory_MemFree_bytes",
                                 "node_memory_Cached_bytes",
                                 "node_memory_Buffers_bytes",
                                 "node_memory_Active_bytes",
                                 "node_memory_Inactive_bytes",
                                 "node_load1",
                                 "node_load5",
                                 "node_load15",
                                 "node_network_receive_bytes",
                                 "node_network_receive_packets",
                                 "node_network_transmit_bytes",
                                 "node_network_transmit_packets",
                                 "node_disk_read_bytes",
                                 "node_disk_written_bytes",
                                 "node_disk_io_time_seconds",
                                 "node_filesystem_avail_bytes",
                                 "node_filesystem_size_bytes",
                                 "http_request_duration_seconds",
                                 "http_requests",
                                 "node_context_switches",
                                 "node_intr",
                                 "node_forks"};
    for (size_t fi = 0; fi < sizeof(fams) / sizeof(fams[0]); fi++) {
        const char *fam = fams[fi];
        size_t fl = strlen(fam);
        int is_hist = strcmp(fam, "http_request_duration_seconds") == 0;
        int is_counter = 0;
        for (size_t i = 0; i < g->n && !is_counter; i++) {
            const char *nm = NULL;
            for (size_t j = 0; j < g->s[i].nlbl; j++)
                if (strcmp(g->s[i].lblp[j]->name, "__name__") == 0) nm = g->s[i].lblp[j]->value;
            if (strncmp(nm, fam, fl) == 0 && strcmp(nm + fl, "_total") == 0) is_counter = 1;
        }
        fprintf(f, "# TYPE %s %s\n", fam, is_hist ? "histogram" : is_counter ? "counter" : "gauge");
        for (size_t i = 0; i < g->n; i++) {
            const gseries *s = &g->s[i];
            const char *nm = NULL;
            for (size_t j = 0; j < s->nlbl; j++)
                if (strcmp(s->lblp[j]->name, "__name__") == 0) nm = s->lblp[j]->value;
            const char *suf = nm + fl;
            int match = strncmp(nm, fam, fl) == 0 &&
                        (is_hist      ? (!strcmp(suf, "_bucket") || !strcmp(suf, "_sum") ||
                                    !strcmp(suf, "_count"))
                         : is_counter ? !strcmp(suf, "_total")
                                      : !*suf);
            if (!match) continue;
            char lbuf[512];
            size_t lo = 0;
            for (size_t j = 0; j < s->nlbl; j++) {
                if (strcmp(s->lblp[j]->name, "__name__") == 0) continue;
                lo += (size_t)snprintf(lbuf + lo, sizeof lbuf - lo, "%s%s=\"%s\"", lo ? "," : "",
                                       s->lblp[j]->name, s->lblp[j]->value);
            }
            for (long t = 0; t < nsteps; t++) {
                char vb[40];
                fmt_value(vb, sizeof vb, m[i * (size_t)nsteps + (size_t)t]);
                int64_t ts = start_ms + t * g->o.step_s * 1000;
                fprintf(f, "%s{%s} %s %lld.%03lld\n", nm, lbuf, vb, (long long)(ts / 1000),
                        (long long)(ts % 1000));
            }
        }
    }
    fprintf(f, "# EOF\n");
    vg_free(m);
    vg_free(vals);
    return fclose(f) ? 1 : 0;
}

/* ---- main ---- */

static void usage(void)
{
    fprintf(stderr, "usage: loadgen [--series N] [--hours H] [--step SECONDS] [--end MS|now]\n"
                    "               [--steps-per-request K] [--series-per-request S]\n"
                    "               [--conns C] [--seed N] [--tenant T]\n"
                    "               (--url URL [--url URL...] | --om FILE)\n"
                    "A node_exporter-like dataset (100 series per instance) over H hours, sent as\n"
                    "remote-write 1.0 in time order to each URL, or written as OpenMetrics.\n");
}

static int parse_args(int argc, char **argv, opts *o)
{
    *o = (opts){
        .series = 10000, .hours = 24, .step_s = 30, .steps_per_req = 10, .conns = 1, .seed = 42};
    o->end_ms = (int64_t)time(NULL) * 1000;
    for (int i = 1; i < argc; i += 2) { /* every option takes one value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return usage(), -1;
        if (!strcmp(a, "--series"))
            o->series = atol(v);
        else if (!strcmp(a, "--hours"))
            o->hours = atof(v);
        else if (!strcmp(a, "--step"))
            o->step_s = atol(v);
        else if (!strcmp(a, "--end"))
            o->end_ms = strcmp(v, "now") ? atoll(v) : o->end_ms;
        else if (!strcmp(a, "--steps-per-request"))
            o->steps_per_req = atol(v);
        else if (!strcmp(a, "--series-per-request"))
            o->series_per_req = atol(v);
        else if (!strcmp(a, "--conns"))
            o->conns = atoi(v);
        else if (!strcmp(a, "--seed"))
            o->seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--tenant"))
            o->tenant = v;
        else if (!strcmp(a, "--om"))
            o->om_path = v;
        else if (!strcmp(a, "--url") && o->nurls < MAX_URLS)
            o->urls[o->nurls++] = v;
        else
            return usage(), -1;
    }
    if (o->series <= 0 || o->hours <= 0 || o->step_s <= 0 || o->steps_per_req <= 0 ||
        o->series_per_req < 0 || o->conns < 1 || o->conns > MAX_CONNS || (!o->nurls && !o->om_path))
        return usage(), -1;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    opts o;
    gen g;
    if (parse_args(argc, argv, &o)) return 2;
    if (gen_init(&g, &o)) {
        fprintf(stderr, "loadgen: out of memory building %ld series\n", o.series);
        return 1;
    }
    long nsteps = (long)(o.hours * 3600 / (double)o.step_s) + 1;
    int64_t start_ms = o.end_ms - (int64_t)(nsteps - 1) * o.step_s * 1000;
    if (o.om_path) return write_om(&g, start_ms, nsteps);
    pipe_q q = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    producer p = {.g = &g, .q = &q, .start_ms = start_ms, .nsteps = nsteps};
    pthread_t th;
    pthread_create(&th, NULL, produce, &p);
    sender snd[MAX_CONNS];
    pthread_t sth[MAX_CONNS];
    url_stats st[MAX_URLS] = {{0}};
    uint64_t bytes = 0;
    double t0 = now_s();
    for (int i = 0; i < o.conns; i++) {
        snd[i] = (sender){.o = &o, .q = &q};
        pthread_create(&sth[i], NULL, send_loop, &snd[i]);
    }
    for (int i = 0; i < o.conns; i++) {
        pthread_join(sth[i], NULL);
        bytes += snd[i].bytes;
        for (int u = 0; u < o.nurls; u++) url_stats_add(&st[u], &snd[i].st[u]);
    }
    pthread_join(th, NULL);
    double el = now_s() - t0;
    int bad = 0;
    for (int u = 0; u < o.nurls; u++) {
        printf("loadgen: url=%s series=%zu steps=%ld start_ms=%lld end_ms=%lld samples=%llu "
               "requests=%llu retries=%llu failed_requests=%llu failed_samples=%llu "
               "bytes=%llu elapsed=%.1fs rate=%.0f/s\n",
               o.urls[u], g.n, nsteps, (long long)start_ms, (long long)o.end_ms,
               (unsigned long long)st[u].samples, (unsigned long long)st[u].requests,
               (unsigned long long)st[u].retries, (unsigned long long)st[u].failed_requests,
               (unsigned long long)st[u].failed_samples, (unsigned long long)bytes, el,
               (double)st[u].samples / el);
        bad |= st[u].failed_requests != 0;
    }
    vg_free(g.s);
    vg_free(g.h);
    vg_free(g.strings);
    return bad ? 1 : 0;
}
