/*
 * wal_hold.c - holds on WAL segments for readers that lag (see wal.h).
 *
 * Why this shape:
 *  - The store releases a segment once its data is in blocks; a reader
 *    (a remote_write queue whose remote is down) may still need it. So
 *    deletion asks two questions: does the store need it (released), does
 *    any hold need it (from <= no). Either keeps it.
 *  - Unbounded holding would fill the disk while a remote is gone for days,
 *    so released-but-held segments are capped (max_hold bytes): over it the
 *    oldest go, and every hold whose reader had not opened them is charged
 *    their sample count. A reader that has the segment open keeps reading
 *    the unlinked file through its fd, so it is not charged: the count is
 *    exact. Readers open segments through vg_wal_hold_open, under the same
 *    mutex as the deletion, so "opened" and "deleted" cannot cross.
 *  - Holds and the released list are kept in <dir>/holds (tmp, fsync,
 *    rename) so that a restart holds the same segments before the readers
 *    are back (the block cutter runs first) and replay skips the released
 *    ones: their samples are in blocks, reading them back would rebuild
 *    series the head no longer has.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tsdb/wal_int.h"
#include "vigil/alloc.h"
#include "vigil/log.h"

#define COMP        "wal"
#define HOLDS_FILE  "holds"
#define HOLDS_MAGIC "vigil-wal-holds 1\n"

/* ---- which segments may go ---- */

static int held(const vg_wal_t *w, uint32_t no)
{
    for (const vg_wal_hold_t *h = w->holds; h; h = h->next)
        if (h->from <= no) return 1;
    return 0;
}

static uint64_t held_bytes_locked(const vg_wal_t *w)
{
    uint64_t n = 0;
    for (size_t i = 0; i < w->nsegs; i++)
        if (w->segs[i].released) n += w->segs[i].bytes;
    return n;
}

static int seg_unlink(vg_wal_t *w, const vg_wal_seg *sg)
{
    char path[4200];
    vg_wal_seg_path(w, sg->no, path, sizeof(path));
    if (unlink(path) == 0 || errno == ENOENT) return 0;
    vg_log_warn(COMP, "cannot delete segment", "file=%s err=%s", path, strerror(errno));
    return -1;
}

/* sg goes over the cap: each hold that still had to read it misses its samples. */
static void charge(vg_wal_t *w, const vg_wal_seg *sg)
{
    for (vg_wal_hold_t *h = w->holds; h; h = h->next) {
        if (h->from > sg->no || (h->has_opened && h->opened >= sg->no)) continue;
        h->missed += sg->samples;
        vg_log_warn(COMP,
                    "held WAL segment deleted over storage.wal_max_hold_bytes before its reader "
                    "got there; its samples are lost for that reader",
                    "reader=%s segment=%" PRIu32 " samples=%" PRIu64 " mint=%" PRId64
                    " maxt=%" PRId64 " max_hold_bytes=%" PRIu64,
                    h->name, sg->no, sg->samples, sg->mint, sg->maxt, w->max_hold);
    }
}

/* Delete the oldest released segments while the held ones pass max_hold. */
static size_t collect_over_cap(vg_wal_t *w)
{
    size_t n = 0;
    uint64_t bytes = held_bytes_locked(w);
    while (bytes > w->max_hold) {
        size_t i = 0;
        while (i < w->nsegs && !w->segs[i].released) i++;
        if (i == w->nsegs) break;
        vg_wal_seg sg = w->segs[i];
        charge(w, &sg);
        if (seg_unlink(w, &sg)) break;
        memmove(w->segs + i, w->segs + i + 1, (w->nsegs - i - 1) * sizeof(*w->segs));
        w->nsegs--;
        bytes -= sg.bytes;
        vg_metric_inc(w->m_hold_deleted);
        n++;
    }
    return n;
}

size_t vg_wal_holds_collect(vg_wal_t *w)
{
    size_t n = 0, k = 0;
    for (size_t i = 0; i < w->nsegs; i++) {
        if (w->segs[i].released && !held(w, w->segs[i].no) && seg_unlink(w, &w->segs[i]) == 0) {
            n++;
            continue;
        }
        w->segs[k++] = w->segs[i];
    }
    w->nsegs = k;
    n += collect_over_cap(w);
    vg_wal_drop_epochs(w);
    vg_metric_set(w->m_held_bytes, (double)held_bytes_locked(w));
    vg_wal_segments_gauge(w);
    return n;
}

/* collect under mu, then the directory and the holds file outside it. */
static void collect_and_persist(vg_wal_t *w)
{
    pthread_mutex_lock(&w->mu);
    size_t n = vg_wal_holds_collect(w);
    pthread_mutex_unlock(&w->mu);
    if (n) vg_wal_sync_dir(w->dir);
    vg_wal_holds_persist(w);
}

