/*
 * append.c - turn one finished scrape into samples, staleness and reports.
 *
 * Two phases, kept apart on purpose. vg_scrape_parse reads the body through
 * the exposition parser, merges each sample's labels with the target's,
 * applies label_limit and sample_limit, and stages the result in the
 * target's series cache; it emits nothing, so a body that fails late (a
 * parse error on the last line, one sample over the limit) leaves no
 * partial scrape behind. vg_scrape_report then emits, in Prometheus's
 * order: the staged samples (success only), staleness markers for series
 * that vanished (all of them on failure), the five synthetic series, and
 * the commit call. metric_relabel_configs runs between merging and the
 * limit checks, which is where Prometheus applies it, so sample_limit and
 * label_limit count what is left and scrape_samples_post_metric_relabeling
 * reports it. Relabeling edits the merged label array in place and takes
 * its strings from the per-sample scratch arena: no malloc per sample.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "scrape/scrape_int.h"
#include "vigil/alloc.h"

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

/* metric_relabel_configs on the merged set in k->lbuf: 1 keep, 0 dropped,
 * -1 failed (the scrape fails, as Prometheus fails one that loses __name__). */
static int metric_relabel(vg_scrape_target_t *t, vg_scrape_sink *k, const char *metric, size_t *n,
                          vg_scrape_result *r)
{
    const vg_relabel_t *mr = t->sc->metric_relabel;
    if (!mr) return 1;
    size_t cap = vg_relabel_cap(mr, *n);
    vg_relabel_result rr =
        lbuf_reserve(k, cap) ? vg_relabel_apply(mr, k->lbuf, n, cap, k->scratch) : VG_RELABEL_ERROR;
    if (rr == VG_RELABEL_DROP) {
        r->dropped_relabel++;
        return 0;
    }
    if (rr == VG_RELABEL_ERROR) {
        set_failure(r, VG_SCRAPE_ERR_NOMEM, "metric relabeling of %.100s: out of memory", metric);
        return -1;
    }
    const char *name = vg_labels_get(k->lbuf, *n, VG_METRIC_NAME);
    if (!name || !vg_metric_name_valid(name, strlen(name))) {
        set_failure(r, VG_SCRAPE_ERR_RELABEL,
                    "metric relabeling of %.100s left no valid metric name", metric);
        return -1;
    }
    return 1;
}

/* One parsed sample: merge, relabel, check label_limit and sample_limit,
 * stage. Returns 0 to stop parsing. After sample_limit is hit it only counts. */
static int on_sample(vg_scrape_target_t *t, vg_scrape_sink *k, const vg_expfmt_entry *e,
                     vg_scrape_result *r)
{
    const vg_scrape_config_t *sc = t->sc;
    r->scraped++;
    if (r->reason == VG_SCRAPE_ERR_SAMPLES) return 1;
    vg_arena_reset(k->scratch);
    size_t n = 0;
    if (lbuf_reserve(k, 1 + e->nlabels + 2 * t->nlabels))
        n = vg_scrape_merge_labels(t, sc->honor_labels, e->name, e->labels, e->nlabels, k->scratch,
                                   k->lbuf);
    if (!n) {
        set_failure(r, VG_SCRAPE_ERR_NOMEM, "out of memory merging labels");
        return 0;
    }
    int keep = metric_relabel(t, k, e->name, &n, r);
    if (keep <= 0) return keep == 0;
    if (sc->label_limit && n > sc->label_limit) {
        set_failure(r, VG_SCRAPE_ERR_LABELS,
                    "label_limit exceeded (metric: %.50s, number of labels: %zu, limit: %llu)",
                    e->name, n, (unsigned long long)sc->label_limit);
        return 0;
    }
    r->post_relabel++;
    if (sc->sample_limit && r->post_relabel > sc->sample_limit) {
        set_failure(r, VG_SCRAPE_ERR_SAMPLES, "sample_limit exceeded (limit: %llu)",
                    (unsigned long long)sc->sample_limit);
        return 1; /* keep counting for scrape_samples_scraped */
    }
    int own_ts = sc->honor_timestamps && e->has_ts, dup, added;
    vg_err_t rc = vg_scrape_cache_add(&t->cache, k->lbuf, n, own_ts ? e->ts_ms : t->start_ms,
                                      e->value, !own_ts, &dup, &added);
    if (rc) {
        set_failure(r, VG_SCRAPE_ERR_NOMEM, "staging samples: %s", vg_strerror(rc));
        return 0;
    }
    r->dropped_dup += dup;
    r->added += added;
    return 1;
}

