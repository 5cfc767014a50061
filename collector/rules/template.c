/*
 * template.c - executes parsed alert templates and is the public face of
 * the template engine (vg_tmpl_check, vg_tmpl_expand).
 *
 * Prometheus runs annotation text as Go text/template after prepending
 * "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}
 * {{$externalURL := .ExternalURL}}{{$value := .Value}}" and with
 * missingkey=zero; we model the same data ($, $labels, ...) directly. A
 * failing expansion does not stop the rule: the text becomes
 * "<error expanding template: ...>" with Go's message, including the
 * line:column Go reports (offset by the 112 prepended bytes).
 *
 * Everything one call needs lives in one arena; output goes to a private
 * capped buffer and is copied out on success, so a runaway template
 * (deep recursion, huge range, huge output) ends in an error, not a crash.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/template_int.h"
#include "vigil/alloc.h"

typedef struct var {
    const char *name;
    tval v;
} var;

typedef struct X {
    texec e;
    var vars[TMPL_MAX_VARS];
    size_t nvars;
    int depth;
    long steps;
    const char *exec_name; /* the template being executed (define name) */
    int jump;              /* N_BREAK / N_CONTINUE unwinding to the range */
    char err[1024];
} X;

/* Go's "template: NAME:L:C: executing "NAME" at <CTX>: MSG". */
static vg_err_t xerr(X *x, size_t pos, const char *ctx, size_t clen, const char *fmt, ...)
{
    const char *src = x->e.t->src;
    size_t line = 1, ls = 0;
    for (size_t i = 0; i < pos && src[i]; i++)
        if (src[i] == '\n') line++, ls = i + 1;
    size_t col = line == 1 ? pos + TMPL_PREFIX_LEN : pos - ls;
    char c[128];
    size_t n = 0;
    for (size_t i = 0; i < clen && n + 1 < sizeof c; i++) /* Go prints nodes with single spaces */
        if (!(strchr(" \t\r\n", ctx[i]) && (n == 0 || c[n - 1] == ' ')))
            c[n++] = strchr("\t\r\n", ctx[i]) ? ' ' : ctx[i];
    while (n && c[n - 1] == ' ') n--;
    c[n] = '\0';
    int k = snprintf(x->err, sizeof x->err,
                     "template: %s:%zu:%zu: executing \"%s\" at <%s>: ", x->e.t->name, line, col,
                     x->exec_name, c);
    va_list ap;
    va_start(ap, fmt);
    if (k > 0 && (size_t)k < sizeof x->err)
        vsnprintf(x->err + k, sizeof x->err - (size_t)k, fmt, ap);
    va_end(ap);
    return VG_EINVAL;
}

static vg_err_t step(X *x, size_t pos, const char *ctx, size_t clen)
{
    if (++x->steps <= TMPL_MAX_STEPS) return VG_OK;
    return xerr(x, pos, ctx, clen, "%s", "execution step limit exceeded");
}

static tval *var_find(X *x, const char *name, size_t n)
{
    for (size_t i = x->nvars; i-- > 0;)
        if (strlen(x->vars[i].name) == n && memcmp(x->vars[i].name, name, n) == 0)
            return &x->vars[i].v;
    return NULL;
}

static vg_err_t var_push(X *x, const char *name, tval v, size_t pos)
{
    if (x->nvars >= TMPL_MAX_VARS)
        return xerr(x, pos, name, strlen(name), "%s", "too many variables");
    x->vars[x->nvars++] = (var){name, v};
    return VG_OK;
}

static vg_err_t pipe_eval(X *x, const tpipe *p, tval dot, tval *out);

/* ---- fields and operands ---- */

