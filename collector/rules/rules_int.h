/*
 * rules_int.h - the rule manager's private structs, shared by manager.c
 * (lifecycle, loading, the thread), group.c (one group's evaluation and the
 * series it writes), alert_rule.c (the alert state machine), record_rule.c
 * and rules_api.c (the JSON the API serves).
 */
#ifndef VIGIL_RULES_INT_H
#define VIGIL_RULES_INT_H

#include <pthread.h>

#include "rules/manager.h"
#include "rules/rulefile.h"

enum { HEALTH_UNKNOWN, HEALTH_OK, HEALTH_ERR };
enum { ALERT_INACTIVE, ALERT_PENDING, ALERT_FIRING };

/* A label set in one vg_malloc block (array then strings). */
typedef struct lset {
    vg_label_t *l;
    size_t n;
    uint64_t hash;
} lset;

typedef struct alert_inst {
    lset labels, annotations;
    int state;
    double value;
    int64_t active_at, fired_at, resolved_at, last_sent_at, valid_until, keep_firing_since;
} alert_inst;

/* Series written by the last evaluation, for staleness markers. */
typedef struct series_memo {
    lset *s;
    size_t n;
} series_memo;

typedef struct rule {
    const vg_rule_def *def; /* labels here already include the group's */
    vg_label_t *labels;     /* group labels merged with the rule's, sorted */
    size_t nlabels;
    const char *query; /* canonical form of expr (Prometheus prints that) */
    int health;
    char last_error[512];
    int64_t last_eval_ms;
    double eval_seconds;
    alert_inst *alerts;
    size_t nalerts;
    int restored;
    series_memo prev;
} rule;

typedef struct group {
    const vg_rule_group_def *def;
    int64_t interval_ms;
    rule *rules;
    size_t nrules;
    int64_t last_eval_ms, next_ms;
    double eval_seconds;
    int restore;
    vg_metric_t *m_evals, *m_fails, *m_duration, *m_missed;
} group;

/* One loaded generation of rules: the files and the groups built on them. */
typedef struct ruleset {
    vg_rulefile **files;
    size_t nfiles;
    group *groups;
    size_t ngroups;
} ruleset;

struct vg_rules {
    vg_rules_opts o;
    const char *tenant;
    vg_promql_engine_t *engine;
    vg_tsdb_queryable tq;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int running, stop, loaded_once;
    ruleset *rs;
    /* settings (owned copies) */
    int64_t default_interval_ms;
    lset external_labels;
    char *external_url;
    vg_alert_sink_fn sink;
    void *sink_ud;
    vg_metric_t *m_evals, *m_fails, *m_loads, *m_load_fails;
};

/* lset helpers (manager.c). */
vg_err_t vg_rules__lset_make(lset *s, const vg_label_t *l, size_t n);
void vg_rules__lset_free(lset *s);
void vg_rules__memo_free(series_memo *m);
/* Sorted copy of base with sets applied (an empty value deletes), name set
 * (when not NULL) and __name__ dropped when drop_name. Result in *out. */
vg_err_t vg_rules__relabel(const vg_label_t *base, size_t nb, const vg_label_t *sets, size_t ns,
                           const char *name_label, const char *name_value, int drop_name,
                           lset *out);

/* Most labels an alert may have for its ALERTS_FOR_STATE lookup. */
#define VG_RULES_MAX_RESTORE_LABELS 64

/* Instant query at t through the manager's engine; a vector or scalar result. */
vg_err_t vg_rules__query_vector(vg_rules_t *m, const char *q, int64_t t, vg_promql_result **out,
                                vg_error *err);

/* group.c */
vg_err_t vg_rules__eval_group(vg_rules_t *m, group *g, int64_t slot_ms);
void vg_rules__send(vg_rules_t *m, group *g, int64_t now_ms);
/* Append output at t to the store, and stale markers for series of
 * memo that are not in out; memo then holds out (ownership moves). */
void vg_rules__write(vg_rules_t *m, series_memo *memo, lset *out, const double *v, size_t n,
                     int64_t t_ms);

/* record_rule.c / alert_rule.c: evaluate at t (already minus query_offset);
 * VG_OK or an error message in err (the rule's lastError). */
vg_err_t vg_rules__eval_record(vg_rules_t *m, group *g, rule *r, int64_t t_ms, vg_error *err);
vg_err_t vg_rules__eval_alert(vg_rules_t *m, group *g, rule *r, int64_t t_ms, vg_error *err);
/* Restore pending/firing `for` state from ALERTS_FOR_STATE (alert_rule.c). */
void vg_rules__restore(vg_rules_t *m, group *g, rule *r, int64_t now_ms);

#endif
