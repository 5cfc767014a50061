/*
 * batcher.c - group samples into Batch envelopes; ship them, spool what cannot go.
 *
 * Shape, and why:
 *  - Producers call vg_batcher_add under one mutex. Samples are grouped by
 *    series as they arrive (open-addressing map from the series hash to the
 *    TimeSeries being built) so a scrape of N series with one sample each
 *    and repeated scrapes of the same series both encode compactly. Every
 *    label copy, TimeSeries and Sample comes from an arena that is reset
 *    when the batch is cut, so building a batch costs bump allocations and
 *    no per-field frees. The protobuf size is estimated while adding (label
 *    and sample sizes plus field overhead), so the cut by size needs no
 *    trial encode.
 *  - The scrape path hands over a whole scrape already encoded as
 *    MetricBatch TimeSeries fields (vg_batcher_add_encoded, or written in
 *    place between vg_batcher_encode_begin and _end, which hold the lock
 *    and hand out the batch buffer itself): appended to one
 *    byte buffer under one lock, no grouping (each target is scraped once
 *    per batch window, so grouping merged almost nothing and cost a hash and
 *    a label copy per sample).
 *  - A batch is cut at max_bytes (estimate), max_samples, after
 *    max_delay_ms, on flush and on free; an encoded scrape is never split.
 *    Cutting packs the grouped series after the encoded bytes, writes the
 *    Batch fields and the MetricBatch length by hand (no protobuf-c sizing
 *    pass over the whole batch) into room kept free in front of the body,
 *    and compresses header and body as one input with one reused zstd
 *    context (ZSTD_compress2: the frame declares its size, and zstd reads
 *    the input in place instead of copying it into a streaming window)
 *    (CPU, not I/O, so done under the lock), then pushes the bytes into a
 *    bounded in-memory queue.
 *  - One ship thread owns all I/O: the sink, the spool, the seq file. Each
 *    turn it picks one action: send the oldest spooled batch, send the
 *    oldest live batch, or move the oldest live batch to the spool. A live
 *    batch goes to the spool when the sink's breaker is open, when it is
 *    backing off after a failure, when its own send failed retryably, or
 *    (default, strict order) when older batches are still spooled. So the
 *    queue keeps moving during an outage and the producers never wait on
 *    the network.
 *  - A spooled batch is acknowledged (the spool cursor advances) only after
 *    the sink accepted it: at least once, duplicates removed by the store.
 *  - When the queue is full (the sink is stuck inside one long send), the
 *    batch being built keeps growing up to a hard cap, then samples are
 *    refused with VG_ELIMIT and counted (reason="queue_full"): never a spin,
 *    never a silent drop.
 *  - The highest seq that was delivered or spooled is written to seq_path
 *    at most once a second (and after a spool append, and at shutdown), and
 *    a restart continues after it (and after any seq still in the spool).
 *    Seqs of batches lost in memory by a crash, and of up to a second of
 *    batches sent before it, are reused: the collector counts those as
 *    duplicates (it stores the samples either way), and its gap detector
 *    sees a contiguous sequence whenever nothing handed over durably was
 *    lost. A reservation written ahead would avoid the reuse but leave a
 *    gap after every crash, which would read as loss.
 */
#include "batcher.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "sink.h"
#include "vigil/alloc.h"
#include "vigil/arena.h"
#include "vigil/clock.h"
#include "vigil/envelope.h"
#include "vigil/log.h"

#define QUEUE_CAP       64
#define HARD_CAP_FACTOR 4
#define BACKOFF_MIN_MS  100
#define BACKOFF_MAX_MS  30000
#define FREE_WAIT_MS    10000
#define FLUSH_WAIT_MS   60000
#define MAP_INITIAL     1024
#define IDLE_WAIT_MS    1000
#define SEQ_PERSIST_MS  1000 /* write the seq file at most this often */
#define SAMPLE_EST      20   /* Sample{double, int64} with tags and its length prefix */

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
    vg_metric_t *batches_cut, *bytes_raw, *bytes_zstd, *encode_us;
    vg_metric_t *batches_sent, *retries, *samples_sent, *queue_len, *seq;
    vg_metric_t *spooled, *replayed, *replay_rejected;
    vg_metric_t *drop_rejected, *drop_shutdown, *drop_encode;
    vg_metric_t *sdrop_full, *sdrop_rejected, *sdrop_shutdown, *sdrop_encode;
};

enum action { ACT_WAIT, ACT_SEND_SPOOL, ACT_SEND_LIVE, ACT_SPOOL_LIVE };

