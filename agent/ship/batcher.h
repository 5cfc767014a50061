/*
 * batcher.h - collects samples from the scrape loop into Batch envelopes.
 *
 * Producers (scrape, host metrics) add samples; the batcher groups them by
 * series into a MetricBatch, and when the batch is big enough or old enough
 * it encodes (protobuf-c + zstd) and hands it to the ship thread, which
 * sends it through the configured sink. Adding never blocks on the network:
 * the hand-off is a bounded queue, and the ship thread owns all I/O.
 */
#ifndef VIGIL_AGENT_BATCHER_H
#define VIGIL_AGENT_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/error.h"
#include "vigil/labels.h"
#include "vigil/metrics.h"

typedef struct vg_batcher vg_batcher_t;
struct vg_sink; /* see sink.h */

typedef struct vg_batcher_opts {
    const char *agent_id;
    const char *node;
    const char *tenant;
    size_t max_samples;   /* flush when a batch holds this many samples; 0 = 10000 */
    int64_t max_delay_ms; /* flush a non-empty batch after this long; 0 = 1000 */
    int zstd_level;       /* 0 = 3 */
} vg_batcher_opts;

/* New batcher that ships through sink (borrowed; must outlive the batcher)
 * and counts into metrics (borrowed, may be NULL). Starts the ship thread. */
vg_err_t vg_batcher_new(const vg_batcher_opts *opts, struct vg_sink *sink, vg_metrics_t *metrics,
                        vg_batcher_t **out, vg_error *err);
/* Flush what is pending, wait for the sink to accept it (bounded), stop, free. */
void vg_batcher_free(vg_batcher_t *b);

/* Add one sample. labels must be sorted and include __name__; copied. Thread-safe. */
vg_err_t vg_batcher_add(vg_batcher_t *b, const vg_label_t *labels, size_t nlabels, int64_t ts_ms,
                        double value);
/* Mark the end of a scrape: a hint that a flush now would not split it. */
void vg_batcher_commit(vg_batcher_t *b);
/* Force out what is pending and wait until the sink has it. */
vg_err_t vg_batcher_flush(vg_batcher_t *b, vg_error *err);

#endif
