/*
 * wal.h - the store's write-ahead log: CRC32C-framed records in numbered
 * segment files, fsynced in groups.
 *
 * One WAL serves every tenant, so concurrent appenders share fsyncs. An
 * appender builds a vg_wal_batch (series declarations and samples) without
 * any lock, writes it with vg_wal_write (one mutex, one write(2)) and gets
 * a position; vg_wal_sync waits until a group fsync covers that position.
 * A syncer thread fsyncs as soon as someone waits, but at most once every
 * sync_ms, so under load one fsync covers many writers.
 *
 * Record: u32 length (of type + payload), u32 CRC32C (of type + payload),
 * u8 type, payload. Series: u64 ref, u8 tenant length, tenant, u16 label
 * count, then per label u16 name length, name, u32 value length, value.
 * Samples: (u64 ref, i64 ts, f64 value)*. All little-endian. A segment
 * starts with the 8-byte magic "VGWAL\0\0\1" and holds samples records.
 *
 * Series records go to the epoch's series file, series.<epoch> (magic
 * "VGSER\0\0\1"), written before the first sample that uses them: an epoch
 * is the run of segments from <epoch> (its first segment) to the next epoch,
 * and declares each series once, however many segments it spans (re-declaring
 * every series in every 128 MiB segment doubled the WAL at 1M series). Each
 * open starts an epoch (refs change between runs), and so does a truncate
 * that releases a segment of the current epoch: live series are declared
 * again in the new file, and an old epoch's file is deleted with its last
 * segment. Replay calls on_series for a series only at its first replayed
 * sample. (Segments older than any series file declare their own series,
 * the format before series files; they still replay.)
 *
 * Holds: a reader of the segments (a remote_write queue) registers a hold
 * "keep from segment N" and moves it forward as it reads. vg_wal_truncate
 * then only marks a segment whose data is in blocks as released; a released
 * segment is deleted once no hold needs it, or when the released-but-held
 * segments pass max_hold bytes (oldest first): each hold that had not
 * opened such a segment is charged its samples (vg_wal_hold_take_missed).
 * Holds and the released list live in <dir>/holds, so a restart keeps them
 * and replay skips released segments (their data is already in blocks).
 */
#ifndef VIGIL_TSDB_WAL_H
#define VIGIL_TSDB_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/buf.h"
#include "vigil/error.h"
#include "vigil/labels.h"
#include "vigil/metrics.h"

typedef struct vg_wal vg_wal_t;

#define VG_WAL_SEGMENT_DEFAULT  (128u << 20)
#define VG_WAL_SYNC_MS_DEFAULT  5
#define VG_WAL_SYNC_ALL         UINT64_MAX   /* vg_wal_sync: everything written so far */
#define VG_WAL_MAX_HOLD_DEFAULT (4ull << 30) /* storage.wal_max_hold_bytes */

typedef struct vg_wal_hold vg_wal_hold_t;

/* A series the batch declares: its record is encoded by vg_wal_write, under
 * the mutex, only when the segment has not declared it yet (most requests
 * repeat series the segment already holds: encoding them all was a tenth
 * of the ingest profile). */
typedef struct vg_wal_decl {
    uint64_t ref;
    const char *tenant;
    size_t lab, n; /* its labels: lab[lab .. lab + n) of the batch */
} vg_wal_decl;

/* Records built by one appender; written at once by vg_wal_write. */
typedef struct vg_wal_batch {
    vg_wal_decl *decl; /* declared series, in order */
    size_t ndecl, capdecl;
    vg_label_t *lab; /* copies of their label arrays (the strings are the caller's) */
    size_t nlab, caplab;
    vg_buf samples;   /* framed samples records */
    size_t rec_start; /* offset of the open samples record in samples */
    size_t rec_n;     /* samples in the open record (0 = none open) */
    size_t nsamples;  /* samples in the batch */
    int64_t mint;     /* oldest sample timestamp in the batch */
    int64_t maxt;     /* newest sample timestamp in the batch */
} vg_wal_batch;

/* Called by vg_wal_open for each replayed series; return a handle that
 * on_sample then receives (e.g. the new in-memory ref), or VG_* to skip it. */
typedef struct vg_wal_replay_cb {
    vg_err_t (*on_series)(void *ud, const char *tenant, const vg_label_t *l, size_t n,
                          uint64_t *handle);
    void (*on_sample)(void *ud, uint64_t handle, int64_t ts, double v);
    void *ud;
} vg_wal_replay_cb;

typedef struct vg_wal_stats {
    uint64_t segments, records, samples, series;
    uint64_t corrupt_records; /* bad CRC (skipped) or garbage length (ends the segment) */
    uint64_t unknown_refs;    /* samples whose series was never declared in the segment */
    uint64_t torn_bytes;      /* cut off the tail of the last segment */
    uint64_t released;        /* segments not replayed: in blocks, kept only for a hold */
    int64_t duration_ms;
} vg_wal_stats;

