/*
 * metrics_http.c - serve the self-metrics registry and health endpoints.
 *
 * Kept apart from metrics.c so the registry itself does not depend on the
 * HTTP server: tools that only count things link no libmicrohttpd code paths.
 * Every Vigil process calls vg_metrics_serve once on its server, which is
 * what makes /metrics, /-/healthy and /-/ready identical everywhere.
 */
#include "vigil/httpd.h"
#include "vigil/metrics.h"

static void serve_metrics(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    vg_metrics_t *m = ud;
    if (vg_metrics_render(m, &resp->body) != VG_OK) {
        vg_http_resp_text(resp, 500, "cannot render metrics: out of memory\n");
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static void serve_healthy(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    vg_http_resp_text(resp, 200, "OK");
}

static void serve_ready(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    if (vg_metrics_ready(ud))
        vg_http_resp_text(resp, 200, "OK");
    else
        vg_http_resp_text(resp, 503, "Service Unavailable");
}

vg_err_t vg_metrics_serve(vg_metrics_t *m, struct vg_httpd *h)
{
    if (!m || !h) return VG_EINVAL;
    vg_err_t rc = vg_httpd_route(h, "GET", "/metrics", serve_metrics, m);
    if (!rc) rc = vg_httpd_route(h, "GET", "/-/healthy", serve_healthy, m);
    if (!rc) rc = vg_httpd_route(h, "GET", "/-/ready", serve_ready, m);
    return rc;
}
