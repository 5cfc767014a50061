/*
 * store.c - the audit store's write path: dedup keys, per-hour WAL files
 * with group fsync, replay at open, and the background task's thread.
 *
 * A WAL frame is u32 length, u32 CRC32C, payload (ts, key, the three indexed
 * fields, the JSON line). Replay skips and counts a damaged frame that has
 * good frames after it (vigil_audit_wal_damaged_frames_total: those later
 * records were acknowledged and must not go with it), and cuts the file
 * after the last good frame: a torn tail is a write the client never saw
 * acknowledged. Group fsync: appenders write under mu and bump a
 * generation; whoever then holds sync_mu fsyncs every dirty WAL and so
 * covers all generations written before it looked.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <xxhash.h>

#include "auditstore/auditstore_int.h"
#include "auditstore/feed.h"
#include "auditstore/chain.h"
#include "vigil/alloc.h"
#include "vigil/clock.h"
#include "vigil/crc32c.h"
#include "vigil/le.h"
#include "vigil/log.h"

#define COMP "auditstore"

int64_t vg_audit_now(const vg_auditstore_t *s)
{
    return s->o.clock ? s->o.clock(s->o.clock_ud) : vg_clock_wall_ms();
}

uint64_t vg_audit_key(const char *tenant, const char *file_id, uint64_t offset, int dlq)
{
    uint8_t buf[1024];
    size_t tl = strlen(tenant), fl = strlen(file_id), n = 0;
    if (tl > 300) tl = 300;
    if (fl > 600) fl = 600; /* file ids are short hashes; the cap only bounds the buffer */
    memcpy(buf, dlq ? "dlq" : "rec", 4), n = 4;
    memcpy(buf + n, tenant, tl), n += tl, buf[n++] = 0;
    memcpy(buf + n, file_id, fl), n += fl, buf[n++] = 0;
    vg_le_put64(buf + n, offset), n += 8;
    uint64_t k = XXH3_64bits(buf, n);
    return k ? k : 1;
}

/* ---- key set: open addressing over u64, 0 = empty ---- */

int vg_akeys_has(const struct vg_akeyset *k, uint64_t key)
{
    if (!k->cap) return 0;
    for (size_t i = key & (k->cap - 1);; i = (i + 1) & (k->cap - 1)) {
        if (k->slot[i] == key) return 1;
        if (!k->slot[i]) return 0;
    }
}

static void keys_put(uint64_t *slot, size_t cap, uint64_t key)
{
    size_t i = key & (cap - 1);
    while (slot[i] && slot[i] != key) i = (i + 1) & (cap - 1);
    slot[i] = key;
}

vg_err_t vg_akeys_add(struct vg_akeyset *k, uint64_t key)
{
    if (vg_akeys_has(k, key)) return VG_OK;
    if ((k->n + 1) * 2 > k->cap) {
        size_t nc = k->cap ? k->cap * 2 : 1024;
        uint64_t *ns = vg_calloc(nc, sizeof(uint64_t));
        if (!ns) return VG_ENOMEM;
        for (size_t i = 0; i < k->cap; i++)
            if (k->slot[i]) keys_put(ns, nc, k->slot[i]);
        vg_free(k->slot);
        k->slot = ns, k->cap = nc;
    }
    keys_put(k->slot, k->cap, key);
    k->n++;
    return VG_OK;
}

/* ---- buckets ---- */

void vg_abucket_free(struct vg_abucket *b)
{
    if (!b) return;
    if (b->fd >= 0) close(b->fd);
    for (size_t i = 0; i < b->n; i++) {
        vg_free((char *)b->recs[i].line);
        for (int f = 0; f < VG_AFIELD__N; f++) vg_free((char *)b->recs[i].field[f]);
    }
    vg_free(b->recs);
    vg_free(b->tenant);
    vg_free(b);
}

static vg_err_t wal_path(const vg_auditstore_t *s, const char *tenant, int64_t hour, char *out,
                         size_t cap)
{
    char sub[64];
    snprintf(sub, sizeof(sub), "wal/%" PRId64 ".wal", hour);
    return vg_audit_path(s->dir, tenant, sub, out, cap);
}

static struct vg_abucket *bucket_find(vg_auditstore_t *s, const char *tenant, int64_t hour)
{
    for (struct vg_abucket *b = s->buckets; b; b = b->next)
        if (b->hour == hour && !strcmp(b->tenant, tenant)) return b;
    return NULL;
}