static vg_err_t field(X *x, const targ *a, tval base, const char *f, tval *out)
{
    const vg_tmpl_data *d = x->e.d;
    size_t pos = a->k == A_VAR ? a->pos + a->nlen : a->pos; /* Go: where the field chain starts */
    *out = (tval){.k = V_NIL};
    if (base.k == V_DATA) {
        if (!strcmp(f, "Labels"))
            return *out = (tval){.k = V_MAP, .map = d->labels, .n = d->nlabels}, VG_OK;
        if (!strcmp(f, "ExternalLabels"))
            return *out = (tval){.k = V_MAP, .map = d->external_labels, .n = d->nexternal_labels},
                   VG_OK;
        if (!strcmp(f, "ExternalURL")) {
            const char *u = d->external_url ? d->external_url : "";
            return *out = (tval){.k = V_STR, .s = u, .slen = strlen(u)}, VG_OK;
        }
        if (!strcmp(f, "Value")) return *out = (tval){.k = V_FLOAT, .f = d->value}, VG_OK;
    } else if (base.k == V_MAP) {
        const char *v = vg_labels_get(base.map, base.n, f);
        v = v ? v : ""; /* missingkey=zero */
        return *out = (tval){.k = V_STR, .s = v, .slen = strlen(v)}, VG_OK;
    } else if (base.k == V_SAMPLE) {
        if (!strcmp(f, "Labels"))
            return *out = (tval){.k = V_MAP, .map = base.vec->labels, .n = base.vec->n}, VG_OK;
        if (!strcmp(f, "Value")) return *out = (tval){.k = V_FLOAT, .f = base.vec->value}, VG_OK;
    } else if (base.k == V_ARGS) {
        size_t i;
        if (sscanf(f, "arg%zu", &i) == 1 && i < base.n) *out = base.args[i];
        return VG_OK;
    } else if (base.k == V_NIL) {
        return xerr(x, pos, a->text, a->tlen, "nil pointer evaluating interface {}.%s", f);
    }
    return xerr(x, pos, a->text, a->tlen, "can't evaluate field %s in type %s", f,
                tmpl_type_name(&base));
}

static vg_err_t call(X *x, const tcmd *c, tval dot, const tval *final, tval *out);

static vg_err_t arg_eval(X *x, const targ *a, tval dot, tval *out)
{
    vg_err_t rc = VG_OK;
    switch (a->k) {
    case A_DOT: *out = dot; break;
    case A_VAR: {
        tval *v = var_find(x, a->name, a->nlen);
        if (!v)
            return xerr(x, a->pos, a->text, a->tlen, "undefined variable: %.*s", (int)a->nlen,
                        a->name);
        *out = *v;
        break;
    }
    case A_STR: *out = (tval){.k = V_STR, .s = a->name, .slen = a->nlen}; return VG_OK;
    case A_INT: *out = (tval){.k = V_INT, .i = a->i}; return VG_OK;
    case A_FLOAT: *out = (tval){.k = V_FLOAT, .f = a->f}; return VG_OK;
    case A_BOOL: *out = (tval){.k = V_BOOL, .b = (int)a->i}; return VG_OK;
    case A_NIL: *out = (tval){.k = V_NIL}; return VG_OK;
    case A_PIPE:
        if (++x->depth > TMPL_MAX_DEPTH)
            return xerr(x, a->pos, a->text, a->tlen, "%s", "max depth exceeded");
        rc = pipe_eval(x, a->pipe, dot, out);
        x->depth--;
        break;
    case A_IDENT: {
        tcmd c = {.pos = a->pos, .args = (targ *)a, .nargs = 1};
        return call(x, &c, dot, NULL, out);
    }
    default: break;
    }
    for (size_t i = 0; i < a->nfields && !rc; i++) rc = field(x, a, *out, a->fields[i], out);
    return rc;
}

/* ---- commands and pipelines ---- */

static size_t cmd_len(const tcmd *c)
{
    const targ *l = &c->args[c->nargs - 1];
    return l->pos + l->tlen - c->args[0].pos;
}

