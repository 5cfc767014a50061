/*
 * config.c - YAML documents with positions, and schema-driven decoding.
 *
 * libyaml's own document API loses nothing we need, but it expands nothing
 * either and offers no place to refuse duplicate keys or weigh aliases, so we
 * build a small tree from the event stream instead: every node carries its
 * line/column, maps are checked for duplicate keys when they close, and an
 * alias is shared (not copied) but counted at its full expanded weight so the
 * decode work stays bounded by VG_CFG_MAX_NODES.
 *
 * Decoding walks a schema table (see config.h). It first checks every key of
 * the map against the table, so a typo is reported before anything else,
 * then visits the table in order, which lets later sections see earlier ones
 * (scrape_configs after global) and gives defaults a single code path: a
 * default is just YAML text run through the same converter as user input.
 */
#include "vigil/config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "vigil/alloc.h"
#include "vigil/duration.h"

struct vg_cfg_node {
    vg_cfg_kind kind;
    int line, col;
    int open;              /* container still being built (alias to it = cycle) */
    const char *text;      /* scalar and null: the text as written */
    vg_cfg_node_t **items; /* seq: n items; map: n key/value pairs as 2n entries */
    size_t n;
    size_t weight; /* nodes this expands to, aliases included */
};

struct vg_cfg_doc {
    vg_arena_t *arena;
    char *name;
    vg_cfg_node_t *root;
};

/* ================================================================
 * Building the tree from libyaml events
 * ================================================================ */

struct frame {
    vg_cfg_node_t *node;
    vg_cfg_node_t **items; /* heap, grown with vg_realloc, copied into the arena at the end */
    size_t n, cap;
};

struct anchor {
    char *name;
    vg_cfg_node_t *node;
};

struct builder {
    vg_cfg_doc_t *doc;
    vg_error *err;
    struct frame stack[VG_CFG_MAX_DEPTH];
    int depth;
    struct anchor *anchors;
    size_t nanchors, capanchors;
    int ndocs;
};

