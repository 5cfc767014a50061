/*
 * ship.h - the agent's shipping pipeline built from its config: sink, circuit
 * breaker, disk spool and batcher, in one handle.
 *
 * main.c wires producers to vg_ship_batcher(); everything about getting
 * batches out (which transport, where the spool lives, the stable agent id
 * and the persisted batch seq) is decided here, so the shutdown order
 * (batcher first, so it can spool what it holds; then spool; then sink) is
 * written once.
 */
#ifndef VIGIL_AGENT_SHIP_H
#define VIGIL_AGENT_SHIP_H

#include <stddef.h>

#include "batcher.h"
#include "vigil/error.h"
#include "vigil/metrics.h"

struct vg_agent_config;
typedef struct vg_ship vg_ship_t;

/* Build the pipeline from cfg (borrowed; must outlive the ship): the sink
 * (vg_sink_from_config), the spool in <data_dir>/spool/metrics (when it cannot
 * be opened the agent still ships, without a spool, and logs an error), and the
 * batcher, whose seq lives in <data_dir>/spool/metrics/batch_seq. m may be NULL. */
vg_err_t vg_ship_new(const struct vg_agent_config *cfg, vg_metrics_t *m, vg_ship_t **out,
                     vg_error *err);
/* Stop the batcher (it spools what it cannot deliver in time), close the spool
 * and the sink. NULL is a no-op. */
void vg_ship_free(vg_ship_t *s);
/* The batcher producers add samples to. */
vg_batcher_t *vg_ship_batcher(vg_ship_t *s);

/* The agent id put on every batch: "<node>/<8 hex digits of a hash of the
 * absolute data_dir>", stable across restarts (the collector tracks batch seqs
 * per agent id) and distinct for two agents on one node. */
void vg_ship_agent_id(const char *node, const char *data_dir, char *out, size_t n);

#endif
