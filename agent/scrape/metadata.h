/*
 * metadata.h - per target, the metric metadata (# TYPE, # HELP, # UNIT) of
 * its last good scrape, shipped as MetricBatch.metadata.
 *
 * Prometheus keeps the metadata it scrapes per target and serves it at
 * /api/v1/metadata; the collector can only serve what agents send it. The
 * metadata of a target almost never changes, and the scrape path is hot,
 * so the parse only folds each HELP/TYPE/UNIT line into a running hash
 * (per family, never per sample); when the hash differs from the last good
 * scrape's, the body is parsed once more with HELP text decoded and the
 * entries are encoded for the wire. They go out with the next scrape that
 * changed them, and again every VG_SCRAPE_META_RESEND_MS, so a collector
 * that lost them (a restart without its data dir) relearns them, as
 * Prometheus's remote-write re-sends metadata every minute.
 */
#ifndef VIGIL_AGENT_SCRAPE_METADATA_H
#define VIGIL_AGENT_SCRAPE_METADATA_H

#include <stdint.h>

#include "scrape/scrape_int.h"

#define VG_SCRAPE_META_RESEND_MS (5 * 60 * 1000)

/* Fold one HELP/TYPE/UNIT entry into *h (anything else is ignored). With
 * skip_text the parser gives HELP's raw bytes, which is enough to notice a
 * change. Called per family line, never per sample. */
void vg_scrape_meta_fold(uint64_t *h, const vg_expfmt_entry *e);
/* After a good parse of body whose metadata lines hashed to h: when h
 * differs from the target's last one, rebuild the target's encoded entries
 * from body and mark them to be sent. Errors are counted, never fatal. */
void vg_scrape_meta_update(vg_scrape_target_t *t, const char *body, size_t len,
                           vg_expfmt_format fmt, uint64_t h);
/* Append the target's entries (MetricBatch field 2) to k->enc when they
 * changed or are due again at monotonic now_ms. Encoded emission only. */
void vg_scrape_meta_emit(vg_scrape_target_t *t, vg_scrape_sink *k, int64_t now_ms);
/* Free a target's metadata state; NULL is a no-op. */
void vg_scrape_meta_free(struct vg_scrape_meta *m);

#endif
