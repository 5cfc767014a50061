/*
 * seal.c - turn open hours into segments, move segments between tiers,
 * delete them past retention, and erase a data subject.
 *
 * Order on sealing: the segment is written to a temp file and fsynced, the
 * chain line is appended, then the file is renamed into place and the
 * hour's WAL removed. A crash before the rename leaves the WAL, whose
 * replay seals the same records again into the same name (the name holds
 * the content digest); a crash after it leaves a WAL whose records are all
 * duplicates and is dropped at open. Tier moves recompress without
 * changing the content digest, so they need no chain line; deletions and
 * erasures change what verify must find, so they get one, signed with the
 * store's key (sign.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auditstore/auditstore_int.h"
#include "auditstore/chain.h"
#include "vigil/alloc.h"
#include "vigil/log.h"

#define COMP "auditstore"

static void seg_name(int64_t hour, const uint8_t d[32], char out[64])
{
    time_t t = (time_t)(hour / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char hx[65];
    vg_audit_hex(d, hx);
    snprintf(out, 64, "%04d%02d%02d%02d-%.16s.seg", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, hx);
}

static vg_err_t chain_event(const vg_auditstore_t *s, const char *tenant, const char *kind,
                            const char *name, int64_t hour, uint64_t records,
                            const uint8_t digest[32], const char *extra, vg_error *err)
{
    char cp[1024];
    vg_achain_ent e = {.hour_ms = hour, .records = records, .at_ms = vg_audit_now(s)};
    snprintf(e.kind, sizeof(e.kind), "%s", kind);
    snprintf(e.name, sizeof(e.name), "%s", name);
    if (digest) vg_audit_hex(digest, e.digest);
    if (extra) snprintf(e.extra, sizeof(e.extra), "%s", extra);
    if (vg_audit_path(s->dir, tenant, "chain.log", cp, sizeof(cp)))
        return vg_error_set(err, VG_EINVAL, "bad tenant");
    /* the events that take records away are signed; a seal adds, and its
     * digest is re-checked against the file anyway */
    int sign = !strcmp(kind, "erase") || !strcmp(kind, "delete");
    return vg_achain_append(cp, &e, sign ? &s->key : NULL, err);
}

/* Write seg bytes as dir/name via temp + fsync, chain it, rename it in. */
static vg_err_t place_segment(const vg_auditstore_t *s, const char *tenant, const char *dir,
                              const char *name, const vg_buf *seg, const char *kind, int64_t hour,
                              uint64_t records, const uint8_t d[32], const char *extra,
                              vg_error *err)
{
    char tmpn[128], tmp[1200], dst[1200];
    snprintf(tmpn, sizeof(tmpn), ".%s.pending", name);
    vg_err_t rc = vg_audit_mkdirs(dir, err);
    /* write_atomic renames into tmpn: durable but invisible to listings */
    if (!rc) rc = vg_audit_write_atomic(dir, tmpn, seg->data, seg->len, err);
    if (!rc && kind) rc = chain_event(s, tenant, kind, name, hour, records, d, extra, err);
    snprintf(tmp, sizeof(tmp), "%s/%s", dir, tmpn);
    snprintf(dst, sizeof(dst), "%s/%s", dir, name);
    if (!rc && rename(tmp, dst) != 0)
        rc = vg_error_set(err, VG_EIO, "rename %s: %s", dst, strerror(errno));
    if (!rc) vg_audit_fsync_dir(dir);
    if (rc) unlink(tmp);
    return rc;
}

