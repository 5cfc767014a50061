/*
 * sink_http.c - ship encoded batches to a collector with POST /ingest/v1/batch.
 *
 * This is the single-machine default transport. The status code is the whole
 * protocol: 2xx means the collector has the batch, 429 and 5xx mean "later"
 * (the batcher backs off and retries the same bytes, so order is kept), and
 * any other status means the collector will never take these bytes, so
 * retrying would only wedge the queue: we log the collector's explanation
 * and let the caller drop (or, with the spool, dead-letter) the batch.
 * One libcurl handle is kept so the connection is reused between batches.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "sink.h"
#include "vigil/alloc.h"
#include "vigil/buf.h"
#include "vigil/envelope.h"
#include "vigil/httpc.h"
#include "vigil/log.h"

#define HTTP_MAX_REPLY (1024 * 1024) /* a collector's answer is a line of text */

struct http_sink {
    pthread_mutex_t mu;
    vg_httpc_t *client;
    char *url; /* <base>/ingest/v1/batch */
    long timeout_ms;
    vg_sink_counters cnt;
};

static void http_free(void *self)
{
    struct http_sink *h = self;
    if (!h) return;
    vg_httpc_free(h->client);
    vg_free(h->url);
    pthread_mutex_destroy(&h->mu);
    vg_free(h);
}

/* Map a status: 2xx OK, 429/5xx retry, anything else final. */
static vg_err_t map_status(int status)
{
    if (status >= 200 && status < 300) return VG_OK;
    if (status == 429 || (status >= 500 && status < 600)) return VG_ERETRY;
    return VG_EPROTO;
}

static vg_err_t http_post(struct http_sink *h, const vg_sink_msg *msg, int *status, vg_buf *resp,
                          vg_error *err)
{
    char tenant_hdr[320], kind_hdr[64];
    snprintf(tenant_hdr, sizeof(tenant_hdr), "X-Scope-OrgID: %s",
             msg->tenant && *msg->tenant ? msg->tenant : "default");
    snprintf(kind_hdr, sizeof(kind_hdr), "X-Vigil-Kind: %s", vg_sink_kind_name(msg->kind));
    const char *const headers[] = {
        "Content-Type: application/x-protobuf",
        "Content-Encoding: zstd",
        "X-Vigil-Schema: " VG_ENVELOPE_SCHEMA,
        tenant_hdr,
        kind_hdr,
        NULL,
    };
    vg_httpc_req req = {
        .method = "POST",
        .url = h->url,
        .headers = headers,
        .body = msg->data,
        .body_len = msg->len,
        .timeout_ms = h->timeout_ms,
        .max_response = HTTP_MAX_REPLY,
    };
    return vg_httpc_do(h->client, &req, status, resp, err);
}

static vg_err_t http_send(void *self, const vg_sink_msg *msg, vg_error *err)
{
    struct http_sink *h = self;
    vg_buf resp;
    int status = 0;
    char q[1024];
    vg_buf_init(&resp, HTTP_MAX_REPLY);
    pthread_mutex_lock(&h->mu);
    vg_err_t rc = http_post(h, msg, &status, &resp, err);
    pthread_mutex_unlock(&h->mu);
    if (rc) {
        if (rc != VG_ERETRY) rc = VG_ERETRY; /* transport trouble: the bytes may still go */
        vg_metric_inc(h->cnt.retry);
        vg_error_prefix(err, "http sink: POST %s", h->url);
        goto out;
    }
    rc = map_status(status);
    if (rc == VG_OK) {
        vg_metric_inc(h->cnt.ok);
    } else if (rc == VG_ERETRY) {
        vg_metric_inc(h->cnt.retry);
        vg_error_set(err, rc, "http sink: POST %s: status %d, will retry", h->url, status);
    } else {
        vg_metric_inc(h->cnt.rejected);
        vg_log_warn("ship", "collector rejected batch",
                    "sink=http seq=%" PRIu64 " status=%d body=%s", msg->seq, status,
                    vg_logq(q, sizeof(q), resp.data ? resp.data : ""));
        vg_error_set(err, rc, "http sink: POST %s: status %d: %.200s", h->url, status,
                     resp.data ? resp.data : "");
    }
out:
    vg_buf_free(&resp);
    return rc;
}

static const struct vg_sink_ops http_ops = {
    .name = "http",
    .send = http_send,
    .free = http_free,
};

static void http_metrics(struct http_sink *h, vg_metrics_t *m)
{
    vg_sink_counters_init(&h->cnt, m, "http");
}

static char *ingest_url(const char *base)
{
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/') n--;
    vg_buf b;
    vg_buf_init(&b, 0);
    if (vg_buf_append(&b, base, n) || vg_buf_puts(&b, "/ingest/v1/batch")) {
        vg_buf_free(&b);
        return NULL;
    }
    return vg_buf_steal(&b, NULL);
}

vg_err_t vg_sink_http_new(const vg_sink_http_opts *o, vg_metrics_t *m, struct vg_sink **out,
                          vg_error *err)
{
    *out = NULL;
    if (!o || !o->url || !*o->url) return vg_error_set(err, VG_ECONFIG, "http sink: url is empty");
    if (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0)
        return vg_error_set(err, VG_ECONFIG,
                            "http sink: url %s must start with http:// or https://", o->url);
    struct http_sink *h = vg_calloc(1, sizeof(*h));
    if (!h) return vg_error_set(err, VG_ENOMEM, "http sink: out of memory");
    pthread_mutex_init(&h->mu, NULL);
    h->timeout_ms = o->timeout_ms;
    h->client = vg_httpc_new();
    h->url = ingest_url(o->url);
    if (!h->client || !h->url) {
        http_free(h);
        return vg_error_set(err, VG_ENOMEM, "http sink: out of memory");
    }
    http_metrics(h, m);
    *out = vg_sink_wrap(&http_ops, h);
    if (!*out) return vg_error_set(err, VG_ENOMEM, "http sink: out of memory");
    return VG_OK;
}
