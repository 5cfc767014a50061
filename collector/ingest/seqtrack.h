/*
 * seqtrack.h - per-agent batch sequence tracking: proof of no loss.
 *
 * Every agent numbers its batches 1, 2, 3, ... and keeps counting across
 * restarts. The collector records, per agent id, which seqs it stored, so
 * a gap (a batch that never arrived) and a duplicate (a batch delivered
 * twice, which at-least-once delivery allows and the store absorbs) are
 * both visible in self-metrics:
 *   vigil_ingest_batches_duplicate_total
 *   vigil_ingest_agent_seq_highest{agent_id}        highest seq stored
 *   vigil_ingest_agent_seq_gaps{agent_id}           seqs below it never stored
 *   vigil_ingest_agent_batches_duplicate_total{agent_id}
 *   vigil_ingest_agents_tracked
 *
 * Memory is bounded: per agent, the highest contiguous seq plus a bitmap of
 * the `window` seqs above it (a seq further ahead slides the window and the
 * unseen seqs it passes are counted as gaps for good); at most max_agents
 * agents are tracked, later ones are counted as untracked.
 */
#ifndef VIGIL_INGEST_SEQTRACK_H
#define VIGIL_INGEST_SEQTRACK_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/metrics.h"

typedef struct vg_seqtrack vg_seqtrack_t;

typedef struct vg_seqtrack_opts {
    size_t max_agents; /* 0 = 10000 */
    uint32_t window;   /* seqs tracked above the contiguous prefix; 0 = 4096 (multiple of 64) */
} vg_seqtrack_opts;

typedef enum vg_seq_result {
    VG_SEQ_NEW = 0,   /* first time this seq is stored */
    VG_SEQ_DUPLICATE, /* seen before (the batch was still applied, idempotently) */
    VG_SEQ_UNTRACKED, /* seq 0, no agent id, or too many agents */
} vg_seq_result;

typedef struct vg_seqtrack_agent {
    uint64_t highest;    /* highest seq stored */
    uint64_t contiguous; /* every seq in 1..contiguous was stored */
    uint64_t missing;    /* seqs in 1..highest never stored */
    uint64_t duplicates; /* batches whose seq was already stored */
    uint64_t batches;    /* batches observed, duplicates included */
} vg_seqtrack_agent;

/* New tracker (o may be NULL) registering its metrics in m (borrowed, may be
 * NULL). NULL on ENOMEM. */
vg_seqtrack_t *vg_seqtrack_new(const vg_seqtrack_opts *o, vg_metrics_t *m);
void vg_seqtrack_free(vg_seqtrack_t *t);
/* Record that agent_id's batch seq was stored. Thread-safe. */
vg_seq_result vg_seqtrack_observe(vg_seqtrack_t *t, const char *agent_id, uint64_t seq);
/* Copy agent_id's counters into out; 0 when the agent is not tracked. */
int vg_seqtrack_get(vg_seqtrack_t *t, const char *agent_id, vg_seqtrack_agent *out);

#endif
