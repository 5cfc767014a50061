/*
 * config.c (agent) - the agent's YAML config, as schema tables.
 *
 * Each section of DESIGN.md's agent config is one vg_cfg_field_t table, and
 * the tables are the single source for parsing, defaults and the generated
 * reference in docs/configuration.md. The struct is flat (agent.listen lands
 * in c->listen), so sections decode into the same object at offset 0.
 *
 * scrape_configs follow Prometheus's schema so users can paste theirs:
 * relabel_configs and metric_relabel_configs are compiled here, once, with
 * Prometheus's validation messages (a broken rule fails the load, it is
 * never skipped: a silently ignored relabel rule would ship data the user
 * meant to drop); file_sd_configs, basic_auth, authorization and tls_config
 * are checked as Prometheus's HTTPClientConfig checks them. Keys of
 * Prometheus's `global` that mean nothing to an agent (rule evaluation,
 * query log, native histograms, ...) are accepted and ignored with a debug
 * line, so a pasted prometheus.yml loads; unknown keys stay errors.
 * Cross-field rules (timeouts and limits inherited from global, unique job
 * names) run after the tables, with positions taken from the document so
 * their errors still name file:line:col. The Prometheus scrape_config parts
 * that are more than a table row live in config_scrape.c.
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vigil/alloc.h"
#include "vigil/duration.h"

#include "config_audit.h"
#include "config_scrape.h"

#define EMBEDDED_NAME "<embedded default>"

/* The embedded default: everything else comes from the schema defaults. */
static const char embedded_yaml[] = "scrape_configs:\n"
                                    "  - job_name: vigil-agent\n"
                                    "    static_configs:\n"
                                    "      - targets: ['127.0.0.1:9401']\n";

/* params: map of name to list of values, kept as repeated key/value pairs. */
static vg_err_t parse_params(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *field, void *obj)
{
    vg_scrape_config_t *sc = obj;
    size_t total = 0;
    if (vg_cfg_node_kind(node) != VG_CFG_NULL && vg_cfg_node_kind(node) != VG_CFG_MAP)
        return vg_cfg_errorf(ctx, node, "%s: expected a map of parameter names to lists of values",
                             ctx->path);
    for (size_t i = 0; i < vg_cfg_node_len(node); i++) {
        const vg_cfg_node_t *v = vg_cfg_map_value(node, i);
        if (vg_cfg_node_kind(v) != VG_CFG_SEQ && vg_cfg_node_kind(v) != VG_CFG_NULL)
            return vg_cfg_errorf(ctx, v, "%s.%s: expected a list of values, like [\"1\"]",
                                 ctx->path, vg_cfg_node_text(vg_cfg_map_key(node, i)));
        total += vg_cfg_node_len(v);
    }
    sc->params = NULL;
    sc->nparams = 0;
    if (!total) return VG_OK;
    if (!(sc->params = vg_arena_alloc(ctx->arena, total * sizeof *sc->params)))
        return vg_error_set(ctx->err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < vg_cfg_node_len(node); i++) {
        const vg_cfg_node_t *k = vg_cfg_map_key(node, i), *v = vg_cfg_map_value(node, i);
        for (size_t j = 0; j < vg_cfg_node_len(v); j++) {
            vg_kv_t *kv = &sc->params[sc->nparams];
            vg_err_t rc = vg_cfg_get_string(ctx, vg_cfg_seq_item(v, j), &kv->value);
            if (rc) return rc;
            if (!(kv->key = vg_arena_strdup(ctx->arena, vg_cfg_node_text(k))))
                return vg_error_set(ctx->err, VG_ENOMEM, "out of memory");
            sc->nparams++;
        }
    }
    return VG_OK;
}

/* Targets are host:port; a URL here is a common mistake worth naming. As in
 * Prometheus this is checked only without relabel_configs, which may
 * rewrite __address__. */
