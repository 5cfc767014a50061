/*
 * tail.h - follow log files matched by globs: identity, rotation, rate
 * limits and checkpoints that move only when the caller says the lines are
 * safe.
 *
 * Shape: vg_tail_poll() does one whole pass (re-glob, notice renames,
 * truncation and deletion, read what is new, hand out complete lines) and
 * vg_tail_wait() only sleeps until inotify hints that a pass is worth doing
 * (or a timeout passes). Correctness never depends on inotify, so a missing
 * inotify, an overflowed queue or a glob inotify cannot watch just means
 * the next timed pass finds the change; and a test drives the tailer step by
 * step with vg_tail_poll alone, with an injected clock and no sleeps.
 *
 * Lines go to a callback; returning an error refuses that line (it is handed
 * out again next pass), which is how a sink that cannot take more stops the
 * reading: the files themselves hold what was not read. vg_tail_commit()
 * persists, atomically, the position after every line handed out so far;
 * the caller calls it only once the sink acknowledged all of those lines, so
 * a crash re-reads unacknowledged lines and never skips one.
 */
#ifndef VIGIL_AGENT_TAIL_H
#define VIGIL_AGENT_TAIL_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/error.h"

/* ---- file identity: (device, inode, hash of the first 1 KiB) ---- */
#define VG_TAIL_HEAD_BYTES 1024

typedef struct vg_file_ident {
    uint64_t dev, ino;
    uint64_t hash;     /* XXH64 of the first head_len bytes with seed */
    uint64_t seed;     /* 0, or the previous identity's hash after a truncation */
    uint32_t head_len; /* 1..1024 once known; 0 = the file was empty, identity pending */
} vg_file_ident;

/* Identity of the open file fd (fstat, pread of up to 1 KiB). An empty file
 * gets head_len 0. VG_EIO on a failed stat or read. */
vg_err_t vg_file_ident_read(int fd, uint64_t seed, vg_file_ident *out);
/* 1 when fd is still the file id describes: same device and inode and the
 * same first head_len bytes (so a truncated-and-rewritten file or a reused
 * inode does not match). */
int vg_file_ident_match(int fd, const vg_file_ident *id);
/* "dev-ino-hash" in hex: the file_id of AuditRecord. */
void vg_file_ident_str(const vg_file_ident *id, char *out, size_t n);

/* ---- token bucket (lines/s with a burst), clock injected ---- */
typedef struct vg_tokbucket {
    double rate, burst, tokens; /* rate 0 = unlimited */
    int64_t last_ms;
} vg_tokbucket;

/* Full bucket at now_ms; burst < 1 becomes max(rate, 1). */
void vg_tokbucket_init(vg_tokbucket *b, double rate, double burst, int64_t now_ms);
/* Take one token at now_ms: 1 if there was one, else 0. */
int vg_tokbucket_take(vg_tokbucket *b, int64_t now_ms);
/* Milliseconds from now_ms until a token is there (0 = now). */
int64_t vg_tokbucket_wait_ms(const vg_tokbucket *b, int64_t now_ms);

/* ---- checkpoints ---- */
typedef struct vg_tail_ckpt {
    vg_file_ident id;
    uint64_t pos; /* offset after the last acknowledged line */
    char path[256];
} vg_tail_ckpt;

/* Write n entries to path atomically: path.tmp, fsync, rename, fsync of the directory. */
vg_err_t vg_tail_ckpt_save(const char *path, const vg_tail_ckpt *c, size_t n, vg_error *err);
/* Read path into *out (vg_free it). A missing file is VG_ENOTFOUND with *n = 0;
 * a damaged one is VG_ECORRUPT (the caller starts over rather than guessing). */
vg_err_t vg_tail_ckpt_load(const char *path, vg_tail_ckpt **out, size_t *n, vg_error *err);

/* ---- the tailer ---- */
typedef struct vg_tail vg_tail_t;

typedef struct vg_tail_input {
    const char *const *paths; /* globs */
    size_t npaths;
    const char *const *exclude; /* globs matched against the full path and the base name */
    size_t nexclude;
    size_t max_line_bytes; /* 0 = 64 KiB; longer lines are handed out with too_long set */
    int read_from_head;    /* files found at the very first start: from offset 0, not the end */
    double rate;           /* lines/s; 0 = unlimited */
    double burst;          /* lines; 0 = rate */
} vg_tail_input;

typedef struct vg_tail_line {
    size_t input; /* index into the inputs */
    const char *path;
    const char *file_id; /* vg_file_ident_str */
    uint64_t offset;     /* of the line's first byte */
    const char *data;    /* the line without its newline; for too_long, its first max bytes */
    size_t len;
    uint64_t full_len; /* the real length (> max_line_bytes when too_long) */
    int too_long;
} vg_tail_line;

/* VG_OK takes the line; anything else refuses it (handed out again next pass)
 * and ends the pass with that code. */
typedef vg_err_t (*vg_tail_line_fn)(void *ud, const vg_tail_line *l);

typedef struct vg_tail_opts {
    const vg_tail_input *inputs; /* borrowed; must outlive the tailer */
    size_t ninputs;
    const char *checkpoint_path; /* NULL = nothing persisted (tests) */
    vg_tail_line_fn on_line;
    void *ud;
    int64_t rotate_linger_ms; /* keep a renamed/deleted file open this long after it last
                                 grew, reading to EOF; 0 = 5000 */
    int64_t rescan_ms;        /* re-glob at least this often; 0 = 1000 */
    int no_inotify;           /* 1 = timed passes only */
} vg_tail_opts;

/* New tailer; loads the checkpoint (a damaged one is logged and ignored, so
 * the agent starts; files are then read per read_from_head). */
vg_err_t vg_tail_new(const vg_tail_opts *o, vg_tail_t **out, vg_error *err);
/* Close every file. Does not commit. NULL is a no-op. */
void vg_tail_free(vg_tail_t *t);
/* One pass at now_ms. *wait_ms (may be NULL) gets how long the caller may
 * sleep before the next pass is useful: 0 when lines were left unread (a
 * rate limit or a refused line), else a rate-limit or linger deadline, else -1
 * (wait for inotify or the caller's own timeout). Returns the callback's code
 * when it refused a line, else VG_OK (file errors are logged, not returned). */
vg_err_t vg_tail_poll(vg_tail_t *t, int64_t now_ms, int64_t *wait_ms);
/* Sleep until inotify reports a change under a watched directory or
 * timeout_ms passes. */
void vg_tail_wait(vg_tail_t *t, int timeout_ms);
/* Persist the position after every line handed out so far. Call only after
 * the sink acknowledged all of them. No-op without checkpoint_path. */
vg_err_t vg_tail_commit(vg_tail_t *t, vg_error *err);
/* Number of files being followed (for tests and a gauge). */
size_t vg_tail_nfiles(const vg_tail_t *t);

#endif
