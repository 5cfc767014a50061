/*
 * ast_json.c - a parsed query as the JSON of Prometheus 3's
 * /api/v1/parse_query (web/api/v1 translateAST), which the Prometheus UI's
 * tree view and other tools read.
 *
 * Prometheus builds Go maps and lets encoding/json print them, so keys come
 * out sorted alphabetically; each writer below lists its keys in that
 * order. Durations and offsets are milliseconds, `timestamp` is the '@'
 * time in milliseconds or null, `startOrEnd` is "start"/"end" or null.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "promql/functions_table.h"
#include "vigil/metrics.h"

static vg_err_t node(vg_buf *b, const vg_pq_node *n);

static vg_err_t str(vg_buf *b, const char *s)
{
    return vg_buf_json_str(b, s ? s : "", s ? strlen(s) : 0);
}

static vg_err_t strings(vg_buf *b, const char *const *v, size_t n)
{
    vg_err_t rc = vg_buf_putc(b, '[');
    for (size_t i = 0; i < n && !rc; i++) {
        if (i) rc = vg_buf_putc(b, ',');
        if (!rc) rc = str(b, v[i]);
    }
    return rc ? rc : vg_buf_putc(b, ']');
}

static const char *match_op(vg_match_op op)
{
    static const char *const ops[] = {"=", "!=", "=~", "!~"};
    return (unsigned)op < 4 ? ops[op] : "=";
}

static vg_err_t matchers(vg_buf *b, vg_matcher_t *const *m, size_t n)
{
    vg_err_t rc = vg_buf_puts(b, "\"matchers\":[");
    for (size_t i = 0; i < n && !rc; i++) {
        rc = vg_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        if (!rc) rc = str(b, vg_matcher_name(m[i]));
        if (!rc)
            rc = vg_buf_printf(b, ",\"type\":\"%s\",\"value\":", match_op(vg_matcher_op(m[i])));
        if (!rc) rc = str(b, vg_matcher_value(m[i]));
        if (!rc) rc = vg_buf_putc(b, '}');
    }
    return rc ? rc : vg_buf_puts(b, "],");
}

/* ,"startOrEnd":...,"timestamp":... (the keys that follow "range"/"step"). */
static vg_err_t at_fields(vg_buf *b, vg_pq_at at, int64_t at_ms)
{
    const char *se = at == VG_PQ_AT_START ? "\"start\"" : at == VG_PQ_AT_END ? "\"end\"" : "null";
    if (at == VG_PQ_AT_TS)
        return vg_buf_printf(b, ",\"startOrEnd\":null,\"timestamp\":%lld", (long long)at_ms);
    return vg_buf_printf(b, ",\"startOrEnd\":%s,\"timestamp\":null", se);
}

static vg_err_t selector(vg_buf *b, const vg_pq_node *n)
{
    const vg_pq_selector *s = &n->u.sel;
    int matrix = n->kind == VG_PQ_MATRIX_SEL;
    vg_err_t rc = vg_buf_putc(b, '{');
    if (!rc) rc = matchers(b, s->matchers, s->nmatchers);
    if (!rc) rc = vg_buf_puts(b, "\"name\":");
    if (!rc) rc = str(b, s->name);
    if (!rc) rc = vg_buf_printf(b, ",\"offset\":%lld", (long long)s->offset_ms);
    if (!rc && matrix) rc = vg_buf_printf(b, ",\"range\":%lld", (long long)s->range_ms);
    if (!rc) rc = at_fields(b, s->at, s->at_ms);
    if (!rc)
        rc = vg_buf_printf(b, ",\"type\":\"%s\"}", matrix ? "matrixSelector" : "vectorSelector");
    return rc;
}

static vg_err_t subquery(vg_buf *b, const vg_pq_subquery *s)
{
    vg_err_t rc = vg_buf_puts(b, "{\"expr\":");
    if (!rc) rc = node(b, s->expr);
    if (!rc)
        rc = vg_buf_printf(b, ",\"offset\":%lld,\"range\":%lld", (long long)s->offset_ms,
                           (long long)s->range_ms);
    if (!rc) rc = at_fields(b, s->at, s->at_ms);
    if (!rc) rc = vg_buf_printf(b, ",\"step\":%lld,\"type\":\"subquery\"}", (long long)s->step_ms);
    return rc;
}

static vg_err_t aggregate(vg_buf *b, const vg_pq_aggregate *a)
{
    vg_err_t rc = vg_buf_puts(b, "{\"expr\":");
    if (!rc) rc = node(b, a->expr);
    if (!rc) rc = vg_buf_puts(b, ",\"grouping\":");
    if (!rc) rc = strings(b, a->grouping, a->ngrouping);
    if (!rc) rc = vg_buf_printf(b, ",\"op\":\"%s\",\"param\":", vg_pq_aggop_name(a->op));
    if (!rc) rc = node(b, a->param);
    if (!rc)
        rc = vg_buf_printf(b, ",\"type\":\"aggregation\",\"without\":%s}",
                           a->without ? "true" : "false");
    return rc;
}

static vg_err_t matching(vg_buf *b, const vg_pq_matching *m)
{
    static const char *const card[] = {"one-to-one", "many-to-one", "one-to-many", "many-to-many"};
    if (!m) return vg_buf_puts(b, "null");
    vg_err_t rc = vg_buf_printf(b, "{\"card\":\"%s\",\"include\":", card[m->card & 3]);
    if (!rc) rc = strings(b, m->include, m->ninclude);
    if (!rc) rc = vg_buf_puts(b, ",\"labels\":");
    if (!rc) rc = strings(b, m->labels, m->nlabels);
    if (!rc) rc = vg_buf_printf(b, ",\"on\":%s}", m->on ? "true" : "false");
    return rc;
}