void vg_scrape_parse(vg_scrape_target_t *t, vg_scrape_sink *k, const char *body, size_t len,
                     const char *ctype, vg_scrape_result *r)
{
    vg_scrape_cache_begin(&t->cache);
    vg_expfmt_parser_t *p = vg_expfmt_new(body, len, vg_expfmt_format_from_content_type(ctype));
    if (!p) {
        set_failure(r, VG_SCRAPE_ERR_NOMEM, "out of memory creating the parser");
        return;
    }
    vg_expfmt_entry e;
    vg_error err = {0};
    for (;;) {
        vg_err_t rc = vg_expfmt_next(p, &e, &err);
        if (rc) {
            set_failure(r, rc == VG_ENOMEM ? VG_SCRAPE_ERR_NOMEM : VG_SCRAPE_ERR_PARSE, "%s",
                        vg_error_msg(&err, rc));
            break;
        }
        if (e.kind == VG_EXPFMT_EOF) break;
        if (e.kind != VG_EXPFMT_SAMPLE || e.created) continue; /* _created: not a series */
        if (!on_sample(t, k, &e, r)) break;
    }
    vg_expfmt_free(p);
}

/* ---- emission ---- */

typedef struct emit_ctx {
    vg_scrape_target_t *t;
    vg_scrape_sink *k;
} emit_ctx;

static void emit(vg_scrape_sink *k, const vg_label_t *l, size_t n, int64_t ts, double v)
{
    if (k->emit(k->ud, l, n, ts, v) == VG_OK)
        k->emitted++;
    else
        k->emit_errors++;
}

static void emit_stale(void *ud, const vg_scrape_item *it)
{
    emit_ctx *c = ud;
    emit(c->k, it->labels, it->n, c->t->start_ms, vg_stale_nan());
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
    emit_ctx c = {t, k};
    int ok = r->reason == VG_SCRAPE_OK;
    if (ok) {
        size_t n;
        const vg_scrape_item *it = vg_scrape_cache_staged(&t->cache, &n);
        for (size_t i = 0; i < n; i++) emit(k, it[i].labels, it[i].n, it[i].ts_ms, it[i].v);
        vg_scrape_cache_commit(&t->cache, emit_stale, &c);
    } else {
        vg_scrape_cache_abort(&t->cache, emit_stale, &c);
    }
    emit_report(t, k, "up", ok ? 1 : 0);
    emit_report(t, k, "scrape_duration_seconds", duration_s);
    emit_report(t, k, "scrape_samples_scraped", (double)r->scraped);
    emit_report(t, k, "scrape_samples_post_metric_relabeling", (double)r->post_relabel);
    emit_report(t, k, "scrape_series_added", ok ? (double)r->added : 0);
    if (k->commit) k->commit(k->ud);
}

void vg_scrape_retire(vg_scrape_target_t *t, vg_scrape_sink *k, int64_t now_ms)
{
    static const char *const report[] = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                                         "scrape_samples_post_metric_relabeling",
                                         "scrape_series_added"};
    if (atomic_load(&t->health) < 0) return; /* never scraped: nothing was reported */
    t->start_ms = now_ms > t->start_ms ? now_ms : t->start_ms + 1;
    emit_ctx c = {t, k};
    vg_scrape_cache_abort(&t->cache, emit_stale, &c);
    for (size_t i = 0; i < sizeof report / sizeof *report; i++)
        emit_report(t, k, report[i], vg_stale_nan());
    if (k->commit) k->commit(k->ud);
}
