/*
 * fuzz_tail_ckpt.c - the log tailer's checkpoint file (agent/tail/checkpoint.c)
 * from untrusted bytes.
 *
 * The agent reads the checkpoint at start to find where each tailed file
 * was acknowledged; a crash, a bad disk or an operator's edit can leave
 * anything there. vg_tail_ckpt_load must load it or refuse it whole, never
 * crash or leak. Whatever loads is saved and loaded again: the entries must
 * come back the same, so a restart never moves a file's position.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tail/tail.h"
#include "vigil/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const vg_tail_ckpt *a, const vg_tail_ckpt *b)
{
    return a->id.dev == b->id.dev && a->id.ino == b->id.ino && a->id.hash == b->id.hash &&
           a->id.seed == b->id.seed && a->id.head_len == b->id.head_len && a->pos == b->pos &&
           !strcmp(a->path, b->path);
}

static void round_trip(const char *path, const vg_tail_ckpt *c, size_t n)
{
    vg_tail_ckpt *d = NULL;
    size_t m = 0;
    if (vg_tail_ckpt_save(path, c, n, NULL) != VG_OK) return; /* e.g. a full /dev/shm */
    if (vg_tail_ckpt_load(path, &d, &m, NULL) != VG_OK || m != n) abort();
    for (size_t i = 0; i < n; i++)
        if (!same(&c[i], &d[i])) abort();
    vg_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[] = "/dev/shm/vigil-fuzz-ckpt-XXXXXX", p[128], q[128], t[140];
    if (!mkdtemp(dir)) return 0;
    snprintf(p, sizeof(p), "%s/checkpoint", dir);
    snprintf(q, sizeof(q), "%s/again", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        if (size && write(fd, data, size) != (ssize_t)size) {
            /* a short write is just another input */
        }
        close(fd);
    }
    vg_tail_ckpt *c = NULL;
    size_t n = 0;
    if (vg_tail_ckpt_load(p, &c, &n, NULL) == VG_OK) {
        round_trip(q, c, n);
        vg_free(c);
    }
    snprintf(t, sizeof(t), "%s.tmp", q);
    unlink(t);
    unlink(q);
    unlink(p);
    rmdir(dir);
    return 0;
}