static vg_err_t at_mark(struct builder *b, yaml_mark_t m, vg_err_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static vg_err_t at_mark(struct builder *b, yaml_mark_t m, vg_err_t code, const char *fmt, ...)
{
    char what[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return vg_error_set(b->err, code, "%s:%zu:%zu: %s", b->doc->name, m.line + 1, m.column + 1,
                        what);
}

static int is_null_text(const char *s)
{
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static vg_cfg_node_t *node_new(struct builder *b, vg_cfg_kind kind, yaml_mark_t m)
{
    vg_cfg_node_t *n = vg_arena_calloc(b->doc->arena, sizeof *n);
    if (!n) return NULL;
    n->kind = kind;
    n->line = (int)(m.line + 1);
    n->col = (int)(m.column + 1);
    n->weight = 1;
    return n;
}

static vg_err_t add_anchor(struct builder *b, const yaml_char_t *name, vg_cfg_node_t *n)
{
    if (!name) return VG_OK;
    if (b->nanchors == b->capanchors) {
        size_t cap = b->capanchors ? b->capanchors * 2 : 16;
        struct anchor *a = vg_realloc(b->anchors, cap * sizeof *a);
        if (!a) return vg_error_set(b->err, VG_ENOMEM, "out of memory parsing %s", b->doc->name);
        b->anchors = a;
        b->capanchors = cap;
    }
    char *copy = vg_strdup((const char *)name);
    if (!copy) return vg_error_set(b->err, VG_ENOMEM, "out of memory parsing %s", b->doc->name);
    b->anchors[b->nanchors].name = copy;
    b->anchors[b->nanchors++].node = n;
    return VG_OK;
}

/* Attach a finished node to the open container, or make it the root. */
static vg_err_t add_child(struct builder *b, vg_cfg_node_t *n, yaml_mark_t m)
{
    if (b->depth == 0) {
        b->doc->root = n;
        return VG_OK;
    }
    struct frame *f = &b->stack[b->depth - 1];
    if (f->node->kind == VG_CFG_MAP && f->n % 2 == 0 && n->kind != VG_CFG_SCALAR)
        return at_mark(b, m, VG_ECONFIG, "a mapping key must be a non-empty string");
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        vg_cfg_node_t **it = vg_realloc(f->items, cap * sizeof *it);
        if (!it) return vg_error_set(b->err, VG_ENOMEM, "out of memory parsing %s", b->doc->name);
        f->items = it;
        f->cap = cap;
    }
    f->items[f->n++] = n;
    f->node->weight += n->weight;
    if (f->node->weight > VG_CFG_MAX_NODES)
        return at_mark(b, m, VG_ETOOLARGE, "document too large (over %u nodes, aliases expanded)",
                       VG_CFG_MAX_NODES);
    return VG_OK;
}

static vg_err_t on_scalar(struct builder *b, const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    if (strlen(v) != len)
        return at_mark(b, ev->start_mark, VG_ECONFIG, "strings must not contain NUL characters");
    int plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    vg_cfg_node_t *n =
        node_new(b, plain && is_null_text(v) ? VG_CFG_NULL : VG_CFG_SCALAR, ev->start_mark);
    if (!n || !(n->text = vg_arena_strndup(b->doc->arena, v, len)))
        return vg_error_set(b->err, VG_ENOMEM, "out of memory parsing %s", b->doc->name);
    vg_err_t rc = add_anchor(b, ev->data.scalar.anchor, n);
    return rc ? rc : add_child(b, n, ev->start_mark);
}

static vg_err_t on_start(struct builder *b, const yaml_event_t *ev, vg_cfg_kind kind,
                         const yaml_char_t *anchor)
{
    if (b->depth == VG_CFG_MAX_DEPTH)
        return at_mark(b, ev->start_mark, VG_ETOOLARGE, "nested deeper than %d levels",
                       VG_CFG_MAX_DEPTH);
    vg_cfg_node_t *n = node_new(b, kind, ev->start_mark);
    if (!n) return vg_error_set(b->err, VG_ENOMEM, "out of memory parsing %s", b->doc->name);
    n->open = 1;
    struct frame *f = &b->stack[b->depth++];
    memset(f, 0, sizeof *f);
    f->node = n;
    return add_anchor(b, anchor, n);
}

static int cmp_key_ptr(const void *a, const void *b)
{
    const vg_cfg_node_t *x = *(vg_cfg_node_t *const *)a, *y = *(vg_cfg_node_t *const *)b;
    int c = strcmp(x->text, y->text);
    if (c) return c;
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    return x->col < y->col ? -1 : (x->col > y->col);
}

/* Refuse a map whose keys repeat; report the later occurrence. */
static vg_err_t check_dup_keys(struct builder *b, vg_cfg_node_t *map)
{
    if (map->n < 2) return VG_OK;
    vg_cfg_node_t **keys = vg_malloc(map->n * sizeof *keys);
    if (!keys) return vg_error_set(b->err, VG_ENOMEM, "out of memory parsing %s", b->doc->name);
    for (size_t i = 0; i < map->n; i++) keys[i] = map->items[2 * i];
    qsort(keys, map->n, sizeof *keys, cmp_key_ptr);
    vg_err_t rc = VG_OK;
    for (size_t i = 1; i < map->n && !rc; i++) {
        if (strcmp(keys[i - 1]->text, keys[i]->text) != 0) continue;
        rc = vg_error_set(b->err, VG_ECONFIG, "%s:%d:%d: duplicate key \"%.100s\" (first at %d:%d)",
                          b->doc->name, keys[i]->line, keys[i]->col, keys[i]->text,
                          keys[i - 1]->line, keys[i - 1]->col);
    }
    vg_free(keys);
    return rc;
}

static vg_err_t on_end(struct builder *b, const yaml_event_t *ev)
{
    struct frame *f = &b->stack[b->depth - 1];
    vg_cfg_node_t *n = f->node;
    if (f->n) {
        n->items = vg_arena_alloc(b->doc->arena, f->n * sizeof *n->items);
        if (!n->items)
            return vg_error_set(b->err, VG_ENOMEM, "out of memory parsing %s", b->doc->name);
        memcpy(n->items, f->items, f->n * sizeof *n->items);
    }
    n->n = n->kind == VG_CFG_MAP ? f->n / 2 : f->n;
    n->open = 0;
    vg_free(f->items);
    memset(f, 0, sizeof *f);
    b->depth--;
    vg_err_t rc = n->kind == VG_CFG_MAP ? check_dup_keys(b, n) : VG_OK;
    return rc ? rc : add_child(b, n, ev->start_mark);
}

static vg_err_t on_alias(struct builder *b, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    for (size_t i = b->nanchors; i-- > 0;) {
        if (strcmp(b->anchors[i].name, name) != 0) continue;
        if (b->anchors[i].node->open)
            return at_mark(b, ev->start_mark, VG_ECONFIG, "alias *%.100s refers to itself", name);
        return add_child(b, b->anchors[i].node, ev->start_mark);
    }
    return at_mark(b, ev->start_mark, VG_ECONFIG, "unknown anchor *%.100s", name);
}

static vg_err_t on_event(struct builder *b, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++b->ndocs > 1)
            return at_mark(b, ev->start_mark, VG_ECONFIG,
                           "only one YAML document per file is supported (found a second '---')");
        return VG_OK;
    case YAML_SCALAR_EVENT: return on_scalar(b, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_start(b, ev, VG_CFG_SEQ, ev->data.sequence_start.anchor);
    case YAML_MAPPING_START_EVENT:
        return on_start(b, ev, VG_CFG_MAP, ev->data.mapping_start.anchor);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: return on_end(b, ev);
    case YAML_ALIAS_EVENT: return on_alias(b, ev);
    default: return VG_OK;
    }
}

static vg_err_t yaml_fail(struct builder *b, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR)
        return vg_error_set(b->err, VG_ENOMEM, "out of memory parsing %s", b->doc->name);
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_READER_ERROR) {
        /* the reader reports a byte offset, not a line */
        return vg_error_set(b->err, VG_EPARSE, "%s: byte %zu: %s", b->doc->name, p->problem_offset,
                            problem);
    }
    if (p->context)
        return vg_error_set(b->err, VG_EPARSE, "%s:%zu:%zu: %s %s (at %zu:%zu)", b->doc->name,
                            p->problem_mark.line + 1, p->problem_mark.column + 1, problem,
                            p->context, p->context_mark.line + 1, p->context_mark.column + 1);
    return vg_error_set(b->err, VG_EPARSE, "%s:%zu:%zu: %s", b->doc->name, p->problem_mark.line + 1,
                        p->problem_mark.column + 1, problem);
}

