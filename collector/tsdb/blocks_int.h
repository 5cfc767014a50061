/*
 * blocks_int.h - what tsdb_blocks.c and compact.c share: the block lists.
 */
#ifndef VIGIL_TSDB_BLOCKS_INT_H
#define VIGIL_TSDB_BLOCKS_INT_H

#include <pthread.h>

#include "tsdb/tsdb_blocks.h"

typedef struct tblocks {
    char name[VG_TENANT_MAX + 1];
    vg_block_t **b; /* sorted by mint; each holds one reference */
    size_t n, bcap;
    int64_t persisted; /* end of the newest raw block: cuts start here */
} tblocks;

struct vg_tsdb_blocks {
    vg_tsdb_t *db;
    struct vg_wal *wal;
    char *root; /* <data_dir>/blocks */
    int64_t range, interval_ms;
    pthread_mutex_t mu;      /* guards t */
    pthread_mutex_t pass_mu; /* one cut or compaction pass at a time */
    tblocks *t;
    size_t nt, cap;
    size_t ncorrupt;
    pthread_t thr;
    pthread_mutex_t run_mu;
    pthread_cond_t cv;
    int running, stop;
    vg_metric_t *m_corrupt, *m_cut, *m_compacted, *m_failed;
    struct vg_tiers *tiers; /* downsampling and retention (tiers.c); NULL = none */
};

/* Insert b (its reference moves to the list), keeping mint order. mu held. */
vg_err_t vg_blocks_insert_locked(vg_tsdb_blocks_t *bs, const char *tenant, vg_block_t *b);
/* Take b off the list, mark it deleted and drop the list's reference. mu held. */
void vg_blocks_retire_locked(vg_tsdb_blocks_t *bs, const char *tenant, vg_block_t *b);

#endif
