/*
 * test_batcher.c - the batcher against a stub sink that records or fails.
 *
 * The stub is a vg_sink_ops table in this file, so the tests see exactly the
 * bytes the batcher would hand to Kafka or HTTP and decode them with
 * vg_envelope_decode. vg_batcher_flush waits for the sink, so no test
 * sleeps: ordering and counts are checked after flush or free returns. The
 * spool tests use a real spool in a temporary directory; where the test must
 * wait for the ship thread it polls a condition (spool records, queue
 * length) with a deadline, and a "hold" gate in the stub makes the order of
 * sends deterministic.
 */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ship/batcher.h"
#include "ship/sink.h"
#include "vigil/alloc.h"
#include "vigil/clock.h"
#include "vigil/envelope.h"
#include "vigil/log.h"
#include "vigil/spool.h"

#define MAX_REC 4096

struct stub {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int hold;      /* send() waits while set */
    int holding;   /* a send() is waiting at the gate */
    int fail_next; /* return fail_code this many times */
    vg_err_t fail_code;
    int block; /* return VG_ERETRY until cleared */
    int attempts;
    uint64_t attempt_seq[MAX_REC];
    int nsent;
    uint8_t *data[MAX_REC];
    size_t len[MAX_REC];
    uint64_t seq[MAX_REC];
    char tenant[MAX_REC][32];
};

