/*
 * fuzz_wal_holds.c - the WAL's <dir>/holds file (collector/tsdb/wal_hold.c)
 * from untrusted bytes.
 *
 * The holds file is read at every start, before replay, and decides which
 * segments are skipped as released and which are kept for readers; a torn
 * or edited file must be ignored past its first bad line, never crash,
 * leak or make replay fail. The first input byte picks max_hold, the rest
 * is the file, next to three segments holding only their magic. The WAL
 * is opened, a reader takes a hold, opens and moves it, the segments are
 * released, then dormant holds are dropped; a second open must succeed.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_files.h"
#include "tsdb/wal.h"
#include "vigil/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A reader's life: hold, open what it holds, move on; then the store releases. */
static void use(vg_wal_t *w, uint64_t max_hold)
{
    vg_wal_hold_t *h = NULL;
    uint32_t no;
    int sfd;
    int64_t epoch;
    vg_wal_set_max_hold(w, max_hold);
    if (vg_wal_hold_new(w, "rw-a", 2, &h, NULL) == VG_OK) {
        int fd = vg_wal_hold_open(h, 1, &no, &sfd, &epoch);
        if (fd >= 0) close(fd);
        if (sfd >= 0) close(sfd);
        vg_wal_hold_move(h, 3);
        (void)vg_wal_hold_take_missed(h);
    }
    vg_wal_truncate(w, INT64_MAX);
    (void)vg_wal_held_bytes(w);
    vg_wal_hold_free(h);
    vg_wal_hold_forget_dormant(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t caps[] = {0, 8, 24, 1 << 20};
    char dir[] = "/dev/shm/vigil-fuzz-holds-XXXXXX", p[512];
    vg_log_threshold = -1; /* silent: damaged input is expected here */
    if (!size || !mkdtemp(dir)) return 0;
    for (int i = 1; i <= 3; i++) {
        snprintf(p, sizeof(p), "%s/%08d", dir, i);
        fz_write_file(p, "VGWAL\0\0\1", 8);
    }
    snprintf(p, sizeof(p), "%s/holds", dir);
    fz_write_file(p, data + 1, size - 1);
    vg_wal_t *w = NULL;
    if (vg_wal_open(dir, 1 << 20, 1, NULL, NULL, NULL, &w, NULL) != VG_OK) abort();
    use(w, caps[data[0] & 3]);
    vg_wal_close(w);
    if (vg_wal_open(dir, 1 << 20, 1, NULL, NULL, NULL, &w, NULL) != VG_OK) abort();
    vg_wal_close(w);
    fz_rm_tree(dir);
    return 0;
}