vg_err_t vg_audit_seal_bucket(vg_auditstore_t *s, struct vg_abucket *b, vg_error *err)
{
    vg_buf seg;
    vg_buf_init(&seg, 0);
    uint8_t d[32];
    char name[64], dir[1024], wal[1024], sub[64];
    vg_err_t rc =
        vg_aseg_encode(b->recs, b->n, NULL, 0, b->hour, vg_audit_tier_level[0], &seg, d, err);
    seg_name(b->hour, d, name);
    snprintf(sub, sizeof(sub), "wal/%" PRId64 ".wal", b->hour);
    if (!rc && (vg_audit_path(s->dir, b->tenant, "hot", dir, sizeof(dir)) ||
                vg_audit_path(s->dir, b->tenant, sub, wal, sizeof(wal))))
        rc = vg_error_set(err, VG_EINVAL, "bad tenant");
    if (!rc) rc = place_segment(s, b->tenant, dir, name, &seg, "seal", b->hour, b->n, d, NULL, err);
    vg_buf_free(&seg);
    if (rc) return rc;
    for (struct vg_abucket **pp = &s->buckets; *pp; pp = &(*pp)->next)
        if (*pp == b) {
            *pp = b->next;
            break;
        }
    vg_log_info(COMP, "segment sealed", "tenant=%s segment=%s records=%zu", b->tenant, name, b->n);
    vg_metric_inc(s->m_sealed);
    unlink(wal);
    vg_abucket_free(b);
    return VG_OK;
}

/* Seal buckets for which due() holds; seg_mu and mu are taken here. */
static vg_err_t seal_where(vg_auditstore_t *s, const char *tenant, int64_t before, vg_error *err)
{
    vg_err_t rc = VG_OK;
    pthread_rwlock_wrlock(&s->seg_mu);
    pthread_mutex_lock(&s->mu);
    for (struct vg_abucket *b = s->buckets, *next; b && !rc; b = next) {
        next = b->next;
        if (tenant && strcmp(b->tenant, tenant) != 0) continue;
        if (b->hour + VG_AUDIT_HOUR_MS > before) continue;
        if (b->dirty && fdatasync(b->fd) == 0) b->dirty = 0;
        rc = vg_audit_seal_bucket(s, b, err);
    }
    pthread_mutex_unlock(&s->mu);
    pthread_rwlock_unlock(&s->seg_mu);
    return rc;
}

vg_err_t vg_auditstore_seal_all(vg_auditstore_t *s, const char *tenant, vg_error *err)
{
    return seal_where(s, tenant, INT64_MAX - VG_AUDIT_HOUR_MS, err);
}

/* ---- tiers ---- */

static int tier_for(const vg_auditstore_t *s, int64_t age)
{
    if (age < s->o.hot_ms) return 0;
    if (age < s->o.warm_ms) return 1;
    if (age < s->o.cold_ms) return 2;
    return 3; /* deleted */
}

