/*
 * siem_config.c - the schema of one `siem:` entry (syslog or splunk_hec).
 *
 * Kept beside the forwarder: config.c lists siem as a LIST of this schema.
 * The cross-field check says which keys each type needs, at the entry's
 * file:line:col, so a bad output fails the config load, not the first send.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "siem/siem.h"

#define SC(f) offsetof(vg_siem_cfg, f)
static const vg_cfg_field_t tls_schema[] = {
    {.key = "ca_file",
     .type = VG_CFG_T_STRING,
     .offset = SC(tls.ca_file),
     .def_doc = "system CAs",
     .doc = "CA certificates to verify the receiver with"},
    {.key = "cert_file",
     .type = VG_CFG_T_STRING,
     .offset = SC(tls.cert_file),
     .doc = "client certificate (with key_file)"},
    {.key = "key_file", .type = VG_CFG_T_STRING, .offset = SC(tls.key_file), .doc = "client key"},
    {.key = "server_name",
     .type = VG_CFG_T_STRING,
     .offset = SC(tls.server_name),
     .def_doc = "the address's host",
     .doc = "name sent as SNI and verified in the certificate (syslog)"},
    {.key = "insecure_skip_verify",
     .type = VG_CFG_T_BOOL,
     .offset = SC(tls.insecure_skip_verify),
     .def = "false",
     .doc = "do not verify the receiver's certificate"},
    {0},
};

static vg_err_t tls_check(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *obj)
{
    (void)ctx;
    ((vg_siem_cfg *)obj)->tls_on = node != NULL;
    return VG_OK;
}

const vg_cfg_field_t vg_siem_config_schema[] = {
    {.key = "type",
     .type = VG_CFG_T_STRING,
     .offset = SC(type),
     .choices = "syslog|splunk_hec",
     .flags = VG_CFG_REQUIRED,
     .doc = "output kind: syslog (RFC 5424 over TCP, RFC 5425 with tls) or splunk_hec"},
    {.key = "name",
     .type = VG_CFG_T_STRING,
     .offset = SC(name),
     .def_doc = "`<type>-<index>`",
     .doc = "unique name: the `output` label of the vigil_siem_* metrics and the cursor file"},
    {.key = "address",
     .type = VG_CFG_T_STRING,
     .offset = SC(address),
     .doc = "syslog: receiver host:port"},
    {.key = "tls",
     .type = VG_CFG_T_SECTION,
     .sub = tls_schema,
     .check = tls_check,
     .doc = "syslog: TLS on when present; splunk_hec: TLS options of an https url"},
    {.key = "app_name",
     .type = VG_CFG_T_STRING,
     .offset = SC(app_name),
     .def = "vigil",
     .doc = "syslog: RFC 5424 APP-NAME"},
    {.key = "facility",
     .type = VG_CFG_T_INT,
     .offset = SC(facility),
     .def = "13",
     .min = "0",
     .max = "23",
     .doc = "syslog: facility (13 = log audit)"},
    {.key = "url",
     .type = VG_CFG_T_STRING,
     .offset = SC(url),
     .doc = "splunk_hec: base URL; events are POSTed to <url>/services/collector/event"},
    {.key = "token",
     .type = VG_CFG_T_STRING,
     .offset = SC(token),
     .doc = "splunk_hec: HEC token, sent as `Authorization: Splunk <token>`, never logged"},
    {.key = "index",
     .type = VG_CFG_T_STRING,
     .offset = SC(index),
     .doc = "splunk_hec: index of the events (omitted when unset)"},
    {.key = "source",
     .type = VG_CFG_T_STRING,
     .offset = SC(source),
     .doc = "splunk_hec: source of the events (omitted when unset)"},
    {.key = "sourcetype",
     .type = VG_CFG_T_STRING,
     .offset = SC(sourcetype),
     .def = "vigil:audit",
     .doc = "splunk_hec: sourcetype of the events"},
    {.key = "timeout",
     .type = VG_CFG_T_DURATION,
     .offset = SC(timeout_ms),
     .def = "10s",
     .min = "100ms",
     .doc = "longest one send may take"},
    {.key = "batch_records",
     .type = VG_CFG_T_UINT,
     .offset = SC(batch_records),
     .def = "500",
     .min = "1",
     .max = "100000",
     .doc = "records per send"},
    {0},
};
#undef SC

vg_err_t vg_siem_config_check(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *obj)
{
    const vg_siem_cfg *c = obj;
    if (!strcmp(c->type, "syslog") && !c->address)
        return vg_cfg_errorf(ctx, node, "%s: a syslog output needs address (host:port)", ctx->path);
    if (!strcmp(c->type, "splunk_hec") && (!c->url || !c->token))
        return vg_cfg_errorf(ctx, node, "%s: a splunk_hec output needs url and token", ctx->path);
    if (c->name && (!*c->name || strspn(c->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
                                                 "VWXYZ0123456789_-.") != strlen(c->name)))
        return vg_cfg_errorf(ctx, node, "%s: name may hold only letters, digits, '_', '-', '.'",
                             ctx->path);
    return VG_OK;
}

void vg_siem_conf_from_cfg(const vg_siem_cfg *c, size_t i, char *namebuf, size_t cap,
                           vg_siem_output_conf *o)
{
    memset(o, 0, sizeof(*o));
    if (!c->name) snprintf(namebuf, cap, "%s-%zu", c->type, i);
    o->name = c->name ? c->name : namebuf;
    o->type = c->type, o->address = c->address, o->tls = c->tls_on;
    o->ca_file = c->tls.ca_file, o->cert_file = c->tls.cert_file, o->key_file = c->tls.key_file;
    o->server_name = c->tls.server_name, o->insecure_skip_verify = c->tls.insecure_skip_verify;
    o->app_name = c->app_name, o->facility = (int)c->facility;
    o->url = c->url, o->token = c->token, o->index = c->index;
    o->source = c->source, o->sourcetype = c->sourcetype;
    o->timeout_ms = c->timeout_ms, o->batch_records = (size_t)c->batch_records;
}
