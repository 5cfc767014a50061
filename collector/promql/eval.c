/*
 * eval.c - the core of the PromQL evaluator: per-query state and limits,
 * matrices, vectors and label helpers, the per-step driver (pq_range_eval),
 * the node dispatcher, subqueries and step-invariant subtrees, the final
 * clean-up (delayed __name__ removal) and the conversion to a result.
 *
 * See eval.h for the shape. The semantics are Prometheus 3's engine.go:
 * an instant query is a one-step range query, subqueries evaluate their
 * inner expression once over their own aligned steps, a subtree that does
 * not depend on the step (an '@' selector, a literal, ...) is evaluated once
 * at the first step and its value repeated, and every limit is checked as
 * the evaluation goes, not only at the end.
 */
#include "promql/eval.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "promql/lex.h"
#include "promql/parser_int.h"
#include "vigil/alloc.h"
#include "vigil/clock.h"

/* ---------------------------------------------------------------- errors */

vg_err_t pq_fail(pq_ctx *c, vg_err_t code, const char *fmt, ...)
{
    if (c->err && c->err->code == VG_OK) {
        va_list ap;
        va_start(ap, fmt);
        c->err->code = code;
        vsnprintf(c->err->msg, sizeof(c->err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

vg_err_t pq_deadline(pq_ctx *c)
{
    if (c->deadline_ms > 0 && vg_clock_mono_ms() > c->deadline_ms)
        return pq_fail(c, VG_ERETRY, "query timed out in expression evaluation");
    return VG_OK;
}

vg_err_t pq_tick(pq_ctx *c)
{
    if ((++c->ticks & 15) != 1) return VG_OK;
    return pq_deadline(c);
}

vg_err_t pq_samples_over(pq_ctx *c)
{
    return pq_fail(c, VG_ELIMIT,
                   "query processing would load too many samples into memory in query "
                   "execution");
}

void pq_samples_sub(pq_ctx *c, size_t n)
{
    c->cur_samples = n > c->cur_samples ? 0 : c->cur_samples - n;
}

/* Annotations are deduplicated on their message; the last position wins, as
 * in Prometheus's annotation map. */
vg_err_t pq_annotate(pq_ctx *c, int info, const vg_pq_node *node, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < c->nannos; i++) {
        if (strcmp(c->annos[i].msg, msg) == 0) {
            c->annos[i].has_pos = node != NULL;
            if (node) c->annos[i].pos = node->pos;
            return VG_OK;
        }
    }
    if (c->nannos == c->cap_annos) {
        size_t nc = c->cap_annos ? c->cap_annos * 2 : 8;
        pq_anno *na = vg_arena_alloc(c->arena, nc * sizeof(*na));
        if (!na) return VG_ENOMEM;
        if (c->nannos) memcpy(na, c->annos, c->nannos * sizeof(*na));
        c->annos = na;
        c->cap_annos = nc;
    }
    pq_anno *a = &c->annos[c->nannos];
    a->msg = vg_arena_strdup(c->arena, msg);
    if (!a->msg) return VG_ENOMEM;
    a->info = info;
    a->has_pos = node != NULL;
    a->pos = node ? node->pos : 0;
    c->nannos++;
    return VG_OK;
}

/* -------------------------------------------------------------- matrices */

vg_err_t pq_mat_add(pq_ctx *c, pq_matrix *m, const vg_label_t *l, size_t nl, uint64_t hash,
                    int drop_name, size_t *idx)
{
    (void)c;
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 16;
        pq_series *ns = vg_realloc(m->s, nc * sizeof(*ns));
        if (!ns) return VG_ENOMEM;
        m->s = ns;
        m->cap = nc;
    }
    pq_series *s = &m->s[m->n];
    memset(s, 0, sizeof(*s));
    s->lbl = l;
    s->nlbl = nl;
    s->hash = hash;
    s->drop_name = drop_name;
    if (idx) *idx = m->n;
    m->n++;
    return VG_OK;
}

vg_err_t pq_series_reserve(pq_series *s, size_t n)
{
    if (n <= s->cap) return VG_OK;
    int64_t *nt = vg_realloc(s->t, n * sizeof(*nt));
    if (!nt) return VG_ENOMEM;
    s->t = nt;
    double *nv = vg_realloc(s->v, n * sizeof(*nv));
    if (!nv) return VG_ENOMEM;
    s->v = nv;
    s->cap = n;
    return VG_OK;
}

vg_err_t pq_series_push(pq_ctx *c, pq_series *s, int64_t t, double v)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 4;
        int64_t *nt = vg_realloc(s->t, nc * sizeof(*nt));
        if (!nt) return VG_ENOMEM;
        s->t = nt;
        double *nv = vg_realloc(s->v, nc * sizeof(*nv));
        if (!nv) return VG_ENOMEM;
        s->v = nv;
        s->cap = nc;
    }
    s->t[s->n] = t;
    s->v[s->n] = v;
    s->n++;
    return pq_samples_add(c, 1);
}

