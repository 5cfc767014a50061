/*
 * append.c - turn one finished scrape into samples, staleness and reports.
 *
 * Two phases, kept apart on purpose. vg_scrape_parse reads the body through
 * the exposition parser, merges each sample's labels with the target's,
 * applies metric_relabel_configs, label_limit and sample_limit, and stages
 * the result (stage.c); it emits nothing, so a body that fails late (a
 * parse error on the last line, one sample over the limit) leaves no
 * partial scrape behind. At the end of a good parse it compares the staged
 * series with the target's last scrape (series.c): repeats are dropped,
 * new series counted, and for series that vanished the labels are
 * recovered by re-parsing the target's kept body through the same steps,
 * staged as staleness markers after the samples. vg_scrape_report then
 * emits, in Prometheus's order: the staged samples and markers (success),
 * or markers for every series of the last scrape (failure), the five
 * synthetic series, and the commit call. metric_relabel_configs runs
 * between merging and the limit checks, which is where Prometheus applies
 * it, so sample_limit and label_limit count what is left and
 * scrape_samples_post_metric_relabeling reports it.
 *
 * Cost per sample is what the design is about: labels are carried with
 * their lengths from the parser (no strlen), merged with the target's
 * pre-sorted labels by an insertion sort and a merge (no qsort), and copied
 * once into the stage, where the same bytes are hashed and later emitted.
 * Nothing is allocated per sample; the per-target state is hashes and a
 * compressed body.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <zstd.h>

#include "scrape/metadata.h"
#include "scrape/scrape_int.h"
#include "vigil/alloc.h"
#include "vigil/clock.h"
static const char *const reason_names[VG_SCRAPE_REASON__COUNT] = {
    [VG_SCRAPE_OK] = "ok",
    [VG_SCRAPE_ERR_HTTP] = "http",
    [VG_SCRAPE_ERR_TIMEOUT] = "timeout",
    [VG_SCRAPE_ERR_STATUS] = "http_status",
    [VG_SCRAPE_ERR_BODY_SIZE] = "body_size_limit",
    [VG_SCRAPE_ERR_PARSE] = "parse",
    [VG_SCRAPE_ERR_SAMPLES] = "sample_limit",
    [VG_SCRAPE_ERR_LABELS] = "label_limit",
    [VG_SCRAPE_ERR_RELABEL] = "relabel",
    [VG_SCRAPE_ERR_NOMEM] = "nomem",
};

const char *vg_scrape_reason_name(vg_scrape_reason r)
{
    return (unsigned)r < VG_SCRAPE_REASON__COUNT ? reason_names[r] : "unknown";
}

static void set_failure(vg_scrape_result *r, vg_scrape_reason why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_failure(vg_scrape_result *r, vg_scrape_reason why, const char *fmt, ...)
{
    if (r->reason != VG_SCRAPE_OK) return; /* keep the first reason */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    r->reason = why;
}

static int lbuf_reserve(vg_scrape_sink *k, size_t n)
{
    if (n <= k->lcap) return 1;
    vg_label_t *l = vg_realloc(k->lbuf, n * sizeof *l);
    if (!l) return 0;
    k->lbuf = l;
    k->lcap = n;
    return 1;
}

static int mbuf_reserve(vg_scrape_sink *k, size_t n)
{
    if (n <= k->mcap) return 1;
    vg_scrape_label *m = vg_realloc(k->mbuf, n * sizeof *m);
    if (!m) return 0;
    k->mbuf = m;
    vg_scrape_label *t = vg_realloc(k->mtmp, n * sizeof *t);
    if (!t) return 0;
    k->mtmp = t;
    k->mcap = n;
    return 1;
}

vg_err_t vg_scrape_sink_init(vg_scrape_sink *k)
{
    vg_buf_init(&k->raw, 0);
    vg_buf_init(&k->strs, 0);
    k->scratch = vg_arena_new(16 * 1024);
    k->zc = ZSTD_createCCtx();
    k->zd = ZSTD_createDCtx();
    vg_scrape_stage_init(&k->stage);
    return k->scratch && k->zc && k->zd ? VG_OK : VG_ENOMEM;
}

void vg_scrape_sink_destroy(vg_scrape_sink *k)
{
    vg_arena_free(k->scratch);
    vg_free(k->lbuf);
    vg_free(k->mbuf);
    vg_free(k->mtmp);
    vg_scrape_stage_destroy(&k->stage);
    vg_buf_free(&k->raw);
    vg_buf_free(&k->strs);
    ZSTD_freeCCtx(k->zc);
    ZSTD_freeDCtx(k->zd);
    vg_scrape_encode_destroy(k);
    k->scratch = NULL;
    k->lbuf = NULL;
    k->mbuf = k->mtmp = NULL;
    k->zc = k->zd = NULL;
}

