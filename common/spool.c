/*
 * spool.c - a persistent FIFO of CRC-framed records in segment files.
 *
 * Shape, and why:
 *  - Segments, not one file: the queue is consumed at the head and grown at
 *    the tail, and deleting a whole consumed (or, when full, dropped)
 *    segment is the only way to give disk space back without rewriting.
 *    Naming a segment by its first record id orders them with a directory
 *    listing and lets open() resume without an index file.
 *  - One small `cursor` file (id of the first unacknowledged record),
 *    replaced by rename, is the only mutable metadata. Everything else can
 *    be rebuilt from the segments, so there is nothing to get out of step.
 *  - Every record carries its id, so a cursor that lands mid-segment after a
 *    restart just skips the ids below it; record ids also tell a real record
 *    from a look-alike inside a damaged region when re-synchronising.
 *  - open() validates everything (CRC32C runs at several GB/s, so 1 GiB
 *    costs well under a second). A bad region is skipped by searching for the
 *    next valid frame; bad bytes with nothing valid after them are a torn
 *    tail and are cut off, so the next append does not land behind garbage.
 *    Damage is counted, never fatal: a crash loop or a stuck queue would
 *    lose more data than the damaged record holds.
 *  - A failed write is cut back with ftruncate, so a full disk never leaves
 *    half a record in the middle of the queue.
 */
#include "vigil/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vigil/alloc.h"
#include "vigil/buf.h"
#include "vigil/clock.h"
#include "vigil/crc32c.h"
#include "vigil/le.h"
#include "vigil/log.h"

#define MAGIC       0x4c505356u /* "VSPL" as little-endian bytes */
#define HDR         12u         /* magic, length, crc */
#define META        20u         /* version, kind, tenant length, reserved, id, seq */
#define VERSION     1u
#define MAX_PAYLOAD (META + VG_SPOOL_MAX_TENANT + VG_SPOOL_MAX_RECORD)
#define SCAN_CHUNK  65536u
#define CURSOR_MAG  0x52435356u /* "VSCR" */
#define NOT_FOUND   UINT64_MAX

struct seg {
    uint64_t first_id; /* from the file name */
    uint64_t next_id;  /* one past the last valid record's id */
    uint64_t nrec;     /* valid records in the file */
    uint64_t size;     /* bytes in the file */
    uint64_t scanned;  /* bytes the open scan validated (damage there is already counted) */
};

struct spool_metrics {
    vg_metric_t *bytes, *records, *dropped, *corrupt, *torn, *appended, *acked;
};

struct vg_spool {
    char *dir;
    uint64_t max_bytes, seg_bytes;
    vg_spool_full full;
    int64_t sync_ms, last_sync_ms;
    struct seg *segs; /* oldest first; the last one takes appends */
    size_t nsegs, cap;
    int wfd, rfd, dfd;
    uint64_t roff; /* read offset in segs[0] */
    uint64_t next_id, cursor, pending, bytes;
    int peeked, data_dirty, cursor_dirty;
    uint64_t peek_id, peek_end;
    uint64_t dropped, corrupt, torn, max_seq;
    vg_buf buf; /* one record's payload */
    char tenant[VG_SPOOL_MAX_TENANT + 1];
    struct spool_metrics m;
};

/* A parsed frame. */
struct frame {
    uint8_t kind;
    uint64_t id, seq, end; /* end = offset just past the frame */
    size_t tlen, dlen;
};

enum rd { RD_OK, RD_SHORT, RD_BAD, RD_IOERR, RD_NOMEM };

/* ---- little helpers ---- */

static void seg_path(const vg_spool_t *s, uint64_t first_id, char *out, size_t n)
{
    snprintf(out, n, "%s/%020" PRIu64 ".seg", s->dir, first_id);
}

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static int full_pread(int fd, void *p, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)p + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

static int full_write(int fd, const void *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, (const char *)p + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        done += (size_t)w;
    }
    return 0;
}

static void update_gauges(vg_spool_t *s)
{
    vg_metric_set(s->m.bytes, (double)s->bytes);
    vg_metric_set(s->m.records, (double)s->pending);
}

/* ---- small files and directories ---- */