static vg_err_t stub_send(void *self, const vg_sink_msg *msg, vg_error *err)
{
    struct stub *s = self;
    vg_err_t rc = VG_OK;
    pthread_mutex_lock(&s->mu);
    s->holding = 1;
    while (s->hold) pthread_cond_wait(&s->cv, &s->mu);
    s->holding = 0;
    if (s->attempts < MAX_REC) s->attempt_seq[s->attempts] = msg->seq;
    s->attempts++;
    if (s->block) {
        rc = vg_error_set(err, VG_ERETRY, "stub: blocked");
    } else if (s->fail_next > 0) {
        s->fail_next--;
        rc = vg_error_set(err, s->fail_code, "stub: failing on purpose");
    } else if (s->nsent < MAX_REC) {
        s->data[s->nsent] = vg_malloc(msg->len);
        memcpy(s->data[s->nsent], msg->data, msg->len);
        s->len[s->nsent] = msg->len;
        s->seq[s->nsent] = msg->seq;
        strncpy(s->tenant[s->nsent], msg->tenant, 31);
        s->nsent++;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void stub_free(void *self)
{
    (void)self;
}

static const struct vg_sink_ops stub_ops = {.name = "stub", .send = stub_send, .free = stub_free};

struct fixture {
    struct stub st;
    struct vg_sink sink;
    vg_metrics_t *m;
    vg_batcher_t *b;
    vg_spool_t *spool;
    vg_batcher_opts o;
    vg_breaker_opts br;
    char dir[64], seq_path[96];
};

static struct fixture *fx_alloc(size_t max_samples, int64_t max_delay_ms)
{
    struct fixture *f = vg_calloc(1, sizeof(*f));
    pthread_mutex_init(&f->st.mu, NULL);
    pthread_cond_init(&f->st.cv, NULL);
    f->sink.ops = &stub_ops;
    f->sink.self = &f->st;
    f->m = vg_metrics_new();
    f->br = (vg_breaker_opts){.open_ms = 20}; /* recover quickly once unblocked */
    f->o = (vg_batcher_opts){.agent_id = "agent-1",
                             .node = "node-a",
                             .tenant = "team-a",
                             .max_samples = max_samples,
                             .max_delay_ms = max_delay_ms,
                             .breaker = &f->br};
    snprintf(f->dir, sizeof(f->dir), "/tmp/vigil-batcher-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->seq_path, sizeof(f->seq_path), "%s/seq", f->dir);
    return f;
}

static void fx_start(struct fixture *f)
{
    vg_error e = {0};
    assert_int_equal(vg_batcher_new(&f->o, &f->sink, f->m, &f->b, &e), VG_OK);
}

static struct fixture *fx_new(size_t max_samples, int64_t max_delay_ms)
{
    struct fixture *f = fx_alloc(max_samples, max_delay_ms);
    fx_start(f);
    return f;
}

/* A spool in the fixture's directory (reopened if the fixture had one). */
static void fx_spool(struct fixture *f)
{
    char d[128];
    snprintf(d, sizeof(d), "%s/spool", f->dir);
    vg_spool_opts so = {.dir = d, .kind = "metrics", .sync_interval_ms = -1};
    vg_spool_free(f->spool);
    f->spool = NULL;
    assert_int_equal(vg_spool_open(&so, f->m, &f->spool, NULL), VG_OK);
    f->o.spool = f->spool;
}

static void rm_tree(const char *dir)
{
    char p[512];
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (unlink(p) != 0) rm_tree(p);
    }
    if (d) closedir(d);
    rmdir(dir);
}

static void fx_free(struct fixture *f)
{
    vg_batcher_free(f->b);
    vg_spool_free(f->spool);
    for (int i = 0; i < f->st.nsent; i++) vg_free(f->st.data[i]);
    vg_metrics_free(f->m);
    pthread_mutex_destroy(&f->st.mu);
    pthread_cond_destroy(&f->st.cv);
    rm_tree(f->dir);
    vg_free(f);
}

static void set_block(struct fixture *f, int block)
{
    pthread_mutex_lock(&f->st.mu);
    f->st.block = block;
    pthread_mutex_unlock(&f->st.mu);
}

static void set_hold(struct fixture *f, int hold)
{
    pthread_mutex_lock(&f->st.mu);
    f->st.hold = hold;
    pthread_cond_broadcast(&f->st.cv);
    pthread_mutex_unlock(&f->st.mu);
}

static double gauge(struct fixture *f, const char *name, const char *labels)
{
    return vg_metric_value(vg_metrics_gauge(f->m, name, "", labels));
}

/* Poll until the gauge reaches want (the ship thread is asynchronous). */
static void wait_gauge(struct fixture *f, const char *name, const char *labels, double want)
{
    int64_t deadline = vg_clock_mono_ms() + 20000;
    while (gauge(f, name, labels) != want && vg_clock_mono_ms() < deadline) usleep(1000);
    assert_true(gauge(f, name, labels) == want);
}

static int stub_holding(struct fixture *f)
{
    pthread_mutex_lock(&f->st.mu);
    int h = f->st.holding;
    pthread_mutex_unlock(&f->st.mu);
    return h;
}

static vg_batch_t *decode(struct fixture *f, int i)
{
    vg_batch_t *b = NULL;
    vg_error e = {0};
    assert_true(i < f->st.nsent);
    assert_int_equal(vg_envelope_decode(f->st.data[i], f->st.len[i], NULL, &b, &e), VG_OK);
    assert_int_equal(b->payload_case, VIGIL__V1__BATCH__PAYLOAD_METRICS);
    return b;
}

static size_t batch_samples(const vg_batch_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->metrics->n_timeseries; i++) n += b->metrics->timeseries[i]->n_samples;
    return n;
}

static double metric(struct fixture *f, const char *name, const char *labels)
{
    return vg_metric_value(vg_metrics_counter(f->m, name, "", labels));
}

static void add(struct fixture *f, const char *name, const char *job, int64_t ts, double v)
{
    vg_label_t l[] = {{"__name__", name}, {"job", job}};
    assert_int_equal(vg_batcher_add(f->b, l, 2, ts, v), VG_OK);
}

static void test_groups_by_series(void **state)
{
    struct fixture *f = fx_new(100, 3600 * 1000);
    add(f, "up", "node", 1000, 1);
    add(f, "up", "api", 1000, 0);
    add(f, "up", "node", 2000, 1);
    add(f, "load", "node", 1000, 0.5);
    add(f, "up", "node", 3000, 0);
    vg_error e = {0};
    assert_int_equal(vg_batcher_flush(f->b, &e), VG_OK);
    assert_int_equal(f->st.nsent, 1);
    assert_string_equal(f->st.tenant[0], "team-a");
    vg_batch_t *b = decode(f, 0);
    assert_string_equal(b->agent_id, "agent-1");
    assert_string_equal(b->node, "node-a");
    assert_string_equal(b->tenant, "team-a");
    assert_int_equal(b->seq, 1);
    assert_true(b->created_ms > 0);
    assert_int_equal(b->metrics->n_timeseries, 3);
    Prometheus__TimeSeries *ts = b->metrics->timeseries[0];
    assert_int_equal(ts->n_labels, 2);
    assert_string_equal(ts->labels[0]->name, "__name__");
    assert_string_equal(ts->labels[0]->value, "up");
    assert_string_equal(ts->labels[1]->value, "node");
    assert_int_equal(ts->n_samples, 3);
    assert_int_equal(ts->samples[0]->timestamp, 1000);
    assert_int_equal(ts->samples[2]->timestamp, 3000);
    assert_true(ts->samples[2]->value == 0);
    assert_int_equal(b->metrics->timeseries[1]->n_samples, 1);
    assert_string_equal(b->metrics->timeseries[2]->labels[0]->value, "load");
    vg_envelope_batch_free(b);
    assert_true(metric(f, "vigil_agent_samples_sent_total", NULL) == 5);
    assert_true(metric(f, "vigil_agent_batches_sent_total", NULL) == 1);
    fx_free(f);
}

/* ---- vg_batcher_add_encoded: the same samples both ways decode the same ---- */

/* One TimeSeries as MetricBatch field 1, encoded by protobuf-c. */
static size_t encode_series(uint8_t *out, const char *name, const char *job, int64_t ts, double v)
{
    Prometheus__Label l0 = PROMETHEUS__LABEL__INIT, l1 = PROMETHEUS__LABEL__INIT;
    l0.name = "__name__", l0.value = (char *)name, l1.name = "job", l1.value = (char *)job;
    Prometheus__Label *lp[] = {&l0, &l1};
    Prometheus__Sample s = PROMETHEUS__SAMPLE__INIT;
    s.timestamp = ts, s.value = v;
    Prometheus__Sample *sp[] = {&s};
    Prometheus__TimeSeries t = PROMETHEUS__TIME_SERIES__INIT;
    t.labels = lp, t.n_labels = 2, t.samples = sp, t.n_samples = 1;
    size_t n = prometheus__time_series__get_packed_size(&t);
    assert_true(n < 128);
    out[0] = 0x0a, out[1] = (uint8_t)n;
    return 2 + prometheus__time_series__pack(&t, out + 2);
}

static const struct {
    const char *name, *job;
    int64_t ts;
    double v;
} both_ways[] = {{"up", "node", 1000, 1}, {"up", "api", 1000, 0}, {"load", "node", -5, 0.5}};

static void assert_same_batch(const vg_batch_t *x, const vg_batch_t *y)
{
    assert_string_equal(x->agent_id, y->agent_id);
    assert_string_equal(x->node, y->node);
    assert_string_equal(x->tenant, y->tenant);
    assert_true(x->created_ms > 0 && y->created_ms > 0);
    assert_int_equal(x->metrics->n_timeseries, y->metrics->n_timeseries);
    for (size_t i = 0; i < x->metrics->n_timeseries; i++) {
        const Prometheus__TimeSeries *a = x->metrics->timeseries[i], *b = y->metrics->timeseries[i];
        assert_int_equal(a->n_labels, b->n_labels);
        for (size_t j = 0; j < a->n_labels; j++) {
            assert_string_equal(a->labels[j]->name, b->labels[j]->name);
            assert_string_equal(a->labels[j]->value, b->labels[j]->value);
        }
        assert_int_equal(a->n_samples, b->n_samples);
        for (size_t j = 0; j < a->n_samples; j++) {
            assert_int_equal(a->samples[j]->timestamp, b->samples[j]->timestamp);
            assert_memory_equal(&a->samples[j]->value, &b->samples[j]->value, sizeof(double));
        }
    }
}

static void test_add_encoded_same_as_add(void **state)
{
    struct fixture *f = fx_alloc(100, 3600 * 1000);
    f->o.agent_id = ""; /* an empty string field is left out, as protobuf-c does */
    fx_start(f);
    size_t n = sizeof both_ways / sizeof *both_ways, len = 0;
    uint8_t buf[512];
    for (size_t i = 0; i < n; i++)
        add(f, both_ways[i].name, both_ways[i].job, both_ways[i].ts, both_ways[i].v);
    assert_int_equal(vg_batcher_flush(f->b, NULL), VG_OK);
    for (size_t i = 0; i < n; i++)
        len += encode_series(buf + len, both_ways[i].name, both_ways[i].job, both_ways[i].ts,
                             both_ways[i].v);
    assert_int_equal(vg_batcher_add_encoded(f->b, buf, len, n), VG_OK);
    assert_int_equal(vg_batcher_flush(f->b, NULL), VG_OK);
    assert_int_equal(f->st.nsent, 2);
    vg_batch_t *x = decode(f, 0), *y = decode(f, 1);
    assert_int_equal(x->seq, 1);
    assert_int_equal(y->seq, 2);
    assert_string_equal(y->agent_id, "");
    assert_int_equal(y->metrics->n_timeseries, 3);
    assert_same_batch(x, y);
    vg_envelope_batch_free(x);
    vg_envelope_batch_free(y);
    assert_true(metric(f, "vigil_agent_samples_sent_total", NULL) == 6);
    fx_free(f);
}

/* Both entry points into one batch; an encoded scrape is never split. */
static void test_add_encoded_mixed(void **state)
{
    struct fixture *f = fx_new(4, 3600 * 1000);
    uint8_t buf[512];
    size_t len = 0;
    for (int i = 0; i < 6; i++) len += encode_series(buf + len, "m", "scrape", 1000 + i, i);
    add(f, "host", "node", 1000, 1);
    assert_int_equal(vg_batcher_add_encoded(f->b, buf, len, 6), VG_OK);
    assert_int_equal(vg_batcher_add_encoded(f->b, buf, 0, 0), VG_OK);
    assert_int_equal(vg_batcher_add_encoded(NULL, buf, len, 6), VG_EINVAL);
    assert_int_equal(vg_batcher_flush(f->b, NULL), VG_OK);
    assert_int_equal(f->st.nsent, 1); /* cut after the call, not inside it */
    vg_batch_t *b = decode(f, 0);
    assert_int_equal(batch_samples(b), 7);
    assert_int_equal(b->metrics->n_timeseries, 7);
    assert_string_equal(b->metrics->timeseries[0]->labels[1]->value, "scrape");
    assert_string_equal(b->metrics->timeseries[6]->labels[1]->value, "node");
    assert_int_equal(b->metrics->timeseries[5]->samples[0]->timestamp, 1005);
    vg_envelope_batch_free(b);
    fx_free(f);
}

static void test_many_series_grow_map(void **state)
{
    struct fixture *f = fx_new(100000, 3600 * 1000);
    char job[32];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 3000; i++) {
            snprintf(job, sizeof(job), "j%d", i);
            add(f, "m", job, 1000 + round, i);
        }
    }
    assert_int_equal(vg_batcher_flush(f->b, NULL), VG_OK);
    assert_int_equal(f->st.nsent, 1);
    vg_batch_t *b = decode(f, 0);
    assert_int_equal(b->metrics->n_timeseries, 3000);
    for (size_t i = 0; i < 3000; i++) {
        snprintf(job, sizeof(job), "j%zu", i);
        Prometheus__TimeSeries *ts = b->metrics->timeseries[i];
        assert_string_equal(ts->labels[1]->value, job);
        assert_int_equal(ts->n_samples, 2);
        assert_true(ts->samples[1]->value == (double)i);
    }
    vg_envelope_batch_free(b);
    fx_free(f);
}

