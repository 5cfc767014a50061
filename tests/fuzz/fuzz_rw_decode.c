/*
 * fuzz_rw_decode.c - the hand-written WriteRequest decoder against protobuf-c.
 *
 * The input is a raw (uncompressed) WriteRequest. Whenever protobuf-c's
 * generic unpack accepts it, vg_rw_unpack must accept it too and give the
 * same series: label names and values, sample values bit for bit and
 * timestamps, and as many metadata entries. vg_rw_unpack may accept what
 * protobuf-c refuses only inside what it skips unread (exemplars), and must
 * never read past the input (it is copied so ASan sees the end).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "remotewrite/rw_decode.h"
#include "vigil/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_series(const Prometheus__TimeSeries *a, const Prometheus__TimeSeries *b)
{
    if (a->n_labels != b->n_labels || a->n_samples != b->n_samples) return 0;
    for (size_t i = 0; i < a->n_labels; i++)
        if (strcmp(a->labels[i]->name, b->labels[i]->name) ||
            strcmp(a->labels[i]->value, b->labels[i]->value))
            return 0;
    for (size_t i = 0; i < a->n_samples; i++)
        if (memcmp(&a->samples[i]->value, &b->samples[i]->value, sizeof(double)) ||
            a->samples[i]->timestamp != b->samples[i]->timestamp)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = vg_malloc(size ? size : 1);
    vg_arena_t *a = vg_arena_new(0);
    if (!copy || !a) goto out;
    if (size) memcpy(copy, data, size);
    Prometheus__WriteRequest *mine = NULL;
    vg_err_t rc = vg_rw_unpack(copy, size, a, (size_t)1 << 30, &mine);
    if (rc != VG_OK && rc != VG_EPARSE) __builtin_trap();
    Prometheus__WriteRequest *ref = prometheus__write_request__unpack(NULL, size, copy);
    if (ref) {
        if (rc != VG_OK) __builtin_trap();
        if (mine->n_timeseries != ref->n_timeseries || mine->n_metadata != ref->n_metadata)
            __builtin_trap();
        for (size_t i = 0; i < ref->n_timeseries; i++)
            if (!same_series(mine->timeseries[i], ref->timeseries[i])) __builtin_trap();
        prometheus__write_request__free_unpacked(ref, NULL);
    }
out:
    vg_arena_free(a);
    vg_free(copy);
    return 0;
}
