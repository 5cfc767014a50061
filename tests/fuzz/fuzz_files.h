/*
 * fuzz_files.h - files for the harnesses whose parser reads from disk (WAL
 * segments, spool, checkpoints, silences, ...): write an input's bytes to a
 * file, and remove a harness's directory tree afterwards. Header-only, as
 * each harness is one program.
 */
#ifndef VIGIL_TESTS_FUZZ_FILES_H
#define VIGIL_TESTS_FUZZ_FILES_H

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* path = d[0..n), created or replaced; a failed or short write is just
 * another input for the parser. */
static inline void fz_write_file(const char *path, const void *d, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return;
    if (n && write(fd, d, n) != (ssize_t)n) {
        /* nothing to do: see above */
    }
    close(fd);
}

/* Remove path and everything below it (links are removed, not followed). */
static inline void fz_rm_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char p[1024];
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (snprintf(p, sizeof(p), "%s/%s", path, e->d_name) >= (int)sizeof(p)) continue;
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            fz_rm_tree(p);
        else
            unlink(p);
    }
    if (d) closedir(d);
    rmdir(path);
}

#endif
