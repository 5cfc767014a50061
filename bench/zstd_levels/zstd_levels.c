/*
 * zstd_levels.c - what each zstd level costs and saves on real batches.
 *
 * Feeds the 237-family fixture, as if scraped from many targets (instance
 * label varied), through the real batcher (1 MiB batches, the default) with
 * a sink that only counts, once per zstd level, and prints per batch: the
 * uncompressed protobuf size, the compressed size, the ratio, and the
 * encode time (protobuf pack + zstd, as vigil_agent_batch_encode_seconds_total
 * measures it). Run with bench/zstd_levels/run.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ship/batcher.h"
#include "ship/sink.h"
#include "vigil/alloc.h"
#include "vigil/expfmt.h"
#include "vigil/log.h"

#define TARGETS 64
#define ROUNDS  4
#define MAXLAB  32

static vg_err_t count_send(void *self, const vg_sink_msg *msg, vg_error *err)
{
    return VG_OK;
}

static void nop_free(void *self) {}

static const struct vg_sink_ops ops = {.name = "count", .send = count_send, .free = nop_free};

static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const vg_label_t *)a)->name, ((const vg_label_t *)b)->name);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

/* One scrape of the fixture for target t at time ts. */
static void scrape(vg_batcher_t *b, const char *body, size_t len, int t, int64_t ts)
{
    char inst[32];
    snprintf(inst, sizeof(inst), "10.0.%d.%d:9100", t / 250, t % 250);
    vg_expfmt_parser_t *p = vg_expfmt_new(body, len, VG_EXPFMT_TEXT);
    vg_expfmt_entry e;
    vg_label_t l[MAXLAB];
    while (vg_expfmt_next(p, &e, NULL) == VG_OK && e.kind != VG_EXPFMT_EOF) {
        if (e.kind != VG_EXPFMT_SAMPLE || e.nlabels + 3 > MAXLAB) continue;
        size_t n = 0;
        l[n++] = (vg_label_t){"__name__", e.name};
        l[n++] = (vg_label_t){"instance", inst};
        l[n++] = (vg_label_t){"job", "node"};
        for (size_t i = 0; i < e.nlabels; i++) l[n++] = e.labels[i];
        qsort(l, n, sizeof(*l), cmp_label);
        vg_batcher_add(b, l, n, ts, e.value);
    }
    vg_expfmt_free(p);
    vg_batcher_commit(b);
}

static double val(vg_metrics_t *m, const char *name, const char *labels)
{
    return vg_metric_value(vg_metrics_counter(m, name, "", labels));
}

int main(int argc, char **argv)
{
    size_t len;
    char *body = argc > 1 ? slurp(argv[1], &len) : NULL;
    if (!body) {
        fprintf(stderr, "usage: zstd_levels FIXTURE\n");
        return 2;
    }
    vg_log_set_level(VG_LOG_ERROR);
    int levels[] = {1, 3, 6, 9};
    printf(
        "| level | batches | uncompressed/batch | compressed/batch | ratio | encode ms/batch |\n");
    printf("| --- | --- | --- | --- | --- | --- |\n");
    for (size_t li = 0; li < sizeof(levels) / sizeof(levels[0]); li++) {
        struct vg_sink sink = {.ops = &ops, .self = NULL};
        vg_metrics_t *m = vg_metrics_new();
        vg_batcher_opts o = {.agent_id = "bench",
                             .node = "bench",
                             .zstd_level = levels[li],
                             .max_delay_ms = 3600 * 1000};
        vg_batcher_t *b = NULL;
        if (vg_batcher_new(&o, &sink, m, &b, NULL)) return 1;
        for (int r = 0; r < ROUNDS; r++)
            for (int t = 0; t < TARGETS; t++) scrape(b, body, len, t, 1700000000000 + r * 15000);
        vg_batcher_flush(b, NULL);
        vg_batcher_free(b);
        double n = val(m, "vigil_agent_batches_cut_total", NULL);
        double raw = val(m, "vigil_agent_batch_bytes_total", "stage=\"uncompressed\"");
        double z = val(m, "vigil_agent_batch_bytes_total", "stage=\"compressed\"");
        double sec = val(m, "vigil_agent_batch_encode_seconds_total", NULL);
        printf("| %d | %.0f | %.0f KiB | %.1f KiB | %.1fx | %.2f |\n", levels[li], n,
               raw / n / 1024, z / n / 1024, raw / z, sec / n * 1000);
        vg_metrics_free(m);
    }
    free(body);
    return 0;
}
