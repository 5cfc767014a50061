/*
 * config.c (collector) - the collector's YAML config, as schema tables.
 *
 * Same shape as the agent's: one vg_cfg_field_t table per section of
 * DESIGN.md, flat struct, the tables double as the reference docs.
 *
 * Per-tenant limits are overrides: a tenant entry starts as a copy of
 * limits.default and only the keys it names change (decoded in overlay
 * mode), so raising one tenant's series cap does not reset its rate.
 *
 * alerting is Alertmanager's format, decoded by alerting/amconfig.c
 * (vg_amconfig_parse). rule_files are globs the rule manager expands and
 * loads (rules/manager.c); global holds Prometheus's external_labels and
 * external_url for rule templates. remote_write entries use the sender's
 * schema (remotewrite/sender_config.c), siem entries the forwarder's
 * (siem/siem_config.c).
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "alerting/amconfig.h"
#include "remotewrite/sender.h"
#include "siem/siem.h"
#include "vigil/alloc.h"
#include "vigil/config.h"

#define EMBEDDED_NAME "<embedded default>"

#define CC(f) offsetof(vg_collector_config_t, f)
#define TL(f) offsetof(vg_tenant_limits_t, f)

static const vg_cfg_field_t collector_schema[] = {
    {.key = "listen",
     .type = VG_CFG_T_STRING,
     .offset = CC(listen),
     .def = "127.0.0.1:9400",
     .doc = "HTTP address: API, ingest, remote-write and /metrics"},
    {.key = "data_dir",
     .type = VG_CFG_T_STRING,
     .offset = CC(data_dir),
     .def = "/var/lib/vigil-collector",
     .doc = "directory for the WAL, blocks and audit store"},
    {0},
};

static vg_err_t check_kafka(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *obj)
{
    vg_collector_config_t *c = obj;
    if (c->kafka_brokers && !c->kafka_brokers[0]) c->kafka_brokers = NULL; /* "" = unset */
    return VG_OK;
}

static const vg_cfg_field_t kafka_schema[] = {
    {.key = "brokers",
     .type = VG_CFG_T_STRING,
     .offset = CC(kafka_brokers),
     .doc = "comma-separated host:port list; unset = no Kafka consumer"},
    {.key = "group_id",
     .type = VG_CFG_T_STRING,
     .offset = CC(kafka_group_id),
     .def = "vigil-collector",
     .doc = "consumer group shared by all collectors"},
    {.key = "metrics_topic",
     .type = VG_CFG_T_STRING,
     .offset = CC(kafka_metrics_topic),
     .def = "vigil.metrics",
     .doc = "topic of metric batches"},
    {.key = "audit_topic",
     .type = VG_CFG_T_STRING,
     .offset = CC(kafka_audit_topic),
     .def = "vigil.audit",
     .doc = "topic of audit batches"},
    {.key = "audit_dlq_topic",
     .type = VG_CFG_T_STRING,
     .offset = CC(kafka_audit_dlq_topic),
     .def = "vigil.audit.dlq",
     .doc = "topic of the agents' audit dead letters (lines that failed validation), stored "
            "like POST /ingest/v1/dlq; \"\" = not consumed"},
    {.key = "properties",
     .type = VG_CFG_T_KVMAP,
     .offset = CC(kafka_properties),
     .count_offset = CC(nkafka_properties),
     .doc = "librdkafka properties passed through as is (e.g. security.protocol)"},
    {0},
};

static const vg_cfg_field_t input_schema[] = {
    {.key = "kafka",
     .type = VG_CFG_T_SECTION,
     .sub = kafka_schema,
     .check = check_kafka,
     .doc = "consume batches from Kafka"},
    {0},
};

