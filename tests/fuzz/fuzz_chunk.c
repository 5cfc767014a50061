/*
 * fuzz_chunk.c - decode untrusted Gorilla chunk bytes.
 *
 * The input is treated as an encoded chunk. The decoder must never read out
 * of bounds or loop forever, whatever the header claims. When the bytes do
 * decode, re-encoding the samples must reproduce them bit for bit.
 */
#include <stdint.h>
#include <string.h>

#include "tsdb/chunk.h"
#include "vigil/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void reencode_check(const uint8_t *data, size_t size)
{
    vg_chunk_iter it;
    int64_t t, prev = 0;
    double v;
    int first = 1;
    vg_chunk_t *c = vg_chunk_new();
    if (!c) return;
    vg_chunk_iter_init(&it, data, size);
    while (vg_chunk_iter_next(&it, &t, &v)) {
        if (!first && t <= prev) break; /* the encoder expects increasing timestamps */
        vg_chunk_append(c, t, v);
        prev = t;
        first = 0;
    }
    size_t len;
    const uint8_t *b = vg_chunk_bytes(c, &len);
    vg_chunk_iter a, z;
    int64_t ta, tz;
    double va, vz;
    vg_chunk_iter_init(&a, b, len);
    vg_chunk_iter_init(&z, data, size);
    while (vg_chunk_iter_next(&a, &ta, &va)) {
        if (!vg_chunk_iter_next(&z, &tz, &vz) || ta != tz || memcmp(&va, &vz, sizeof(va)) != 0)
            __builtin_trap();
    }
    vg_chunk_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Copy into an exact-size heap buffer so ASan sees any over-read. */
    uint8_t *copy = vg_malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    reencode_check(copy, size);
    vg_free(copy);
    return 0;
}