/* metric_relabel_configs on the merged set in k->mbuf: 1 keep, 0 dropped,
 * -1 failed (the scrape fails, as Prometheus fails one that loses __name__). */
static int metric_relabel(vg_scrape_target_t *t, vg_scrape_sink *k, const char *metric, size_t *n,
                          vg_scrape_result *r)
{
    const vg_relabel_t *mr = t->sc->metric_relabel;
    if (!mr) return 1;
    size_t cap = vg_relabel_cap(mr, *n);
    vg_relabel_result rr = VG_RELABEL_ERROR;
    if (lbuf_reserve(k, cap) && mbuf_reserve(k, cap)) {
        for (size_t i = 0; i < *n; i++)
            k->lbuf[i] = (vg_label_t){k->mbuf[i].name, k->mbuf[i].value};
        rr = vg_relabel_apply(mr, k->lbuf, n, cap, k->scratch);
    }
    if (rr == VG_RELABEL_DROP) {
        if (r) r->dropped_relabel++;
        return 0;
    }
    if (rr == VG_RELABEL_ERROR) {
        if (r)
            set_failure(r, VG_SCRAPE_ERR_NOMEM, "metric relabeling of %.100s: out of memory",
                        metric);
        return -1;
    }
    const char *name = vg_labels_get(k->lbuf, *n, VG_METRIC_NAME);
    if (!name || !vg_metric_name_valid(name, strlen(name))) {
        if (r)
            set_failure(r, VG_SCRAPE_ERR_RELABEL,
                        "metric relabeling of %.100s left no valid metric name", metric);
        return -1;
    }
    for (size_t i = 0; i < *n; i++)
        k->mbuf[i] = (vg_scrape_label){k->lbuf[i].name, k->lbuf[i].value, strlen(k->lbuf[i].name),
                                       strlen(k->lbuf[i].value)};
    return 1;
}

/* Final labels of one sample into k->mbuf: merge, then metric relabeling.
 * Returns the count; 0 when relabeling dropped it; -1 on failure (r set). */
static long final_labels(vg_scrape_target_t *t, vg_scrape_sink *k, const vg_expfmt_entry *e,
                         vg_scrape_result *r)
{
    if (t->sc->metric_relabel || t->nlabels) vg_arena_reset(k->scratch);
    size_t n = 0;
    if (mbuf_reserve(k, 1 + e->nlabels + 2 * t->nlabels))
        n = vg_scrape_merge(t, t->sc->honor_labels, e, k->scratch, k->mtmp, k->mbuf);
    if (!n) {
        if (r) set_failure(r, VG_SCRAPE_ERR_NOMEM, "out of memory merging labels");
        return -1;
    }
    int keep = metric_relabel(t, k, e->name, &n, r);
    return keep < 0 ? -1 : keep == 0 ? 0 : (long)n;
}

/* One parsed sample: final labels, label_limit and sample_limit, stage.
 * Returns 0 to stop parsing. After sample_limit is hit it only counts. */
static int on_sample(vg_scrape_target_t *t, vg_scrape_sink *k, const vg_expfmt_entry *e,
                     vg_scrape_result *r)
{
    const vg_scrape_config_t *sc = t->sc;
    r->scraped++;
    if (r->reason == VG_SCRAPE_ERR_SAMPLES) return 1;
    long n = final_labels(t, k, e, r);
    if (n <= 0) return n == 0;
    if (sc->label_limit && (size_t)n > sc->label_limit) {
        set_failure(r, VG_SCRAPE_ERR_LABELS,
                    "label_limit exceeded (metric: %.*s, number of labels: %ld, limit: %llu)",
                    (int)(e->name_len < 50 ? e->name_len : 50), e->name, n,
                    (unsigned long long)sc->label_limit);
        return 0;
    }
    r->post_relabel++;
    if (sc->sample_limit && r->post_relabel > sc->sample_limit) {
        set_failure(r, VG_SCRAPE_ERR_SAMPLES, "sample_limit exceeded (limit: %llu)",
                    (unsigned long long)sc->sample_limit);
        return 1; /* keep counting for scrape_samples_scraped */
    }
    int own_ts = sc->honor_timestamps && e->has_ts;
    if (vg_scrape_stage_add(&k->stage, k->mbuf, (size_t)n, own_ts ? e->ts_ms : t->start_ms,
                            e->value, own_ts ? 0 : VG_STAGE_TRACK) == UINT32_MAX) {
        set_failure(r, VG_SCRAPE_ERR_NOMEM, "staging samples: out of memory");
        return 0;
    }
    return 1;
}

/* Run every sample of body through fn; VG_OK or the parser's error (msg in err). */
typedef int (*sample_fn)(vg_scrape_target_t *t, vg_scrape_sink *k, const vg_expfmt_entry *e,
                         void *ud);

