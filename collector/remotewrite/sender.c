/*
 * sender.c - remote_write queues: WAL reader -> WriteRequest -> HTTP POST.
 *
 * One thread per remote reads up to max_samples_per_send samples from its
 * walwatch (waiting at most batch_send_deadline for a batch to fill), sorts
 * them by tenant and series (stable, so each series keeps its order), sends
 * one snappy WriteRequest per tenant and retries it with exponential backoff
 * until the remote answers 2xx, or a 4xx other than 429 says a retry will
 * never help. Only then is the cursor advanced and written (tmp + rename),
 * so a crash or a long outage resends, never skips. A batch is split over a
 * fixed number of shards (min(max_shards, 4) connections, sending in
 * parallel) by series hash, so each series keeps its order.
 */
#include "remotewrite/sender.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <snappy-c.h>

#include "metadata/mdstore.h"
#include "remotewrite/walwatch.h"
#include "tsdb/wal.h"
#include "vigil/alloc.h"
#include "vigil/clock.h"
#include "vigil/log.h"

#define COMP       "remote_write"
#define POLL_MS    100
#define MAX_SHARDS 4

struct queue;

/* One sending connection. A batch is split by series hash, so a series always
 * goes through the same shard and keeps its order. */
typedef struct shard {
    struct queue *q;
    CURL *curl;
    vg_buf body;
    const vg_rws_sample *work; /* this batch's share, grouped by tenant then series */
    const char *const *tenant; /* tenant of each work sample */
    size_t n;
    int stopped;  /* the sender stopped before all of work went out */
    int64_t maxt; /* newest timestamp the remote accepted */
    pthread_t thread;
} shard;

typedef struct queue {
    vg_rw_sender_t *owner;
    const vg_rws_config *cfg;
    char name[128];
    char cursor_path[4200];
    char wal_dir[4096];
    vg_relabel_t *relabel;
    vg_walwatch_t *ww;
    vg_wal_hold_t *hold; /* keeps the WAL from the cursor's segment; NULL = none */
    vg_ww_sample *batch;
    size_t nbatch;
    vg_ww_cursor batch_end;      /* cursor after the batch */
    char *secret;                /* password or credentials read from a file */
    char *sni_url, *host_header; /* tls_config.server_name: vg_rws_sni_url */
    struct curl_slist *connect_to;
    shard shards[MAX_SHARDS];
    size_t nshards; /* min(max_shards, MAX_SHARDS) */
    pthread_t thread;
    int started;
    vg_metric_t *m_sent, *m_failed, *m_retried, *m_dropped, *m_truncated, *m_pending, *m_highest;
    int64_t next_meta_ms;                     /* monotonic: next metadata send */
    vg_metric_t *m_meta_sent, *m_meta_failed; /* metadata entries */
} queue;

struct vg_rw_sender {
    queue *q;
    size_t n;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    struct vg_mdstore *md; /* metadata to send; set once, read with __atomic_load_n */
};

/* ---- encoding ---- */

static vg_err_t pack(Prometheus__WriteRequest *wr, vg_buf *out, vg_error *err)
{
    size_t raw_len = prometheus__write_request__get_packed_size(wr);
    uint8_t *raw = vg_malloc(raw_len ? raw_len : 1);
    size_t clen = snappy_max_compressed_length(raw_len);
    vg_err_t rc = VG_OK;
    vg_buf_reset(out);
    if (!raw || vg_buf_reserve(out, clen + 1)) {
        rc = vg_error_set(err, VG_ENOMEM, "remote_write: out of memory encoding a request");
        goto out;
    }
    prometheus__write_request__pack(wr, raw);
    if (snappy_compress((const char *)raw, raw_len, out->data, &clen) != SNAPPY_OK) {
        rc = vg_error_set(err, VG_ENOMEM, "remote_write: snappy failed");
        goto out;
    }
    out->len = clen;
out:
    vg_free(raw);
    return rc;
}

