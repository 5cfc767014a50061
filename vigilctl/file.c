/*
 * file.c - whole-file reads for vigilctl (see file.h). Scripts and backfill
 * files are read into one capped buffer because their parsers want the whole
 * text at once, and a cap keeps a wrong path (a device, a huge log) from
 * eating memory.
 */
#include "file.h"

#include <stdio.h>

#include "vigil/buf.h"

char *vg_ctl_read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    vg_buf b;
    char chunk[1 << 16];
    size_t n;
    if (!f) return NULL;
    vg_buf_init(&b, max);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (vg_buf_append(&b, chunk, n)) break;
    int bad = ferror(f) || !feof(f);
    fclose(f);
    if (!bad && !b.data) bad = vg_buf_puts(&b, "") != VG_OK;
    if (bad) {
        vg_buf_free(&b);
        return NULL;
    }
    return vg_buf_steal(&b, len);
}
