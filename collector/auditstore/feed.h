/*
 * feed.h - the audit feed: an append-order log of the records the audit
 * store newly stored (after dedup), read by the SIEM forwarder.
 *
 * The store's WALs are per tenant and hour, so they cannot give "arrival
 * order across tenants"; the feed can, and it lets each SIEM output keep a
 * durable cursor (file, byte offset, record seq) that survives restarts.
 * Files are <dir>/<16-hex seq of their first record>.log holding CRC32C-
 * framed records; cursors are <dir>/cursor-<output name>.
 */
#ifndef VIGIL_AUDIT_FEED_H
#define VIGIL_AUDIT_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "siem/output.h"
#include "vigil/buf.h"
#include "vigil/error.h"
#include "vigil/metrics.h"

typedef struct vg_feed vg_feed_t;

typedef struct vg_feed_opts {
    const char *dir;       /* created if absent */
    uint64_t roll_bytes;   /* start a new file past this size; 0 = 64 MiB */
    uint64_t cap_bytes;    /* drop the oldest whole file past this total; 0 = 10 GiB */
    vg_metrics_t *metrics; /* may be NULL */
} vg_feed_opts;

/* Where a reader is: the file (its first seq), the byte offset in it and the
 * seq of the next record to read. */
typedef struct vg_feed_cursor {
    uint64_t file, off, seq;
} vg_feed_cursor;

/* Records read by vg_feed_read; recs point into data (valid until the next read). */
typedef struct vg_feed_batch {
    vg_siem_rec *recs;
    size_t n, cap;
    vg_buf data;
    vg_feed_cursor next; /* the cursor after the last record */
    uint64_t dropped;    /* records lost to the cap since the cursor */
    uint64_t corrupt;    /* records skipped as corrupt */
} vg_feed_batch;

/* Open dir: a torn tail of the last file is truncated, corrupt records counted. */
vg_err_t vg_feed_open(const vg_feed_opts *o, vg_feed_t **out, vg_error *err);
void vg_feed_free(vg_feed_t *f);

/* Append one record (not yet durable: see vg_feed_sync). Wakes waiting readers. */
vg_err_t vg_feed_append(vg_feed_t *f, const char *tenant, int64_t ts_ms, const char *line,
                        size_t len, vg_error *err);
vg_err_t vg_feed_sync(vg_feed_t *f, vg_error *err);

/* The seq the next appended record gets. */
uint64_t vg_feed_next_seq(vg_feed_t *f);

/* Up to max records from *from into b (b->n may be 0 at the end). */
vg_err_t vg_feed_read(vg_feed_t *f, const vg_feed_cursor *from, size_t max, vg_feed_batch *b,
                      vg_error *err);
void vg_feed_batch_free(vg_feed_batch *b);
/* Wait up to timeout_ms for a record past c (or vg_feed_wake); 1 if there is one. */
int vg_feed_wait(vg_feed_t *f, const vg_feed_cursor *c, int64_t timeout_ms);
/* Wake every waiter (shutdown). */
void vg_feed_wake(vg_feed_t *f);

/* A reader's durable cursor: registers name (so its files are kept); a name
 * without a cursor file starts at the oldest record. */
vg_err_t vg_feed_cursor_load(vg_feed_t *f, const char *name, vg_feed_cursor *c, vg_error *err);
/* Write the cursor atomically, then delete files every registered cursor has passed. */
vg_err_t vg_feed_cursor_save(vg_feed_t *f, const char *name, const vg_feed_cursor *c,
                             vg_error *err);
/* Remove cursor files of names not registered (outputs removed from the config). */
vg_err_t vg_feed_forget_unknown(vg_feed_t *f, vg_error *err);

#endif