/* Build the message in an arena: one TimeSeries per run of equal labels. */
vg_err_t vg_rws_encode(const vg_rws_sample *s, size_t n, vg_buf *out, vg_error *err)
{
    vg_arena_t *a = vg_arena_new(0);
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    size_t nts = 0;
    for (size_t i = 0; i < n; i++) nts += !i || s[i].labels != s[i - 1].labels;
    Prometheus__TimeSeries **ts = a ? vg_arena_calloc(a, (nts + 1) * sizeof *ts) : NULL;
    Prometheus__Sample **sp = a ? vg_arena_calloc(a, (n + 1) * sizeof *sp) : NULL;
    if (!ts || !sp) goto oom;
    for (size_t i = 0, t = 0; i < n; i++) {
        if (!i || s[i].labels != s[i - 1].labels) {
            Prometheus__TimeSeries *x = vg_arena_alloc(a, sizeof *x);
            Prometheus__Label **l = vg_arena_calloc(a, (s[i].nlabels + 1) * sizeof *l);
            if (!x || !l) goto oom;
            prometheus__time_series__init(x);
            for (size_t k = 0; k < s[i].nlabels; k++) {
                if (!(l[k] = vg_arena_alloc(a, sizeof **l))) goto oom;
                prometheus__label__init(l[k]);
                l[k]->name = (char *)s[i].labels[k].name;
                l[k]->value = (char *)s[i].labels[k].value;
            }
            x->labels = l;
            x->n_labels = s[i].nlabels;
            x->samples = sp + i;
            ts[t++] = x;
        }
        if (!(sp[i] = vg_arena_alloc(a, sizeof **sp))) goto oom;
        prometheus__sample__init(sp[i]);
        sp[i]->timestamp = s[i].ts;
        sp[i]->value = s[i].v;
        ts[t - 1]->n_samples++;
    }
    wr.timeseries = ts;
    wr.n_timeseries = nts;
    vg_err_t rc = pack(&wr, out, err);
    vg_arena_free(a);
    return rc;
oom:
    vg_arena_free(a);
    return vg_error_set(err, VG_ENOMEM, "remote_write: out of memory encoding a request");
}

int64_t vg_rws_backoff_ms(int64_t min_ms, int64_t max_ms, unsigned attempt)
{
    int64_t d = min_ms;
    for (unsigned i = 0; i < attempt && d < max_ms; i++) d *= 2;
    return d < max_ms ? d : max_ms;
}

static char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? vg_malloc((size_t)n + 1) : NULL;
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

vg_err_t vg_rws_sni_url(const char *url, const char *sn, char **url_out, char **connect_to,
                        char **host)
{
    const char *auth = strstr(url, "://");
    *url_out = *connect_to = *host = NULL;
    if (!auth) return VG_EINVAL;
    auth += 3;
    size_t alen = strcspn(auth, "/?#");
    const char *close = auth[0] == '[' ? memchr(auth, ']', alen) : NULL;
    const char *from = close ? close : auth;
    const char *colon = memchr(from, ':', alen - (size_t)(from - auth));
    size_t hlen = colon ? (size_t)(colon - auth) : alen;
    int https = strncmp(url, "https", 5) == 0;
    char port[16];
    if (colon)
        snprintf(port, sizeof port, "%.*s", (int)(alen - hlen - 1), colon + 1);
    else
        snprintf(port, sizeof port, "%s", https ? "443" : "80");
    *url_out = dup_printf("%.*s%s:%s%s", (int)(auth - url), url, sn, port, auth + alen);
    *connect_to = dup_printf("%s:%s:%.*s:%s", sn, port, (int)hlen, auth, port);
    *host = dup_printf("%.*s", (int)alen, auth);
    if (*url_out && *connect_to && *host) return VG_OK;
    vg_free(*url_out), vg_free(*connect_to), vg_free(*host);
    *url_out = *connect_to = *host = NULL;
    return VG_ENOMEM;
}

/* ---- cursor ---- */

static void cursor_load(queue *q, vg_ww_cursor *c)
{
    FILE *f = fopen(q->cursor_path, "r");
    unsigned long seg = 0, idx = 0;
    unsigned long long off = 0;
    memset(c, 0, sizeof *c);
    if (!f) return;
    if (fscanf(f, "%lu %llu %lu", &seg, &off, &idx) == 3)
        *c = (vg_ww_cursor){(uint32_t)seg, off, (uint32_t)idx};
    else
        vg_log_warn(COMP, "unreadable cursor; starting from the oldest WAL segment",
                    "remote=%s file=%s", q->name, q->cursor_path);
    fclose(f);
}

