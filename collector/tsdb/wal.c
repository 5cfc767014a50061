/*
 * wal.c - write-ahead log segments, group commit and replay (see wal.h).
 *
 * Why this shape:
 *  - Appenders encode and CRC their records outside any lock (vg_wal_batch)
 *    and take the mutex only to pick the series the segment has not declared
 *    yet and issue one write(2). The mutex order is the log order.
 *  - Durability is separate from writing: a position is "written" when in
 *    the page cache and "synced" once an fdatasync covered it. One syncer
 *    thread runs the fsyncs; it starts as soon as someone waits but no
 *    sooner than sync_ms after the previous one, so a busy store does at
 *    most 1000/sync_ms fsyncs a second whatever the number of writers, and
 *    an idle one answers after one fsync.
 *  - Every open starts a new segment and a new epoch (series file), so old
 *    segments are never appended to again and series refs (which change
 *    between runs) are consistent inside an epoch; replay maps them per
 *    epoch, from the series file, and resolves a series at its first sample
 *    so series whose samples are all in blocks are not rebuilt.
 *  - The series record is written (to the series file) before the samples
 *    that use it (to the segment), and fsyncs cover the series file first:
 *    an acknowledged sample always has its series on disk.
 *  - Corruption is contained: a bad CRC skips one record, a length that
 *    cannot be right ends that segment, a record cut by the end of the last
 *    segment (a crash mid-write) is cut off. All counted and logged.
 */
#include "tsdb/wal.h"

#include "tsdb/wal_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vigil/alloc.h"
#include "vigil/clock.h"
#include "vigil/crc32c.h"
#include "vigil/le.h"
#include "vigil/log.h"

#define COMP         "wal"
#define MAGIC        "VGWAL\0\0\1"
#define SMAGIC       "VGSER\0\0\1" /* a series file */
#define SERIES_FMT   "series.%08" PRIu32
#define MAGIC_LEN    8
#define HDR_LEN      8 /* u32 length, u32 crc */
#define REC_MAX      (64u << 20)
#define REC_SERIES   1
#define REC_SAMPLES  2
#define SAMPLE_LEN   24
#define SAMPLES_PER  8192 /* per samples record */
#define SEG_NAME_FMT "%08" PRIu32

/* ---- a u64 -> u64 open-addressing map (keys stored + 1, 0 = empty) ---- */

typedef vg_wal_refmap refmap;

static size_t rm_slot(const refmap *m, uint64_t k)
{
    return (size_t)((k * 0x9E3779B97F4A7C15ull) >> 17) & (m->cap - 1);
}

static void rm_clear(refmap *m)
{
    if (m->keys) memset(m->keys, 0, m->cap * sizeof(*m->keys));
    m->n = 0;
}

static void rm_free(refmap *m)
{
    vg_free(m->keys);
    vg_free(m->vals);
    memset(m, 0, sizeof(*m));
}

static uint64_t *rm_find(const refmap *m, uint64_t k)
{
    if (!m->cap) return NULL;
    for (size_t i = rm_slot(m, k);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i]) return NULL;
        if (m->keys[i] == k + 1) return &m->vals[i];
    }
}

static vg_err_t rm_put(refmap *m, uint64_t k, uint64_t v);

static vg_err_t rm_grow(refmap *m)
{
    refmap n = {.cap = m->cap ? m->cap * 2 : 1024};
    n.keys = vg_calloc(n.cap, sizeof(*n.keys));
    n.vals = vg_calloc(n.cap, sizeof(*n.vals));
    if (!n.keys || !n.vals) {
        rm_free(&n);
        return VG_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i]) rm_put(&n, m->keys[i] - 1, m->vals[i]);
    rm_free(m);
    *m = n;
    return VG_OK;
}

static vg_err_t rm_put(refmap *m, uint64_t k, uint64_t v)
{
    if ((m->n + 1) * 2 > m->cap && rm_grow(m)) return VG_ENOMEM;
    size_t i = rm_slot(m, k);
    while (m->keys[i] && m->keys[i] != k + 1) i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) m->n++;
    m->keys[i] = k + 1;
    m->vals[i] = v;
    return VG_OK;
}

/* ---- batches ---- */

void vg_wal_batch_init(vg_wal_batch *b)
{
    memset(b, 0, sizeof(*b));
    vg_buf_init(&b->samples, 0);
    b->mint = INT64_MAX;
    b->maxt = INT64_MIN;
}

void vg_wal_batch_free(vg_wal_batch *b)
{
    vg_buf_free(&b->samples);
    vg_free(b->decl);
    vg_free(b->lab);
    vg_wal_batch_init(b);
}

void vg_wal_batch_reset(vg_wal_batch *b)
{
    vg_buf_reset(&b->samples);
    b->ndecl = b->nlab = b->rec_start = b->rec_n = b->nsamples = 0;
    b->mint = INT64_MAX;
    b->maxt = INT64_MIN;
}

int vg_wal_batch_has_samples(const vg_wal_batch *b)
{
    return b->samples.len > 0;
}

/* Fill in length and CRC of the record that starts at buf->data + start. */
static void frame_close(vg_buf *buf, size_t start)
{
    uint8_t *r = (uint8_t *)buf->data + start;
    uint32_t len = (uint32_t)(buf->len - start - HDR_LEN);
    vg_le_put32(r, len);
    vg_le_put32(r + 4, vg_crc32c(0, r + HDR_LEN, len));
}