static void test_seq_increases(void **state)
{
    struct fixture *f = fx_new(100, 3600 * 1000);
    for (int i = 0; i < 3; i++) {
        add(f, "up", "node", 1000 * i, i);
        assert_int_equal(vg_batcher_flush(f->b, NULL), VG_OK);
    }
    assert_int_equal(vg_batcher_flush(f->b, NULL), VG_OK); /* nothing pending: no batch */
    assert_int_equal(f->st.nsent, 3);
    for (int i = 0; i < 3; i++) {
        vg_batch_t *b = decode(f, i);
        assert_int_equal(b->seq, (uint64_t)i + 1);
        assert_int_equal(f->st.seq[i], (uint64_t)i + 1);
        vg_envelope_batch_free(b);
    }
    fx_free(f);
}

static void test_max_samples_cut(void **state)
{
    struct fixture *f = fx_new(5, 3600 * 1000);
    for (int i = 0; i < 12; i++) add(f, "up", i % 2 ? "a" : "b", i, i);
    assert_int_equal(vg_batcher_flush(f->b, NULL), VG_OK);
    assert_int_equal(f->st.nsent, 3);
    size_t want[] = {5, 5, 2};
    double next = 0;
    for (int i = 0; i < 3; i++) {
        vg_batch_t *b = decode(f, i);
        assert_int_equal(batch_samples(b), want[i]);
        /* every sample arrives once: the values across batches cover 0..11 */
        for (size_t s = 0; s < b->metrics->n_timeseries; s++)
            for (size_t k = 0; k < b->metrics->timeseries[s]->n_samples; k++)
                next += b->metrics->timeseries[s]->samples[k]->value;
        vg_envelope_batch_free(b);
    }
    assert_true(next == 66);
    fx_free(f);
}

