/*
 * fuzz_scrape_append.c - consecutive scrape bodies through the scrape path,
 * with staleness checked against a naive model.
 *
 * The first byte picks honor_labels, honor_timestamps, OpenMetrics and a
 * sample_limit; the rest is split at "\n--\n" into up to four bodies, each
 * parsed and reported for one target (vg_scrape_parse + vg_scrape_report),
 * then the target is retired. Every emitted set must be sorted with unique
 * names and a __name__. Without honor_timestamps every series is tracked,
 * so the model is exact: the staleness markers of a good scrape are the
 * series of the last good scrape that are missing now (recovered from the
 * kept body by hash and re-parse), of a failed scrape or a retirement all of
 * them, and nothing is emitted twice in one scrape.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scrape/scrape_int.h"

#define MAX_SERIES 4096

typedef struct set {
    char *v[MAX_SERIES];
    size_t n;
} set;

typedef struct model {
    set last, cur, stale; /* last good scrape; this scrape's samples and markers */
    int exact, over;
} model;

static int set_has(const set *s, const char *x)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], x)) return 1;
    return 0;
}

static void set_clear(set *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->v[i]);
    s->n = 0;
}

static void set_add(model *m, set *s, const char *x)
{
    if (set_has(s, x)) __builtin_trap(); /* emitted twice in one scrape */
    if (s->n == MAX_SERIES) {
        m->over = 1;
        return;
    }
    s->v[s->n++] = strdup(x);
}

static int is_report(const char *name)
{
    static const char *const r[] = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                                    "scrape_samples_post_metric_relabeling", "scrape_series_added"};
    for (size_t i = 0; i < sizeof r / sizeof *r; i++)
        if (!strcmp(name, r[i])) return 1;
    return 0;
}

static vg_err_t on_emit(void *ud, const vg_label_t *l, size_t n, int64_t ts, double v)
{
    model *m = ud;
    const char *name = vg_labels_get(l, n, VG_METRIC_NAME);
    if (!name) __builtin_trap();
    if (is_report(name)) return VG_OK; /* not modelled (see the input pre-scan) */
    for (size_t i = 1; i < n; i++)
        if (strcmp(l[i - 1].name, l[i].name) >= 0) __builtin_trap();
    vg_buf b;
    vg_buf_init(&b, 0);
    vg_labels_format(l, n, &b);
    set_add(m, vg_is_stale_nan(v) ? &m->stale : &m->cur, b.data ? b.data : "");
    vg_buf_free(&b);
    return VG_OK;
}

/* The markers must be exactly `want` (every series of last not in keep). */
static void check_stale(model *m, const set *keep)
{
    if (!m->exact || m->over) return;
    size_t want = 0;
    for (size_t i = 0; i < m->last.n; i++) {
        int gone = !keep || !set_has(keep, m->last.v[i]);
        want += gone;
        if (gone != set_has(&m->stale, m->last.v[i])) __builtin_trap();
    }
    if (want != m->stale.n) __builtin_trap();
}

static void run_scrape(vg_scrape_target_t *t, vg_scrape_sink *k, model *m, const char *body,
                       size_t len, const char *ctype, int64_t now)
{
    vg_scrape_result r;
    memset(&r, 0, sizeof r);
    t->start_ms = now;
    vg_scrape_parse(t, k, body, len, ctype, &r);
    set_clear(&m->cur);
    set_clear(&m->stale);
    vg_scrape_report(t, k, &r, 0.001);
    int ok = r.reason == VG_SCRAPE_OK;
    check_stale(m, ok ? &m->cur : NULL);
    set_clear(&m->last);
    if (ok) {
        for (size_t i = 0; i < m->cur.n; i++) m->last.v[i] = m->cur.v[i];
        m->last.n = m->cur.n;
        m->cur.n = 0;
    }
    atomic_store(&t->health, ok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned f = data[0];
    vg_agent_config_t cfg = {.scrape_interval_ms = 10000, .scrape_timeout_ms = 5000};
    const char *targets[] = {"h:9100"};
    vg_label_t glabels[] = {{"env", "x"}};
    vg_static_group_t grp = {.targets = targets, .ntargets = 1, .labels = glabels, .nlabels = 1};
    vg_scrape_config_t sc = {.job_name = "j",
                             .interval_ms = 10000,
                             .timeout_ms = 5000,
                             .metrics_path = "/metrics",
                             .scheme = "http",
                             .honor_labels = f & 1,
                             .honor_timestamps = (f >> 1) & 1,
                             .sample_limit = (f & 8) ? 5 : 0,
                             .static_configs = &grp,
                             .nstatic = 1};
    vg_scrape_target_t t;
    memset(&t, 0, sizeof t);
    vg_scrape_sink k = {0};
    model *m = calloc(1, sizeof *m);
    vg_error err;
    if (!m || vg_scrape_target_init(&t, &cfg, &sc, &grp, targets[0], &err) || t.dropped ||
        vg_scrape_sink_init(&k))
        goto out;
    k.emit = on_emit;
    k.ud = m;
    /* a body series named like a report series is not modelled: no exact check */
    m->exact =
        !sc.honor_timestamps && !memmem(data, size, "up", 2) && !memmem(data, size, "scrape_", 7);
    const char *ctype = (f & 4) ? "application/openmetrics-text; version=1.0.0" : "text/plain";
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    for (int i = 0; i < 4 && p <= end; i++) {
        const char *sep = memmem(p, (size_t)(end - p), "\n--\n", 4);
        size_t len = sep ? (size_t)(sep - p) + 1 : (size_t)(end - p);
        run_scrape(&t, &k, m, p, len, ctype, 1700000000000 + i * 10000);
        p += len + (sep ? 3 : 0);
        if (!sep) break;
    }
    set_clear(&m->cur);
    set_clear(&m->stale);
    vg_scrape_retire(&t, &k, 1700000100000);
    check_stale(m, NULL);
out:
    if (m) {
        set_clear(&m->last);
        set_clear(&m->cur);
        set_clear(&m->stale);
    }
    free(m);
    vg_scrape_sink_destroy(&k);
    vg_scrape_target_destroy(&t);
    return 0;
}