static vg_err_t frame_open(vg_buf *buf, uint8_t type)
{
    uint8_t h[HDR_LEN + 1] = {0};
    h[HDR_LEN] = type;
    return vg_buf_append(buf, h, sizeof(h));
}

static vg_err_t put_str(vg_buf *b, const char *s, int wide)
{
    size_t n = strlen(s);
    uint8_t h[4];
    if (n > (wide ? REC_MAX / 2 : 0xffffu)) return VG_ETOOLARGE;
    vg_le_put32(h, (uint32_t)n);
    vg_err_t rc = vg_buf_append(b, h, wide ? 4 : 2);
    return rc ? rc : vg_buf_append(b, s, n);
}

static vg_err_t grow_decl(vg_wal_batch *b, size_t nl)
{
    if (b->ndecl == b->capdecl) {
        size_t cap = b->capdecl ? b->capdecl * 2 : 64;
        vg_wal_decl *d = vg_realloc(b->decl, cap * sizeof(*d));
        if (!d) return VG_ENOMEM;
        b->decl = d;
        b->capdecl = cap;
    }
    if (b->nlab + nl > b->caplab) {
        size_t cap = b->caplab ? b->caplab * 2 : 512;
        while (cap < b->nlab + nl) cap *= 2;
        vg_label_t *l = vg_realloc(b->lab, cap * sizeof(*l));
        if (!l) return VG_ENOMEM;
        b->lab = l;
        b->caplab = cap;
    }
    return VG_OK;
}

vg_err_t vg_wal_batch_series(vg_wal_batch *b, uint64_t ref, const char *tenant, const vg_label_t *l,
                             size_t n)
{
    if (n > 0xffff) return VG_ETOOLARGE;
    vg_err_t rc = grow_decl(b, n);
    if (rc) return rc;
    memcpy(b->lab + b->nlab, l, n * sizeof(*l));
    b->decl[b->ndecl++] = (vg_wal_decl){ref, tenant, b->nlab, n};
    b->nlab += n;
    return VG_OK;
}

/* Append the framed series record of d to out. */
static vg_err_t encode_series(vg_buf *out, const vg_wal_decl *d, const vg_label_t *l)
{
    size_t start = out->len, tl = strlen(d->tenant);
    uint8_t h[11];
    if (tl > 255) return VG_ETOOLARGE;
    vg_err_t rc = frame_open(out, REC_SERIES);
    vg_le_put64(h, d->ref);
    h[8] = (uint8_t)tl;
    if (!rc) rc = vg_buf_append(out, h, 9);
    if (!rc) rc = vg_buf_append(out, d->tenant, tl);
    vg_le_put32(h, (uint32_t)d->n);
    if (!rc) rc = vg_buf_append(out, h, 2);
    for (size_t i = 0; i < d->n && !rc; i++) {
        rc = put_str(out, l[i].name, 0);
        if (!rc) rc = put_str(out, l[i].value, 1);
    }
    if (rc) {
        out->len = start;
        return rc;
    }
    frame_close(out, start);
    return VG_OK;
}

vg_err_t vg_wal_batch_sample(vg_wal_batch *b, uint64_t ref, int64_t ts, double v)
{
    uint8_t s[SAMPLE_LEN];
    uint64_t bits;
    if (b->rec_n == 0) {
        b->rec_start = b->samples.len;
        vg_err_t rc = frame_open(&b->samples, REC_SAMPLES);
        if (rc) return rc;
    }
    memcpy(&bits, &v, sizeof(bits));
    vg_le_put64(s, ref);
    vg_le_put64(s + 8, (uint64_t)ts);
    vg_le_put64(s + 16, bits);
    vg_err_t rc = vg_buf_append(&b->samples, s, sizeof(s));
    if (rc) return rc;
    if (ts > b->maxt) b->maxt = ts;
    if (ts < b->mint) b->mint = ts;
    b->nsamples++;
    if (++b->rec_n == SAMPLES_PER) {
        frame_close(&b->samples, b->rec_start);
        b->rec_n = 0;
    }
    return VG_OK;
}

/* ---- the log ---- */

void vg_wal_seg_path(const vg_wal_t *w, uint32_t no, char *out, size_t n)
{
    snprintf(out, n, "%s/" SEG_NAME_FMT, w->dir, no);
}

void vg_wal_series_path(const vg_wal_t *w, uint32_t epoch, char *out, size_t n)
{
    snprintf(out, n, "%s/" SERIES_FMT, w->dir, epoch);
}

int vg_wal_epoch_of(const vg_wal_t *w, uint32_t no, uint32_t *epoch)
{
    int found = 0;
    for (size_t i = 0; i < w->nepochs && w->epochs[i] <= no; i++) {
        *epoch = w->epochs[i];
        found = 1;
    }
    return found;
}

/* Add epoch to w->epochs, keeping it ascending and without repeats. */
static vg_err_t epochs_insert(vg_wal_t *w, uint32_t epoch)
{
    size_t i = w->nepochs;
    while (i && w->epochs[i - 1] > epoch) i--;
    if (i && w->epochs[i - 1] == epoch) return VG_OK;
    if (w->nepochs == w->capepochs) {
        size_t cap = w->capepochs ? w->capepochs * 2 : 16;
        uint32_t *e = vg_realloc(w->epochs, cap * sizeof(*e));
        if (!e) return VG_ENOMEM;
        w->epochs = e;
        w->capepochs = cap;
    }
    memmove(w->epochs + i + 1, w->epochs + i, (w->nepochs - i) * sizeof(*w->epochs));
    w->epochs[i] = epoch;
    w->nepochs++;
    return VG_OK;
}

