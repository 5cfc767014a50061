/*
 * walwatch.c - tail the WAL segments for the remote-write sender.
 *
 * Reads with pread on one open segment: a record whose tail is not written
 * yet is simply read again later. The end of a segment is only trusted once
 * a newer segment exists and one more read found nothing (the writer may
 * finish a record and then create the next segment between our two looks).
 * Series are kept in a per-epoch arena and an open-addressing ref map, both
 * thrown away when the reader moves to another epoch (whose series file
 * declares every series its segments use again). The writer appends a
 * series record before the first sample that uses it, so a ref the map does
 * not know yet is looked up again after reading the series file's tail.
 */
#include "remotewrite/walwatch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vigil/alloc.h"
#include "vigil/arena.h"
#include "vigil/crc32c.h"
#include "vigil/le.h"
#include "vigil/log.h"

#define COMP       "remote_write"
#define MAGIC      "VGWAL\0\0\1"
#define SMAGIC     "VGSER\0\0\1"
#define MAGIC_LEN  8
#define HDR_LEN    8
#define REC_MAX    (64u << 20)
#define REC_SERIES 1
#define REC_SAMPLE 2
#define SAMPLE_LEN 24

typedef struct slot {
    uint64_t ref;
    vg_ww_series *s; /* NULL = empty */
} slot;

struct vg_walwatch {
    char dir[4096];
    const vg_relabel_t *relabel;
    int fd;
    vg_ww_cursor cur; /* next sample to hand out */
    uint64_t rd;      /* next record to read */
    uint8_t *rec;     /* current samples record (payload after type) */
    size_t rec_len, rec_cap;
    uint64_t rec_off;  /* its offset; rec_len 0 = none */
    vg_arena_t *arena; /* series of this segment */
    slot *map;
    size_t map_cap, map_n;
    int ended;     /* the segment is finished: move on at the next read */
    int sfd;       /* series file of the current epoch; -1 = none */
    int64_t epoch; /* -1 = none: the segment declares its own series */
    uint64_t srd;  /* next record to read in the series file */
    uint8_t *sbuf; /* one series record */
    size_t sbuf_cap;
    vg_ww_open_fn open_fn;
    void *open_ud;
};

/* ---- segments ---- */

/* Smallest segment number >= from in dir; -1 when none. */
static int64_t next_segment(const char *dir, uint32_t from)
{
    DIR *d = opendir(dir);
    int64_t best = -1;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d))) {
        char *end;
        if (strlen(e->d_name) != 8) continue;
        unsigned long n = strtoul(e->d_name, &end, 10);
        if (*end || n < from || n > UINT32_MAX) continue;
        if (best < 0 || (int64_t)n < best) best = (int64_t)n;
    }
    closedir(d);
    return best;
}

static void reset_series(vg_walwatch_t *w)
{
    vg_arena_reset(w->arena);
    memset(w->map, 0, w->map_cap * sizeof *w->map);
    w->map_n = 0;
    w->rec_len = 0;
}

/* The newest epoch <= no in dir (a series.<epoch> file); -1 when none. */
static int64_t find_epoch(const char *dir, uint32_t no)
{
    DIR *d = opendir(dir);
    int64_t best = -1;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d))) {
        char *end;
        if (strlen(e->d_name) != 15 || strncmp(e->d_name, "series.", 7)) continue;
        unsigned long n = strtoul(e->d_name + 7, &end, 10);
        if (*end || n > no) continue;
        if ((int64_t)n > best) best = (int64_t)n;
    }
    closedir(d);
    return best;
}

/* Open the oldest segment >= no through the directory: fd, *have, and its
 * epoch's series file. */
static int open_from_dir(vg_walwatch_t *w, uint32_t no, int64_t *have, int *sfd, int64_t *epoch)
{
    char path[4200];
    *have = next_segment(w->dir, no);
    *sfd = -1;
    *epoch = -1;
    if (*have < 0) return -1;
    snprintf(path, sizeof path, "%s/%08" PRIu32, w->dir, (uint32_t)*have);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *epoch = fd >= 0 ? find_epoch(w->dir, (uint32_t)*have) : -1;
    if (*epoch >= 0) {
        snprintf(path, sizeof path, "%s/series.%08" PRIu32, w->dir, (uint32_t)*epoch);
        *sfd = open(path, O_RDONLY | O_CLOEXEC);
    }
    return fd;
}

static void on_series(vg_walwatch_t *w, const uint8_t *p, size_t n);

/* Read the series file's records not read yet into the map. */
static void read_series(vg_walwatch_t *w)
{
    uint8_t hdr[HDR_LEN];
    while (w->sfd >= 0 && pread(w->sfd, hdr, HDR_LEN, (off_t)w->srd) == HDR_LEN) {
        uint32_t len = vg_le_get32(hdr);
        if (len == 0 || len > REC_MAX) return; /* garbage: nothing after it is usable */
        if (len > w->sbuf_cap) {
            uint8_t *g = vg_realloc(w->sbuf, len);
            if (!g) return;
            w->sbuf = g;
            w->sbuf_cap = len;
        }
        if (pread(w->sfd, w->sbuf, len, (off_t)(w->srd + HDR_LEN)) != (ssize_t)len) return;
        w->srd += HDR_LEN + len;
        if (vg_crc32c(0, w->sbuf, len) == vg_le_get32(hdr + 4) && w->sbuf[0] == REC_SERIES)
            on_series(w, w->sbuf + 1, len - 1);
    }
}