static void builder_cleanup(struct builder *b)
{
    for (int i = 0; i < b->depth; i++) vg_free(b->stack[i].items);
    for (size_t i = 0; i < b->nanchors; i++) vg_free(b->anchors[i].name);
    vg_free(b->anchors);
}

/* Drive libyaml over text and build the tree into b->doc. */
static vg_err_t build(struct builder *b, const char *text, size_t len)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return vg_error_set(b->err, VG_ENOMEM, "out of memory parsing %s", b->doc->name);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    vg_err_t rc = VG_OK;
    for (int done = 0; !done && !rc;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = yaml_fail(b, &p);
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        rc = on_event(b, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return rc;
}

vg_err_t vg_cfg_doc_parse(const char *name, const char *text, size_t len, vg_cfg_doc_t **out,
                          vg_error *err)
{
    vg_err_t rc = VG_OK;
    struct builder b = {0};
    *out = NULL;
    if (!name) name = "<config>";
    if (len > VG_CFG_MAX_BYTES)
        return vg_error_set(err, VG_ETOOLARGE, "%s: larger than %u bytes", name, VG_CFG_MAX_BYTES);
    vg_cfg_doc_t *d = vg_calloc(1, sizeof *d);
    if (!d || !(d->arena = vg_arena_new(0)) || !(d->name = vg_strdup(name))) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory parsing %s", name);
        goto fail;
    }
    b.doc = d;
    b.err = err;
    if ((rc = build(&b, text ? text : "", text ? len : 0))) goto fail;
    if (!d->root) {
        yaml_mark_t m = {0};
        if (!(d->root = node_new(&b, VG_CFG_NULL, m)) || !(d->root->text = "")) {
            rc = vg_error_set(err, VG_ENOMEM, "out of memory parsing %s", name);
            goto fail;
        }
    }
    builder_cleanup(&b);
    *out = d;
    return VG_OK;
fail:
    builder_cleanup(&b);
    vg_cfg_doc_free(d);
    return rc;
}

