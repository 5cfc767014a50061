/*
 * blockdir.h - a scratch data directory for unit tests of the block store:
 * <tmp>/blocks/default is ready for hand-written blocks before the store is
 * opened, and everything is removed afterwards. Header-only (static
 * functions) because every test_*.c is its own program.
 */
#ifndef VIGIL_TESTS_BLOCKDIR_H
#define VIGIL_TESTS_BLOCKDIR_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256], bdir[300];

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char p[1024];
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    if (d) closedir(d);
    rmdir(path);
}

/* cmocka setup: dir = a new /tmp/vigil-blocks-XXXXXX, bdir = its blocks/default. */
static int setup(void **state)
{
    (void)state;
    vg_log_threshold = -1;
    snprintf(dir, sizeof(dir), "/tmp/vigil-blocks-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    snprintf(bdir, sizeof(bdir), "%s/blocks", dir);
    mkdir(bdir, 0755);
    snprintf(bdir, sizeof(bdir), "%s/blocks/default", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rm_tree(dir);
    return 0;
}

#endif