static const vg_cfg_field_t retention_schema[] = {
    {.key = "raw",
     .type = VG_CFG_T_DURATION,
     .offset = CC(retention_raw_ms),
     .def = "90d",
     .min = "1h",
     .doc = "how long raw samples are kept"},
    {.key = "5m",
     .type = VG_CFG_T_DURATION,
     .offset = CC(retention_5m_ms),
     .def = "1y",
     .min = "1h",
     .doc = "how long 5-minute aggregates are kept"},
    {.key = "1h",
     .type = VG_CFG_T_DURATION,
     .offset = CC(retention_1h_ms),
     .def = "7y",
     .min = "1h",
     .doc = "how long 1-hour aggregates are kept"},
    {0},
};

static const vg_cfg_field_t downsample_schema[] = {
    {.key = "5m_after",
     .type = VG_CFG_T_DURATION,
     .offset = CC(downsample_5m_after_ms),
     .def = "40h",
     .doc = "raw blocks ending this long before the tenant's newest sample get a 5-minute "
            "aggregate copy; 0 = never"},
    {.key = "1h_after",
     .type = VG_CFG_T_DURATION,
     .offset = CC(downsample_1h_after_ms),
     .def = "10d",
     .doc = "5-minute blocks ending this long before the tenant's newest sample get a 1-hour "
            "aggregate copy; 0 = never"},
    {0},
};

static const vg_cfg_field_t storage_schema[] = {
    {.key = "retention",
     .type = VG_CFG_T_SECTION,
     .sub = retention_schema,
     .doc = "retention per downsampling tier, measured back from each tenant's newest sample"},
    {.key = "downsample",
     .type = VG_CFG_T_SECTION,
     .sub = downsample_schema,
     .doc = "when blocks get 5-minute and 1-hour aggregate copies"},
    {.key = "max_bytes",
     .type = VG_CFG_T_SIZE,
     .offset = CC(storage_max_bytes),
     .def = "0",
     .doc = "cap on metric storage on disk, oldest blocks go first; 0 = no cap"},
    {.key = "out_of_order_time_window",
     .type = VG_CFG_T_DURATION,
     .offset = CC(ooo_window_ms),
     .def = "10m",
     .doc = "accept a sample up to this much older than its series' newest one (a sender with "
            "several queues delivers out of order); 0 = none"},
    {.key = "wal_sync_interval",
     .type = VG_CFG_T_DURATION,
     .offset = CC(wal_sync_ms),
     .def = "5ms",
     .min = "1ms",
     .max = "1s",
     .doc = "at most one WAL fsync per interval: an acknowledged write waits at most this long "
            "plus one fsync, and concurrent writers share that fsync"},
    {.key = "wal_segment_size",
     .type = VG_CFG_T_SIZE,
     .offset = CC(wal_segment_bytes),
     .def = "128MiB",
     .min = "1MiB",
     .doc = "size at which the write-ahead log starts a new segment file"},
    {.key = "block_range",
     .type = VG_CFG_T_DURATION,
     .offset = CC(block_range_ms),
     .def = "2h",
     .min = "1m",
     .doc = "time span of one block cut from the head (by sample time); compaction merges "
            "3, 9, 27... of them"},
    {.key = "wal_max_hold_bytes",
     .type = VG_CFG_T_SIZE,
     .offset = CC(wal_max_hold_bytes),
     .def = "4GiB",
     .doc = "WAL segments already in blocks that remote_write queues have not sent yet are kept, "
            "up to this many bytes; past it the oldest go and their samples are counted in "
            "vigil_remote_write_dropped_samples_total{reason=\"wal_truncated\"}; 0 = keep none"},
    {0},
};

static const vg_cfg_field_t audit_retention_schema[] = {
    {.key = "hot",
     .type = VG_CFG_T_DURATION,
     .offset = CC(audit_hot_ms),
     .def = "30d",
     .min = "1h",
     .doc = "retention of the hot (fast to query) tier"},
    {.key = "warm",
     .type = VG_CFG_T_DURATION,
     .offset = CC(audit_warm_ms),
     .def = "90d",
     .min = "1h",
     .doc = "retention of the warm (recompressed) tier"},
    {.key = "cold",
     .type = VG_CFG_T_DURATION,
     .offset = CC(audit_cold_ms),
     .def = "7y",
     .min = "1h",
     .doc = "retention of the cold (highest compression) tier"},
    {0},
};