static vg_err_t call(X *x, const tcmd *c, tval dot, const tval *final, tval *out)
{
    const targ *f = &c->args[0];
    int want = 0;
    tfunc fn = tmpl_func(f->name, f->nlen, &want);
    size_t argc = c->nargs - 1 + (final != NULL), clen = cmd_len(c);
    if (!fn)
        return xerr(x, f->pos, f->text, f->tlen, "\"%.*s\" is not a defined function", (int)f->nlen,
                    f->name);
    if ((want >= 0 && argc != (size_t)want) || (want == -1 && argc < 1)) {
        if (want >= 0)
            return xerr(x, f->pos, f->text, f->tlen,
                        "wrong number of args for %.*s: want %d got %zu", (int)f->nlen, f->name,
                        want, argc);
        return xerr(x, f->pos, f->text, f->tlen,
                    "wrong number of args for %.*s: want at least 1 got 0", (int)f->nlen, f->name);
    }
    tval *argv = vg_arena_calloc(x->e.a, (argc + 1) * sizeof *argv);
    if (!argv) return VG_ENOMEM;
    vg_err_t rc = VG_OK;
    for (size_t i = 1; i < c->nargs && !rc; i++) rc = arg_eval(x, &c->args[i], dot, &argv[i - 1]);
    if (rc) return rc;
    if (final) argv[argc - 1] = *final;
    x->e.msg[0] = '\0';
    x->e.raw = 0;
    rc = fn(&x->e, argv, argc, out);
    if (rc == VG_ENOMEM) return rc;
    if (rc && x->e.raw) return xerr(x, f->pos, f->text, f->tlen, "%s", x->e.msg);
    if (rc)
        return xerr(x, c->pos, f->text, clen, "error calling %.*s: %s", (int)f->nlen, f->name,
                    x->e.msg);
    return VG_OK;
}

static vg_err_t cmd_eval(X *x, const tcmd *c, tval dot, const tval *final, tval *out)
{
    vg_err_t rc = step(x, c->pos, c->args[0].text, cmd_len(c));
    if (rc) return rc;
    const targ *a = &c->args[0];
    if (a->k == A_IDENT) return call(x, c, dot, final, out);
    if (a->k == A_NIL) return xerr(x, a->pos, a->text, a->tlen, "%s", "nil is not a command");
    if (c->nargs > 1 || final)
        return xerr(x, a->pos, a->text, a->tlen, "can't give argument to non-function %.*s",
                    (int)a->tlen, a->text);
    return arg_eval(x, a, dot, out);
}

static vg_err_t pipe_eval(X *x, const tpipe *p, tval dot, tval *out)
{
    vg_err_t rc = VG_OK;
    tval v = {.k = V_NIL};
    for (size_t i = 0; i < p->ncmds && !rc; i++)
        rc = cmd_eval(x, &p->cmds[i], dot, i ? &v : NULL, &v);
    if (rc) return rc;
    for (size_t i = 0; i < p->nvars && !rc; i++) {
        if (p->is_assign) {
            tval *t = var_find(x, p->vars[i], strlen(p->vars[i]));
            const tcmd *last = &p->cmds[p->ncmds - 1]; /* Go reports at the last command */
            if (!t)
                return xerr(x, last->pos, last->args[0].text, cmd_len(last),
                            "undefined variable: %s", p->vars[i]);
            *t = v;
        } else
            rc = var_push(x, p->vars[i], v, p->pos);
    }
    *out = v;
    return rc;
}

/* ---- nodes ---- */

static vg_err_t walk(X *x, const tnode *n, tval dot);

static vg_err_t walk_list(X *x, const tnode *l, tval dot)
{
    vg_err_t rc = VG_OK;
    if (!l) return VG_OK;
    if (++x->depth > TMPL_MAX_DEPTH) return xerr(x, l->pos, "", 0, "%s", "max depth exceeded");
    size_t scope = x->nvars;
    for (const tnode *c = l->first; c && !rc; c = c->next) rc = walk(x, c, dot);
    x->nvars = scope;
    x->depth--;
    return rc;
}

static vg_err_t range_one(X *x, const tnode *n, tval dot, tval key, tval val)
{
    size_t scope = x->nvars;
    const tpipe *p = n->pipe;
    vg_err_t rc = step(x, n->pos, "range", 5);
    if (!rc && p->nvars == 1) x->vars[scope - 1].v = val;
    if (!rc && p->nvars == 2) x->vars[scope - 2].v = key, x->vars[scope - 1].v = val;
    if (!rc) rc = walk_list(x, n->list, val);
    x->nvars = scope;
    if (rc == VG_EAGAIN) rc = x->jump == N_BREAK ? VG_ECLOSED : VG_OK; /* ECLOSED: stop the loop */
    (void)dot;
    return rc;
}

