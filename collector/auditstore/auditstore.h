/*
 * auditstore.h - the collector's audit store: WAL, dedup, hourly segments,
 * hash chain, tiers, erasure, query and the dead-letter store.
 *
 * Records arrive in batches (HTTP or Kafka) and are deduplicated by source
 * identity (tenant, file_id, offset): the set of keys is rebuilt at open from
 * the segments' key lists and the WAL, so a replayed batch is a no-op across
 * restarts. New records go to a per-(tenant, hour) WAL file; append returns
 * once they are fsynced (concurrent appenders share one fsync). A background
 * task seals each hour once it is over (plus a grace period) into a segment
 * (segment.h), links it into the tenant's hash chain (chain.h) and removes
 * the hour's WAL; the same task moves segments hot -> warm -> cold and
 * deletes them past retention, recording deletions in the chain.
 *
 * On disk, under dir (<data_dir>/audit): LOCK, <tenant>/wal/<hour>.wal,
 * <tenant>/{hot,warm,cold}/<YYYYMMDDHH>-<digest16>.seg, <tenant>/chain.log,
 * <tenant>/dlq.log, and signing.key unless the key lives elsewhere. Tenant
 * names are percent-encoded into directory names.
 */
#ifndef VIGIL_AUDITSTORE_H
#define VIGIL_AUDITSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "auditstore/sign.h"
#include "vigil/buf.h"
#include "vigil/error.h"
#include "vigil/httpd.h"
#include "vigil/metrics.h"
#include "vigil/v1/envelope.pb-c.h"

typedef struct vg_auditstore vg_auditstore_t;

/* Wall-clock source in ms since the epoch (injectable for tests). */
typedef int64_t (*vg_audit_clock_fn)(void *ud);

typedef struct vg_auditstore_opts {
    const char *dir; /* required: the store's directory, created if absent */
    int64_t hot_ms;  /* age limits of the tiers; 0 = 30d / 90d / 7y */
    int64_t warm_ms;
    int64_t cold_ms;
    int64_t seal_grace_ms;   /* seal hour H once now >= H + 1h + grace; 0 = 5 min, <0 = none */
    int64_t interval_ms;     /* background sealing/tiering period; 0 = 10 s, <0 = no thread */
    vg_audit_clock_fn clock; /* NULL = wall clock */
    void *clock_ud;
    vg_metrics_t *metrics; /* borrowed, may be NULL */
    /* HMAC key for erasure/deletion chain lines: must exist when set; NULL =
     * dir/signing.key, created if absent (logged: it only guards against
     * accidental edits, since whoever can change the data can read it) */
    const char *signing_key_file;
    /* SIEM forwarding configured: every newly stored record also goes to the
     * append-order feed in dir/.feed (auditstore/feed.h), capped at
     * siem_buffer_bytes (0 = 10 GiB). */
    int siem_feed;
    uint64_t siem_buffer_bytes;
} vg_auditstore_opts;

typedef struct vg_audit_append_stats {
    uint64_t records;    /* records in the batch */
    uint64_t stored;     /* newly stored */
    uint64_t duplicates; /* already stored (no-op) */
} vg_audit_append_stats;

typedef struct vg_audit_query {
    const char *tenant;  /* required */
    const char *user_id; /* NULL = any */
    const char *action;
    const char *result;
    int64_t from_ms, to_ms; /* inclusive; 0 = unbounded */
    size_t limit;           /* 0 = 100; capped at 10000 */
    const char *cursor;     /* from a previous page, or NULL */
} vg_audit_query;

typedef struct vg_audit_tier_stats {
    uint64_t segments[3]; /* hot, warm, cold */
    uint64_t records[3];
    uint64_t bytes[3];
    uint64_t open_records;     /* in the WAL, not yet sealed */
    uint64_t deleted_segments; /* deleted past retention (from the chains) */
    uint64_t erasures;         /* erasure events (from the chains) */
} vg_audit_tier_stats;

/* Open (or create) the store: take its lock (VG_EEXIST when another process
 * holds it), load dedup keys, replay the WALs (a torn tail is cut off), and
 * start the background task. On success free with vg_auditstore_free. */
vg_err_t vg_auditstore_open(const vg_auditstore_opts *o, vg_auditstore_t **out, vg_error *err);
/* Stop the background task, close files, release the lock. NULL is a no-op. */
void vg_auditstore_free(vg_auditstore_t *s);
/* The SIEM feed (NULL unless opts.siem_feed); owned by the store. */
struct vg_feed *vg_auditstore_feed(vg_auditstore_t *s);

