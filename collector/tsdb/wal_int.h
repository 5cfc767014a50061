/*
 * wal_int.h - what wal.c and wal_hold.c share: the log's state and the
 * segment list. Private to the WAL; the rest of the store sees wal.h only.
 *
 * Split because the hold registry (who still reads which segment, what may
 * be deleted, the <dir>/holds file) is a concern of its own, while the
 * segment list it decides about belongs to the writer.
 */
#ifndef VIGIL_TSDB_WAL_INT_H
#define VIGIL_TSDB_WAL_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/wal.h"
#include "vigil/buf.h"

/* A u64 -> u64 open-addressing map (keys stored + 1, 0 = empty). */
typedef struct vg_wal_refmap {
    uint64_t *keys, *vals;
    size_t cap, n;
} vg_wal_refmap;

/* A closed segment. */
typedef struct vg_wal_seg {
    uint32_t no;
    int released;       /* its data is in blocks: kept only for a hold */
    int64_t mint, maxt; /* oldest/newest sample; INT64_MAX/INT64_MIN when none */
    uint64_t bytes, samples;
} vg_wal_seg;

struct vg_wal_hold {
    vg_wal_t *w;
    struct vg_wal_hold *next;
    char name[128];
    uint32_t from;   /* keep segments >= from */
    uint32_t opened; /* newest segment its reader opened (valid when has_opened) */
    int has_opened;
    int live;        /* a reader uses it (else dormant: loaded, or freed by its reader) */
    uint64_t missed; /* samples of segments deleted before the reader opened them */
};

struct vg_wal {
    char *dir;
    int fd;
    int sfd;               /* series file of the current epoch */
    uint32_t epoch;        /* the current epoch: its first segment, names series.<epoch> */
    uint64_t sfile_size;   /* bytes in the current series file */
    uint64_t sfile_synced; /* of which covered by an fsync */
    uint32_t *epochs;      /* epochs whose series file is on disk, ascending */
    size_t nepochs, capepochs;
    uint32_t cur_no;
    uint64_t cur_size, seg_bytes, cur_samples;
    int64_t cur_mint, cur_maxt, sync_ms;
    vg_wal_seg *segs; /* closed segments, oldest first */
    size_t nsegs, capsegs;
    uint64_t written, synced, want;
    pthread_mutex_t mu;
    pthread_cond_t kick, done;
    pthread_t syncer;
    int started, stop, syncing;
    vg_err_t failed;
    int64_t last_sync_us;
    vg_wal_refmap declared; /* refs declared in the current segment */
    vg_buf wbuf;
    /* holds (wal_hold.c), under mu */
    struct vg_wal_hold *holds;
    uint64_t max_hold;
    vg_wal_seg *loaded; /* released segments named by <dir>/holds at open */
    size_t nloaded;
    pthread_mutex_t state_mu; /* one writer of <dir>/holds at a time */
    char *state_last;         /* what the file holds now */
    vg_metric_t *m_fsyncs, *m_bytes, *m_corrupt, *m_replay_s, *m_segments, *m_replayed;
    vg_metric_t *m_held_bytes, *m_hold_deleted;
};

/* wal.c */
void vg_wal_seg_path(const vg_wal_t *w, uint32_t no, char *out, size_t n);
void vg_wal_series_path(const vg_wal_t *w, uint32_t epoch, char *out, size_t n);
/* The epoch segment no belongs to (the newest epoch <= no); 0 when none
 * (a segment written before series files, which declares its own series). */
int vg_wal_epoch_of(const vg_wal_t *w, uint32_t no, uint32_t *epoch);
/* Delete the series files of past epochs none of whose segments is left. Caller holds mu. */
void vg_wal_drop_epochs(vg_wal_t *w);
void vg_wal_sync_dir(const char *dir);
void vg_wal_segments_gauge(vg_wal_t *w);

/* wal_hold.c */
/* Read <dir>/holds: dormant holds and w->loaded. A bad file is logged and ignored. */
void vg_wal_holds_load(vg_wal_t *w);
/* The released segment no named by the holds file, or NULL. */
const vg_wal_seg *vg_wal_holds_loaded(const vg_wal_t *w, uint32_t no);
/* Delete released segments nobody holds, then the oldest held ones over
 * max_hold (charging the holds). Caller holds mu. Returns segments deleted. */
size_t vg_wal_holds_collect(vg_wal_t *w);
/* Rewrite <dir>/holds when it changed. Caller does not hold mu. */
void vg_wal_holds_persist(vg_wal_t *w);
/* Free every hold and the loaded list (vg_wal_close). */
void vg_wal_holds_free(vg_wal_t *w);

#endif
