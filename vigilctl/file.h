/*
 * file.h - reading a whole input file for vigilctl's subcommands.
 */
#ifndef VIGIL_VIGILCTL_FILE_H
#define VIGIL_VIGILCTL_FILE_H

#include <stddef.h>

/* The whole of path, NUL-terminated, at most max bytes; *len gets the size.
 * NULL when it cannot be read or is larger. The caller frees with vg_free. */
char *vg_ctl_read_file(const char *path, size_t max, size_t *len);

#endif
