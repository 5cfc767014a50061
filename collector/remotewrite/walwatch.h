/*
 * walwatch.h - a reader that tails the store's WAL (tsdb/wal.h's format) for
 * the remote-write sender, as Prometheus's WAL watcher does.
 *
 * It only reads the on-disk format: segments named %08u in the WAL directory,
 * records framed as u32 length, u32 CRC32C, u8 type, payload. Series records
 * (ref -> tenant, labels) are in series.<epoch>, shared by the segments from
 * <epoch> up to the next epoch: the reader keeps an epoch's series while it
 * reads its segments, tails the series file when a sample's ref is not known
 * yet, and forgets them at the next epoch. (A segment older than any series
 * file declares its own series; they are forgotten at the next segment.)
 * A position is a
 * cursor (segment, record offset, sample index within the record); reading
 * resumes exactly there after a restart (the series records before it are
 * read again). A segment deleted under the reader is skipped (logged); with
 * an opener (vg_walwatch_set_opener, the WAL's hold) the WAL keeps what the
 * reader needs and counts what it had to delete anyway.
 */
#ifndef VIGIL_REMOTEWRITE_WALWATCH_H
#define VIGIL_REMOTEWRITE_WALWATCH_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/error.h"
#include "vigil/labels.h"
#include "vigil/relabel.h"

typedef struct vg_ww_cursor {
    uint32_t seg; /* segment number */
    uint64_t off; /* offset of the record holding the next sample (0 = start of segment) */
    uint32_t idx; /* samples of that record already consumed */
} vg_ww_cursor;

/* A series as the sender sees it: after write_relabel_configs. */
typedef struct vg_ww_series {
    const char *tenant;
    vg_label_t *labels; /* sorted */
    size_t n;
    int dropped;   /* relabeling dropped it */
    uint64_t hash; /* of the labels after relabeling: picks the sender's shard */
} vg_ww_series;

typedef struct vg_ww_sample {
    const vg_ww_series *series; /* valid until the reader leaves the segment */
    int64_t ts;
    double v;
} vg_ww_sample;

typedef struct vg_walwatch vg_walwatch_t;

/* Open the oldest segment >= from: its fd and *no, or -1 when none; *sfd gets
 * the series file of its epoch (*epoch) opened, or -1 and -1 when it has none. */
typedef int (*vg_ww_open_fn)(void *ud, uint32_t from, uint32_t *no, int *sfd, int64_t *epoch);

/* Reader of dir from start (a zero cursor = the oldest segment). relabel
 * (borrowed, may be NULL) is applied to each series once per segment. */
vg_err_t vg_walwatch_new(const char *dir, const vg_ww_cursor *start, const vg_relabel_t *relabel,
                         vg_walwatch_t **out, vg_error *err);
void vg_walwatch_free(vg_walwatch_t *w);
/* Open segments through fn (e.g. vg_wal_hold_open) instead of the directory. */
void vg_walwatch_set_opener(vg_walwatch_t *w, vg_ww_open_fn fn, void *ud);

/* Read up to max samples of series not dropped into out. *pos is set to the
 * cursor just past the last sample read (or skipped). Never crosses a segment:
 * when the current one is finished and a newer one exists, returns 0 with
 * *seg_end = 1; the next call moves on (invalidating the series pointers).
 * *lost (added to) counts samples dropped by relabeling or of unknown series. */
size_t vg_walwatch_read(vg_walwatch_t *w, vg_ww_sample *out, size_t max, vg_ww_cursor *pos,
                        int *seg_end, uint64_t *lost);

#endif