/* Switch to the series of the segment just opened: its epoch's (kept when
 * it is the current one) or none. Takes sfd. */
static void enter_epoch(vg_walwatch_t *w, int sfd, int64_t epoch)
{
    if (epoch >= 0 && epoch == w->epoch && w->sfd >= 0) {
        if (sfd >= 0) close(sfd);
        return;
    }
    if (w->sfd >= 0) close(w->sfd);
    reset_series(w);
    w->sfd = sfd;
    w->epoch = sfd >= 0 ? epoch : -1;
    w->srd = MAGIC_LEN;
    read_series(w);
}

/* Open segment no (or the next existing one) at its start. 0 when none. */
static int open_segment(vg_walwatch_t *w, uint32_t no)
{
    int64_t have = -1, epoch = -1;
    uint32_t got = 0;
    int sfd = -1;
    if (w->fd >= 0) close(w->fd);
    int fd = w->open_fn ? w->open_fn(w->open_ud, no, &got, &sfd, &epoch)
                        : open_from_dir(w, no, &have, &sfd, &epoch);
    if (w->open_fn && fd >= 0) have = got;
    w->fd = -1;
    if (have < 0 || fd < 0) {
        if (fd >= 0) close(fd);
        if (sfd >= 0) close(sfd);
        return 0;
    }
    if ((uint32_t)have != no && (no || w->cur.off)) {
        vg_log_warn(COMP, "WAL segment gone before it was sent; skipping",
                    "dir=%s from=%" PRIu32 " to=%" PRId64, w->dir, no, have);
    }
    if ((uint32_t)have != no) w->cur = (vg_ww_cursor){(uint32_t)have, 0, 0};
    w->fd = fd;
    w->rd = MAGIC_LEN;
    w->rec_len = 0;
    enter_epoch(w, sfd, epoch);
    w->cur.seg = (uint32_t)have;
    return 1;
}

/* ---- series ---- */

static vg_ww_series **map_slot(vg_walwatch_t *w, uint64_t ref)
{
    size_t i = (size_t)(ref * 0x9e3779b97f4a7c15ull) & (w->map_cap - 1);
    while (w->map[i].s && w->map[i].ref != ref) i = (i + 1) & (w->map_cap - 1);
    w->map[i].ref = ref;
    return &w->map[i].s;
}

static int map_grow(vg_walwatch_t *w)
{
    if ((w->map_n + 1) * 2 <= w->map_cap) return 0;
    slot *old = w->map;
    size_t oc = w->map_cap;
    w->map_cap = oc ? oc * 2 : 1024;
    if (!(w->map = vg_calloc(w->map_cap, sizeof *w->map))) {
        w->map = old;
        w->map_cap = oc;
        return -1;
    }
    for (size_t i = 0; i < oc; i++)
        if (old[i].s) *map_slot(w, old[i].ref) = old[i].s;
    vg_free(old);
    return 0;
}

/* Copy the labels of a series record into the arena; -1 when malformed. */
static int parse_labels(vg_walwatch_t *w, const uint8_t *p, size_t n, size_t at, vg_ww_series *s)
{
    for (size_t i = 0; i < s->n; i++) {
        const char **dst[2] = {&s->labels[i].name, &s->labels[i].value};
        for (int k = 0; k < 2; k++) {
            size_t wd = k ? 4 : 2;
            if (at + wd > n) return -1;
            size_t sl = k ? vg_le_get32(p + at) : vg_le_get16(p + at);
            at += wd;
            if (sl > n - at) return -1;
            if (!(*dst[k] = vg_arena_strndup(w->arena, (const char *)p + at, sl))) return -1;
            at += sl;
        }
    }
    return at == n ? 0 : -1;
}

static void on_series(vg_walwatch_t *w, const uint8_t *p, size_t n)
{
    if (n < 11 || 9 + (size_t)p[8] + 2 > n || map_grow(w)) return;
    vg_ww_series *s = vg_arena_calloc(w->arena, sizeof *s);
    size_t tl = p[8], nl = vg_le_get16(p + 9 + tl);
    size_t cap = vg_relabel_cap(w->relabel, nl);
    if (!s || !(s->tenant = vg_arena_strndup(w->arena, (const char *)p + 9, tl))) return;
    if (!(s->labels = vg_arena_alloc(w->arena, (cap > nl ? cap : nl) * sizeof *s->labels))) return;
    s->n = nl;
    if (parse_labels(w, p, n, 11 + tl, s)) return;
    if (w->relabel &&
        vg_relabel_apply(w->relabel, s->labels, &s->n, cap, w->arena) != VG_RELABEL_KEEP)
        s->dropped = 1;
    s->hash = vg_labels_hash(s->labels, s->n);
    vg_ww_series **sl = map_slot(w, vg_le_get64(p));
    if (!*sl) w->map_n++;
    *sl = s;
}

