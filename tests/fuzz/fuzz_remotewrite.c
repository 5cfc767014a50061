/*
 * fuzz_remotewrite.c - untrusted remote-write bodies, end to end.
 *
 * The first input byte picks the layer to aim at: with its low bit clear the
 * rest is the POST body as a sender would send it (snappy block around a
 * WriteRequest), so snappy's header and length checks are fuzzed; with it set
 * the rest is the raw protobuf, which the harness snappy-compresses first so
 * the fuzzer reaches protobuf decoding, label checks and the store without
 * having to learn snappy. Every input must get a status from the small set
 * the receiver may answer, never a crash, an out-of-bounds read or a leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "remotewrite/receiver.h"
#include "vigil/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const uint8_t *body, size_t len)
{
    vg_tsdb_t *db = vg_tsdb_new(NULL);
    vg_rw_opts o = {.max_decoded = 1u << 20};
    vg_rw_receiver_t *r = db ? vg_rw_receiver_new(db, NULL, &o) : NULL;
    if (r) {
        vg_rw_result res;
        vg_rw_handle(r, "application/x-protobuf", "snappy", NULL, body, len, &res);
        int ok = res.status == 204 || res.status == 400 || res.status == 413 || res.status == 500;
        if (!ok || res.samples_written > res.samples_received) __builtin_trap();
        /* 204 means every sample received was stored (or already was) */
        if (res.status == 204 && res.samples_written != res.samples_received) __builtin_trap();
    }
    vg_rw_receiver_free(r);
    vg_tsdb_free(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    const uint8_t *rest = data + 1;
    size_t n = size - 1;
    /* copy so that reads past the end are caught by ASan */
    uint8_t *copy = vg_malloc(n ? n : 1);
    if (!copy) return 0;
    if (n) memcpy(copy, rest, n);
    if (!(data[0] & 1)) {
        run(copy, n);
    } else {
        size_t zl = snappy_max_compressed_length(n);
        char *z = vg_malloc(zl);
        if (z && snappy_compress((const char *)copy, n, z, &zl) == SNAPPY_OK)
            run((const uint8_t *)z, zl);
        vg_free(z);
    }
    vg_free(copy);
    return 0;
}
