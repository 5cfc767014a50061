/*
 * spool.h - a persistent FIFO of records on local disk (the agent's spool).
 *
 * When the sink cannot take a batch (Kafka or the collector is down, the
 * breaker is open) the batch goes here instead of blocking the pipeline or
 * being lost, and a replay loop drains it in order once the sink is back.
 * The metrics path and (later) the audit path each own one spool under
 * <data_dir>/spool/<kind>/.
 *
 * On disk: segment files named by the id of their first record
 * (%020llu.seg), each a run of records framed as
 *   magic u32 | length u32 | crc32c u32 | payload[length]
 * (little-endian; the CRC32C covers magic, length and payload), plus a
 * `cursor` file holding the id of the first record not yet acknowledged,
 * replaced atomically (temp + fsync + rename). The payload carries the
 * caller's small metadata (kind, tenant, seq) and the opaque bytes.
 *
 * Delivery is at least once: a record leaves the queue only through
 * vg_spool_ack, which the caller calls after the sink acknowledged it. A
 * crash between the sink's ack and the cursor write replays the record
 * again, which the collector deduplicates.
 *
 * Durability trade-off (opts.sync_interval_ms):
 *   0   every append is written and fdatasync'ed before it returns, and
 *       every ack's cursor is fsync'ed: nothing acknowledged to the caller
 *       is lost even on power loss; costs one or two disk flushes per batch
 *       (batches are ~1 per second, so this is the default).
 *   N>0 appends are written (safe against a process crash or kill -9, as
 *       the page cache survives) but flushed at most every N ms, from
 *       vg_spool_tick: on power loss up to N ms of batches can be lost and
 *       the cursor may step back (duplicates only). For high batch rates.
 *   <0  never flush (tests and fuzzing).
 *
 * Recovery: open() scans every segment and checks every CRC. A torn tail
 * (a record cut short by a crash mid-write, or garbage after the last good
 * record) is truncated away; a corrupt record with good records after it
 * is skipped and counted. Neither stops the queue or the process.
 *
 * Not thread-safe: one owner (the agent's ship thread) drives a spool.
 */
#ifndef VIGIL_SPOOL_H
#define VIGIL_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/error.h"
#include "vigil/metrics.h"

typedef struct vg_spool vg_spool_t;

/* What an append does when the spool is at max_bytes. */
typedef enum vg_spool_full {
    VG_SPOOL_DROP_OLDEST = 0, /* metrics: drop the oldest segment(s), count the records */
    VG_SPOOL_BLOCK = 1,       /* audit: refuse with VG_ELIMIT (backpressure), drop nothing */
} vg_spool_full;

#define VG_SPOOL_MAX_RECORD  (64u << 20) /* bytes of one record's data, at most */
#define VG_SPOOL_MAX_SEGMENT (64u << 20) /* default segment size cap */
#define VG_SPOOL_DEFAULT_MAX (1ull << 30)
#define VG_SPOOL_MAX_TENANT  255

typedef struct vg_spool_opts {
    const char *dir;           /* the queue's directory; created (with parents) if missing */
    const char *kind;          /* label value on the spool's metrics, e.g. "metrics" */
    uint64_t max_bytes;        /* cap on the segment files' total size; 0 = 1 GiB */
    uint64_t segment_bytes;    /* roll segments at this size; 0 = min(64 MiB, max_bytes / 4) */
    vg_spool_full full;        /* policy at max_bytes */
    int64_t sync_interval_ms;  /* 0 = flush every append; > 0 = grouped; < 0 = never */
    const char *metric_prefix; /* NULL = "vigil_agent_spool" */
} vg_spool_opts;

/* One record. On append, id is ignored (assigned); on peek everything is set,
 * and tenant/data point into the spool's buffer until the next peek/ack/close. */
