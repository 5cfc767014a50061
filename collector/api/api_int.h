/*
 * api_int.h - what the files of collector/api/ share: the context and the
 * helpers that write Prometheus's error and success envelopes, so every
 * endpoint words its errors the same way.
 */
#ifndef VIGIL_API_INT_H
#define VIGIL_API_INT_H

#include "api/api.h"

struct vg_api {
    vg_tsdb_t *db;
    struct vg_mdstore *md; /* /api/v1/metadata; NULL = always empty */
    vg_promql_engine_t *eng;
    vg_promql_opts opts;
};

/* Prometheus's MinTime/MaxTime (web/api/v1) in milliseconds. */
#define VG_API_MIN_TIME   (INT64_C(-9223309901257974) * 1000)
#define VG_API_MAX_TIME   (INT64_C(9223309901257974) * 1000 + 999)
#define VG_API_STALE_BITS UINT64_C(0x7ff0000000000002)
#define VG_API_TRUNCATED  "results truncated due to limit"
#define VG_API_MAX_LABELS 1024 /* the store refuses series with more */

/* Replace out by an error envelope with a printf message; returns status. */
int vg_api__fail(vg_buf *out, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Status and errorType for an engine or store error code, and the envelope. */
int vg_api__exec_error(vg_buf *out, vg_err_t rc, const vg_error *err);
/* The tenant of the request ("default" when none). */
const char *vg_api__tenant(const vg_api_params *p);
/* 0, or a written 400 when the tenant is malformed. */
int vg_api__tenant_ok(const vg_api_params *p, vg_buf *out);
/* A parseTimeParam-style optional time: 0, or a written 400 naming the parameter. */
int vg_api__time_param(const char *name, const char *s, int64_t dflt, int64_t *ms, vg_buf *out);
/* parseLimitParam: 0 (limit 0 = none), or a written 400. */
int vg_api__limit_param(const char *s, size_t *limit, vg_buf *out);
/* Close a success envelope: optional warnings and infos, then '}'. */
vg_err_t vg_api__finish(vg_buf *out, const char *const *warnings, size_t nw,
                        const char *const *infos, size_t ni);
/* A queryable over the request's tenant (tq is its storage). */
vg_queryable vg_api__queryable(vg_api_t *api, const vg_api_params *p, vg_tsdb_queryable *tq);
/* Go's %q of s appended to b. */
void vg_api__quote(vg_buf *b, const char *s);

/* The AST of a parsed query as Prometheus 3's parse_query JSON. */
vg_err_t vg_api__ast_json(vg_buf *out, const vg_pq_node *n);

#endif
