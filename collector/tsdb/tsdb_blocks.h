/*
 * tsdb_blocks.h - the store's blocks: per-tenant lists, cutting, compaction.
 *
 * Blocks live in <data_dir>/blocks/<tenant>/<ULID>/. At open every block is
 * loaded; a corrupt one is logged, counted (vigil_tsdb_blocks_corrupt_total)
 * and skipped. A background thread cuts each tenant's head when it spans
 * more than 1.5 block ranges (by sample time): the oldest aligned
 * [t, t + range) goes to a block, then the head and the WAL are truncated.
 * The same thread compacts: overlapping blocks are merged first (samples
 * deduplicated), then complete aligned windows of 3, 9, 27... ranges (up to
 * 31 days) are merged into one block. Outputs are renamed in before inputs
 * are retired; a retired block is deleted when its last reader lets go.
 * Queries take referenced snapshots of a tenant's list (acquire/release).
 */
#ifndef VIGIL_TSDB_BLOCKS_H
#define VIGIL_TSDB_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/block.h"
#include "tsdb/tsdb.h"
#include "vigil/metrics.h"

typedef struct vg_tsdb_blocks vg_tsdb_blocks_t;
struct vg_wal;

#define VG_BLOCK_RANGE_DEFAULT (2 * 3600 * 1000LL)

/* Load every block under <data_dir>/blocks. range_ms 0 = 2h. metrics may be
 * NULL. Corrupt blocks are skipped (counted), not an error. */
vg_err_t vg_tsdb_blocks_open(vg_tsdb_t *db, const char *data_dir, int64_t range_ms,
                             vg_metrics_t *metrics, vg_tsdb_blocks_t **out, vg_error *err);
/* vg_tsdb_open's step: open the blocks of data_dir, truncate the replayed
 * heads to what blocks hold, start the thread, set db->blocks. */
vg_err_t vg_tsdb_blocks_attach(vg_tsdb_t *db, const char *data_dir, int64_t range_ms,
                               vg_metrics_t *metrics, vg_error *err);
/* WAL to truncate after a cut (may stay NULL). */
void vg_tsdb_blocks_set_wal(vg_tsdb_blocks_t *bs, struct vg_wal *wal);
/* Start the cut/compaction thread, waking every interval_ms (0 = 5 s). */
vg_err_t vg_tsdb_blocks_start(vg_tsdb_blocks_t *bs, int64_t interval_ms, vg_error *err);
/* Stop the thread and drop every block reference. NULL is a no-op. */
void vg_tsdb_blocks_free(vg_tsdb_blocks_t *bs);

/* One cutting pass over all tenants; *ncut (may be NULL) gets blocks written. */
vg_err_t vg_tsdb_blocks_cut(vg_tsdb_blocks_t *bs, size_t *ncut, vg_error *err);
/* One compaction pass; *nout (may be NULL) gets blocks written. */
vg_err_t vg_tsdb_blocks_compact(vg_tsdb_blocks_t *bs, size_t *nout, vg_error *err);

/* Referenced blocks of tenant overlapping [mint, maxt], sorted by mint.
 * *out is one allocation; give it back with vg_tsdb_blocks_release. */
vg_err_t vg_tsdb_blocks_acquire(vg_tsdb_blocks_t *bs, const char *tenant, int64_t mint,
                                int64_t maxt, vg_block_t ***out, size_t *n);
void vg_tsdb_blocks_release(vg_block_t **b, size_t n);

/* Add a committed block directory of tenant to the list (downsampling). */
vg_err_t vg_tsdb_blocks_add(vg_tsdb_blocks_t *bs, const char *tenant, const char *ulid,
                            vg_error *err);
/* Retire a block: off the list now, off the disk after its last reader. */
vg_err_t vg_tsdb_blocks_delete(vg_tsdb_blocks_t *bs, const char *tenant, const char *ulid);
/* Directory holding tenant's blocks (<data_dir>/blocks/<tenant>) into buf. */
void vg_tsdb_blocks_dir(const vg_tsdb_blocks_t *bs, const char *tenant, char *buf, size_t n);
/* Names of the tenants that have (or had) blocks; *out is one allocation
 * (vg_free). */
vg_err_t vg_tsdb_blocks_tenants(vg_tsdb_blocks_t *bs, char (**out)[VG_TENANT_MAX + 1], size_t *n);
/* Number of blocks and their bytes on disk, across tenants. */
size_t vg_tsdb_blocks_count(vg_tsdb_blocks_t *bs, uint64_t *bytes);

#endif