static vg_err_t check_static(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node,
                             const vg_scrape_config_t *sc)
{
    const vg_cfg_node_t *list = vg_cfg_map_get(node, "static_configs");
    for (size_t j = 0; j < sc->nstatic; j++) {
        const vg_static_group_t *g = &sc->static_configs[j];
        const vg_cfg_node_t *tn = vg_cfg_map_get(vg_cfg_seq_item(list, j), "targets");
        for (size_t i = 0; i < g->ntargets; i++) {
            const char *t = g->targets[i];
            if (!*t || strpbrk(t, "/ \t"))
                return vg_cfg_errorf(ctx, vg_cfg_seq_item(tn, i),
                                     "%s.static_configs[%zu].targets[%zu]: \"%.100s\" is not a "
                                     "valid target; use host:port (scheme and path are set by "
                                     "scheme and metrics_path)",
                                     ctx->path, j, i, t);
        }
    }
    return VG_OK;
}

static const vg_cfg_field_t static_schema[] = {
    {.key = "targets",
     .type = VG_CFG_T_STRINGS,
     .offset = offsetof(vg_static_group_t, targets),
     .count_offset = offsetof(vg_static_group_t, ntargets),
     .doc = "host:port pairs to scrape"},
    {.key = "labels",
     .type = VG_CFG_T_LABELS,
     .offset = offsetof(vg_static_group_t, labels),
     .count_offset = offsetof(vg_static_group_t, nlabels),
     .doc = "labels added to every series scraped from these targets"},
    {0},
};

/* Inherit interval/timeout/limits from global, apply Prometheus's timeout
 * rule, then the checks and compilation of config_scrape.c. */
static vg_err_t check_scrape(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *obj)
{
    const vg_agent_config_t *c = ctx->user;
    vg_scrape_config_t *sc = obj;
    char ti[VG_DURATION_STRMAX], iv[VG_DURATION_STRMAX];
    if (!sc->job_name[0])
        return vg_cfg_errorf(ctx, vg_cfg_map_get(node, "job_name"), "%s: job_name is empty",
                             ctx->path);
    vg_agent_cfg_inherit_limits(c, node, sc);
    if (!sc->interval_ms) sc->interval_ms = c->scrape_interval_ms;
    if (!sc->timeout_ms) {
        /* Prometheus: an inherited timeout is cut down to the job's interval */
        sc->timeout_ms = c->scrape_timeout_ms;
        if (sc->timeout_ms > sc->interval_ms) sc->timeout_ms = sc->interval_ms;
    } else if (sc->timeout_ms > sc->interval_ms) {
        return vg_cfg_errorf(ctx, vg_cfg_map_get(node, "scrape_timeout"),
                             "%s: scrape_timeout %s is greater than scrape_interval %s for job "
                             "\"%.100s\"",
                             ctx->path, vg_duration_format(sc->timeout_ms, ti, sizeof ti),
                             vg_duration_format(sc->interval_ms, iv, sizeof iv), sc->job_name);
    }
    vg_err_t rc = sc->nrelabel_rules ? VG_OK : check_static(ctx, node, sc);
    return rc ? rc : vg_agent_cfg_check_scrape(ctx, node, sc);
}