vg_err_t vg_cfg_doc_load(const char *path, vg_cfg_doc_t **out, vg_error *err)
{
    vg_err_t rc = VG_OK;
    char *data = NULL;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return vg_error_set(err, VG_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (!(data = vg_malloc(VG_CFG_MAX_BYTES + 1))) {
        rc = vg_error_set(err, VG_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    size_t n = fread(data, 1, VG_CFG_MAX_BYTES + 1, f);
    if (ferror(f)) {
        rc = vg_error_set(err, VG_EIO, "%s: read failed: %s", path, strerror(errno));
        goto out;
    }
    if (n > VG_CFG_MAX_BYTES) {
        rc = vg_error_set(err, VG_ETOOLARGE, "%s: larger than %u bytes", path, VG_CFG_MAX_BYTES);
        goto out;
    }
    rc = vg_cfg_doc_parse(path, data, n, out, err);
out:
    vg_free(data);
    fclose(f);
    return rc;
}

void vg_cfg_doc_free(vg_cfg_doc_t *d)
{
    if (!d) return;
    vg_arena_free(d->arena);
    vg_free(d->name);
    vg_free(d);
}

const vg_cfg_node_t *vg_cfg_doc_root(const vg_cfg_doc_t *d)
{
    return d ? d->root : NULL;
}

const char *vg_cfg_doc_name(const vg_cfg_doc_t *d)
{
    return d ? d->name : "<config>";
}

/* ================================================================
 * Node accessors
 * ================================================================ */

vg_cfg_kind vg_cfg_node_kind(const vg_cfg_node_t *n)
{
    return n ? n->kind : VG_CFG_NULL;
}

const char *vg_cfg_node_text(const vg_cfg_node_t *n)
{
    return n && n->kind == VG_CFG_SCALAR ? n->text : NULL;
}

int vg_cfg_node_line(const vg_cfg_node_t *n)
{
    return n ? n->line : 0;
}

int vg_cfg_node_col(const vg_cfg_node_t *n)
{
    return n ? n->col : 0;
}

size_t vg_cfg_node_len(const vg_cfg_node_t *n)
{
    return n && (n->kind == VG_CFG_MAP || n->kind == VG_CFG_SEQ) ? n->n : 0;
}

const vg_cfg_node_t *vg_cfg_map_key(const vg_cfg_node_t *n, size_t i)
{
    return n && n->kind == VG_CFG_MAP && i < n->n ? n->items[2 * i] : NULL;
}

const vg_cfg_node_t *vg_cfg_map_value(const vg_cfg_node_t *n, size_t i)
{
    return n && n->kind == VG_CFG_MAP && i < n->n ? n->items[2 * i + 1] : NULL;
}

const vg_cfg_node_t *vg_cfg_map_get(const vg_cfg_node_t *n, const char *key)
{
    if (!n || n->kind != VG_CFG_MAP) return NULL;
    for (size_t i = 0; i < n->n; i++)
        if (strcmp(n->items[2 * i]->text, key) == 0) return n->items[2 * i + 1];
    return NULL;
}

const vg_cfg_node_t *vg_cfg_seq_item(const vg_cfg_node_t *n, size_t i)
{
    return n && n->kind == VG_CFG_SEQ && i < n->n ? n->items[i] : NULL;
}

int vg_cfg_node_empty(const vg_cfg_node_t *n)
{
    vg_cfg_kind k = vg_cfg_node_kind(n);
    return k == VG_CFG_NULL || ((k == VG_CFG_MAP || k == VG_CFG_SEQ) && n->n == 0);
}

/* ================================================================
 * Errors and paths
 * ================================================================ */

void vg_cfg_ctx_init(vg_cfg_ctx_t *ctx, const vg_cfg_doc_t *doc, vg_arena_t *arena, vg_error *err)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->doc = doc;
    ctx->arena = arena;
    ctx->err = err;
}

vg_err_t vg_cfg_errorf(const vg_cfg_ctx_t *ctx, const vg_cfg_node_t *n, const char *fmt, ...)
{
    char what[448];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *name = vg_cfg_doc_name(ctx->doc);
    if (!n) return vg_error_set(ctx->err, VG_ECONFIG, "%s: %s", name, what);
    return vg_error_set(ctx->err, VG_ECONFIG, "%s:%d:%d: %s", name, n->line, n->col, what);
}

static vg_err_t oom(const vg_cfg_ctx_t *ctx)
{
    return vg_error_set(ctx->err, VG_ENOMEM, "%s: out of memory", vg_cfg_doc_name(ctx->doc));
}

/* Append ".key" (or "[i]" when key is NULL) to ctx->path; returns the old length. */
static size_t path_push(vg_cfg_ctx_t *ctx, const char *key, size_t index)
{
    size_t old = strlen(ctx->path), room = sizeof ctx->path - old;
    if (key)
        snprintf(ctx->path + old, room, "%s%s", old ? "." : "", key);
    else
        snprintf(ctx->path + old, room, "[%zu]", index);
    return old;
}

static void path_pop(vg_cfg_ctx_t *ctx, size_t old)
{
    ctx->path[old] = '\0';
}

/* Short printable quoted copy of s for messages. */
static const char *quoted(const char *s, char *q, size_t n)
{
    size_t j = 0;
    q[j++] = '"';
    for (size_t i = 0; s[i] && j + 6 < n; i++) {
        if (i == 60) {
            memcpy(q + j, "...", 3);
            j += 3;
            break;
        }
        unsigned char c = (unsigned char)s[i];
        q[j++] = (c >= 0x20 && c != 0x7f) ? (char)c : '?';
    }
    q[j++] = '"';
    q[j] = '\0';
    return q;
}

static const char *kind_name(const vg_cfg_node_t *n)
{
    switch (vg_cfg_node_kind(n)) {
    case VG_CFG_MAP: return "a map";
    case VG_CFG_SEQ: return "a list";
    case VG_CFG_SCALAR: return "a scalar";
    default: return "null";
    }
}

/* "got "abc"" or "got a map" for type errors. */
static const char *got(const vg_cfg_node_t *n, char *buf, size_t len)
{
    char q[80];
    if (vg_cfg_node_kind(n) == VG_CFG_SCALAR)
        snprintf(buf, len, "got %s", quoted(n->text, q, sizeof q));
    else
        snprintf(buf, len, "got %s", kind_name(n));
    return buf;
}

/* ================================================================
 * Scalars
 * ================================================================ */

typedef union scalar_val {
    const char *s;
    int b;
    int64_t i;
    uint64_t u;
    double d;
} scalar_val;

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < 3; i++) {
        if (!strcasecmp(s, yes[i])) return *out = 1, 1;
        if (!strcasecmp(s, no[i])) return *out = 0, 1;
    }
    return 0;
}

