/*
 * fuzz_spool.c - arbitrary bytes as a spool segment file.
 *
 * A spool's files are written by the agent itself, but a crash, a full disk
 * or a bad block can leave anything in them, and the agent must come back
 * up: open() may skip or truncate, never crash, hang or leak. The input is
 * written as the first segment (the first byte, when present, chooses
 * whether a second copy becomes a later, sealed segment), then the harness
 * opens the spool, drains it, appends, and opens it once more.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_files.h"
#include "vigil/log.h"
#include "vigil/spool.h"

static void drain(const char *dir, int append)
{
    vg_spool_opts o = {
        .dir = dir, .max_bytes = 1 << 20, .segment_bytes = 8192, .sync_interval_ms = -1};
    vg_spool_t *s = NULL;
    if (vg_spool_open(&o, NULL, &s, NULL)) return;
    vg_spool_rec r;
    for (int i = 0; i < 10000 && vg_spool_peek(s, &r, NULL) == VG_OK; i++)
        if (vg_spool_ack(s, r.id, NULL)) break;
    if (append) {
        vg_spool_rec w = {.seq = 1, .tenant = "t", .data = (const uint8_t *)"x", .len = 1};
        vg_spool_append(s, &w, NULL);
    }
    vg_spool_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[] = "/tmp/vigil-fuzz-spool-XXXXXX", p[512];
    vg_log_set_level(VG_LOG_ERROR); /* damaged input is expected here */
    if (!mkdtemp(dir)) return 0;
    snprintf(p, sizeof(p), "%s/%020d.seg", dir, 1);
    fz_write_file(p, data, size);
    if (size && (data[0] & 1)) {
        snprintf(p, sizeof(p), "%s/%020d.seg", dir, 1000);
        fz_write_file(p, data, size);
    }
    drain(dir, 1);
    drain(dir, 0);
    fz_rm_tree(dir);
    return 0;
}