static void test_retry_keeps_order(void **state)
{
    struct fixture *f = fx_new(1, 3600 * 1000); /* every sample is a batch */
    f->st.fail_next = 2;
    f->st.fail_code = VG_ERETRY;
    for (int i = 0; i < 4; i++) add(f, "up", "node", i, i);
    assert_int_equal(vg_batcher_flush(f->b, NULL), VG_OK);
    assert_int_equal(f->st.nsent, 4);
    for (int i = 0; i < 4; i++) assert_int_equal(f->st.seq[i], (uint64_t)i + 1);
    /* the two failures were both on seq 1, retried before seq 2 was tried */
    assert_int_equal(f->st.attempts, 6);
    assert_int_equal(f->st.attempt_seq[0], 1);
    assert_int_equal(f->st.attempt_seq[1], 1);
    assert_int_equal(f->st.attempt_seq[2], 1);
    assert_int_equal(f->st.attempt_seq[3], 2);
    assert_true(metric(f, "vigil_agent_batch_send_retries_total", NULL) == 2);
    assert_true(metric(f, "vigil_agent_batches_sent_total", NULL) == 4);
    fx_free(f);
}

static void test_rejected_batch_dropped(void **state)
{
    struct fixture *f = fx_new(100, 3600 * 1000);
    f->st.fail_next = 1;
    f->st.fail_code = VG_EPROTO;
    add(f, "up", "node", 1, 1);
    vg_error e = {0};
    assert_int_equal(vg_batcher_flush(f->b, &e), VG_EPROTO); /* dropped, not retried */
    add(f, "up", "node", 2, 2);
    assert_int_equal(vg_batcher_flush(f->b, &e), VG_OK);
    assert_int_equal(f->st.nsent, 1);
    assert_int_equal(f->st.seq[0], 2);
    assert_int_equal(f->st.attempts, 2);
    assert_true(metric(f, "vigil_agent_batches_dropped_total", "reason=\"rejected\"") == 1);
    assert_true(metric(f, "vigil_agent_samples_dropped_total", "reason=\"rejected\"") == 1);
    assert_true(metric(f, "vigil_agent_batch_send_retries_total", NULL) == 0);
    fx_free(f);
}