vg_err_t vg_spool_mkdirs(const char *path, vg_error *err)
{
    char p[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(p)) return vg_error_set(err, VG_EINVAL, "spool: bad path");
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0750) != 0 && errno != EEXIST)
            return vg_error_set(err, VG_EIO, "spool: cannot create %s: %s", p, strerror(errno));
        p[i] = c;
    }
    return VG_OK;
}

vg_err_t vg_spool_write_file(const char *path, const void *data, size_t len, int do_sync,
                             vg_error *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return vg_error_set(err, VG_EINVAL, "spool: path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return vg_error_set(err, VG_EIO, "spool: cannot write %s: %s", tmp, strerror(errno));
    int bad = full_write(fd, data, len) || (do_sync && fsync(fd) != 0);
    int saved = errno;
    if (close(fd) != 0) bad = 1;
    if (!bad && rename(tmp, path) == 0) return VG_OK;
    if (!bad) saved = errno;
    unlink(tmp);
    return vg_error_set(err, VG_EIO, "spool: cannot replace %s: %s", path, strerror(saved));
}

vg_err_t vg_spool_read_file(const char *path, void *buf, size_t cap, size_t *len, vg_error *err)
{
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return VG_ENOTFOUND;
        return vg_error_set(err, VG_EIO, "spool: cannot read %s: %s", path, strerror(errno));
    }
    vg_err_t rc = VG_OK;
    size_t got = 0;
    for (;;) {
        char extra;
        ssize_t r = got < cap ? read(fd, (char *)buf + got, cap - got) : read(fd, &extra, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) rc = vg_error_set(err, VG_EIO, "spool: read %s: %s", path, strerror(errno));
        if (r > 0 && got == cap) rc = vg_error_set(err, VG_ETOOLARGE, "spool: %s too big", path);
        if (r <= 0 || rc) break;
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return rc;
}

/* ---- the cursor file: magic, crc32c of the id, id ---- */

static void cursor_path(const vg_spool_t *s, char *out, size_t n)
{
    snprintf(out, n, "%s/cursor", s->dir);
}

static uint64_t cursor_load(const vg_spool_t *s)
{
    char path[PATH_MAX];
    uint8_t b[16];
    size_t n = 0;
    cursor_path(s, path, sizeof(path));
    if (vg_spool_read_file(path, b, sizeof(b), &n, NULL) || n != sizeof(b)) return 0;
    if (vg_le_get32(b) != CURSOR_MAG || vg_le_get32(b + 4) != vg_crc32c(0, b + 8, 8)) return 0;
    return vg_le_get64(b + 8);
}

static vg_err_t cursor_store(vg_spool_t *s, int do_sync, vg_error *err)
{
    char path[PATH_MAX];
    uint8_t b[16];
    vg_le_put32(b, CURSOR_MAG);
    vg_le_put64(b + 8, s->cursor);
    vg_le_put32(b + 4, vg_crc32c(0, b + 8, 8));
    cursor_path(s, path, sizeof(path));
    vg_err_t rc = vg_spool_write_file(path, b, sizeof(b), do_sync, err);
    if (!rc) s->cursor_dirty = 0;
    return rc;
}

/* ---- frames ---- */

static enum rd parse_meta(vg_spool_t *s, uint32_t len, uint64_t min_id, uint64_t end,
                          struct frame *f)
{
    const uint8_t *p = (const uint8_t *)s->buf.data;
    if (p[0] != VERSION || (size_t)META + p[2] > len) return RD_BAD;
    f->kind = p[1];
    f->tlen = p[2];
    f->id = vg_le_get64(p + 4);
    f->seq = vg_le_get64(p + 12);
    f->dlen = len - META - f->tlen;
    f->end = end;
    if (f->id < min_id || f->id == UINT64_MAX) return RD_BAD;
    return RD_OK;
}

/* Read and check the frame at off of a file that ends at end; the payload
 * lands in s->buf. Ids below min_id cannot be real records here. */
static enum rd read_frame(vg_spool_t *s, int fd, uint64_t off, uint64_t end, uint64_t min_id,
                          struct frame *f)
{
    uint8_t h[HDR];
    if (end < off || end - off < HDR) return RD_SHORT;
    if (full_pread(fd, h, HDR, off)) return RD_IOERR;
    uint32_t len = vg_le_get32(h + 4);
    if (vg_le_get32(h) != MAGIC || len < META || len > MAX_PAYLOAD) return RD_BAD;
    if (end - off - HDR < len) return RD_SHORT;
    vg_buf_reset(&s->buf);
    if (vg_buf_reserve(&s->buf, len)) return RD_NOMEM;
    if (full_pread(fd, s->buf.data, len, off + HDR)) return RD_IOERR;
    s->buf.len = len;
    if (vg_crc32c(vg_crc32c(0, h, 8), s->buf.data, len) != vg_le_get32(h + 8)) return RD_BAD;
    return parse_meta(s, len, min_id, off + HDR + len, f);
}

/* First offset >= from holding a valid frame, or NOT_FOUND. *why is set when
 * the search itself failed (I/O, memory). */
static uint64_t find_next(vg_spool_t *s, int fd, uint64_t from, uint64_t end, uint64_t min_id,
                          struct frame *f, enum rd *why)
{
    uint8_t chunk[16384];
    *why = RD_OK;
    for (uint64_t pos = from; pos < end && end - pos >= HDR;) {
        size_t n = end - pos < sizeof(chunk) ? (size_t)(end - pos) : sizeof(chunk);
        if (full_pread(fd, chunk, n, pos)) {
            *why = RD_IOERR;
            return NOT_FOUND;
        }
        for (size_t i = 0; i + 4 <= n; i++) {
            if (vg_le_get32(chunk + i) != MAGIC) continue;
            enum rd r = read_frame(s, fd, pos + i, end, min_id, f);
            if (r == RD_OK) return pos + i;
            if (r == RD_IOERR || r == RD_NOMEM) {
                *why = r;
                return NOT_FOUND;
            }
        }
        pos += n - 3; /* overlap: a magic across the boundary is still seen */
    }
    return NOT_FOUND;
}

static vg_err_t rd_error(enum rd r, const char *path, vg_error *err)
{
    if (r == RD_NOMEM) return vg_error_set(err, VG_ENOMEM, "spool: out of memory reading %s", path);
    return vg_error_set(err, VG_EIO, "spool: cannot read %s: %s", path, strerror(errno));
}

/* ---- segments ---- */

static vg_err_t segs_push(vg_spool_t *s, uint64_t first_id)
{
    if (s->nsegs == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 8;
        struct seg *p = vg_realloc(s->segs, ncap * sizeof(*p));
        if (!p) return VG_ENOMEM;
        s->segs = p;
        s->cap = ncap;
    }
    struct seg *g = &s->segs[s->nsegs++];
    memset(g, 0, sizeof(*g));
    g->first_id = g->next_id = first_id;
    return VG_OK;
}

/* Unlink segs[0] and forget it (the reader moves to the next one). */
static void remove_first(vg_spool_t *s)
{
    char path[PATH_MAX];
    seg_path(s, s->segs[0].first_id, path, sizeof(path));
    if (unlink(path) != 0 && errno != ENOENT)
        vg_log_warn("spool", "cannot delete consumed segment", "path=%s err=%s", path,
                    strerror(errno));
    s->bytes -= s->segs[0].size;
    if (s->nsegs == 1) close_fd(&s->wfd);
    memmove(s->segs, s->segs + 1, (s->nsegs - 1) * sizeof(*s->segs));
    s->nsegs--;
    close_fd(&s->rfd);
    s->roff = 0;
    s->peeked = 0;
    update_gauges(s);
}

/* A bad frame at off of a segment: skip to the next valid frame, or cut the
 * tail when there is none. Returns the offset to continue at (the new end when
 * cut). count: whether damage here is new (not seen by an earlier scan). */
static vg_err_t skip_damage(vg_spool_t *s, int fd, struct seg *g, uint64_t off, enum rd r,
                            int count, uint64_t *next)
{
    struct frame f;
    enum rd why;
    char path[PATH_MAX];
    seg_path(s, g->first_id, path, sizeof(path));
    uint64_t at = find_next(s, fd, off + 1, g->size, g->first_id, &f, &why);
    if (why) return rd_error(why, path, NULL);
    if (at != NOT_FOUND) {
        if (count) s->corrupt++, vg_metric_inc(s->m.corrupt);
        if (count)
            vg_log_warn("spool", "skipping corrupt record",
                        "path=%s offset=%" PRIu64 " skip=%" PRIu64, path, off, at - off);
        *next = at;
        return VG_OK;
    }
    *next = g->size;
    if (!count) return VG_OK;
    if (r == RD_SHORT)
        s->torn++, vg_metric_inc(s->m.torn);
    else
        s->corrupt++, vg_metric_inc(s->m.corrupt);
    vg_log_warn("spool", r == RD_SHORT ? "truncating torn tail" : "truncating corrupt tail",
                "path=%s offset=%" PRIu64 " bytes=%" PRIu64, path, off, g->size - off);
    if (ftruncate(fd, (off_t)off) != 0)
        return vg_error_set(NULL, VG_EIO, "spool: truncate %s: %s", path, strerror(errno));
    s->bytes -= g->size - off;
    g->size = off;
    *next = off;
    return VG_OK;
}

/* Validate one segment file, counting records and damage, cutting a torn tail. */
static vg_err_t scan_seg(vg_spool_t *s, struct seg *g, vg_error *err)
{
    char path[PATH_MAX];
    struct stat st;
    vg_err_t rc = VG_OK;
    seg_path(s, g->first_id, path, sizeof(path));
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = vg_error_set(err, VG_EIO, "spool: cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    g->size = (uint64_t)st.st_size;
    s->bytes += g->size;
    for (uint64_t off = 0; off < g->size && !rc;) {
        struct frame f;
        enum rd r = read_frame(s, fd, off, g->size, g->next_id, &f);
        if (r == RD_OK) {
            g->nrec++;
            g->next_id = f.id + 1;
            if (f.id >= s->cursor) s->pending++;
            if (f.seq > s->max_seq) s->max_seq = f.seq;
            off = f.end;
        } else if (r == RD_IOERR || r == RD_NOMEM) {
            rc = rd_error(r, path, err);
        } else if ((rc = skip_damage(s, fd, g, off, r, 1, &off))) {
            vg_error_set(err, rc, "spool: cannot repair %s", path);
        }
    }
    g->scanned = g->size;
out:
    if (fd >= 0) close(fd);
    return rc;
}

static int seg_name(const char *name, uint64_t *id)
{
    size_t n = strlen(name);
    if (n != 24 || strcmp(name + 20, ".seg") != 0) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9') return 0;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return 0;
        v = v * 10 + d;
    }
    *id = v;
    return 1;
}

static int cmp_seg(const void *a, const void *b)
{
    const struct seg *x = a, *y = b;
    return x->first_id < y->first_id ? -1 : x->first_id > y->first_id;
}

static vg_err_t list_segs(vg_spool_t *s, vg_error *err)
{
    DIR *d = opendir(s->dir);
    if (!d) return vg_error_set(err, VG_EIO, "spool: cannot list %s: %s", s->dir, strerror(errno));
    vg_err_t rc = VG_OK;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        uint64_t id;
        if (seg_name(e->d_name, &id) && id != UINT64_MAX && segs_push(s, id))
            rc = vg_error_set(err, VG_ENOMEM, "spool: out of memory");
    }
    closedir(d);
    if (s->nsegs) qsort(s->segs, s->nsegs, sizeof(*s->segs), cmp_seg);
    return rc;
}