#define SC(f) offsetof(vg_scrape_config_t, f)
static const vg_cfg_field_t scrape_schema[] = {
    {.key = "job_name",
     .type = VG_CFG_T_STRING,
     .offset = SC(job_name),
     .flags = VG_CFG_REQUIRED,
     .doc = "name of the job, unique across scrape_configs; becomes the job label"},
    {.key = "scrape_interval",
     .type = VG_CFG_T_DURATION,
     .offset = SC(interval_ms),
     .min = "1ms",
     .def_doc = "`global.scrape_interval`",
     .doc = "how often to scrape"},
    {.key = "scrape_timeout",
     .type = VG_CFG_T_DURATION,
     .offset = SC(timeout_ms),
     .min = "1ms",
     .def_doc = "`global.scrape_timeout`, capped at `scrape_interval`",
     .doc = "per-scrape timeout; must not exceed scrape_interval"},
    {.key = "metrics_path",
     .type = VG_CFG_T_STRING,
     .offset = SC(metrics_path),
     .def = "/metrics",
     .doc = "HTTP path to scrape"},
    {.key = "scheme",
     .type = VG_CFG_T_STRING,
     .offset = SC(scheme),
     .def = "http",
     .choices = "http|https",
     .doc = "URL scheme"},
    {.key = "params",
     .type = VG_CFG_T_CUSTOM,
     .parse = parse_params,
     .type_doc = "map of string to list of strings",
     .doc = "URL query parameters"},
    {.key = "honor_labels",
     .type = VG_CFG_T_BOOL,
     .offset = SC(honor_labels),
     .def = "false",
     .doc = "keep scraped labels that clash with target labels instead of renaming them"},
    {.key = "honor_timestamps",
     .type = VG_CFG_T_BOOL,
     .offset = SC(honor_timestamps),
     .def = "true",
     .doc = "use timestamps present in the scraped data"},
    {.key = "sample_limit",
     .type = VG_CFG_T_UINT,
     .offset = SC(sample_limit),
     .def = "0",
     .doc = "fail the scrape above this many samples; 0 = no limit"},
    {.key = "label_limit",
     .type = VG_CFG_T_UINT,
     .offset = SC(label_limit),
     .def = "0",
     .doc = "fail the scrape if a series has more labels; 0 = no limit"},
    {.key = "body_size_limit",
     .type = VG_CFG_T_SIZE,
     .offset = SC(body_size_limit),
     .def = "0",
     .doc = "fail the scrape if the uncompressed body is larger; 0 = no limit"},
    {.key = "static_configs",
     .type = VG_CFG_T_LIST,
     .offset = SC(static_configs),
     .count_offset = SC(nstatic),
     .sub = static_schema,
     .elem_size = sizeof(vg_static_group_t),
     .doc = "fixed target groups"},
    SCRAPE_EXTRA_FIELDS,
    {0},
};
#undef SC

#define AC(f) offsetof(vg_agent_config_t, f)
static const vg_cfg_field_t agent_schema[] = {
    {.key = "listen",
     .type = VG_CFG_T_STRING,
     .offset = AC(listen),
     .def = "127.0.0.1:9401",
     .doc = "address of the agent's own /metrics and health endpoints"},
    {.key = "node",
     .type = VG_CFG_T_STRING,
     .offset = AC(node),
     .def_doc = "the host name",
     .doc = "node name put on every batch"},
    {.key = "tenant",
     .type = VG_CFG_T_STRING,
     .offset = AC(tenant),
     .def = "default",
     .doc = "tenant of the data this agent ships"},
    {.key = "data_dir",
     .type = VG_CFG_T_STRING,
     .offset = AC(data_dir),
     .def = "/var/lib/vigil-agent",
     .doc = "directory for the spool and tail checkpoints"},
    {0},
};

static vg_err_t check_global(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *obj)
{
    const vg_agent_config_t *c = obj;
    if (c->scrape_timeout_ms <= c->scrape_interval_ms) return VG_OK;
    const vg_cfg_node_t *at = vg_cfg_map_get(node, "scrape_timeout");
    return vg_cfg_errorf(ctx, at ? at : node,
                         "global: scrape_timeout is greater than scrape_interval");
}

static const vg_cfg_field_t global_schema[] = {
    {.key = "scrape_interval",
     .type = VG_CFG_T_DURATION,
     .offset = AC(scrape_interval_ms),
     .def = "30s",
     .min = "1ms",
     .doc = "default scrape interval of every job"},
    {.key = "scrape_timeout",
     .type = VG_CFG_T_DURATION,
     .offset = AC(scrape_timeout_ms),
     .def = "10s",
     .min = "1ms",
     .doc = "default scrape timeout of every job"},
    {.key = "external_labels",
     .type = VG_CFG_T_LABELS,
     .offset = AC(external_labels),
     .count_offset = AC(nexternal_labels),
     .doc = "labels added to every series this agent ships"},
    GLOBAL_EXTRA_FIELDS,
    {0},
};