static const vg_cfg_field_t audit_schema[] = {
    {.key = "retention",
     .type = VG_CFG_T_SECTION,
     .sub = audit_retention_schema,
     .doc = "audit store tiers"},
    {.key = "seal_after",
     .type = VG_CFG_T_DURATION,
     .offset = CC(audit_seal_after_ms),
     .def = "5m",
     .min = "1s",
     .doc = "how long after an hour ends its segment is sealed (late records wait this long)"},
    {.key = "check_interval",
     .type = VG_CFG_T_DURATION,
     .offset = CC(audit_check_interval_ms),
     .def = "10s",
     .min = "1s",
     .doc = "period of the task that seals hours and moves segments between tiers"},
    {.key = "signing_key_file",
     .type = VG_CFG_T_STRING,
     .offset = CC(audit_signing_key_file),
     .def_doc = "`<data_dir>/audit/signing.key`, created (32 random bytes, mode 0600) if absent",
     .doc = "file of 16 to 256 raw bytes: the HMAC-SHA256 key that signs erasure and deletion "
            "records in the audit chain; must exist when set. The default, beside the data, "
            "only protects against accidental edits (a warning is logged): keep it elsewhere "
            "so that whoever can change the store cannot re-sign it"},
    {.key = "siem_buffer_bytes",
     .type = VG_CFG_T_SIZE,
     .offset = CC(audit_siem_buffer_bytes),
     .def = "10GiB",
     .min = "1MiB",
     .doc = "most disk the SIEM feed (`<data_dir>/audit/.feed`) may hold for outputs that are "
            "behind; past it the oldest 64 MiB file is dropped and its undelivered records "
            "counted in vigil_siem_records_dropped_total"},
    {0},
};

static const vg_cfg_field_t limits_fields[] = {
    {.key = "ingestion_rate",
     .type = VG_CFG_T_DOUBLE,
     .offset = TL(ingestion_rate),
     .def = "100000",
     .min = "0",
     .doc = "samples per second accepted from the tenant"},
    {.key = "ingestion_burst",
     .type = VG_CFG_T_DOUBLE,
     .offset = TL(ingestion_burst),
     .def = "200000",
     .min = "0",
     .doc = "burst above ingestion_rate"},
    {.key = "max_series",
     .type = VG_CFG_T_UINT,
     .offset = TL(max_series),
     .def = "1000000",
     .doc = "active series allowed for the tenant"},
    {0},
};

/* limits.tenants: map of tenant name to overrides of limits.default. */
static vg_err_t parse_tenants(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *field, void *obj)
{
    vg_collector_config_t *c = obj;
    size_t n = vg_cfg_node_len(node);
    vg_err_t rc = VG_OK;
    c->tenant_limits = NULL;
    c->ntenant_limits = 0;
    if (vg_cfg_node_kind(node) != VG_CFG_NULL && vg_cfg_node_kind(node) != VG_CFG_MAP)
        return vg_cfg_errorf(ctx, node, "%s: expected a map of tenant names to limits", ctx->path);
    if (!n) return VG_OK;
    if (!(c->tenant_limits = vg_arena_calloc(ctx->arena, n * sizeof *c->tenant_limits)))
        return vg_error_set(ctx->err, VG_ENOMEM, "out of memory");
    size_t plen = strlen(ctx->path);
    for (size_t i = 0; i < n && !rc; i++) {
        const vg_cfg_node_t *k = vg_cfg_map_key(node, i);
        vg_tenant_limits_t *t = &c->tenant_limits[i];
        *t = c->default_limits;
        if (!(t->tenant = vg_arena_strdup(ctx->arena, vg_cfg_node_text(k))))
            return vg_error_set(ctx->err, VG_ENOMEM, "out of memory");
        if (!t->tenant[0]) return vg_cfg_errorf(ctx, k, "%s: empty tenant name", ctx->path);
        snprintf(ctx->path + plen, sizeof ctx->path - plen, ".%s", t->tenant);
        ctx->overlay = 1;
        rc = vg_cfg_decode(ctx, vg_cfg_map_value(node, i), limits_fields, t);
        ctx->overlay = 0;
        ctx->path[plen] = '\0';
        c->ntenant_limits++;
    }
    return rc;
}