static void test_flush_on_free(void **state)
{
    struct fixture *f = fx_new(100, 3600 * 1000);
    add(f, "up", "node", 1, 1);
    add(f, "up", "api", 1, 1);
    add(f, "up", "node", 2, 1);
    vg_batcher_free(f->b);
    f->b = NULL;
    assert_int_equal(f->st.nsent, 1);
    vg_batch_t *b = decode(f, 0);
    assert_int_equal(batch_samples(b), 3);
    assert_int_equal(b->metrics->n_timeseries, 2);
    vg_envelope_batch_free(b);
    fx_free(f);
}

static void test_commit_cuts_half_full(void **state)
{
    struct fixture *f = fx_new(4, 3600 * 1000);
    add(f, "up", "node", 1, 1);
    vg_batcher_commit(f->b); /* 1 < 4/2: stays */
    add(f, "up", "node", 2, 1);
    vg_batcher_commit(f->b); /* 2 >= 2: cut */
    add(f, "up", "node", 3, 1);
    assert_int_equal(vg_batcher_flush(f->b, NULL), VG_OK);
    assert_int_equal(f->st.nsent, 2);
    vg_batch_t *b = decode(f, 0);
    assert_int_equal(batch_samples(b), 2);
    vg_envelope_batch_free(b);
    fx_free(f);
}

