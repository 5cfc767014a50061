/*
 * auditstore_int.h - state shared by the audit store's files (store.c: WAL,
 * dedup, append; seal.c: sealing, tiers, erasure; query.c; dlq.c).
 *
 * Locks, always taken in this order: sync_mu (serialises fsync and sealing,
 * so a WAL fd is never closed under an fsync), seg_mu (rwlock over the
 * segment files: queries read, seal/tier/erase write), mu (buckets, keys).
 */
#ifndef VIGIL_AUDITSTORE_INT_H
#define VIGIL_AUDITSTORE_INT_H

#include <pthread.h>

#include "auditstore/auditstore.h"
#include "auditstore/segment.h"

#define VG_AUDIT_HOUR_MS     3600000LL
#define VG_AUDIT_MAX_LINE    (1u << 20) /* one stored JSON line */
#define VG_AUDIT_MAX_FILE_ID 256
#define VG_AUDIT_MAX_TS      253402300799999LL /* 9999-12-31T23:59:59.999Z */

extern const char *const vg_audit_tiers[3]; /* "hot", "warm", "cold" */
extern const int vg_audit_tier_level[3];

/* An open (unsealed) hour of one tenant: records in memory plus their WAL file. */
struct vg_abucket {
    char *tenant;
    int64_t hour;
    int fd;
    vg_aseg_rec *recs; /* line and fields owned (vg_strdup) */
    size_t n, cap;
    int dirty; /* written since the last fsync */
    struct vg_abucket *next;
};

struct vg_akeyset {
    uint64_t *slot; /* 0 = empty */
    size_t cap, n;
};

struct vg_auditstore {
    char *dir;
    vg_auditstore_opts o;
    int lock_fd;
    pthread_mutex_t mu, sync_mu;
    pthread_rwlock_t seg_mu;
    pthread_cond_t cv;
    struct vg_akeyset keys;
    struct vg_abucket *buckets;
    uint64_t wseq, synced; /* append generations written and fsynced */
    int failed;            /* an fsync failed: refuse writes (the page cache is suspect) */
    pthread_t thr;
    int thr_started, stop;
    vg_audit_signkey key; /* signs erasure and deletion chain lines */
    vg_metric_t *m_stored, *m_dup, *m_sealed, *m_moved, *m_deleted, *m_dlq;
    vg_metric_t *m_wal_bad; /* WAL frames skipped at replay */
    vg_metrics_t *metrics;
    struct vg_feed *feed; /* SIEM feed, NULL when no SIEM output */
};

int64_t vg_audit_now(const vg_auditstore_t *s);
int vg_akeys_has(const struct vg_akeyset *k, uint64_t key);
vg_err_t vg_akeys_add(struct vg_akeyset *k, uint64_t key);
uint64_t vg_audit_key(const char *tenant, const char *file_id, uint64_t offset, int dlq);

/* "<dir>/<tenant-dir>[/sub]" into out. */
vg_err_t vg_audit_path(const char *dir, const char *tenant, const char *sub, char *out, size_t cap);
vg_err_t vg_audit_mkdirs(const char *path, vg_error *err);
/* Write data to dir/name via a temp file, fsync, rename, fsync dir. */
vg_err_t vg_audit_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                               vg_error *err);
vg_err_t vg_audit_fsync_dir(const char *dir);
/* Tenant names present under dir (decoded), vg_free each and the array. */
vg_err_t vg_audit_list_tenants(const char *dir, char ***out, size_t *n, vg_error *err);
/* Segment file names in dir/tenant/tier, sorted. */
vg_err_t vg_audit_list_segments(const char *dir, const char *tenant, int tier, char ***out,
                                size_t *n, vg_error *err);
void vg_audit_free_names(char **v, size_t n);
/* The hour a segment name starts with ("YYYYMMDDHH-..."), in ms; -1 if none. */
int64_t vg_audit_name_hour(const char *name);

/* Load tenant's DLQ dedup keys into s->keys (at open). */
vg_err_t vg_audit_dlq_load(vg_auditstore_t *s, const char *tenant, vg_error *err);

void vg_abucket_free(struct vg_abucket *b);
/* Replay one hour's WAL file into a bucket (cutting a torn tail). */
vg_err_t vg_audit_wal_replay_file(vg_auditstore_t *s, const char *tenant, int64_t hour,
                                  const char *path, vg_error *err);
/* Seal one bucket (sync_mu, seg_mu write and mu held); removes it from the list. */
vg_err_t vg_audit_seal_bucket(vg_auditstore_t *s, struct vg_abucket *b, vg_error *err);

#endif