/* ---- records ---- */

/* Read the record at w->rd: 1 = read (a samples record is left in w->rec),
 * 0 = not complete yet, -1 = garbage (rest of the segment unusable). */
static int read_record(vg_walwatch_t *w)
{
    uint8_t hdr[HDR_LEN];
    if (pread(w->fd, hdr, HDR_LEN, (off_t)w->rd) != HDR_LEN) return 0;
    uint32_t len = vg_le_get32(hdr);
    if (len == 0 || len > REC_MAX) return -1;
    if (len > w->rec_cap) {
        uint8_t *g = vg_realloc(w->rec, len);
        if (!g) return 0;
        w->rec = g;
        w->rec_cap = len;
    }
    if (pread(w->fd, w->rec, len, (off_t)(w->rd + HDR_LEN)) != (ssize_t)len) return 0;
    uint64_t off = w->rd;
    w->rd += HDR_LEN + len;
    w->rec_len = 0;
    if (vg_crc32c(0, w->rec, len) != vg_le_get32(hdr + 4)) return 1; /* skipped, as replay does */
    if (w->rec[0] == REC_SERIES) on_series(w, w->rec + 1, len - 1);
    if (w->rec[0] == REC_SAMPLE && (len - 1) % SAMPLE_LEN == 0) {
        w->rec_len = len;
        w->rec_off = off;
        if (off > w->cur.off) w->cur.idx = 0; /* a resumed cursor keeps its index */
        if (off < w->cur.off) w->rec_len = 0; /* before the cursor: already sent */
    }
    return 1;
}

/* Hand out samples of the current record; returns how many went to out. */
static size_t take_samples(vg_walwatch_t *w, vg_ww_sample *out, size_t max, uint64_t *lost)
{
    size_t total = (w->rec_len - 1) / SAMPLE_LEN, got = 0;
    w->cur.off = w->rec_off;
    while (w->cur.idx < total && got < max) {
        const uint8_t *p = w->rec + 1 + (size_t)w->cur.idx * SAMPLE_LEN;
        w->cur.idx++;
        vg_ww_series **s = map_slot(w, vg_le_get64(p));
        if (!*s && w->sfd >= 0) { /* declared after we last read the series file */
            read_series(w);
            s = map_slot(w, vg_le_get64(p));
        }
        if (!*s || (*s)->dropped) {
            (*lost)++;
            continue;
        }
        uint64_t bits = vg_le_get64(p + 16);
        out[got].series = *s;
        out[got].ts = (int64_t)vg_le_get64(p + 8);
        memcpy(&out[got].v, &bits, sizeof bits);
        got++;
    }
    if (w->cur.idx >= total) {
        w->rec_len = 0;
        w->cur = (vg_ww_cursor){w->cur.seg, w->rd, 0};
    }
    return got;
}

size_t vg_walwatch_read(vg_walwatch_t *w, vg_ww_sample *out, size_t max, vg_ww_cursor *pos,
                        int *seg_end, uint64_t *lost)
{
    size_t got = 0;
    *seg_end = 0;
    if (w->ended) {
        w->ended = 0;
        w->cur = (vg_ww_cursor){w->cur.seg + 1, 0, 0};
        if (!open_segment(w, w->cur.seg)) goto out;
    }
    if (w->fd < 0 && !open_segment(w, w->cur.seg)) goto out;
    while (got < max) {
        if (w->rec_len) {
            got += take_samples(w, out + got, max - got, lost);
            continue;
        }
        int r = read_record(w);
        if (r > 0) continue;
        if (got || next_segment(w->dir, w->cur.seg + 1) < 0) break;
        if (r == 0 && read_record(w) > 0) continue; /* finished before the rotation */
        w->ended = 1;
        *seg_end = 1;
        break;
    }
out:
    *pos = w->cur;
    return got;
}

vg_err_t vg_walwatch_new(const char *dir, const vg_ww_cursor *start, const vg_relabel_t *relabel,
                         vg_walwatch_t **out, vg_error *err)
{
    vg_walwatch_t *w = vg_calloc(1, sizeof *w);
    *out = NULL;
    if (!w) return vg_error_set(err, VG_ENOMEM, "out of memory");
    w->fd = -1;
    w->sfd = -1;
    w->epoch = -1;
    w->relabel = relabel;
    if (start) w->cur = *start;
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    if (!(w->arena = vg_arena_new(0)) || map_grow(w)) {
        vg_walwatch_free(w);
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
    *out = w;
    return VG_OK;
}

void vg_walwatch_set_opener(vg_walwatch_t *w, vg_ww_open_fn fn, void *ud)
{
    w->open_fn = fn;
    w->open_ud = ud;
}

void vg_walwatch_free(vg_walwatch_t *w)
{
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    if (w->sfd >= 0) close(w->sfd);
    vg_free(w->sbuf);
    vg_arena_free(w->arena);
    vg_free(w->map);
    vg_free(w->rec);
    vg_free(w);
}