/* Store the records of one batch for tenant; returns once they are fsynced.
 * Records already stored are counted as duplicates. VG_EINVAL for a record
 * without a file_id; VG_EIO when the WAL cannot be written (retry). */
vg_err_t vg_auditstore_append(vg_auditstore_t *s, const char *tenant,
                              Vigil__V1__AuditRecord *const *recs, size_t n,
                              vg_audit_append_stats *st, vg_error *err);
/* Make every appended record durable (a no-op when append already did). */
vg_err_t vg_auditstore_sync(vg_auditstore_t *s, vg_error *err);

/* One pass of the background task: seal due hours, move and delete segments. */
vg_err_t vg_auditstore_maintain(vg_auditstore_t *s, vg_error *err);
/* Seal every open hour now (tenant NULL = all tenants). */
vg_err_t vg_auditstore_seal_all(vg_auditstore_t *s, const char *tenant, vg_error *err);

/* GDPR erasure: seal the tenant's open hours, rewrite every segment holding
 * records of user_id without them and chain an erasure event per segment
 * (with SHA-256 of "tenant:subject", never the id). *removed = records. */
vg_err_t vg_auditstore_erase(vg_auditstore_t *s, const char *tenant, const char *subject,
                             uint64_t *removed, vg_error *err);

/* Query: append matching records to out as JSON lines, newest first; *next
 * receives a cursor for the next page ("" when this was the last). */
vg_err_t vg_auditstore_query(vg_auditstore_t *s, const vg_audit_query *q, vg_buf *out,
                             char next[64], vg_error *err);
/* Counts per tier over all tenants. */
vg_err_t vg_auditstore_stats(vg_auditstore_t *s, vg_audit_tier_stats *st, vg_error *err);

/* Dead-letter store: append one bad line for tenant, durably, once per
 * (tenant, file_id, offset); *dup = 1 when it was already there. */
vg_err_t vg_auditstore_dlq_add(vg_auditstore_t *s, const char *tenant, const char *reason,
                               const char *line, const char *file_id, uint64_t offset, int *dup,
                               vg_error *err);
/* The agent's dead letters as it sends them (a JSON object with tenant,
 * reason, line, file_id, offset, or an array of them), from POST
 * /ingest/v1/dlq or the Kafka dead-letter topic: each stored durably with
 * vg_auditstore_dlq_add. tenant (the header or Kafka key) overrides the
 * entry's. VG_EPARSE/VG_EINVAL/VG_ETOOLARGE for a bad body, VG_EIO when
 * the store cannot write. */
vg_err_t vg_auditstore_dlq_ingest(vg_auditstore_t *s, const char *tenant, const uint8_t *data,
                                  size_t len, vg_error *err);
/* List DLQ entries (tenant NULL = all) as JSON lines, oldest first, at most limit. */
vg_err_t vg_auditstore_dlq_list(vg_auditstore_t *s, const char *tenant, size_t limit, vg_buf *out,
                                vg_error *err);

typedef struct vg_audit_verify_opts {
    const char *dir;             /* the store */
    const char *tenant;          /* NULL = all tenants */
    const vg_audit_signkey *key; /* NULL = signatures not checked */
    int require_signed;          /* an unsigned erasure/deletion is a problem, not legacy */
} vg_audit_verify_opts;

typedef struct vg_audit_verify_stats {
    int problems;             /* 0 = intact */
    uint64_t sig_checked;     /* signatures that verified under the key */
    uint64_t sig_unchecked;   /* signed lines not checked (no key) */
    uint64_t unsigned_legacy; /* erasure/deletion lines from before signing */
} vg_audit_verify_stats;

/* Offline check of the store: walks each chain, checks the signatures of
 * erasure/deletion lines, recomputes every live segment's digest and
 * reports to rep (may be NULL) one line per problem naming the segment or
 * chain line, plus deletions and erasures. Unsigned erasure/deletion lines
 * before a chain's first signed line are legacy (reported, not problems);
 * after it they are problems. VG_OK unless dir is unreadable. */
vg_err_t vg_audit_verify(const vg_audit_verify_opts *o, FILE *rep, vg_audit_verify_stats *st,
                         vg_error *err);

/* Register POST /ingest/v1/dlq and /api/v1/audit/{query,stats,dlq,subject/USER} on h. */
vg_err_t vg_auditstore_register_http(vg_auditstore_t *s, vg_httpd_t *h);

/* Encode a tenant name into a directory name (out >= 3*strlen+1, max 256). */
vg_err_t vg_audit_tenant_dir(const char *tenant, char *out, size_t cap);

#endif