static int parse_int(const char *s, int64_t *out)
{
    if (!*s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9'))) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return 0;
    *out = v;
    return 1;
}

static int parse_uint(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9') return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return 0;
    *out = v;
    return 1;
}

static int parse_double(const char *s, double *out)
{
    /* decimal only: no hex floats, inf or nan in a config */
    if (!*s || strpbrk(s, "xXnN")) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

/* What a type expects, for messages and docs. */
static const char *expected(vg_cfg_type t)
{
    switch (t) {
    case VG_CFG_T_BOOL: return "true or false";
    case VG_CFG_T_INT: return "an integer";
    case VG_CFG_T_UINT: return "a non-negative integer";
    case VG_CFG_T_DOUBLE: return "a number";
    case VG_CFG_T_DURATION: return "a duration like 30s";
    case VG_CFG_T_SIZE: return "a size like 512MiB";
    default: return "a string";
    }
}

/* Convert text by type; on failure fill why (may stay empty) and return 0. */
static int convert(vg_cfg_type t, const char *s, scalar_val *v, char *why, size_t nwhy)
{
    vg_error e = {0};
    const char *p;
    why[0] = '\0';
    switch (t) {
    case VG_CFG_T_STRING: v->s = s; return 1;
    case VG_CFG_T_BOOL: return parse_bool(s, &v->b);
    case VG_CFG_T_INT: return parse_int(s, &v->i);
    case VG_CFG_T_UINT: return parse_uint(s, &v->u);
    case VG_CFG_T_DOUBLE: return parse_double(s, &v->d);
    case VG_CFG_T_DURATION:
        if (!vg_duration_parse(s, &v->i, &e)) return 1;
        break;
    case VG_CFG_T_SIZE:
        if (!vg_size_parse(s, &v->u, &e)) return 1;
        break;
    default: return 0;
    }
    /* the parsers say 'invalid X "value": why'; keep the why */
    p = strstr(e.msg, "\": ");
    p = p ? p + 3 : e.msg;
    size_t len = strnlen(p, nwhy - 1);
    memcpy(why, p, len);
    why[len] = '\0';
    return 0;
}

/* <0, 0, >0 comparing two values of numeric type t. */
static int cmp_val(vg_cfg_type t, scalar_val a, scalar_val b)
{
    switch (t) {
    case VG_CFG_T_INT:
    case VG_CFG_T_DURATION: return (a.i > b.i) - (a.i < b.i);
    case VG_CFG_T_UINT:
    case VG_CFG_T_SIZE: return (a.u > b.u) - (a.u < b.u);
    case VG_CFG_T_DOUBLE: return (a.d > b.d) - (a.d < b.d);
    default: return 0;
    }
}

static int in_choices(const char *choices, const char *s)
{
    size_t n = strlen(s);
    for (const char *p = choices; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, s, n)) return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

/* Range and choice checks; msg gets the complaint. */
static int check_value(const vg_cfg_field_t *f, scalar_val v, char *msg, size_t n)
{
    scalar_val lim;
    char why[8];
    if (f->type == VG_CFG_T_STRING && f->choices && !in_choices(f->choices, v.s)) {
        snprintf(msg, n, "must be one of %s", f->choices);
        return 0;
    }
    if (f->min && convert(f->type, f->min, &lim, why, sizeof why) && cmp_val(f->type, v, lim) < 0) {
        snprintf(msg, n, "must be at least %s", f->min);
        return 0;
    }
    if (f->max && convert(f->type, f->max, &lim, why, sizeof why) && cmp_val(f->type, v, lim) > 0) {
        snprintf(msg, n, "must be at most %s", f->max);
        return 0;
    }
    return 1;
}

static void store(const vg_cfg_field_t *f, void *dst, scalar_val v)
{
    char *p = (char *)dst + f->offset;
    switch (f->type) {
    case VG_CFG_T_STRING: memcpy(p, &v.s, sizeof v.s); break;
    case VG_CFG_T_BOOL: memcpy(p, &v.b, sizeof v.b); break;
    case VG_CFG_T_INT:
    case VG_CFG_T_DURATION: memcpy(p, &v.i, sizeof v.i); break;
    case VG_CFG_T_UINT:
    case VG_CFG_T_SIZE: memcpy(p, &v.u, sizeof v.u); break;
    case VG_CFG_T_DOUBLE: memcpy(p, &v.d, sizeof v.d); break;
    default: break;
    }
}

static vg_err_t apply_default(vg_cfg_ctx_t *ctx, const vg_cfg_field_t *f, void *dst)
{
    scalar_val v;
    char why[160];
    memset(&v, 0, sizeof v);
    if (f->def && !convert(f->type, f->def, &v, why, sizeof why))
        return vg_error_set(ctx->err, VG_EINTERNAL, "schema default %s for %s is invalid: %s",
                            f->def, f->key, why);
    if (f->type == VG_CFG_T_STRING && f->def && !(v.s = vg_arena_strdup(ctx->arena, f->def)))
        return oom(ctx);
    store(f, dst, v);
    return VG_OK;
}

/* Name of the field being decoded, for messages: "global.scrape_interval". */
static const char *where(const vg_cfg_ctx_t *ctx)
{
    return ctx->path[0] ? ctx->path : "the top level";
}

static vg_err_t decode_scalar(vg_cfg_ctx_t *ctx, const vg_cfg_field_t *f, const vg_cfg_node_t *n,
                              void *dst)
{
    scalar_val v;
    char why[200], g[100];
    if (vg_cfg_node_kind(n) != VG_CFG_SCALAR)
        return vg_cfg_errorf(ctx, n, "%s: expected %s, %s", where(ctx), expected(f->type),
                             got(n, g, sizeof g));
    if (!convert(f->type, n->text, &v, why, sizeof why))
        return vg_cfg_errorf(ctx, n, "%s: expected %s, %s%s%s", where(ctx), expected(f->type),
                             got(n, g, sizeof g), why[0] ? ": " : "", why);
    if (!check_value(f, v, why, sizeof why))
        return vg_cfg_errorf(ctx, n, "%s: %s, %s", where(ctx), why, got(n, g, sizeof g));
    if (f->type == VG_CFG_T_STRING && !(v.s = vg_arena_strdup(ctx->arena, v.s))) return oom(ctx);
    store(f, dst, v);
    return VG_OK;
}

/* Scalar getters for callbacks: a throwaway field carries the type. */
static vg_err_t get_typed(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *n, vg_cfg_type t, void *out)
{
    vg_cfg_field_t f = {.key = "", .type = t};
    return decode_scalar(ctx, &f, n, out);
}

vg_err_t vg_cfg_get_string(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *n, const char **out)
{
    return get_typed(ctx, n, VG_CFG_T_STRING, out);
}

vg_err_t vg_cfg_get_bool(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *n, int *out)
{
    return get_typed(ctx, n, VG_CFG_T_BOOL, out);
}

vg_err_t vg_cfg_get_uint(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *n, uint64_t *out)
{
    return get_typed(ctx, n, VG_CFG_T_UINT, out);
}

vg_err_t vg_cfg_get_duration(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *n, int64_t *out)
{
    return get_typed(ctx, n, VG_CFG_T_DURATION, out);
}

vg_err_t vg_cfg_get_size(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *n, uint64_t *out)
{
    return get_typed(ctx, n, VG_CFG_T_SIZE, out);
}

/* ================================================================
 * Composite types
 * ================================================================ */

static void store_array(const vg_cfg_field_t *f, void *dst, void *arr, size_t n)
{
    memcpy((char *)dst + f->offset, &arr, sizeof arr);
    memcpy((char *)dst + f->count_offset, &n, sizeof n);
}

/* Require n to be a map (or null); message names the field. */
static vg_err_t want(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *n, vg_cfg_kind kind, const char *what)
{
    char g[100];
    if (vg_cfg_node_kind(n) == kind || vg_cfg_node_kind(n) == VG_CFG_NULL) return VG_OK;
    return vg_cfg_errorf(ctx, n, "%s: expected %s, %s", where(ctx), what, got(n, g, sizeof g));
}

static int label_name_ok(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_')) return 0;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
              (*s >= '0' && *s <= '9')))
            return 0;
    return 1;
}