/* Drop segments before the last that hold nothing left to read. */
static void prune_consumed(vg_spool_t *s)
{
    while (s->nsegs > 1 && (s->segs[0].nrec == 0 || s->segs[0].next_id <= s->cursor))
        remove_first(s);
}

static vg_err_t recover(vg_spool_t *s, vg_error *err)
{
    vg_err_t rc = list_segs(s, err);
    s->cursor = cursor_load(s);
    for (size_t i = 0; i < s->nsegs && !rc; i++) rc = scan_seg(s, &s->segs[i], err);
    if (rc) return rc;
    prune_consumed(s);
    s->next_id = s->cursor > 1 ? s->cursor : 1;
    for (size_t i = 0; i < s->nsegs; i++)
        if (s->segs[i].next_id > s->next_id) s->next_id = s->segs[i].next_id;
    update_gauges(s);
    return VG_OK;
}

/* ---- appending ---- */

static int want_sync(const vg_spool_t *s)
{
    return s->sync_ms == 0;
}

static vg_err_t sync_dir(vg_spool_t *s)
{
    if (s->dfd < 0) s->dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return s->dfd >= 0 && fsync(s->dfd) == 0 ? VG_OK : VG_EIO;
}

/* Start a new segment whose first record will be next_id. */
static vg_err_t new_segment(vg_spool_t *s, vg_error *err)
{
    char path[PATH_MAX];
    if (s->wfd >= 0 && s->data_dirty && s->sync_ms >= 0 && fdatasync(s->wfd) == 0)
        s->data_dirty = 0;
    close_fd(&s->wfd);
    if (segs_push(s, s->next_id)) return vg_error_set(err, VG_ENOMEM, "spool: out of memory");
    seg_path(s, s->next_id, path, sizeof(path));
    s->wfd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
    if (s->wfd < 0) {
        s->nsegs--;
        return vg_error_set(err, VG_EIO, "spool: cannot create %s: %s", path, strerror(errno));
    }
    if (want_sync(s) && sync_dir(s))
        vg_log_warn("spool", "cannot fsync spool directory", "dir=%s err=%s", s->dir,
                    strerror(errno));
    return VG_OK;
}

