/*
 * http_ingest.c - POST /ingest/v1/batch, the agent's HTTP transport.
 *
 * Status codes follow the remote-write convention so agents can decide
 * whether to retry: 204 stored, 400 for a batch that will never decode (the
 * agent must not retry it), 415 for a wrong encoding, 501 for a payload this
 * build cannot store, 500 when storage failed and a retry may succeed.
 * 204 is sent only after the WAL fsync that covers the batch's samples.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ingest/ingest.h"
#include "tsdb/tsdb.h"
#include "vigil/log.h"

static int status_for(vg_err_t rc)
{
    switch (rc) {
    case VG_OK: return 204;
    case VG_EPARSE:
    case VG_EINVAL: return 400;
    case VG_ETOOLARGE: return 413;
    case VG_EUNSUPPORTED: return 501;
    case VG_ELIMIT: return 429;
    default: return 500;
    }
}

static void handle_batch(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    vg_ingest_t *in = ud;
    const char *enc = vg_http_req_header(req, "Content-Encoding");
    if (!enc || strcasecmp(enc, "zstd") != 0) {
        vg_http_resp_text(resp, 415, "batch must be sent with Content-Encoding: zstd\n");
        return;
    }
    size_t len = 0;
    const uint8_t *body = vg_http_req_body(req, &len);
    vg_ingest_result res;
    vg_error err = {0};
    vg_err_t rc =
        vg_ingest_batch(in, vg_http_req_header(req, "X-Scope-OrgID"), body, len, &res, &err);
    if (!rc) rc = vg_ingest_sync(in, res.wal_pos, &err); /* answer once it is durable */
    int status = status_for(rc);
    if (rc) {
        char q[600];
        vg_log_warn("ingest", "batch refused", "status=%d err=%s", status,
                    vg_logq(q, sizeof(q), vg_error_msg(&err, rc)));
        if (status == 429) { /* over a tenant limit: the store says when to come back */
            char ra[16];
            int sec = vg_tsdb_retry_after_s(&err);
            snprintf(ra, sizeof(ra), "%d", sec > 0 ? sec : 1);
            vg_http_resp_header(resp, "Retry-After", ra);
        }
        vg_http_resp_text(resp, status, "%s\n", vg_error_msg(&err, rc));
        return;
    }
    resp->status = status;
}

vg_err_t vg_ingest_register_http(vg_ingest_t *in, vg_httpd_t *h)
{
    return vg_httpd_route(h, "POST", "/ingest/v1/batch", handle_batch, in);
}
