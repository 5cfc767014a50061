/*
 * fuzz_remote_read.c - untrusted remote-read request bodies.
 *
 * The input is taken as the POST body of /api/v1/read: snappy-compressed
 * ReadRequest protobuf from any client. The handler must answer every input
 * with a status (never crash, read out of bounds or leak), over a small
 * store so that well-formed queries also exercise both answer forms.
 */
#include <stdint.h>
#include <string.h>

#include "api/api.h"
#include "vigil/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static vg_tsdb_t *store(void)
{
    static vg_tsdb_t *db;
    if (db) return db;
    db = vg_tsdb_new(NULL);
    vg_label_t l[] = {{"__name__", "up"}, {"job", "node"}};
    for (int64_t t = 0; db && t < 300; t++)
        vg_tsdb_append(db, "default", l, 2, t * 1000, (double)(t % 7), NULL, NULL);
    return db;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static vg_api_t *api;
    vg_promql_opts o = {.max_samples = 100000};
    if (!api && store()) api = vg_api_new(store(), &o);
    if (!api) return 0;
    uint8_t *copy = vg_malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    vg_buf out;
    vg_buf_init(&out, 64u << 20);
    const char *ct, *enc;
    int status = vg_api_remote_read(api, NULL, copy, size, &out, &ct, &enc);
    if (status != 200 && status != 400 && status != 500) __builtin_trap();
    vg_buf_free(&out);
    vg_free(copy);
    return 0;
}
