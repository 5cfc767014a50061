/*
 * metrics.h - self-metrics: counters and gauges served on /metrics.
 *
 * Each process keeps one registry. A metric is identified by name plus a
 * fixed label string ('reason="bad_json"'), registered once at start-up and
 * then updated lock-free with atomics on the hot path. Rendering takes the
 * registry lock only to walk the list, and emits HELP/TYPE once per family
 * in the Prometheus text format 0.0.4.
 */
#ifndef VIGIL_METRICS_H
#define VIGIL_METRICS_H

#include <stdint.h>

#include "vigil/buf.h"
#include "vigil/error.h"

typedef struct vg_metrics vg_metrics_t;
typedef struct vg_metric vg_metric_t;

typedef enum vg_metric_type { VG_METRIC_COUNTER, VG_METRIC_GAUGE } vg_metric_type;

/* Callback gauge: computed at render time (e.g. series count). */
typedef double (*vg_metric_fn)(void *ud);

vg_metrics_t *vg_metrics_new(void);
void vg_metrics_free(vg_metrics_t *m);

/* Get or create a metric. labels is "" / NULL or a rendered set like
 * 'reason="x",tenant="y"' (without braces). Same name+labels return the same
 * handle. NULL only on ENOMEM; the update functions accept NULL and do nothing. */
vg_metric_t *vg_metrics_counter(vg_metrics_t *m, const char *name, const char *help,
                                const char *labels);
vg_metric_t *vg_metrics_gauge(vg_metrics_t *m, const char *name, const char *help,
                              const char *labels);
vg_metric_t *vg_metrics_gauge_fn(vg_metrics_t *m, const char *name, const char *help,
                                 const char *labels, vg_metric_fn fn, void *ud);

void vg_metric_inc(vg_metric_t *c);
void vg_metric_add(vg_metric_t *c, double v);
void vg_metric_set(vg_metric_t *g, double v);
double vg_metric_value(const vg_metric_t *c);

/* Append every metric in text format 0.0.4, grouped by family. */
vg_err_t vg_metrics_render(vg_metrics_t *m, vg_buf *out);

/* Format a float as Prometheus does in text and JSON (Go's 'g'-style shortest
 * round-trip repr; NaN, +Inf, -Inf). buf needs 32 bytes. Returns buf.
 * Like Prometheus's text writer, -0 is written "0". */
const char *vg_fmt_float(double v, char *buf);

/* Bytes vg_fmt_float_json may write, NUL included (5e-324 has 327 characters). */
#define VG_FMT_FLOAT_JSON_SIZE 344

/* Float in a Prometheus JSON API response, as its jsonutil.MarshalFloat
 * writes it: Go's FormatFloat(v, 'f', -1, 64), but 'e' when |v| < 1e-6 or
 * |v| >= 1e21 (1e21 -> "1e+21", 1e-7 -> "1e-07", -0 -> "-0"); NaN, +Inf,
 * -Inf. buf needs VG_FMT_FLOAT_JSON_SIZE bytes. Returns buf. */
const char *vg_fmt_float_json(double v, char *buf);

/* Readiness flag served on /-/ready (503 until set to non-zero). */
void vg_metrics_set_ready(vg_metrics_t *m, int ready);
int vg_metrics_ready(const vg_metrics_t *m);

struct vg_httpd;
/* Register GET /metrics (text format 0.0.4), GET /-/healthy (always 200 "OK")
 * and GET /-/ready (200 "OK" once vg_metrics_set_ready(m, 1), else 503) on h,
 * before vg_httpd_start. m must outlive h. (common/metrics_http.c) */
vg_err_t vg_metrics_serve(vg_metrics_t *m, struct vg_httpd *h);

#endif
