/*
 * rulefile.c - parse and validate Prometheus rule files (see rulefile.h).
 *
 * Decoding walks the document tree by hand instead of through the schema
 * layer because promtool's checks are not per key: it keeps going after an
 * error, words its messages as "group \"g\", rule 2, \"X\": ...", and has
 * cross-field rules (record vs alert, fields a recording rule must not have).
 * Every error carries file:line:col of the node it is about.
 */
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promql/engine.h"
#include "rules/rulefile.h"
#include "rules/template.h"
#include "vigil/alloc.h"
#include "vigil/config.h"
#include "vigil/duration.h"

typedef struct pctx {
    vg_rulefile *f;
    const char *name;
    vg_err_t oom;
    vg_error first;
} pctx;

static void add_error(pctx *c, const vg_cfg_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_error(pctx *c, const vg_cfg_node_t *n, const char *fmt, ...)
{
    char what[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    vg_rulefile *f = c->f;
    if (f->nerrors >= VG_RULEFILE_MAX_ERRORS) return;
    char *msg = n ? vg_arena_sprintf(f->arena, "%s:%d:%d: %s", c->name, vg_cfg_node_line(n),
                                     vg_cfg_node_col(n), what)
                  : vg_arena_sprintf(f->arena, "%s: %s", c->name, what);
    if (!msg) {
        c->oom = VG_ENOMEM;
        return;
    }
    if (!f->nerrors) vg_error_set(&c->first, VG_ECONFIG, "%s", msg);
    f->errors[f->nerrors++] = msg;
}

static int check_keys(pctx *c, const vg_cfg_node_t *m, const char *const *keys, const char *type)
{
    int ok = 1;
    for (size_t i = 0; i < vg_cfg_node_len(m); i++) {
        const vg_cfg_node_t *k = vg_cfg_map_key(m, i);
        int known = 0;
        for (const char *const *p = keys; *p && !known; p++)
            known = !strcmp(*p, vg_cfg_node_text(k));
        if (!known) {
            add_error(c, k, "field %s not found in type rulefmt.%s", vg_cfg_node_text(k), type);
            ok = 0;
        }
    }
    return ok;
}

/* A copy in the file's arena: the document's strings die with it. */
static const char *keep(pctx *c, const char *s)
{
    const char *k = vg_arena_strdup(c->f->arena, s ? s : "");
    if (!k) c->oom = VG_ENOMEM;
    return k ? k : "";
}

/* A scalar's text (copied); NULL (with an error) for a map or sequence. */
static const char *scalar(pctx *c, const vg_cfg_node_t *n, const char *what)
{
    if (!n || vg_cfg_node_kind(n) == VG_CFG_NULL) return NULL;
    if (vg_cfg_node_kind(n) != VG_CFG_SCALAR) {
        add_error(c, n, "%s: expected a string", what);
        return NULL;
    }
    return keep(c, vg_cfg_node_text(n));
}

static int64_t duration(pctx *c, const vg_cfg_node_t *n, const char *what)
{
    const char *s = scalar(c, n, what);
    int64_t ms = 0;
    if (s && vg_duration_parse(s, &ms, NULL)) {
        add_error(c, n, "not a valid duration string: \"%s\"", s);
        ms = 0;
    }
    return ms;
}

static vg_label_t *string_map(pctx *c, const vg_cfg_node_t *n, const char *what, size_t *count)
{
    *count = 0;
    if (!n || vg_cfg_node_kind(n) == VG_CFG_NULL) return NULL;
    if (vg_cfg_node_kind(n) != VG_CFG_MAP) {
        add_error(c, n, "%s: expected a map of strings", what);
        return NULL;
    }
    size_t len = vg_cfg_node_len(n);
    vg_label_t *l = vg_arena_calloc(c->f->arena, (len ? len : 1) * sizeof *l);
    if (!l) {
        c->oom = VG_ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        const char *v = scalar(c, vg_cfg_map_value(n, i), what);
        l[*count].name = keep(c, vg_cfg_node_text(vg_cfg_map_key(n, i)));
        l[*count].value = v ? v : "";
        (*count)++;
    }
    vg_labels_sort(l, *count);
    return l;
}

static const char *const rule_keys[] = {"record",          "alert",  "expr",        "for",
                                        "keep_firing_for", "labels", "annotations", NULL};
static const char *const group_keys[] = {"name",  "interval", "query_offset", "limit", "labels",
                                         "rules", NULL};

typedef struct rulepos {
    const char *group;
    size_t index;
    const char *name;
} rulepos;

#define RP_FMT     "group \"%s\", rule %zu, \"%s\": "
#define RP_ARGS(p) (p)->group, (p)->index, (p)->name

static void check_expr(pctx *c, const vg_cfg_node_t *n, const rulepos *p, const char *expr)
{
    vg_promql_expr_t *e = NULL;
    vg_error err = {0};
    vg_err_t rc = vg_promql_parse(expr, strlen(expr), &e, &err);
    if (rc == VG_ENOMEM) c->oom = rc;
    if (rc)
        add_error(c, n, RP_FMT "could not parse expression: %s", RP_ARGS(p),
                  vg_error_msg(&err, rc));
    vg_promql_expr_free(e);
}

static void check_templates(pctx *c, const vg_cfg_node_t *n, const rulepos *p, const vg_label_t *l,
                            size_t nl, const char *kind)
{
    char tname[300];
    snprintf(tname, sizeof tname, "__alert_%s", p->name);
    for (size_t i = 0; i < nl; i++) {
        vg_error err = {0};
        vg_err_t rc = vg_tmpl_check(tname, l[i].value, &err);
        if (rc == VG_ENOMEM) c->oom = rc;
        if (rc)
            add_error(c, vg_cfg_map_get(n, l[i].name), RP_FMT "%s \"%s\": %s", RP_ARGS(p), kind,
                      l[i].name, vg_error_msg(&err, rc));
    }
}

static void check_names(pctx *c, const vg_cfg_node_t *n, const rulepos *p, const vg_label_t *l,
                        size_t nl, const char *kind, int allow_name)
{
    for (size_t i = 0; i < nl; i++) {
        int bad = !vg_label_name_valid(l[i].name, strlen(l[i].name)) ||
                  (!allow_name && !strcmp(l[i].name, VG_METRIC_NAME));
        if (bad)
            add_error(c, vg_cfg_map_get(n, l[i].name), RP_FMT "invalid %s name: %s", RP_ARGS(p),
                      kind, l[i].name);
    }
}

/* The record/alert exclusivity and the fields a recording rule may not have. */
static void check_shape(pctx *c, const vg_cfg_node_t *m, const rulepos *p, const vg_cfg_node_t *rec,
                        const vg_cfg_node_t *alert)
{
    if (rec && alert)
        add_error(c, alert, RP_FMT "only one of 'record' and 'alert' must be set", RP_ARGS(p));
    if (!rec && !alert)
        add_error(c, m, RP_FMT "one of 'record' or 'alert' must be set", RP_ARGS(p));
    const char *expr = scalar(c, vg_cfg_map_get(m, "expr"), "expr");
    if (!expr || !*expr) add_error(c, m, RP_FMT "field 'expr' must be set in rule", RP_ARGS(p));
    if (!rec || alert) return;
    static const char *const no[] = {"annotations", "for", "keep_firing_for"};
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (vg_cfg_map_get(m, no[i]))
            add_error(c, rec, RP_FMT "invalid field '%s' in recording rule", RP_ARGS(p), no[i]);
}

static void parse_rule(pctx *c, const vg_cfg_node_t *m, const char *group, size_t index,
                       vg_rule_def *r)
{
    rulepos p = {group, index, ""};
    r->line = vg_cfg_node_line(m);
    if (vg_cfg_node_kind(m) != VG_CFG_MAP) {
        add_error(c, m, "group \"%s\", rule %zu: expected a map", group, index);
        return;
    }
    if (!check_keys(c, m, rule_keys, "RuleNode")) return;
    const vg_cfg_node_t *rec = vg_cfg_map_get(m, "record"), *alert = vg_cfg_map_get(m, "alert");
    const char *rs = scalar(c, rec, "record"), *as = scalar(c, alert, "alert");
    if (!rs || !*rs) rec = NULL; /* "record:" with no value (or not a string) is not set */
    if (!as || !*as) alert = NULL;
    r->alerting = alert != NULL;
    r->name = alert ? as : rec ? rs : "";
    p.name = r->name;
    check_shape(c, m, &p, rec, alert);
    const vg_cfg_node_t *en = vg_cfg_map_get(m, "expr");
    r->expr = scalar(c, en, "expr");
    if (r->expr && *r->expr) check_expr(c, en, &p, r->expr);
    if (!r->expr) r->expr = "";
    if (rec && !alert && !vg_metric_name_valid(rs, strlen(rs)))
        add_error(c, rec, RP_FMT "invalid recording rule name: %s", RP_ARGS(&p), rs);
    r->for_ms = duration(c, vg_cfg_map_get(m, "for"), "for");
    r->keep_firing_for_ms = duration(c, vg_cfg_map_get(m, "keep_firing_for"), "keep_firing_for");
    const vg_cfg_node_t *ln = vg_cfg_map_get(m, "labels"), *an = vg_cfg_map_get(m, "annotations");
    r->labels = string_map(c, ln, "labels", &r->nlabels);
    r->annotations = string_map(c, an, "annotations", &r->nannotations);
    check_names(c, ln, &p, r->labels, r->nlabels, "label", 0);
    check_names(c, an, &p, r->annotations, r->nannotations, "annotation", 1);
    if (!r->alerting) return;
    check_templates(c, ln, &p, r->labels, r->nlabels, "label");
    check_templates(c, an, &p, r->annotations, r->nannotations, "annotation");
}

static void parse_group_fields(pctx *c, const vg_cfg_node_t *m, vg_rule_group_def *g)
{
    g->interval_ms = duration(c, vg_cfg_map_get(m, "interval"), "interval");
    g->query_offset_ms = duration(c, vg_cfg_map_get(m, "query_offset"), "query_offset");
    const vg_cfg_node_t *ln = vg_cfg_map_get(m, "limit");
    const char *lim = scalar(c, ln, "limit");
    if (lim) {
        char *end;
        long long v = strtoll(lim, &end, 10);
        if (!*lim || *end || v < 0)
            add_error(c, ln, "cannot unmarshal !!str `%s` into int", lim);
        else
            g->limit = (uint64_t)v;
    }
    const vg_cfg_node_t *lb = vg_cfg_map_get(m, "labels");
    g->labels = string_map(c, lb, "labels", &g->nlabels);
    rulepos p = {g->name, 0, ""};
    for (size_t i = 0; i < g->nlabels; i++)
        if (!vg_label_name_valid(g->labels[i].name, strlen(g->labels[i].name)) ||
            !strcmp(g->labels[i].name, VG_METRIC_NAME))
            add_error(c, vg_cfg_map_get(lb, g->labels[i].name),
                      "group \"%s\": invalid label name: %s", p.group, g->labels[i].name);
}

static void parse_group(pctx *c, const vg_cfg_node_t *m, vg_rule_group_def *g, size_t gi)
{
    vg_rulefile *f = c->f;
    g->file = f->path;
    g->name = "";
    if (vg_cfg_node_kind(m) != VG_CFG_MAP) {
        add_error(c, m, "groups[%zu]: expected a map", gi);
        return;
    }
    if (!check_keys(c, m, group_keys, "RuleGroup")) return;
    const vg_cfg_node_t *nn = vg_cfg_map_get(m, "name");
    const char *name = scalar(c, nn, "name");
    g->name = name ? name : "";
    if (!*g->name) add_error(c, nn ? nn : m, "Groupname must not be empty");
    for (size_t j = 0; j < gi && *g->name; j++)
        if (!strcmp(f->groups[j].name, g->name)) {
            add_error(c, nn, "groupname: \"%s\" is repeated in the same file", g->name);
            break;
        }
    parse_group_fields(c, m, g);
    const vg_cfg_node_t *rules = vg_cfg_map_get(m, "rules");
    if (rules && vg_cfg_node_kind(rules) != VG_CFG_SEQ && vg_cfg_node_kind(rules) != VG_CFG_NULL) {
        add_error(c, rules, "group \"%s\": rules: expected a sequence", g->name);
        return;
    }
    size_t n = vg_cfg_node_len(rules);
    g->rules = vg_arena_calloc(f->arena, (n ? n : 1) * sizeof *g->rules);
    if (!g->rules) {
        c->oom = VG_ENOMEM;
        return;
    }
    for (size_t i = 0; i < n && !c->oom; i++)
        parse_rule(c, vg_cfg_seq_item(rules, i), g->name, i + 1, &g->rules[g->nrules++]);
}

static void parse_root(pctx *c, const vg_cfg_node_t *root)
{
    static const char *const top_keys[] = {"groups", NULL};
    if (vg_cfg_node_kind(root) == VG_CFG_NULL) return;
    if (vg_cfg_node_kind(root) != VG_CFG_MAP) {
        add_error(c, root, "expected a map with a 'groups' key");
        return;
    }
    if (!check_keys(c, root, top_keys, "RuleGroups")) return;
    const vg_cfg_node_t *gs = vg_cfg_map_get(root, "groups");
    if (gs && vg_cfg_node_kind(gs) != VG_CFG_SEQ && vg_cfg_node_kind(gs) != VG_CFG_NULL) {
        add_error(c, gs, "groups: expected a sequence");
        return;
    }
    size_t n = vg_cfg_node_len(gs);
    c->f->groups = vg_arena_calloc(c->f->arena, (n ? n : 1) * sizeof *c->f->groups);
    if (!c->f->groups) {
        c->oom = VG_ENOMEM;
        return;
    }
    for (size_t i = 0; i < n && !c->oom; i++) {
        parse_group(c, vg_cfg_seq_item(gs, i), &c->f->groups[i], i);
        c->f->ngroups++;
    }
}

static vg_rulefile *rulefile_new(const char *name)
{
    vg_rulefile *f = vg_calloc(1, sizeof *f);
    if (!f) return NULL;
    f->arena = vg_arena_new(0);
    f->path = f->arena ? vg_arena_strdup(f->arena, name) : NULL;
    f->errors = f->path ? vg_arena_calloc(f->arena, VG_RULEFILE_MAX_ERRORS * sizeof(char *)) : NULL;
    if (!f->errors) {
        vg_rulefile_free(f);
        return NULL;
    }
    return f;
}

/* Run the checks over a parsed document (doc NULL: the YAML itself failed with perr). */
static vg_err_t finish(vg_rulefile *f, const vg_cfg_doc_t *doc, const vg_error *perr, vg_err_t prc,
                       vg_rulefile **out, vg_error *err)
{
    pctx c = {.f = f, .name = f->path};
    if (prc == VG_ENOMEM) c.oom = prc;
    if (!doc && !c.oom) {
        /* The document layer already says file:line:col. */
        f->errors[f->nerrors] = vg_arena_strdup(f->arena, vg_error_msg(perr, prc));
        if (!f->errors[f->nerrors])
            c.oom = VG_ENOMEM;
        else
            f->nerrors++;
        vg_error_set(&c.first, prc, "%s", vg_error_msg(perr, prc));
    }
    if (doc && !c.oom) parse_root(&c, vg_cfg_doc_root(doc));
    if (c.oom) {
        vg_rulefile_free(f);
        return vg_error_set(err, VG_ENOMEM, "%s: out of memory", c.name);
    }
    *out = f;
    if (!f->nerrors) return VG_OK;
    if (err) *err = c.first;
    return VG_ECONFIG;
}

vg_err_t vg_rulefile_parse(const char *name, const char *text, size_t len, vg_rulefile **out,
                           vg_error *err)
{
    *out = NULL;
    vg_rulefile *f = rulefile_new(name);
    if (!f) return vg_error_set(err, VG_ENOMEM, "out of memory");
    vg_cfg_doc_t *doc = NULL;
    vg_error perr = {0};
    vg_err_t prc = vg_cfg_doc_parse(name, text, len, &doc, &perr);
    vg_err_t rc = finish(f, doc, &perr, prc, out, err);
    vg_cfg_doc_free(doc);
    return rc;
}

vg_err_t vg_rulefile_load(const char *path, vg_rulefile **out, vg_error *err)
{
    *out = NULL;
    vg_rulefile *f = rulefile_new(path);
    if (!f) return vg_error_set(err, VG_ENOMEM, "out of memory");
    vg_cfg_doc_t *doc = NULL;
    vg_error perr = {0};
    vg_err_t prc = vg_cfg_doc_load(path, &doc, &perr);
    vg_err_t rc = finish(f, doc, &perr, prc, out, err);
    vg_cfg_doc_free(doc);
    return rc;
}

void vg_rulefile_free(vg_rulefile *f)
{
    if (!f) return;
    vg_arena_free(f->arena);
    vg_free(f);
}

size_t vg_rulefile_nrules(const vg_rulefile *f)
{
    size_t n = 0;
    for (size_t i = 0; f && i < f->ngroups; i++) n += f->groups[i].nrules;
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Paths of gl joined into one block: pointer array then the strings. */
static vg_err_t pack_paths(char **paths, size_t n, char ***out, size_t *nout, vg_error *err)
{
    size_t bytes = (n + 1) * sizeof(char *);
    for (size_t i = 0; i < n; i++) bytes += strlen(paths[i]) + 1;
    char **o = vg_malloc(bytes);
    if (!o) return vg_error_set(err, VG_ENOMEM, "out of memory");
    char *s = (char *)(o + n + 1);
    size_t k = 0;
    if (n > 1) qsort(paths, n, sizeof *paths, cmp_str); /* qsort(NULL, 0) is UB */
    for (size_t i = 0; i < n; i++) {
        if (k && !strcmp(o[k - 1], paths[i])) continue;
        o[k++] = strcpy(s, paths[i]);
        s += strlen(paths[i]) + 1;
    }
    o[k] = NULL;
    *out = o;
    *nout = k;
    return VG_OK;
}

vg_err_t vg_rulefile_glob(const char *const *patterns, size_t n, const char *base_dir, char ***out,
                          size_t *nout, vg_error *err)
{
    glob_t gl = {0};
    vg_err_t rc = VG_OK;
    int flags = 0;
    *out = NULL;
    *nout = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        char pat[4096];
        const char *p = patterns[i];
        if (p[0] != '/' && base_dir && *base_dir)
            snprintf(pat, sizeof pat, "%s/%s", base_dir, p);
        else
            snprintf(pat, sizeof pat, "%s", p);
        int g = glob(pat, flags, NULL, &gl);
        if (g == GLOB_NOSPACE)
            rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        else if (g == GLOB_ABORTED)
            rc = vg_error_set(err, VG_EIO, "%s: cannot read directory", pat);
        if (g == 0 || gl.gl_pathc) flags = GLOB_APPEND;
    }
    if (!rc) rc = pack_paths(gl.gl_pathv, flags ? gl.gl_pathc : 0, out, nout, err);
    if (flags) globfree(&gl);
    return rc;
}