/* The tail segment, open for appending, with room for need bytes. */
static vg_err_t writer_for(vg_spool_t *s, uint64_t need, vg_error *err)
{
    struct seg *g = s->nsegs ? &s->segs[s->nsegs - 1] : NULL;
    if (!g || (g->size && g->size + need > s->seg_bytes)) return new_segment(s, err);
    if (s->wfd >= 0) return VG_OK;
    char path[PATH_MAX];
    seg_path(s, g->first_id, path, sizeof(path));
    s->wfd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (s->wfd < 0)
        return vg_error_set(err, VG_EIO, "spool: cannot open %s: %s", path, strerror(errno));
    return VG_OK;
}

/* Oldest segment out, counting its unread records as dropped. */
static void drop_oldest(vg_spool_t *s)
{
    struct seg *g = &s->segs[0];
    uint64_t from = s->cursor > g->first_id ? s->cursor : g->first_id;
    uint64_t lost = g->next_id > from ? g->next_id - from : 0;
    if (lost > g->nrec) lost = g->nrec;
    if (lost > s->pending) lost = s->pending;
    s->pending -= lost;
    s->dropped += lost;
    vg_metric_add(s->m.dropped, (double)lost);
    if (g->next_id > s->cursor) {
        s->cursor = g->next_id;
        s->cursor_dirty = 1;
    }
    vg_log_warn("spool", "spool full; dropping the oldest records",
                "dir=%s records=%" PRIu64 " bytes=%" PRIu64, s->dir, lost, g->size);
    remove_first(s);
}