static void cursor_save(queue *q, const vg_ww_cursor *c)
{
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", q->cursor_path);
    FILE *f = fopen(tmp, "w");
    int bad = !f || fprintf(f, "%" PRIu32 " %" PRIu64 " %" PRIu32 "\n", c->seg, c->off, c->idx) < 0;
    if (f && (fflush(f) || fdatasync(fileno(f)))) bad = 1;
    if (f && fclose(f)) bad = 1;
    if (bad || rename(tmp, q->cursor_path))
        vg_log_warn(COMP, "cannot write the cursor; samples may be resent after a restart",
                    "remote=%s file=%s err=%s", q->name, q->cursor_path, strerror(errno));
    else if (q->hold)
        vg_wal_hold_move(q->hold, c->seg); /* only once durable: a restart starts there */
}

/* Samples the WAL deleted over wal_max_hold_bytes before this queue read them. */
static void count_truncated(queue *q)
{
    uint64_t n = q->hold ? vg_wal_hold_take_missed(q->hold) : 0;
    if (!n) return;
    vg_metric_add(q->m_truncated, (double)n);
    vg_log_error(COMP, "WAL segments deleted before they were sent (storage.wal_max_hold_bytes)",
                 "remote=%s samples=%" PRIu64, q->name, n);
}

static int hold_open(void *ud, uint32_t from, uint32_t *no, int *sfd, int64_t *epoch)
{
    return vg_wal_hold_open(ud, from, no, sfd, epoch);
}

/* ---- HTTP ---- */

static size_t discard(char *p, size_t sz, size_t n, void *ud)
{
    (void)p, (void)ud;
    return sz * n;
}

/* POST the encoded body for tenant: the HTTP status, or 0 on a network
 * error (*why says which). */