static void test_queue_full_limits_then_recovers(void **state)
{
    struct fixture *f = fx_new(1, 3600 * 1000);
    f->st.block = 1;
    vg_label_t l[] = {{"__name__", "up"}, {"job", "x"}};
    int accepted = 0;
    vg_err_t rc = VG_OK;
    for (int i = 0; i < 1000 && rc == VG_OK; i++) {
        rc = vg_batcher_add(f->b, l, 2, i, i);
        if (rc == VG_OK) accepted++;
    }
    assert_int_equal(rc, VG_ELIMIT);
    assert_true(accepted > 1 && accepted < 1000);
    assert_true(metric(f, "vigil_agent_samples_dropped_total", "reason=\"queue_full\"") == 1);
    double qlen =
        vg_metric_value(vg_metrics_gauge(f->m, "vigil_agent_ship_queue_length", "", NULL));
    assert_true(qlen > 0);
    pthread_mutex_lock(&f->st.mu);
    f->st.block = 0;
    pthread_mutex_unlock(&f->st.mu);
    assert_int_equal(vg_batcher_flush(f->b, NULL), VG_OK);
    size_t total = 0;
    for (int i = 0; i < f->st.nsent; i++) {
        vg_batch_t *b = decode(f, i);
        total += batch_samples(b);
        if (i) assert_true(f->st.seq[i] > f->st.seq[i - 1]);
        vg_envelope_batch_free(b);
    }
    assert_int_equal(total, (size_t)accepted);
    fx_free(f);
}

static void test_bad_args(void **state)
{
    vg_batcher_t *b = NULL;
    vg_error e = {0};
    vg_batcher_opts o = {0};
    assert_int_equal(vg_batcher_new(&o, NULL, NULL, &b, &e), VG_EINVAL);
    assert_null(b);
    vg_batcher_free(NULL);
    struct fixture *f = fx_new(0, 0); /* defaults */
    assert_int_equal(vg_batcher_add(f->b, NULL, 0, 0, 0), VG_EINVAL);
    fx_free(f);
}

/* ---- spool, breaker, replay ---- */

static const char SPOOL_RECORDS[] = "vigil_agent_spool_records";
static const char KIND[] = "kind=\"metrics\"";