static vg_err_t make_room(vg_spool_t *s, uint64_t need, vg_error *err)
{
    while (s->bytes + need > s->max_bytes && s->nsegs) {
        if (s->full == VG_SPOOL_BLOCK)
            return vg_error_set(err, VG_ELIMIT, "spool %s is full (%" PRIu64 " bytes)", s->dir,
                                s->bytes);
        if (s->nsegs == 1) {
            if (s->segs[0].size == 0) break;
            vg_err_t rc = new_segment(s, err); /* seal the tail so it can go */
            if (rc) return rc;
        }
        drop_oldest(s);
    }
    return VG_OK;
}

static size_t encode_head(const vg_spool_rec *r, uint64_t id, size_t tlen, uint8_t *h)
{
    uint32_t plen = (uint32_t)(META + tlen + r->len);
    vg_le_put32(h, MAGIC);
    vg_le_put32(h + 4, plen);
    h[HDR] = VERSION;
    h[HDR + 1] = r->kind;
    h[HDR + 2] = (uint8_t)tlen;
    h[HDR + 3] = 0;
    vg_le_put64(h + HDR + 4, id);
    vg_le_put64(h + HDR + 12, r->seq);
    if (tlen) memcpy(h + HDR + META, r->tenant, tlen);
    uint32_t crc = vg_crc32c(0, h, 8);
    crc = vg_crc32c(crc, h + HDR, META + tlen);
    vg_le_put32(h + 8, vg_crc32c(crc, r->data, r->len));
    return HDR + META + tlen;
}