struct vg_batcher {
    pthread_mutex_t mu;
    pthread_cond_t wake; /* ship thread: new batch, time to cut, stop */
    pthread_cond_t done; /* flush/free waiters: a batch left the queue or the spool */
    pthread_t thread;
    int thread_started, closing, stop;
    struct vg_sink *sink;
    vg_spool_t *spool;
    int interleave;
    char *agent_id, *node, *tenant, *seq_path;
    int seq_fd; /* seq_path, opened at the first write and kept; -1 before */
    size_t max_samples, max_bytes;
    int64_t max_delay_ms;
    int level;
    unsigned rnd;

    /* the batch being built */
    vg_arena_t *arena;
    struct series **series;
    size_t nseries, cap_series;
    struct slot *map;
    size_t map_cap;
    size_t nsamples, est_bytes;
    size_t scrape_bytes; /* encoded bytes added since the last commit */
    size_t last_scrape;  /* encoded bytes of the last committed scrape */
    int64_t first_ms;    /* monotonic time of the batch's first sample */
    vg_buf enc;          /* MetricBatch body: encoded TimeSeries fields */
    vg_buf hdr;          /* Batch fields before the body, rebuilt at each cut */
    ZSTD_CCtx *zc;       /* reused for every cut */
    size_t room;         /* bytes kept free at the front of enc for the header */

    /* encoded batches waiting for the sink, oldest at head */
    struct item q[QUEUE_CAP];
    size_t qhead, qlen;
    uint64_t next_seq, handled_seq, persisted_seq, drops;
    int64_t seq_written_ms; /* monotonic time of the last seq file write */
    int seq_dirty_spool;    /* a batch was spooled: persist at the next chance */

    /* ship thread only (read by others under mu) */
    vg_breaker_t breaker;
    uint64_t spool_records; /* cached vg_spool_records, updated under mu */
    int turn_spool;         /* interleave: the spool's turn next */
    int64_t backoff_ms, next_try_ms, spool_backoff_ms, spool_retry_ms;

    struct batcher_metrics m;
};

/* Wait on cv until signalled or the monotonic deadline (ms). */
static void wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms)
{
    struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (deadline_ms % 1000) * 1000000};
    pthread_cond_timedwait(cv, mu, &ts);
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

/* Bytes a length-delimited field of n payload bytes takes (tag, length, payload). */
static size_t field_len(size_t n)
{
    return 1 + varint_len(n) + n;
}

/* ---- building a batch ---- */

static void batch_reset(struct vg_batcher *b)
{
    vg_arena_reset(b->arena);
    memset(b->map, 0, b->map_cap * sizeof(*b->map));
    b->series = NULL;
    b->nseries = b->cap_series = 0;
    b->nsamples = 0;
    b->est_bytes = 0;
    if (b->enc.cap > b->max_bytes * HARD_CAP_FACTOR * 2) vg_buf_free(&b->enc);
    vg_buf_reset(&b->enc);
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
    size_t est = 0;
    for (size_t i = 0; i < n; i++)
        est += field_len(field_len(strlen(l[i].name)) + field_len(strlen(l[i].value)));
    b->est_bytes += 4 + est; /* the TimeSeries' own tag and length */
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
    b->est_bytes += SAMPLE_EST - 8 + varint_len((uint64_t)ts);
    return VG_OK;
}

/* ---- cutting: encode the current batch into the queue ---- */

static void set_queue_gauge(struct vg_batcher *b)
{
    vg_metric_set(b->m.queue_len, (double)b->qlen);
}

/* ---- cutting: the Batch envelope written by hand around the series bytes ---- */

static void put_varint(vg_buf *o, uint64_t v)
{
    while (v >= 0x80) o->data[o->len++] = (char)(uint8_t)(v | 0x80), v >>= 7;
    o->data[o->len++] = (char)(uint8_t)v;
}

/* A length-delimited field; room reserved by the caller. */
static void put_bytes(vg_buf *o, uint8_t tag, const char *p, size_t n)
{
    if (!n) return; /* proto3: an empty string is not written */
    o->data[o->len++] = (char)tag;
    put_varint(o, n);
    memcpy(o->data + o->len, p, n);
    o->len += n;
}

/* Open b->enc with b->room bytes at the front, where the header goes at the
 * cut, so header and body are one contiguous input for ZSTD_compress2 (the
 * streaming API copied the whole body into its own window buffer). */
static vg_err_t enc_open(struct vg_batcher *b)
{
    if (b->enc.len >= b->room) return VG_OK;
    vg_err_t rc = vg_buf_reserve(&b->enc, b->room);
    if (!rc) b->enc.len = b->room;
    return rc;
}

/* Append the series grouped by vg_batcher_add to b->enc as MetricBatch
 * field 1, after the bytes vg_batcher_add_encoded put there. */