static const vg_cfg_field_t host_schema[] = {
    {.key = "enabled",
     .type = VG_CFG_T_BOOL,
     .offset = AC(host_metrics_enabled),
     .def = "true",
     .doc = "collect node_exporter-compatible host metrics"},
    {.key = "interval",
     .type = VG_CFG_T_DURATION,
     .offset = AC(host_metrics_interval_ms),
     .min = "1ms",
     .def_doc = "`global.scrape_interval`",
     .doc = "how often host metrics are collected"},
    {.key = "job",
     .type = VG_CFG_T_STRING,
     .offset = AC(host_metrics_job),
     .def = "node",
     .doc = "job label of host metrics"},
    {.key = "instance",
     .type = VG_CFG_T_STRING,
     .offset = AC(host_metrics_instance),
     .def_doc = "`agent.node`",
     .doc = "instance label of host metrics"},
    {.key = "proc_path",
     .type = VG_CFG_T_STRING,
     .offset = AC(host_proc_path),
     .def = "/proc",
     .doc = "procfs mount point (node_exporter's --path.procfs)"},
    {.key = "sys_path",
     .type = VG_CFG_T_STRING,
     .offset = AC(host_sys_path),
     .def = "/sys",
     .doc = "sysfs mount point (node_exporter's --path.sysfs)"},
    {0},
};

static vg_err_t check_http(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *obj)
{
    const vg_agent_config_t *c = obj;
    if (!strncmp(c->http_url, "http://", 7) || !strncmp(c->http_url, "https://", 8)) return VG_OK;
    const vg_cfg_node_t *at = vg_cfg_map_get(node, "url");
    return vg_cfg_errorf(ctx, at ? at : node,
                         "output.http.url: \"%.100s\" must start with http:// or https://",
                         c->http_url);
}

static const vg_cfg_field_t http_schema[] = {
    {.key = "url",
     .type = VG_CFG_T_STRING,
     .offset = AC(http_url),
     .def = "http://127.0.0.1:9400",
     .doc = "collector base URL; batches go to POST <url>/ingest/v1/batch"},
    {0},
};

static vg_err_t check_kafka(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *obj)
{
    vg_agent_config_t *c = obj;
    if (c->kafka_brokers && !c->kafka_brokers[0]) c->kafka_brokers = NULL; /* "" = unset */
    return VG_OK;
}

static const vg_cfg_field_t kafka_schema[] = {
    {.key = "brokers",
     .type = VG_CFG_T_STRING,
     .offset = AC(kafka_brokers),
     .doc = "comma-separated host:port list; when set, Kafka replaces the HTTP output"},
    {.key = "metrics_topic",
     .type = VG_CFG_T_STRING,
     .offset = AC(kafka_metrics_topic),
     .def = "vigil.metrics",
     .doc = "topic for metric batches"},
    {.key = "audit_topic",
     .type = VG_CFG_T_STRING,
     .offset = AC(kafka_audit_topic),
     .def = "vigil.audit",
     .doc = "topic for audit batches"},
    {.key = "audit_dlq_topic",
     .type = VG_CFG_T_STRING,
     .offset = AC(kafka_audit_dlq_topic),
     .def = "vigil.audit.dlq",
     .doc = "topic for audit lines that failed validation (JSON with the reason)"},
    {.key = "properties",
     .type = VG_CFG_T_KVMAP,
     .offset = AC(kafka_properties),
     .count_offset = AC(nkafka_properties),
     .doc = "librdkafka properties passed through as is (e.g. security.protocol)"},
    {0},
};

static const vg_cfg_field_t output_schema[] = {
    {.key = "http",
     .type = VG_CFG_T_SECTION,
     .sub = http_schema,
     .check = check_http,
     .doc = "ship straight to a collector over HTTP (the default)"},
    {.key = "kafka",
     .type = VG_CFG_T_SECTION,
     .sub = kafka_schema,
     .check = check_kafka,
     .doc = "ship through Kafka"},
    {.key = "batch_max_bytes",
     .type = VG_CFG_T_SIZE,
     .offset = AC(batch_max_bytes),
     .def = "1MiB",
     .min = "1KiB",
     .max = "64MiB",
     .doc = "cut a batch when its estimated uncompressed protobuf size reaches this"},
    {.key = "batch_max_delay",
     .type = VG_CFG_T_DURATION,
     .offset = AC(batch_max_delay_ms),
     .def = "1s",
     .min = "10ms",
     .max = "5m",
     .doc = "cut a batch when its first sample has waited this long"},
    {.key = "zstd_level",
     .type = VG_CFG_T_INT,
     .offset = AC(zstd_level),
     .def = "1",
     .min = "1",
     .max = "19",
     .doc = "zstd level of batches (bench/RESULTS.md, \"zstd level\", has the trade-off)"},
    {0},
};

