/*
 * fuzz_chunk_int.c - decode untrusted scaled-integer chunk bytes (a block
 * file is untrusted input).
 *
 * The decoder must never read out of bounds or loop, whatever the header
 * claims; next() and read() in odd batches must agree; and when the bytes
 * decode, encoding the samples again must give a chunk that decodes to the
 * same samples bit for bit (or be refused with VG_EAGAIN).
 */
#include <stdint.h>
#include <string.h>

#include "tsdb/chunk.h"
#include "tsdb/chunk_int.h"
#include "vigil/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXS 65535

static int same(double a, double b)
{
    return memcmp(&a, &b, sizeof(a)) == 0;
}

static void check(const uint8_t *data, size_t size, int64_t *ts, double *v, int64_t *tb, double *vb)
{
    vg_chunk_int_iter a;
    vg_chunk_iter b;
    size_t n = 0, m = 0, k;
    if (!vg_chunk_is_compact(data, size)) return; /* XOR: fuzz_chunk's business */
    vg_chunk_int_iter_init(&a, data, size);
    while (n < MAXS && vg_chunk_int_iter_next(&a, &ts[n], &v[n])) n++;
    vg_chunk_iter_init(&b, data, size);
    while ((k = vg_chunk_iter_read(&b, tb + m, vb + m, 1 + (m % 97))) > 0) m += k;
    if (m != n || vg_chunk_iter_err(&b) != a.err) __builtin_trap();
    for (size_t i = 0; i < n; i++)
        if (ts[i] != tb[i] || !same(v[i], vb[i])) __builtin_trap();
    if (a.err || n == 0) return;
    vg_buf out;
    vg_buf_init(&out, 0);
    if (vg_chunk_int_encode(ts, v, n, &out) == VG_OK) {
        vg_chunk_int_iter_init(&a, (const uint8_t *)out.data, out.len);
        for (size_t i = 0; i < n; i++)
            if (!vg_chunk_int_iter_next(&a, &tb[i], &vb[i]) || tb[i] != ts[i] || !same(vb[i], v[i]))
                __builtin_trap();
    }
    vg_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Copy into an exact-size heap buffer so ASan sees any over-read. */
    uint8_t *copy = vg_malloc(size ? size : 1);
    int64_t *ts = vg_malloc(2 * MAXS * sizeof(*ts));
    double *v = vg_malloc(2 * MAXS * sizeof(*v));
    if (copy && ts && v) {
        if (size) memcpy(copy, data, size);
        check(copy, size, ts, v, ts + MAXS, v + MAXS);
    }
    vg_free(copy);
    vg_free(ts);
    vg_free(v);
    return 0;
}
