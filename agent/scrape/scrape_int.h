/*
 * scrape_int.h - internals shared by the scrape loop's files.
 *
 * The scrape module is split by concern, fluent-bit in_tail style:
 *   target.c  what a target is: URL, target labels, phase, label merging
 *   series.c  the per-target series cache behind staleness markers and
 *             all-or-nothing scrapes (samples are staged, then emitted)
 *   append.c  one finished scrape: parse, limits, emit, report series
 *   loop.c    the scraper object, the libcurl multi loop and its thread
 * Nothing here is public API; tests reach it by including the .c files.
 */
#ifndef VIGIL_AGENT_SCRAPE_INT_H
#define VIGIL_AGENT_SCRAPE_INT_H

#include <curl/curl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "scrape/scrape.h"
#include "vigil/arena.h"
#include "vigil/buf.h"
#include "vigil/expfmt.h"

/* Hard cap on a scrape body when the job sets no body_size_limit. */
#define VG_SCRAPE_DEFAULT_BODY_CAP ((size_t)128 << 20)

/* ---- series cache (series.c) ---- */

typedef struct vg_scrape_item {
    const vg_label_t *labels; /* sorted, owned by the generation's arena */
    size_t n;
    uint64_t hash;
    int64_t ts_ms;
    double v;
    int track; /* take part in staleness (not for honored explicit timestamps) */
} vg_scrape_item;

typedef struct vg_scrape_gen {
    vg_arena_t *arena;
    vg_scrape_item *items;
    size_t n, cap;
    uint32_t *slots; /* open addressing: item index + 1, 0 = empty */
    size_t nslots;   /* power of two */
} vg_scrape_gen;

typedef struct vg_scrape_cache {
    vg_scrape_gen gen[2];
    int cur; /* gen[cur] is being filled, gen[!cur] is the last good scrape */
} vg_scrape_cache;

typedef void (*vg_scrape_stale_fn)(void *ud, const vg_scrape_item *it);

vg_err_t vg_scrape_cache_init(vg_scrape_cache *c);
void vg_scrape_cache_destroy(vg_scrape_cache *c);
/* Start filling a new generation (drops what was staged before). */
void vg_scrape_cache_begin(vg_scrape_cache *c);
/* Stage a sample with sorted labels (copied). *dup=1 if the series is already
 * staged (nothing added); *added=1 if it was not in the last good scrape. */
vg_err_t vg_scrape_cache_add(vg_scrape_cache *c, const vg_label_t *l, size_t n, int64_t ts_ms,
                             double v, int track, int *dup, int *added);
/* Staged items of the generation being filled. */
const vg_scrape_item *vg_scrape_cache_staged(const vg_scrape_cache *c, size_t *n);
/* Success: call stale() for tracked series of the last scrape missing now, then
 * make the staged generation the last good one. */
void vg_scrape_cache_commit(vg_scrape_cache *c, vg_scrape_stale_fn stale, void *ud);
/* Failure: call stale() for every tracked series of the last scrape; forget all. */
void vg_scrape_cache_abort(vg_scrape_cache *c, vg_scrape_stale_fn stale, void *ud);

/* ---- targets (target.c) ---- */

typedef struct vg_scrape_target {
    const vg_scrape_config_t *sc; /* borrowed from the config */
    vg_arena_t *arena;            /* owns url, instance and labels */
    const char *url;
    const char *instance;
    vg_label_t *labels; /* target labels, sorted: job, instance, static labels */
    size_t nlabels;
    int64_t interval_ms, timeout_ms;
    size_t body_cap;
    uint64_t offset_ms; /* phase within the interval, from a hash of job+url */

    /* request state (loop.c) */
    CURL *easy;
    struct curl_slist *headers;
    char errbuf[CURL_ERROR_SIZE];
    vg_buf body;
    int too_large, busy, nomem;
    int64_t next_ms;       /* monotonic time of the next scrape */
    int64_t start_ms;      /* wall-clock start of the scrape in flight, ms */
    int64_t start_mono_us; /* monotonic start, for scrape_duration_seconds */

    vg_scrape_cache cache;
    atomic_int health; /* 1 up, 0 down, -1 never scraped */
} vg_scrape_target_t;