static vg_err_t bucket_get(vg_auditstore_t *s, const char *tenant, int64_t hour,
                           struct vg_abucket **out, vg_error *err)
{
    if ((*out = bucket_find(s, tenant, hour))) return VG_OK;
    char p[1024], wd[1024];
    vg_err_t rc = vg_audit_path(s->dir, tenant, "wal", wd, sizeof(wd));
    if (!rc) rc = wal_path(s, tenant, hour, p, sizeof(p));
    if (rc) return vg_error_set(err, VG_EINVAL, "bad tenant name");
    if ((rc = vg_audit_mkdirs(wd, err))) return rc;
    struct vg_abucket *b = vg_calloc(1, sizeof(*b));
    if (!b) return vg_error_set(err, VG_ENOMEM, "out of memory");
    b->fd = -1, b->hour = hour;
    if (!(b->tenant = vg_strdup(tenant))) goto nomem;
    b->fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (b->fd < 0) {
        rc = vg_error_set(err, VG_EIO, "%s: %s", p, strerror(errno));
        vg_abucket_free(b);
        return rc;
    }
    vg_audit_fsync_dir(wd);
    b->next = s->buckets, s->buckets = b, *out = b;
    return VG_OK;
nomem:
    vg_abucket_free(b);
    return vg_error_set(err, VG_ENOMEM, "out of memory");
}

/* Take ownership of line and fields into b (freed on failure). */
static vg_err_t bucket_add(struct vg_abucket *b, int64_t ts, uint64_t key, char *line, size_t len,
                           char *const f[VG_AFIELD__N])
{
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        vg_aseg_rec *nr = vg_realloc(b->recs, nc * sizeof(*nr));
        if (!nr) {
            vg_free(line);
            for (int i = 0; i < VG_AFIELD__N; i++) vg_free(f[i]);
            return VG_ENOMEM;
        }
        b->recs = nr, b->cap = nc;
    }
    vg_aseg_rec *r = &b->recs[b->n++];
    *r = (vg_aseg_rec){.ts_ms = ts, .key = key, .line = line, .len = (uint32_t)len};
    for (int i = 0; i < VG_AFIELD__N; i++) r->field[i] = f[i];
    return VG_OK;
}

/* ---- WAL frames ---- */

static vg_err_t frame_encode(vg_buf *fb, int64_t ts, uint64_t key, const char *const f[3],
                             const char *line, size_t len)
{
    uint8_t hdr[8] = {0}, t[8];
    vg_err_t rc = vg_buf_append(fb, hdr, 8);
    vg_le_put64(t, (uint64_t)ts);
    if (!rc) rc = vg_buf_append(fb, t, 8);
    vg_le_put64(t, key);
    if (!rc) rc = vg_buf_append(fb, t, 8);
    for (int i = 0; i < VG_AFIELD__N && !rc; i++) {
        size_t fl = strlen(f[i]);
        vg_le_put32(t, (uint32_t)fl);
        rc = vg_buf_append(fb, t, 4);
        if (!rc) rc = vg_buf_append(fb, f[i], fl);
    }
    vg_le_put32(t, (uint32_t)len);
    if (!rc) rc = vg_buf_append(fb, t, 4);
    if (!rc) rc = vg_buf_append(fb, line, len);
    if (rc) return rc;
    uint8_t *p = (uint8_t *)fb->data;
    vg_le_put32(p, (uint32_t)(fb->len - 8));
    vg_le_put32(p + 4, vg_crc32c(0, p + 8, fb->len - 8));
    return VG_OK;
}

static char *take_str(const uint8_t **p, const uint8_t *end)
{
    if (end - *p < 4) return NULL;
    uint32_t l = vg_le_get32(*p);
    *p += 4;
    if ((uint64_t)(end - *p) < l) return NULL;
    char *s = vg_malloc((size_t)l + 1);
    if (!s) return NULL;
    memcpy(s, *p, l), s[l] = 0;
    *p += l;
    return s;
}

