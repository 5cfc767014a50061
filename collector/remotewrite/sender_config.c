/*
 * sender_config.c - the schema of one remote_write entry, Prometheus's keys.
 *
 * Kept beside the sender (not in config.c) because the struct is the
 * sender's input; config.c only lists remote_write as a LIST of this schema.
 * write_relabel_configs are compiled here once at load so that a bad regex is
 * reported at its file:line:col; the sender compiles its own copy at start.
 */
#include <stddef.h>
#include <string.h>

#include "remotewrite/sender.h"
#include "vigil/relabel_schema.h"

#define RC(f) offsetof(vg_rws_config, f)
static const vg_cfg_field_t basic_auth_schema[] = {
    {.key = "username",
     .type = VG_CFG_T_STRING,
     .offset = RC(basic_auth.username),
     .doc = "HTTP basic auth user"},
    {.key = "password",
     .type = VG_CFG_T_STRING,
     .offset = RC(basic_auth.password),
     .doc = "HTTP basic auth password"},
    {.key = "password_file",
     .type = VG_CFG_T_STRING,
     .offset = RC(basic_auth.password_file),
     .doc = "file holding the password (read at start)"},
    {0},
};

static const vg_cfg_field_t authorization_schema[] = {
    {.key = "type",
     .type = VG_CFG_T_STRING,
     .offset = RC(authorization.type),
     .def = "Bearer",
     .doc = "scheme of the Authorization header"},
    {.key = "credentials",
     .type = VG_CFG_T_STRING,
     .offset = RC(authorization.credentials),
     .doc = "credentials of the Authorization header"},
    {.key = "credentials_file",
     .type = VG_CFG_T_STRING,
     .offset = RC(authorization.credentials_file),
     .doc = "file holding the credentials"},
    {0},
};

static const vg_cfg_field_t tls_schema[] = {
    {.key = "ca_file",
     .type = VG_CFG_T_STRING,
     .offset = RC(tls.ca_file),
     .doc = "CA certificates to verify the server with"},
    {.key = "cert_file",
     .type = VG_CFG_T_STRING,
     .offset = RC(tls.cert_file),
     .doc = "client certificate"},
    {.key = "key_file", .type = VG_CFG_T_STRING, .offset = RC(tls.key_file), .doc = "client key"},
    {.key = "server_name",
     .type = VG_CFG_T_STRING,
     .offset = RC(tls.server_name),
     .doc = "name the server certificate must carry, also sent as SNI"},
    {.key = "insecure_skip_verify",
     .type = VG_CFG_T_BOOL,
     .offset = RC(tls.insecure_skip_verify),
     .def = "false",
     .doc = "do not verify the server certificate"},
    {0},
};

static const vg_cfg_field_t queue_schema[] = {
    {.key = "capacity",
     .type = VG_CFG_T_UINT,
     .offset = RC(queue.capacity),
     .def = "10000",
     .min = "1",
     .doc = "accepted; the WAL is the queue and max_samples_per_send samples are read ahead"},
    {.key = "max_shards",
     .type = VG_CFG_T_UINT,
     .offset = RC(queue.max_shards),
     .def = "50",
     .min = "1",
     .doc = "sending connections: min(max_shards, 4), each series always through the same one"},
    {.key = "min_shards",
     .type = VG_CFG_T_UINT,
     .offset = RC(queue.min_shards),
     .def = "1",
     .min = "1",
     .doc = "accepted for compatibility (the number of shards is fixed)"},
    {.key = "max_samples_per_send",
     .type = VG_CFG_T_UINT,
     .offset = RC(queue.max_samples_per_send),
     .def = "2000",
     .min = "1",
     .doc = "samples per request"},
    {.key = "batch_send_deadline",
     .type = VG_CFG_T_DURATION,
     .offset = RC(queue.batch_send_deadline_ms),
     .def = "5s",
     .min = "1ms",
     .doc = "longest a sample waits for its request to fill up"},
    {.key = "min_backoff",
     .type = VG_CFG_T_DURATION,
     .offset = RC(queue.min_backoff_ms),
     .def = "30ms",
     .min = "1ms",
     .doc = "first retry delay, doubled on each retry"},
    {.key = "max_backoff",
     .type = VG_CFG_T_DURATION,
     .offset = RC(queue.max_backoff_ms),
     .def = "5s",
     .min = "1ms",
     .doc = "longest retry delay"},
    {.key = "retry_on_http_429",
     .type = VG_CFG_T_BOOL,
     .offset = RC(queue.retry_on_http_429),
     .def = "true",
     .doc = "retry a 429 answer (else its samples are dropped)"},
    {0},
};