/* ---- the holds file ---- */

static vg_err_t build_state(vg_wal_t *w, vg_buf *b)
{
    char line[300];
    vg_err_t rc = vg_buf_append(b, HOLDS_MAGIC, strlen(HOLDS_MAGIC));
    for (const vg_wal_hold_t *h = w->holds; h && !rc; h = h->next) {
        int n = snprintf(line, sizeof(line), "hold %" PRIu32 " %s\n", h->from, h->name);
        rc = vg_buf_append(b, line, (size_t)n);
    }
    for (size_t i = 0; i < w->nsegs && !rc; i++) {
        const vg_wal_seg *s = &w->segs[i];
        if (!s->released) continue;
        int n = snprintf(line, sizeof(line),
                         "released %" PRIu32 " %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 "\n",
                         s->no, s->bytes, s->samples, s->mint, s->maxt);
        rc = vg_buf_append(b, line, (size_t)n);
    }
    return rc ? rc : vg_buf_append(b, "", 1); /* NUL */
}

static int write_state(const vg_wal_t *w, const char *text)
{
    char path[4200], tmp[4210];
    snprintf(path, sizeof(path), "%s/" HOLDS_FILE, w->dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t len = strlen(text);
    int bad = fd < 0 || write(fd, text, len) != (ssize_t)len || fdatasync(fd);
    if (fd >= 0 && close(fd)) bad = 1;
    if (bad || rename(tmp, path)) {
        vg_log_warn(COMP,
                    "cannot write the holds file; a restart may replay or delete held segments",
                    "file=%s err=%s", path, strerror(errno));
        return -1;
    }
    vg_wal_sync_dir(w->dir);
    return 0;
}

void vg_wal_holds_persist(vg_wal_t *w)
{
    vg_buf b;
    vg_buf_init(&b, 0);
    pthread_mutex_lock(&w->state_mu);
    pthread_mutex_lock(&w->mu);
    vg_err_t rc = build_state(w, &b);
    pthread_mutex_unlock(&w->mu);
    if (!rc && (!w->state_last || strcmp(w->state_last, b.data)) && write_state(w, b.data) == 0) {
        vg_free(w->state_last);
        w->state_last = vg_strdup(b.data);
    }
    pthread_mutex_unlock(&w->state_mu);
    vg_buf_free(&b);
}

static vg_wal_hold_t *hold_add(vg_wal_t *w, const char *name, uint32_t from)
{
    vg_wal_hold_t *h = vg_calloc(1, sizeof(*h));
    if (!h) return NULL;
    h->w = w;
    snprintf(h->name, sizeof(h->name), "%s", name);
    h->from = from;
    h->next = w->holds;
    w->holds = h;
    return h;
}

static int load_released(vg_wal_t *w, const char *line)
{
    vg_wal_seg s = {.released = 1};
    if (sscanf(line, "released %" SCNu32 " %" SCNu64 " %" SCNu64 " %" SCNd64 " %" SCNd64, &s.no,
               &s.bytes, &s.samples, &s.mint, &s.maxt) != 5)
        return -1;
    vg_wal_seg *g = vg_realloc(w->loaded, (w->nloaded + 1) * sizeof(*g));
    if (!g) return -1;
    w->loaded = g;
    w->loaded[w->nloaded++] = s;
    return 0;
}

static int load_line(vg_wal_t *w, const char *line)
{
    char name[128];
    uint32_t from;
    if (!strncmp(line, "released ", 9)) return load_released(w, line);
    if (sscanf(line, "hold %" SCNu32 " %127s", &from, name) != 2) return -1;
    /* A name twice (a damaged or edited file): one hold, at the older of the
     * two segments, so nothing a reader may still need is released. */
    vg_wal_hold_t *h = w->holds;
    while (h && strcmp(h->name, name)) h = h->next;
    if (h) {
        if (from < h->from) h->from = from;
        return 0;
    }
    return hold_add(w, name, from) ? 0 : -1;
}

void vg_wal_holds_load(vg_wal_t *w)
{
    char path[4200], line[400];
    snprintf(path, sizeof(path), "%s/" HOLDS_FILE, w->dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        w->state_last = vg_strdup(HOLDS_MAGIC); /* nothing to write until something is held */
        return;
    }
    int bad = !fgets(line, sizeof(line), f) || strcmp(line, HOLDS_MAGIC);
    while (!bad && fgets(line, sizeof(line), f)) bad = load_line(w, line);
    fclose(f);
    if (bad) {
        vg_log_warn(COMP,
                    "unreadable holds file; its remaining entries are ignored (held "
                    "segments are replayed, readers re-register at start)",
                    "file=%s", path);
    }
}

const vg_wal_seg *vg_wal_holds_loaded(const vg_wal_t *w, uint32_t no)
{
    for (size_t i = 0; i < w->nloaded; i++)
        if (w->loaded[i].no == no) return &w->loaded[i];
    return NULL;
}

void vg_wal_holds_free(vg_wal_t *w)
{
    while (w->holds) {
        vg_wal_hold_t *h = w->holds;
        w->holds = h->next;
        vg_free(h);
    }
    vg_free(w->loaded);
    vg_free(w->state_last);
    w->loaded = NULL;
    w->nloaded = 0;
    w->state_last = NULL;
}

/* ---- the public side ---- */

uint64_t vg_wal_held_bytes(vg_wal_t *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t n = held_bytes_locked(w);
    pthread_mutex_unlock(&w->mu);
    return n;
}

void vg_wal_set_max_hold(vg_wal_t *w, uint64_t bytes)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->max_hold = bytes;
    pthread_mutex_unlock(&w->mu);
    collect_and_persist(w);
}