static void test_spools_while_sink_down_then_replays_in_order(void **state)
{
    struct fixture *f = fx_alloc(1, 3600 * 1000); /* every sample is a batch */
    fx_spool(f);
    fx_start(f);
    set_block(f, 1);
    for (int i = 0; i < 10; i++) add(f, "up", "node", i, i);
    wait_gauge(f, SPOOL_RECORDS, KIND, 10); /* all of it on disk, nothing waits in memory */
    assert_true(metric(f, "vigil_agent_batches_spooled_total", NULL) == 10);
    assert_true(gauge(f, "vigil_agent_ship_queue_length", NULL) == 0);
    set_block(f, 0);
    assert_int_equal(vg_batcher_flush(f->b, NULL), VG_OK);
    assert_int_equal(f->st.nsent, 10);
    for (int i = 0; i < 10; i++) assert_int_equal(f->st.seq[i], (uint64_t)i + 1);
    assert_true(gauge(f, SPOOL_RECORDS, KIND) == 0);
    assert_true(metric(f, "vigil_agent_batches_replayed_total", NULL) == 10);
    assert_true(gauge(f, "vigil_agent_batch_seq", NULL) == 10);
    fx_free(f);
}

static void test_open_breaker_skips_the_sink(void **state)
{
    struct fixture *f = fx_alloc(1, 3600 * 1000);
    f->br = (vg_breaker_opts){.failures = 2, .open_ms = 3600 * 1000};
    fx_spool(f);
    fx_start(f);
    set_block(f, 1);
    add(f, "up", "node", 1, 1);
    wait_gauge(f, "vigil_agent_sink_breaker_state", "sink=\"stub\"", 1);
    assert_int_equal(f->st.attempts, 2);
    for (int i = 2; i <= 6; i++) add(f, "up", "node", i, i);
    wait_gauge(f, SPOOL_RECORDS, KIND, 6);
    assert_int_equal(f->st.attempts, 2); /* straight to the spool while open */
    vg_batcher_free(f->b);
    f->b = NULL;
    assert_true(metric(f, "vigil_agent_batches_dropped_total", "reason=\"shutdown\"") == 0);
    fx_spool(f); /* reopen: the batches survived the shutdown */
    assert_int_equal(vg_spool_records(f->spool), 6);
    fx_free(f);
}

static void prefill(struct fixture *f, int n)
{
    fx_spool(f);
    for (int i = 1; i <= n; i++) {
        vg_spool_rec r = {
            .seq = 100 + (uint64_t)i, .tenant = "team-a", .data = (const uint8_t *)"x", .len = 1};
        assert_int_equal(vg_spool_append(f->spool, &r, NULL), VG_OK);
    }
}

/* Three spooled batches (seq 101..103), and three live ones queued while the
 * first replay is held at the sink; returns the order the sink saw. */
static struct fixture *replay_with_live(int interleave)
{
    struct fixture *f = fx_alloc(1, 3600 * 1000);
    f->o.interleave = interleave;
    prefill(f, 3);
    set_hold(f, 1);
    fx_start(f);
    int64_t deadline = vg_clock_mono_ms() + 20000;
    while (!stub_holding(f) && vg_clock_mono_ms() < deadline) usleep(1000);
    assert_true(stub_holding(f));
    for (int i = 0; i < 3; i++) add(f, "up", "node", i, i);
    wait_gauge(f, "vigil_agent_ship_queue_length", NULL, 3);
    set_hold(f, 0);
    assert_int_equal(vg_batcher_flush(f->b, NULL), VG_OK);
    assert_int_equal(f->st.nsent, 6);
    return f;
}

static void test_replay_strict_order(void **state)
{
    struct fixture *f = replay_with_live(0);
    /* live seqs continue after the highest spooled seq */
    uint64_t want[] = {101, 102, 103, 104, 105, 106};
    for (int i = 0; i < 6; i++) assert_int_equal(f->st.seq[i], want[i]);
    fx_free(f);
}

static void test_replay_interleaves_with_live(void **state)
{
    struct fixture *f = replay_with_live(1);
    uint64_t want[] = {101, 104, 102, 105, 103, 106};
    for (int i = 0; i < 6; i++) assert_int_equal(f->st.seq[i], want[i]);
    fx_free(f);
}