/* Decode one payload into b (skipping keys already stored). */
static vg_err_t frame_apply(vg_auditstore_t *s, struct vg_abucket *b, const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    if (n < 16) return VG_ECORRUPT;
    uint64_t ts = vg_le_get64(p), key = vg_le_get64(p + 8);
    p += 16;
    char *f[VG_AFIELD__N] = {0}, *line = NULL;
    for (int i = 0; i < VG_AFIELD__N; i++) f[i] = take_str(&p, end);
    const uint8_t *lp = p;
    line = take_str(&p, end);
    if (!f[0] || !f[1] || !f[2] || !line || vg_akeys_has(&s->keys, key)) {
        for (int i = 0; i < VG_AFIELD__N; i++) vg_free(f[i]);
        int bad = !line;
        vg_free(line);
        return bad ? VG_ECORRUPT : VG_OK;
    }
    size_t len = vg_le_get32(lp);
    vg_err_t rc = vg_akeys_add(&s->keys, key);
    if (rc) {
        for (int i = 0; i < VG_AFIELD__N; i++) vg_free(f[i]);
        vg_free(line);
        return rc;
    }
    return bucket_add(b, (int64_t)ts, key, line, len, f);
}

/* ---- append ---- */

static const char *nz(const char *s)
{
    return s ? s : "";
}

static vg_err_t record_line(const char *tenant, const Vigil__V1__AuditRecord *r, vg_buf *lb)
{
    vg_err_t rc = vg_buf_printf(lb, "{\"ts_ms\":%" PRId64 ",\"tenant\":", r->ts_ms);
    const char *names[] = {"user_id", "session_id", "action", "resource",
                           "result",  "ip_address", "file_id"};
    const char *vals[] = {r->user_id, r->session_id, r->action, r->resource,
                          r->result,  r->ip_address, r->file_id};
    if (!rc) rc = vg_buf_json_str(lb, tenant, strlen(tenant));
    for (int i = 0; i < 7 && !rc; i++) {
        rc = vg_buf_printf(lb, ",\"%s\":", names[i]);
        if (!rc) rc = vg_buf_json_str(lb, nz(vals[i]), strlen(nz(vals[i])));
    }
    if (!rc) rc = vg_buf_printf(lb, ",\"offset\":%" PRIu64 ",\"original\":", r->offset);
    if (!rc) rc = vg_buf_json_str(lb, nz(r->original_json), strlen(nz(r->original_json)));
    if (!rc) rc = vg_buf_putc(lb, '}');
    return rc;
}

