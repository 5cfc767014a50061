/*
 * metrics.c - the self-metrics registry and the Prometheus float format.
 *
 * Metrics live in families (one per name, in registration order) so that
 * rendering emits HELP/TYPE exactly once per name without sorting. Values are
 * doubles stored as their bit pattern in an _Atomic uint64_t: set is a store,
 * add is a compare-and-swap loop, so the hot path never takes a lock. The
 * registry mutex guards only the lists (registration and render). Handles are
 * never freed before the registry, so callers may cache them freely.
 *
 * vg_fmt_float/vg_fmt_float_json reproduce Go's strconv.FormatFloat with
 * precision -1 ('g' and 'f'), because Prometheus, promtool and Grafana compare
 * what we print with what Go prints. The shortest round-trip digits come from
 * trying %.*e with 1..17 significant digits until strtod gives the value back;
 * the layout rules (exponent when exp < -4 || exp >= 6 for 'g') follow Go's
 * ftoa.go.
 */
#include "vigil/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/alloc.h"
#include "vigil/log.h"

struct family;

struct vg_metric {
    struct vg_metric *next;
    struct family *fam;
    char *labels; /* "" when none */
    _Atomic uint64_t bits;
    vg_metric_fn fn; /* set for callback gauges */
    void *ud;
};

struct family {
    struct family *next;
    char *name, *help;
    vg_metric_type type;
    vg_metric_t *head, *tail;
};

struct vg_metrics {
    pthread_mutex_t mu;
    struct family *head, *tail;
    atomic_int ready;
};

/* ---- atomic doubles ---- */

static uint64_t d2u(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return u;
}

