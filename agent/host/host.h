/*
 * host.h - host metrics: the node's own metrics with node_exporter's names.
 *
 * A vg_host_t reads /proc and /sys every interval on one thread of its own
 * and emits node_cpu_seconds_total, node_memory_*_bytes, node_filesystem_*,
 * node_disk_*, node_network_* and friends, named and labelled exactly as
 * prometheus-node-exporter (1.5) names them so existing node dashboards and
 * alert rules work unchanged. Samples go through the same callbacks the
 * scraper uses (vg_scrape_emit_fn / vg_scrape_commit_fn), so the agent wires
 * both producers into the batcher the same way; each collection ends with
 * up{job,instance}=1 and one commit, as a scrape does.
 *
 * Every file is read into a capped buffer and parsed line by line; a line
 * that does not parse is skipped and counted in
 * vigil_host_metrics_errors_total{collector}, never fatal. The /proc and
 * /sys roots are parameters so tests run the collectors over fixture trees.
 */
#ifndef VIGIL_AGENT_HOST_H
#define VIGIL_AGENT_HOST_H

#include <stdint.h>
#include <sys/statvfs.h>

#include "../config.h" /* agent/config.h */
#include "../scrape/scrape.h"
#include "vigil/error.h"
#include "vigil/metrics.h"

typedef struct vg_host vg_host_t;

/* New collector from cfg's host_metrics section (cfg borrowed: must outlive
 * the collector; metrics may be NULL). Does not start the thread. Samples go
 * to emit, each collection ends with commit (may be NULL). On success free
 * *out with vg_host_free. */
vg_err_t vg_host_new(const vg_agent_config_t *cfg, vg_scrape_emit_fn emit,
                     vg_scrape_commit_fn commit, void *ud, vg_metrics_t *metrics, vg_host_t **out,
                     vg_error *err);
/* Start the collection thread: one collection now, then one per interval. */
vg_err_t vg_host_start(vg_host_t *h, vg_error *err);
/* Collect once on the calling thread (tests, --once). VG_EINVAL while the
 * thread runs. Returns VG_OK even when single collectors fail (counted). */
vg_err_t vg_host_collect_once(vg_host_t *h, vg_error *err);
/* Stop the thread (waits for a collection in progress) and free. NULL is a no-op. */
void vg_host_free(vg_host_t *h);

/* Test hooks: a fake statvfs (mount points of a fixture tree do not exist),
 * a fixed wall clock, and fixed page size and USER_HZ; 0/NULL keep the real
 * ones. Call before collecting. */
typedef struct vg_host_hooks {
    int (*statvfs)(void *ud, const char *path, struct statvfs *out); /* 0 or -1 */
    int64_t (*now_ms)(void *ud);
    void *ud;
    long page_size;
    long clk_tck;
} vg_host_hooks;
void vg_host_set_hooks(vg_host_t *h, const vg_host_hooks *hooks);

#endif