typedef struct vg_spool_rec {
    uint64_t id;        /* position in the queue, strictly increasing */
    uint8_t kind;       /* caller's code (e.g. vg_sink_kind) */
    uint64_t seq;       /* caller's sequence number (e.g. the Batch seq) */
    const char *tenant; /* NUL-terminated, at most VG_SPOOL_MAX_TENANT bytes; NULL = "" */
    const uint8_t *data;
    size_t len;
} vg_spool_rec;

typedef struct vg_spool_stats {
    uint64_t records;  /* records waiting (appended, not acknowledged) */
    uint64_t bytes;    /* bytes of segment files on disk */
    uint64_t segments; /* segment files */
    uint64_t dropped;  /* records dropped because the spool was full */
    uint64_t corrupt;  /* corrupt records skipped (bad CRC, bad frame) */
    uint64_t torn;     /* torn tails truncated at open */
    uint64_t next_id;  /* id the next append gets */
    uint64_t max_seq;  /* highest caller seq among the records held or appended since open */
} vg_spool_stats;

/* Open (creating if needed) the spool in o->dir, scanning and repairing what is
 * there; m (borrowed, may be NULL) gets vigil_agent_spool_{bytes,records}{kind}
 * gauges and _{dropped,corrupt_records,appended,acked}_total counters. Free with
 * vg_spool_free. VG_EIO (with the path) when the directory is unusable. */
vg_err_t vg_spool_open(const vg_spool_opts *o, vg_metrics_t *m, vg_spool_t **out, vg_error *err);
/* Flush what is pending, persist the cursor, close. NULL is a no-op. */
void vg_spool_free(vg_spool_t *s);

/* Append r at the tail (durable per sync policy when it returns OK). When full:
 * DROP_OLDEST makes room (counted), BLOCK returns VG_ELIMIT. VG_ETOOLARGE for
 * a record over VG_SPOOL_MAX_RECORD or half of max_bytes; VG_EIO on a write
 * error (the segment is cut back, so nothing half-written stays). */
vg_err_t vg_spool_append(vg_spool_t *s, const vg_spool_rec *r, vg_error *err);
/* The oldest unacknowledged record, or VG_EAGAIN when the spool is empty.
 * Peeking again without an ack returns the same record. Corrupt records met
 * on the way are skipped. */
vg_err_t vg_spool_peek(vg_spool_t *s, vg_spool_rec *out, vg_error *err);
/* Acknowledge the record id returned by the last peek: the cursor moves past
 * it (persisted per sync policy) and fully consumed segments are deleted.
 * An id already behind the cursor (e.g. dropped meanwhile) is a no-op;
 * VG_EINVAL for an id that was not peeked. */
vg_err_t vg_spool_ack(vg_spool_t *s, uint64_t id, vg_error *err);
/* Grouped sync: flush data and cursor when sync_interval_ms has passed since
 * the last flush. Cheap to call on every loop of the owner. */
vg_err_t vg_spool_tick(vg_spool_t *s, int64_t now_mono_ms, vg_error *err);
/* Flush data and cursor now (whatever the policy). */
vg_err_t vg_spool_sync(vg_spool_t *s, vg_error *err);

/* Records waiting, and bytes on disk. */
uint64_t vg_spool_records(const vg_spool_t *s);
uint64_t vg_spool_bytes(const vg_spool_t *s);
void vg_spool_get_stats(const vg_spool_t *s, vg_spool_stats *st);

/* Replace path with data atomically: write path.tmp, fsync it (when do_sync),
 * rename over path. Readers see the old or the new content, never a mix.
 * (Also used for other small state files, e.g. the agent's batch seq.) */
vg_err_t vg_spool_write_file(const char *path, const void *data, size_t len, int do_sync,
                             vg_error *err);
/* Read a small file whole into buf (at most cap bytes): VG_ENOTFOUND when it
 * does not exist, VG_ETOOLARGE when bigger than cap. *len gets its size. */
vg_err_t vg_spool_read_file(const char *path, void *buf, size_t cap, size_t *len, vg_error *err);
/* mkdir -p (mode 0750). */
vg_err_t vg_spool_mkdirs(const char *path, vg_error *err);

#endif
