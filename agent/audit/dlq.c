/*
 * dlq.c - render and deliver audit dead letters (dlq.h).
 *
 * Delivery is synchronous and one message at a time: bad lines are rare, and
 * the tail commit waits for their acknowledgement exactly as for records.
 */
#include "dlq.h"

#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "vigil/alloc.h"
#include "vigil/httpc.h"
#include "vigil/kafka.h"

struct vg_dlq {
    vg_httpc_t *http;
    char *url;
    rd_kafka_t *rk;
    char *topic;
};

/* Copy s into out, each invalid UTF-8 byte replaced by U+FFFD. */
static vg_err_t utf8_fix(const char *s, size_t len, vg_buf *out)
{
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < len && !rc;) {
        size_t n = 1;
        while (n <= 4 && i + n <= len && !vg_audit_utf8_valid(s + i, n)) n++;
        if (n <= 4 && i + n <= len) {
            rc = vg_buf_append(out, s + i, n);
            i += n;
        } else {
            rc = vg_buf_append(out, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
    return rc;
}

static int dump_cb(const char *buf, size_t size, void *data)
{
    return vg_buf_append(data, buf, size) ? -1 : 0;
}

/* The line as it may leave the node: redacted as JSON when it parses, else as text. */
static vg_err_t redact_line(vg_redactor_t *r, const char *line, size_t len, vg_buf *out)
{
    vg_buf fixed;
    int changed = 0;
    vg_err_t rc;
    vg_buf_init(&fixed, 0);
    if ((rc = utf8_fix(line, len, &fixed))) goto out;
    json_t *j = fixed.len ? json_loadb(fixed.data, fixed.len, 0, NULL) : NULL;
    if (j && vg_redact_json(r, j, NULL) == VG_OK) {
        rc = json_dump_callback(j, dump_cb, out, JSON_COMPACT) ? VG_ENOMEM : VG_OK;
        json_decref(j);
        goto out;
    }
    json_decref(j);
    if (!(rc = vg_redact_value(r, fixed.data ? fixed.data : "", fixed.len, out, &changed)) &&
        !changed)
        rc = vg_buf_append(out, fixed.data ? fixed.data : "", fixed.len);
out:
    vg_buf_free(&fixed);
    return rc;
}

vg_err_t vg_dlq_render(vg_redactor_t *r, const char *tenant, const char *reason, const char *detail,
                       const char *line, size_t len, const char *file_id, uint64_t offset,
                       vg_buf *out)
{
    vg_buf red;
    vg_err_t rc;
    vg_buf_init(&red, 0);
    if ((rc = redact_line(r, line, len, &red))) goto out;
    if ((rc = vg_buf_puts(out, "{\"tenant\":")) ||
        (rc = vg_buf_json_str(out, tenant, strlen(tenant))) ||
        (rc = vg_buf_puts(out, ",\"reason\":")) ||
        (rc = vg_buf_json_str(out, reason, strlen(reason))) ||
        (rc = vg_buf_puts(out, ",\"detail\":")) ||
        (rc = vg_buf_json_str(out, detail ? detail : "", detail ? strlen(detail) : 0)) ||
        (rc = vg_buf_puts(out, ",\"line\":")) ||
        (rc = vg_buf_json_str(out, red.data ? red.data : "", red.len)) ||
        (rc = vg_buf_puts(out, ",\"file_id\":")) ||
        (rc = vg_buf_json_str(out, file_id, strlen(file_id))))
        goto out;
    rc = vg_buf_printf(out, ",\"offset\":%" PRIu64 "}", offset);
out:
    vg_buf_free(&red);
    return rc;
}

static vg_err_t kafka_open(vg_dlq_t *d, const vg_dlq_opts *o, vg_error *err)
{
    char errstr[512];
    rd_kafka_conf_t *conf = NULL;
    vg_err_t rc = vg_kafka_conf_new(o->kafka_brokers, "audit-dlq", &conf, err);
    if (!rc) rc = vg_kafka_conf_set(conf, "enable.idempotence", "true", err);
    if (!rc) rc = vg_kafka_conf_apply(conf, o->props, o->nprops, err);
    if (rc) {
        if (conf) rd_kafka_conf_destroy(conf);
        return rc;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, vg_kafka_dr_msg_cb);
    if (!(d->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr))) {
        rd_kafka_conf_destroy(conf);
        return vg_error_set(err, VG_ECONFIG, "audit dlq: cannot create producer: %s", errstr);
    }
    return VG_OK;
}

vg_err_t vg_dlq_new(const vg_dlq_opts *o, vg_dlq_t **out, vg_error *err)
{
    vg_err_t rc = VG_OK;
    vg_dlq_t *d = vg_calloc(1, sizeof *d);
    *out = NULL;
    if (!d) return vg_error_set(err, VG_ENOMEM, "out of memory");
    if (o->kafka_brokers && *o->kafka_brokers) {
        if (!(d->topic = vg_strdup(o->kafka_topic ? o->kafka_topic : "vigil.audit.dlq")))
            rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        else
            rc = kafka_open(d, o, err);
    } else {
        size_t n = strlen(o->http_url) + 32;
        if (!(d->url = vg_malloc(n)) || !(d->http = vg_httpc_new()))
            rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        else
            snprintf(d->url, n, "%s/ingest/v1/dlq", o->http_url);
    }
    if (rc) {
        vg_dlq_free(d);
        return rc;
    }
    *out = d;
    return VG_OK;
}

void vg_dlq_free(vg_dlq_t *d)
{
    if (!d) return;
    vg_kafka_producer_close(d->rk, 10000);
    vg_httpc_free(d->http);
    vg_free(d->url);
    vg_free(d->topic);
    vg_free(d);
}

static vg_err_t send_kafka(vg_dlq_t *d, const char *tenant, const char *reason, const char *json,
                           size_t len, vg_error *err)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    if (!h) return vg_error_set(err, VG_ENOMEM, "out of memory");
    rd_kafka_header_add(h, "vigil-dlq-reason", -1, reason, -1);
    rd_kafka_header_add(h, "content-type", -1, "application/json", -1);
    rd_kafka_resp_err_t e =
        vg_kafka_produce_wait(d->rk, d->topic, tenant, strlen(tenant), json, len, h, 30000);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return VG_OK;
    return vg_error_set(err, VG_ERETRY, "audit dlq: kafka %s: %s", d->topic, rd_kafka_err2str(e));
}

vg_err_t vg_dlq_send(vg_dlq_t *d, const char *tenant, const char *reason, const char *json,
                     size_t len, vg_error *err)
{
    static const char *const hdrs[] = {"Content-Type: application/json", NULL};
    int status = 0;
    if (d->rk) return send_kafka(d, tenant, reason, json, len, err);
    vg_httpc_req req = {
        .method = "POST", .url = d->url, .headers = hdrs, .body = json, .body_len = len};
    vg_err_t rc = vg_httpc_do(d->http, &req, &status, NULL, err);
    if (rc) return VG_ERETRY;
    if (status >= 200 && status < 300) return VG_OK;
    return vg_error_set(err, VG_ERETRY, "audit dlq: POST %s: HTTP %d", d->url, status);
}
