/*
 * tail.c - the tailer (tail.h): globs, rotation, reading lines, checkpoints.
 *
 * Every pass stats and identity-checks each followed file, so rotation is
 * seen the same way whether inotify woke us or a timer did:
 *  - rename: the file keeps its inode, so it stays followed (by fd) even when
 *    its path no longer matches; it is read to EOF and let go only after it
 *    has not grown for rotate_linger_ms, so a writer still holding the old fd
 *    loses nothing (a bounded idle time, not a fixed wait after the rename);
 *  - copytruncate: the size drops below what was read, or the head no longer
 *    hashes the same: read again from 0 under a new identity;
 *  - deletion: like a rename (the open fd still reads the data);
 *  - a last line without its newline waits for it, except in a file that is
 *    being let go, where it is handed out as the final line.
 * Positions in the file move only when the callback takes a line, so a
 * refused line (the sink is down) is handed out again on the next pass.
 */
#include "tail.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <libgen.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vigil/alloc.h"
#include "vigil/log.h"

#define LOGC         "tail"
#define CHUNK        (64u << 10)
#define PASS_BUDGET  (8u << 20) /* bytes read from one file per pass, for fairness */
#define DEF_MAX_LINE (64u << 10)

typedef struct tfile {
    char *path;
    int fd;
    size_t input;
    vg_file_ident id;
    int id_known;
    char idstr[64];
    uint64_t pos; /* file offset of buf[bstart]: after the last line handed out */
    char *buf;    /* bytes read and not yet handed out: buf[bstart..blen) */
    size_t bstart, blen, bcap;
    uint64_t skipped; /* over-long line: bytes read past its kept prefix and dropped */
    int gone;         /* no glob names this file any more (renamed away or deleted) */
    int seen;
    int64_t grew_ms;
} tfile;

struct vg_tail {
    vg_tail_opts o;
    tfile **files;
    size_t nfiles, cap;
    vg_tokbucket *buckets;
    vg_tail_ckpt *ckpt; /* loaded at start; consulted when a file is first found */
    size_t nckpt;
    int first_start; /* no checkpoint existed: read_from_head applies */
    int scanned;
    int64_t last_scan_ms;
    int ino_fd;
    int rescan_hint;
    char *ckpt_path; /* our copy of o.checkpoint_path */
};

static size_t max_line(const vg_tail_t *t, const tfile *f)
{
    size_t m = t->o.inputs[f->input].max_line_bytes;
    return m ? m : DEF_MAX_LINE;
}

static void file_free(tfile *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    vg_free(f->path);
    vg_free(f->buf);
    vg_free(f);
}

static void set_ident(tfile *f, const vg_file_ident *id)
{
    f->id = *id;
    f->id_known = id->head_len > 0;
    vg_file_ident_str(&f->id, f->idstr, sizeof f->idstr);
}

/* Start over at offset 0 under a new identity (copytruncate, or a reused inode). */
static void restart_file(tfile *f, uint64_t seed)
{
    vg_file_ident id;
    f->pos = 0;
    f->bstart = f->blen = 0;
    f->skipped = 0;
    if (vg_file_ident_read(f->fd, seed, &id) == VG_OK)
        set_ident(f, &id);
    else
        f->id_known = 0;
    f->id.seed = seed;
    lseek(f->fd, 0, SEEK_SET);
}

static int grow_files(vg_tail_t *t)
{
    size_t cap = t->cap ? t->cap * 2 : 16;
    tfile **g = vg_realloc(t->files, cap * sizeof *g);
    if (!g) return 0;
    t->files = g;
    t->cap = cap;
    return 1;
}

static const vg_tail_ckpt *find_ckpt(const vg_tail_t *t, const struct stat *st)
{
    for (size_t i = 0; i < t->nckpt; i++)
        if (t->ckpt[i].id.dev == (uint64_t)st->st_dev && t->ckpt[i].id.ino == (uint64_t)st->st_ino)
            return &t->ckpt[i];
    return NULL;
}

