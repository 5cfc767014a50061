/*
 * labels.h - label sets, interned strings, series ids and label matchers.
 *
 * A label set is a plain array of (name, value) pairs sorted by name, with
 * __name__ as an ordinary label. Sorting once at the edge makes equality a
 * memcmp-style walk and the hash stable. The series id is XXH3-64 over
 * "name\xffvalue\xff..." so it does not depend on how the set was built.
 * Strings that live long (in the TSDB head) are interned in a vg_strtab so
 * each distinct name or value is stored once and compared by pointer.
 */
#ifndef VIGIL_LABELS_H
#define VIGIL_LABELS_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/buf.h"
#include "vigil/error.h"

#define VG_METRIC_NAME "__name__"

typedef struct vg_label {
    const char *name;
    const char *value;
} vg_label_t;

/* ---- interning ---- */
typedef struct vg_strtab vg_strtab_t;

/* New thread-safe intern table; NULL on ENOMEM. */
vg_strtab_t *vg_strtab_new(void);
void vg_strtab_free(vg_strtab_t *t);
/* Canonical copy of s[0..len), owned by the table; NULL on ENOMEM.
 * Two calls with equal strings return the same pointer. */
const char *vg_strtab_intern(vg_strtab_t *t, const char *s, size_t len);
/* Number of distinct strings, and their bytes incl. NULs (self-metrics). */
size_t vg_strtab_count(const vg_strtab_t *t);
size_t vg_strtab_bytes(const vg_strtab_t *t);

/* ---- label sets ---- */
/* Sort in place by name (then value). */
void vg_labels_sort(vg_label_t *l, size_t n);
/* Check a sorted set: names valid ([a-zA-Z_][a-zA-Z0-9_]*), sorted, no duplicates,
 * no empty values (Prometheus drops those; caller should have), values valid
 * UTF-8, __name__ a valid metric name. VG_EINVAL + message. */
vg_err_t vg_labels_validate(const vg_label_t *l, size_t n, vg_error *err);
/* True if name is a valid label name / metric name. */
int vg_label_name_valid(const char *s, size_t n);
int vg_metric_name_valid(const char *s, size_t n);
/* Series id of a sorted set. */
uint64_t vg_labels_hash(const vg_label_t *l, size_t n);
/* Compare two sorted sets like Prometheus labels.Compare: <0, 0, >0. */
int vg_labels_cmp(const vg_label_t *a, size_t na, const vg_label_t *b, size_t nb);
/* Value of name in a sorted set, or NULL. */
const char *vg_labels_get(const vg_label_t *l, size_t n, const char *name);
/* Append the text-exposition form to buf: name{a="b",c="d"} (no spaces, the
 * __name__ value first and left out of the braces, values escaped \\ \" \n);
 * "name" alone when there are no other labels, {a="b"} or {} without a name. */
vg_err_t vg_labels_format(const vg_label_t *l, size_t n, vg_buf *buf);

/* ---- matchers (PromQL selector semantics) ---- */
typedef enum vg_match_op {
    VG_MATCH_EQ,  /* =  */
    VG_MATCH_NEQ, /* != */
    VG_MATCH_RE,  /* =~ fully anchored */
    VG_MATCH_NRE, /* !~ fully anchored */
} vg_match_op;

typedef struct vg_matcher vg_matcher_t;

/* New matcher; compiles the regex (anchored, dotall, JIT). The strings are copied.
 * VG_EINVAL with a message for a bad regex. Caller frees with vg_matcher_free. */
vg_err_t vg_matcher_new(vg_match_op op, const char *name, const char *value, vg_matcher_t **out,
                        vg_error *err);
void vg_matcher_free(vg_matcher_t *m);
/* Does value (NULL or "" for an absent label) satisfy the matcher? Thread-safe. */
int vg_matcher_matches(const vg_matcher_t *m, const char *value);
const char *vg_matcher_name(const vg_matcher_t *m);
const char *vg_matcher_value(const vg_matcher_t *m);
vg_match_op vg_matcher_op(const vg_matcher_t *m);
/* True when the matcher matches the empty string (so it also selects series lacking the label). */
int vg_matcher_matches_empty(const vg_matcher_t *m);

#endif