static double u2d(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

void vg_metric_add(vg_metric_t *c, double v)
{
    if (!c || c->fn) return;
    if (c->fam->type == VG_METRIC_COUNTER && !(v >= 0)) return; /* counters only go up */
    uint64_t old = atomic_load_explicit(&c->bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&c->bits, &old, d2u(u2d(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

void vg_metric_inc(vg_metric_t *c)
{
    vg_metric_add(c, 1.0);
}

void vg_metric_set(vg_metric_t *g, double v)
{
    if (!g || g->fn) return;
    atomic_store_explicit(&g->bits, d2u(v), memory_order_relaxed);
}

double vg_metric_value(const vg_metric_t *c)
{
    if (!c) return 0;
    if (c->fn) return c->fn(c->ud);
    return u2d(atomic_load_explicit(&((vg_metric_t *)c)->bits, memory_order_relaxed));
}

/* ---- registry ---- */

vg_metrics_t *vg_metrics_new(void)
{
    vg_metrics_t *m = vg_calloc(1, sizeof(*m));
    if (!m) return NULL;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        vg_free(m);
        return NULL;
    }
    atomic_init(&m->ready, 0);
    return m;
}

static void family_free(struct family *f)
{
    vg_metric_t *c = f->head;
    while (c) {
        vg_metric_t *next = c->next;
        vg_free(c->labels);
        vg_free(c);
        c = next;
    }
    vg_free(f->name);
    vg_free(f->help);
    vg_free(f);
}

void vg_metrics_free(vg_metrics_t *m)
{
    if (!m) return;
    struct family *f = m->head;
    while (f) {
        struct family *next = f->next;
        family_free(f);
        f = next;
    }
    pthread_mutex_destroy(&m->mu);
    vg_free(m);
}

void vg_metrics_set_ready(vg_metrics_t *m, int ready)
{
    if (m) atomic_store(&m->ready, ready ? 1 : 0);
}

int vg_metrics_ready(const vg_metrics_t *m)
{
    return m ? atomic_load(&((vg_metrics_t *)m)->ready) : 0;
}

static struct family *family_get(vg_metrics_t *m, const char *name, const char *help,
                                 vg_metric_type type)
{
    for (struct family *f = m->head; f; f = f->next) {
        if (strcmp(f->name, name) != 0) continue;
        if (f->type != type)
            vg_log_warn("metrics", "metric registered as counter and gauge", "name=%s", name);
        return f;
    }
    struct family *f = vg_calloc(1, sizeof(*f));
    if (!f) return NULL;
    f->name = vg_strdup(name);
    f->help = vg_strdup(help ? help : "");
    f->type = type;
    if (!f->name || !f->help) {
        family_free(f);
        return NULL;
    }
    if (m->tail)
        m->tail->next = f;
    else
        m->head = f;
    m->tail = f;
    return f;
}

static vg_metric_t *metric_get(struct family *f, const char *labels, vg_metric_fn fn, void *ud)
{
    for (vg_metric_t *c = f->head; c; c = c->next)
        if (strcmp(c->labels, labels) == 0) return c;
    vg_metric_t *c = vg_calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->labels = vg_strdup(labels);
    if (!c->labels) {
        vg_free(c);
        return NULL;
    }
    c->fam = f;
    c->fn = fn;
    c->ud = ud;
    atomic_init(&c->bits, d2u(0.0));
    if (f->tail)
        f->tail->next = c;
    else
        f->head = c;
    f->tail = c;
    return c;
}

static vg_metric_t *get_or_create(vg_metrics_t *m, const char *name, const char *help,
                                  const char *labels, vg_metric_type type, vg_metric_fn fn,
                                  void *ud)
{
    if (!m || !name) return NULL;
    vg_metric_t *c = NULL;
    pthread_mutex_lock(&m->mu);
    struct family *f = family_get(m, name, help, type);
    if (f) c = metric_get(f, labels ? labels : "", fn, ud);
    pthread_mutex_unlock(&m->mu);
    return c;
}

vg_metric_t *vg_metrics_counter(vg_metrics_t *m, const char *name, const char *help,
                                const char *labels)
{
    return get_or_create(m, name, help, labels, VG_METRIC_COUNTER, NULL, NULL);
}

vg_metric_t *vg_metrics_gauge(vg_metrics_t *m, const char *name, const char *help,
                              const char *labels)
{
    return get_or_create(m, name, help, labels, VG_METRIC_GAUGE, NULL, NULL);
}

vg_metric_t *vg_metrics_gauge_fn(vg_metrics_t *m, const char *name, const char *help,
                                 const char *labels, vg_metric_fn fn, void *ud)
{
    return get_or_create(m, name, help, labels, VG_METRIC_GAUGE, fn, ud);
}

/* ---- text format 0.0.4 ---- */

static vg_err_t put_help(vg_buf *out, const char *help)
{
    vg_err_t rc = VG_OK;
    for (const char *p = help; *p && !rc; p++) {
        if (*p == '\\')
            rc = vg_buf_puts(out, "\\\\");
        else if (*p == '\n')
            rc = vg_buf_puts(out, "\\n");
        else
            rc = vg_buf_putc(out, *p);
    }
    return rc;
}

static vg_err_t render_family(const struct family *f, vg_buf *out)
{
    vg_err_t rc = VG_OK;
    if (f->help[0]) {
        rc = vg_buf_printf(out, "# HELP %s ", f->name);
        if (!rc) rc = put_help(out, f->help);
        if (!rc) rc = vg_buf_putc(out, '\n');
    }
    if (!rc)
        rc = vg_buf_printf(out, "# TYPE %s %s\n", f->name,
                           f->type == VG_METRIC_COUNTER ? "counter" : "gauge");
    for (const vg_metric_t *c = f->head; c && !rc; c = c->next) {
        char num[32];
        vg_fmt_float(vg_metric_value(c), num);
        if (c->labels[0])
            rc = vg_buf_printf(out, "%s{%s} %s\n", f->name, c->labels, num);
        else
            rc = vg_buf_printf(out, "%s %s\n", f->name, num);
    }
    return rc;
}

vg_err_t vg_metrics_render(vg_metrics_t *m, vg_buf *out)
{
    if (!m || !out) return VG_EINVAL;
    vg_err_t rc = VG_OK;
    pthread_mutex_lock(&m->mu);
    for (const struct family *f = m->head; f && !rc; f = f->next) rc = render_family(f, out);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* ---- Go-compatible float formatting ---- */

struct decimal {
    char d[24]; /* significant digits, no leading or trailing zeros */
    int nd;     /* number of digits; 0 for zero */
    int dp;     /* decimal point position: value = 0.d * 10^dp */
};

/* Digits of an integral v < 2^53: exact, no libc round trip needed. */
static void integer_digits(double v, struct decimal *g)
{
    char tmp[24];
    uint64_t u = (uint64_t)v;
    int n = 0;
    do tmp[n++] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    g->dp = n;
    g->nd = 0;
    while (n > 0) g->d[g->nd++] = tmp[--n];
    while (g->nd > 1 && g->d[g->nd - 1] == '0') g->nd--;
    g->d[g->nd] = '\0';
}

static int round_trips(double v, int digits, char *out, size_t n)
{
    snprintf(out, n, "%.*e", digits - 1, v);
    return strtod(out, NULL) == v;
}

/* Shortest digits that strtod reads back as v (v finite, > 0). Counters and
 * most gauges are integers, so those skip libc. Computed values (rates,
 * averages) mostly need 16 or 17 digits, so those are tried first; short
 * decimals then binary-search the precision (round-tripping is monotonic). */
static void shortest_digits(double v, struct decimal *g)
{
    if (v < 9007199254740992.0 && v == floor(v)) {
        integer_digits(v, g);
        return;
    }
    char tmp[48], probe[48];
    if (!round_trips(v, 16, tmp, sizeof(tmp))) {
        snprintf(tmp, sizeof(tmp), "%.16e", v); /* 17 digits always round-trip */
    } else if (round_trips(v, 15, probe, sizeof(probe))) {
        memcpy(tmp, probe, sizeof(tmp));
        int lo = 1, hi = 15; /* hi round-trips and tmp holds it */
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (round_trips(v, mid, probe, sizeof(probe))) {
                hi = mid;
                memcpy(tmp, probe, sizeof(tmp));
            } else {
                lo = mid + 1;
            }
        }
    }
    const char *s = tmp;
    g->nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') g->d[g->nd++] = *s;
    g->dp = (*s == 'e' ? atoi(s + 1) : 0) + 1;
    while (g->nd > 1 && g->d[g->nd - 1] == '0') g->nd--;
    g->d[g->nd] = '\0';
}

static void to_decimal(double v, struct decimal *g)
{
    g->nd = 0;
    g->dp = 0;
    g->d[0] = '\0';
    if (v != 0) shortest_digits(fabs(v), g);
}

/* %e layout: d.ddde±XX (at least two exponent digits, like Go). */
static char *fmt_e(char *o, const struct decimal *g)
{
    int exp = g->nd ? g->dp - 1 : 0;
    *o++ = g->nd ? g->d[0] : '0';
    if (g->nd > 1) {
        *o++ = '.';
        memcpy(o, g->d + 1, (size_t)g->nd - 1);
        o += g->nd - 1;
    }
    *o++ = 'e';
    *o++ = exp < 0 ? '-' : '+';
    if (exp < 0) exp = -exp;
    o += sprintf(o, "%02d", exp);
    return o;
}

/* %f layout with exactly max(nd-dp, 0) fraction digits. */
static char *fmt_f(char *o, const struct decimal *g)
{
    if (g->dp > 0) {
        for (int i = 0; i < g->dp; i++) *o++ = i < g->nd ? g->d[i] : '0';
    } else {
        *o++ = '0';
    }
    int prec = g->nd - g->dp > 0 ? g->nd - g->dp : 0;
    if (prec > 0) {
        *o++ = '.';
        for (int i = 0; i < prec; i++) {
            int j = g->dp + i;
            *o++ = j >= 0 && j < g->nd ? g->d[j] : '0';
        }
    }
    return o;
}

/* NaN / +Inf / -Inf as Go prints them; NULL for finite values. */
static const char *special(double v)
{
    if (isnan(v)) return "NaN";
    if (isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    return NULL;
}

const char *vg_fmt_float(double v, char *buf)
{
    const char *sp = special(v);
    if (sp) return strcpy(buf, sp);
    struct decimal g;
    to_decimal(v, &g);
    char *o = buf;
    if (signbit(v) && v != 0) *o++ = '-';
    int exp = g.dp - 1;
    o = (g.nd && (exp < -4 || exp >= 6)) ? fmt_e(o, &g) : fmt_f(o, &g);
    *o = '\0';
    return buf;
}

const char *vg_fmt_float_json(double v, char *buf)
{
    const char *sp = special(v);
    if (sp) return strcpy(buf, sp);
    struct decimal g;
    to_decimal(v, &g);
    char *o = buf;
    if (signbit(v)) *o++ = '-';
    /* Prometheus's jsonutil.MarshalFloat switches to 'e' outside [1e-6, 1e21). */
    double a = fabs(v);
    o = (a != 0 && (a < 1e-6 || a >= 1e21)) ? fmt_e(o, &g) : fmt_f(o, &g);
    *o = '\0';
    return buf;
}
