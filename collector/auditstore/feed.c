/*
 * feed.c - the audit feed (feed.h): CRC32C-framed records in rolling files.
 *
 * Frame: u32 payload length, u32 CRC32C of the payload, payload = i64 ts_ms,
 * u16 tenant length, tenant, stored JSON line (all little-endian). The
 * store writes a record's feed frame before its WAL frame and fsyncs the
 * feed before the WAL buckets, so a crash can leave a record in the feed
 * that the agent will send (and the feed will hold) again - at least once,
 * never lost.
 *
 * Readers snapshot the file list under the mutex and read without it, up to
 * the size they saw, so appends never wait on a reader's I/O. Files below
 * every registered cursor are deleted; past cap_bytes the oldest whole file
 * is dropped even if a cursor is in it (the reader sees `dropped`). The
 * active file is never deleted, so the seq sequence continues across restarts.
 */
#include "auditstore/feed.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auditstore/auditstore_int.h"
#include "vigil/alloc.h"
#include "vigil/crc32c.h"
#include "vigil/log.h"

#define FEED_MAX_PAYLOAD (64u << 20)

typedef struct feed_file {
    uint64_t first, size;
} feed_file;

typedef struct feed_reader {
    char *name;
    vg_feed_cursor cur;
} feed_reader;

struct vg_feed {
    char *dir;
    vg_feed_opts o;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    feed_file *files;
    size_t nfiles, capfiles;
    int fd; /* the last file's, O_APPEND */
    uint64_t next_seq, total;
    int dirty;
    uint64_t wakes;
    feed_reader *readers;
    size_t nreaders;
    vg_metric_t *m_corrupt, *m_dropped_files;
};

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void file_path(const vg_feed_t *f, uint64_t first, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%016" PRIx64 ".log", f->dir, first);
}

static int file_cmp(const void *a, const void *b)
{
    uint64_t x = ((const feed_file *)a)->first, y = ((const feed_file *)b)->first;
    return x < y ? -1 : x > y;
}

static vg_err_t files_push(vg_feed_t *f, uint64_t first, uint64_t size)
{
    if (f->nfiles == f->capfiles) {
        size_t nc = f->capfiles ? 2 * f->capfiles : 16;
        feed_file *n = vg_realloc(f->files, nc * sizeof(*n));
        if (!n) return VG_ENOMEM;
        f->files = n, f->capfiles = nc;
    }
    f->files[f->nfiles++] = (feed_file){first, size};
    f->total += size;
    return VG_OK;
}

static vg_err_t list_files(vg_feed_t *f, vg_error *err)
{
    DIR *d = opendir(f->dir);
    if (!d) return vg_error_set(err, VG_EIO, "audit feed: open %s: %s", f->dir, strerror(errno));
    struct dirent *e;
    vg_err_t rc = VG_OK;
    while (!rc && (e = readdir(d))) {
        char path[4200];
        unsigned long long first;
        int used = 0;
        if (strlen(e->d_name) != 20 || sscanf(e->d_name, "%16llx.log%n", &first, &used) != 1 ||
            used != 20)
            continue;
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", f->dir, e->d_name);
        if (stat(path, &st) != 0) continue;
        rc = files_push(f, first, (uint64_t)st.st_size);
    }
    closedir(d);
    if (rc) return vg_error_set(err, rc, "audit feed: out of memory");
    if (f->nfiles) qsort(f->files, f->nfiles, sizeof(*f->files), file_cmp); /* NULL when empty */
    return VG_OK;
}

/* Walk frames of p[0..n): the length of the good prefix (a torn tail stops it),
 * *count gets records (corrupt ones included, they used a seq), *bad the corrupt. */
static size_t scan_frames(const uint8_t *p, size_t n, uint64_t *count, uint64_t *bad)
{
    size_t off = 0;
    while (n - off >= 8) {
        uint32_t len = get32(p + off), crc = get32(p + off + 4);
        if (len < 10 || len > FEED_MAX_PAYLOAD || len > n - off - 8) break;
        if (vg_crc32c(0, p + off + 8, len) != crc) (*bad)++;
        (*count)++;
        off += 8 + (size_t)len;
    }
    return off;
}

static vg_err_t read_whole(const char *path, vg_buf *b, vg_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vg_error_set(err, VG_EIO, "audit feed: open %s: %s", path, strerror(errno));
    vg_err_t rc = VG_OK;
    for (;;) {
        if ((rc = vg_buf_reserve(b, 1 << 20))) break;
        ssize_t r = read(fd, b->data + b->len, b->cap - b->len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r < 0) rc = VG_EIO;
            break;
        }
        b->len += (size_t)r;
    }
    close(fd);
    return rc ? vg_error_set(err, rc, "audit feed: read %s failed", path) : VG_OK;
}

