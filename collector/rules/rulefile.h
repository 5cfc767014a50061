/*
 * rulefile.h - Prometheus rule files: parse and validate like promtool.
 *
 * A rule file is YAML (`groups:` of named groups, each with alerting and
 * recording rules). We read it through the config document layer so every
 * message can name file:line:col, and validate it the way `promtool check
 * rules` does (same wording, so users recognise the mistakes), collecting
 * every error of a file rather than stopping at the first: an operator fixes
 * a file in one pass. The result is plain structs in one arena, so the rule
 * manager can build a new set of groups, and swap it in only when every file
 * loaded (a broken reload keeps the old rules running).
 */
#ifndef VIGIL_RULES_RULEFILE_H
#define VIGIL_RULES_RULEFILE_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/arena.h"
#include "vigil/error.h"
#include "vigil/labels.h"

/* Most errors collected per file; further ones are counted, not kept. */
#define VG_RULEFILE_MAX_ERRORS 64

typedef struct vg_rule_def {
    int alerting;     /* 1: alert, 0: record */
    const char *name; /* alert name or recorded metric name */
    const char *expr;
    int64_t for_ms;
    int64_t keep_firing_for_ms;
    vg_label_t *labels; /* sorted */
    size_t nlabels;
    vg_label_t *annotations; /* sorted */
    size_t nannotations;
    int line; /* of the rule's map, for messages */
} vg_rule_def;

typedef struct vg_rule_group_def {
    const char *file;
    const char *name;
    int64_t interval_ms;     /* 0 = the global evaluation_interval */
    int64_t query_offset_ms; /* evaluate at slot time minus this */
    uint64_t limit;          /* 0 = no limit on series per rule */
    vg_label_t *labels;      /* added to every rule's output; sorted */
    size_t nlabels;
    vg_rule_def *rules;
    size_t nrules;
} vg_rule_group_def;

typedef struct vg_rulefile {
    vg_arena_t *arena; /* owns everything here */
    const char *path;
    vg_rule_group_def *groups;
    size_t ngroups;
    const char **errors; /* "file:line:col: message" (promtool's wording) */
    size_t nerrors;
} vg_rulefile;

/* Parse and validate YAML text; name is used in messages. Always fills *out
 * (unless VG_ENOMEM) so the caller can print every error; returns VG_OK when
 * the file is valid, VG_ECONFIG when it has errors (err gets the first one).
 * Free *out with vg_rulefile_free. */
vg_err_t vg_rulefile_parse(const char *name, const char *text, size_t len, vg_rulefile **out,
                           vg_error *err);
/* Same for a file on disk (at most 16 MiB). */
vg_err_t vg_rulefile_load(const char *path, vg_rulefile **out, vg_error *err);
void vg_rulefile_free(vg_rulefile *f);
/* Number of rules in all groups. */
size_t vg_rulefile_nrules(const vg_rulefile *f);

/* Expand rule_files globs (relative ones against base_dir, which may be NULL)
 * into a sorted, de-duplicated list of paths. A pattern that matches nothing
 * is not an error (Prometheus). *out is one vg_malloc block; vg_free it. */
vg_err_t vg_rulefile_glob(const char *const *patterns, size_t n, const char *base_dir, char ***out,
                          size_t *nout, vg_error *err);

#endif