static long post(shard *sh, const char *tenant, const char **why)
{
    queue *q = sh->q;
    const vg_rws_config *c = q->cfg;
    struct curl_slist *h = NULL;
    char line[1024];
    long status = 0;
    h = curl_slist_append(h, "Content-Encoding: snappy");
    h = curl_slist_append(h, "Content-Type: application/x-protobuf");
    h = curl_slist_append(h, "X-Prometheus-Remote-Write-Version: 0.1.0");
    h = curl_slist_append(h, "User-Agent: vigil-collector/" VIGIL_VERSION);
    for (size_t i = 0; i < c->nheaders; i++) {
        snprintf(line, sizeof line, "%s: %s", c->headers[i].key, c->headers[i].value);
        h = curl_slist_append(h, line);
    }
    if (q->host_header) {
        snprintf(line, sizeof line, "Host: %s", q->host_header);
        h = curl_slist_append(h, line);
    }
    if (strcmp(tenant, "default")) {
        snprintf(line, sizeof line, "X-Scope-OrgID: %s", tenant);
        h = curl_slist_append(h, line);
    }
    const char *cred = c->authorization.credentials ? c->authorization.credentials : q->secret;
    if (c->authorization.credentials || c->authorization.credentials_file) {
        snprintf(line, sizeof line, "Authorization: %s %s", c->authorization.type,
                 cred ? cred : "");
        h = curl_slist_append(h, line);
    }
    curl_easy_setopt(sh->curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(sh->curl, CURLOPT_POSTFIELDS, sh->body.data);
    curl_easy_setopt(sh->curl, CURLOPT_POSTFIELDSIZE, (long)sh->body.len);
    CURLcode cc = curl_easy_perform(sh->curl);
    *why = cc == CURLE_OK ? "" : curl_easy_strerror(cc);
    if (cc == CURLE_OK) curl_easy_getinfo(sh->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    return status;
}

static int stopping(vg_rw_sender_t *s);

/* curl progress callback: abort a request in flight when the sender stops, so
 * shutdown does not wait for remote_timeout. */
static int abort_on_stop(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    return stopping(((queue *)ud)->owner);
}

static char *read_secret(const char *path)
{
    FILE *f = fopen(path, "r");
    char buf[4096];
    if (!f) return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
    buf[n] = '\0';
    char *s = vg_malloc(n + 1);
    if (s) memcpy(s, buf, n + 1);
    return s;
}

static vg_err_t setup_curl(queue *q, shard *sh, vg_error *err)
{
    const vg_rws_config *c = q->cfg;
    sh->q = q;
    vg_buf_init(&sh->body, 0);
    if (!(sh->curl = curl_easy_init())) return vg_error_set(err, VG_ENOMEM, "curl init failed");
    const char *file = c->basic_auth.password_file ? c->basic_auth.password_file
                                                   : c->authorization.credentials_file;
    if (file && !q->secret && !(q->secret = read_secret(file)))
        return vg_error_set(err, VG_ECONFIG, "remote_write %s: cannot read %s: %s; fix the path",
                            q->name, file, strerror(errno));
    curl_easy_setopt(sh->curl, CURLOPT_URL, q->sni_url ? q->sni_url : c->url);
    if (q->connect_to) curl_easy_setopt(sh->curl, CURLOPT_CONNECT_TO, q->connect_to);
    curl_easy_setopt(sh->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(sh->curl, CURLOPT_TIMEOUT_MS, (long)c->remote_timeout_ms);
    curl_easy_setopt(sh->curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(sh->curl, CURLOPT_XFERINFOFUNCTION, abort_on_stop);
    curl_easy_setopt(sh->curl, CURLOPT_XFERINFODATA, q);
    curl_easy_setopt(sh->curl, CURLOPT_NOPROGRESS, 0L);
    if (c->basic_auth.username) {
        curl_easy_setopt(sh->curl, CURLOPT_USERNAME, c->basic_auth.username);
        curl_easy_setopt(sh->curl, CURLOPT_PASSWORD,
                         c->basic_auth.password ? c->basic_auth.password : q->secret);
    }
    if (c->tls.ca_file) curl_easy_setopt(sh->curl, CURLOPT_CAINFO, c->tls.ca_file);
    if (c->tls.cert_file) curl_easy_setopt(sh->curl, CURLOPT_SSLCERT, c->tls.cert_file);
    if (c->tls.key_file) curl_easy_setopt(sh->curl, CURLOPT_SSLKEY, c->tls.key_file);
    if (c->tls.insecure_skip_verify) {
        curl_easy_setopt(sh->curl, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(sh->curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    return VG_OK;
}

/* ---- the queue thread ---- */

/* Wait up to ms unless stopping; 1 when stopping. */
static int nap(vg_rw_sender_t *s, int64_t ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) t.tv_sec++, t.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&s->mu);
    if (!s->stop) pthread_cond_timedwait(&s->cv, &s->mu, &t);
    int stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

static int stopping(vg_rw_sender_t *s)
{
    pthread_mutex_lock(&s->mu);
    int stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

/* Fill the batch: up to max_samples_per_send, waiting at most the deadline
 * once it holds something. Returns at a segment end so series stay valid. */
static void fill(vg_rw_sender_t *s, queue *q)
{
    size_t max = q->cfg->queue.max_samples_per_send;
    int64_t first = 0;
    uint64_t lost = 0;
    while (q->nbatch < max && !stopping(s)) {
        int seg_end = 0;
        size_t got = vg_walwatch_read(q->ww, q->batch + q->nbatch, max - q->nbatch, &q->batch_end,
                                      &seg_end, &lost);
        if (got && !q->nbatch) first = vg_clock_mono_ms();
        q->nbatch += got;
        vg_metric_set(q->m_pending, (double)q->nbatch);
        if (seg_end && q->nbatch) break;
        if (seg_end || got) continue;
        if (q->nbatch && vg_clock_mono_ms() - first >= q->cfg->queue.batch_send_deadline_ms) break;
        if (!q->nbatch && lost) cursor_save(q, &q->batch_end); /* all dropped by relabeling */
        count_truncated(q);
        nap(s, POLL_MS);
    }
    count_truncated(q);
    vg_metric_add(q->m_dropped, (double)lost);
}

/* Order of indices into the batch: shard, tenant, series, then position
 * (stable), so each shard's share is one slice grouped by tenant. */
static int by_shard_tenant_series(const void *pa, const void *pb, void *ud)
{
    const queue *q = ud;
    size_t ia = *(const size_t *)pa, ib = *(const size_t *)pb;
    const vg_ww_series *a = q->batch[ia].series, *b = q->batch[ib].series;
    uint64_t sa = a->hash % q->nshards, sb = b->hash % q->nshards;
    if (sa != sb) return sa < sb ? -1 : 1;
    int c = a == b ? 0 : strcmp(a->tenant, b->tenant);
    if (c) return c;
    if (a != b) return a < b ? -1 : 1;
    return ia < ib ? -1 : ia > ib;
}

static void log_retry(queue *q, unsigned attempt, long st, const char *why, const char *tenant,
                      size_t n)
{
    if (attempt == 0)
        vg_log_warn(COMP, "remote unavailable; retrying with backoff until it answers",
                    "remote=%s url=%s tenant=%s status=%ld err=\"%s\" samples=%zu", q->name,
                    q->cfg->url, tenant, st, why, n);
    else if (attempt % 50 == 0)
        vg_log_warn(COMP, "remote still failing", "remote=%s status=%ld attempts=%u", q->name, st,
                    attempt + 1);
}

/* Send one tenant's run with retries; 1 when stopping before it went out. */
static int send_run(shard *sh, const vg_rws_sample *run, size_t n, const char *tenant)
{
    queue *q = sh->q;
    vg_error err = {0};
    int64_t maxt = INT64_MIN;
    for (size_t i = 0; i < n; i++)
        if (run[i].ts > maxt) maxt = run[i].ts;
    for (unsigned attempt = 0;; attempt++) {
        if (vg_rws_encode(run, n, &sh->body, &err)) {
            vg_log_error(COMP, "cannot encode", "remote=%s err=\"%s\"", q->name, err.msg);
            if (nap(q->owner, 1000)) return 1;
            continue;
        }
        const char *why = "";
        long st = post(sh, tenant, &why);
        if (st >= 200 && st < 300) {
            if (attempt)
                vg_log_info(COMP, "remote back", "remote=%s attempts=%u", q->name, attempt + 1);
            vg_metric_add(q->m_sent, (double)n);
            if (maxt > sh->maxt) sh->maxt = maxt;
            return 0;
        }
        int retry = st == 0 || st >= 500 || (st == 429 && q->cfg->queue.retry_on_http_429);
        if (!retry) {
            vg_log_error(COMP, "remote refused samples; dropped",
                         "remote=%s status=%ld samples=%zu", q->name, st, n);
            vg_metric_add(q->m_failed, (double)n);
            return 0;
        }
        vg_metric_add(q->m_retried, (double)n);
        log_retry(q, attempt, st, why, tenant, n);
        count_truncated(q); /* the WAL may pass the hold cap while the remote is down */
        if (nap(q->owner, vg_rws_backoff_ms(q->cfg->queue.min_backoff_ms,
                                            q->cfg->queue.max_backoff_ms, attempt)))
            return 1;
    }
}

/* A shard's thread: its slice of the batch, one request per tenant. */
static void *shard_main(void *ud)
{
    shard *sh = ud;
    for (size_t i = 0, j; i < sh->n && !sh->stopped; i = j) {
        for (j = i + 1; j < sh->n && !strcmp(sh->tenant[j], sh->tenant[i]); j++)
            ;
        sh->stopped = send_run(sh, sh->work + i, j - i, sh->tenant[i]);
    }
    return NULL;
}

/* Hand each shard its slice of the sorted batch, run them in parallel, wait. */
static int run_shards(queue *q, const vg_rws_sample *flat, const char **ten, const size_t *ord)
{
    int stop = 0;
    int64_t maxt = INT64_MIN;
    size_t i = 0;
    for (size_t k = 0; k < q->nshards; k++) {
        shard *sh = &q->shards[k];
        size_t j = i;
        while (j < q->nbatch && q->batch[ord[j]].series->hash % q->nshards == k) j++;
        *sh = (shard){.q = q,
                      .curl = sh->curl,
                      .body = sh->body,
                      .work = flat + i,
                      .tenant = ten + i,
                      .n = j - i,
                      .maxt = INT64_MIN};
        i = j;
        if (sh->n && pthread_create(&sh->thread, NULL, shard_main, sh)) {
            shard_main(sh); /* no thread: send from here */
            sh->n = 0;
        }
    }
    for (size_t k = 0; k < q->nshards; k++) {
        shard *sh = &q->shards[k];
        if (sh->n) pthread_join(sh->thread, NULL);
        stop |= sh->stopped;
        if (sh->maxt > maxt) maxt = sh->maxt;
    }
    if (maxt != INT64_MIN) vg_metric_set(q->m_highest, (double)maxt / 1000.0);
    return stop;
}

/* Sort the batch (shard, tenant, series; each series keeps its order) and
 * send it. 0 when all of it is done, 1 when stopping, -1 out of memory. */
static int send_batch(vg_rw_sender_t *s, queue *q)
{
    size_t n = q->nbatch;
    vg_rws_sample *flat = vg_malloc((n ? n : 1) * sizeof *flat);
    const char **ten = vg_malloc((n ? n : 1) * sizeof *ten);
    size_t *ord = vg_malloc((n ? n : 1) * sizeof *ord);
    int stop = -1;
    if (!flat || !ten || !ord) {
        if (nap(s, 1000)) stop = 1;
        goto out;
    }
    for (size_t i = 0; i < n; i++) ord[i] = i;
    qsort_r(ord, n, sizeof *ord, by_shard_tenant_series, q);
    for (size_t i = 0; i < n; i++) {
        const vg_ww_sample *x = &q->batch[ord[i]];
        flat[i] = (vg_rws_sample){x->series->labels, x->series->n, x->ts, x->v};
        ten[i] = x->series->tenant;
    }
    stop = run_shards(q, flat, ten, ord);
out:
    vg_free(flat);
    vg_free(ten);
    vg_free(ord);
    return stop;
}

typedef struct run_arg {
    vg_rw_sender_t *s;
    queue *q;
} run_arg;

/* Every send_interval: the metadata of every tenant, one request per
 * max_samples_per_send entries, through shard 0 (the shards are idle
 * between batches). Not retried: the next interval sends all of it again. */
static void send_metadata(vg_rw_sender_t *s, queue *q)
{
    struct vg_mdstore *md = __atomic_load_n(&s->md, __ATOMIC_ACQUIRE);
    int64_t now = vg_clock_mono_ms();
    if (!md || !q->cfg->metadata.send || now < q->next_meta_ms) return;
    q->next_meta_ms = now + q->cfg->metadata.send_interval_ms;
    vg_mdstore_wr *w = NULL;
    size_t n = 0;
    if (vg_mdstore_write_requests(md, vg_clock_wall_ms(), q->cfg->metadata.max_samples_per_send, &w,
                                  &n))
        return;
    shard *sh = &q->shards[0];
    for (size_t i = 0; i < n && !stopping(s); i++) {
        size_t clen = snappy_max_compressed_length(w[i].len);
        const char *why = "out of memory";
        long st = 0;
        vg_buf_reset(&sh->body);
        if (!vg_buf_reserve(&sh->body, clen + 1) &&
            snappy_compress((const char *)w[i].data, w[i].len, sh->body.data, &clen) == SNAPPY_OK) {
            sh->body.len = clen;
            st = post(sh, w[i].tenant, &why);
        }
        vg_metric_add(st / 100 == 2 ? q->m_meta_sent : q->m_meta_failed, (double)w[i].entries);
        if (st / 100 != 2)
            vg_log_warn(COMP, "metadata send failed; sent again next interval",
                        "remote=%s tenant=%s status=%ld err=\"%s\"", q->name, w[i].tenant, st, why);
    }
    vg_mdstore_wr_free(w, n);
}

void vg_rw_sender_set_metadata(vg_rw_sender_t *s, struct vg_mdstore *md)
{
    if (s) __atomic_store_n(&s->md, md, __ATOMIC_RELEASE);
}

static void *queue_main(void *ud)
{
    run_arg *a = ud;
    vg_rw_sender_t *s = a->s;
    queue *q = a->q;
    vg_free(a);
    vg_log_info(COMP, "queue started", "remote=%s url=%s", q->name, q->cfg->url);
    while (!stopping(s)) {
        send_metadata(s, q);
        fill(s, q);
        if (!q->nbatch) continue;
        int r = send_batch(s, q);
        if (r > 0) break; /* stopping: the cursor stays before the batch */
        if (r < 0) continue;
        cursor_save(q, &q->batch_end);
        q->nbatch = 0;
        vg_metric_set(q->m_pending, 0);
    }
    return NULL;
}

static void queue_metrics(queue *q, vg_metrics_t *m)
{
    char l[200], lr[250], lt[250];
    snprintf(l, sizeof l, "remote=\"%s\"", q->name);
    snprintf(lr, sizeof lr, "remote=\"%s\",reason=\"relabel\"", q->name);
    snprintf(lt, sizeof lt, "remote=\"%s\",reason=\"wal_truncated\"", q->name);
    q->m_sent = vg_metrics_counter(m, "vigil_remote_write_samples_total",
                                   "Samples the remote accepted (2xx).", l);
    q->m_failed = vg_metrics_counter(m, "vigil_remote_write_failed_samples_total",
                                     "Samples the remote refused for good (4xx), not retried.", l);
    q->m_retried = vg_metrics_counter(m, "vigil_remote_write_retried_samples_total",
                                      "Samples in requests retried (5xx, 429, network).", l);
    static const char help[] = "Samples not sent: dropped by write_relabel_configs (or of a "
                               "series its segment never declared), or in WAL segments deleted "
                               "over storage.wal_max_hold_bytes before they were read.";
    q->m_dropped = vg_metrics_counter(m, "vigil_remote_write_dropped_samples_total", help, lr);
    q->m_truncated = vg_metrics_counter(m, "vigil_remote_write_dropped_samples_total", help, lt);
    q->m_pending = vg_metrics_gauge(m, "vigil_remote_write_pending_samples",
                                    "Samples read from the WAL and not yet accepted.", l);
    q->m_highest = vg_metrics_gauge(m, "vigil_remote_write_highest_sent_timestamp_seconds",
                                    "Newest sample timestamp the remote accepted.", l);
    q->m_meta_sent = vg_metrics_counter(m, "vigil_remote_write_metadata_total",
                                        "Metadata entries the remote accepted (2xx).", l);
    q->m_meta_failed = vg_metrics_counter(m, "vigil_remote_write_metadata_failed_total",
                                          "Metadata entries in requests that failed.", l);
}

/* The walwatch, reading through a hold on wal from the cursor's segment. */
static vg_err_t queue_reader(queue *q, const char *wal_dir, struct vg_wal *wal, vg_error *err)
{
    vg_ww_cursor cur;
    cursor_load(q, &cur);
    vg_err_t rc = wal ? vg_wal_hold_new(wal, q->name, cur.seg, &q->hold, err) : VG_OK;
    if (!rc) rc = vg_walwatch_new(wal_dir, &cur, q->relabel, &q->ww, err);
    if (!rc && q->hold) vg_walwatch_set_opener(q->ww, hold_open, q->hold);
    return rc;
}

static vg_err_t queue_init(queue *q, const vg_rws_config *c, size_t i, const char *wal_dir,
                           struct vg_wal *wal, const char *state_dir, vg_metrics_t *m,
                           vg_error *err)
{
    q->cfg = c;
    if (c->name)
        snprintf(q->name, sizeof q->name, "%s", c->name);
    else
        snprintf(q->name, sizeof q->name, "remote-%zu", i);
    snprintf(q->wal_dir, sizeof q->wal_dir, "%s", wal_dir);
    snprintf(q->cursor_path, sizeof q->cursor_path, "%s/%s.cursor", state_dir, q->name);
    vg_relabel_where_t w;
    vg_err_t rc =
        vg_relabel_new(c->write_relabel_rules, c->nwrite_relabel_rules, &q->relabel, &w, err);
    if (!rc && c->tls.server_name && c->tls.server_name[0]) {
        char *ct = NULL;
        rc = vg_rws_sni_url(c->url, c->tls.server_name, &q->sni_url, &ct, &q->host_header);
        if (!rc && !(q->connect_to = curl_slist_append(NULL, ct))) rc = VG_ENOMEM;
        vg_free(ct);
        if (rc)
            return vg_error_set(err, rc,
                                "remote_write %s: cannot use tls_config.server_name "
                                "with url %s; check the url",
                                q->name, c->url);
    }
    q->nshards = c->queue.max_shards < MAX_SHARDS ? c->queue.max_shards : MAX_SHARDS;
    for (size_t k = 0; k < q->nshards && !rc; k++) rc = setup_curl(q, &q->shards[k], err);
    if (rc) return rc;
    if (!(q->batch = vg_calloc(c->queue.max_samples_per_send, sizeof *q->batch)))
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    if (m) queue_metrics(q, m);
    return queue_reader(q, wal_dir, wal, err);
}

static void queue_release(queue *q)
{
    vg_walwatch_free(q->ww);
    vg_wal_hold_free(q->hold);
    vg_relabel_free(q->relabel);
    for (size_t k = 0; k < MAX_SHARDS; k++) {
        if (q->shards[k].curl) curl_easy_cleanup(q->shards[k].curl);
        vg_buf_free(&q->shards[k].body);
    }
    vg_free(q->batch);
    vg_free(q->secret);
    vg_free(q->sni_url);
    vg_free(q->host_header);
    curl_slist_free_all(q->connect_to);
}

vg_err_t vg_rw_sender_new(const vg_rws_config *cfgs, size_t n, const char *wal_dir,
                          struct vg_wal *wal, const char *state_dir, vg_metrics_t *metrics,
                          vg_rw_sender_t **out, vg_error *err)
{
    vg_err_t rc = VG_OK;
    vg_rw_sender_t *s = vg_calloc(1, sizeof *s);
    *out = NULL;
    if (!s || !(s->q = vg_calloc(n ? n : 1, sizeof *s->q)))
        return vg_free(s), vg_error_set(err, VG_ENOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->n = n;
    if (mkdir(state_dir, 0755) && errno != EEXIST) {
        rc = vg_error_set(err, VG_EIO, "remote_write: cannot create %s: %s; check permissions",
                          state_dir, strerror(errno));
        goto fail;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        s->q[i].owner = s;
        rc = queue_init(&s->q[i], &cfgs[i], i, wal_dir, wal, state_dir, metrics, err);
    }
    for (size_t i = 0; i < n && !rc; i++)
        for (size_t j = 0; j < i && !rc; j++)
            if (!strcmp(s->q[i].name, s->q[j].name))
                rc = vg_error_set(err, VG_ECONFIG,
                                  "remote_write: two entries are named \"%s\"; give each a "
                                  "unique name (it names the cursor file)",
                                  s->q[i].name);
    for (size_t i = 0; i < n && !rc; i++) {
        run_arg *a = vg_malloc(sizeof *a);
        if (!a) rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        if (!rc) *a = (run_arg){s, &s->q[i]};
        if (!rc && pthread_create(&s->q[i].thread, NULL, queue_main, a)) {
            vg_free(a);
            rc = vg_error_set(err, VG_EIO, "remote_write: cannot start a thread");
        }
        if (!rc) s->q[i].started = 1;
    }
    if (rc) goto fail;
    *out = s;
    return VG_OK;
fail:
    vg_rw_sender_free(s);
    return rc;
}

void vg_rw_sender_free(vg_rw_sender_t *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < s->n; i++)
        if (s->q[i].started) pthread_join(s->q[i].thread, NULL);
    for (size_t i = 0; i < s->n; i++) queue_release(&s->q[i]);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    vg_free(s->q);
    vg_free(s);
}
