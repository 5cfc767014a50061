/*
 * fuzz_audit_wal.c - the audit store's per-hour WAL (collector/auditstore/
 * store.c, replayed by open.c) from untrusted bytes.
 *
 * A WAL file holds the records of one tenant's open hour until it is
 * sealed into a segment; it is replayed at every start, after a crash or on
 * a bad disk, so replay must keep the good prefix and cut the rest, never
 * crash, leak or trip UBSan. The input is <store>/default/wal/
 * 1699999200000.wal. The store is opened, queried and asked for stats, the
 * hour is sealed (the replayed records go through the segment writer), and
 * a second open must succeed and answer a query.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_files.h"
#include "auditstore/auditstore.h"
#include "vigil/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void query(vg_auditstore_t *s, const char *user)
{
    vg_audit_query q = {.tenant = "default", .user_id = user, .limit = 50};
    vg_audit_tier_stats st;
    char next[64];
    vg_buf out;
    vg_buf_init(&out, 0);
    (void)vg_auditstore_query(s, &q, &out, next, NULL);
    vg_buf_free(&out);
    (void)vg_auditstore_stats(s, &st, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[] = "/dev/shm/vigil-fuzz-awal-XXXXXX", p[256];
    vg_log_threshold = -1; /* silent: damaged input is expected here */
    if (!mkdtemp(dir)) return 0;
    snprintf(p, sizeof(p), "%s/default", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/default/wal", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/default/wal/1699999200000.wal", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0 && size && write(fd, data, size) != (ssize_t)size) {
        /* a short write is just another input */
    }
    if (fd >= 0) close(fd);
    vg_auditstore_opts o = {.dir = dir, .interval_ms = -1, .seal_grace_ms = -1};
    vg_auditstore_t *s = NULL;
    if (vg_auditstore_open(&o, &s, NULL) == VG_OK) {
        query(s, NULL);
        query(s, "u1");
        (void)vg_auditstore_seal_all(s, NULL, NULL);
        vg_auditstore_free(s);
        if (vg_auditstore_open(&o, &s, NULL) != VG_OK) abort();
        query(s, NULL);
        vg_auditstore_free(s);
    }
    fz_rm_tree(dir);
    return 0;
}