static void test_rejected_spooled_batch_is_not_stuck(void **state)
{
    struct fixture *f = fx_alloc(1, 3600 * 1000);
    prefill(f, 2);
    f->st.fail_next = 1;
    f->st.fail_code = VG_EPROTO;
    fx_start(f);
    vg_batcher_flush(f->b, NULL); /* OK or EPROTO, depending on when the refusal came */
    wait_gauge(f, SPOOL_RECORDS, KIND, 0);
    assert_int_equal(f->st.nsent, 1);
    assert_int_equal(f->st.seq[0], 102);
    assert_true(metric(f, "vigil_agent_batches_replay_rejected_total", NULL) == 1);
    fx_free(f);
}

static void test_seq_survives_restart(void **state)
{
    struct fixture *f = fx_alloc(1, 3600 * 1000);
    f->o.seq_path = f->seq_path;
    fx_start(f);
    for (int i = 0; i < 3; i++) add(f, "up", "node", i, i);
    assert_int_equal(vg_batcher_flush(f->b, NULL), VG_OK);
    vg_batcher_free(f->b);
    fx_start(f);
    add(f, "up", "node", 9, 9);
    assert_int_equal(vg_batcher_flush(f->b, NULL), VG_OK);
    assert_int_equal(f->st.nsent, 4);
    assert_int_equal(f->st.seq[3], 4);
    fx_free(f);
}

static void test_cut_by_estimated_size(void **state)
{
    struct fixture *f = fx_alloc(0, 3600 * 1000);
    f->o.max_bytes = 4096;
    f->o.zstd_level = 1;
    fx_start(f);
    char job[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(job, sizeof(job), "job-%d", i);
        add(f, "some_metric_name", job, 1700000000000 + i, i);
    }
    assert_int_equal(vg_batcher_flush(f->b, NULL), VG_OK);
    assert_true(f->st.nsent > 10);
    size_t total = 0;
    for (int i = 0; i < f->st.nsent; i++) {
        vg_batch_t *b = decode(f, i);
        size_t packed = vigil__v1__batch__get_packed_size(b);
        total += batch_samples(b);
        /* the estimate tracks the real size: cut close to the limit */
        if (i < f->st.nsent - 1) assert_true(packed >= 4096 * 9 / 10 && packed <= 4096 * 5 / 4);
        vg_envelope_batch_free(b);
    }
    assert_int_equal(total, 2000);
    assert_true(metric(f, "vigil_agent_batch_bytes_total", "stage=\"uncompressed\"") >
                metric(f, "vigil_agent_batch_bytes_total", "stage=\"compressed\""));
    fx_free(f);
}

int main(void)
{
    vg_log_set_level(VG_LOG_ERROR); /* failures are provoked on purpose */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups_by_series),
        cmocka_unit_test(test_many_series_grow_map),
        cmocka_unit_test(test_add_encoded_same_as_add),
        cmocka_unit_test(test_add_encoded_mixed),
        cmocka_unit_test(test_seq_increases),
        cmocka_unit_test(test_max_samples_cut),
        cmocka_unit_test(test_retry_keeps_order),
        cmocka_unit_test(test_rejected_batch_dropped),
        cmocka_unit_test(test_flush_on_free),
        cmocka_unit_test(test_commit_cuts_half_full),
        cmocka_unit_test(test_queue_full_limits_then_recovers),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_spools_while_sink_down_then_replays_in_order),
        cmocka_unit_test(test_open_breaker_skips_the_sink),
        cmocka_unit_test(test_replay_strict_order),
        cmocka_unit_test(test_replay_interleaves_with_live),
        cmocka_unit_test(test_rejected_spooled_batch_is_not_stuck),
        cmocka_unit_test(test_seq_survives_restart),
        cmocka_unit_test(test_cut_by_estimated_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
