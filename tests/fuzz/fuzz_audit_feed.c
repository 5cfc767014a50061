/*
 * fuzz_audit_feed.c - the audit feed's files (collector/auditstore/feed.c)
 * from untrusted bytes.
 *
 * The feed is read back at every start (the last file's torn tail cut, its
 * records counted for the next seq) and by each SIEM output from its
 * durable cursor; a crash or a bad disk can leave anything in both. The
 * input is split at "\n--8<--\n" into feed file 0000000000000000.log, the
 * cursor file of output "siem" and feed file 0000000000000003.log. The feed
 * is opened, read from the loaded cursor to its end, the cursor saved, one
 * record appended and read; a second open must succeed. Nothing may crash,
 * leak, loop or read out of bounds, whatever the lengths and cursor say.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_files.h"
#include "auditstore/feed.h"
#include "vigil/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEP     "\n--8<--\n"
#define SEP_LEN 8

static void lay_out(const char *dir, const uint8_t *data, size_t size)
{
    static const char *const names[] = {"0000000000000000.log", "cursor-siem",
                                        "0000000000000003.log"};
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

/* Read from *c until nothing more comes, touching every record. */
static void drain(vg_feed_t *f, vg_feed_cursor *c)
{
    vg_feed_batch b = {0};
    size_t len = 0;
    for (int i = 0; i < 200; i++) {
        if (vg_feed_read(f, c, 16, &b, NULL) != VG_OK) break;
        for (size_t k = 0; k < b.n; k++) len += strlen(b.recs[k].tenant) + b.recs[k].len;
        int moved = memcmp(&b.next, c, sizeof(*c)) != 0;
        *c = b.next;
        if (!b.n && !moved) break;
    }
    if (len == SIZE_MAX) abort(); /* keeps the reads */
    vg_feed_batch_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[] = "/dev/shm/vigil-fuzz-feed-XXXXXX";
    vg_log_threshold = -1; /* silent: damaged input is expected here */
    if (!mkdtemp(dir)) return 0;
    lay_out(dir, data, size);
    vg_feed_opts o = {.dir = dir, .roll_bytes = 4096};
    vg_feed_t *f = NULL;
    vg_feed_cursor c;
    if (vg_feed_open(&o, &f, NULL) == VG_OK) {
        if (vg_feed_cursor_load(f, "siem", &c, NULL) == VG_OK) {
            drain(f, &c);
            (void)vg_feed_cursor_save(f, "siem", &c, NULL);
            if (vg_feed_append(f, "fz", 1700000000000LL, "{\"a\":1}", 7, NULL) == VG_OK)
                (void)vg_feed_sync(f, NULL);
            drain(f, &c);
        }
        (void)vg_feed_forget_unknown(f, NULL);
        vg_feed_free(f);
        if (vg_feed_open(&o, &f, NULL) != VG_OK) abort();
        vg_feed_free(f);
    }
    fz_rm_tree(dir);
    return 0;
}