static vg_err_t each_sample(vg_scrape_target_t *t, vg_scrape_sink *k, const char *body, size_t len,
                            vg_expfmt_format fmt, sample_fn fn, void *ud, uint64_t *mh,
                            vg_error *err)
{
    vg_expfmt_parser_t *p = vg_expfmt_new(body, len, fmt);
    if (!p) return vg_error_set(err, VG_ENOMEM, "out of memory creating the parser");
    vg_expfmt_set_skip_text(p, 1);
    vg_expfmt_set_borrow(p, !t->sc->metric_relabel); /* relabeling wants C strings */
    vg_expfmt_entry e;
    vg_err_t rc;
    while ((rc = vg_expfmt_next(p, &e, err)) == VG_OK && e.kind != VG_EXPFMT_EOF) {
        if (e.kind != VG_EXPFMT_SAMPLE || e.created) { /* _created: not a series */
            if (mh && e.kind != VG_EXPFMT_SAMPLE) vg_scrape_meta_fold(mh, &e); /* per family */
            continue;
        }
        if (!fn(t, k, &e, ud)) break;
    }
    vg_expfmt_free(p);
    return rc;
}

static int parse_one(vg_scrape_target_t *t, vg_scrape_sink *k, const vg_expfmt_entry *e, void *ud)
{
    return on_sample(t, k, e, ud);
}

/* ---- staleness: recover the labels of vanished series from the kept body ---- */

typedef struct recover_ctx {
    size_t left; /* series still flagged stale */
} recover_ctx;

static int recover_one(vg_scrape_target_t *t, vg_scrape_sink *k, const vg_expfmt_entry *e, void *ud)
{
    recover_ctx *c = ud;
    long n = final_labels(t, k, e, NULL);
    if (n <= 0) return 1;
    uint32_t rec =
        vg_scrape_stage_add(&k->stage, k->mbuf, (size_t)n, t->start_ms, vg_stale_nan(), 0);
    if (rec == UINT32_MAX) return 0;
    long i = vg_scrape_series_find(&t->series, vg_scrape_stage_rec(&k->stage, rec)->hash);
    if (i >= 0 && (t->series.flags[i] & VG_SERIES_STALE)) {
        t->series.flags[i] &= (uint8_t)~VG_SERIES_STALE; /* once, even if the body repeats it */
        c->left--;
    } else {
        vg_scrape_stage_undo(&k->stage, rec);
    }
    return c->left > 0;
}

/* Stage a staleness marker for every series flagged STALE (nstale of them). */
static vg_err_t stage_stale(vg_scrape_target_t *t, vg_scrape_sink *k, size_t nstale)
{
    vg_scrape_series *s = &t->series;
    if (!nstale || !s->body) return VG_OK;
    vg_buf_reset(&k->raw);
    vg_err_t rc = vg_buf_reserve(&k->raw, s->raw_len + 1);
    if (rc) return rc;
    size_t z = ZSTD_decompressDCtx(k->zd, k->raw.data, s->raw_len + 1, s->body, s->body_len);
    if (ZSTD_isError(z) || z != s->raw_len) return VG_EINTERNAL;
    recover_ctx c = {nstale};
    vg_error err = {0};
    rc = each_sample(t, k, k->raw.data, z, (vg_expfmt_format)s->fmt, recover_one, &c, NULL, &err);
    if (k->raw.cap > ((size_t)4 << 20)) vg_buf_free(&k->raw);
    return rc;
}

/* A good parse: drop repeats, compare with the last scrape, stage markers
 * for what vanished, and remember this scrape's series. */
static void finish_parse(vg_scrape_target_t *t, vg_scrape_sink *k, const char *body, size_t len,
                         vg_expfmt_format fmt, vg_scrape_result *r)
{
    vg_scrape_stage *st = &k->stage;
    vg_err_t rc = VG_OK;
    r->dropped_dup = vg_scrape_stage_dedup(st, &rc);
    size_t ncur = st->n, nstale = 0;
    int covered = 1;
    if (!rc) r->added = vg_scrape_series_diff(&t->series, st->ref, ncur, &covered, &nstale);
    if (!rc) rc = stage_stale(t, k, nstale);
    if (!rc && covered && t->series.n <= 2 * ncur + 64)
        vg_scrape_series_apply(&t->series);
    else if (!rc)
        rc = vg_scrape_series_store(&t->series, st->ref, ncur, body, len, fmt, k->zc);
    if (rc) set_failure(r, VG_SCRAPE_ERR_NOMEM, "tracking series: %s", vg_strerror(rc));
}