static const vg_cfg_field_t spool_schema[] = {
    {.key = "max_bytes",
     .type = VG_CFG_T_SIZE,
     .offset = AC(spool_max_bytes),
     .def = "1GiB",
     .min = "1MiB",
     .doc = "disk spool cap; the oldest segments go first beyond it"},
    {.key = "sync",
     .type = VG_CFG_T_STRING,
     .offset = AC(spool_sync),
     .def = "always",
     .doc = "`always`: fdatasync each spooled batch (nothing acknowledged is lost on power "
            "loss); a duration such as `1s`: flush at most that often (a crash of the process "
            "loses nothing, a power cut up to that much)"},
    {.key = "replay",
     .type = VG_CFG_T_STRING,
     .offset = AC(spool_replay),
     .def = "interleave",
     .choices = "ordered|interleave",
     .doc = "`interleave`: alternate spooled and live batches, so a backlog never delays fresh "
            "data (the collector's head inserts samples up to "
            "`storage.out_of_order_time_window` late in order); `ordered`: new batches queue "
            "behind spooled ones, so samples reach the store in time order (for a store without "
            "an out-of-order window)"},
    {0},
};

static vg_err_t check_spool(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *obj)
{
    vg_agent_config_t *c = obj;
    c->spool_sync_ms = 0;
    if (!strcmp(c->spool_sync, "always")) return VG_OK;
    if (vg_duration_parse(c->spool_sync, &c->spool_sync_ms, NULL) == VG_OK && c->spool_sync_ms > 0)
        return VG_OK;
    const vg_cfg_node_t *at = vg_cfg_map_get(node, "sync");
    return vg_cfg_errorf(ctx, at ? at : node,
                         "spool.sync: \"%.100s\" must be \"always\" or a duration like 1s",
                         c->spool_sync);
}

static const vg_cfg_field_t top_schema[] = {
    {.key = "agent", .type = VG_CFG_T_SECTION, .sub = agent_schema, .doc = "this agent"},
    {.key = "global",
     .type = VG_CFG_T_SECTION,
     .sub = global_schema,
     .check = check_global,
     .doc = "Prometheus global section"},
    {.key = "scrape_configs",
     .type = VG_CFG_T_LIST,
     .offset = AC(scrape_configs),
     .count_offset = AC(nscrape_configs),
     .sub = scrape_schema,
     .elem_size = sizeof(vg_scrape_config_t),
     .check = check_scrape,
     .doc = "Prometheus scrape configs"},
    {.key = "host_metrics",
     .type = VG_CFG_T_SECTION,
     .sub = host_schema,
     .doc = "host metrics collector"},
    {.key = "audit_logs",
     .type = VG_CFG_T_LIST,
     .offset = AC(audit_logs),
     .count_offset = AC(naudit_logs),
     .sub = vg_audit_log_schema,
     .elem_size = sizeof(vg_audit_log_config_t),
     .check = vg_audit_log_check,
     .doc = "JSON audit log files to tail, validate, redact and ship"},
    {.key = "output",
     .type = VG_CFG_T_SECTION,
     .sub = output_schema,
     .doc = "where batches go: Kafka when output.kafka.brokers is set, else HTTP"},
    {.key = "spool",
     .type = VG_CFG_T_SECTION,
     .sub = spool_schema,
     .check = check_spool,
     .doc = "disk spool used on failure or backpressure"},
    {0},
};
#undef AC

static int cmp_job(const void *a, const void *b)
{
    const vg_scrape_config_t *x = *(vg_scrape_config_t *const *)a;
    const vg_scrape_config_t *y = *(vg_scrape_config_t *const *)b;
    int c = strcmp(x->job_name, y->job_name);
    return c ? c : (x < y ? -1 : x > y);
}