/* Go ranges over map[string]interface{} in sorted key order (arg0, arg1, arg10, arg2...). */
static vg_err_t range_args(X *x, const tnode *n, tval v, tval dot, size_t *cnt)
{
    char **keys = vg_arena_alloc(x->e.a, (v.n + 1) * sizeof *keys);
    if (!keys) return VG_ENOMEM;
    for (size_t i = 0; i < v.n; i++)
        if (!(keys[i] = vg_arena_sprintf(x->e.a, "arg%zu", i))) return VG_ENOMEM;
    for (size_t i = 1; i < v.n; i++)
        for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
            char *t = keys[j];
            keys[j] = keys[j - 1], keys[j - 1] = t;
        }
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < v.n && !rc; i++, (*cnt)++)
        rc = range_one(x, n, dot, (tval){.k = V_STR, .s = keys[i], .slen = strlen(keys[i])},
                       v.args[strtoul(keys[i] + 3, NULL, 10)]);
    return rc;
}

static vg_err_t range_error(X *x, const tnode *n, const tval *v)
{
    const tcmd *c = &n->pipe->cmds[0];
    vg_buf b;
    vg_buf_init(&b, 256);
    if (tmpl_print(&x->e, &b, v) == VG_ENOMEM) return VG_ENOMEM;
    xerr(x, n->pipe->pos, c->args[0].text, cmd_len(c), "range can't iterate over %s",
         b.data ? b.data : "");
    vg_buf_free(&b);
    return VG_EINVAL;
}

static vg_err_t range(X *x, const tnode *n, tval v, tval dot)
{
    vg_err_t rc = VG_OK;
    size_t cnt = 0;
    if (v.k == V_VEC) {
        for (size_t i = 0; i < v.n && !rc; i++, cnt++)
            rc = range_one(x, n, dot, (tval){.k = V_INT, .i = (long long)i},
                           (tval){.k = V_SAMPLE, .vec = &v.vec[i]});
    } else if (v.k == V_MAP) {
        for (size_t i = 0; i < v.n && !rc;
             i++, cnt++) { /* label sets are sorted by name, as Go sorts map keys */
            const vg_label_t *l = &v.map[i];
            rc = range_one(x, n, dot, (tval){.k = V_STR, .s = l->name, .slen = strlen(l->name)},
                           (tval){.k = V_STR, .s = l->value, .slen = strlen(l->value)});
        }
    } else if (v.k == V_ARGS) {
        rc = range_args(x, n, v, dot, &cnt);
    } else if (v.k != V_NIL) {
        return range_error(x, n, &v);
    }
    if (rc == VG_ECLOSED) rc = VG_OK; /* {{break}} */
    if (!rc && !cnt) rc = walk_list(x, n->elselist, dot);
    return rc;
}

static vg_err_t control(X *x, const tnode *n, tval dot)
{
    size_t scope = x->nvars;
    tval v;
    vg_err_t rc = pipe_eval(x, n->pipe, dot, &v);
    if (rc) return rc;
    if (n->k == N_RANGE) {
        /* the declared variables are reassigned per element */
        rc = range(x, n, v, dot);
    } else if (tmpl_truth(&v))
        rc = walk_list(x, n->list, n->k == N_WITH ? v : dot);
    else
        rc = walk_list(x, n->elselist, dot);
    x->nvars = scope;
    return rc;
}

static vg_err_t tmpl_call(X *x, const tnode *n, tval dot)
{
    const tdefine *d = x->e.t->defs;
    while (d && (strlen(d->name) != n->len || memcmp(d->name, n->text, n->len))) d = d->next;
    char ctx[160];
    snprintf(ctx, sizeof ctx, "{{template %.*s}}", (int)(n->len < 100 ? n->len : 100), n->text);
    if (!d) {
        snprintf(ctx, sizeof ctx, "{{template \"%.*s\"}}", (int)(n->len < 100 ? n->len : 100),
                 n->text);
        return xerr(x, n->pos, ctx, strlen(ctx), "template \"%.*s\" not defined", (int)n->len,
                    n->text);
    }
    tval v = {.k = V_NIL};
    vg_err_t rc = n->pipe ? pipe_eval(x, n->pipe, dot, &v) : VG_OK;
    if (rc) return rc;
    if (x->depth >= TMPL_MAX_DEPTH)
        return xerr(x, n->pos, ctx, strlen(ctx), "exceeded maximum template depth (%d)",
                    TMPL_MAX_DEPTH);
    size_t scope = x->nvars;
    const char *was = x->exec_name;
    x->exec_name = d->name;
    rc = var_push(x, "$", v, n->pos);
    if (!rc) rc = walk_list(x, d->body, v);
    x->exec_name = was;
    x->nvars = scope;
    return rc;
}

