/*
 * sink.c - the sink wrapper and the choice of transport from the config.
 *
 * The wrapper is deliberately thin (two pointers) so a test, or the spool
 * that will sit in front of a real sink, can build one on the stack. The
 * config picks exactly one transport: Kafka when brokers are configured,
 * otherwise HTTP to the collector, the single-machine default.
 */
#include "sink.h"

#include <stdlib.h>

#include "../config.h"
#include "vigil/alloc.h"

#include <stdio.h>

const char *vg_sink_kind_name(vg_sink_kind k)
{
    return k == VG_SINK_AUDIT ? "audit" : "metrics";
}

struct vg_sink *vg_sink_wrap(const struct vg_sink_ops *ops, void *self)
{
    struct vg_sink *s = vg_calloc(1, sizeof(*s));
    if (!s) {
        if (ops && ops->free) ops->free(self);
        return NULL;
    }
    s->ops = ops;
    s->self = self;
    return s;
}

vg_err_t vg_sink_send(struct vg_sink *s, const vg_sink_msg *msg, vg_error *err)
{
    if (!s || !s->ops || !s->ops->send || !msg)
        return vg_error_set(err, VG_EINVAL, "sink: no sink or message");
    return s->ops->send(s->self, msg, err);
}

void vg_sink_free(struct vg_sink *s)
{
    if (!s) return;
    if (s->ops && s->ops->free) s->ops->free(s->self);
    vg_free(s);
}

static vg_err_t kafka_from_config(const vg_agent_config_t *cfg, vg_metrics_t *m,
                                  struct vg_sink **out, vg_error *err)
{
    vg_sink_kafka_opts o = {
        .brokers = cfg->kafka_brokers,
        .metrics_topic = cfg->kafka_metrics_topic,
        .audit_topic = cfg->kafka_audit_topic,
        .props = cfg->kafka_properties,
        .nprops = cfg->nkafka_properties,
    };
    return vg_sink_kafka_new(&o, m, out, err);
}

vg_err_t vg_sink_from_config(const struct vg_agent_config *cfg, vg_metrics_t *m,
                             struct vg_sink **out, vg_error *err)
{
    *out = NULL;
    if (!cfg) return vg_error_set(err, VG_EINVAL, "sink: no configuration");
    if (cfg->kafka_brokers && *cfg->kafka_brokers) return kafka_from_config(cfg, m, out, err);
    vg_sink_http_opts o = {
        .url = cfg->http_url ? cfg->http_url : "http://127.0.0.1:9400",
        .timeout_ms = 0,
    };
    return vg_sink_http_new(&o, m, out, err);
}

void vg_sink_counters_init(vg_sink_counters *c, vg_metrics_t *m, const char *sink)
{
    static const char name[] = "vigil_agent_sink_requests_total";
    static const char help[] = "Batches sent by the agent's sink, by result.";
    static const char *const results[] = {"ok", "retry", "rejected"};
    vg_metric_t **slots[] = {&c->ok, &c->retry, &c->rejected};
    for (size_t i = 0; i < 3; i++) {
        char labels[128];
        snprintf(labels, sizeof(labels), "sink=\"%s\",result=\"%s\"", sink, results[i]);
        *slots[i] = m ? vg_metrics_counter(m, name, help, labels) : NULL;
    }
}
