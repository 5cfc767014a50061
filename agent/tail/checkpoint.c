/*
 * checkpoint.c - the tailer's checkpoint file: one line per file, written
 * atomically (temp file, fsync, rename, fsync of the directory) so a crash
 * leaves either the old or the new file, never half of one.
 *
 * Text, so an operator can read it: "vigil-tail 1" then per file
 * "dev ino hash seed head_len pos path" (numbers in hex, path last so it may
 * hold spaces). A line that does not parse makes the whole file VG_ECORRUPT.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tail.h"
#include "vigil/alloc.h"
#include "vigil/buf.h"

#define MAGIC "vigil-tail 1\n"

static vg_err_t write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return VG_EIO;
        p += w;
        n -= (size_t)w;
    }
    return VG_OK;
}

static vg_err_t fsync_dir(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return VG_EIO;
    int rc = fsync(fd);
    close(fd);
    return rc ? VG_EIO : VG_OK;
}

static vg_err_t render(const vg_tail_ckpt *c, size_t n, vg_buf *b)
{
    vg_err_t rc = vg_buf_puts(b, MAGIC);
    for (size_t i = 0; i < n && !rc; i++)
        rc = vg_buf_printf(
            b, "%" PRIx64 " %" PRIx64 " %" PRIx64 " %" PRIx64 " %" PRIx32 " %" PRIx64 " %s\n",
            c[i].id.dev, c[i].id.ino, c[i].id.hash, c[i].id.seed, c[i].id.head_len, c[i].pos,
            c[i].path);
    return rc;
}

vg_err_t vg_tail_ckpt_save(const char *path, const vg_tail_ckpt *c, size_t n, vg_error *err)
{
    char tmp[4096];
    vg_buf b;
    vg_err_t rc;
    int fd = -1;
    vg_buf_init(&b, 0);
    if ((rc = render(c, n, &b))) goto out;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
        (rc = write_all(fd, b.data, b.len)) || fsync(fd) != 0 || close(fd) != 0 ||
        (fd = -1, rename(tmp, path) != 0) || fsync_dir(path)) {
        rc = vg_error_set(err, VG_EIO, "checkpoint %s: %s", path, strerror(errno));
        goto out;
    }
out:
    if (fd >= 0) close(fd);
    vg_buf_free(&b);
    return rc;
}

static int parse_line(char *line, vg_tail_ckpt *e)
{
    int off = 0;
    memset(e, 0, sizeof *e);
    if (sscanf(line, "%" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx32 " %" SCNx64 " %n",
               &e->id.dev, &e->id.ino, &e->id.hash, &e->id.seed, &e->id.head_len, &e->pos,
               &off) != 6 ||
        !off || e->id.head_len > VG_TAIL_HEAD_BYTES)
        return 0;
    snprintf(e->path, sizeof e->path, "%s", line + off);
    return 1;
}

vg_err_t vg_tail_ckpt_load(const char *path, vg_tail_ckpt **out, size_t *n, vg_error *err)
{
    char line[512];
    size_t cap = 0;
    vg_err_t rc = VG_OK;
    *out = NULL;
    *n = 0;
    FILE *f = fopen(path, "re");
    if (!f) return vg_error_set(err, VG_ENOTFOUND, "checkpoint %s: %s", path, strerror(errno));
    if (!fgets(line, sizeof line, f) || strcmp(line, MAGIC)) {
        rc = vg_error_set(err, VG_ECORRUPT, "checkpoint %s: bad header", path);
        goto out;
    }
    while (fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        if (!l || line[l - 1] != '\n') {
            rc = vg_error_set(err, VG_ECORRUPT, "checkpoint %s: truncated line", path);
            goto out;
        }
        line[l - 1] = '\0';
        if (*n == cap) {
            vg_tail_ckpt *g = vg_realloc(*out, (cap = cap ? cap * 2 : 16) * sizeof *g);
            if (!g) {
                rc = vg_error_set(err, VG_ENOMEM, "out of memory");
                goto out;
            }
            *out = g;
        }
        if (!parse_line(line, &(*out)[*n])) {
            rc = vg_error_set(err, VG_ECORRUPT, "checkpoint %s: bad entry %zu", path, *n + 1);
            goto out;
        }
        (*n)++;
    }
out:
    fclose(f);
    if (rc) {
        vg_free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}