/* Recover the last file: truncate a torn tail, count records for next_seq. */
static vg_err_t recover_last(vg_feed_t *f, vg_error *err)
{
    feed_file *last = &f->files[f->nfiles - 1];
    char path[4200];
    file_path(f, last->first, path, sizeof(path));
    vg_buf b;
    vg_buf_init(&b, 0);
    vg_err_t rc = read_whole(path, &b, err);
    uint64_t count = 0, bad = 0;
    size_t good = rc ? 0 : scan_frames((const uint8_t *)b.data, b.len, &count, &bad);
    if (!rc && good < b.len) {
        vg_log_warn("auditstore", "audit feed: torn tail truncated",
                    "file=%s good_bytes=%zu dropped_bytes=%zu", path, good, b.len - good);
        if (truncate(path, (off_t)good) != 0)
            rc = vg_error_set(err, VG_EIO, "audit feed: truncate %s: %s", path, strerror(errno));
    }
    vg_buf_free(&b);
    if (rc) return rc;
    if (bad) vg_metric_add(f->m_corrupt, (double)bad);
    f->total -= last->size - good;
    last->size = good;
    f->next_seq = last->first + count;
    return VG_OK;
}

static vg_err_t open_active(vg_feed_t *f, vg_error *err)
{
    char path[4200];
    file_path(f, f->files[f->nfiles - 1].first, path, sizeof(path));
    f->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (f->fd < 0)
        return vg_error_set(err, VG_EIO, "audit feed: open %s: %s", path, strerror(errno));
    return VG_OK;
}

vg_err_t vg_feed_open(const vg_feed_opts *o, vg_feed_t **out, vg_error *err)
{
    vg_feed_t *f = vg_calloc(1, sizeof(*f));
    if (!f || !(f->dir = vg_strdup(o->dir))) {
        vg_free(f);
        return vg_error_set(err, VG_ENOMEM, "audit feed: out of memory");
    }
    f->o = *o, f->o.dir = f->dir, f->fd = -1;
    if (!f->o.roll_bytes) f->o.roll_bytes = 64u << 20;
    if (!f->o.cap_bytes) f->o.cap_bytes = 10ull << 30;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->m_corrupt = vg_metrics_counter(o->metrics, "vigil_audit_feed_corrupt_records_total",
                                      "Audit feed records skipped because their CRC failed.", NULL);
    f->m_dropped_files =
        vg_metrics_counter(o->metrics, "vigil_audit_feed_files_dropped_total",
                           "Audit feed files dropped over audit.siem_buffer_bytes.", NULL);
    vg_err_t rc = vg_audit_mkdirs(f->dir, err);
    if (!rc) rc = list_files(f, err);
    if (!rc && f->nfiles) rc = recover_last(f, err);
    if (!rc && !f->nfiles && (rc = files_push(f, 0, 0)))
        rc = vg_error_set(err, rc, "audit feed: out of memory");
    if (!rc) rc = open_active(f, err);
    if (rc) {
        vg_feed_free(f);
        return rc;
    }
    *out = f;
    return VG_OK;
}

void vg_feed_free(vg_feed_t *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    for (size_t i = 0; i < f->nreaders; i++) vg_free(f->readers[i].name);
    vg_free(f->readers);
    vg_free(f->files);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    vg_free(f->dir);
    vg_free(f);
}

/* ---- append ---- */

static vg_err_t roll_locked(vg_feed_t *f, vg_error *err)
{
    if (fdatasync(f->fd) != 0)
        return vg_error_set(err, VG_EIO, "audit feed: fsync: %s", strerror(errno));
    close(f->fd);
    f->fd = -1, f->dirty = 0;
    if (files_push(f, f->next_seq, 0)) return vg_error_set(err, VG_ENOMEM, "out of memory");
    vg_err_t rc = open_active(f, err);
    if (!rc) vg_audit_fsync_dir(f->dir);
    return rc;
}

/* Past cap_bytes: drop the oldest files (never the active one). */
static void cap_locked(vg_feed_t *f)
{
    while (f->total > f->o.cap_bytes && f->nfiles > 1) {
        char path[4200];
        file_path(f, f->files[0].first, path, sizeof(path));
        vg_log_warn("auditstore", "audit feed over audit.siem_buffer_bytes: oldest file dropped",
                    "file=%s bytes=%" PRIu64 " cap=%" PRIu64, path, f->files[0].size,
                    f->o.cap_bytes);
        unlink(path);
        f->total -= f->files[0].size;
        memmove(f->files, f->files + 1, (f->nfiles - 1) * sizeof(*f->files));
        f->nfiles--;
        vg_metric_inc(f->m_dropped_files);
    }
}

