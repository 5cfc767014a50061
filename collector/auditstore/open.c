/*
 * open.c - open the audit store: lock, dedup keys from the segments, WAL
 * replay, background thread; and free.
 *
 * The key set is rebuilt rather than persisted: every segment carries its
 * keys (live and erased) in its meta block, which is read without touching
 * the compressed frames, and the WAL holds the rest. Keys from segments go
 * in first, so replaying a WAL whose hour was already sealed (a crash
 * between the seal and the WAL's removal) adds nothing, and the WAL is
 * then removed.
 *
 * The signing key is loaded (or, by default, created) before anything else
 * is touched, so a store never chains an unsigned erasure or deletion.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auditstore/auditstore_int.h"
#include "auditstore/feed.h"
#include "vigil/alloc.h"
#include "vigil/crc32c.h"
#include "vigil/log.h"

#define COMP "auditstore"

static vg_err_t load_segment_keys(vg_auditstore_t *s, const char *tenant, vg_error *err)
{
    vg_err_t rc = VG_OK;
    for (int t = 0; t < 3 && !rc; t++) {
        char **names = NULL, dir[1024], p[1400];
        size_t n = 0;
        rc = vg_audit_list_segments(s->dir, tenant, t, &names, &n, err);
        vg_audit_path(s->dir, tenant, vg_audit_tiers[t], dir, sizeof(dir));
        for (size_t i = 0; i < n && !rc; i++) {
            vg_aseg_t *seg = NULL;
            vg_error lerr = {0};
            snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
            if (vg_aseg_load(p, &seg, &lerr)) { /* verify reports it; keep serving the rest */
                vg_log_error(COMP, "unreadable segment", "path=%s err=%s", p, lerr.msg);
                continue;
            }
            size_t nk = 0;
            const uint64_t *k = vg_aseg_keys(seg, &nk);
            for (size_t j = 0; j < nk && !rc; j++)
                if (vg_akeys_add(&s->keys, k[j]))
                    rc = vg_error_set(err, VG_ENOMEM, "out of memory");
            vg_aseg_free(seg);
        }
        vg_audit_free_names(names, n);
    }
    return rc;
}

static vg_err_t replay_tenant(vg_auditstore_t *s, const char *tenant, vg_error *err)
{
    char wd[1024], p[1400];
    if (vg_audit_path(s->dir, tenant, "wal", wd, sizeof(wd))) return VG_OK;
    DIR *d = opendir(wd);
    if (!d) return VG_OK;
    vg_err_t rc = VG_OK;
    struct dirent *de;
    while ((de = readdir(d)) && !rc) {
        char *end = NULL;
        long long hour = strtoll(de->d_name, &end, 10);
        if (end == de->d_name || strcmp(end, ".wal") != 0) continue;
        snprintf(p, sizeof(p), "%s/%s", wd, de->d_name);
        rc = vg_audit_wal_replay_file(s, tenant, (int64_t)hour, p, err);
    }
    closedir(d);
    return rc;
}

static vg_err_t load_all(vg_auditstore_t *s, vg_error *err)
{
    char **ten = NULL;
    size_t nt = 0;
    vg_err_t rc = vg_audit_list_tenants(s->dir, &ten, &nt, err);
    for (size_t i = 0; i < nt && !rc; i++) rc = load_segment_keys(s, ten[i], err);
    for (size_t i = 0; i < nt && !rc; i++) rc = vg_audit_dlq_load(s, ten[i], err);
    for (size_t i = 0; i < nt && !rc; i++) rc = replay_tenant(s, ten[i], err);
    vg_audit_free_names(ten, nt);
    return rc;
}

static void *bg_main(void *arg)
{
    vg_auditstore_t *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (s->o.interval_ms % 1000) * 1000000;
        ts.tv_sec += s->o.interval_ms / 1000 + ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        if (s->stop) break;
        pthread_mutex_unlock(&s->mu);
        vg_error err = {0};
        if (vg_auditstore_maintain(s, &err))
            vg_log_warn(COMP, "maintenance failed", "err=%s", err.msg);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void set_defaults(vg_auditstore_t *s, const vg_auditstore_opts *o)
{
    s->o = *o;
    if (!s->o.hot_ms) s->o.hot_ms = 30LL * 86400000;
    if (!s->o.warm_ms) s->o.warm_ms = 90LL * 86400000;
    if (!s->o.cold_ms) s->o.cold_ms = 7LL * 365 * 86400000;
    if (!s->o.seal_grace_ms) s->o.seal_grace_ms = 5 * 60000;
    if (s->o.seal_grace_ms < 0) s->o.seal_grace_ms = 0;
    if (!s->o.interval_ms) s->o.interval_ms = 10000;
    s->metrics = o->metrics;
    vg_metrics_t *m = o->metrics;
    const char *rn = "vigil_audit_records_total", *rh = "Audit records received, by outcome.";
    s->m_stored = vg_metrics_counter(m, rn, rh, "outcome=\"stored\"");
    s->m_dup = vg_metrics_counter(m, rn, rh, "outcome=\"duplicate\"");
    const char *sn = "vigil_audit_segments_total", *sh = "Audit segment events, by kind.";
    s->m_sealed = vg_metrics_counter(m, sn, sh, "event=\"sealed\"");
    s->m_moved = vg_metrics_counter(m, sn, sh, "event=\"moved\"");
    s->m_deleted = vg_metrics_counter(m, sn, sh, "event=\"deleted\"");
    s->m_wal_bad = vg_metrics_counter(m, "vigil_audit_wal_damaged_frames_total",
                                      "Audit WAL frames skipped at replay: a bad CRC or payload "
                                      "with good frames after it.",
                                      NULL);
}

static vg_err_t take_lock(vg_auditstore_t *s, vg_error *err)
{
    char p[1100];
    snprintf(p, sizeof(p), "%s/LOCK", s->dir);
    s->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0) return vg_error_set(err, VG_EIO, "%s: %s", p, strerror(errno));
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return vg_error_set(err, VG_EEXIST, "%s: the audit store is in use by another process", p);
    return VG_OK;
}

