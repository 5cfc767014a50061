/*
 * fuzz_wal.c - WAL replay (collector/tsdb/wal.c) over untrusted files.
 *
 * Segments and series files are read back from disk at every start, after
 * a crash, a full disk or a bad block, so replay must skip and count a
 * corrupt record, cut a torn tail, and never crash, hang or leak. The input
 * is split at "\n--8<--\n" into up to three files: segment 00000001, the
 * series file series.00000001 (absent with one part: a segment of the
 * format before series files) and segment 00000002. The remote-write
 * sender's reader (collector/remotewrite/walwatch.c) tails the files first,
 * as it does the live WAL; then the WAL is opened with a replay callback
 * that touches every label, one sample is logged and synced, and a second
 * open must succeed and replay that sample.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_files.h"
#include "remotewrite/walwatch.h"
#include "tsdb/wal.h"
#include "vigil/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEP     "\n--8<--\n"
#define SEP_LEN 8
#define MARK_TS 4242424242LL

typedef struct seen {
    uint64_t series;
    int mark; /* the sample this harness logged was replayed */
} seen;

static vg_err_t on_series(void *ud, const char *tenant, const vg_label_t *l, size_t n,
                          uint64_t *handle)
{
    seen *s = ud;
    size_t len = strlen(tenant);
    for (size_t i = 0; i < n; i++) len += strlen(l[i].name) + strlen(l[i].value);
    *handle = ++s->series + (len & 1);
    return VG_OK;
}

static void on_sample(void *ud, uint64_t handle, int64_t ts, double v)
{
    seen *s = ud;
    (void)handle;
    if (ts == MARK_TS && v == 1.5) s->mark = 1;
}

/* Write the parts of the input as the WAL's files. */
static void lay_out(const char *dir, const uint8_t *data, size_t size)
{
    static const char *const names[] = {"00000001", "series.00000001", "00000002"};
    char p[512];
    const uint8_t *at = data, *end = data + size;
    for (int i = 0; i < 3 && at; i++) {
        const uint8_t *cut = memmem(at, (size_t)(end - at), SEP, SEP_LEN);
        size_t n = cut ? (size_t)(cut - at) : (size_t)(end - at);
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        fz_write_file(p, at, n);
        at = cut ? cut + SEP_LEN : NULL;
    }
}

/* Tail the files as the remote-write sender does, touching every sample's series. */
static void watch(const char *dir)
{
    vg_walwatch_t *ww = NULL;
    vg_ww_cursor start = {0}, pos;
    vg_ww_sample out[64];
    uint64_t lost = 0;
    size_t len = 0;
    if (vg_walwatch_new(dir, &start, NULL, &ww, NULL) != VG_OK) return;
    for (int i = 0, idle = 0; i < 2000 && idle < 3; i++) {
        int seg_end = 0;
        size_t n = vg_walwatch_read(ww, out, 64, &pos, &seg_end, &lost);
        for (size_t k = 0; k < n; k++) {
            const vg_ww_series *se = out[k].series;
            len += strlen(se->tenant);
            for (size_t j = 0; j < se->n; j++) len += strlen(se->labels[j].value);
        }
        idle = n || seg_end ? 0 : idle + 1;
    }
    if (len == SIZE_MAX) abort(); /* keeps the reads */
    vg_walwatch_free(ww);
}

/* Log one sample of a new series and wait for it to be on disk. */
static void log_mark(vg_wal_t *w)
{
    vg_label_t l[] = {{"__name__", "up"}, {"job", "fuzz"}};
    vg_wal_batch b;
    uint64_t pos;
    vg_wal_batch_init(&b);
    if (vg_wal_batch_series(&b, 77, "t", l, 2) || vg_wal_batch_sample(&b, 77, MARK_TS, 1.5))
        abort();
    if (vg_wal_write(w, &b, &pos, NULL) || vg_wal_sync(w, pos, NULL)) abort();
    vg_wal_batch_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[] = "/dev/shm/vigil-fuzz-wal-XXXXXX";
    vg_log_threshold = -1; /* silent: damaged input is expected here */
    if (!mkdtemp(dir)) return 0;
    lay_out(dir, data, size);
    watch(dir);
    seen s = {0};
    vg_wal_replay_cb cb = {.on_series = on_series, .on_sample = on_sample, .ud = &s};
    vg_wal_stats st;
    vg_wal_t *w = NULL;
    if (vg_wal_open(dir, 1 << 20, 1, &cb, NULL, &st, &w, NULL) == VG_OK) {
        log_mark(w);
        vg_wal_close(w);
        memset(&s, 0, sizeof(s));
        if (vg_wal_open(dir, 1 << 20, 1, &cb, NULL, &st, &w, NULL) != VG_OK || !s.mark) abort();
        vg_wal_close(w);
    }
    fz_rm_tree(dir);
    return 0;
}