vg_err_t vg_feed_append(vg_feed_t *f, const char *tenant, int64_t ts_ms, const char *line,
                        size_t len, vg_error *err)
{
    size_t tl = strlen(tenant);
    if (tl > 65535 || len > FEED_MAX_PAYLOAD - 10 - tl)
        return vg_error_set(err, VG_ETOOLARGE, "audit feed: record too large");
    size_t plen = 10 + tl + len;
    uint8_t *fr = vg_malloc(8 + plen);
    if (!fr) return vg_error_set(err, VG_ENOMEM, "audit feed: out of memory");
    uint64_t ts = (uint64_t)ts_ms;
    for (int i = 0; i < 8; i++) fr[8 + i] = (uint8_t)(ts >> (8 * i));
    fr[16] = (uint8_t)tl, fr[17] = (uint8_t)(tl >> 8);
    memcpy(fr + 18, tenant, tl);
    memcpy(fr + 18 + tl, line, len);
    put32(fr, (uint32_t)plen);
    put32(fr + 4, vg_crc32c(0, fr + 8, plen));
    vg_err_t rc = VG_OK;
    pthread_mutex_lock(&f->mu);
    feed_file *last = &f->files[f->nfiles - 1];
    if (last->size && last->size + 8 + plen > f->o.roll_bytes) rc = roll_locked(f, err);
    last = &f->files[f->nfiles - 1];
    if (!rc && write(f->fd, fr, 8 + plen) != (ssize_t)(8 + plen))
        rc = vg_error_set(err, VG_EIO, "audit feed: write: %s", strerror(errno));
    if (!rc) {
        last->size += 8 + plen, f->total += 8 + plen;
        f->next_seq++, f->dirty = 1;
        cap_locked(f);
        pthread_cond_broadcast(&f->cv);
    }
    pthread_mutex_unlock(&f->mu);
    vg_free(fr);
    return rc;
}

vg_err_t vg_feed_sync(vg_feed_t *f, vg_error *err)
{
    pthread_mutex_lock(&f->mu);
    int dirty = f->dirty, fd = dup(f->fd);
    f->dirty = 0;
    pthread_mutex_unlock(&f->mu);
    if (fd < 0) return vg_error_set(err, VG_EIO, "audit feed: dup: %s", strerror(errno));
    int r = dirty ? fdatasync(fd) : 0;
    close(fd);
    if (r != 0) return vg_error_set(err, VG_EIO, "audit feed: fsync: %s", strerror(errno));
    return VG_OK;
}

uint64_t vg_feed_next_seq(vg_feed_t *f)
{
    pthread_mutex_lock(&f->mu);
    uint64_t s = f->next_seq;
    pthread_mutex_unlock(&f->mu);
    return s;
}

/* ---- read ---- */

typedef struct feed_snap {
    uint64_t first, size, next_first;
    int has_next;
} feed_snap;

/* Find c's file (moving c to the oldest file when its file was dropped). */
static void locate(vg_feed_t *f, vg_feed_cursor *c, vg_feed_batch *b, feed_snap *s)
{
    pthread_mutex_lock(&f->mu);
    size_t i = 0;
    while (i + 1 < f->nfiles && f->files[i + 1].first <= c->file) i++;
    if (f->files[i].first != c->file || c->seq < f->files[i].first) {
        if (f->files[i].first > c->seq) b->dropped += f->files[i].first - c->seq;
        c->file = f->files[i].first, c->off = 0, c->seq = f->files[i].first;
    }
    s->first = f->files[i].first, s->size = f->files[i].size;
    s->has_next = i + 1 < f->nfiles;
    s->next_first = s->has_next ? f->files[i + 1].first : 0;
    pthread_mutex_unlock(&f->mu);
}