static const vg_cfg_field_t limits_schema[] = {
    {.key = "default",
     .type = VG_CFG_T_SECTION,
     .offset = CC(default_limits),
     .sub = limits_fields,
     .doc = "limits of every tenant not listed under tenants"},
    {.key = "tenants",
     .type = VG_CFG_T_CUSTOM,
     .parse = parse_tenants,
     .type_doc = "map of tenant to limits",
     .def_doc = "`{}`",
     .doc = "per-tenant overrides; keys not given keep the default's value"},
    {0},
};

static const vg_cfg_field_t global_schema[] = {
    {.key = "external_labels",
     .type = VG_CFG_T_LABELS,
     .offset = CC(external_labels),
     .count_offset = CC(nexternal_labels),
     .doc = "labels available to alert templates as $externalLabels"},
    {.key = "external_url",
     .type = VG_CFG_T_STRING,
     .offset = CC(external_url),
     .doc = "URL this server is reached at; used for alerts' generatorURL and $externalURL"},
    {0},
};

static const vg_cfg_field_t metadata_schema[] = {
    {.key = "max_entries",
     .type = VG_CFG_T_UINT,
     .offset = CC(metadata_max_entries),
     .def = "100000",
     .min = "1",
     .doc = "metadata entries kept per tenant; new ones past it are dropped and counted in "
            "vigil_metadata_dropped_total{reason=\"max_entries\"}"},
    {.key = "max_per_metric",
     .type = VG_CFG_T_UINT,
     .offset = CC(metadata_max_per_metric),
     .def = "10",
     .min = "1",
     .max = "1000",
     .doc = "distinct {type, help, unit} kept per metric name; the least recently seen one "
            "makes room for a new one"},
    {.key = "ttl",
     .type = VG_CFG_T_DURATION,
     .offset = CC(metadata_ttl_ms),
     .def = "1h",
     .min = "10m",
     .doc = "an entry no agent or remote-write sender re-sent for this long is forgotten "
            "(agents re-send every 5m, Prometheus every 1m)"},
    {0},
};