static vg_err_t walk(X *x, const tnode *n, tval dot)
{
    tval v;
    vg_err_t rc = VG_OK;
    switch (n->k) {
    case N_TEXT: rc = vg_buf_append(x->e.out, n->text, n->len); break;
    case N_ACTION:
        rc = pipe_eval(x, n->pipe, dot, &v);
        if (!rc && !n->pipe->nvars) rc = tmpl_print(&x->e, x->e.out, &v);
        break;
    case N_IF:
    case N_WITH:
    case N_RANGE: rc = control(x, n, dot); break;
    case N_TEMPLATE: rc = tmpl_call(x, n, dot); break;
    case N_LIST: rc = walk_list(x, n, dot); break;
    case N_BREAK:
    case N_CONTINUE: x->jump = n->k; return VG_EAGAIN; /* unwinds to range_one */
    }
    if (rc == VG_ETOOLARGE) {
        snprintf(x->err, sizeof x->err, "template: %s: output exceeds %d bytes", x->e.t->name,
                 TMPL_MAX_OUT);
        rc = VG_EINVAL;
    }
    return rc;
}

/* ---- public API ---- */

vg_err_t vg_tmpl_check(const char *name, const char *src, vg_error *err)
{
    vg_arena_t *a = vg_arena_new(4096);
    char msg[TMPL_MSG] = "";
    ttree t;
    if (!a) return vg_error_set(err, VG_ENOMEM, "out of memory");
    vg_err_t rc = tmpl_parse(a, name, src, &t, msg);
    if (rc) vg_error_set(err, rc == VG_ENOMEM ? VG_ENOMEM : VG_EPARSE, "%s", msg);
    vg_arena_free(a);
    return rc == VG_ENOMEM ? VG_ENOMEM : rc ? VG_EPARSE : VG_OK;
}

static vg_err_t run(X *x, const vg_tmpl_data *d)
{
    static const vg_tmpl_data empty;
    x->e.d = d ? d : &empty;
    d = x->e.d;
    tval root = {.k = V_DATA};
    const char *u = d->external_url ? d->external_url : "";
    var pre[] = {
        {"$", root},
        {"$labels", {.k = V_MAP, .map = d->labels, .n = d->nlabels}},
        {"$externalLabels", {.k = V_MAP, .map = d->external_labels, .n = d->nexternal_labels}},
        {"$externalURL", {.k = V_STR, .s = u, .slen = strlen(u)}},
        {"$value", {.k = V_FLOAT, .f = d->value}}};
    memcpy(x->vars, pre, sizeof pre);
    x->nvars = 5;
    x->exec_name = x->e.t->name;
    return walk_list(x, x->e.t->root, root);
}

vg_err_t vg_tmpl_expand(const char *name, const char *src, const vg_tmpl_data *d, vg_buf *out)
{
    vg_arena_t *a = vg_arena_new(8192);
    X *x = vg_calloc(1, sizeof *x);
    vg_buf tmp;
    ttree t;
    char msg[TMPL_MSG] = "";
    vg_err_t rc = (a && x) ? VG_OK : VG_ENOMEM;
    vg_buf_init(&tmp, TMPL_MAX_OUT);
    if (!rc) rc = tmpl_parse(a, name, src, &t, msg);
    if (rc == VG_EPARSE) {
        rc = vg_buf_printf(out, "<error expanding template: error parsing template %s: %s>", name,
                           msg);
        goto out;
    }
    if (rc) goto out;
    x->e.a = a, x->e.t = &t, x->e.out = &tmp;
    rc = run(x, d);
    if (rc == VG_EINVAL)
        rc = vg_buf_printf(out, "<error expanding template: error executing template %s: %s>", name,
                           x->err);
    else if (!rc)
        rc = vg_buf_append(out, tmp.data ? tmp.data : "", tmp.len);
    if (rc == VG_ETOOLARGE) /* out's own cap: say so in what fits */
        rc = vg_buf_printf(out, "<error expanding template: %s: output too large>", name);
out:
    vg_buf_free(&tmp);
    vg_free(x);
    vg_arena_free(a);
    return rc;
}