static vg_err_t pack_grouped(struct vg_batcher *b)
{
    for (size_t i = 0; i < b->nseries; i++) {
        const Prometheus__TimeSeries *ts = &b->series[i]->ts;
        size_t n = prometheus__time_series__get_packed_size(ts);
        if (vg_buf_reserve(&b->enc, 11 + n)) return VG_ENOMEM;
        b->enc.data[b->enc.len++] = 0x0a;
        put_varint(&b->enc, n);
        b->enc.len += prometheus__time_series__pack(ts, (uint8_t *)b->enc.data + b->enc.len);
    }
    return VG_OK;
}

/* Batch fields 1..5 and the tag and length of field 10 (metrics) into b->hdr. */
static vg_err_t write_header(struct vg_batcher *b, uint64_t seq)
{
    size_t a = strlen(b->agent_id), n = strlen(b->node), t = strlen(b->tenant);
    vg_buf_reset(&b->hdr);
    if (vg_buf_reserve(&b->hdr, a + n + t + 3 * 11 + 3 * 11)) return VG_ENOMEM;
    put_bytes(&b->hdr, 0x0a, b->agent_id, a);
    put_bytes(&b->hdr, 0x12, b->node, n);
    put_bytes(&b->hdr, 0x1a, b->tenant, t);
    if (seq) b->hdr.data[b->hdr.len++] = 0x20, put_varint(&b->hdr, seq);
    uint64_t created = (uint64_t)vg_clock_wall_ms();
    if (created) b->hdr.data[b->hdr.len++] = 0x28, put_varint(&b->hdr, created);
    b->hdr.data[b->hdr.len++] = 0x52;
    put_varint(&b->hdr, b->enc.len - b->room);
    return VG_OK;
}

/* Compress hdr + enc as one zstd frame that declares its content size: the
 * header is copied into the room in front of the body, and the whole input
 * goes to ZSTD_compress2 at once (which writes the content size). */
static vg_err_t compress_frame(struct vg_batcher *b, uint8_t **out, size_t *len, vg_error *err)
{
    if (b->hdr.len > b->room || b->enc.len < b->room)
        return vg_error_set(err, VG_EINTERNAL, "batcher: header larger than its room");
    char *src = b->enc.data + b->room - b->hdr.len;
    memcpy(src, b->hdr.data, b->hdr.len);
    size_t raw = b->hdr.len + b->enc.len - b->room, cap = ZSTD_compressBound(raw);
    uint8_t *dst = vg_malloc(cap ? cap : 1);
    if (!dst) return vg_error_set(err, VG_ENOMEM, "batcher: out of memory compressing batch");
    size_t z = ZSTD_compress2(b->zc, dst, cap, src, raw);
    if (ZSTD_isError(z)) {
        vg_free(dst);
        return vg_error_set(err, VG_EINTERNAL, "batcher: zstd: %s", ZSTD_getErrorName(z));
    }
    *out = dst;
    *len = z;
    return VG_OK;
}