size_t pq_mat_points(const pq_matrix *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++) n += m->s[i].n;
    return n;
}

void pq_mat_free(pq_ctx *c, pq_matrix *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) {
        if (c) pq_samples_sub(c, m->s[i].n);
        vg_free(m->s[i].t);
        vg_free(m->s[i].v);
    }
    vg_free(m->s);
    memset(m, 0, sizeof(*m));
}

void pq_value_free(pq_ctx *c, pq_value *v)
{
    if (v) pq_mat_free(c, &v->m);
}

size_t pq_nsteps(const pq_ev *ev)
{
    return (size_t)((ev->end - ev->start) / ev->interval) + 1;
}

vg_err_t pq_scalar_const(pq_ev *ev, double v, pq_matrix *out)
{
    vg_err_t rc = pq_mat_add(ev->c, out, NULL, 0, vg_labels_hash(NULL, 0), 0, NULL);
    for (int64_t ts = ev->start; !rc && ts <= ev->end; ts += ev->interval)
        rc = pq_series_push(ev->c, &out->s[0], ts, v);
    return rc;
}

static int series_cmp(const void *a, const void *b)
{
    const pq_series *x = a, *y = b;
    return vg_labels_cmp(x->lbl, x->nlbl, y->lbl, y->nlbl);
}

void pq_mat_sort(pq_matrix *m)
{
    if (m->n > 1) qsort(m->s, m->n, sizeof(*m->s), series_cmp);
}

vg_err_t pq_vec_push(pq_ctx *c, pq_vector *v, const pq_sample *s)
{
    (void)c;
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 16;
        pq_sample *ns = vg_realloc(v->s, nc * sizeof(*ns));
        if (!ns) return VG_ENOMEM;
        v->s = ns;
        v->cap = nc;
    }
    v->s[v->n++] = *s;
    return VG_OK;
}

void pq_vec_free(pq_vector *v)
{
    vg_free(v->s);
    memset(v, 0, sizeof(*v));
}

/* ---------------------------------------------------------------- labels */

vg_err_t pq_lbl_copy(pq_ctx *c, const vg_label_t *l, size_t n, const vg_label_t **out)
{
    vg_label_t *r = vg_arena_alloc(c->arena, (n ? n : 1) * sizeof(*r));
    if (!r) return VG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        r[i].name = vg_arena_strdup(c->arena, l[i].name);
        r[i].value = vg_arena_strdup(c->arena, l[i].value);
        if (!r[i].name || !r[i].value) return VG_ENOMEM;
    }
    *out = r;
    return VG_OK;
}

vg_err_t pq_lbl_set(pq_ctx *c, const vg_label_t *l, size_t n, const char *name, const char *value,
                    const vg_label_t **out, size_t *nout)
{
    vg_label_t *r = vg_arena_alloc(c->arena, (n + 1) * sizeof(*r));
    if (!r) return VG_ENOMEM;
    size_t k = 0;
    int done = 0;
    for (size_t i = 0; i < n; i++) {
        int cmp = strcmp(l[i].name, name);
        if (!done && cmp >= 0) {
            done = 1;
            if (value && value[0]) r[k++] = (vg_label_t){name, value};
            if (cmp == 0) continue;
        }
        r[k++] = l[i];
    }
    if (!done && value && value[0]) r[k++] = (vg_label_t){name, value};
    *out = r;
    *nout = k;
    return VG_OK;
}