static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const vg_label_t *)a)->name, ((const vg_label_t *)b)->name);
}

static vg_err_t decode_labels(vg_cfg_ctx_t *ctx, const vg_cfg_field_t *f, const vg_cfg_node_t *n,
                              void *dst)
{
    vg_err_t rc = want(ctx, n, VG_CFG_MAP, "a map of label names to values");
    size_t cnt = 0, len = vg_cfg_node_len(n);
    vg_label_t *l = NULL;
    char g[100];
    if (rc) return rc;
    if (len && !(l = vg_arena_alloc(ctx->arena, len * sizeof *l))) return oom(ctx);
    for (size_t i = 0; i < len; i++) {
        const vg_cfg_node_t *k = vg_cfg_map_key(n, i), *v = vg_cfg_map_value(n, i);
        if (!label_name_ok(k->text))
            return vg_cfg_errorf(ctx, k, "%s: invalid label name %s (use [a-zA-Z_][a-zA-Z0-9_]*)",
                                 where(ctx), quoted(k->text, g, sizeof g));
        if (v->kind == VG_CFG_NULL) continue; /* an empty value is an absent label */
        if (v->kind != VG_CFG_SCALAR)
            return vg_cfg_errorf(ctx, v, "%s.%s: expected a label value, %s", where(ctx), k->text,
                                 got(v, g, sizeof g));
        if (!v->text[0]) continue;
        l[cnt].name = vg_arena_strdup(ctx->arena, k->text);
        l[cnt].value = vg_arena_strdup(ctx->arena, v->text);
        if (!l[cnt].name || !l[cnt].value) return oom(ctx);
        cnt++;
    }
    if (cnt) qsort(l, cnt, sizeof *l, cmp_label);
    store_array(f, dst, cnt ? l : NULL, cnt);
    return VG_OK;
}

static vg_err_t decode_strings(vg_cfg_ctx_t *ctx, const vg_cfg_field_t *f, const vg_cfg_node_t *n,
                               void *dst)
{
    vg_err_t rc = want(ctx, n, VG_CFG_SEQ, "a list of strings");
    size_t len = vg_cfg_node_len(n);
    const char **s = NULL;
    if (rc) return rc;
    if (len && !(s = vg_arena_alloc(ctx->arena, len * sizeof *s))) return oom(ctx);
    for (size_t i = 0; i < len && !rc; i++) {
        size_t old = path_push(ctx, NULL, i);
        rc = vg_cfg_get_string(ctx, vg_cfg_seq_item(n, i), &s[i]);
        path_pop(ctx, old);
    }
    if (!rc) store_array(f, dst, s, len);
    return rc;
}