/* Where a newly found file starts: its checkpoint when the identity still
 * matches, the end on a first start without read_from_head, else 0. */
static void place_file(vg_tail_t *t, tfile *f, const struct stat *st)
{
    const vg_tail_ckpt *c = find_ckpt(t, st);
    if (c && vg_file_ident_match(f->fd, &c->id) && (uint64_t)st->st_size >= c->pos) {
        set_ident(f, &c->id);
        f->pos = c->pos;
    } else if (c) {
        vg_log_info(LOGC,
                    "not the file of its checkpoint (truncated or inode reused); from the start",
                    "path=%s", f->path);
        restart_file(f, c->id.hash);
        return;
    } else {
        restart_file(f, 0);
        if (t->first_start && !t->scanned && !t->o.inputs[f->input].read_from_head)
            f->pos = (uint64_t)st->st_size;
    }
    lseek(f->fd, (off_t)f->pos, SEEK_SET);
}

static tfile *find_file(vg_tail_t *t, const struct stat *st)
{
    for (size_t i = 0; i < t->nfiles; i++)
        if (t->files[i]->id.dev == (uint64_t)st->st_dev &&
            t->files[i]->id.ino == (uint64_t)st->st_ino)
            return t->files[i];
    return NULL;
}

static vg_err_t add_file(vg_tail_t *t, const char *path, size_t input, int64_t now)
{
    struct stat st;
    tfile *f = vg_calloc(1, sizeof *f);
    if (!f) return VG_ENOMEM;
    f->input = input;
    f->grew_ms = now;
    if (!(f->path = vg_strdup(path)) || (t->nfiles == t->cap && !grow_files(t))) {
        file_free(f);
        return VG_ENOMEM;
    }
    if ((f->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0 || fstat(f->fd, &st) != 0) {
        vg_log_warn(LOGC, "cannot open file", "path=%s err=\"%s\"", path, strerror(errno));
        file_free(f);
        return VG_OK;
    }
    f->id.dev = (uint64_t)st.st_dev;
    f->id.ino = (uint64_t)st.st_ino;
    place_file(t, f, &st);
    f->id.dev = (uint64_t)st.st_dev; /* also while the identity is pending */
    f->id.ino = (uint64_t)st.st_ino;
    f->seen = 1;
    t->files[t->nfiles++] = f;
    vg_log_info(LOGC, "following file", "path=%s offset=%llu", path, (unsigned long long)f->pos);
    return VG_OK;
}

static int excluded(const vg_tail_input *in, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (size_t i = 0; i < in->nexclude; i++)
        if (!fnmatch(in->exclude[i], path, 0) || !fnmatch(in->exclude[i], base, 0)) return 1;
    return 0;
}

/* A path the globs gave: mark its followed file seen (updating the path after
 * a rename between matching names), or start following it. */
static vg_err_t found_path(vg_tail_t *t, const char *path, size_t input, int64_t now)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return VG_OK;
    tfile *f = find_file(t, &st);
    if (!f) return add_file(t, path, input, now);
    if (f->seen) return VG_OK; /* matched by an earlier glob or input */
    f->seen = 1;
    f->gone = 0;
    if (strcmp(f->path, path)) {
        char *p = vg_strdup(path);
        if (!p) return VG_ENOMEM;
        vg_free(f->path);
        f->path = p;
    }
    return VG_OK;
}

static void watch_dir(vg_tail_t *t, const char *pattern)
{
    char dir[4096];
    if (t->ino_fd < 0) return;
    snprintf(dir, sizeof dir, "%s", pattern);
    char *d = dirname(dir);
    if (strpbrk(d, "*?[")) return; /* a glob in the directory part: timed passes find it */
    (void)inotify_add_watch(t->ino_fd, d,
                            IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_MODIFY |
                                IN_CLOSE_WRITE | IN_ATTRIB);
}