/* Write head+data at the tail; on any failure cut the file back. */
static vg_err_t write_record(vg_spool_t *s, const uint8_t *h, size_t hlen, const vg_spool_rec *r,
                             vg_error *err)
{
    struct seg *g = &s->segs[s->nsegs - 1];
    if (full_write(s->wfd, h, hlen) == 0 && full_write(s->wfd, r->data, r->len) == 0 &&
        (!want_sync(s) || fdatasync(s->wfd) == 0))
        return VG_OK;
    int saved = errno;
    if (ftruncate(s->wfd, (off_t)g->size) != 0)
        vg_log_error("spool", "cannot cut back a failed append", "dir=%s err=%s", s->dir,
                     strerror(errno));
    return vg_error_set(err, VG_EIO, "spool: write to %s failed: %s", s->dir, strerror(saved));
}

vg_err_t vg_spool_append(vg_spool_t *s, const vg_spool_rec *r, vg_error *err)
{
    uint8_t h[HDR + META + VG_SPOOL_MAX_TENANT];
    if (!s || !r || (!r->data && r->len)) return vg_error_set(err, VG_EINVAL, "spool: bad record");
    size_t tlen = r->tenant ? strlen(r->tenant) : 0;
    if (tlen > VG_SPOOL_MAX_TENANT) return vg_error_set(err, VG_EINVAL, "spool: tenant too long");
    uint64_t need = HDR + META + tlen + (uint64_t)r->len;
    if (r->len > VG_SPOOL_MAX_RECORD || need > s->max_bytes / 2)
        return vg_error_set(err, VG_ETOOLARGE, "spool: record of %zu bytes is too big", r->len);
    vg_err_t rc = make_room(s, need, err);
    if (!rc) rc = writer_for(s, need, err);
    if (!rc) rc = write_record(s, h, encode_head(r, s->next_id, tlen, h), r, err);
    if (rc) return rc;
    struct seg *g = &s->segs[s->nsegs - 1];
    g->size += need;
    g->nrec++;
    g->next_id = ++s->next_id;
    s->bytes += need;
    s->pending++;
    if (r->seq > s->max_seq) s->max_seq = r->seq;
    s->data_dirty = !want_sync(s);
    vg_metric_inc(s->m.appended);
    update_gauges(s);
    return VG_OK;
}

/* ---- reading ---- */

static void fill_rec(vg_spool_t *s, const struct frame *f, vg_spool_rec *out)
{
    char *p = s->buf.data;
    /* The tenant is followed by the data; keep a NUL-terminated copy. */
    memmove(p, p + META, f->tlen + f->dlen);
    p[f->tlen + f->dlen] = '\0';
    out->id = f->id;
    out->kind = f->kind;
    out->seq = f->seq;
    out->data = (const uint8_t *)p + f->tlen;
    out->len = f->dlen;
    out->tenant = s->tenant;
    memcpy(s->tenant, p, f->tlen);
    s->tenant[f->tlen] = '\0';
}

static vg_err_t open_reader(vg_spool_t *s, vg_error *err)
{
    char path[PATH_MAX];
    if (s->rfd >= 0) return VG_OK;
    seg_path(s, s->segs[0].first_id, path, sizeof(path));
    s->rfd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->rfd < 0)
        return vg_error_set(err, VG_EIO, "spool: cannot open %s: %s", path, strerror(errno));
    return VG_OK;
}