static vg_err_t decode_kvmap(vg_cfg_ctx_t *ctx, const vg_cfg_field_t *f, const vg_cfg_node_t *n,
                             void *dst)
{
    vg_err_t rc = want(ctx, n, VG_CFG_MAP, "a map of strings");
    size_t len = vg_cfg_node_len(n);
    vg_kv_t *kv = NULL;
    if (rc) return rc;
    if (len && !(kv = vg_arena_alloc(ctx->arena, len * sizeof *kv))) return oom(ctx);
    for (size_t i = 0; i < len && !rc; i++) {
        const vg_cfg_node_t *k = vg_cfg_map_key(n, i);
        size_t old = path_push(ctx, k->text, 0);
        if (!(kv[i].key = vg_arena_strdup(ctx->arena, k->text))) rc = oom(ctx);
        if (!rc) rc = vg_cfg_get_string(ctx, vg_cfg_map_value(n, i), &kv[i].value);
        path_pop(ctx, old);
    }
    if (!rc) store_array(f, dst, kv, len);
    return rc;
}

static vg_err_t decode_section(vg_cfg_ctx_t *ctx, const vg_cfg_field_t *f, const vg_cfg_node_t *n,
                               void *dst)
{
    void *obj = (char *)dst + f->offset;
    vg_err_t rc = vg_cfg_decode(ctx, n, f->sub, obj);
    if (!rc && f->check) rc = f->check(ctx, n, obj);
    return rc;
}

static vg_err_t decode_list(vg_cfg_ctx_t *ctx, const vg_cfg_field_t *f, const vg_cfg_node_t *n,
                            void *dst)
{
    vg_err_t rc = want(ctx, n, VG_CFG_SEQ, "a list");
    size_t len = vg_cfg_node_len(n);
    char *arr = NULL;
    if (rc) return rc;
    if (len && !(arr = vg_arena_calloc(ctx->arena, len * f->elem_size))) return oom(ctx);
    for (size_t i = 0; i < len && !rc; i++) {
        size_t old = path_push(ctx, NULL, i);
        void *elem = arr + i * f->elem_size;
        rc = vg_cfg_decode(ctx, vg_cfg_seq_item(n, i), f->sub, elem);
        if (!rc && f->check) rc = f->check(ctx, vg_cfg_seq_item(n, i), elem);
        path_pop(ctx, old);
    }
    if (!rc) store_array(f, dst, arr, len);
    return rc;
}

/* Decode one field; n is NULL when the key is absent, kept when null (for positions). */
static vg_err_t decode_field(vg_cfg_ctx_t *ctx, const vg_cfg_field_t *f, const vg_cfg_node_t *n,
                             void *dst)
{
    const vg_cfg_node_t *v = vg_cfg_node_kind(n) == VG_CFG_NULL ? NULL : n;
    switch (f->type) {
    case VG_CFG_T_LABELS: return decode_labels(ctx, f, v, dst);
    case VG_CFG_T_STRINGS: return decode_strings(ctx, f, v, dst);
    case VG_CFG_T_KVMAP: return decode_kvmap(ctx, f, v, dst);
    case VG_CFG_T_SECTION: return decode_section(ctx, f, v, dst);
    case VG_CFG_T_LIST: return decode_list(ctx, f, v, dst);
    case VG_CFG_T_CUSTOM:
        if (!f->parse) return vg_error_set(ctx->err, VG_EINTERNAL, "no parser for %s", f->key);
        return f->parse(ctx, v, (char *)dst + f->offset, dst);
    default: return v ? decode_scalar(ctx, f, v, dst) : apply_default(ctx, f, dst);
    }
}

static const vg_cfg_field_t *find_field(const vg_cfg_field_t *schema, const char *key)
{
    for (const vg_cfg_field_t *f = schema; f->key; f++)
        if (!strcmp(f->key, key)) return f;
    return NULL;
}

static vg_err_t check_keys(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node,
                           const vg_cfg_field_t *schema)
{
    char q[80];
    for (size_t i = 0; i < vg_cfg_node_len(node); i++) {
        const vg_cfg_node_t *k = vg_cfg_map_key(node, i);
        if (find_field(schema, k->text)) continue;
        return vg_cfg_errorf(ctx, k, "unknown key %s %s%s", quoted(k->text, q, sizeof q),
                             ctx->path[0] ? "in " : "at ", where(ctx));
    }
    return VG_OK;
}

vg_err_t vg_cfg_decode(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, const vg_cfg_field_t *schema,
                       void *dst)
{
    vg_err_t rc = want(ctx, node, VG_CFG_MAP, "a map of key: value pairs");
    if (rc || (rc = check_keys(ctx, node, schema))) return rc;
    for (const vg_cfg_field_t *f = schema; f->key && !rc; f++) {
        const vg_cfg_node_t *v = vg_cfg_map_get(node, f->key);
        if (ctx->overlay && vg_cfg_node_kind(v) == VG_CFG_NULL) continue;
        size_t old = path_push(ctx, f->key, 0);
        if ((f->flags & VG_CFG_REQUIRED) && vg_cfg_node_kind(v) == VG_CFG_NULL) {
            path_pop(ctx, old);
            return vg_cfg_errorf(ctx, v ? v : node, "missing required key \"%s\" %s%s", f->key,
                                 ctx->path[0] ? "in " : "at ", where(ctx));
        }
        rc = decode_field(ctx, f, v, dst);
        path_pop(ctx, old);
    }
    return rc;
}