/* Re-glob every input; files no glob names any more are marked gone. */
static vg_err_t rescan(vg_tail_t *t, int64_t now)
{
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < t->nfiles; i++) t->files[i]->seen = 0;
    for (size_t in = 0; in < t->o.ninputs && !rc; in++) {
        const vg_tail_input *inp = &t->o.inputs[in];
        for (size_t p = 0; p < inp->npaths && !rc; p++) {
            glob_t g;
            watch_dir(t, inp->paths[p]);
            if (glob(inp->paths[p], GLOB_NOSORT, NULL, &g) != 0) continue;
            for (size_t k = 0; k < g.gl_pathc && !rc; k++)
                if (!excluded(inp, g.gl_pathv[k])) rc = found_path(t, g.gl_pathv[k], in, now);
            globfree(&g);
        }
    }
    for (size_t i = 0; i < t->nfiles && !rc; i++) {
        tfile *f = t->files[i];
        if (f->seen || f->gone) continue;
        f->gone = 1;
        f->grew_ms = now; /* the linger counts from when it went away at the earliest */
        vg_log_info(LOGC, "renamed or deleted; reading it to the end", "path=%s", f->path);
    }
    t->scanned = 1;
    t->last_scan_ms = now;
    t->rescan_hint = 0;
    return rc;
}

/* Truncated (size below what was read) or rewritten (head hash differs):
 * start again at 0 under an identity seeded with the old one. */
static void check_truncation(tfile *f)
{
    struct stat st;
    if (fstat(f->fd, &st) != 0) return;
    uint64_t readpos = f->pos + (f->blen - f->bstart) + f->skipped;
    int shrank = (uint64_t)st.st_size < readpos;
    if (!shrank && (!f->id_known || vg_file_ident_match(f->fd, &f->id))) return;
    vg_log_info(LOGC, "truncated or rewritten; reading from the start",
                "path=%s size=%lld read=%llu", f->path, (long long)st.st_size,
                (unsigned long long)readpos);
    restart_file(f, f->id_known ? f->id.hash : f->id.seed);
}

/* Hand out one line: buf[bstart..bstart+len), which ends at file offset
 * pos+consumed (the newline included, when there is one). */
static vg_err_t emit(vg_tail_t *t, tfile *f, size_t len, size_t consumed)
{
    size_t max = max_line(t, f);
    uint64_t full = len + f->skipped;
    vg_tail_line l = {.input = f->input,
                      .path = f->path,
                      .file_id = f->idstr,
                      .offset = f->pos,
                      .data = f->buf + f->bstart,
                      .len = len < max ? len : max,
                      .full_len = full,
                      .too_long = full > max};
    vg_err_t rc = t->o.on_line(t->o.ud, &l);
    if (rc) return rc;
    f->pos += full + (consumed - len);
    f->bstart += consumed;
    f->skipped = 0;
    return VG_OK;
}

/* Make room for a read: drop handed-out bytes, then grow to max line + a chunk. */
static int make_room(tfile *f, size_t max)
{
    if (f->bstart) {
        memmove(f->buf, f->buf + f->bstart, f->blen - f->bstart);
        f->blen -= f->bstart;
        f->bstart = 0;
    }
    size_t want = max + CHUNK + 1;
    if (f->bcap >= want) return 1;
    char *b = vg_realloc(f->buf, want);
    if (!b) return 0;
    f->buf = b;
    f->bcap = want;
    return 1;
}

/* Lines complete in the buffer go out while tokens last. *stop is set when
 * the callback refused a line (1) or the rate limit stopped it (2). */
static vg_err_t drain_lines(vg_tail_t *t, tfile *f, int64_t now, int *stop)
{
    size_t max = max_line(t, f);
    while (f->bstart < f->blen) {
        char *start = f->buf + f->bstart;
        char *nl = memchr(start, '\n', f->blen - f->bstart);
        if (!nl) {
            size_t have = f->blen - f->bstart;
            if (have > max) { /* over-long: keep its first max bytes, count the rest */
                f->skipped += have - max;
                f->blen = f->bstart + max;
            }
            return VG_OK;
        }
        if (!vg_tokbucket_take(&t->buckets[f->input], now)) {
            *stop = 2; /* file_wait says when the next token is due */
            return VG_OK;
        }
        size_t len = (size_t)(nl - start);
        size_t eff = len > 0 && start[len - 1] == '\r' ? len - 1 : len; /* CRLF */
        vg_err_t rc = emit(t, f, f->skipped ? len : eff, len + 1);
        if (rc) {
            t->buckets[f->input].tokens += 1.0; /* the line was not taken */
            *stop = 1;
            return rc;
        }
    }
    return VG_OK;
}