/* Fill t for target addr of scrape config sc. VG_ECONFIG for a bad address. */
vg_err_t vg_scrape_target_init(vg_scrape_target_t *t, const vg_agent_config_t *cfg,
                               const vg_scrape_config_t *sc, const vg_static_group_t *g,
                               const char *addr, vg_error *err);
/* Release what init acquired (not the curl handles). Safe on a zeroed target. */
void vg_scrape_target_destroy(vg_scrape_target_t *t);
/* Delay in ms from wall-clock time now_ms to this target's next phase. */
int64_t vg_scrape_target_first_delay(const vg_scrape_target_t *t, int64_t now_ms);
/* Final labels of one sample: __name__=metric + non-empty sample labels merged
 * with the target labels (honor_labels rules), sorted, into out, which needs
 * room for 1 + ns + 2 * t->nlabels. Renamed names come from arena a.
 * Returns the count, or 0 on ENOMEM. */
size_t vg_scrape_merge_labels(const vg_scrape_target_t *t, int honor, const char *metric,
                              const vg_label_t *sl, size_t ns, vg_arena_t *a, vg_label_t *out);
/* Target labels plus __name__=name, sorted, into out (room for t->nlabels + 1). */
size_t vg_scrape_report_labels(const vg_scrape_target_t *t, const char *name, vg_label_t *out);

/* ---- one finished scrape (append.c) ---- */

typedef enum vg_scrape_reason {
    VG_SCRAPE_OK = 0,
    VG_SCRAPE_ERR_HTTP,      /* transport: refused, DNS, TLS, reset */
    VG_SCRAPE_ERR_TIMEOUT,   /* scrape_timeout elapsed */
    VG_SCRAPE_ERR_STATUS,    /* HTTP status other than 200 */
    VG_SCRAPE_ERR_BODY_SIZE, /* body over body_size_limit */
    VG_SCRAPE_ERR_PARSE,     /* exposition did not parse */
    VG_SCRAPE_ERR_SAMPLES,   /* sample_limit exceeded */
    VG_SCRAPE_ERR_LABELS,    /* label_limit exceeded */
    VG_SCRAPE_ERR_NOMEM,     /* out of memory */
    VG_SCRAPE_REASON__COUNT
} vg_scrape_reason;

/* Reason label value for vigil_scrape_failures_total, e.g. "timeout". */
const char *vg_scrape_reason_name(vg_scrape_reason r);

typedef struct vg_scrape_result {
    vg_scrape_reason reason;
    char msg[320];
    size_t scraped;      /* samples in the body (before limits) */
    size_t post_relabel; /* samples after metric relabeling */
    size_t added;        /* series not in the last good scrape */
    size_t dropped_dup;  /* duplicate series in one body, dropped */
} vg_scrape_result;

/* What append.c needs from the scraper: callbacks and scratch. */
typedef struct vg_scrape_sink {
    vg_scrape_emit_fn emit;
    vg_scrape_commit_fn commit;
    void *ud;
    vg_arena_t *scratch; /* per-sample merge scratch, reset per sample */
    vg_label_t *lbuf;    /* label array scratch */
    size_t lcap;
    size_t emitted; /* samples emitted (for vigil_scrape_samples_total) */
    size_t emit_errors;
} vg_scrape_sink;

/* Parse body (Content-Type ctype) into the target's cache; on any failure
 * r->reason says why and nothing is staged. Does not emit. */
void vg_scrape_parse(vg_scrape_target_t *t, vg_scrape_sink *k, const char *body, size_t len,
                     const char *ctype, vg_scrape_result *r);
/* Emit the outcome of a scrape that started at t->start_ms: samples (on
 * success), staleness markers, the report series, then commit. */
void vg_scrape_report(vg_scrape_target_t *t, vg_scrape_sink *k, const vg_scrape_result *r,
                      double duration_s);

#endif
