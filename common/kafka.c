/*
 * kafka.c - librdkafka conf building, logging and error mapping.
 *
 * Kept in common/ because the agent's producer and the collector's consumer
 * must agree on how user properties are applied (after our defaults, so a
 * user may override any of them) and on what a librdkafka error means for
 * retry. Log lines from librdkafka's own threads come through vg_kafka_log_cb;
 * the logger is thread-safe and writes one line per call, so no queueing is
 * needed. Anything that looks like "secret.key=value" is masked before it is
 * written, because librdkafka's debug output can echo configuration.
 */
#include "vigil/clock.h"
#include "vigil/kafka.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vigil/alloc.h"
#include "vigil/log.h"

static const char *const secret_exact[] = {
    "ssl.key.pem",
    "ssl_key",
    "sasl.oauthbearer.config",
    NULL,
};

int vg_kafka_prop_is_secret(const char *key)
{
    if (!key) return 0;
    if (strstr(key, "password") || strstr(key, "secret")) return 1;
    for (int i = 0; secret_exact[i]; i++)
        if (strcmp(key, secret_exact[i]) == 0) return 1;
    return 0;
}

static int is_key_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

static int is_value_end(char c)
{
    return c == '\0' || isspace((unsigned char)c) || c == ',' || c == ';' || c == '"';
}

/* Is the key that ends just before s[eq] (skipping blanks) a secret one? */
static int key_before_is_secret(const char *s, size_t eq)
{
    size_t e = eq;
    while (e > 0 && s[e - 1] == ' ') e--;
    size_t b = e;
    while (b > 0 && is_key_char(s[b - 1])) b--;
    if (b == e || e - b >= 64) return 0;
    char key[64];
    memcpy(key, s + b, e - b);
    key[e - b] = '\0';
    return vg_kafka_prop_is_secret(key);
}

const char *vg_kafka_redact(const char *s, char *out, size_t n)
{
    static const char mask[] = "[REDACTED]";
    size_t o = 0, i = 0;
    if (n == 0) return out;
    while (s && s[i] && o + 1 < n) {
        out[o++] = s[i];
        if (s[i++] != '=' || !key_before_is_secret(s, i - 1)) continue;
        while (s[i] == ' ' && o + 1 < n) out[o++] = s[i++];
        if (is_value_end(s[i])) continue;
        while (!is_value_end(s[i])) i++;
        for (size_t k = 0; k < sizeof(mask) - 1 && o + 1 < n; k++) out[o++] = mask[k];
    }
    out[o] = '\0';
    return out;
}

void vg_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    vg_log_level lvl = level <= 3   ? VG_LOG_ERROR
                       : level == 4 ? VG_LOG_WARN
                       : level <= 6 ? VG_LOG_INFO
                                    : VG_LOG_DEBUG;
    if ((int)lvl > vg_log_threshold) return;
    char red[1024], q[1100], qf[64];
    vg_kafka_redact(buf, red, sizeof(red));
    vg_log_write(lvl, "kafka", __FILE__, __LINE__, "librdkafka", "client=%s fac=%s detail=%s",
                 rk ? rd_kafka_name(rk) : "-", vg_logq(qf, sizeof(qf), fac),
                 vg_logq(q, sizeof(q), red));
}

static void error_cb(rd_kafka_t *rk, int e, const char *reason, void *opaque)
{
    char red[512], q[600];
    vg_kafka_redact(reason, red, sizeof(red));
    if (e == RD_KAFKA_RESP_ERR__FATAL) {
        vg_log_error("kafka", "fatal client error", "client=%s reason=%s", rd_kafka_name(rk),
                     vg_logq(q, sizeof(q), red));
        return;
    }
    if (e == RD_KAFKA_RESP_ERR__TRANSPORT) return; /* librdkafka has logged it already */
    vg_log_warn("kafka", "client error", "client=%s err=%s reason=%s", rd_kafka_name(rk),
                rd_kafka_err2name((rd_kafka_resp_err_t)e), vg_logq(q, sizeof(q), red));
}

