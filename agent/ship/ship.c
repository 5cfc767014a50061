/*
 * ship.c - build and tear down sink, spool and batcher from the agent config.
 *
 * The agent id used to carry the pid, so every restart looked like a new
 * agent to the collector and its sequence tracking started over. It is now
 * the node name plus a hash of the absolute data_dir: the same agent (same
 * node, same spool, same persisted seq) keeps its id across restarts, and
 * two agents on one node (different data_dirs) still differ.
 *
 * A spool that cannot be opened (a read-only or missing data_dir) does not
 * stop the agent: shipping without a safety net beats not shipping, and
 * the error is logged and visible as vigil_agent_spool_enabled 0.
 */
#include "ship.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../config.h"
#include "sink.h"
#include "vigil/alloc.h"
#include "vigil/log.h"
#include "vigil/spool.h"

struct vg_ship {
    struct vg_sink *sink;
    vg_spool_t *spool;
    vg_batcher_t *batcher;
};

void vg_ship_agent_id(const char *node, const char *data_dir, char *out, size_t n)
{
    char abs[PATH_MAX];
    const char *d = data_dir ? data_dir : "";
    if (realpath(d, abs)) d = abs; /* "./data" and "/srv/x/data" are one agent */
    snprintf(out, n, "%s/%08" PRIx32, node ? node : "", (uint32_t)XXH3_64bits(d, strlen(d)));
}

static vg_err_t open_spool(vg_ship_t *s, const vg_agent_config_t *cfg, vg_metrics_t *m)
{
    char dir[PATH_MAX];
    vg_error e = {0};
    snprintf(dir, sizeof(dir), "%s/spool/metrics", cfg->data_dir);
    vg_spool_opts o = {.dir = dir,
                       .kind = "metrics",
                       .max_bytes = cfg->spool_max_bytes,
                       .full = VG_SPOOL_DROP_OLDEST,
                       .sync_interval_ms = cfg->spool_sync_ms};
    vg_err_t rc = vg_spool_open(&o, m, &s->spool, &e);
    vg_metric_set(vg_metrics_gauge(m, "vigil_agent_spool_enabled",
                                   "1 when the disk spool is open, 0 when shipping without it.",
                                   "kind=\"metrics\""),
                  rc ? 0 : 1);
    if (rc) {
        char q[600];
        vg_log_error("ship", "cannot open the spool; shipping without one", "dir=%s err=%s", dir,
                     vg_logq(q, sizeof(q), vg_error_msg(&e, rc)));
    }
    return rc;
}

static vg_err_t start_batcher(vg_ship_t *s, const vg_agent_config_t *cfg, vg_metrics_t *m,
                              vg_error *err)
{
    char id[400], seq_path[PATH_MAX];
    vg_ship_agent_id(cfg->node, cfg->data_dir, id, sizeof(id));
    snprintf(seq_path, sizeof(seq_path), "%s/spool/metrics/batch_seq", cfg->data_dir);
    vg_batcher_opts bo = {
        .agent_id = id,
        .node = cfg->node,
        .tenant = cfg->tenant,
        .max_bytes = (size_t)cfg->batch_max_bytes,
        .max_delay_ms = cfg->batch_max_delay_ms,
        .zstd_level = (int)cfg->zstd_level,
        .spool = s->spool,
        .interleave = cfg->spool_replay && !strcmp(cfg->spool_replay, "interleave"),
        .seq_path = s->spool ? seq_path : NULL,
    };
    vg_log_info("ship", "shipping", "agent_id=%s spool=%s replay=%s", id, s->spool ? "on" : "off",
                bo.interleave ? "interleave" : "ordered");
    return vg_batcher_new(&bo, s->sink, m, &s->batcher, err);
}

vg_err_t vg_ship_new(const struct vg_agent_config *cfg, vg_metrics_t *m, vg_ship_t **out,
                     vg_error *err)
{
    *out = NULL;
    vg_ship_t *s = vg_calloc(1, sizeof(*s));
    if (!s) return vg_error_set(err, VG_ENOMEM, "ship: out of memory");
    vg_err_t rc = vg_sink_from_config(cfg, m, &s->sink, err);
    if (!rc) {
        open_spool(s, cfg, m); /* failure is logged; shipping goes on without a spool */
        rc = start_batcher(s, cfg, m, err);
    }
    if (rc) {
        vg_ship_free(s);
        return rc;
    }
    *out = s;
    return VG_OK;
}

void vg_ship_free(vg_ship_t *s)
{
    if (!s) return;
    vg_batcher_free(s->batcher); /* delivers or spools what it holds */
    vg_spool_free(s->spool);
    if (s->sink) vg_sink_free(s->sink);
    vg_free(s);
}

vg_batcher_t *vg_ship_batcher(vg_ship_t *s)
{
    return s ? s->batcher : NULL;
}