static const vg_cfg_field_t top_schema[] = {
    {.key = "collector",
     .type = VG_CFG_T_SECTION,
     .sub = collector_schema,
     .doc = "this collector"},
    {.key = "input",
     .type = VG_CFG_T_SECTION,
     .sub = input_schema,
     .doc = "where batches come from besides HTTP ingest"},
    {.key = "storage", .type = VG_CFG_T_SECTION, .sub = storage_schema, .doc = "metric storage"},
    {.key = "audit", .type = VG_CFG_T_SECTION, .sub = audit_schema, .doc = "audit storage"},
    {.key = "limits",
     .type = VG_CFG_T_SECTION,
     .sub = limits_schema,
     .doc = "per-tenant ingestion limits"},
    {.key = "metadata",
     .type = VG_CFG_T_SECTION,
     .sub = metadata_schema,
     .doc = "metric metadata (TYPE, HELP, UNIT) kept for /api/v1/metadata"},
    {.key = "evaluation_interval",
     .type = VG_CFG_T_DURATION,
     .offset = CC(evaluation_interval_ms),
     .def = "30s",
     .min = "1s",
     .doc = "how often rule groups are evaluated by default"},
    {.key = "rule_files",
     .type = VG_CFG_T_STRINGS,
     .offset = CC(rule_files),
     .count_offset = CC(nrule_files),
     .doc = "Prometheus rule files (globs; relative ones are taken from the config file's "
            "directory)"},
    {.key = "global",
     .type = VG_CFG_T_SECTION,
     .sub = global_schema,
     .doc = "Prometheus-style global settings used by rule evaluation"},
    {.key = "alerting",
     .type = VG_CFG_T_CUSTOM,
     .offset = CC(alerting),
     .parse = vg_amconfig_parse,
     .type_doc = "Alertmanager config",
     .def_doc = "`{}`",
     .doc = "global, route, receivers, inhibit_rules (Alertmanager format) and alertmanagers; "
            "see docs/alerting.md"},
    {.key = "siem",
     .type = VG_CFG_T_LIST,
     .offset = CC(siem),
     .count_offset = CC(nsiem),
     .sub = vg_siem_config_schema,
     .elem_size = sizeof(vg_siem_cfg),
     .check = vg_siem_config_check,
     .doc = "SIEM outputs (syslog, splunk_hec): every newly stored audit record, of every tenant, "
            "is forwarded to each in arrival order; see docs/siem.md"},
    {.key = "remote_write",
     .type = VG_CFG_T_LIST,
     .offset = CC(remote_write),
     .count_offset = CC(nremote_write),
     .sub = vg_rws_config_schema,
     .elem_size = sizeof(vg_rws_config),
     .check = vg_rws_config_check,
     .doc = "Prometheus remote_write: every stored sample, of every tenant, is sent from the WAL "
            "to each entry; see docs/remote-write.md"},
    {0},
};
#undef CC
#undef TL

static vg_err_t from_doc(const vg_cfg_doc_t *doc, vg_collector_config_t **out, vg_error *err)
{
    vg_err_t rc = VG_OK;
    vg_cfg_ctx_t ctx;
    vg_collector_config_t *c = vg_calloc(1, sizeof *c);
    if (!c || !(c->arena = vg_arena_new(0)) ||
        !(c->source = vg_arena_strdup(c->arena, vg_cfg_doc_name(doc)))) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        goto fail;
    }
    vg_cfg_ctx_init(&ctx, doc, c->arena, err);
    ctx.user = c;
    if ((rc = vg_cfg_decode(&ctx, vg_cfg_doc_root(doc), top_schema, c))) goto fail;
    *out = c;
    return VG_OK;
fail:
    vg_collector_config_free(c);
    return rc;
}

vg_err_t vg_collector_config_parse(const char *name, const char *yaml, size_t len,
                                   vg_collector_config_t **out, vg_error *err)
{
    vg_cfg_doc_t *doc = NULL;
    *out = NULL;
    vg_err_t rc = vg_cfg_doc_parse(name, yaml, len, &doc, err);
    if (!rc) rc = from_doc(doc, out, err);
    vg_cfg_doc_free(doc);
    return rc;
}

vg_err_t vg_collector_config_load(const char *path, vg_collector_config_t **out, vg_error *err)
{
    vg_cfg_doc_t *doc = NULL;
    *out = NULL;
    if (!path) return vg_collector_config_parse(EMBEDDED_NAME, "", 0, out, err);
    vg_err_t rc = vg_cfg_doc_load(path, &doc, err);
    if (!rc) rc = from_doc(doc, out, err);
    vg_cfg_doc_free(doc);
    return rc;
}

void vg_collector_config_free(vg_collector_config_t *c)
{
    if (!c) return;
    vg_amconfig_release(&c->alerting);
    vg_arena_free(c->arena);
    vg_free(c);
}

vg_err_t vg_collector_config_doc(vg_buf *out)
{
    return vg_cfg_schema_doc(top_schema, NULL, out);
}
