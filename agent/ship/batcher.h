/*
 * batcher.h - collects samples from the scrape loop into Batch envelopes.
 *
 * Producers add samples one by one (host metrics; grouped by series) or a
 * whole scrape already encoded as TimeSeries fields (the scrape loop), and
 * when the batch is big enough (estimated protobuf size) or old enough the
 * batcher wraps it in the Batch envelope, compresses it (zstd) and hands it
 * to the ship thread, which sends it through the configured sink. Adding
 * never blocks on the network: the hand-off is a bounded queue, and the
 * ship thread owns all I/O.
 *
 * With a spool, a batch the sink cannot take now (its circuit breaker is
 * open, or the send failed with a retryable error) goes to disk instead of
 * holding up the queue, and the ship thread replays the spool in order once
 * the sink is healthy again. Every batch carries a sequence number that
 * survives restarts (seq_path), so the collector can prove nothing was lost.
 */
#ifndef VIGIL_AGENT_BATCHER_H
#define VIGIL_AGENT_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/breaker.h"
#include "vigil/buf.h"
#include "vigil/error.h"
#include "vigil/labels.h"
#include "vigil/metrics.h"
#include "vigil/spool.h"

typedef struct vg_batcher vg_batcher_t;
struct vg_sink; /* see sink.h */

/* zstd level used when none is configured; bench/RESULTS.md ("zstd level")
 * has the measurements behind it. */
#define VG_BATCHER_DEFAULT_ZSTD_LEVEL 1
#define VG_BATCHER_DEFAULT_MAX_BYTES  (1u << 20)

typedef struct vg_batcher_opts {
    const char *agent_id;
    const char *node;
    const char *tenant;
    size_t max_bytes;     /* cut at this estimated uncompressed size; 0 = 1 MiB */
    size_t max_samples;   /* also cut at this many samples; 0 = no sample limit */
    int64_t max_delay_ms; /* flush a non-empty batch after this long; 0 = 1000 */
    int zstd_level;       /* 1..19; 0 = VG_BATCHER_DEFAULT_ZSTD_LEVEL */
    vg_spool_t *spool;    /* borrowed, may be NULL (then failed batches wait in memory) */
    /* Replay order. 0 (default): strictly in cut order; while the spool holds
     * batches, new ones queue behind them on disk, because a store that only
     * appends in time order (Vigil's head) would refuse older samples sent
     * after newer ones. 1: alternate one spooled and one live batch, so live
     * data stays fresh during a long replay; needs a store that accepts
     * out-of-order samples. The spool itself is never reordered. */
    int interleave;
    const vg_breaker_opts *breaker; /* NULL = 5 failures, 30 s, 3 probes, 2 successes */
    /* File holding the highest batch seq that was delivered or spooled, so a
     * restarted agent continues the sequence; NULL = start at 1. */
    const char *seq_path;
} vg_batcher_opts;

/* New batcher that ships through sink (borrowed; must outlive the batcher)
 * and counts into metrics (borrowed, may be NULL). Starts the ship thread. */
/* The agent's breaker metrics: vigil_agent_sink_breaker_state{sink} and
 * vigil_agent_sink_breaker_opens_total{sink}. */
extern const vg_breaker_names vg_batcher_breaker_names;

vg_err_t vg_batcher_new(const vg_batcher_opts *opts, struct vg_sink *sink, vg_metrics_t *metrics,
                        vg_batcher_t **out, vg_error *err);
/* Flush what is pending, give the sink a bounded time, spool what is left
 * (or count it dropped when there is no spool), stop, free. NULL is a no-op. */
void vg_batcher_free(vg_batcher_t *b);

/* Add one sample. labels must be sorted and include __name__; copied.
 * Thread-safe. VG_ELIMIT (counted in vigil_agent_samples_dropped_total
 * {reason="queue_full"}) when the ship queue is full and the batch being
 * built reached its hard cap; VG_ECLOSED after free started. */
vg_err_t vg_batcher_add(vg_batcher_t *b, const vg_label_t *labels, size_t nlabels, int64_t ts_ms,
                        double value);
/* Add one scrape already encoded: ts holds len bytes of consecutive
 * MetricBatch field-1 entries (tag 0x0a, varint length, a TimeSeries
 * message), nsamples samples in all; appended as-is under one lock, so a
 * batch is cut only between calls. Same errors as vg_batcher_add; VG_ELIMIT
 * counts all nsamples dropped. The bytes are not validated: producers are
 * in-process code (agent/scrape), never the network. */
vg_err_t vg_batcher_add_encoded(vg_batcher_t *b, const void *ts, size_t len, size_t nsamples);
/* The same without the copy: lock the batcher and hand out the batch
 * buffer itself for the caller to append MetricBatch field-1 entries to,
 * until vg_batcher_encode_end, which counts len appended bytes holding
 * nsamples samples (len 0: nothing) and unlocks. NULL (nothing held) when
 * vg_batcher_add_encoded would refuse or fail: call it instead, it counts
 * the refusal. Keep the hold short: every other producer waits. */
vg_buf *vg_batcher_encode_begin(vg_batcher_t *b);
void vg_batcher_encode_end(vg_batcher_t *b, size_t len, size_t nsamples);
/* Mark the end of a scrape: a hint that a flush now would not split it. */
void vg_batcher_commit(vg_batcher_t *b);
/* Force out what is pending and wait (bounded) until the sink has it and the
 * spool is empty. VG_ERETRY when that did not happen in time, VG_EPROTO when
 * the sink refused a batch for good since the call started. */
vg_err_t vg_batcher_flush(vg_batcher_t *b, vg_error *err);

#endif