static int name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof(((vg_wal_hold_t *)0)->name)) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] <= ' ') return 0;
    return 1;
}

vg_err_t vg_wal_hold_new(vg_wal_t *w, const char *name, uint32_t from, vg_wal_hold_t **out,
                         vg_error *err)
{
    *out = NULL;
    if (!name_ok(name))
        return vg_error_set(err, VG_EINVAL,
                            "wal: hold name \"%s\" must be 1-127 bytes without blanks", name);
    pthread_mutex_lock(&w->mu);
    vg_wal_hold_t *h = w->holds;
    while (h && strcmp(h->name, name)) h = h->next;
    if (!h) h = hold_add(w, name, from);
    if (h) {
        h->from = from; /* the reader's own cursor is the truth */
        h->live = 1;
        h->has_opened = 0;
    }
    pthread_mutex_unlock(&w->mu);
    if (!h) return vg_error_set(err, VG_ENOMEM, "wal: out of memory");
    collect_and_persist(w);
    *out = h;
    return VG_OK;
}

void vg_wal_hold_move(vg_wal_hold_t *h, uint32_t from)
{
    vg_wal_t *w = h->w;
    pthread_mutex_lock(&w->mu);
    int moved = from > h->from;
    if (moved) h->from = from;
    pthread_mutex_unlock(&w->mu);
    if (moved) collect_and_persist(w);
}

/* The series file of segment no's epoch, opened; -1 when it has none. Caller holds mu. */
static int open_series(vg_wal_t *w, uint32_t no, int64_t *epoch)
{
    char path[4200];
    uint32_t e;
    *epoch = -1;
    if (!vg_wal_epoch_of(w, no, &e)) return -1;
    vg_wal_series_path(w, e, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) *epoch = e;
    return fd;
}

int vg_wal_hold_open(vg_wal_hold_t *h, uint32_t from, uint32_t *no, int *sfd, int64_t *epoch)
{
    vg_wal_t *w = h->w;
    char path[4200];
    int fd = -1;
    pthread_mutex_lock(&w->mu);
    size_t i = 0;
    while (i < w->nsegs && w->segs[i].no < from) i++;
    int64_t pick = i < w->nsegs                      ? (int64_t)w->segs[i].no
                   : w->fd >= 0 && w->cur_no >= from ? (int64_t)w->cur_no
                                                     : -1;
    if (pick >= 0) {
        vg_wal_seg_path(w, (uint32_t)pick, path, sizeof(path));
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    *sfd = -1;
    *epoch = -1;
    if (fd >= 0) {
        *sfd = open_series(w, (uint32_t)pick, epoch);
        *no = (uint32_t)pick;
        h->opened = (uint32_t)pick;
        h->has_opened = 1;
    }
    pthread_mutex_unlock(&w->mu);
    return fd;
}

uint64_t vg_wal_hold_take_missed(vg_wal_hold_t *h)
{
    pthread_mutex_lock(&h->w->mu);
    uint64_t n = h->missed;
    h->missed = 0;
    pthread_mutex_unlock(&h->w->mu);
    return n;
}

void vg_wal_hold_free(vg_wal_hold_t *h)
{
    if (!h) return;
    pthread_mutex_lock(&h->w->mu);
    h->live = 0;
    h->has_opened = 0;
    pthread_mutex_unlock(&h->w->mu);
}

void vg_wal_hold_forget_dormant(vg_wal_t *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    for (vg_wal_hold_t **p = &w->holds; *p;) {
        vg_wal_hold_t *h = *p;
        if (h->live) {
            p = &h->next;
            continue;
        }
        vg_log_info(COMP, "hold of a reader that is gone dropped", "reader=%s from=%" PRIu32,
                    h->name, h->from);
        *p = h->next;
        vg_free(h);
    }
    pthread_mutex_unlock(&w->mu);
    collect_and_persist(w);
}