static vg_err_t append_one(vg_auditstore_t *s, const char *tenant, const Vigil__V1__AuditRecord *r,
                           uint64_t key, vg_buf *lb, vg_buf *fb, vg_error *err)
{
    int64_t hour = r->ts_ms - ((r->ts_ms % VG_AUDIT_HOUR_MS) + VG_AUDIT_HOUR_MS) % VG_AUDIT_HOUR_MS;
    struct vg_abucket *b = NULL;
    vg_buf_reset(lb), vg_buf_reset(fb);
    vg_err_t rc = record_line(tenant, r, lb);
    if (rc) return vg_error_set(err, rc, "audit record too large");
    const char *f[VG_AFIELD__N] = {nz(r->user_id), nz(r->action), nz(r->result)};
    if ((rc = frame_encode(fb, r->ts_ms, key, f, lb->data, lb->len)))
        return vg_error_set(err, rc, "audit record too large");
    if ((rc = bucket_get(s, tenant, hour, &b, err))) return rc;
    /* feed first: a crash before the WAL frame leaves the record un-acked (resent, at least once)
     */
    if (s->feed && (rc = vg_feed_append(s->feed, tenant, r->ts_ms, lb->data, lb->len, err))) {
        s->failed = 1;
        return rc;
    }
    if (write(b->fd, fb->data, fb->len) != (ssize_t)fb->len) {
        s->failed = 1;
        return vg_error_set(err, VG_EIO, "audit WAL write: %s", strerror(errno));
    }
    b->dirty = 1;
    char *fd[VG_AFIELD__N] = {vg_strdup(f[0]), vg_strdup(f[1]), vg_strdup(f[2])};
    char *line = vg_strdup(lb->data);
    if (!line || !fd[0] || !fd[1] || !fd[2]) {
        vg_free(line);
        for (int i = 0; i < VG_AFIELD__N; i++) vg_free(fd[i]);
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
    rc = bucket_add(b, r->ts_ms, key, line, lb->len, fd);
    if (!rc) rc = vg_akeys_add(&s->keys, key);
    return rc ? vg_error_set(err, rc, "out of memory") : VG_OK;
}

/* Refuse the whole batch before storing any of it when one record can never be stored. */
static vg_err_t validate(Vigil__V1__AuditRecord *const *recs, size_t n, vg_error *err)
{
    for (size_t i = 0; i < n; i++) {
        const Vigil__V1__AuditRecord *r = recs[i];
        size_t sz = strlen(nz(r->user_id)) + strlen(nz(r->session_id)) + strlen(nz(r->action)) +
                    strlen(nz(r->resource)) + strlen(nz(r->result)) + strlen(nz(r->ip_address)) +
                    strlen(nz(r->original_json));
        if (!r->file_id || !*r->file_id || strlen(r->file_id) > VG_AUDIT_MAX_FILE_ID)
            return vg_error_set(err, VG_EINVAL, "audit record %zu: file_id empty or too long", i);
        if (r->ts_ms < 0 || r->ts_ms > VG_AUDIT_MAX_TS)
            return vg_error_set(err, VG_EINVAL, "audit record %zu: ts_ms out of range", i);
        if (sz > VG_AUDIT_MAX_LINE / 6) /* JSON escaping grows a byte to at most 6 */
            return vg_error_set(err, VG_ETOOLARGE, "audit record %zu: over %u bytes", i,
                                VG_AUDIT_MAX_LINE / 6);
    }
    return VG_OK;
}

static vg_err_t append_locked(vg_auditstore_t *s, const char *tenant,
                              Vigil__V1__AuditRecord *const *recs, size_t n,
                              vg_audit_append_stats *st, vg_error *err)
{
    vg_buf lb, fb;
    vg_buf_init(&lb, VG_AUDIT_MAX_LINE + 4096), vg_buf_init(&fb, 2 * VG_AUDIT_MAX_LINE + 8192);
    vg_err_t rc = validate(recs, n, err);
    for (size_t i = 0; i < n && !rc; i++) {
        const Vigil__V1__AuditRecord *r = recs[i];
        uint64_t key = vg_audit_key(tenant, r->file_id, r->offset, 0);
        if (vg_akeys_has(&s->keys, key)) {
            st->duplicates++;
            continue;
        }
        rc = append_one(s, tenant, r, key, &lb, &fb, err);
        if (!rc) st->stored++;
    }
    vg_buf_free(&lb), vg_buf_free(&fb);
    return rc;
}

vg_err_t vg_auditstore_append(vg_auditstore_t *s, const char *tenant,
                              Vigil__V1__AuditRecord *const *recs, size_t n,
                              vg_audit_append_stats *st, vg_error *err)
{
    vg_audit_append_stats local = {0};
    if (!st) st = &local;
    memset(st, 0, sizeof(*st));
    st->records = n;
    pthread_mutex_lock(&s->mu);
    vg_err_t rc = s->failed ? vg_error_set(err, VG_EIO, "audit WAL failed earlier; restart")
                            : append_locked(s, tenant, recs, n, st, err);
    s->wseq++;
    pthread_mutex_unlock(&s->mu);
    vg_metric_add(s->m_stored, (double)st->stored);
    vg_metric_add(s->m_dup, (double)st->duplicates);
    if (!rc) rc = vg_auditstore_sync(s, err);
    return rc;
}

/* ---- group fsync ---- */

vg_err_t vg_auditstore_sync(vg_auditstore_t *s, vg_error *err)
{
    pthread_mutex_lock(&s->mu);
    uint64_t want = s->wseq;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&s->sync_mu);
    vg_err_t rc = VG_OK;
    pthread_mutex_lock(&s->mu);
    if (s->synced < want) {
        uint64_t upto = s->wseq;
        if (s->feed && (rc = vg_feed_sync(s->feed, err))) s->failed = 1;
        for (struct vg_abucket *b = s->buckets; b && !rc; b = b->next) {
            if (!b->dirty) continue;
            b->dirty = 0;
            if (fdatasync(b->fd) != 0) {
                s->failed = 1;
                rc = vg_error_set(err, VG_EIO, "audit WAL fsync: %s", strerror(errno));
            }
        }
        if (!rc) s->synced = upto;
    }
    if (!rc && s->failed) rc = vg_error_set(err, VG_EIO, "audit WAL failed earlier; restart");
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&s->sync_mu);
    return rc;
}

/* ---- replay ---- */