/* The configured key must exist; the default one is created on first use. */
static vg_err_t load_key(vg_auditstore_t *s, vg_error *err)
{
    char def[1100];
    const char *p = s->o.signing_key_file;
    int loose = 0, created = 0;
    vg_err_t rc;
    if (p && *p) {
        rc = vg_audit_signkey_load(p, &s->key, &loose, err);
        if (rc == VG_ENOTFOUND)
            rc = vg_error_set(err, VG_ECONFIG,
                              "audit.signing_key_file %s does not exist: create it with "
                              "`head -c 32 /dev/urandom > %s; chmod 600 %s`",
                              p, p, p);
    } else {
        snprintf(def, sizeof(def), "%s/" VG_AUDIT_KEY_DEFAULT, s->dir);
        p = def;
        rc = vg_audit_signkey_load(p, &s->key, &loose, err);
        if (rc == VG_ENOTFOUND) rc = vg_audit_signkey_create(p, &s->key, err), created = 1;
        if (!rc)
            vg_log_warn(COMP, "audit signing key stored beside the data",
                        "path=%s created=%d hint=\"it only protects against accidental edits, not "
                        "an attacker with disk access: put the key elsewhere and set "
                        "audit.signing_key_file\"",
                        p, created);
    }
    if (!rc && loose)
        vg_log_warn(COMP, "audit signing key readable by others", "path=%s hint=\"chmod 600\"", p);
    if (!rc) vg_log_info(COMP, "audit signing key loaded", "path=%s key_id=%s", p, s->key.id);
    return rc;
}

/* The SIEM feed in dir/.feed (a leading dot: never a tenant directory). */
static vg_err_t open_feed(vg_auditstore_t *s, vg_error *err)
{
    char d[1100];
    if (!s->o.siem_feed) return VG_OK;
    snprintf(d, sizeof(d), "%s/.feed", s->dir);
    vg_feed_opts fo = {.dir = d, .cap_bytes = s->o.siem_buffer_bytes, .metrics = s->metrics};
    return vg_feed_open(&fo, &s->feed, err);
}

struct vg_feed *vg_auditstore_feed(vg_auditstore_t *s)
{
    return s->feed;
}

vg_err_t vg_auditstore_open(const vg_auditstore_opts *o, vg_auditstore_t **out, vg_error *err)
{
    *out = NULL;
    if (!o || !o->dir) return vg_error_set(err, VG_EINVAL, "audit store needs a directory");
    vg_auditstore_t *s = vg_calloc(1, sizeof(*s));
    if (!s) return vg_error_set(err, VG_ENOMEM, "out of memory");
    s->lock_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->sync_mu, NULL);
    pthread_rwlock_init(&s->seg_mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    set_defaults(s, o);
    vg_err_t rc =
        (s->dir = vg_strdup(o->dir)) ? VG_OK : vg_error_set(err, VG_ENOMEM, "out of memory");
    if (!rc) rc = vg_audit_mkdirs(s->dir, err);
    if (!rc) rc = take_lock(s, err);
    if (!rc) rc = load_key(s, err);
    if (!rc) rc = load_all(s, err);
    if (!rc) rc = open_feed(s, err);
    if (!rc && s->o.interval_ms > 0) {
        if (pthread_create(&s->thr, NULL, bg_main, s) != 0)
            rc = vg_error_set(err, VG_EINTERNAL, "cannot start the audit maintenance thread");
        else
            s->thr_started = 1;
    }
    if (rc)
        vg_auditstore_free(s);
    else
        *out = s;
    return rc;
}

void vg_auditstore_free(vg_auditstore_t *s)
{
    if (!s) return;
    if (s->thr_started) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thr, NULL);
    }
    while (s->buckets) {
        struct vg_abucket *b = s->buckets;
        s->buckets = b->next;
        if (b->dirty) fdatasync(b->fd);
        vg_abucket_free(b);
    }
    if (s->feed) vg_feed_sync(s->feed, NULL);
    vg_feed_free(s->feed);
    vg_free(s->keys.slot);
    if (s->lock_fd >= 0) close(s->lock_fd);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->sync_mu);
    pthread_rwlock_destroy(&s->seg_mu);
    pthread_cond_destroy(&s->cv);
    OPENSSL_cleanse(&s->key, sizeof(s->key));
    vg_free(s->dir);
    vg_free(s);
}