static const vg_cfg_field_t metadata_schema[] = {
    {.key = "send",
     .type = VG_CFG_T_BOOL,
     .offset = RC(metadata.send),
     .def = "true",
     .doc = "send the metric metadata the collector holds (/api/v1/metadata)"},
    {.key = "send_interval",
     .type = VG_CFG_T_DURATION,
     .offset = RC(metadata.send_interval_ms),
     .def = "1m",
     .min = "1s",
     .doc = "how often all of it is sent"},
    {.key = "max_samples_per_send",
     .type = VG_CFG_T_UINT,
     .offset = RC(metadata.max_samples_per_send),
     .def = "500",
     .min = "1",
     .doc = "metadata entries per request"},
    {0},
};

const vg_cfg_field_t vg_rws_config_schema[] = {
    {.key = "url",
     .type = VG_CFG_T_STRING,
     .offset = RC(url),
     .flags = VG_CFG_REQUIRED,
     .doc = "endpoint to POST WriteRequests to"},
    {.key = "name",
     .type = VG_CFG_T_STRING,
     .offset = RC(name),
     .def_doc = "`remote-<index>`",
     .doc = "remote label of the metrics and name of the cursor file; unique"},
    {.key = "remote_timeout",
     .type = VG_CFG_T_DURATION,
     .offset = RC(remote_timeout_ms),
     .def = "30s",
     .min = "1ms",
     .doc = "timeout of one request"},
    {.key = "headers",
     .type = VG_CFG_T_KVMAP,
     .offset = RC(headers),
     .count_offset = RC(nheaders),
     .doc = "extra HTTP headers of every request"},
    {.key = "basic_auth",
     .type = VG_CFG_T_SECTION,
     .sub = basic_auth_schema,
     .doc = "HTTP basic auth"},
    {.key = "authorization",
     .type = VG_CFG_T_SECTION,
     .sub = authorization_schema,
     .doc = "Authorization header (type credentials)"},
    {.key = "tls_config", .type = VG_CFG_T_SECTION, .sub = tls_schema, .doc = "TLS to the remote"},
    {.key = "write_relabel_configs",
     .type = VG_CFG_T_LIST,
     .offset = RC(write_relabel_rules),
     .count_offset = RC(nwrite_relabel_rules),
     .sub = vg_relabel_cfg_schema,
     .elem_size = sizeof(vg_relabel_rule_t),
     .doc = "relabeling applied to each series before it is sent; drop = not sent"},
    {.key = "queue_config",
     .type = VG_CFG_T_SECTION,
     .sub = queue_schema,
     .doc = "batching and retries"},
    {.key = "metadata_config",
     .type = VG_CFG_T_SECTION,
     .sub = metadata_schema,
     .doc = "metric metadata (TYPE, HELP, UNIT), as Prometheus sends it"},
    {0},
};
#undef RC

vg_err_t vg_rws_config_check(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *obj)
{
    vg_rws_config *c = obj;
    vg_relabel_where_t w = {0, NULL};
    vg_error e = {0};
    vg_relabel_t *r = NULL;
    if (c->queue.min_backoff_ms > c->queue.max_backoff_ms)
        return vg_cfg_errorf(ctx, node, "%s: queue_config.min_backoff is above max_backoff",
                             ctx->path);
    if (c->basic_auth.password && c->basic_auth.password_file)
        return vg_cfg_errorf(ctx, node, "%s: basic_auth: password and password_file are exclusive",
                             ctx->path);
    if (c->basic_auth.username && c->authorization.credentials)
        return vg_cfg_errorf(ctx, node, "%s: basic_auth and authorization are exclusive",
                             ctx->path);
    for (const char *n = c->name; n && *n; n++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", *n) ||
            (n == c->name && *n == '.'))
            return vg_cfg_errorf(ctx, vg_cfg_map_get(node, "name"),
                                 "%s.name: use letters, digits, '_', '-' and '.' (it names the "
                                 "cursor file)",
                                 ctx->path);
    vg_err_t rc = vg_relabel_new(c->write_relabel_rules, c->nwrite_relabel_rules, &r, &w, &e);
    vg_relabel_free(r);
    if (rc == VG_ENOMEM) return vg_error_set(ctx->err, rc, "out of memory");
    if (!rc) return VG_OK;
    const vg_cfg_node_t *item =
        vg_cfg_seq_item(vg_cfg_map_get(node, "write_relabel_configs"), w.index);
    const vg_cfg_node_t *at = w.field ? vg_cfg_map_get(item, w.field) : NULL;
    return vg_cfg_errorf(ctx, at ? at : item, "%s.write_relabel_configs[%zu]: %s", ctx->path,
                         w.index, e.msg);
}
