/*
 * config.h (collector) - the collector's configuration, as loaded from YAML.
 *
 * DESIGN.md's schema. Sections owned by later capabilities (rule_files,
 * alerting, siem, remote_write) are parsed by their modules; until a module
 * exists its section must be empty, and a non-empty one is refused with a
 * clear "not supported by this build" error rather than silently ignored.
 */
#ifndef VIGIL_COLLECTOR_CONFIG_H
#define VIGIL_COLLECTOR_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "alerting/amconfig.h"
#include "vigil/arena.h"
#include "vigil/config.h"
#include "vigil/buf.h"
#include "vigil/error.h"

typedef struct vg_tenant_limits {
    const char *tenant;     /* NULL for the default entry */
    double ingestion_rate;  /* samples/s, default 100000 */
    double ingestion_burst; /* default 200000 */
    uint64_t max_series;    /* default 1000000 */
} vg_tenant_limits_t;

typedef struct vg_collector_config {
    vg_arena_t *arena;
    const char *source;

    /* collector: */
    const char *listen;   /* default 127.0.0.1:9400 */
    const char *data_dir; /* default /var/lib/vigil-collector */

    /* input.kafka: brokers NULL = no Kafka consumer */
    const char *kafka_brokers;
    const char *kafka_group_id;        /* default vigil-collector */
    const char *kafka_metrics_topic;   /* default vigil.metrics */
    const char *kafka_audit_topic;     /* default vigil.audit */
    const char *kafka_audit_dlq_topic; /* default vigil.audit.dlq; "" = not consumed */
    vg_kv_t *kafka_properties;         /* librdkafka properties, passed through as is */
    size_t nkafka_properties;

    /* storage: */
    int64_t retention_raw_ms; /* default 90d */
    int64_t retention_5m_ms;  /* default 1y */
    int64_t retention_1h_ms;  /* default 7y */
    uint64_t storage_max_bytes;
    int64_t downsample_5m_after_ms; /* downsample.5m_after, default 40h; 0 = never */
    int64_t downsample_1h_after_ms; /* downsample.1h_after, default 10d; 0 = never */
    int64_t wal_sync_ms;        /* default 5ms */
    uint64_t wal_segment_bytes; /* default 128MiB */
    int64_t ooo_window_ms; /* out_of_order_time_window, default 10m; 0 = none */
    int64_t block_range_ms; /* block_range, default 2h */
    uint64_t wal_max_hold_bytes; /* WAL kept for remote_write past the blocks, default 4GiB */

    /* audit.retention: */
    int64_t audit_hot_ms;  /* 30d */
    int64_t audit_warm_ms; /* 90d */
    int64_t audit_cold_ms; /* 7y */
    int64_t audit_seal_after_ms;     /* audit.seal_after: grace after an hour ends; 5m */
    int64_t audit_check_interval_ms; /* audit.check_interval: sealing/tiering period; 10s */
    const char *audit_signing_key_file; /* audit.signing_key_file; NULL = audit/signing.key */
    uint64_t audit_siem_buffer_bytes; /* audit.siem_buffer_bytes: SIEM feed cap; 10GiB */

    /* limits: */
    vg_tenant_limits_t default_limits;
    vg_tenant_limits_t *tenant_limits;
    size_t ntenant_limits;

    int64_t evaluation_interval_ms; /* default 30s */
    const char **rule_files;        /* globs, as written */
    size_t nrule_files;
    vg_label_t *external_labels; /* global.external_labels, sorted */
    size_t nexternal_labels;
    const char *external_url; /* global.external_url; NULL = none */

    vg_amconfig_t alerting; /* alerting: (Alertmanager format); alerting.configured = 0 if empty */

    struct vg_rws_config *remote_write; /* remote_write: (Prometheus format), remotewrite/sender.h */
    size_t nremote_write;

    struct vg_siem_cfg *siem; /* siem: outputs, siem/siem.h */
    size_t nsiem;

    /* metadata: the /api/v1/metadata table (metadata/mdstore.h) */
    uint64_t metadata_max_entries;    /* per tenant, default 100000 */
    uint64_t metadata_max_per_metric; /* distinct entries per name, default 10 */
    int64_t metadata_ttl_ms;          /* forget entries not seen for this long, default 1h */
} vg_collector_config_t;

vg_err_t vg_collector_config_load(const char *path, vg_collector_config_t **out, vg_error *err);
vg_err_t vg_collector_config_parse(const char *name, const char *yaml, size_t len,
                                   vg_collector_config_t **out, vg_error *err);
void vg_collector_config_free(vg_collector_config_t *c);
/* Append the Markdown reference of every collector config key to out. */
vg_err_t vg_collector_config_doc(vg_buf *out);

#endif
