/*
 * fuzz_eval.c - the PromQL evaluator on arbitrary query text.
 *
 * A small store (counters, a gauge with a stale marker, a classic
 * histogram) is built once; every input that parses is run as an instant
 * query and as a short range query under tight limits. The evaluator must
 * return a result or an error with a message: never crash, leak, hang or
 * allocate without bound (the sample cap and the deadline are what stop a
 * hostile query, so both are set low here).
 */
#include <stdint.h>
#include <string.h>

#include "promql/engine.h"
#include "tsdb/tsdb.h"
#include "vigil/alloc.h"
#include "vigil/expfmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static vg_tsdb_t *db;
static vg_tsdb_queryable tq;
static vg_promql_engine_t *eng;

static void put(const char *name, const char *k, const char *v, int64_t t, double x)
{
    vg_label_t l[2] = {{VG_METRIC_NAME, name}, {k, v}};
    vg_tsdb_append(db, "default", l, 2, t, x, NULL, NULL);
}

static void init(void)
{
    db = vg_tsdb_new(NULL);
    tq.db = db;
    tq.tenant = "default";
    vg_promql_opts o = {.max_samples = 20000, .timeout_ms = 2000};
    eng = vg_promql_engine_new(&o);
    static const char *les[] = {"0.1", "1", "10", "+Inf"};
    for (int i = 0; i < 40; i++) {
        int64_t t = (int64_t)i * 15000;
        put("req_total", "job", "a", t, i * 3.0);
        put("req_total", "job", "b", t, i % 7);
        put("temp", "room", "x", t, i == 20 ? vg_stale_nan() : 20 - i * 0.5);
        for (int k = 0; k < 4; k++) put("lat_bucket", "le", les[k], t, (double)(i * (k + 1)));
    }
}

static void run(const char *q, int range)
{
    vg_promql_result *r = NULL;
    vg_error err = {0};
    vg_queryable qa = vg_queryable_tsdb(&tq);
    vg_err_t rc = range ? vg_promql_range(eng, qa, q, 0, 600000, 60000, &r, &err)
                        : vg_promql_instant(eng, qa, q, 300000, &r, &err);
    if (rc != VG_OK && rc != VG_ENOMEM && err.msg[0] == 0) __builtin_trap();
    if (rc == VG_OK && !r) __builtin_trap();
    vg_promql_result_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!db) init();
    if (size > 4096) return 0;
    char *q = vg_malloc(size + 1);
    if (!q) return 0;
    memcpy(q, data, size);
    q[size] = 0;
    if (strlen(q) == size) {
        run(q, 0);
        run(q, 1);
    }
    vg_free(q);
    return 0;
}
