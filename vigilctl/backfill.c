/*
 * backfill.c - `vigilctl backfill FILE`: load historical samples from an
 * exposition file (text 0.0.4 or OpenMetrics, samples with timestamps) into
 * a collector through POST /ingest/v1/batch.
 *
 * Tests and benchmarks need the same known data in Vigil and in a peer
 * (Prometheus backfills the same OpenMetrics file with `promtool tsdb
 * create-blocks-from openmetrics`), and operators need a way to import old
 * data. The file is read whole, samples are grouped by series (the store
 * wants each series in time order, so they are sorted), and sent as
 * ordinary Vigil batches of at most 20,000 samples, so the collector's
 * normal ingest path (limits, dedup) applies. Samples without a timestamp
 * get the current time.
 */
#include "backfill.h"

#include "file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/alloc.h"
#include "vigil/arena.h"
#include "vigil/buf.h"
#include "vigil/clock.h"
#include "vigil/envelope.h"
#include "vigil/expfmt.h"
#include "vigil/httpc.h"

#define BF_MAX_FILE   (1u << 30)
#define BF_BATCH      20000
#define BF_MAX_LABELS 128

typedef struct bf_series {
    vg_label_t *l;
    size_t nl;
    uint64_t hash;
    Prometheus__Sample *s;
    size_t n, cap;
} bf_series;

typedef struct bf_state {
    vg_arena_t *arena;
    bf_series *series;
    size_t nseries, cap;
    size_t *slots; /* open addressing: index + 1, 0 = empty */
    size_t nslots;
} bf_state;

static vg_err_t grow_slots(bf_state *st)
{
    size_t n = st->nslots ? st->nslots * 2 : 1024;
    size_t *s = vg_calloc(n, sizeof(*s));
    if (!s) return VG_ENOMEM;
    for (size_t i = 0; i < st->nseries; i++) {
        size_t k = st->series[i].hash & (n - 1);
        while (s[k]) k = (k + 1) & (n - 1);
        s[k] = i + 1;
    }
    vg_free(st->slots);
    st->slots = s, st->nslots = n;
    return VG_OK;
}

/* The series with these sorted labels, created on first sight. */
static bf_series *find_series(bf_state *st, const vg_label_t *l, size_t nl)
{
    if ((st->nseries + 1) * 2 > st->nslots && grow_slots(st)) return NULL;
    uint64_t h = vg_labels_hash(l, nl);
    size_t k = h & (st->nslots - 1);
    for (; st->slots[k]; k = (k + 1) & (st->nslots - 1)) {
        bf_series *s = &st->series[st->slots[k] - 1];
        if (s->hash == h && vg_labels_cmp(s->l, s->nl, l, nl) == 0) return s;
    }
    if (st->nseries == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 1024;
        bf_series *g = vg_realloc(st->series, cap * sizeof(*g));
        if (!g) return NULL;
        st->series = g, st->cap = cap;
    }
    bf_series *s = &st->series[st->nseries];
    *s = (bf_series){
        .l = vg_arena_alloc(st->arena, (nl ? nl : 1) * sizeof(*l)), .nl = nl, .hash = h};
    if (!s->l) return NULL;
    for (size_t i = 0; i < nl; i++) {
        s->l[i].name = vg_arena_strdup(st->arena, l[i].name);
        s->l[i].value = vg_arena_strdup(st->arena, l[i].value);
        if (!s->l[i].name || !s->l[i].value) return NULL;
    }
    st->slots[k] = ++st->nseries;
    return s;
}

static vg_err_t add_sample(bf_state *st, const vg_expfmt_entry *e, int64_t now)
{
    vg_label_t l[BF_MAX_LABELS];
    size_t nl = 0;
    if (e->nlabels + 1 > BF_MAX_LABELS) return VG_ETOOLARGE;
    l[nl++] = (vg_label_t){VG_METRIC_NAME, e->name};
    for (size_t i = 0; i < e->nlabels; i++)
        if (e->labels[i].value[0]) l[nl++] = e->labels[i];
    vg_labels_sort(l, nl);
    bf_series *s = find_series(st, l, nl);
    if (!s) return VG_ENOMEM;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        Prometheus__Sample *g = vg_realloc(s->s, cap * sizeof(*g));
        if (!g) return VG_ENOMEM;
        s->s = g, s->cap = cap;
    }
    prometheus__sample__init(&s->s[s->n]);
    s->s[s->n].timestamp = e->has_ts ? e->ts_ms : now;
    s->s[s->n++].value = e->value;
    return VG_OK;
}

static vg_err_t parse_file(bf_state *st, const char *text, size_t len, vg_error *err)
{
    vg_expfmt_format fmt = strstr(text, "# EOF") ? VG_EXPFMT_OPENMETRICS : VG_EXPFMT_TEXT;
    vg_expfmt_parser_t *p = vg_expfmt_new(text, len, fmt);
    vg_expfmt_entry e;
    vg_err_t rc = p ? VG_OK : VG_ENOMEM;
    int64_t now = vg_clock_wall_ms();
    while (!rc && (rc = vg_expfmt_next(p, &e, err)) == VG_OK && e.kind != VG_EXPFMT_EOF)
        if (e.kind == VG_EXPFMT_SAMPLE) rc = add_sample(st, &e, now);
    vg_expfmt_free(p);
    return rc;
}

static int cmp_sample(const void *x, const void *y)
{
    const Prometheus__Sample *a = x, *b = y;
    return a->timestamp < b->timestamp ? -1 : a->timestamp > b->timestamp;
}