static int in_names(const char *s, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return 1;
    return 0;
}

vg_err_t pq_lbl_without(pq_ctx *c, const vg_label_t *l, size_t n, const char *const *del,
                        size_t ndel, int drop_name, const vg_label_t **out, size_t *nout)
{
    vg_label_t *r = vg_arena_alloc(c->arena, (n ? n : 1) * sizeof(*r));
    if (!r) return VG_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (drop_name && strcmp(l[i].name, VG_METRIC_NAME) == 0) continue;
        if (in_names(l[i].name, del, ndel)) continue;
        r[k++] = l[i];
    }
    *out = r;
    *nout = k;
    return VG_OK;
}

vg_err_t pq_lbl_keep(pq_ctx *c, const vg_label_t *l, size_t n, const char *const *keep,
                     size_t nkeep, const vg_label_t **out, size_t *nout)
{
    vg_label_t *r = vg_arena_alloc(c->arena, (n ? n : 1) * sizeof(*r));
    if (!r) return VG_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (in_names(l[i].name, keep, nkeep)) r[k++] = l[i];
    *out = r;
    *nout = k;
    return VG_OK;
}

uint64_t pq_lbl_hash_subset(const vg_label_t *l, size_t n, const char *const *names, size_t nn,
                            int keep)
{
    char stack[1024];
    size_t need = 0;
    stack[0] = 0;
    for (size_t i = 0; i < n; i++) need += strlen(l[i].name) + strlen(l[i].value) + 2;
    char *buf = need <= sizeof(stack) ? stack : vg_malloc(need);
    if (!buf) return 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int listed = in_names(l[i].name, names, nn);
        if (keep ? !listed : (listed || strcmp(l[i].name, VG_METRIC_NAME) == 0)) continue;
        size_t a = strlen(l[i].name), b = strlen(l[i].value);
        memcpy(buf + k, l[i].name, a);
        k += a;
        buf[k++] = '\xff';
        memcpy(buf + k, l[i].value, b);
        k += b;
        buf[k++] = '\xff';
    }
    uint64_t h = XXH3_64bits(buf, k);
    if (buf != stack) vg_free(buf);
    return h;
}

/* Go's strconv.Quote for a label value: printable UTF-8 kept, escapes for
 * quotes, backslashes and control bytes. */
static vg_err_t go_quote(vg_buf *b, const char *s)
{
    vg_lex_goquote(b, s, strlen(s), 0);
    return VG_OK;
}

const char *pq_lbl_string(pq_ctx *c, const vg_label_t *l, size_t n)
{
    vg_buf b;
    vg_buf_init(&b, 1 << 20);
    vg_buf_putc(&b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i) vg_buf_puts(&b, ", ");
        vg_buf_puts(&b, l[i].name);
        vg_buf_putc(&b, '=');
        go_quote(&b, l[i].value);
    }
    vg_buf_putc(&b, '}');
    const char *r = vg_arena_strndup(c->arena, b.data ? b.data : "{}", b.data ? b.len : 2);
    vg_buf_free(&b);
    return r ? r : "{}";
}

int pq_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0) return 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n) return 0;
        uint32_t cp = len == 1 ? c : c & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

const char *pq_metric_name(const vg_label_t *l, size_t n)
{
    const char *v = vg_labels_get(l, n, VG_METRIC_NAME);
    return v ? v : "";
}

/* ------------------------------------------------------------------- map */

static uint64_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

