/*
 * audit_http.c - the audit store over HTTP: POST /ingest/v1/dlq (the
 * agent's dead-letter path in HTTP mode; vg_auditstore_dlq_ingest is the
 * same path for the Kafka dead-letter topic), GET /api/v1/audit/query,
 * /api/v1/audit/stats, /api/v1/audit/dlq and DELETE
 * /api/v1/audit/subject/{user_id}?tenant=T.
 *
 * Query answers are JSON lines (one stored record per line) so a client can
 * stream them; the cursor for the next page travels in the
 * X-Vigil-Next-Cursor header (absent on the last page), which keeps every
 * body line a record.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "auditstore/auditstore.h"
#include "auditstore/auditstore_int.h"
#include "vigil/log.h"

#define MAX_DLQ_BODY (4u << 20)

static int status_for(vg_err_t rc)
{
    switch (rc) {
    case VG_OK: return 200;
    case VG_EINVAL:
    case VG_EPARSE: return 400;
    case VG_ETOOLARGE: return 413;
    case VG_ENOTFOUND: return 404;
    default: return 500;
    }
}

static void fail(vg_http_resp *resp, vg_err_t rc, const vg_error *err)
{
    vg_http_resp_text(resp, status_for(rc), "%s\n", vg_error_msg(err, rc));
}

static const char *tenant_arg(const vg_http_req *req)
{
    const char *t = vg_http_req_arg(req, "tenant");
    if (!t || !*t) t = vg_http_req_header(req, "X-Scope-OrgID");
    return t && *t ? t : NULL;
}

/* ---- DLQ ---- */

static void reason_label(const char *reason, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = reason; *p && n + 1 < cap; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || c == '_' || (c >= '0' && c <= '9'))) {
            snprintf(out, cap, "other");
            return;
        }
        out[n++] = c;
    }
    out[n] = 0;
    if (!n || n >= 32) snprintf(out, cap, "other");
}

static vg_err_t dlq_one(vg_auditstore_t *s, const char *hdr_tenant, json_t *e, vg_error *err)
{
    const char *tenant = json_string_value(json_object_get(e, "tenant"));
    const char *reason = json_string_value(json_object_get(e, "reason"));
    const char *line = json_string_value(json_object_get(e, "line"));
    const char *fid = json_string_value(json_object_get(e, "file_id"));
    json_t *off = json_object_get(e, "offset");
    if (hdr_tenant) tenant = hdr_tenant;
    if (!tenant || !*tenant) tenant = "default";
    if (!reason || !line || !fid || !json_is_integer(off) || json_integer_value(off) < 0)
        return vg_error_set(err, VG_EINVAL,
                            "dead-letter entry needs reason, line, file_id, offset");
    int dup = 0;
    vg_err_t rc = vg_auditstore_dlq_add(s, tenant, reason, line, fid,
                                        (uint64_t)json_integer_value(off), &dup, err);
    if (!rc && !dup) {
        char lab[64], l2[80];
        reason_label(reason, lab, sizeof(lab));
        snprintf(l2, sizeof(l2), "reason=\"%s\"", lab);
        vg_metric_inc(vg_metrics_counter(s->metrics, "vigil_audit_dlq_total",
                                         "Audit lines dead-lettered by agents, by reason.", l2));
    }
    return rc;
}

vg_err_t vg_auditstore_dlq_ingest(vg_auditstore_t *s, const char *tenant, const uint8_t *data,
                                  size_t len, vg_error *err)
{
    json_error_t je;
    if (len > MAX_DLQ_BODY) return vg_error_set(err, VG_ETOOLARGE, "dead letters over 4 MiB");
    json_t *j = json_loadb((const char *)data, len, 0, &je);
    if (!j) return vg_error_set(err, VG_EPARSE, "dead letter: invalid JSON: %s", je.text);
    vg_err_t rc = VG_OK;
    if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j) && !rc; i++)
            rc = dlq_one(s, tenant, json_array_get(j, i), err);
    } else {
        rc = dlq_one(s, tenant, j, err);
    }
    json_decref(j);
    return rc;
}

static void handle_dlq_post(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    size_t len = 0;
    const uint8_t *body = vg_http_req_body(req, &len);
    vg_error err = {0};
    const char *ht = vg_http_req_header(req, "X-Scope-OrgID");
    vg_err_t rc = vg_auditstore_dlq_ingest(ud, ht && *ht ? ht : NULL, body, len, &err);
    if (rc) return fail(resp, rc, &err);
    resp->status = 204;
}