static vg_err_t post_batch(vg_httpc_t *c, const char *url, const char *tenant,
                           Prometheus__TimeSeries **ts, size_t n, uint64_t seq, vg_error *err)
{
    Vigil__V1__MetricBatch mb = VIGIL__V1__METRIC_BATCH__INIT;
    vg_batch_t b = VIGIL__V1__BATCH__INIT;
    mb.timeseries = ts, mb.n_timeseries = n;
    b.agent_id = "vigilctl-backfill", b.node = "backfill", b.tenant = (char *)tenant;
    b.seq = seq, b.created_ms = vg_clock_wall_ms();
    b.payload_case = VIGIL__V1__BATCH__PAYLOAD_METRICS, b.metrics = &mb;
    uint8_t *body = NULL;
    size_t len = 0;
    int status = 0;
    vg_buf resp;
    vg_buf_init(&resp, 1 << 16);
    vg_err_t rc = vg_envelope_encode(&b, 3, &body, &len, err);
    const char *hdr[] = {"Content-Type: application/x-protobuf", "Content-Encoding: zstd", NULL};
    vg_httpc_req req = {
        .url = url, .headers = hdr, .body = body, .body_len = len, .timeout_ms = 60000};
    if (!rc) rc = vg_httpc_do(c, &req, &status, &resp, err);
    if (!rc && status / 100 != 2)
        rc = vg_error_set(err, VG_EPROTO, "ingest answered %d: %s", status,
                          resp.data ? resp.data : "");
    vg_free(body);
    vg_buf_free(&resp);
    return rc;
}

/* Send every series' samples in batches of at most BF_BATCH samples. */
static vg_err_t send_all(bf_state *st, const char *url, const char *tenant, size_t *sent,
                         vg_error *err)
{
    vg_httpc_t *c = vg_httpc_new();
    Prometheus__TimeSeries *ts = vg_calloc(st->nseries + 1, sizeof(*ts));
    Prometheus__TimeSeries **tsp = vg_calloc(st->nseries + 1, sizeof(*tsp));
    Prometheus__Label *lab = vg_calloc(BF_BATCH * 8 + BF_MAX_LABELS, sizeof(*lab));
    Prometheus__Label **labp = vg_calloc(BF_BATCH * 8 + BF_MAX_LABELS, sizeof(*labp));
    Prometheus__Sample **sp = vg_calloc(BF_BATCH + 1, sizeof(*sp));
    vg_err_t rc = c && ts && tsp && lab && labp && sp ? VG_OK : VG_ENOMEM;
    uint64_t seq = (uint64_t)vg_clock_wall_ms() * 1000;
    size_t nts = 0, nsamp = 0, nlab = 0;
    for (size_t i = 0; !rc && i <= st->nseries; i++) {
        bf_series *s = i < st->nseries ? &st->series[i] : NULL;
        size_t off = 0;
        while (!rc && s && off < s->n) {
            size_t take = s->n - off < BF_BATCH - nsamp ? s->n - off : BF_BATCH - nsamp;
            Prometheus__TimeSeries *t = &ts[nts];
            prometheus__time_series__init(t);
            t->labels = &labp[nlab], t->n_labels = s->nl;
            for (size_t k = 0; k < s->nl; k++, nlab++) {
                prometheus__label__init(&lab[nlab]);
                lab[nlab].name = (char *)s->l[k].name, lab[nlab].value = (char *)s->l[k].value;
                labp[nlab] = &lab[nlab];
            }
            t->samples = &sp[nsamp], t->n_samples = take;
            for (size_t k = 0; k < take; k++) sp[nsamp + k] = &s->s[off + k];
            tsp[nts++] = t, nsamp += take, off += take;
            if (nsamp == BF_BATCH || nlab + BF_MAX_LABELS > BF_BATCH * 8) {
                rc = post_batch(c, url, tenant, tsp, nts, seq++, err);
                *sent += nsamp, nts = nsamp = nlab = 0;
            }
        }
        if (!rc && !s && nts) rc = post_batch(c, url, tenant, tsp, nts, seq++, err), *sent += nsamp;
    }
    vg_free(ts), vg_free(tsp), vg_free(lab), vg_free(labp), vg_free(sp);
    vg_httpc_free(c);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: vigilctl backfill [--tenant T] FILE   (collector from $VIGIL_URL)\n");
    return 2;
}

int vg_backfill_main(int argc, char **argv)
{
    const char *tenant = "default", *path = NULL, *base = getenv("VIGIL_URL");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tenant") && i + 1 < argc)
            tenant = argv[++i];
        else if (argv[i][0] == '-' || path)
            return usage();
        else
            path = argv[i];
    }
    if (!path) return usage();
    char url[1024];
    snprintf(url, sizeof url, "%s/ingest/v1/batch", base && *base ? base : "http://127.0.0.1:9400");
    bf_state st = {.arena = vg_arena_new(0)};
    vg_error err = {0};
    size_t len, sent = 0;
    char *text = vg_ctl_read_file(path, BF_MAX_FILE, &len);
    vg_err_t rc = !text       ? vg_error_set(&err, VG_EIO, "cannot read %s", path)
                  : !st.arena ? VG_ENOMEM
                              : parse_file(&st, text, len, &err);
    for (size_t i = 0; !rc && i < st.nseries; i++)
        qsort(st.series[i].s, st.series[i].n, sizeof(*st.series[i].s), cmp_sample);
    if (!rc) rc = send_all(&st, url, tenant, &sent, &err);
    if (!rc)
        printf("%s: %zu series, %zu samples sent\n", path, st.nseries, sent);
    else
        fprintf(stderr, "vigilctl: backfill: %s\n", vg_error_msg(&err, rc));
    for (size_t i = 0; i < st.nseries; i++) vg_free(st.series[i].s);
    vg_free(st.series), vg_free(st.slots), vg_free(text);
    vg_arena_free(st.arena);
    return rc ? 1 : 0;
}