static vg_err_t map_grow(pq_map *m)
{
    size_t nc = m->cap ? m->cap * 2 : 64;
    pq_map n = {0};
    n.keys = vg_malloc(nc * sizeof(*n.keys));
    n.vals = vg_malloc(nc * sizeof(*n.vals));
    n.used = vg_calloc(nc, 1);
    if (!n.keys || !n.vals || !n.used) {
        vg_free(n.keys);
        vg_free(n.vals);
        vg_free(n.used);
        return VG_ENOMEM;
    }
    n.cap = nc;
    for (size_t i = 0; i < m->cap; i++)
        if (m->used[i]) pq_map_put(&n, m->keys[i], m->vals[i]);
    pq_map_free(m);
    *m = n;
    return VG_OK;
}

vg_err_t pq_map_put(pq_map *m, uint64_t k, size_t v)
{
    if ((m->n + 1) * 2 > m->cap) {
        vg_err_t rc = map_grow(m);
        if (rc) return rc;
    }
    size_t i = mix(k) & (m->cap - 1);
    while (m->used[i] && m->keys[i] != k) i = (i + 1) & (m->cap - 1);
    if (!m->used[i]) {
        m->used[i] = 1;
        m->keys[i] = k;
        m->n++;
    }
    m->vals[i] = v;
    return VG_OK;
}

int pq_map_get(const pq_map *m, uint64_t k, size_t *v)
{
    if (!m->cap) return 0;
    size_t i = mix(k) & (m->cap - 1);
    while (m->used[i]) {
        if (m->keys[i] == k) {
            if (v) *v = m->vals[i];
            return 1;
        }
        i = (i + 1) & (m->cap - 1);
    }
    return 0;
}

void pq_map_clear(pq_map *m)
{
    if (m->cap) memset(m->used, 0, m->cap);
    m->n = 0;
}

void pq_map_free(pq_map *m)
{
    vg_free(m->keys);
    vg_free(m->vals);
    vg_free(m->used);
    memset(m, 0, sizeof(*m));
}

/* --------------------------------------------------- Go float formatting */

/* Shortest round-trip digits of v > 0: digits in d (no dot), exponent dp
 * such that v = 0.d * 10^dp. */
static int shortest(double v, char *d, int *dp)
{
    char tmp[64];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
        if (strtod(tmp, NULL) == v) break;
    }
    int nd = 0;
    const char *s = tmp;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') d[nd++] = *s;
    *dp = (*s == 'e' ? atoi(s + 1) : 0) + 1;
    while (nd > 1 && d[nd - 1] == '0') nd--;
    d[nd] = 0;
    return nd;
}

const char *pq_fmt_float_f(double v, char *buf)
{
    if (isnan(v)) return strcpy(buf, "NaN");
    if (isinf(v)) return strcpy(buf, v > 0 ? "+Inf" : "-Inf");
    char *p = buf;
    if (signbit(v)) *p++ = '-', v = -v;
    if (v == 0) {
        strcpy(p, "0");
        return buf;
    }
    char d[32];
    int dp, nd = shortest(v, d, &dp);
    if (dp <= 0) {
        *p++ = '0';
        *p++ = '.';
        for (int i = 0; i < -dp; i++) *p++ = '0';
        memcpy(p, d, (size_t)nd);
        p += nd;
    } else {
        for (int i = 0; i < dp; i++) *p++ = i < nd ? d[i] : '0';
        if (nd > dp) {
            *p++ = '.';
            memcpy(p, d + dp, (size_t)(nd - dp));
            p += nd - dp;
        }
    }
    *p = 0;
    return buf;
}

/* ---------------------------------------------------- per-step evaluation */

vg_err_t pq_gather(pq_ctx *c, pq_matrix *m, int64_t ts, pq_vector *vec)
{
    vec->n = 0;
    for (size_t i = 0; i < m->n; i++) {
        pq_series *s = &m->s[i];
        while (s->cur < s->n && s->t[s->cur] < ts) s->cur++;
        if (s->cur >= s->n || s->t[s->cur] != ts) continue;
        pq_sample smp = {s->lbl, s->nlbl, s->hash, s->v[s->cur], ts, i, s->drop_name};
        s->cur++;
        vg_err_t rc = pq_vec_push(c, vec, &smp);
        if (rc) return rc;
    }
    return VG_OK;
}

