/*
 * ident.c - file identity for the tailer: (device, inode, hash of the head).
 *
 * Device and inode alone are not enough: once a file is deleted its inode is
 * free, and the next log file may get it, so a checkpoint keyed by inode
 * would resume a new file in the middle. The hash of the first bytes (up to
 * 1 KiB, fixed when first computed so it names the file for good) tells the
 * two apart. After a copytruncate the same inode holds new content; the new
 * identity is seeded with the old hash, so the new file_id is distinct even
 * when the new head happens to equal the old one.
 */
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "tail.h"

static vg_err_t read_head(int fd, char *buf, size_t want, size_t *got)
{
    *got = 0;
    while (*got < want) {
        ssize_t n = pread(fd, buf + *got, want - *got, (off_t)*got);
        if (n < 0) return VG_EIO;
        if (n == 0) break;
        *got += (size_t)n;
    }
    return VG_OK;
}

vg_err_t vg_file_ident_read(int fd, uint64_t seed, vg_file_ident *out)
{
    struct stat st;
    char head[VG_TAIL_HEAD_BYTES];
    size_t got;
    if (fstat(fd, &st) != 0) return VG_EIO;
    if (read_head(fd, head, sizeof head, &got)) return VG_EIO;
    out->dev = (uint64_t)st.st_dev;
    out->ino = (uint64_t)st.st_ino;
    out->seed = seed;
    out->head_len = (uint32_t)got;
    out->hash = XXH64(head, got, seed);
    return VG_OK;
}

int vg_file_ident_match(int fd, const vg_file_ident *id)
{
    struct stat st;
    char head[VG_TAIL_HEAD_BYTES];
    size_t got;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_dev != id->dev || (uint64_t)st.st_ino != id->ino)
        return 0;
    if (id->head_len == 0) return 1;
    if (id->head_len > sizeof head || read_head(fd, head, id->head_len, &got) ||
        got != id->head_len)
        return 0;
    return XXH64(head, got, id->seed) == id->hash;
}

void vg_file_ident_str(const vg_file_ident *id, char *out, size_t n)
{
    snprintf(out, n, "%" PRIx64 "-%" PRIx64 "-%016" PRIx64, id->dev, id->ino, id->hash);
}