static vg_err_t read_file(int fd, vg_buf *b, vg_error *err)
{
    char tmp[65536];
    for (;;) {
        ssize_t r = read(fd, tmp, sizeof(tmp));
        if (r < 0) return vg_error_set(err, VG_EIO, "audit WAL read: %s", strerror(errno));
        if (r == 0) return VG_OK;
        if (vg_buf_append(b, tmp, (size_t)r)) return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
}

/* Apply whole frames; returns the length of the good prefix. */
/* A frame's payload: ts and key, then three fields and the line, each a
 * u32 length and bytes. */
#define FRAME_MIN (16 + 4 * 4)
#define FRAME_MAX (2 * VG_AUDIT_MAX_LINE + 8192)

/* 1 when a whole frame with a matching CRC starts at p + off. */
static int frame_ok(const uint8_t *p, size_t n, size_t off)
{
    if (n - off < 8) return 0;
    uint32_t len = vg_le_get32(p + off), crc = vg_le_get32(p + off + 4);
    if (len < FRAME_MIN || len > FRAME_MAX || n - off - 8 < len) return 0;
    return vg_crc32c(0, p + off + 8, len) == crc;
}

/* The first offset after off where a good frame starts; n if none. */
static size_t resync(const uint8_t *p, size_t n, size_t off)
{
    for (size_t o = off + 1; n - o >= 8; o++)
        if (frame_ok(p, n, o)) return o;
    return n;
}

/* Apply the frames of p[0..n); returns the end of the last good one. A
 * frame that fails its CRC or does not decode, with good frames after it,
 * is damage inside the file (the records after it were acknowledged too):
 * it is skipped and counted in *bad, and replay goes on at the next good
 * frame. Bytes after the last good frame are a torn tail: a write that was
 * never acknowledged, which the caller cuts. */
static size_t replay_frames(vg_auditstore_t *s, struct vg_abucket *b, const uint8_t *p, size_t n,
                            size_t *bad, vg_err_t *rc)
{
    size_t off = 0, good = 0;
    while (n - off >= 8) {
        if (!frame_ok(p, n, off)) {
            size_t next = resync(p, n, off);
            if (next == n) break;
            (*bad)++;
            off = next;
            continue;
        }
        uint32_t len = vg_le_get32(p + off);
        vg_err_t r = frame_apply(s, b, p + off + 8, len);
        if (r == VG_ENOMEM) {
            *rc = r;
            return good;
        }
        if (r) (*bad)++;
        off += 8 + (size_t)len;
        good = off;
    }
    return good;
}

static void bucket_drop(vg_auditstore_t *s, struct vg_abucket *b, const char *path)
{
    for (struct vg_abucket **pp = &s->buckets; *pp; pp = &(*pp)->next)
        if (*pp == b) {
            *pp = b->next;
            break;
        }
    vg_abucket_free(b);
    unlink(path);
}

vg_err_t vg_audit_wal_replay_file(vg_auditstore_t *s, const char *tenant, int64_t hour,
                                  const char *path, vg_error *err)
{
    struct vg_abucket *b = NULL;
    vg_buf data;
    vg_buf_init(&data, 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vg_error_set(err, VG_EIO, "%s: %s", path, strerror(errno));
    vg_err_t rc = read_file(fd, &data, err);
    close(fd);
    if (!rc) rc = bucket_get(s, tenant, hour, &b, err);
    if (rc) goto out;
    vg_err_t arc = VG_OK;
    size_t bad = 0;
    size_t good = replay_frames(s, b, (const uint8_t *)data.data, data.len, &bad, &arc);
    if (bad) {
        vg_log_warn(COMP, "audit WAL frames damaged, skipped", "path=%s frames=%zu", path, bad);
        vg_metric_add(s->m_wal_bad, (double)bad);
    }
    if (arc) {
        rc = vg_error_set(err, arc, "out of memory replaying %s", path);
        goto out;
    }
    if (good < data.len) {
        vg_log_warn(COMP, "audit WAL torn tail cut", "path=%s good=%zu size=%zu", path, good,
                    data.len);
        if (ftruncate(b->fd, (off_t)good) != 0 || fdatasync(b->fd) != 0)
            rc = vg_error_set(err, VG_EIO, "%s: truncate: %s", path, strerror(errno));
    }
    if (!rc && b->n == 0) bucket_drop(s, b, path); /* everything was sealed already */
out:
    vg_buf_free(&data);
    return rc;
}