/* Add one step's output to the output matrix. */
static vg_err_t collect_step(pq_ev *ev, pq_vector *res, int64_t ts, pq_map *idx, pq_matrix *out)
{
    pq_ctx *c = ev->c;
    for (size_t i = 0; i < res->n; i++) {
        pq_sample *s = &res->s[i];
        size_t k;
        vg_err_t rc;
        if (ev->start == ev->end) {
            rc = pq_mat_add(c, out, s->lbl, s->nlbl, s->hash, s->drop_name, &k);
        } else if (pq_map_get(idx, s->hash, &k)) {
            pq_series *o = &out->s[k];
            if (o->n && o->t[o->n - 1] == ts)
                return pq_fail(c, VG_EINVAL,
                               "vector cannot contain metrics with the same labelset");
            rc = VG_OK;
        } else {
            rc = pq_mat_add(c, out, s->lbl, s->nlbl, s->hash, s->drop_name, &k);
            if (!rc) rc = pq_map_put(idx, s->hash, k);
        }
        if (!rc) rc = pq_series_push(c, &out->s[k], ts, s->v);
        if (rc) return rc;
    }
    return VG_OK;
}

vg_err_t pq_range_eval(pq_ev *ev, pq_value *args, size_t nargs, pq_step_fn fn, void *ud,
                       pq_matrix *out)
{
    pq_ctx *c = ev->c;
    vg_err_t rc = VG_OK;
    pq_vector in[16] = {{0}};
    pq_vector res = {0};
    pq_map idx = {0};
    if (nargs > 16) return pq_fail(c, VG_EINVAL, "too many arguments");
    for (size_t a = 0; a < nargs; a++)
        for (size_t i = 0; i < args[a].m.n; i++) args[a].m.s[i].cur = 0;
    for (int64_t ts = ev->start; ts <= ev->end; ts += ev->interval) {
        if ((rc = pq_tick(c))) break;
        for (size_t a = 0; a < nargs && !rc; a++)
            if (args[a].type != VG_PQ_TYPE_STRING) rc = pq_gather(c, &args[a].m, ts, &in[a]);
        if (rc) break;
        res.n = 0;
        if ((rc = fn(ev, in, ts, &res, ud))) break;
        if ((rc = collect_step(ev, &res, ts, &idx, out))) break;
    }
    for (size_t a = 0; a < nargs; a++) pq_vec_free(&in[a]);
    pq_vec_free(&res);
    pq_map_free(&idx);
    return rc;
}

/* ------------------------------------------------------------ node info */

vg_pq_node *pq_unwrap(vg_pq_node *n)
{
    while (n && (n->kind == VG_PQ_PAREN || n->kind == VG_PQ_STEP_INVARIANT)) n = n->u.unary.expr;
    return n;
}

vg_pq_fn_id pq_call_id(const vg_pq_node *n)
{
    const vg_pq_func *f = n->u.call.func;
    if (!f && n->u.call.name) f = vg_pq_func_lookup(n->u.call.name);
    return f ? f->id : VG_PQ_FN__COUNT;
}

/* One definition of the typing rules: the parser's. */
vg_pq_type pq_node_type(const vg_pq_node *n)
{
    return vg_pq_node_type(n);
}

/* ---------------------------------------------------------------- nodes */

static vg_err_t eval_unary(pq_ev *ev, vg_pq_node *n, pq_value *out)
{
    vg_err_t rc = pq_eval(ev, n->u.unary.expr, out);
    if (rc || n->u.unary.op != VG_PQ_OP_SUB) return rc;
    for (size_t i = 0; i < out->m.n; i++) {
        pq_series *s = &out->m.s[i];
        for (size_t j = 0; j < s->n; j++) s->v[j] = -s->v[j];
        s->drop_name = 1;
    }
    return VG_OK;
}