vg_err_t vg_spool_peek(vg_spool_t *s, vg_spool_rec *out, vg_error *err)
{
    if (!s || !out) return vg_error_set(err, VG_EINVAL, "spool: no spool");
    for (;;) {
        if (s->nsegs == 0) return VG_EAGAIN;
        struct seg *g = &s->segs[0];
        if (s->roff >= g->size) {
            if (s->nsegs > 1) {
                remove_first(s); /* everything in it was acknowledged or skipped */
                continue;
            }
            s->pending = 0; /* the reader caught up with the writer */
            update_gauges(s);
            return VG_EAGAIN;
        }
        vg_err_t rc = open_reader(s, err);
        if (rc) return rc;
        struct frame f;
        enum rd r = read_frame(s, s->rfd, s->roff, g->size, g->first_id, &f);
        if (r == RD_OK && f.id < s->cursor) {
            s->roff = f.end; /* acknowledged before a restart */
        } else if (r == RD_OK) {
            fill_rec(s, &f, out);
            s->peeked = 1;
            s->peek_id = f.id;
            s->peek_end = f.end;
            return VG_OK;
        } else if (r == RD_IOERR || r == RD_NOMEM) {
            char path[PATH_MAX];
            seg_path(s, g->first_id, path, sizeof(path));
            return rd_error(r, path, err);
        } else if ((rc = skip_damage(s, s->rfd, g, s->roff, r, s->roff >= g->scanned, &s->roff))) {
            return vg_error_set(err, rc, "spool: cannot skip damage in %s", s->dir);
        }
    }
}

vg_err_t vg_spool_ack(vg_spool_t *s, uint64_t id, vg_error *err)
{
    if (!s) return vg_error_set(err, VG_EINVAL, "spool: no spool");
    if (!s->peeked || id != s->peek_id) {
        if (id < s->cursor) return VG_OK; /* dropped or skipped meanwhile */
        return vg_error_set(err, VG_EINVAL, "spool: ack of record %" PRIu64 " that was not peeked",
                            id);
    }
    s->roff = s->peek_end;
    s->peeked = 0;
    s->cursor = id + 1;
    s->cursor_dirty = 1;
    if (s->pending) s->pending--;
    vg_metric_inc(s->m.acked);
    if (s->roff >= s->segs[0].size && s->nsegs > 1) remove_first(s);
    update_gauges(s);
    if (s->sync_ms <= 0) return cursor_store(s, want_sync(s), err);
    return VG_OK;
}

vg_err_t vg_spool_sync(vg_spool_t *s, vg_error *err)
{
    vg_err_t rc = VG_OK;
    if (!s) return VG_OK;
    if (s->wfd >= 0 && s->data_dirty) {
        if (fdatasync(s->wfd) != 0)
            rc = vg_error_set(err, VG_EIO, "spool: fdatasync in %s: %s", s->dir, strerror(errno));
        else
            s->data_dirty = 0;
    }
    if (s->cursor_dirty && !rc) rc = cursor_store(s, 1, err);
    s->last_sync_ms = vg_clock_mono_ms();
    return rc;
}

vg_err_t vg_spool_tick(vg_spool_t *s, int64_t now_mono_ms, vg_error *err)
{
    if (!s || s->sync_ms <= 0 || now_mono_ms - s->last_sync_ms < s->sync_ms) return VG_OK;
    if (!s->data_dirty && !s->cursor_dirty) return VG_OK;
    return vg_spool_sync(s, err);
}

uint64_t vg_spool_records(const vg_spool_t *s)
{
    return s ? s->pending : 0;
}

uint64_t vg_spool_bytes(const vg_spool_t *s)
{
    return s ? s->bytes : 0;
}

void vg_spool_get_stats(const vg_spool_t *s, vg_spool_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (!s) return;
    st->records = s->pending;
    st->bytes = s->bytes;
    st->segments = s->nsegs;
    st->dropped = s->dropped;
    st->corrupt = s->corrupt;
    st->torn = s->torn;
    st->next_id = s->next_id;
    st->max_seq = s->max_seq;
}

/* ---- open / free ---- */

