/*
 * fuzz_envelope.c - bytes from the network into vg_envelope_decode.
 *
 * Small limits (1 MiB) keep each run fast and make the size checks, the
 * streaming cap and the window cap reachable from short inputs. A decoded
 * batch is walked so that every pointer protobuf-c handed out is touched.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vigil/envelope.h"

static size_t walk(const vg_batch_t *b)
{
    size_t n = strlen(b->agent_id) + strlen(b->node) + strlen(b->tenant);
    if (b->payload_case == VIGIL__V1__BATCH__PAYLOAD_METRICS) {
        for (size_t i = 0; i < b->metrics->n_timeseries; i++) {
            const Prometheus__TimeSeries *ts = b->metrics->timeseries[i];
            for (size_t j = 0; j < ts->n_labels; j++)
                n += strlen(ts->labels[j]->name) + strlen(ts->labels[j]->value);
            n += ts->n_samples + ts->n_exemplars;
        }
        n += b->metrics->n_metadata;
    } else {
        for (size_t i = 0; i < b->audit->n_records; i++)
            n += strlen(b->audit->records[i]->original_json);
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vg_envelope_limits lim = {.max_compressed = 1u << 20, .max_decompressed = 1u << 20};
    vg_batch_t *b = NULL;
    vg_error err;
    if (vg_envelope_decode(data, size, &lim, &b, &err) == VG_OK) {
        volatile size_t n = walk(b);
        (void)n;
        vg_envelope_batch_free(b);
    }
    return 0;
}