/* Does a segment of epoch epochs[i] (up to the next epoch) remain? */
static int epoch_used(const vg_wal_t *w, size_t i)
{
    uint32_t lo = w->epochs[i], hi = i + 1 < w->nepochs ? w->epochs[i + 1] : UINT32_MAX;
    for (size_t k = 0; k < w->nsegs; k++)
        if (w->segs[k].no >= lo && w->segs[k].no < hi) return 1;
    return w->fd >= 0 && w->cur_no >= lo && w->cur_no < hi;
}

void vg_wal_drop_epochs(vg_wal_t *w)
{
    size_t k = 0;
    char path[4200];
    for (size_t i = 0; i < w->nepochs; i++) {
        if (w->epochs[i] != w->epoch && !epoch_used(w, i)) {
            vg_wal_series_path(w, w->epochs[i], path, sizeof(path));
            if (unlink(path) == 0 || errno == ENOENT) continue;
            vg_log_warn(COMP, "cannot delete series file", "file=%s err=%s", path, strerror(errno));
        }
        w->epochs[k++] = w->epochs[i];
    }
    w->nepochs = k;
}

static vg_err_t segs_push(vg_wal_t *w, const vg_wal_seg *sg)
{
    if (w->nsegs == w->capsegs) {
        size_t cap = w->capsegs ? w->capsegs * 2 : 16;
        vg_wal_seg *s = vg_realloc(w->segs, cap * sizeof(*s));
        if (!s) return VG_ENOMEM;
        w->segs = s;
        w->capsegs = cap;
    }
    w->segs[w->nsegs++] = *sg;
    return VG_OK;
}

void vg_wal_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

void vg_wal_segments_gauge(vg_wal_t *w)
{
    vg_metric_set(w->m_segments, (double)(w->nsegs + (w->fd >= 0)));
}

static vg_err_t write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return VG_EIO;
        c += k;
        n -= (size_t)k;
    }
    return VG_OK;
}

