/*
 * template.h - Prometheus alert templates ({{ $labels.x }}, {{ $value }} ...).
 *
 * Rule labels and annotations are Go text/template strings in Prometheus.
 * We implement the subset people use: actions with pipelines, variables
 * ($labels, $value, $externalLabels, $ and $.), if/else/end, range over a
 * query result, with, and the functions humanize, humanize1024,
 * humanizeDuration, humanizePercentage, humanizeTimestamp, printf, toUpper,
 * toLower, title, reReplaceAll, query, first, value, label (plus len, index,
 * eq/ne/lt/le/gt/ge, and/or/not, match, safeHtml, stripPort, sortByLabel,
 * args, tmpl as far as they are cheap). An error renders exactly as
 * Prometheus renders it: the output becomes
 * "<error expanding template: ...>" and evaluation goes on.
 *
 * Implemented (collector/rules/template*.c): Go text/template actions, trim
 * markers, comments, pipelines, variables ($x := / =), if/else if/with/
 * range (with $i, $v, break, continue)/define/template/block, Go literals;
 * the functions above plus toTime, parseDuration, pathPrefix, externalURL,
 * graphLink, tableLink, strvalue, and Go's print, println, html, urlquery,
 * js, slice, call. Like Prometheus, tmpl is not defined in rule templates.
 * Untrusted input is capped:
 * nesting depth 64, 1M execution steps, 1 MiB of output; over a cap the
 * expansion is an error, never a crash. Thread-safe: no shared state.
 */
#ifndef VIGIL_RULES_TEMPLATE_H
#define VIGIL_RULES_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/buf.h"
#include "vigil/error.h"
#include "vigil/labels.h"

/* One sample of a `query` result: labels and value. */
typedef struct vg_tmpl_sample {
    const vg_label_t *labels;
    size_t nlabels;
    double value;
} vg_tmpl_sample;

/* Runs an instant PromQL query at the evaluation time for the `query`
 * function. Fills *out with an array the template engine frees with
 * free_fn(ud, *out, *n). Returns VG_OK or an error with a message. */
typedef vg_err_t (*vg_tmpl_query_fn)(void *ud, const char *q, vg_tmpl_sample **out, size_t *n,
                                     vg_error *err);
typedef void (*vg_tmpl_free_fn)(void *ud, vg_tmpl_sample *s, size_t n);

typedef struct vg_tmpl_data {
    const vg_label_t *labels; /* $labels */
    size_t nlabels;
    double value;                      /* $value */
    const vg_label_t *external_labels; /* $externalLabels */
    size_t nexternal_labels;
    const char *external_url; /* $externalURL */
    int64_t eval_time_ms;     /* for query */
    vg_tmpl_query_fn query;   /* NULL: `query` fails with an error */
    vg_tmpl_free_fn query_free;
    void *query_ud;
} vg_tmpl_data;

/* Check that src parses (for `vigilctl check rules`, like promtool).
 * VG_EPARSE with Go's message for a broken template. */
vg_err_t vg_tmpl_check(const char *name, const char *src, vg_error *err);

/* Expand src with d and append the result to out. A template error is NOT
 * an error return: like Prometheus, out gets
 * "<error expanding template: NAME: ...>" and VG_OK is returned; only
 * VG_ENOMEM is returned as an error (and VG_ETOOLARGE when out's own cap
 * cannot take even that message). name is used in messages (e.g.
 * "__alert_HighCPU"). d may be NULL (no labels, value 0). */
vg_err_t vg_tmpl_expand(const char *name, const char *src, const vg_tmpl_data *d, vg_buf *out);

#endif