/* The identity is fixed by the first bytes the file ever had; an empty file
 * gets it when data arrives. */
static void ensure_ident(tfile *f)
{
    vg_file_ident id;
    if (f->id_known || vg_file_ident_read(f->fd, f->id.seed, &id) != VG_OK) return;
    set_ident(f, &id);
}

/* Read and hand out what is new in f. *more = 1 when lines were left. */
static vg_err_t read_file(vg_tail_t *t, tfile *f, int64_t now, int *more)
{
    size_t max = max_line(t, f), budget = PASS_BUDGET;
    vg_err_t rc = VG_OK;
    int stop = 0;
    check_truncation(f);
    for (;;) {
        if (f->id_known && (rc = drain_lines(t, f, now, &stop))) break;
        if (stop) break;
        if (!budget) {
            stop = 1;
            break;
        }
        if (!make_room(f, max)) return VG_ENOMEM;
        size_t room = f->bcap - f->blen - 1;
        ssize_t n = read(f->fd, f->buf + f->blen, room < budget ? room : budget);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        f->blen += (size_t)n;
        budget -= (size_t)n;
        f->grew_ms = now;
        ensure_ident(f);
    }
    if (stop == 1) *more = 1;
    return rc;
}

/* A gone file idle for the linger time: its last line, if it lacks a newline,
 * goes out as is; then it is closed. 1 when it may be dropped. */
static int let_go(vg_tail_t *t, tfile *f, int64_t now, vg_err_t *rc)
{
    int64_t linger = t->o.rotate_linger_ms ? t->o.rotate_linger_ms : 5000;
    if (!f->gone || now - f->grew_ms < linger) return 0;
    if (f->bstart < f->blen && f->id_known) {
        size_t len = f->blen - f->bstart;
        if (!vg_tokbucket_take(&t->buckets[f->input], now)) return 0;
        if ((*rc = emit(t, f, len, len))) return 0;
    }
    vg_log_info(LOGC, "done with the rotated or deleted file", "path=%s offset=%llu", f->path,
                (unsigned long long)f->pos);
    return 1;
}

static int64_t min_wait(int64_t a, int64_t b)
{
    if (a < 0) return b;
    if (b < 0) return a;
    return a < b ? a : b;
}

/* How long until this file needs a pass of its own (rate limit, linger), -1 = no deadline. */
static int64_t file_wait(const vg_tail_t *t, const tfile *f, int64_t now)
{
    int64_t w = -1;
    if (f->bstart < f->blen && memchr(f->buf + f->bstart, '\n', f->blen - f->bstart))
        w = vg_tokbucket_wait_ms(&t->buckets[f->input], now);
    if (f->gone) {
        int64_t linger = t->o.rotate_linger_ms ? t->o.rotate_linger_ms : 5000;
        int64_t left = f->grew_ms + linger - now;
        w = min_wait(w, left > 0 ? left : 0);
    }
    return w;
}

vg_err_t vg_tail_poll(vg_tail_t *t, int64_t now, int64_t *wait_ms)
{
    int64_t rescan_ms = t->o.rescan_ms ? t->o.rescan_ms : 1000;
    int64_t w = -1;
    vg_err_t rc = VG_OK;
    int more = 0;
    if (!t->scanned || t->rescan_hint || now - t->last_scan_ms >= rescan_ms) rc = rescan(t, now);
    for (size_t i = 0; i < t->nfiles && !rc;) {
        tfile *f = t->files[i];
        rc = read_file(t, f, now, &more);
        if (!rc && let_go(t, f, now, &rc)) {
            file_free(f);
            t->files[i] = t->files[--t->nfiles];
            continue;
        }
        w = min_wait(w, file_wait(t, f, now));
        i++;
    }
    if (wait_ms) *wait_ms = (more || rc) ? 0 : w;
    return rc;
}

