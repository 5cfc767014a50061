/*
 * tsdb_int.h - what tsdb.c, tsdb_append.c and tsdb_query.c share.
 *
 * The store is split by concern (tenants and lifecycle, appends, queries) so
 * the write path and the read path can change independently; this header is
 * the private seam between them. Nothing outside collector/tsdb includes it.
 */
#ifndef VIGIL_TSDB_INT_H
#define VIGIL_TSDB_INT_H

#include <pthread.h>

#include "tsdb/head.h"
#include "tsdb/tsdb.h"

#define MAX_LABELS 1024 /* per series, as the remote-write receiver caps them */

typedef struct tenant {
    char name[VG_TENANT_MAX + 1];
    vg_head_t *head;
} tenant;

struct vg_tsdb {
    pthread_rwlock_t lock;
    int lock_ok;
    tenant *tenants;
    size_t ntenants, cap;
    vg_metric_t *m_appended, *m_dedup, *m_ooo, *m_conflict, *m_invalid, *m_created;
    struct vg_wal *wal;            /* NULL: memory only */
    struct vg_tsdb_blocks *blocks; /* NULL: memory only (tsdb_blocks.c) */
    int64_t ooo_window_ms;         /* vg_tsdb_opts.ooo_window_ms: 0 = head default, < 0 = none */
    struct vg_limits *limits;      /* NULL: unlimited (limits.c) */
    char *dir;                     /* data directory; NULL: memory only */
};

/* The head of an existing tenant, or NULL. Thread-safe. */
vg_head_t *vg_tsdb_tenant_find(vg_tsdb_t *db, const char *name);
/* The head of tenant name, created on first use; VG_EINVAL for an invalid name. */
vg_err_t vg_tsdb_tenant_get(vg_tsdb_t *db, const char *name, vg_head_t **out, vg_error *err);

/* Index of tenant head h in db->tenants (stable: tenants are never removed). */
uint32_t vg_tsdb_tenant_index(vg_tsdb_t *db, const vg_head_t *h);

#endif