/* A new file holding magic, fsynced with its directory: its fd or -1. */
static int create_file(vg_wal_t *w, const char *path, const char *magic, vg_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        vg_error_set(err, VG_EIO, "wal: cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    if (write_all(fd, magic, MAGIC_LEN) || fdatasync(fd)) {
        vg_error_set(err, VG_EIO, "wal: cannot write %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    vg_wal_sync_dir(w->dir);
    return fd;
}

/* Start epoch `epoch` (the next segment's number): a new series file, and
 * every series is declared again there. Created before its first segment, so
 * a segment's epoch is always on disk. Caller holds mu (or is alone). */
static vg_err_t series_create(vg_wal_t *w, uint32_t epoch, vg_error *err)
{
    char path[4200];
    vg_wal_series_path(w, epoch, path, sizeof(path));
    int fd = create_file(w, path, SMAGIC, err);
    if (fd < 0) return VG_EIO;
    if (epochs_insert(w, epoch)) {
        close(fd);
        return vg_error_set(err, VG_ENOMEM, "wal: out of memory");
    }
    if (w->sfd >= 0) close(w->sfd);
    w->sfd = fd;
    w->epoch = epoch;
    w->sfile_size = w->sfile_synced = MAGIC_LEN;
    rm_clear(&w->declared);
    return VG_OK;
}

/* Create segment no and make it current. Caller holds mu (or is alone). */
static vg_err_t seg_create(vg_wal_t *w, uint32_t no, vg_error *err)
{
    char path[4200];
    vg_wal_seg_path(w, no, path, sizeof(path));
    int fd = create_file(w, path, MAGIC, err);
    if (fd < 0) return VG_EIO;
    w->fd = fd;
    w->cur_no = no;
    w->cur_size = MAGIC_LEN;
    w->cur_maxt = INT64_MIN;
    w->cur_mint = INT64_MAX;
    w->cur_samples = 0;
    vg_wal_segments_gauge(w);
    return VG_OK;
}

/* Close the current segment durably and start the next. Caller holds mu. */
static vg_err_t rollover(vg_wal_t *w, vg_error *err)
{
    while (w->syncing) pthread_cond_wait(&w->done, &w->mu);
    if (fdatasync(w->sfd) || fdatasync(w->fd)) {
        w->failed = VG_EIO;
        return vg_error_set(err, VG_EIO, "wal: fsync segment %" PRIu32 ": %s", w->cur_no,
                            strerror(errno));
    }
    vg_metric_inc(w->m_fsyncs);
    close(w->fd);
    w->fd = -1;
    w->synced = w->written;
    w->sfile_synced = w->sfile_size;
    pthread_cond_broadcast(&w->done);
    vg_wal_seg sg = {.no = w->cur_no,
                     .mint = w->cur_mint,
                     .maxt = w->cur_maxt,
                     .bytes = w->cur_size,
                     .samples = w->cur_samples};
    if (segs_push(w, &sg)) return vg_error_set(err, VG_ENOMEM, "wal: out of memory");
    return seg_create(w, w->cur_no + 1, err);
}

/* A new epoch from the next segment on: the current series file is closed
 * for good, so once no segment of it is left it goes, and series that are
 * gone from the store stop being carried. Caller holds mu. */
static vg_err_t rotate_epoch(vg_wal_t *w, vg_error *err)
{
    while (w->syncing) pthread_cond_wait(&w->done, &w->mu);
    if (w->failed) return vg_error_set(err, w->failed, "wal: an earlier write or fsync failed");
    if (fdatasync(w->sfd)) {
        w->failed = VG_EIO;
        return vg_error_set(err, VG_EIO, "wal: fsync series file: %s", strerror(errno));
    }
    vg_err_t rc = series_create(w, w->cur_no + 1, err);
    return rc ? rc : rollover(w, err);
}

/* The series records the epoch still needs, encoded into wbuf. The
 * samples are written from the batch itself: copying them here, under the
 * mutex, was most of the memmove in the ingest profile. */
static vg_err_t assemble(vg_wal_t *w, const vg_wal_batch *b, uint64_t *too_long)
{
    vg_err_t rc = VG_OK;
    vg_buf_reset(&w->wbuf);
    *too_long = UINT64_MAX;
    for (size_t i = 0; i < b->ndecl && !rc; i++) {
        const vg_wal_decl *d = &b->decl[i];
        if (rm_find(&w->declared, d->ref)) continue;
        rc = encode_series(&w->wbuf, d, b->lab + d->lab);
        if (rc == VG_ETOOLARGE) { /* the rest of the batch is still logged */
            *too_long = d->ref;
            rc = VG_OK;
            continue;
        }
        if (!rc) rc = rm_put(&w->declared, d->ref, 1);
    }
    if (rc) rm_clear(&w->declared); /* re-declare everything: harmless */
    return rc;
}

/* A new segment when this one would pass seg_bytes, then assemble(). A
 * series whose record cannot be encoded (a label past the format's lengths)
 * is left out, its ref in *too_long (UINT64_MAX when none): replay skips
 * its samples as undeclared, the other series' are logged. Series records
 * go to the epoch's series file, so a new segment declares nothing again. */
static vg_err_t assemble_roll(vg_wal_t *w, const vg_wal_batch *b, uint64_t *too_long, vg_error *err)
{
    if (w->cur_size > MAGIC_LEN && w->cur_size + b->samples.len > w->seg_bytes) {
        vg_err_t rc = rollover(w, err);
        if (rc) return rc;
    }
    if (assemble(w, b, too_long)) return vg_error_set(err, VG_ENOMEM, "wal: out of memory");
    return VG_OK;
}

static vg_err_t write_locked(vg_wal_t *w, const vg_wal_batch *b, uint64_t *pos, vg_error *err)
{
    if (w->failed) return vg_error_set(err, w->failed, "wal: an earlier write or fsync failed");
    uint64_t too_long;
    vg_err_t rc = assemble_roll(w, b, &too_long, err);
    if (rc) return rc;
    /* Series before samples: a reader that sees a sample finds its series. */
    if (write_all(w->sfd, w->wbuf.data, w->wbuf.len)) {
        int e = errno;
        rm_clear(&w->declared); /* re-declare everything: harmless */
        if (ftruncate(w->sfd, (off_t)w->sfile_size) || lseek(w->sfd, 0, SEEK_END) < 0)
            w->failed = VG_EIO;
        return vg_error_set(err, VG_EIO, "wal: write series file: %s", strerror(e));
    }
    w->sfile_size += w->wbuf.len;
    if (write_all(w->fd, b->samples.data, b->samples.len)) {
        int e = errno;
        if (ftruncate(w->fd, (off_t)w->cur_size) || lseek(w->fd, 0, SEEK_END) < 0)
            w->failed = VG_EIO;
        return vg_error_set(err, VG_EIO, "wal: write segment %" PRIu32 ": %s", w->cur_no,
                            strerror(e));
    }
    size_t len = w->wbuf.len + b->samples.len;
    w->cur_size += b->samples.len;
    w->written += len;
    if (b->maxt > w->cur_maxt) w->cur_maxt = b->maxt;
    if (b->mint < w->cur_mint) w->cur_mint = b->mint;
    w->cur_samples += b->nsamples;
    vg_metric_add(w->m_bytes, (double)len);
    *pos = w->written;
    if (too_long != UINT64_MAX)
        return vg_error_set(err, VG_ETOOLARGE,
                            "wal: series %" PRIu64 " has a label name over 65535 bytes or a "
                            "value over %u; its samples are not logged (shorten the label)",
                            too_long, REC_MAX / 2);
    return VG_OK;
}

vg_err_t vg_wal_write(vg_wal_t *w, vg_wal_batch *b, uint64_t *pos, vg_error *err)
{
    if (b->rec_n) frame_close(&b->samples, b->rec_start); /* the open samples record */
    pthread_mutex_lock(&w->mu);
    vg_err_t rc = write_locked(w, b, pos, err);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

vg_err_t vg_wal_sync(vg_wal_t *w, uint64_t pos, vg_error *err)
{
    pthread_mutex_lock(&w->mu);
    if (pos == VG_WAL_SYNC_ALL) pos = w->written;
    while (w->synced < pos && !w->failed && !w->stop) {
        if (w->want < pos) w->want = pos;
        pthread_cond_signal(&w->kick);
        pthread_cond_wait(&w->done, &w->mu);
    }
    vg_err_t rc = w->synced >= pos ? VG_OK : VG_EIO;
    pthread_mutex_unlock(&w->mu);
    if (rc) vg_error_set(err, rc, "wal: fsync failed or the log is closing; not durable");
    return rc;
}

static void sleep_us(int64_t us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

/* One fsync of everything written so far. Called with mu held; drops it around the fsync. */
static void sync_once(vg_wal_t *w)
{
    uint64_t target = w->written, starget = w->sfile_size;
    int fd = w->fd, sfd = starget > w->sfile_synced ? w->sfd : -1; /* new series only */
    w->syncing = 1;
    pthread_mutex_unlock(&w->mu);
    int r = (sfd >= 0 && fdatasync(sfd)) || fdatasync(fd);
    int e = errno;
    int64_t now = vg_clock_mono_us();
    pthread_mutex_lock(&w->mu);
    w->syncing = 0;
    w->last_sync_us = now;
    if (r) {
        w->failed = VG_EIO;
        vg_log_error(COMP, "fsync failed; the store refuses writes from now on",
                     "segment=%" PRIu32 " err=%s", w->cur_no, strerror(e));
    } else {
        if (target > w->synced) w->synced = target;
        if (sfd >= 0 && w->sfd == sfd && starget > w->sfile_synced) w->sfile_synced = starget;
    }
    vg_metric_inc(w->m_fsyncs);
    pthread_cond_broadcast(&w->done);
}

static void *syncer_main(void *arg)
{
    vg_wal_t *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        if (w->want <= w->synced || w->failed) {
            pthread_cond_wait(&w->kick, &w->mu);
            continue;
        }
        int64_t wait = w->last_sync_us + w->sync_ms * 1000 - vg_clock_mono_us();
        if (wait > 0) {
            pthread_mutex_unlock(&w->mu);
            sleep_us(wait);
            pthread_mutex_lock(&w->mu);
            continue;
        }
        sync_once(w);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

size_t vg_wal_truncate(vg_wal_t *w, int64_t mint)
{
    pthread_mutex_lock(&w->mu);
    int rotate = 0;
    for (size_t i = 0; i < w->nsegs; i++) {
        if (w->segs[i].maxt < mint && !w->segs[i].released) {
            w->segs[i].released = 1;
            rotate |= w->segs[i].no >= w->epoch; /* the epoch's start is in blocks */
        }
    }
    vg_error err = {0};
    if (rotate && rotate_epoch(w, &err))
        vg_log_warn(COMP, "cannot start a new series file", "err=\"%s\"", err.msg);
    size_t n = vg_wal_holds_collect(w);
    pthread_mutex_unlock(&w->mu);
    if (n) vg_wal_sync_dir(w->dir);
    vg_wal_holds_persist(w);
    return n;
}

size_t vg_wal_num_segments(vg_wal_t *w)
{
    pthread_mutex_lock(&w->mu);
    size_t n = w->nsegs + (w->fd >= 0);
    pthread_mutex_unlock(&w->mu);
    return n;
}

void vg_wal_close(vg_wal_t *w)
{
    if (!w) return;
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_broadcast(&w->kick);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->syncer, NULL);
    }
    if (w->fd >= 0) {
        if ((w->sfd < 0 || fdatasync(w->sfd) == 0) && fdatasync(w->fd) == 0) w->synced = w->written;
        close(w->fd);
    }
    if (w->sfd >= 0) close(w->sfd);
    vg_free(w->epochs);
    if (w->started) {
        pthread_cond_broadcast(&w->done);
        pthread_cond_destroy(&w->kick);
        pthread_cond_destroy(&w->done);
        pthread_mutex_destroy(&w->mu);
    }
    vg_wal_holds_free(w);
    pthread_mutex_destroy(&w->state_mu);
    rm_free(&w->declared);
    vg_buf_free(&w->wbuf);
    vg_free(w->segs);
    vg_free(w->dir);
    vg_free(w);
}

/* ---- replay ---- */

typedef struct replay {
    vg_wal_t *w;
    const vg_wal_replay_cb *cb;
    vg_wal_stats *st;
    refmap map;    /* ref in this epoch (or legacy segment) -> handle from on_series */
    refmap decl;   /* ref -> offset of its record in the epoch's series file (UINT64_MAX: used) */
    int64_t epoch; /* of the mapped series file; -1 = none */
    uint8_t *sp;   /* the mapped series file */
    size_t ssize;
    const char *file;
    int64_t mint, maxt;
    uint64_t samples; /* in this segment */
} replay;

static void corrupt(replay *r, uint64_t off, const char *why)
{
    r->st->corrupt_records++;
    vg_metric_inc(r->w->m_corrupt);
    vg_log_error(COMP, "corrupt WAL record", "file=%s offset=%" PRIu64 " reason=\"%s\"", r->file,
                 off, why);
}

/* Parse one series record payload. 0 when well formed. */
static int replay_series(replay *r, const uint8_t *p, size_t n)
{
    vg_label_t l[1024];
    size_t at = 9, used = 0;
    if (n < 11) return -1;
    uint64_t ref = vg_le_get64(p);
    size_t tl = p[8];
    if (at + tl + 2 > n) return -1;
    char tenant[256];
    memcpy(tenant, p + at, tl);
    tenant[tl] = '\0';
    at += tl;
    size_t nl = vg_le_get16(p + at);
    at += 2;
    if (nl > 1024) return -1;
    char *heap = vg_malloc(n + 2 * nl + 1); /* names and values, NUL-terminated */
    if (!heap) return -1;
    int bad = 0;
    for (size_t i = 0; i < nl && !bad; i++) {
        for (int k = 0; k < 2 && !bad; k++) {
            size_t w = k ? 4 : 2;
            if (at + w > n) {
                bad = 1;
                break;
            }
            size_t sl = k ? vg_le_get32(p + at) : vg_le_get16(p + at);
            at += w;
            if (sl > n - at) {
                bad = 1;
                break;
            }
            memcpy(heap + used, p + at, sl);
            heap[used + sl] = '\0';
            if (k)
                l[i].value = heap + used;
            else
                l[i].name = heap + used;
            used += sl + 1;
            at += sl;
        }
    }
    if (!bad && at == n) {
        uint64_t h;
        r->st->series++;
        if (!r->cb || !r->cb->on_series || r->cb->on_series(r->cb->ud, tenant, l, nl, &h) == VG_OK)
            if (r->cb && r->cb->on_series) rm_put(&r->map, ref, h);
    }
    vg_free(heap);
    return bad || at != n ? -1 : 0;
}

/* The handle of ref: declared in this segment (legacy) or already resolved,
 * else from its record in the series file, which calls on_series only now:
 * a series whose samples are all in blocks (released segments) or gone is
 * never rebuilt in the head. */
static uint64_t *resolve(replay *r, uint64_t ref)
{
    uint64_t *h = rm_find(&r->map, ref);
    if (h || !r->sp) return h;
    uint64_t *at = rm_find(&r->decl, ref);
    if (!at || *at == UINT64_MAX) return NULL;
    uint64_t off = *at;
    *at = UINT64_MAX; /* parsed once, whatever the outcome */
    uint32_t len = vg_le_get32(r->sp + off);
    const char *seg_file = r->file;
    r->file = "series file";
    if (replay_series(r, r->sp + off + HDR_LEN + 1, len - 1)) corrupt(r, off, "malformed series");
    r->file = seg_file;
    return rm_find(&r->map, ref);
}

static void series_unmap(replay *r)
{
    if (r->sp) munmap(r->sp, r->ssize);
    r->sp = NULL;
    r->ssize = 0;
    r->epoch = -1;
    rm_clear(&r->decl);
    rm_clear(&r->map);
}

/* Index the series records of one mapped series file (ref -> offset). A
 * record cut short ends it (the tail of a crash: its samples were never
 * acknowledged); a bad CRC skips one. */
static void series_index(replay *r, const uint8_t *p, size_t size)
{
    size_t off = MAGIC_LEN;
    while (size - off > HDR_LEN) {
        uint32_t len = vg_le_get32(p + off);
        if (len < 10 || len > REC_MAX || len > size - off - HDR_LEN) break;
        if (vg_crc32c(0, p + off + HDR_LEN, len) != vg_le_get32(p + off + 4))
            corrupt(r, off, "CRC mismatch in the series file; record skipped");
        else if (p[off + HDR_LEN] == REC_SERIES)
            rm_put(&r->decl, vg_le_get64(p + off + HDR_LEN + 1), off);
        off += HDR_LEN + len;
    }
}

/* Map series.<epoch> and index it. Missing or unreadable: its segments'
 * samples replay as unknown (counted). */
static void series_map(replay *r, uint32_t epoch)
{
    char path[4200];
    struct stat sb;
    series_unmap(r);
    r->epoch = epoch;
    vg_wal_series_path(r->w, epoch, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    void *p = MAP_FAILED;
    if (fd >= 0 && fstat(fd, &sb) == 0 && sb.st_size >= MAGIC_LEN)
        p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (fd >= 0) close(fd);
    if (p == MAP_FAILED || memcmp(p, SMAGIC, MAGIC_LEN)) {
        vg_log_error(COMP, "series file missing or unreadable; its segments' samples are skipped",
                     "file=%s", path);
        if (p != MAP_FAILED) munmap(p, (size_t)sb.st_size);
        return;
    }
    r->sp = p;
    r->ssize = (size_t)sb.st_size;
    const char *seg_file = r->file;
    r->file = path;
    series_index(r, r->sp, r->ssize);
    r->file = seg_file;
}

static int replay_samples(replay *r, const uint8_t *p, size_t n)
{
    if (n % SAMPLE_LEN) return -1;
    for (size_t at = 0; at < n; at += SAMPLE_LEN) {
        uint64_t ref = vg_le_get64(p + at), bits = vg_le_get64(p + at + 16);
        int64_t ts = (int64_t)vg_le_get64(p + at + 8);
        double v;
        memcpy(&v, &bits, sizeof(v));
        if (ts > r->maxt) r->maxt = ts;
        if (ts < r->mint) r->mint = ts;
        r->samples++;
        r->st->samples++;
        uint64_t *h = resolve(r, ref);
        if (!h) {
            r->st->unknown_refs++;
            continue;
        }
        if (r->cb && r->cb->on_sample) r->cb->on_sample(r->cb->ud, *h, ts, v);
    }
    return 0;
}

static void replay_record(replay *r, const uint8_t *rec, size_t len, uint64_t off)
{
    int bad = -1;
    r->st->records++;
    if (rec[0] == REC_SERIES)
        bad = replay_series(r, rec + 1, len - 1);
    else if (rec[0] == REC_SAMPLES)
        bad = replay_samples(r, rec + 1, len - 1);
    if (bad) corrupt(r, off, "malformed payload or unknown record type");
}

/* Walk the records of one mapped segment. Returns the length of the valid
 * prefix when the tail is torn, else size. */
static size_t replay_records(replay *r, const uint8_t *p, size_t size, int last)
{
    size_t off = MAGIC_LEN;
    while (off < size) {
        size_t left = size - off;
        uint32_t len = left >= HDR_LEN ? vg_le_get32(p + off) : 0;
        if (left < HDR_LEN || (len && len <= REC_MAX && len > left - HDR_LEN)) {
            if (last) return off; /* a write cut short by a crash */
            corrupt(r, off, "record runs past the end of the segment");
            return size;
        }
        if (len == 0 || len > REC_MAX) {
            corrupt(r, off, "garbage record length; rest of the segment skipped");
            return size;
        }
        if (vg_crc32c(0, p + off + HDR_LEN, len) != vg_le_get32(p + off + 4))
            corrupt(r, off, "CRC mismatch; record skipped");
        else
            replay_record(r, p + off + HDR_LEN, len, off);
        off += HDR_LEN + len;
    }
    return size;
}

static vg_err_t replay_segment(replay *r, uint32_t no, int last, vg_error *err)
{
    char path[4200];
    vg_wal_seg_path(r->w, no, path, sizeof(path));
    r->file = path;
    r->maxt = INT64_MIN;
    r->mint = INT64_MAX;
    r->samples = 0;
    uint32_t epoch = 0;
    if (!vg_wal_epoch_of(r->w, no, &epoch))
        series_unmap(r); /* written before series files: declares its own series */
    else if ((int64_t)epoch != r->epoch)
        series_map(r, epoch);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb)) {
        if (fd >= 0) close(fd);
        return vg_error_set(err, VG_EIO, "wal: cannot open %s: %s", path, strerror(errno));
    }
    size_t size = (size_t)sb.st_size, keep = size;
    const uint8_t *p = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    if (size && p == MAP_FAILED) {
        close(fd);
        return vg_error_set(err, VG_EIO, "wal: cannot map %s: %s", path, strerror(errno));
    }
    if (size < MAGIC_LEN || memcmp(p, MAGIC, MAGIC_LEN) != 0) {
        if (size >= MAGIC_LEN || !last) corrupt(r, 0, "not a WAL segment (bad magic)");
        keep = last && size < MAGIC_LEN ? 0 : size;
    } else {
        keep = replay_records(r, p, size, last);
    }
    if (size) munmap((void *)p, size);
    if (keep < size) {
        vg_log_warn(COMP, "torn WAL tail cut off", "file=%s offset=%zu bytes=%zu", path, keep,
                    size - keep);
        r->st->torn_bytes += size - keep;
        if (ftruncate(fd, (off_t)keep) || fdatasync(fd))
            vg_log_warn(COMP, "cannot truncate torn tail", "file=%s err=%s", path, strerror(errno));
    }
    close(fd);
    r->st->segments++;
    vg_wal_seg sg = {
        .no = no, .mint = r->mint, .maxt = r->maxt, .bytes = keep, .samples = r->samples};
    return segs_push(r->w, &sg) ? vg_error_set(err, VG_ENOMEM, "wal: out of memory") : VG_OK;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Segment numbers in dir, sorted. */
static vg_err_t list_segments(const char *dir, uint32_t **out, size_t *n, vg_error *err)
{
    DIR *d = opendir(dir);
    if (!d) return vg_error_set(err, VG_EIO, "wal: cannot read %s: %s", dir, strerror(errno));
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    struct dirent *e;
    vg_err_t rc = VG_OK;
    while ((e = readdir(d)) && !rc) {
        char *end;
        if (strlen(e->d_name) != 8 || e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        unsigned long no = strtoul(e->d_name, &end, 10);
        if (*end || no > UINT32_MAX - 1) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            uint32_t *g = vg_realloc(*out, cap * sizeof(*g));
            if (!g)
                rc = vg_error_set(err, VG_ENOMEM, "wal: out of memory");
            else
                *out = g;
        }
        if (!rc) (*out)[(*n)++] = (uint32_t)no;
    }
    closedir(d);
    if (*n) qsort(*out, *n, sizeof(**out), cmp_u32);
    return rc;
}

/* The series.<epoch> files of the directory into w->epochs, ascending. */
static vg_err_t list_epochs(vg_wal_t *w, vg_error *err)
{
    DIR *d = opendir(w->dir);
    struct dirent *e;
    vg_err_t rc = VG_OK;
    if (!d) return vg_error_set(err, VG_EIO, "wal: cannot read %s: %s", w->dir, strerror(errno));
    while ((e = readdir(d)) && !rc) {
        char *end;
        if (strlen(e->d_name) != 15 || strncmp(e->d_name, "series.", 7)) continue;
        unsigned long no = strtoul(e->d_name + 7, &end, 10);
        if (*end || no > UINT32_MAX - 1) continue;
        if (epochs_insert(w, (uint32_t)no)) rc = vg_error_set(err, VG_ENOMEM, "wal: out of memory");
    }
    closedir(d);
    return rc;
}

static vg_err_t replay_all(vg_wal_t *w, const vg_wal_replay_cb *cb, vg_wal_stats *st,
                           uint32_t *next, vg_error *err)
{
    uint32_t *nos = NULL;
    size_t n = 0;
    replay r = {.w = w, .cb = cb, .st = st, .epoch = -1};
    vg_err_t rc = list_segments(w->dir, &nos, &n, err);
    if (!rc) rc = list_epochs(w, err);
    for (size_t i = 0; i < n && !rc; i++) {
        const vg_wal_seg *rel = vg_wal_holds_loaded(w, nos[i]);
        if (rel && i + 1 < n) { /* in blocks already: kept for a hold, not replayed */
            st->released++;
            rc = segs_push(w, rel) ? vg_error_set(err, VG_ENOMEM, "wal: out of memory") : VG_OK;
            continue;
        }
        rc = replay_segment(&r, nos[i], i + 1 == n, err);
    }
    *next = n ? nos[n - 1] + 1 : 1;
    series_unmap(&r);
    rm_free(&r.map);
    rm_free(&r.decl);
    vg_free(nos);
    return rc;
}

static void register_metrics(vg_wal_t *w, vg_metrics_t *m)
{
    if (!m) return;
    w->m_fsyncs = vg_metrics_counter(m, "vigil_tsdb_wal_fsyncs_total",
                                     "Group fsyncs of the write-ahead log.", NULL);
    w->m_bytes = vg_metrics_counter(m, "vigil_tsdb_wal_bytes_written_total",
                                    "Bytes written to the write-ahead log.", NULL);
    w->m_corrupt = vg_metrics_counter(m, "vigil_tsdb_wal_corrupt_records_total",
                                      "WAL records skipped at replay (bad CRC, bad length).", NULL);
    w->m_replay_s = vg_metrics_gauge(m, "vigil_tsdb_wal_replay_duration_seconds",
                                     "How long the last WAL replay took.", NULL);
    w->m_segments = vg_metrics_gauge(m, "vigil_tsdb_wal_segments", "WAL segment files.", NULL);
    w->m_replayed = vg_metrics_counter(m, "vigil_tsdb_wal_replayed_samples_total",
                                       "Samples read back from the WAL at start-up.", NULL);
    w->m_held_bytes =
        vg_metrics_gauge(m, "vigil_tsdb_wal_held_bytes",
                         "Bytes of WAL segments already in blocks, kept for remote_write.", NULL);
    w->m_hold_deleted = vg_metrics_counter(
        m, "vigil_tsdb_wal_hold_overflow_segments_total",
        "Held WAL segments deleted because storage.wal_max_hold_bytes was reached.", NULL);
}

static vg_wal_t *wal_alloc(const char *dir, uint64_t segment_bytes, int64_t sync_ms)
{
    vg_wal_t *w = vg_calloc(1, sizeof(*w));
    if (!w) return NULL;
    w->fd = -1;
    w->sfd = -1;
    w->dir = vg_strdup(dir);
    w->seg_bytes = segment_bytes ? segment_bytes : VG_WAL_SEGMENT_DEFAULT;
    w->sync_ms = sync_ms > 0 ? sync_ms : VG_WAL_SYNC_MS_DEFAULT;
    w->max_hold = VG_WAL_MAX_HOLD_DEFAULT;
    vg_buf_init(&w->wbuf, 0);
    if (!w->dir || pthread_mutex_init(&w->state_mu, NULL)) {
        vg_free(w->dir);
        vg_free(w);
        return NULL;
    }
    return w;
}

static vg_err_t start_syncer(vg_wal_t *w, vg_error *err)
{
    if (pthread_mutex_init(&w->mu, NULL)) goto fail;
    if (pthread_cond_init(&w->kick, NULL)) goto fail_mu;
    if (pthread_cond_init(&w->done, NULL)) goto fail_kick;
    if (pthread_create(&w->syncer, NULL, syncer_main, w)) goto fail_done;
    w->started = 1;
    return VG_OK;
fail_done:
    pthread_cond_destroy(&w->done);
fail_kick:
    pthread_cond_destroy(&w->kick);
fail_mu:
    pthread_mutex_destroy(&w->mu);
fail:
    return vg_error_set(err, VG_EINTERNAL, "wal: cannot start the syncer thread");
}

vg_err_t vg_wal_open(const char *dir, uint64_t segment_bytes, int64_t sync_ms,
                     const vg_wal_replay_cb *cb, vg_metrics_t *m, vg_wal_stats *st, vg_wal_t **out,
                     vg_error *err)
{
    vg_wal_stats local;
    if (!st) st = &local;
    memset(st, 0, sizeof(*st));
    *out = NULL;
    if (mkdir(dir, 0755) && errno != EEXIST)
        return vg_error_set(err, VG_EIO, "wal: cannot create %s: %s", dir, strerror(errno));
    vg_wal_t *w = wal_alloc(dir, segment_bytes, sync_ms);
    if (!w) return vg_error_set(err, VG_ENOMEM, "wal: out of memory");
    register_metrics(w, m);
    int64_t t0 = vg_clock_mono_ms();
    uint32_t next;
    vg_wal_holds_load(w);
    vg_err_t rc = replay_all(w, cb, st, &next, err);
    st->duration_ms = vg_clock_mono_ms() - t0;
    vg_metric_set(w->m_replay_s, (double)st->duration_ms / 1000.0);
    vg_metric_add(w->m_replayed, (double)st->samples);
    if (!rc) rc = series_create(w, next, err);
    if (!rc) rc = seg_create(w, next, err);
    if (!rc) rc = start_syncer(w, err);
    if (rc) {
        vg_wal_close(w);
        return rc;
    }
    vg_wal_holds_persist(w); /* the loaded list, minus segments gone since */
    vg_log_info(COMP, "WAL replayed",
                "dir=%s segments=%" PRIu64 " series=%" PRIu64 " samples=%" PRIu64
                " corrupt_records=%" PRIu64 " torn_bytes=%" PRIu64 " held_segments=%" PRIu64
                " duration_ms=%" PRId64,
                dir, st->segments, st->series, st->samples, st->corrupt_records, st->torn_bytes,
                st->released, st->duration_ms);
    *out = w;
    return VG_OK;
}