void vg_tail_wait(vg_tail_t *t, int timeout_ms)
{
    char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    struct pollfd p = {.fd = t->ino_fd, .events = POLLIN};
    if (timeout_ms < 0) timeout_ms = 0;
    if (t->ino_fd < 0) {
        (void)poll(NULL, 0, timeout_ms);
        return;
    }
    if (poll(&p, 1, timeout_ms) <= 0) return;
    ssize_t n;
    while ((n = read(t->ino_fd, ev, sizeof ev)) > 0) {
        for (char *q = ev; q < ev + n;) {
            const struct inotify_event *e = (const struct inotify_event *)q;
            if (e->mask & IN_Q_OVERFLOW)
                vg_log_warn(LOGC, "inotify queue overflowed; rescanning every file", NULL);
            if (e->mask & (IN_Q_OVERFLOW | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE))
                t->rescan_hint = 1;
            q += sizeof *e + e->len;
        }
    }
}

vg_err_t vg_tail_commit(vg_tail_t *t, vg_error *err)
{
    size_t n = 0;
    vg_err_t rc;
    if (!t->o.checkpoint_path) return VG_OK;
    vg_tail_ckpt *c = vg_calloc(t->nfiles ? t->nfiles : 1, sizeof *c);
    if (!c) return vg_error_set(err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < t->nfiles; i++) {
        const tfile *f = t->files[i];
        if (!f->id_known) continue;
        c[n].id = f->id;
        c[n].pos = f->pos;
        snprintf(c[n].path, sizeof c[n].path, "%s", f->path);
        n++;
    }
    rc = vg_tail_ckpt_save(t->o.checkpoint_path, c, n, err);
    vg_free(c);
    return rc;
}

size_t vg_tail_nfiles(const vg_tail_t *t)
{
    return t ? t->nfiles : 0;
}

static void load_ckpt(vg_tail_t *t)
{
    vg_error e = {0};
    vg_err_t rc;
    t->first_start = 1;
    if (!t->o.checkpoint_path) return;
    rc = vg_tail_ckpt_load(t->o.checkpoint_path, &t->ckpt, &t->nckpt, &e);
    if (rc == VG_ENOTFOUND) return;
    t->first_start = 0;
    if (rc)
        vg_log_error(LOGC, "checkpoint unreadable; files are read from the start", "err=\"%s\"",
                     vg_error_msg(&e, rc));
}

vg_err_t vg_tail_new(const vg_tail_opts *o, vg_tail_t **out, vg_error *err)
{
    vg_tail_t *t = vg_calloc(1, sizeof *t);
    *out = NULL;
    if (!t || !(t->buckets = vg_calloc(o->ninputs ? o->ninputs : 1, sizeof *t->buckets))) {
        vg_free(t);
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
    t->o = *o;
    t->ino_fd = -1;
    if (o->checkpoint_path &&
        !(t->o.checkpoint_path = t->ckpt_path = vg_strdup(o->checkpoint_path))) {
        vg_tail_free(t);
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
    t->ino_fd = o->no_inotify ? -1 : inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (!o->no_inotify && t->ino_fd < 0)
        vg_log_warn(LOGC, "inotify unavailable; polling files instead", "err=\"%s\"",
                    strerror(errno));
    for (size_t i = 0; i < o->ninputs; i++)
        vg_tokbucket_init(&t->buckets[i], o->inputs[i].rate, o->inputs[i].burst, 0);
    load_ckpt(t);
    *out = t;
    return VG_OK;
}

void vg_tail_free(vg_tail_t *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->nfiles; i++) file_free(t->files[i]);
    vg_free(t->files);
    vg_free(t->buckets);
    vg_free(t->ckpt);
    vg_free(t->ckpt_path);
    if (t->ino_fd >= 0) close(t->ino_fd);
    vg_free(t);
}
