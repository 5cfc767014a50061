/*
 * manager.h - the rule manager: loads rule files, evaluates groups on their
 * intervals, keeps alert state, writes recording-rule output and the ALERTS
 * series, and hands alerts to a sink.
 *
 * One evaluation thread serves every group: each group runs at its own
 * interval with a fixed phase (a hash of file and name, as Prometheus does),
 * so many groups do not all fire on the same second. Rules of a group run in
 * order at (slot time - query_offset), so a recording rule's output is
 * visible to later rules of the same group. State lives behind one mutex that
 * the API handlers also take; the sink is called after it is released.
 * Recording rules and ALERTS write into one tenant (opts.tenant, "default"
 * when unset).
 */
#ifndef VIGIL_RULES_MANAGER_H
#define VIGIL_RULES_MANAGER_H

#include <stddef.h>
#include <stdint.h>

#include "alerting/alert.h"
#include "promql/engine.h"
#include "tsdb/tsdb.h"
#include "vigil/buf.h"
#include "vigil/error.h"
#include "vigil/labels.h"
#include "vigil/metrics.h"

typedef struct vg_rules vg_rules_t;

typedef struct vg_rules_opts {
    vg_tsdb_t *db;                 /* required; must outlive the manager */
    const char *tenant;            /* NULL = "default" */
    const vg_promql_opts *engine;  /* NULL = engine defaults */
    vg_metrics_t *metrics;         /* NULL = no self-metrics */
    int64_t resend_delay_ms;       /* 0 = 1m */
    int64_t outage_tolerance_ms;   /* 0 = 1h */
    int64_t for_grace_period_ms;   /* 0 = 10m */
    int64_t resolved_retention_ms; /* 0 = 15m */
    int restore;                   /* restore `for` state from ALERTS_FOR_STATE on first load */
} vg_rules_opts;

/* Settings that a reload may change; strings are copied. */
typedef struct vg_rules_settings {
    int64_t default_interval_ms; /* evaluation_interval; 0 = 1m */
    const vg_label_t *external_labels;
    size_t nexternal_labels;
    const char *external_url; /* NULL = none (generatorURL left out) */
} vg_rules_settings;

/* New manager (not yet evaluating). NULL on ENOMEM or when opts->db is NULL. */
vg_rules_t *vg_rules_new(const vg_rules_opts *opts);
/* Stop the thread and free everything; NULL is a no-op. */
void vg_rules_free(vg_rules_t *m);
/* Set the alert sink (NULL = none: alerts only show in the APIs). */
void vg_rules_set_sink(vg_rules_t *m, vg_alert_sink_fn fn, void *ud);

/* Load these rule files (already glob-expanded) and swap them in. Alert
 * state of rules that survive (same file, group and rule name, same labels)
 * is kept. Any file error leaves the running rules untouched and returns
 * VG_ECONFIG with the first error (all of them are logged). */
vg_err_t vg_rules_load(vg_rules_t *m, const char *const *files, size_t nfiles,
                       const vg_rules_settings *s, vg_error *err);

struct vg_collector_config;
/* Expand cfg's rule_files (relative to the config file's directory) and
 * vg_rules_load them with its evaluation_interval and global settings. */
vg_err_t vg_rules_load_config(vg_rules_t *m, const struct vg_collector_config *cfg, vg_error *err);

/* Start the evaluation thread. */
vg_err_t vg_rules_start(vg_rules_t *m, vg_error *err);

/* Evaluate group i (in load order) once at slot time t_ms, as the thread
 * would, including restore on the first run and sending. For tests. */
vg_err_t vg_rules_eval_group(vg_rules_t *m, size_t i, int64_t t_ms);
/* Number of groups loaded. */
size_t vg_rules_ngroups(vg_rules_t *m);
/* Evaluation offset of a group inside its interval (ms), as Prometheus computes it. */
int64_t vg_rules_group_offset(const char *file, const char *name, int64_t interval_ms);

/* The data part of /api/v1/rules ({"groups":[...]}). type: NULL, "alert" or "record". */
vg_err_t vg_rules_json_rules(vg_rules_t *m, const char *type, vg_buf *out);
/* The data part of /api/v1/alerts ({"alerts":[...]}). */
vg_err_t vg_rules_json_alerts(vg_rules_t *m, vg_buf *out);

/* Go's strconv.FormatFloat(v, 'e', -1, 64): "1e+00", "2.5e-01", "NaN", "+Inf". */
char *vg_rules_fmt_value(double v, char *buf, size_t n);
/* Go's time.Time JSON form in UTC (RFC 3339 with trimmed nanoseconds). */
char *vg_rules_fmt_time(int64_t ms, char *buf, size_t n);

#endif