/* job_name must be unique; sort pointers so large configs stay O(n log n). */
static vg_err_t check_jobs(vg_cfg_ctx_t *ctx, vg_agent_config_t *c, const vg_cfg_node_t *root)
{
    size_t n = c->nscrape_configs;
    if (n < 2) return VG_OK;
    vg_scrape_config_t **p = vg_malloc(n * sizeof *p);
    if (!p) return vg_error_set(ctx->err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) p[i] = &c->scrape_configs[i];
    qsort(p, n, sizeof *p, cmp_job);
    vg_err_t rc = VG_OK;
    for (size_t i = 1; i < n && !rc; i++) {
        if (strcmp(p[i - 1]->job_name, p[i]->job_name)) continue;
        size_t idx = (size_t)(p[i] - c->scrape_configs);
        const vg_cfg_node_t *sc = vg_cfg_seq_item(vg_cfg_map_get(root, "scrape_configs"), idx);
        rc = vg_cfg_errorf(ctx, vg_cfg_map_get(sc, "job_name"),
                           "scrape_configs[%zu]: duplicate job_name \"%.100s\"", idx,
                           p[i]->job_name);
    }
    vg_free(p);
    return rc;
}

static vg_err_t fill_node(vg_agent_config_t *c, vg_error *err)
{
    char host[256];
    if (c->node) return VG_OK;
    if (gethostname(host, sizeof host) != 0 || !host[0]) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    if (!(c->node = vg_arena_strdup(c->arena, host)))
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    return VG_OK;
}

static vg_err_t decode_doc(const vg_cfg_doc_t *doc, vg_agent_config_t *c, vg_error *err)
{
    vg_cfg_ctx_t ctx;
    vg_cfg_ctx_init(&ctx, doc, c->arena, err);
    ctx.user = c;
    vg_err_t rc = vg_cfg_decode(&ctx, vg_cfg_doc_root(doc), top_schema, c);
    if (!rc) rc = check_jobs(&ctx, c, vg_cfg_doc_root(doc));
    if (!rc) rc = fill_node(c, err);
    return rc;
}

/* Build a config from a parsed document; takes nothing, frees nothing of doc. */
static vg_err_t from_doc(const vg_cfg_doc_t *doc, vg_agent_config_t **out, vg_error *err)
{
    vg_err_t rc = VG_OK;
    vg_agent_config_t *c = vg_calloc(1, sizeof *c);
    if (!c || !(c->arena = vg_arena_new(0))) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        goto fail;
    }
    if (!(c->source = vg_arena_strdup(c->arena, vg_cfg_doc_name(doc)))) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = decode_doc(doc, c, err))) goto fail;
    *out = c;
    return VG_OK;
fail:
    vg_agent_config_free(c);
    return rc;
}

vg_err_t vg_agent_config_parse(const char *name, const char *yaml, size_t len,
                               vg_agent_config_t **out, vg_error *err)
{
    vg_cfg_doc_t *doc = NULL;
    *out = NULL;
    vg_err_t rc = vg_cfg_doc_parse(name, yaml, len, &doc, err);
    if (!rc) rc = from_doc(doc, out, err);
    vg_cfg_doc_free(doc);
    return rc;
}

vg_err_t vg_agent_config_load(const char *path, vg_agent_config_t **out, vg_error *err)
{
    vg_cfg_doc_t *doc = NULL;
    *out = NULL;
    if (!path)
        return vg_agent_config_parse(EMBEDDED_NAME, embedded_yaml, strlen(embedded_yaml), out, err);
    vg_err_t rc = vg_cfg_doc_load(path, &doc, err);
    if (!rc) rc = from_doc(doc, out, err);
    vg_cfg_doc_free(doc);
    return rc;
}

void vg_agent_config_free(vg_agent_config_t *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->ncompiled; i++) vg_relabel_free(c->compiled[i]);
    vg_free(c->compiled);
    vg_arena_free(c->arena);
    vg_free(c);
}

vg_err_t vg_agent_config_doc(vg_buf *out)
{
    return vg_cfg_schema_doc(top_schema, NULL, out);
}