void vg_scrape_parse(vg_scrape_target_t *t, vg_scrape_sink *k, const char *body, size_t len,
                     const char *ctype, vg_scrape_result *r)
{
    vg_scrape_stage_reset(&k->stage);
    vg_expfmt_format fmt = vg_expfmt_format_from_content_type(ctype);
    vg_error err = {0};
    uint64_t mh = 0;
    vg_err_t rc = each_sample(t, k, body, len, fmt, parse_one, r, &mh, &err);
    if (rc)
        set_failure(r, rc == VG_ENOMEM ? VG_SCRAPE_ERR_NOMEM : VG_SCRAPE_ERR_PARSE, "%s",
                    vg_error_msg(&err, rc));
    if (r->reason == VG_SCRAPE_OK) finish_parse(t, k, body, len, fmt, r);
    if (r->reason == VG_SCRAPE_OK) vg_scrape_meta_update(t, body, len, fmt, mh);
}

/* ---- emission ---- */

static void emit(vg_scrape_sink *k, const vg_label_t *l, size_t n, int64_t ts, double v)
{
    if (k->emit_enc) {
        if (vg_scrape_encode(k, l, n, ts, v)) k->emit_errors++;
        return;
    }
    if (k->emit(k->ud, l, n, ts, v) == VG_OK)
        k->emitted++;
    else
        k->emit_errors++;
}

/* Emit every staged record that is not a repeat, in body order. */
static void emit_staged(vg_scrape_sink *k)
{
    const vg_scrape_stage *st = &k->stage;
    for (size_t off = 0; off < st->buf.len;) {
        const vg_stage_rec *rec = vg_scrape_stage_rec(st, (uint32_t)off);
        off += rec->size;
        if (rec->flags & VG_STAGE_DUP) continue;
        if (k->emit_enc) {
            if (vg_scrape_encode_rec(k, rec)) k->emit_errors++;
            continue;
        }
        if (!lbuf_reserve(k, rec->n) || vg_scrape_stage_labels(rec, k->lbuf, &k->strs)) {
            k->emit_errors++;
            continue;
        }
        emit(k, k->lbuf, rec->n, rec->ts_ms, rec->v);
    }
}

/* Failure or retirement: markers for every tracked series of the last scrape. */
static void emit_all_stale(vg_scrape_target_t *t, vg_scrape_sink *k)
{
    vg_scrape_stage_reset(&k->stage);
    size_t nstale = vg_scrape_series_stale_all(&t->series);
    if (stage_stale(t, k, nstale)) k->emit_errors += nstale;
    emit_staged(k);
    vg_scrape_series_reset(&t->series);
}

static void emit_report(vg_scrape_target_t *t, vg_scrape_sink *k, const char *name, double v)
{
    if (!lbuf_reserve(k, t->nlabels + 1)) {
        k->emit_errors++;
        return;
    }
    size_t n = vg_scrape_report_labels(t, name, k->lbuf);
    emit(k, k->lbuf, n, t->start_ms, v);
}

void vg_scrape_report(vg_scrape_target_t *t, vg_scrape_sink *k, const vg_scrape_result *r,
                      double duration_s)
{
    int ok = r->reason == VG_SCRAPE_OK;
    if (k->emit_enc) vg_scrape_encode_begin(k);
    if (ok)
        emit_staged(k);
    else
        emit_all_stale(t, k);
    vg_scrape_stage_reset(&k->stage);
    emit_report(t, k, "up", ok ? 1 : 0);
    emit_report(t, k, "scrape_duration_seconds", duration_s);
    emit_report(t, k, "scrape_samples_scraped", (double)r->scraped);
    emit_report(t, k, "scrape_samples_post_metric_relabeling", (double)r->post_relabel);
    emit_report(t, k, "scrape_series_added", ok ? (double)r->added : 0);
    if (ok) vg_scrape_meta_emit(t, k, vg_clock_mono_ms());
    if (k->emit_enc) vg_scrape_encode_flush(k);
    if (k->commit) k->commit(k->ud);
}

void vg_scrape_retire(vg_scrape_target_t *t, vg_scrape_sink *k, int64_t now_ms)
{
    static const char *const report[] = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                                         "scrape_samples_post_metric_relabeling",
                                         "scrape_series_added"};
    if (atomic_load(&t->health) < 0) return; /* never scraped: nothing was reported */
    t->start_ms = now_ms > t->start_ms ? now_ms : t->start_ms + 1;
    if (k->emit_enc) vg_scrape_encode_begin(k);
    emit_all_stale(t, k);
    vg_scrape_stage_reset(&k->stage);
    for (size_t i = 0; i < sizeof report / sizeof *report; i++)
        emit_report(t, k, report[i], vg_stale_nan());
    if (k->emit_enc) vg_scrape_encode_flush(k);
    if (k->commit) k->commit(k->ud);
}