static vg_err_t move_or_delete(vg_auditstore_t *s, const char *tenant, int from, const char *name,
                               int64_t now, vg_error *err)
{
    char dir[1024], path[1200], to[1024];
    int64_t hour = vg_audit_name_hour(name);
    if (hour >= 0 && tier_for(s, now - (hour + VG_AUDIT_HOUR_MS)) <= from) return VG_OK; /* cheap */
    vg_audit_path(s->dir, tenant, vg_audit_tiers[from], dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    vg_aseg_t *seg = NULL;
    vg_err_t rc = vg_aseg_load(path, &seg, err);
    if (rc) return rc;
    int want = tier_for(s, now - (vg_aseg_hour(seg) + VG_AUDIT_HOUR_MS));
    uint8_t d[32], nd[32];
    vg_buf out;
    vg_buf_init(&out, 0);
    if (want <= from) goto out;
    rc = vg_aseg_digest(seg, d, err);
    if (!rc && want == 3) {
        rc = chain_event(s, tenant, "delete", name, vg_aseg_hour(seg), vg_aseg_count(seg), d,
                         "retention", err);
        if (!rc && unlink(path) == 0) vg_metric_inc(s->m_deleted);
        if (!rc) vg_log_info(COMP, "segment deleted", "tenant=%s segment=%s", tenant, name);
        goto out;
    }
    if (!rc) rc = vg_aseg_rewrite(seg, NULL, vg_audit_tier_level[want], &out, nd, err);
    if (!rc && memcmp(d, nd, 32) != 0)
        rc = vg_error_set(err, VG_EINTERNAL, "recompression changed %s", name);
    vg_audit_path(s->dir, tenant, vg_audit_tiers[want], to, sizeof(to));
    if (!rc) rc = place_segment(s, tenant, to, name, &out, NULL, 0, 0, NULL, NULL, err);
    if (!rc && unlink(path) == 0) vg_metric_inc(s->m_moved);
    if (!rc)
        vg_log_info(COMP, "segment moved", "tenant=%s segment=%s tier=%s", tenant, name,
                    vg_audit_tiers[want]);
out:
    vg_buf_free(&out);
    vg_aseg_free(seg);
    return rc;
}

static vg_err_t tier_tenant(vg_auditstore_t *s, const char *tenant, int64_t now, vg_error *err)
{
    vg_err_t rc = VG_OK;
    for (int t = 2; t >= 0 && !rc; t--) { /* coldest first: a segment moves once per pass */
        char **names = NULL;
        size_t n = 0;
        rc = vg_audit_list_segments(s->dir, tenant, t, &names, &n, err);
        for (size_t i = 0; i < n && !rc; i++) rc = move_or_delete(s, tenant, t, names[i], now, err);
        vg_audit_free_names(names, n);
    }
    return rc;
}

vg_err_t vg_auditstore_maintain(vg_auditstore_t *s, vg_error *err)
{
    int64_t now = vg_audit_now(s);
    vg_err_t rc = seal_where(s, NULL, now - s->o.seal_grace_ms, err);
    char **ten = NULL;
    size_t nt = 0;
    if (!rc) rc = vg_audit_list_tenants(s->dir, &ten, &nt, err);
    pthread_rwlock_wrlock(&s->seg_mu);
    for (size_t i = 0; i < nt && !rc; i++) rc = tier_tenant(s, ten[i], now, err);
    pthread_rwlock_unlock(&s->seg_mu);
    vg_audit_free_names(ten, nt);
    return rc;
}

/* ---- erasure ---- */

static vg_err_t erase_in(vg_auditstore_t *s, const char *tenant, int tier, const char *name,
                         const char *subject, const char *subj_hash, uint64_t *removed,
                         vg_error *err)
{
    char dir[1024], path[1200];
    vg_audit_path(s->dir, tenant, vg_audit_tiers[tier], dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    vg_aseg_t *seg = NULL;
    vg_err_t rc = vg_aseg_load(path, &seg, err);
    if (rc) return rc;
    const uint32_t *ords = NULL;
    size_t n = 0;
    vg_aseg_lookup(seg, VG_AFIELD_USER, subject, &ords, &n);
    uint8_t *drop = n ? vg_calloc(vg_aseg_count(seg) / 8 + 1, 1) : NULL;
    vg_buf out;
    vg_buf_init(&out, 0);
    uint8_t d[32];
    if (n && !drop) rc = vg_error_set(err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && drop; i++) drop[ords[i] / 8] |= (uint8_t)(1u << (ords[i] % 8));
    if (n && !rc) rc = vg_aseg_rewrite(seg, drop, vg_aseg_level(seg), &out, d, err);
    if (n && !rc)
        rc = place_segment(s, tenant, dir, name, &out, "erase", vg_aseg_hour(seg), n, d, subj_hash,
                           err);
    if (n && !rc) *removed += n;
    vg_buf_free(&out);
    vg_free(drop);
    vg_aseg_free(seg);
    return rc;
}

vg_err_t vg_auditstore_erase(vg_auditstore_t *s, const char *tenant, const char *subject,
                             uint64_t *removed, vg_error *err)
{
    *removed = 0;
    if (!subject || !*subject) return vg_error_set(err, VG_EINVAL, "erasure needs a subject");
    char both[1024], hx[65];
    uint8_t d[32];
    snprintf(both, sizeof(both), "%s:%s", tenant, subject);
    vg_audit_sha256(both, strlen(both), d);
    vg_audit_hex(d, hx);
    vg_err_t rc = vg_auditstore_seal_all(s, tenant, err);
    pthread_rwlock_wrlock(&s->seg_mu);
    for (int t = 0; t < 3 && !rc; t++) {
        char **names = NULL;
        size_t n = 0;
        rc = vg_audit_list_segments(s->dir, tenant, t, &names, &n, err);
        for (size_t i = 0; i < n && !rc; i++)
            rc = erase_in(s, tenant, t, names[i], subject, hx, removed, err);
        vg_audit_free_names(names, n);
    }
    pthread_rwlock_unlock(&s->seg_mu);
    if (!rc)
        vg_log_info(COMP, "subject erased", "tenant=%s subject_sha256=%s records=%" PRIu64, tenant,
                    hx, *removed);
    return rc;
}