static void register_metrics(vg_spool_t *s, vg_metrics_t *m, const char *prefix, const char *kind)
{
    char name[128], lab[128], lab2[160];
    if (!m) return;
    snprintf(lab, sizeof(lab), "kind=\"%s\"", kind);
    snprintf(lab2, sizeof(lab2), "kind=\"%s\",reason=\"full\"", kind);
#define REG(field, fn, suffix, help, l)                                                            \
    snprintf(name, sizeof(name), "%s%s", prefix, suffix);                                          \
    s->m.field = fn(m, name, help, l)
    REG(bytes, vg_metrics_gauge, "_bytes", "Bytes of spool segment files on disk.", lab);
    REG(records, vg_metrics_gauge, "_records", "Records waiting in the spool.", lab);
    REG(dropped, vg_metrics_counter, "_dropped_total", "Spooled records dropped, by reason.", lab2);
    REG(corrupt, vg_metrics_counter, "_corrupt_records_total",
        "Corrupt spool records skipped (bad CRC or frame).", lab);
    REG(torn, vg_metrics_counter, "_torn_tails_total",
        "Torn spool tails (a record cut short by a crash) truncated at open.", lab);
    REG(appended, vg_metrics_counter, "_appended_total", "Records appended to the spool.", lab);
    REG(acked, vg_metrics_counter, "_acked_total", "Spooled records delivered and removed.", lab);
#undef REG
}

static vg_err_t init(vg_spool_t *s, const vg_spool_opts *o, vg_error *err)
{
    s->wfd = s->rfd = s->dfd = -1;
    vg_buf_init(&s->buf, MAX_PAYLOAD + 1);
    s->max_bytes = o->max_bytes ? o->max_bytes : VG_SPOOL_DEFAULT_MAX;
    s->seg_bytes = o->segment_bytes;
    if (!s->seg_bytes)
        s->seg_bytes =
            s->max_bytes / 4 < VG_SPOOL_MAX_SEGMENT ? s->max_bytes / 4 : VG_SPOOL_MAX_SEGMENT;
    if (s->seg_bytes < 4096) s->seg_bytes = 4096;
    s->full = o->full;
    s->sync_ms = o->sync_interval_ms;
    s->last_sync_ms = vg_clock_mono_ms();
    s->dir = vg_strdup(o->dir);
    if (!s->dir) return vg_error_set(err, VG_ENOMEM, "spool: out of memory");
    return vg_spool_mkdirs(o->dir, err);
}

vg_err_t vg_spool_open(const vg_spool_opts *o, vg_metrics_t *m, vg_spool_t **out, vg_error *err)
{
    *out = NULL;
    if (!o || !o->dir || !*o->dir) return vg_error_set(err, VG_EINVAL, "spool: no directory");
    if (strlen(o->dir) > PATH_MAX - 64) return vg_error_set(err, VG_EINVAL, "spool: path too long");
    vg_spool_t *s = vg_calloc(1, sizeof(*s));
    if (!s) return vg_error_set(err, VG_ENOMEM, "spool: out of memory");
    vg_err_t rc = init(s, o, err);
    if (!rc) {
        register_metrics(s, m, o->metric_prefix ? o->metric_prefix : "vigil_agent_spool",
                         o->kind ? o->kind : "metrics");
        rc = recover(s, err);
    }
    if (rc) {
        vg_spool_free(s);
        return rc;
    }
    if (s->pending || s->corrupt || s->torn)
        vg_log_info("spool", "spool opened",
                    "dir=%s records=%" PRIu64 " bytes=%" PRIu64 " corrupt=%" PRIu64
                    " torn=%" PRIu64,
                    s->dir, s->pending, s->bytes, s->corrupt, s->torn);
    *out = s;
    return VG_OK;
}

void vg_spool_free(vg_spool_t *s)
{
    if (!s) return;
    vg_error e = {0};
    if (s->sync_ms >= 0 && vg_spool_sync(s, &e))
        vg_log_warn("spool", "final sync failed", "dir=%s err=%s", s->dir ? s->dir : "", e.msg);
    else if (s->sync_ms < 0 && s->cursor_dirty)
        cursor_store(s, 0, NULL);
    close_fd(&s->wfd);
    close_fd(&s->rfd);
    close_fd(&s->dfd);
    vg_buf_free(&s->buf);
    vg_free(s->segs);
    vg_free(s->dir);
    vg_free(s);
}
