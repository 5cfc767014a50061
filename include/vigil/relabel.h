/*
 * relabel.h - Prometheus relabeling (relabel_configs, metric_relabel_configs).
 *
 * A list of rules is compiled once, at config load, into an opaque
 * vg_relabel_t: regexes are compiled with PCRE2 (fully anchored, '.' matches
 * newline, JIT), replacement templates are pre-split into literal and
 * capture-group parts, and every rule is validated with Prometheus's own
 * messages. Applying the list to a label set then costs no malloc: the set is
 * edited in place in the caller's array, and new strings (joined source
 * values, expanded replacements) come from a scratch arena that the caller
 * resets per sample or per scrape. A compiled list is read-only and may be
 * applied from several threads at once.
 *
 * Semantics are Prometheus's model/relabel: actions replace, keep, drop,
 * keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep, lowercase,
 * uppercase; defaults separator ";", regex "(.*)", replacement "$1", action
 * replace; "$1", "${1}" and "${name}" expand like Go's regexp.Expand (an
 * unknown group expands to ""); a value that becomes "" deletes the label.
 */
#ifndef VIGIL_RELABEL_H
#define VIGIL_RELABEL_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/arena.h"
#include "vigil/error.h"
#include "vigil/labels.h"

/* Most labels a set may grow to while relabeling (labelmap can double it). */
#define VG_RELABEL_MAX_LABELS 4096

/* One rule as written in YAML. NULL strings mean "not set" (the default);
 * "" is an explicit empty value. */
typedef struct vg_relabel_rule {
    const char **source_labels;
    size_t nsource_labels;
    const char *separator;    /* NULL = ";" */
    const char *regex;        /* NULL = "(.*)" */
    uint64_t modulus;         /* hashmod only */
    const char *target_label; /* NULL = "" */
    const char *replacement;  /* NULL = "$1" */
    const char *action;       /* NULL = "replace"; case-insensitive */
} vg_relabel_rule_t;

/* Where vg_relabel_new found a problem: rule index and the offending key
 * ("action", "regex", "target_label", "replacement", "modulus", ...). */
typedef struct vg_relabel_where {
    size_t index;
    const char *field;
} vg_relabel_where_t;

typedef struct vg_relabel vg_relabel_t;

typedef enum vg_relabel_result {
    VG_RELABEL_DROP = 0, /* the set was dropped (keep/drop/keepequal/dropequal) */
    VG_RELABEL_KEEP = 1, /* keep the (possibly changed) set */
    VG_RELABEL_ERROR = 2 /* scratch arena exhausted or the set outgrew cap; set is undefined */
} vg_relabel_result;

/* Compile n rules (copied; rules may be freed afterwards). n == 0 gives a valid
 * list that keeps everything. VG_ECONFIG with Prometheus's message and *where
 * (may be NULL) set on an invalid rule; VG_ENOMEM. Free with vg_relabel_free. */
vg_err_t vg_relabel_new(const vg_relabel_rule_t *rules, size_t n, vg_relabel_t **out,
                        vg_relabel_where_t *where, vg_error *err);
/* Free a compiled list. NULL is a no-op. */
void vg_relabel_free(vg_relabel_t *r);
/* Number of rules (0 for NULL). */
size_t vg_relabel_count(const vg_relabel_t *r);
/* Array size that is always enough to apply r to a set of n labels
 * (saturates at VG_RELABEL_MAX_LABELS). */
size_t vg_relabel_cap(const vg_relabel_t *r, size_t n);
/* Apply the rules in order to labels[0..*n), which must be sorted by name with
 * unique names; on KEEP the result is sorted too and *n updated. The array has
 * room for cap labels. New strings live in scratch (which must outlive the
 * result); label strings are otherwise borrowed. NULL r keeps everything. */
vg_relabel_result vg_relabel_apply(const vg_relabel_t *r, vg_label_t *labels, size_t *n, size_t cap,
                                   vg_arena_t *scratch);

#endif