static vg_err_t batch_push(vg_feed_batch *b, const uint8_t *p, size_t plen)
{
    if (b->n == b->cap) {
        size_t nc = b->cap ? 2 * b->cap : 64;
        vg_siem_rec *n = vg_realloc(b->recs, nc * sizeof(*n));
        if (!n) return VG_ENOMEM;
        b->recs = n, b->cap = nc;
    }
    uint64_t ts = 0;
    for (int i = 0; i < 8; i++) ts |= (uint64_t)p[i] << (8 * i);
    size_t tl = (size_t)p[8] | (size_t)p[9] << 8;
    if (tl > plen - 10) return VG_ECORRUPT;
    size_t at = b->data.len;
    vg_err_t rc = vg_buf_append(&b->data, p + 10, tl);
    if (!rc) rc = vg_buf_putc(&b->data, 0);
    if (!rc) rc = vg_buf_append(&b->data, p + 10 + tl, plen - 10 - tl);
    if (!rc) rc = vg_buf_putc(&b->data, 0);
    if (rc) return rc;
    /* offsets for now: the buffer may move; fixed up in vg_feed_read */
    b->recs[b->n++] = (vg_siem_rec){(const char *)(uintptr_t)at, (int64_t)ts,
                                    (const char *)(uintptr_t)(at + tl + 1), plen - 10 - tl};
    return VG_OK;
}

