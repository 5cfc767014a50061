/*
 * fuzz_nflog.c - the alerting notification log file (<data_dir>/nflog,
 * collector/alerting/nflog.c) from untrusted bytes.
 *
 * The log is read at start so a restart neither re-pages nor forgets to
 * resolve; a torn write or a bad disk can leave anything in it. The file
 * loads or is refused with VG_ECORRUPT, never a crash, leak or UBSan
 * report. A log that loads is asked and told about a notification (which
 * rewrites the file), and the rewritten file must load again with it.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_files.h"
#include "alerting/nflog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int64_t NOW = 1700000000000LL;

static void use(vg_nflog_t *l)
{
    const uint64_t firing[] = {1, 0xfeedface}, resolved[] = {7};
    (void)vg_nflog_needs_update(l, "{}:{alertname=\"Down\"}/hook/0", firing, 2, resolved, 1, 1,
                                3600000, NOW);
    (void)vg_nflog_needs_update(l, "", NULL, 0, NULL, 0, 0, 0, NOW);
    if (vg_nflog_log(l, "{}:{alertname=\"Down\"}/hook/0", firing, 2, resolved, 1, NOW, NULL))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[] = "/dev/shm/vigil-fuzz-nflog-XXXXXX", p[512];
    if (!mkdtemp(dir)) return 0;
    snprintf(p, sizeof(p), "%s/nflog", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0 && size && write(fd, data, size) != (ssize_t)size) {
        /* a short write is just another input */
    }
    if (fd >= 0) close(fd);
    vg_nflog_t *l = NULL;
    if (vg_nflog_open(dir, 0, &l, NULL) == VG_OK) {
        use(l);
        vg_nflog_free(l);
        if (vg_nflog_open(dir, 0, &l, NULL) != VG_OK || vg_nflog_count(l) < 1) abort();
        vg_nflog_free(l);
    }
    fz_rm_tree(dir);
    return 0;
}