static void handle_dlq_get(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    const char *lim = vg_http_req_arg(req, "limit");
    vg_error err = {0};
    vg_err_t rc = vg_auditstore_dlq_list(ud, tenant_arg(req), lim ? strtoul(lim, NULL, 10) : 0,
                                         &resp->body, &err);
    if (rc) return fail(resp, rc, &err);
    resp->content_type = "application/x-ndjson";
}

/* ---- query, stats, erasure ---- */

static vg_err_t time_arg(const vg_http_req *req, const char *name, int64_t *ms, vg_error *err)
{
    const char *v = vg_http_req_arg(req, name);
    *ms = 0;
    if (!v || !*v) return VG_OK;
    return vg_api_parse_time(v, ms, err);
}

static void handle_query(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    vg_error err = {0};
    const char *lim = vg_http_req_arg(req, "limit");
    vg_audit_query q = {
        .tenant = tenant_arg(req),
        .user_id = vg_http_req_arg(req, "user_id"),
        .action = vg_http_req_arg(req, "action"),
        .result = vg_http_req_arg(req, "result"),
        .limit = lim ? strtoul(lim, NULL, 10) : 0,
        .cursor = vg_http_req_arg(req, "cursor"),
    };
    char next[64];
    vg_err_t rc = q.tenant ? VG_OK : vg_error_set(&err, VG_EINVAL, "tenant is required");
    if (!rc) rc = time_arg(req, "from", &q.from_ms, &err);
    if (!rc) rc = time_arg(req, "to", &q.to_ms, &err);
    if (!rc) rc = vg_auditstore_query(ud, &q, &resp->body, next, &err);
    if (rc) {
        vg_buf_reset(&resp->body);
        return fail(resp, rc, &err);
    }
    if (next[0]) vg_http_resp_header(resp, "X-Vigil-Next-Cursor", next);
    resp->content_type = "application/x-ndjson";
}

static void handle_stats(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    (void)req;
    vg_audit_tier_stats st;
    vg_error err = {0};
    vg_err_t rc = vg_auditstore_stats(ud, &st, &err);
    if (rc) return fail(resp, rc, &err);
    vg_buf_puts(&resp->body, "{\"status\":\"success\",\"data\":{");
    for (int t = 0; t < 3; t++)
        vg_buf_printf(&resp->body,
                      "\"%s\":{\"segments\":%" PRIu64 ",\"records\":%" PRIu64 ",\"bytes\":%" PRIu64
                      "},",
                      vg_audit_tiers[t], st.segments[t], st.records[t], st.bytes[t]);
    vg_buf_printf(&resp->body,
                  "\"open_records\":%" PRIu64 ",\"deleted_segments\":%" PRIu64
                  ",\"erasures\":%" PRIu64 "}}\n",
                  st.open_records, st.deleted_segments, st.erasures);
    resp->content_type = "application/json";
}

static void handle_erase(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    const char *path = vg_http_req_path(req), *pre = "/api/v1/audit/subject/";
    const char *subject = path + strlen(pre), *tenant = tenant_arg(req);
    vg_error err = {0};
    uint64_t removed = 0;
    vg_err_t rc = tenant ? VG_OK : vg_error_set(&err, VG_EINVAL, "tenant is required");
    if (!rc && (strncmp(path, pre, strlen(pre)) != 0 || !*subject || strchr(subject, '/')))
        rc = vg_error_set(&err, VG_EINVAL, "expected /api/v1/audit/subject/{user_id}");
    if (!rc) rc = vg_auditstore_erase(ud, tenant, subject, &removed, &err);
    if (rc) return fail(resp, rc, &err);
    vg_buf_printf(&resp->body, "{\"status\":\"success\",\"data\":{\"erased\":%" PRIu64 "}}\n",
                  removed);
    resp->content_type = "application/json";
}

vg_err_t vg_auditstore_register_http(vg_auditstore_t *s, vg_httpd_t *h)
{
    vg_err_t rc = vg_httpd_route(h, "POST", "/ingest/v1/dlq", handle_dlq_post, s);
    if (!rc) rc = vg_httpd_route(h, "GET", "/api/v1/audit/dlq", handle_dlq_get, s);
    if (!rc) rc = vg_httpd_route(h, "GET", "/api/v1/audit/query", handle_query, s);
    if (!rc) rc = vg_httpd_route(h, "GET", "/api/v1/audit/stats", handle_stats, s);
    if (!rc) rc = vg_httpd_route(h, "DELETE", "/api/v1/audit/subject/*", handle_erase, s);
    return rc;
}