/* Read frames of one file from c->off up to s->size. */
static vg_err_t read_file_frames(vg_feed_t *f, vg_feed_cursor *c, const feed_snap *s, size_t max,
                                 vg_feed_batch *b, vg_buf *pl, vg_error *err)
{
    char path[4200];
    file_path(f, s->first, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { /* dropped under us: the next locate() moves on */
        c->off = s->size;
        return VG_OK;
    }
    vg_err_t rc = VG_OK;
    while (!rc && b->n < max && c->off + 8 <= s->size) {
        uint8_t h[8];
        if (pread(fd, h, 8, (off_t)c->off) != 8) break;
        uint32_t len = get32(h), crc = get32(h + 4);
        if (len < 10 || len > FEED_MAX_PAYLOAD || len > s->size - c->off - 8) {
            b->corrupt++; /* frame length unusable: the rest of the file is lost */
            c->off = s->size;
            break;
        }
        vg_buf_reset(pl);
        if ((rc = vg_buf_reserve(pl, len))) break;
        if (pread(fd, pl->data, len, (off_t)(c->off + 8)) != (ssize_t)len) {
            rc = vg_error_set(err, VG_EIO, "audit feed: read %s: short read", path);
            break;
        }
        if (vg_crc32c(0, pl->data, len) != crc)
            b->corrupt++;
        else if ((rc = batch_push(b, (const uint8_t *)pl->data, len)) == VG_ECORRUPT)
            b->corrupt++, rc = VG_OK;
        c->off += 8 + (uint64_t)len, c->seq++;
    }
    close(fd);
    if (rc == VG_ENOMEM) rc = vg_error_set(err, rc, "audit feed: out of memory");
    return rc;
}

vg_err_t vg_feed_read(vg_feed_t *f, const vg_feed_cursor *from, size_t max, vg_feed_batch *b,
                      vg_error *err)
{
    vg_feed_cursor c = *from;
    vg_buf pl;
    vg_buf_init(&pl, 0);
    b->n = 0, b->dropped = 0, b->corrupt = 0;
    if (!b->data.max) vg_buf_init(&b->data, 0); /* a zeroed batch */
    vg_buf_reset(&b->data);
    vg_err_t rc = VG_OK;
    for (;;) {
        feed_snap s;
        locate(f, &c, b, &s);
        rc = read_file_frames(f, &c, &s, max, b, &pl, err);
        if (rc || b->n >= max || c.off < s.size || !s.has_next) break;
        c.file = s.next_first, c.off = 0; /* locate() resyncs seq if it disagrees */
        if (c.seq != s.next_first) c.seq = s.next_first;
    }
    vg_buf_free(&pl);
    for (size_t i = 0; i < b->n; i++) {
        b->recs[i].tenant = b->data.data + (uintptr_t)b->recs[i].tenant;
        b->recs[i].line = b->data.data + (uintptr_t)b->recs[i].line;
    }
    if (b->corrupt) vg_metric_add(f->m_corrupt, (double)b->corrupt);
    b->next = c;
    return rc;
}

void vg_feed_batch_free(vg_feed_batch *b)
{
    vg_free(b->recs);
    vg_buf_free(&b->data);
    memset(b, 0, sizeof(*b));
}

int vg_feed_wait(vg_feed_t *f, const vg_feed_cursor *c, int64_t timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (timeout_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
    pthread_mutex_lock(&f->mu);
    uint64_t w = f->wakes;
    while (f->next_seq <= c->seq && f->wakes == w)
        if (pthread_cond_timedwait(&f->cv, &f->mu, &ts) == ETIMEDOUT) break;
    int more = f->next_seq > c->seq;
    pthread_mutex_unlock(&f->mu);
    return more;
}

void vg_feed_wake(vg_feed_t *f)
{
    pthread_mutex_lock(&f->mu);
    f->wakes++;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* ---- cursors ---- */

static void cursor_name(const char *name, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap, "cursor-");
    for (const char *p = name; *p && o + 1 < cap; p++)
        out[o++] = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                           (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'
                       ? *p
                       : '_';
    out[o] = 0;
}

static feed_reader *reader_find(vg_feed_t *f, const char *name)
{
    for (size_t i = 0; i < f->nreaders; i++)
        if (!strcmp(f->readers[i].name, name)) return &f->readers[i];
    return NULL;
}

static vg_err_t reader_add(vg_feed_t *f, const char *name, const vg_feed_cursor *c)
{
    feed_reader *r = reader_find(f, name);
    if (!r) {
        feed_reader *n = vg_realloc(f->readers, (f->nreaders + 1) * sizeof(*n));
        if (!n) return VG_ENOMEM;
        f->readers = n;
        r = &f->readers[f->nreaders];
        if (!(r->name = vg_strdup(name))) return VG_ENOMEM;
        f->nreaders++;
    }
    r->cur = *c;
    return VG_OK;
}

vg_err_t vg_feed_cursor_load(vg_feed_t *f, const char *name, vg_feed_cursor *c, vg_error *err)
{
    char fn[300], path[4500];
    cursor_name(name, fn, sizeof(fn));
    snprintf(path, sizeof(path), "%s/%s", f->dir, fn);
    unsigned long long a = 0, b = 0, s = 0;
    FILE *fp = fopen(path, "re");
    int ok = fp && fscanf(fp, "%llu %llu %llu", &a, &b, &s) == 3;
    if (fp) fclose(fp);
    pthread_mutex_lock(&f->mu);
    if (!ok || s > f->next_seq) /* none yet, or from a feed that is gone */
        a = f->files[0].first, b = 0, s = f->files[0].first;
    *c = (vg_feed_cursor){a, b, s};
    vg_err_t rc = reader_add(f, name, c);
    pthread_mutex_unlock(&f->mu);
    return rc ? vg_error_set(err, rc, "audit feed: out of memory") : VG_OK;
}

/* Delete files every registered cursor has passed (never the active one). */
static void gc_locked(vg_feed_t *f)
{
    uint64_t min = UINT64_MAX;
    for (size_t i = 0; i < f->nreaders; i++)
        if (f->readers[i].cur.file < min) min = f->readers[i].cur.file;
    while (f->nfiles > 1 && f->files[1].first <= min) {
        char path[4200];
        file_path(f, f->files[0].first, path, sizeof(path));
        unlink(path);
        f->total -= f->files[0].size;
        memmove(f->files, f->files + 1, (f->nfiles - 1) * sizeof(*f->files));
        f->nfiles--;
    }
}

vg_err_t vg_feed_cursor_save(vg_feed_t *f, const char *name, const vg_feed_cursor *c, vg_error *err)
{
    char fn[300], txt[100];
    cursor_name(name, fn, sizeof(fn));
    int n = snprintf(txt, sizeof(txt), "%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", c->file, c->off,
                     c->seq);
    vg_err_t rc = vg_audit_write_atomic(f->dir, fn, txt, (size_t)n, err);
    if (rc) return rc;
    pthread_mutex_lock(&f->mu);
    rc = reader_add(f, name, c);
    if (!rc) gc_locked(f);
    pthread_mutex_unlock(&f->mu);
    return rc ? vg_error_set(err, rc, "audit feed: out of memory") : VG_OK;
}

vg_err_t vg_feed_forget_unknown(vg_feed_t *f, vg_error *err)
{
    DIR *d = opendir(f->dir);
    if (!d) return vg_error_set(err, VG_EIO, "audit feed: open %s: %s", f->dir, strerror(errno));
    struct dirent *e;
    pthread_mutex_lock(&f->mu);
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "cursor-", 7) || strchr(e->d_name, '.') == e->d_name) continue;
        int known = 0;
        for (size_t i = 0; i < f->nreaders && !known; i++) {
            char fn[300];
            cursor_name(f->readers[i].name, fn, sizeof(fn));
            known = !strcmp(fn, e->d_name);
        }
        if (known) continue;
        char path[4500];
        snprintf(path, sizeof(path), "%s/%s", f->dir, e->d_name);
        vg_log_info("auditstore", "audit feed: cursor of an output no longer configured removed",
                    "file=%s", path);
        unlink(path);
    }
    gc_locked(f);
    pthread_mutex_unlock(&f->mu);
    closedir(d);
    return VG_OK;
}