vg_err_t vg_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, vg_error *err)
{
    char errstr[512];
    if (!conf || !key || !value)
        return vg_error_set(err, VG_EINVAL, "kafka property: key and value are required");
    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK)
        return VG_OK;
    if (vg_kafka_prop_is_secret(key))
        return vg_error_set(err, VG_ECONFIG, "kafka property %s: invalid value (hidden)", key);
    return vg_error_set(err, VG_ECONFIG, "kafka property %s: %s", key, errstr);
}

vg_err_t vg_kafka_conf_apply(rd_kafka_conf_t *conf, const vg_kafka_prop *props, size_t n,
                             vg_error *err)
{
    for (size_t i = 0; i < n; i++) {
        vg_err_t rc = vg_kafka_conf_set(conf, props[i].key, props[i].value, err);
        if (rc) return rc;
    }
    return VG_OK;
}

vg_err_t vg_kafka_conf_new(const char *brokers, const char *component, rd_kafka_conf_t **out,
                           vg_error *err)
{
    vg_err_t rc = VG_OK;
    char client_id[128];
    *out = NULL;
    if (!brokers || !*brokers)
        return vg_error_set(err, VG_ECONFIG, "kafka: brokers must not be empty");
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) return vg_error_set(err, VG_ENOMEM, "kafka: out of memory for conf");
    snprintf(client_id, sizeof(client_id), "vigil-%s", component ? component : "client");
    rc = vg_kafka_conf_set(conf, "bootstrap.servers", brokers, err);
    if (!rc) rc = vg_kafka_conf_set(conf, "client.id", client_id, err);
    if (rc) goto fail;
    rd_kafka_conf_set_log_cb(conf, vg_kafka_log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    *out = conf;
    return VG_OK;
fail:
    rd_kafka_conf_destroy(conf);
    return rc;
}

vg_err_t vg_kafka_err_map(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_NO_ERROR: return VG_OK;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_COMPRESSION_TYPE: return VG_EPROTO;
    default: return VG_ERETRY;
    }
}

/*
 * Synchronous produce. The wait state is on the heap and is referenced by the
 * message's opaque: if our deadline passes before the report (librdkafka
 * reports within message.timeout.ms, so it should not), the state is marked
 * abandoned and the report, whenever it comes (at the latest when the
 * producer is purged on close), frees it.
 */
struct dr_wait {
    int done;
    int abandoned;
    rd_kafka_resp_err_t err;
};

void vg_kafka_dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct dr_wait *w = m->_private;
    if (!w) return;
    if (w->abandoned) {
        vg_free(w);
        return;
    }
    w->err = m->err;
    w->done = 1;
}

rd_kafka_resp_err_t vg_kafka_produce_wait(rd_kafka_t *rk, const char *topic, const void *key,
                                          size_t key_len, const void *value, size_t len,
                                          rd_kafka_headers_t *hdrs, int64_t wait_ms)
{
    struct dr_wait *w = vg_calloc(1, sizeof(*w));
    if (!w) {
        if (hdrs) rd_kafka_headers_destroy(hdrs);
        return RD_KAFKA_RESP_ERR__QUEUE_FULL;
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
        RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(w), RD_KAFKA_V_END);
    if (e) {
        if (hdrs) rd_kafka_headers_destroy(hdrs); /* on success librdkafka owns them */
        vg_free(w);
        rd_kafka_poll(rk, e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? 100 : 0);
        return e;
    }
    int64_t deadline = vg_clock_mono_ms() + wait_ms;
    while (!w->done && vg_clock_mono_ms() < deadline) rd_kafka_poll(rk, 50);
    if (!w->done) {
        w->abandoned = 1;
        return RD_KAFKA_RESP_ERR__TIMED_OUT;
    }
    e = w->err;
    vg_free(w);
    return e;
}

void vg_kafka_producer_close(rd_kafka_t *rk, int flush_ms)
{
    if (!rk) return;
    if (rd_kafka_flush(rk, flush_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        vg_log_warn("kafka", "producer closing with undelivered messages", "client=%s n=%d",
                    rd_kafka_name(rk), rd_kafka_outq_len(rk));
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(rk, 1000); /* serves the purge reports, freeing abandoned waits */
    }
    rd_kafka_destroy(rk);
}