static vg_err_t binary(vg_buf *b, const vg_pq_binary *x)
{
    vg_err_t rc = vg_buf_printf(b, "{\"bool\":%s,\"lhs\":", x->return_bool ? "true" : "false");
    if (!rc) rc = node(b, x->lhs);
    if (!rc) rc = vg_buf_puts(b, ",\"matching\":");
    if (!rc) rc = matching(b, x->matching);
    if (!rc) rc = vg_buf_printf(b, ",\"op\":\"%s\",\"rhs\":", vg_pq_op_name(x->op));
    if (!rc) rc = node(b, x->rhs);
    return rc ? rc : vg_buf_puts(b, ",\"type\":\"binaryExpr\"}");
}

/* Prometheus's Function.Variadic: 0 exact, -1 unlimited, n > 0 up to n
 * optional. Our table swaps the first two (-1 exact, 0 unlimited). */
static int prom_variadic(const vg_pq_func *f)
{
    if (!f) return 0;
    return f->variadic == -1 ? 0 : f->variadic == 0 ? -1 : f->variadic;
}

static vg_err_t func(vg_buf *b, const vg_pq_call *c)
{
    const vg_pq_func *f = c->func ? c->func : vg_pq_func_lookup(c->name);
    vg_err_t rc = vg_buf_puts(b, "{\"argTypes\":[");
    for (int i = 0; f && i < f->nargs && !rc; i++)
        rc = vg_buf_printf(b, "%s\"%s\"", i ? "," : "", vg_pq_value_type_name(f->arg_types[i]));
    if (!rc) rc = vg_buf_puts(b, "],\"name\":");
    if (!rc) rc = str(b, c->name);
    if (!rc)
        rc = vg_buf_printf(b, ",\"returnType\":\"%s\",\"variadic\":%d}",
                           vg_pq_value_type_name(f ? f->ret : VG_PQ_TYPE_NONE), prom_variadic(f));
    return rc;
}

static vg_err_t call(vg_buf *b, const vg_pq_call *c)
{
    vg_err_t rc = vg_buf_puts(b, "{\"args\":[");
    for (size_t i = 0; i < c->nargs && !rc; i++) {
        if (i) rc = vg_buf_putc(b, ',');
        if (!rc) rc = node(b, c->args[i]);
    }
    if (!rc) rc = vg_buf_puts(b, "],\"func\":");
    if (!rc) rc = func(b, c);
    return rc ? rc : vg_buf_puts(b, ",\"type\":\"call\"}");
}

/* strconv.FormatFloat(v, 'f', -1, 64), with Go's spellings of Inf and NaN. */
static vg_err_t number(vg_buf *b, double v)
{
    char buf[VG_FMT_FLOAT_JSON_SIZE];
    if (isnan(v)) return vg_buf_puts(b, "{\"type\":\"numberLiteral\",\"val\":\"NaN\"}");
    if (isinf(v))
        return vg_buf_printf(b, "{\"type\":\"numberLiteral\",\"val\":\"%cInf\"}",
                             v < 0 ? '-' : '+');
    if (fabs(v) >= 1e21)
        snprintf(buf, sizeof buf, "%.0f", v);
    else
        vg_fmt_float_json(v, buf);
    return vg_buf_printf(b, "{\"type\":\"numberLiteral\",\"val\":\"%s\"}", buf);
}

static vg_err_t unary(vg_buf *b, const vg_pq_node *n, const char *type)
{
    vg_err_t rc = vg_buf_puts(b, "{\"expr\":");
    if (!rc) rc = node(b, n->u.unary.expr);
    if (!rc && n->kind == VG_PQ_UNARY)
        rc = vg_buf_printf(b, ",\"op\":\"%s\"", n->u.unary.op == VG_PQ_OP_SUB ? "-" : "+");
    return rc ? rc : vg_buf_printf(b, ",\"type\":\"%s\"}", type);
}

static vg_err_t node(vg_buf *b, const vg_pq_node *n)
{
    while (n && n->kind == VG_PQ_STEP_INVARIANT) n = n->u.unary.expr;
    if (!n) return vg_buf_puts(b, "null");
    switch (n->kind) {
    case VG_PQ_NUMBER: return number(b, n->u.num);
    case VG_PQ_STRING:
        if (vg_buf_puts(b, "{\"type\":\"stringLiteral\",\"val\":") || str(b, n->u.str))
            return VG_ENOMEM;
        return vg_buf_putc(b, '}');
    case VG_PQ_VECTOR_SEL:
    case VG_PQ_MATRIX_SEL: return selector(b, n);
    case VG_PQ_SUBQUERY: return subquery(b, &n->u.sub);
    case VG_PQ_PAREN: return unary(b, n, "parenExpr");
    case VG_PQ_UNARY: return unary(b, n, "unaryExpr");
    case VG_PQ_BINARY: return binary(b, &n->u.bin);
    case VG_PQ_AGGREGATE: return aggregate(b, &n->u.agg);
    case VG_PQ_CALL: return call(b, &n->u.call);
    default: return vg_buf_puts(b, "null");
    }
}

vg_err_t vg_api__ast_json(vg_buf *out, const vg_pq_node *n)
{
    return node(out, n);
}