/* Evaluate once at the first step and repeat the value at every step. */
static vg_err_t eval_step_invariant(pq_ev *ev, vg_pq_node *n, pq_value *out)
{
    pq_ev one = {ev->c, ev->start, ev->start, ev->interval};
    vg_pq_node *inner = n->u.unary.expr;
    vg_err_t rc = pq_eval(&one, inner, out);
    if (rc || ev->start == ev->end) return rc;
    vg_pq_node *u = pq_unwrap(inner);
    if (u->kind == VG_PQ_MATRIX_SEL || u->kind == VG_PQ_SUBQUERY || out->type == VG_PQ_TYPE_STRING)
        return VG_OK;
    for (size_t i = 0; i < out->m.n && !rc; i++) {
        pq_series *s = &out->m.s[i];
        if (s->n != 1) continue;
        double v = s->v[0];
        for (int64_t ts = ev->start + ev->interval; !rc && ts <= ev->end; ts += ev->interval)
            rc = pq_series_push(ev->c, s, ts, v);
    }
    return rc;
}

vg_err_t pq_eval_subquery(pq_ev *ev, vg_pq_node *n, pq_matrix *out)
{
    const vg_pq_subquery *sq = &n->u.sub;
    int64_t step = sq->step_ms > 0 ? sq->step_ms : PQ_DEFAULT_SUBQUERY_STEP_MS;
    int64_t bstart = ev->start, bend = ev->end;
    if (sq->at != VG_PQ_AT_NONE) bstart = bend = pq_ref_time(ev, sq->at, sq->at_ms, 0, 0);
    pq_ev sub = {ev->c, 0, bend - sq->offset_ms, step};
    int64_t s0 = bstart - sq->offset_ms - sq->range_ms;
    sub.start = step * (s0 / step);
    if (sub.start <= s0) sub.start += step;
    if (sub.end < sub.start) return VG_OK;
    /* Per-step arrays of the inner evaluation scale with its steps: a step
     * count no result could hold is refused before anything is allocated. */
    if ((uint64_t)((sub.end - sub.start) / step) >= ev->c->max_samples)
        return pq_samples_add(ev->c, ev->c->max_samples + 1);
    pq_value v = {0};
    vg_err_t rc = pq_eval(&sub, sq->expr, &v);
    if (rc) {
        pq_value_free(ev->c, &v);
        return rc;
    }
    *out = v.m;
    return VG_OK;
}

vg_err_t pq_eval(pq_ev *ev, vg_pq_node *n, pq_value *out)
{
    vg_err_t rc = pq_deadline(ev->c);
    if (rc) return rc;
    memset(out, 0, sizeof(*out));
    out->type = pq_node_type(n);
    if (ev->end < ev->start) return VG_OK;
    switch (n->kind) {
    case VG_PQ_NUMBER: return pq_scalar_const(ev, n->u.num, &out->m);
    case VG_PQ_STRING: out->str = n->u.str; return VG_OK;
    case VG_PQ_VECTOR_SEL: return pq_eval_vector_sel(ev, n, 0, &out->m);
    case VG_PQ_MATRIX_SEL:
        if (ev->start != ev->end)
            return pq_fail(ev->c, VG_EINVAL, "cannot do range evaluation of matrix selector");
        return pq_eval_matrix_sel(ev, n, &out->m);
    case VG_PQ_SUBQUERY: return pq_eval_subquery(ev, n, &out->m);
    case VG_PQ_PAREN: return pq_eval(ev, n->u.unary.expr, out);
    case VG_PQ_UNARY: return eval_unary(ev, n, out);
    case VG_PQ_BINARY: return pq_eval_binary(ev, n, &out->m);
    case VG_PQ_AGGREGATE: return pq_eval_aggregate(ev, n, &out->m);
    case VG_PQ_CALL: return pq_eval_call(ev, n, &out->m);
    case VG_PQ_STEP_INVARIANT: return eval_step_invariant(ev, n, out);
    }
    return pq_fail(ev->c, VG_EINTERNAL, "unhandled expression kind %d", (int)n->kind);
}