static vg_err_t encode_current(struct vg_batcher *b, uint64_t seq, uint8_t **out, size_t *len,
                               vg_error *err)
{
    int64_t t0 = vg_clock_mono_us();
    if (enc_open(b) || pack_grouped(b) || write_header(b, seq))
        return vg_error_set(err, VG_ENOMEM, "batcher: out of memory encoding batch");
    vg_err_t rc = compress_frame(b, out, len, err);
    if (rc) return rc;
    vg_metric_inc(b->m.batches_cut);
    vg_metric_add(b->m.bytes_raw, (double)(b->hdr.len + b->enc.len - b->room));
    vg_metric_add(b->m.bytes_zstd, (double)*len);
    vg_metric_add(b->m.encode_us, (double)(vg_clock_mono_us() - t0) / 1e6);
    return VG_OK;
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

static int batch_full(const struct vg_batcher *b)
{
    return b->est_bytes >= b->max_bytes || (b->max_samples && b->nsamples >= b->max_samples);
}

static int over_hard_cap(const struct vg_batcher *b)
{
    return b->est_bytes >= b->max_bytes * HARD_CAP_FACTOR ||
           (b->max_samples && b->nsamples >= b->max_samples * HARD_CAP_FACTOR);
}

/* ---- the seq file: the highest seq delivered or spooled ---- */

static uint64_t seq_load(const char *path)
{
    char buf[32];
    size_t n = 0;
    if (!path || vg_spool_read_file(path, buf, sizeof(buf) - 1, &n, NULL)) return 0;
    buf[n] = '\0';
    return strtoull(buf, NULL, 10);
}

/* Ship thread, with mu held: seq was delivered or spooled. */
static void seq_handled(struct vg_batcher *b, uint64_t seq)
{
    if (seq <= b->handled_seq) return;
    b->handled_seq = seq;
    vg_metric_set(b->m.seq, (double)seq);
}

/* Write seq over the start of seq_path, through a descriptor kept open: a
 * fixed-width record ("%020" PRIu64 "\n", which seq_load reads like any
 * number) always covers what was there, so one pwrite replaces the value
 * without the create, write and rename of a temporary file each second. One
 * small write at offset 0 is never half applied by a process crash. */
static vg_err_t seq_write(struct vg_batcher *b, uint64_t seq, vg_error *err)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%020" PRIu64 "\n", seq);
    if (b->seq_fd < 0) b->seq_fd = open(b->seq_path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (b->seq_fd < 0)
        return vg_error_set(err, VG_EIO, "cannot open %s: %s; check agent.data_dir permissions",
                            b->seq_path, strerror(errno));
    ssize_t w = pwrite(b->seq_fd, buf, (size_t)n, 0);
    if (w == n) return VG_OK;
    return vg_error_set(err, VG_EIO, "cannot write %s: %s; check the disk", b->seq_path,
                        w < 0 ? strerror(errno) : "short write");
}

/* Ship thread, with mu held: write the handled seq to seq_path when it moved
 * and force is set or SEQ_PERSIST_MS passed since the last write (mu is
 * released for the I/O). Not fsync'ed. Between writes, and after a power
 * cut, the file may be behind the seqs sent: a crash then reuses up to a
 * second of seqs, which the collector counts as duplicates while storing
 * their samples normally (a reservation ahead would instead leave a gap
 * after every crash, which the collector reports as loss). */
static void seq_persist(struct vg_batcher *b, int force)
{
    vg_error e = {0};
    uint64_t seq = b->handled_seq;
    int64_t now = vg_clock_mono_ms();
    if (!b->seq_path || seq == b->persisted_seq) return;
    if (!force && !b->seq_dirty_spool && now - b->seq_written_ms < SEQ_PERSIST_MS) return;
    b->seq_written_ms = now;
    b->seq_dirty_spool = 0;
    pthread_mutex_unlock(&b->mu);
    vg_err_t rc = seq_write(b, seq, &e);
    pthread_mutex_lock(&b->mu);
    if (rc == VG_OK)
        b->persisted_seq = seq;
    else
        vg_log_warn("ship", "cannot persist batch seq", "err=%s", e.msg);
}

/* ---- the ship thread ---- */

static int retry_worthy(vg_err_t rc)
{
    return vg_err_retryable(rc) || rc == VG_EIO || rc == VG_ENOMEM;
}

static void pop_head(struct vg_batcher *b)
{
    struct item *it = &b->q[b->qhead];
    vg_free(it->data);
    memset(it, 0, sizeof(*it));
    b->qhead = (b->qhead + 1) % QUEUE_CAP;
    b->qlen--;
    set_queue_gauge(b);
    pthread_cond_broadcast(&b->done);
}

static int64_t next_backoff(struct vg_batcher *b, int64_t *backoff)
{
    *backoff = *backoff ? *backoff * 2 : BACKOFF_MIN_MS;
    if (*backoff > BACKOFF_MAX_MS) *backoff = BACKOFF_MAX_MS;
    int64_t half = *backoff / 2;
    /* half of it random, so a fleet of agents does not retry in step */
    return half + (int64_t)(rand_r(&b->rnd) % (unsigned)(half + 1));
}

/* A sink attempt failed retryably: count it, back off, tell the breaker. */
static void send_failed(struct vg_batcher *b, uint64_t seq, vg_err_t rc, const vg_error *e)
{
    int64_t now = vg_clock_mono_ms(), delay = next_backoff(b, &b->backoff_ms);
    b->next_try_ms = now + delay;
    vg_breaker_failure(&b->breaker, now);
    vg_metric_inc(b->m.retries);
    char q[600];
    vg_log_warn("ship", "send failed; will retry", "seq=%" PRIu64 " retry_in_ms=%" PRId64 " err=%s",
                seq, delay, vg_logq(q, sizeof(q), vg_error_msg(e, rc)));
}

static void send_ok(struct vg_batcher *b)
{
    vg_breaker_success(&b->breaker, vg_clock_mono_ms());
    b->backoff_ms = 0;
    b->next_try_ms = 0;
}

static void count_rejected(struct vg_batcher *b, uint64_t seq, size_t nsamples, vg_err_t rc,
                           const vg_error *e)
{
    char q[600];
    vg_log_error("ship", "sink refused batch; dropping it", "seq=%" PRIu64 " samples=%zu err=%s",
                 seq, nsamples, vg_logq(q, sizeof(q), vg_error_msg(e, rc)));
    vg_metric_inc(b->m.drop_rejected);
    if (nsamples) vg_metric_add(b->m.sdrop_rejected, (double)nsamples);
    b->drops++;
    send_ok(b); /* the peer answered: it is up */
}

/* Move the head of the live queue into the spool (mu released for the I/O). */
static void spool_head(struct vg_batcher *b)
{
    struct item it = b->q[b->qhead];
    vg_spool_rec r = {.kind = VG_SINK_METRICS,
                      .seq = it.seq,
                      .tenant = b->tenant,
                      .data = it.data,
                      .len = it.len};
    vg_error e = {0};
    pthread_mutex_unlock(&b->mu);
    vg_err_t rc = vg_spool_append(b->spool, &r, &e);
    pthread_mutex_lock(&b->mu);
    b->spool_records = vg_spool_records(b->spool);
    if (rc == VG_OK) {
        vg_metric_inc(b->m.spooled);
        b->spool_backoff_ms = 0;
        seq_handled(b, it.seq);
        b->seq_dirty_spool = 1;
        pop_head(b);
        return;
    }
    int64_t delay = next_backoff(b, &b->spool_backoff_ms);
    b->spool_retry_ms = vg_clock_mono_ms() + delay;
    vg_log_error("ship", "cannot spool batch; keeping it in memory",
                 "seq=%" PRIu64 " retry_in_ms=%" PRId64 " err=%s", it.seq, delay,
                 vg_error_msg(&e, rc));
}

/* Send the head of the live queue (mu released around the I/O). */
static void send_head(struct vg_batcher *b)
{
    struct item it = b->q[b->qhead];
    vg_sink_msg msg = {.kind = VG_SINK_METRICS,
                       .tenant = b->tenant,
                       .data = it.data,
                       .len = it.len,
                       .seq = it.seq};
    vg_error e = {0};
    vg_breaker_allow(&b->breaker, vg_clock_mono_ms());
    pthread_mutex_unlock(&b->mu);
    vg_err_t rc = vg_sink_send(b->sink, &msg, &e);
    pthread_mutex_lock(&b->mu);
    b->turn_spool = 1;
    if (rc == VG_OK) {
        send_ok(b);
        vg_metric_inc(b->m.batches_sent);
        vg_metric_add(b->m.samples_sent, (double)it.nsamples);
        seq_handled(b, it.seq);
        pop_head(b);
    } else if (retry_worthy(rc)) {
        send_failed(b, it.seq, rc, &e);
        if (b->spool) spool_head(b); /* do not hold the queue up */
    } else {
        count_rejected(b, it.seq, it.nsamples, rc, &e);
        seq_handled(b, it.seq);
        pop_head(b);
    }
}

/* The spool itself failed (I/O, memory): not the sink's fault, so the breaker
 * is left alone, but replay pauses with its own backoff. */
static void spool_read_failed(struct vg_batcher *b, vg_err_t rc, const vg_error *e)
{
    int64_t delay = next_backoff(b, &b->spool_backoff_ms);
    b->next_try_ms = vg_clock_mono_ms() + delay;
    vg_log_error("ship", "cannot read the spool", "retry_in_ms=%" PRId64 " err=%s", delay,
                 vg_error_msg(e, rc));
}

/* Send the oldest spooled batch; acknowledge it only once the sink has it. */
static void send_spooled(struct vg_batcher *b)
{
    vg_spool_rec r;
    vg_error e = {0};
    int64_t now = vg_clock_mono_ms();
    pthread_mutex_unlock(&b->mu);
    vg_err_t prc = vg_spool_peek(b->spool, &r, &e), rc = prc;
    if (prc == VG_OK) {
        vg_breaker_allow(&b->breaker, now);
        vg_sink_msg msg = {.kind = (vg_sink_kind)r.kind,
                           .tenant = r.tenant,
                           .data = r.data,
                           .len = r.len,
                           .seq = r.seq};
        rc = vg_sink_send(b->sink, &msg, &e);
        vg_error ae = {0};
        if ((rc == VG_OK || !retry_worthy(rc)) && vg_spool_ack(b->spool, r.id, &ae))
            vg_log_warn("ship", "cannot persist spool cursor", "err=%s", ae.msg);
    }
    pthread_mutex_lock(&b->mu);
    b->turn_spool = 0;
    b->spool_records = vg_spool_records(b->spool);
    if (prc != VG_OK) {
        if (prc != VG_EAGAIN) spool_read_failed(b, prc, &e);
    } else if (rc == VG_OK) {
        send_ok(b);
        vg_metric_inc(b->m.replayed);
        vg_metric_inc(b->m.batches_sent);
    } else if (retry_worthy(rc)) {
        send_failed(b, r.seq, rc, &e);
    } else {
        vg_metric_inc(b->m.replay_rejected);
        count_rejected(b, r.seq, 0, rc, &e);
    }
    pthread_cond_broadcast(&b->done);
}

static enum action next_action(struct vg_batcher *b, int64_t now)
{
    int can_send = now >= b->next_try_ms && vg_breaker_ready(&b->breaker, now);
    int spooled = b->spool && b->spool_records > 0 && !b->closing;
    if (spooled && can_send && (!b->qlen || !b->interleave || b->turn_spool)) return ACT_SEND_SPOOL;
    if (!b->qlen) return ACT_WAIT;
    if (!b->spool) return can_send ? ACT_SEND_LIVE : ACT_WAIT;
    int behind_spool = b->spool_records > 0 && !b->interleave;
    if (can_send && !behind_spool) return ACT_SEND_LIVE;
    return now >= b->spool_retry_ms ? ACT_SPOOL_LIVE : ACT_WAIT;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t next_wake(struct vg_batcher *b, int64_t now)
{
    int64_t t = now + IDLE_WAIT_MS;
    int work = b->qlen || (b->spool && b->spool_records);
    if (work && b->next_try_ms > now) t = min64(t, b->next_try_ms);
    if (work && vg_breaker_state_at(&b->breaker, now) == VG_BREAKER_OPEN)
        t = min64(t, vg_breaker_reopen_at(&b->breaker));
    if (b->qlen && b->spool && b->spool_retry_ms > now) t = min64(t, b->spool_retry_ms);
    if (b->seq_path && b->handled_seq != b->persisted_seq)
        t = min64(t, b->seq_written_ms + SEQ_PERSIST_MS);
    /* A due batch that cannot be cut (queue full) waits for the queue instead. */
    if (b->nsamples && b->qlen < QUEUE_CAP) t = min64(t, b->first_ms + b->max_delay_ms);
    return t;
}

static void spool_tick(struct vg_batcher *b, int64_t now)
{
    vg_error e = {0};
    if (b->spool && vg_spool_tick(b->spool, now, &e))
        vg_log_warn("ship", "spool sync failed", "err=%s", e.msg);
}

static void *ship_main(void *arg)
{
    struct vg_batcher *b = arg;
    pthread_mutex_lock(&b->mu);
    while (!b->stop) {
        int64_t now = vg_clock_mono_ms();
        int due = b->nsamples && (b->closing || now - b->first_ms >= b->max_delay_ms);
        if (due) cut_locked(b, NULL);
        spool_tick(b, now);
        enum action a = next_action(b, now);
        if (a == ACT_SEND_SPOOL)
            send_spooled(b);
        else if (a == ACT_SEND_LIVE)
            send_head(b);
        else if (a == ACT_SPOOL_LIVE)
            spool_head(b);
        seq_persist(b, 0);
        if (a != ACT_WAIT) continue;
        int64_t wake = next_wake(b, now);
        if (wake > now) wait_until(&b->wake, &b->mu, wake);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* ---- public API ---- */

const vg_breaker_names vg_batcher_breaker_names = {
    .gauge = "vigil_agent_sink_breaker_state",
    .opens = "vigil_agent_sink_breaker_opens_total",
    .label = "sink",
    .log = "ship",
};

static void register_metrics(struct batcher_metrics *m, vg_metrics_t *r)
{
    static const char bd[] = "Batches the agent gave up on, by reason.";
    static const char sd[] = "Samples the agent dropped, by reason.";
    static const char by[] = "Bytes of batches cut, before and after zstd.";
    if (!r) return;
#define C(f, n, h, l) m->f = vg_metrics_counter(r, n, h, l)
    C(batches_cut, "vigil_agent_batches_cut_total", "Batches cut and encoded.", NULL);
    C(bytes_raw, "vigil_agent_batch_bytes_total", by, "stage=\"uncompressed\"");
    C(bytes_zstd, "vigil_agent_batch_bytes_total", by, "stage=\"compressed\"");
    C(encode_us, "vigil_agent_batch_encode_seconds_total", "Time spent encoding batches.", NULL);
    C(batches_sent, "vigil_agent_batches_sent_total", "Batches accepted by the sink.", NULL);
    C(retries, "vigil_agent_batch_send_retries_total",
      "Batch sends that failed transiently and were retried.", NULL);
    C(samples_sent, "vigil_agent_samples_sent_total",
      "Samples in live batches accepted by the sink.", NULL);
    C(spooled, "vigil_agent_batches_spooled_total", "Batches written to the disk spool.", NULL);
    C(replayed, "vigil_agent_batches_replayed_total",
      "Spooled batches delivered to the sink and removed from the spool.", NULL);
    C(replay_rejected, "vigil_agent_batches_replay_rejected_total",
      "Spooled batches the sink refused for good.", NULL);
    C(drop_rejected, "vigil_agent_batches_dropped_total", bd, "reason=\"rejected\"");
    C(drop_shutdown, "vigil_agent_batches_dropped_total", bd, "reason=\"shutdown\"");
    C(drop_encode, "vigil_agent_batches_dropped_total", bd, "reason=\"encode\"");
    C(sdrop_full, "vigil_agent_samples_dropped_total", sd, "reason=\"queue_full\"");
    C(sdrop_rejected, "vigil_agent_samples_dropped_total", sd, "reason=\"rejected\"");
    C(sdrop_shutdown, "vigil_agent_samples_dropped_total", sd, "reason=\"shutdown\"");
    C(sdrop_encode, "vigil_agent_samples_dropped_total", sd, "reason=\"encode\"");
#undef C
    m->queue_len = vg_metrics_gauge(r, "vigil_agent_ship_queue_length",
                                    "Encoded batches waiting in memory for the sink.", NULL);
    m->seq = vg_metrics_gauge(r, "vigil_agent_batch_seq",
                              "Highest batch seq delivered to the sink or spooled.", NULL);
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

/* Continue the sequence after the seq file and after anything still spooled. */
static void init_seq(struct vg_batcher *b)
{
    vg_spool_stats st;
    vg_spool_get_stats(b->spool, &st);
    uint64_t last = seq_load(b->seq_path);
    if (st.max_seq > last) last = st.max_seq;
    b->handled_seq = b->persisted_seq = last;
    b->next_seq = last + 1;
    b->spool_records = vg_spool_records(b->spool);
    vg_metric_set(b->m.seq, (double)last);
}

static vg_err_t init_fields(struct vg_batcher *b, const vg_batcher_opts *o)
{
    b->agent_id = vg_strdup(o->agent_id ? o->agent_id : "");
    b->node = vg_strdup(o->node ? o->node : "");
    b->tenant = vg_strdup(o->tenant && *o->tenant ? o->tenant : "default");
    b->seq_path = o->seq_path ? vg_strdup(o->seq_path) : NULL;
    b->max_samples = o->max_samples;
    b->max_bytes = o->max_bytes ? o->max_bytes : VG_BATCHER_DEFAULT_MAX_BYTES;
    b->max_delay_ms = o->max_delay_ms > 0 ? o->max_delay_ms : 1000;
    b->level = o->zstd_level ? o->zstd_level : VG_BATCHER_DEFAULT_ZSTD_LEVEL;
    b->room = strlen(b->agent_id ? b->agent_id : "") + strlen(b->node ? b->node : "") +
              strlen(b->tenant ? b->tenant : "") + 3 * 11 + 3 * 11;
    b->spool = o->spool;
    b->interleave = o->interleave;
    b->rnd = (unsigned)vg_clock_wall_ms() ^ (unsigned)(uintptr_t)b;
    b->arena = vg_arena_new(64 * 1024);
    b->map_cap = MAP_INITIAL;
    b->map = vg_calloc(b->map_cap, sizeof(*b->map));
    vg_buf_init(&b->enc, 0);
    vg_buf_init(&b->hdr, 0);
    b->zc = ZSTD_createCCtx();
    if (!b->zc || ZSTD_isError(ZSTD_CCtx_setParameter(b->zc, ZSTD_c_compressionLevel, b->level)))
        return VG_ENOMEM;
    if (!b->agent_id || !b->node || !b->tenant || !b->arena || !b->map ||
        (o->seq_path && !b->seq_path))
        return VG_ENOMEM;
    init_seq(b);
    return VG_OK;
}

static void destroy(struct vg_batcher *b)
{
    for (size_t i = 0; i < b->qlen; i++) vg_free(b->q[(b->qhead + i) % QUEUE_CAP].data);
    vg_arena_free(b->arena);
    vg_free(b->map);
    vg_buf_free(&b->enc);
    vg_buf_free(&b->hdr);
    ZSTD_freeCCtx(b->zc);
    vg_free(b->agent_id);
    vg_free(b->node);
    vg_free(b->tenant);
    vg_free(b->seq_path);
    if (b->seq_fd >= 0) close(b->seq_fd);
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
    b->seq_fd = -1;
    b->sink = sink;
    register_metrics(&b->m, metrics);
    vg_breaker_init(&b->breaker, opts->breaker, &vg_batcher_breaker_names,
                    sink->ops && sink->ops->name ? sink->ops->name : "sink", metrics);
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
    if (over_hard_cap(b) && cut_locked(b, NULL) == VG_ELIMIT) {
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
    if (batch_full(b)) cut_locked(b, NULL);
out:
    pthread_mutex_unlock(&b->mu);
    return rc;
}

/* A scrape's len encoded bytes, nsamples samples, are in b->enc: count them
 * and cut when full (under the lock). */
static void took_encoded(struct vg_batcher *b, size_t len, size_t nsamples)
{
    b->est_bytes += len;
    b->scrape_bytes += len;
    if (b->nsamples == 0) {
        b->first_ms = vg_clock_mono_ms();
        pthread_cond_signal(&b->wake);
    }
    b->nsamples += nsamples ? nsamples : 1; /* never an empty-looking batch with bytes */
    if (batch_full(b)) cut_locked(b, NULL);
}

vg_buf *vg_batcher_encode_begin(vg_batcher_t *b)
{
    if (!b) return NULL;
    pthread_mutex_lock(&b->mu);
    if (b->closing || (over_hard_cap(b) && cut_locked(b, NULL) == VG_ELIMIT) || enc_open(b)) {
        pthread_mutex_unlock(&b->mu); /* refused: the caller adds the scrape the usual way */
        return NULL;
    }
    return &b->enc;
}

void vg_batcher_encode_end(vg_batcher_t *b, size_t len, size_t nsamples)
{
    if (len) took_encoded(b, len, nsamples);
    pthread_mutex_unlock(&b->mu);
}

vg_err_t vg_batcher_add_encoded(vg_batcher_t *b, const void *ts, size_t len, size_t nsamples)
{
    vg_err_t rc = VG_OK;
    if (!b || (!ts && len)) return VG_EINVAL;
    if (!len) return VG_OK;
    pthread_mutex_lock(&b->mu);
    if (b->closing) {
        rc = VG_ECLOSED;
        goto out;
    }
    if (over_hard_cap(b) && cut_locked(b, NULL) == VG_ELIMIT) {
        vg_metric_add(b->m.sdrop_full, (double)nsamples);
        rc = VG_ELIMIT;
        goto out;
    }
    if ((rc = enc_open(b)) || (rc = vg_buf_append(&b->enc, ts, len))) goto out;
    took_encoded(b, len, nsamples);
out:
    pthread_mutex_unlock(&b->mu);
    return rc;
}

/* At a scrape boundary, is the batch worth cutting now? An encoded scrape
 * is never split, so the batch is cut only when another scrape of the size
 * of the last one would take it over max_bytes: batches come out close to
 * max_bytes (fewer requests, and zstd finds more in a larger input) instead
 * of half full. Sample by sample, a half-full batch is cut rather than
 * splitting the next scrape across two batches. */
static int commit_cuts(struct vg_batcher *b)
{
    if (b->scrape_bytes) b->last_scrape = b->scrape_bytes;
    int encoded = b->scrape_bytes > 0;
    b->scrape_bytes = 0;
    if (b->max_samples && b->nsamples >= b->max_samples / 2) return 1;
    if (encoded) return b->est_bytes + b->last_scrape > b->max_bytes;
    return b->est_bytes >= b->max_bytes / 2;
}

void vg_batcher_commit(vg_batcher_t *b)
{
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    if (commit_cuts(b)) cut_locked(b, NULL);
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

static int all_delivered(const struct vg_batcher *b)
{
    return b->qlen == 0 && b->nsamples == 0 && b->spool_records == 0;
}

vg_err_t vg_batcher_flush(vg_batcher_t *b, vg_error *err)
{
    if (!b) return VG_EINVAL;
    int64_t deadline = vg_clock_mono_ms() + FLUSH_WAIT_MS;
    pthread_mutex_lock(&b->mu);
    uint64_t drops = b->drops;
    vg_err_t rc = cut_waiting(b, deadline, err);
    pthread_cond_signal(&b->wake);
    while (!rc && !all_delivered(b) && vg_clock_mono_ms() < deadline && !b->stop)
        wait_until(&b->done, &b->mu, deadline);
    if (!rc && !all_delivered(b))
        rc = vg_error_set(err, VG_ERETRY, "batcher: sink has not accepted pending batches yet");
    else if (!rc && b->drops > drops)
        rc = vg_error_set(err, VG_EPROTO, "batcher: the sink refused some pending batches");
    pthread_mutex_unlock(&b->mu);
    return rc;
}

/* After the ship thread stopped: spool what is still in memory, or count it lost. */
static void save_leftovers(struct vg_batcher *b)
{
    size_t batches = 0, samples = b->nsamples;
    if (b->nsamples && b->spool) cut_locked(b, NULL);
    while (b->qlen && b->spool) {
        size_t before = b->qlen;
        b->spool_retry_ms = 0;
        spool_head(b);
        if (b->qlen == before) break; /* the spool refused it */
    }
    for (size_t i = 0; i < b->qlen; i++) samples += b->q[(b->qhead + i) % QUEUE_CAP].nsamples;
    batches = b->qlen + (b->nsamples ? 1 : 0);
    seq_persist(b, 1);
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
    pthread_mutex_lock(&b->mu);
    save_leftovers(b);
    pthread_mutex_unlock(&b->mu);
    destroy(b);
}