vg_err_t vg_cfg_unsupported(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *field, void *obj)
{
    if (vg_cfg_node_empty(node)) return VG_OK;
    const char *dot = strrchr(ctx->path, '.');
    if (!dot) return vg_cfg_errorf(ctx, node, "%s is not supported by this build yet", ctx->path);
    return vg_cfg_errorf(ctx, node, "%.*s: %s is not supported by this build yet",
                         (int)(dot - ctx->path), ctx->path, dot + 1);
}

/* ================================================================
 * Documentation
 * ================================================================ */

static const char *type_doc(const vg_cfg_field_t *f)
{
    switch (f->type) {
    case VG_CFG_T_STRING: return "string";
    case VG_CFG_T_BOOL: return "bool";
    case VG_CFG_T_INT: return "integer";
    case VG_CFG_T_UINT: return "integer >= 0";
    case VG_CFG_T_DOUBLE: return "number";
    case VG_CFG_T_DURATION: return "duration";
    case VG_CFG_T_SIZE: return "size";
    case VG_CFG_T_LABELS: return "map of label name to value";
    case VG_CFG_T_STRINGS: return "list of strings";
    case VG_CFG_T_KVMAP: return "map of string to string";
    case VG_CFG_T_SECTION: return "map, see below";
    case VG_CFG_T_LIST: return "list of maps, see below";
    default: return f->type_doc ? f->type_doc : "see description";
    }
}

static const char *default_doc(const vg_cfg_field_t *f, char *buf, size_t n)
{
    if (f->flags & VG_CFG_REQUIRED) return "required";
    if (f->def_doc) return f->def_doc;
    if (f->def) {
        snprintf(buf, n, "`%s`", f->def[0] ? f->def : "\"\"");
        return buf;
    }
    switch (f->type) {
    case VG_CFG_T_LABELS:
    case VG_CFG_T_KVMAP: return "`{}`";
    case VG_CFG_T_STRINGS:
    case VG_CFG_T_LIST: return "`[]`";
    case VG_CFG_T_SECTION:
    case VG_CFG_T_CUSTOM: return "";
    case VG_CFG_T_STRING: return "none";
    default: return "`0`";
    }
}

/* "a|b|c" as "`a`, `b`, `c`": a bare '|' would split a Markdown table cell. */
static void choices_doc(const char *choices, char *buf, size_t n)
{
    size_t off = 0;
    for (const char *p = choices; *p && off + 8 < n;) {
        size_t len = strcspn(p, "|");
        int w = snprintf(buf + off, n - off, "%s`%.*s`", off ? ", " : "", (int)len, p);
        if (w < 0 || (size_t)w >= n - off) break;
        off += (size_t)w;
        p += len + (p[len] == '|');
    }
}

static vg_err_t doc_row(const vg_cfg_field_t *f, vg_buf *out)
{
    char def[128], range[200] = "", ch[128] = "";
    if (f->choices) {
        choices_doc(f->choices, ch, sizeof ch);
        snprintf(range, sizeof range, "; one of %s", ch);
    } else if (f->min && f->max) {
        snprintf(range, sizeof range, "; from %s to %s", f->min, f->max);
    } else if (f->min) {
        snprintf(range, sizeof range, "; at least %s", f->min);
    } else if (f->max) {
        snprintf(range, sizeof range, "; at most %s", f->max);
    }
    return vg_buf_printf(out, "| `%s` | %s | %s | %s%s |\n", f->key, type_doc(f),
                         default_doc(f, def, sizeof def), f->doc ? f->doc : "", range);
}

static vg_err_t doc_table(const vg_cfg_field_t *schema, const char *prefix, vg_buf *out)
{
    vg_err_t rc = vg_buf_printf(out,
                                "### `%s`\n\n| key | type | default | description |\n"
                                "| --- | --- | --- | --- |\n",
                                prefix && *prefix ? prefix : "(top level)");
    for (const vg_cfg_field_t *f = schema; f->key && !rc; f++) rc = doc_row(f, out);
    return rc ? rc : vg_buf_puts(out, "\n");
}

vg_err_t vg_cfg_schema_doc(const vg_cfg_field_t *schema, const char *prefix, vg_buf *out)
{
    vg_err_t rc = doc_table(schema, prefix, out);
    for (const vg_cfg_field_t *f = schema; f->key && !rc; f++) {
        if (f->type != VG_CFG_T_SECTION && f->type != VG_CFG_T_LIST) continue;
        char sub[256];
        snprintf(sub, sizeof sub, "%s%s%s%s", prefix && *prefix ? prefix : "",
                 prefix && *prefix ? "." : "", f->key, f->type == VG_CFG_T_LIST ? "[]" : "");
        rc = vg_cfg_schema_doc(f->sub, sub, out);
    }
    return rc;
}
