/*
 * scrape_path.c - CPU and heap of the agent's scrape path, repeatably.
 *
 * Loads an agent config (the targets are served by serve.py), builds a
 * scraper and runs vg_scraper_run_once ROUNDS times, printing CPU per round
 * and per million samples, VmHWM and the heap in use (mallinfo2). The emit
 * callback decides what is measured:
 *   null    count only: the scrape path alone (curl, parse, stage, staleness)
 *   ship    the real batcher and HTTP sink, as vigil-agent wires them (each
 *           scrape encoded by the scraper straight into the batch buffer,
 *           vg_batcher_encode_begin/_end)
 *   add     the same batcher fed sample by sample (vg_batcher_add)
 *   proto   a prototype of the proposed batcher path: each sample's
 *           TimeSeries protobuf bytes appended to one buffer, zstd level 3
 *           at a 512 KiB cut (no grouping, no per-label copies)
 * Under callgrind, --toggle-collect=vg_scraper_run_once counts only the rounds.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "agent/config.h"
#include "scrape/scrape.h"
#include "ship/batcher.h"
#include "ship/ship.h"

enum mode { NULL_EMIT, SHIP, PROTO, ADD };

static enum mode mode;
static size_t nsamples;
static vg_batcher_t *batcher;

/* ---- the prototype batch: TimeSeries bytes back to back ---- */

static unsigned char *pbuf;
static size_t plen, pcap;
static ZSTD_CCtx *zc;

static size_t vlen(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

static unsigned char *vput(unsigned char *p, uint64_t v)
{
    while (v >= 0x80) *p++ = (unsigned char)(v | 0x80), v >>= 7;
    *p++ = (unsigned char)v;
    return p;
}

static unsigned char *put_str(unsigned char *p, int tag, const char *s, size_t n)
{
    *p++ = (unsigned char)tag;
    p = vput(p, n);
    memcpy(p, s, n);
    return p + n;
}

static size_t label_len(size_t nl, size_t vl)
{
    return 1 + vlen(nl) + nl + 1 + vlen(vl) + vl;
}

static vg_err_t proto_add(const vg_label_t *l, size_t n, int64_t ts, double v)
{
    size_t body = 0, smp = 1 + 8 + 1 + vlen((uint64_t)ts);
    for (size_t i = 0; i < n; i++) {
        size_t lab = label_len(strlen(l[i].name), strlen(l[i].value));
        body += 1 + vlen(lab) + lab;
    }
    body += 1 + vlen(smp) + smp;
    if (plen + body + 16 > pcap) {
        size_t cap = (plen + body + 16) * 2;
        unsigned char *b = realloc(pbuf, cap);
        if (!b) return VG_ENOMEM;
        pbuf = b, pcap = cap;
    }
    unsigned char *p = pbuf + plen;
    *p++ = 0x0a; /* TimeSeries, field 1 of MetricBatch */
    p = vput(p, body);
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(l[i].name), vl = strlen(l[i].value);
        *p++ = 0x0a;
        p = vput(p, label_len(nl, vl));
        p = put_str(p, 0x0a, l[i].name, nl);
        p = put_str(p, 0x12, l[i].value, vl);
    }
    *p++ = 0x12;
    p = vput(p, smp);
    *p++ = 0x09;
    memcpy(p, &v, 8);
    p += 8;
    *p++ = 0x10;
    p = vput(p, (uint64_t)ts);
    plen = (size_t)(p - pbuf);
    return VG_OK;
}

static void proto_cut(void)
{
    static unsigned char *out;
    static size_t ocap;
    if (plen < (1u << 19)) return;
    size_t bound = ZSTD_compressBound(plen);
    if (bound > ocap) {
        unsigned char *o = realloc(out, bound);
        if (!o) return;
        out = o, ocap = bound;
    }
    ZSTD_compressCCtx(zc, out, ocap, pbuf, plen, 3);
    plen = 0;
}

/* ---- callbacks ---- */

static vg_err_t on_emit(void *ud, const vg_label_t *l, size_t n, int64_t ts, double v)
{
    nsamples++;
    if (mode == ADD) return vg_batcher_add(batcher, l, n, ts, v);
    if (mode == PROTO) return proto_add(l, n, ts, v);
    return VG_OK;
}

static vg_err_t on_encoded(void *ud, const void *ts, size_t len, size_t n)
{
    nsamples += n;
    return vg_batcher_add_encoded(batcher, ts, len, n);
}

/* As the agent wires it: encoded straight into the batcher's buffer. */
static vg_buf *on_begin(void *ud)
{
    return vg_batcher_encode_begin(batcher);
}

static void on_end(void *ud, size_t len, size_t n)
{
    nsamples += n;
    vg_batcher_encode_end(batcher, len, n);
}

static void on_commit(void *ud)
{
    if (mode == SHIP || mode == ADD) vg_batcher_commit(batcher);
    if (mode == PROTO) proto_cut();
}

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long vm_hwm_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) v = atol(line + 6);
    if (f) fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s CONFIG ROUNDS [null|ship|add|proto]\n", argv[0]);
        return 2;
    }
    const char *m = argc > 3 ? argv[3] : "null";
    mode = !strcmp(m, "ship")    ? SHIP
           : !strcmp(m, "add")   ? ADD
           : !strcmp(m, "proto") ? PROTO
                                 : NULL_EMIT;
    vg_agent_config_t *cfg = NULL;
    vg_error err = {0};
    if (vg_agent_config_load(argv[1], &cfg, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    vg_metrics_t *metrics = vg_metrics_new();
    vg_ship_t *ship = NULL;
    vg_scraper_t *s = NULL;
    if ((mode == SHIP || mode == ADD) && vg_ship_new(cfg, metrics, &ship, &err)) goto fail;
    if (ship) batcher = vg_ship_batcher(ship);
    if (mode == PROTO) zc = ZSTD_createCCtx();
    if (vg_scraper_new(cfg, on_emit, on_commit, NULL, metrics, &s, &err)) goto fail;
    if (mode == SHIP && (vg_scraper_set_emit_encoded(s, on_encoded) ||
                         vg_scraper_set_emit_into(s, on_begin, on_end)))
        goto fail;
    int rounds = atoi(argv[2]);
    double c0 = cpu_now();
    for (int r = 0; r < rounds; r++) {
        double a = cpu_now();
        size_t n0 = nsamples;
        vg_scraper_run_once(s, &err);
        printf("round %d: %zu samples, %.1f ms CPU\n", r, nsamples - n0, (cpu_now() - a) * 1e3);
    }
    double cpu = cpu_now() - c0;
    struct mallinfo2 mi = mallinfo2();
    printf("%s: %zu samples, %.3f CPU-s, %.3f CPU-s/Msample, VmHWM %ld KiB, heap in use %zu KiB\n",
           m, nsamples, cpu, nsamples ? cpu / ((double)nsamples / 1e6) : 0, vm_hwm_kib(),
           mi.uordblks / 1024);
    vg_scraper_free(s);
    vg_ship_free(ship);
    vg_metrics_free(metrics);
    vg_agent_config_free(cfg);
    ZSTD_freeCCtx(zc);
    free(pbuf);
    return 0;
fail:
    fprintf(stderr, "%s\n", err.msg);
    vg_ship_free(ship);
    vg_metrics_free(metrics);
    vg_agent_config_free(cfg);
    return 1;
}
