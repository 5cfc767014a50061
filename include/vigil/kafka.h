/*
 * kafka.h - librdkafka helpers shared by the agent's Kafka sink and the
 * collector's consumer.
 *
 * Both sides build an rd_kafka_conf_t the same way: bootstrap servers, our
 * defaults, then the user's `properties` passed straight to rd_kafka_conf_set
 * (librdkafka already has the vocabulary and the validation, so we do not
 * re-model it), with its error text reported as a config error. librdkafka's
 * own log lines are routed into the logfmt logger with secrets masked, so an
 * operator sees one log format and never a password.
 */
#ifndef VIGIL_KAFKA_H
#define VIGIL_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "vigil/config.h"
#include "vigil/error.h"

/* One user property, e.g. {"security.protocol", "SASL_SSL"}: the config's key/value pair. */
typedef vg_kv_t vg_kafka_prop;

/* New conf with bootstrap.servers=brokers, the logfmt log callback and an error
 * callback that logs. component names the user in log lines ("ship", "ingest").
 * On success the caller owns *out (rd_kafka_conf_destroy, or rd_kafka_new takes it). */
vg_err_t vg_kafka_conf_new(const char *brokers, const char *component, rd_kafka_conf_t **out,
                           vg_error *err);

/* rd_kafka_conf_set; VG_ECONFIG carrying librdkafka's text. Secret values are never
 * put in the message or logged. */
vg_err_t vg_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                           vg_error *err);

/* Apply props in order (later ones win), stopping at the first error. */
vg_err_t vg_kafka_conf_apply(rd_kafka_conf_t *conf, const vg_kafka_prop *props, size_t n,
                             vg_error *err);

/* True when the value of this property must never be logged (passwords, keys, secrets). */
int vg_kafka_prop_is_secret(const char *key);

/* Copy s into out (cap n) with the values of secret properties replaced by
 * "[REDACTED]" wherever "key=value" or "key = value" appears. Returns out. */
const char *vg_kafka_redact(const char *s, char *out, size_t n);

/* Map a delivery or request error: VG_OK, VG_ERETRY for transient ones, VG_EPROTO
 * for ones where the same message can never succeed (too large, invalid). */
vg_err_t vg_kafka_err_map(rd_kafka_resp_err_t e);

/* ---- synchronous produce: send one message and wait for its delivery report ---- */

/* The delivery-report callback that producers used with vg_kafka_produce_wait
 * must install (rd_kafka_conf_set_dr_msg_cb). */
void vg_kafka_dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

/* Produce one message (key and value are copied) and poll rk until its delivery
 * report fired or wait_ms passed. Takes ownership of hdrs (may be NULL) also on
 * failure. Returns the delivery error, the produce error, or
 * RD_KAFKA_RESP_ERR__TIMED_OUT. Callers must not poll rk concurrently. */
rd_kafka_resp_err_t vg_kafka_produce_wait(rd_kafka_t *rk, const char *topic, const void *key,
                                          size_t key_len, const void *value, size_t len,
                                          rd_kafka_headers_t *hdrs, int64_t wait_ms);

/* Flush for up to flush_ms, purge what is left (logged), destroy. NULL is a no-op. */
void vg_kafka_producer_close(rd_kafka_t *rk, int flush_ms);

/* The librdkafka log callback used by vg_kafka_conf_new (exposed for tests). */
void vg_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

#endif