void vg_wal_batch_init(vg_wal_batch *b);
void vg_wal_batch_free(vg_wal_batch *b);
/* Drop the contents, keep the memory. */
void vg_wal_batch_reset(vg_wal_batch *b);
/* Declare series ref (written only if this segment has not declared it yet).
 * The tenant and label strings are not copied: they must stay valid until
 * the batch is written, reset or freed. */
vg_err_t vg_wal_batch_series(vg_wal_batch *b, uint64_t ref, const char *tenant, const vg_label_t *l,
                             size_t n);
/* Add one sample of a series declared in this batch. */
vg_err_t vg_wal_batch_sample(vg_wal_batch *b, uint64_t ref, int64_t ts, double v);
/* True when the batch holds samples. */
int vg_wal_batch_has_samples(const vg_wal_batch *b);

/* Open the WAL in dir (created), replay every segment through cb (may be
 * NULL) in order, cut a torn tail, and start a new segment and the syncer.
 * segment_bytes/sync_ms 0 = defaults. st (may be NULL) gets the replay
 * outcome; m (may be NULL) gets vigil_tsdb_wal_* metrics. VG_EIO. */
vg_err_t vg_wal_open(const char *dir, uint64_t segment_bytes, int64_t sync_ms,
                     const vg_wal_replay_cb *cb, vg_metrics_t *m, vg_wal_stats *st, vg_wal_t **out,
                     vg_error *err);
/* Stop the syncer, fsync and close. NULL is a no-op. */
void vg_wal_close(vg_wal_t *w);

/* Seal the batch and append its records (series the current segment
 * already declared are skipped); *pos = the log position just past them. Thread-safe.
 * VG_EIO when the write failed (nothing of the batch is kept). VG_ETOOLARGE
 * when a series' record cannot be encoded (a label name over 65535 bytes):
 * the rest was written and *pos is set; that series' samples replay as
 * undeclared (skipped, counted). */
vg_err_t vg_wal_write(vg_wal_t *w, vg_wal_batch *b, uint64_t *pos, vg_error *err);
/* Wait until an fsync covers pos (VG_WAL_SYNC_ALL: all written so far).
 * VG_EIO once any fsync failed (sticky). Thread-safe. */
vg_err_t vg_wal_sync(vg_wal_t *w, uint64_t pos, vg_error *err);
/* Release closed segments whose newest sample is older than mint (call it
 * after the data before mint is persisted in blocks): deleted unless a hold
 * keeps them (within max_hold). Returns the number of segments deleted.
 * Thread-safe. */
size_t vg_wal_truncate(vg_wal_t *w, int64_t mint);
/* Segments on disk, the current one included. */
size_t vg_wal_num_segments(vg_wal_t *w);
/* Bytes of released segments kept only for holds. */
uint64_t vg_wal_held_bytes(vg_wal_t *w);
/* Cap on vg_wal_held_bytes (VG_WAL_MAX_HOLD_DEFAULT until set; 0 = holds
 * keep nothing released). Applied at once. NULL w is a no-op. */
void vg_wal_set_max_hold(vg_wal_t *w, uint64_t bytes);

/* Take (or create) the hold called name, keeping segments >= from. A hold
 * of that name loaded from <dir>/holds is taken over (from replaces its
 * position). The hold belongs to the WAL: valid until vg_wal_close.
 * VG_EINVAL (name empty, over 127 bytes or with blanks), VG_ENOMEM. */
vg_err_t vg_wal_hold_new(vg_wal_t *w, const char *name, uint32_t from, vg_wal_hold_t **out,
                         vg_error *err);
/* Keep segments >= from from now on (only moves forward); may delete
 * segments nobody needs any more. Thread-safe. */
void vg_wal_hold_move(vg_wal_hold_t *h, uint32_t from);
/* Open (O_RDONLY) the oldest segment >= from still on disk for the hold's
 * reader: its fd and *no, or -1 when none; *sfd gets its epoch's series file
 * (*epoch), or -1 and -1 when the segment predates series files. The caller
 * closes both. The hold then counts as having read every segment <= *no.
 * Thread-safe. */
int vg_wal_hold_open(vg_wal_hold_t *h, uint32_t from, uint32_t *no, int *sfd, int64_t *epoch);
/* Samples of segments deleted over max_hold before the reader opened them,
 * since the last call (then reset to 0). Thread-safe. */
uint64_t vg_wal_hold_take_missed(vg_wal_hold_t *h);
/* Stop using h: it stays as a dormant hold (kept on disk, still keeping
 * segments) for the next run's reader of that name. NULL is a no-op. */
void vg_wal_hold_free(vg_wal_hold_t *h);
/* Drop every dormant hold (readers that no longer exist, e.g. a remote
 * taken out of the config). Thread-safe; NULL w is a no-op. */
void vg_wal_hold_forget_dormant(vg_wal_t *w);

#endif
