/*
 * scrape_int.h - internals shared by the scrape loop's files.
 *
 * The scrape module is split by concern, fluent-bit in_tail style:
 *   target.c  what a target is: URL, target labels, phase, label merging
 *   series.c  the per-target series cache behind staleness markers and
 *             all-or-nothing scrapes (samples are staged, then emitted)
 *   append.c  one finished scrape: parse, limits, emit, report series
 *   loop.c    the scraper object, the libcurl multi loop and its thread
 *   sync.c    the target set: build from static and file_sd groups, keep
 *             unchanged targets, retire vanished ones with stale markers
 *   http.c    per-target curl easy handle: headers, auth, TLS
 *   file_sd.c file-based discovery (file_sd.h)
 * Nothing here is public API; tests reach it by including the .c files.
 */
#ifndef VIGIL_AGENT_SCRAPE_INT_H
#define VIGIL_AGENT_SCRAPE_INT_H

#include <curl/curl.h>
#include <pthread.h>
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
    const char *scheme, *address; /* from the relabeled __scheme__ and __address__ */
    const char *instance;
    vg_label_t *labels; /* target labels after relabeling, sorted, no "__" labels */
    size_t nlabels;
    int64_t interval_ms, timeout_ms;
    size_t body_cap;
    uint64_t offset_ms; /* phase within the interval, from a hash of job+url */
    uint64_t key;       /* identity: url, labels, interval, timeout */
    int dropped;        /* relabel_configs dropped it: not a target */
    size_t job;         /* index of its scrape config */
    int claimed;        /* sync.c bookkeeping */

    /* request state (loop.c, http.c) */
    CURL *easy;
    struct curl_slist *headers;
    struct curl_slist *connect_to; /* tls_config.server_name routing */
    char errbuf[CURL_ERROR_SIZE];
    vg_buf body;
    int too_large, busy, nomem;
    int64_t next_ms;       /* monotonic time of the next scrape */
    int64_t start_ms;      /* wall-clock start of the scrape in flight, ms */
    int64_t start_mono_us; /* monotonic start, for scrape_duration_seconds */

    vg_scrape_cache cache;
    atomic_int health; /* 1 up, 0 down, -1 never scraped */
} vg_scrape_target_t;

/* Fill t (zeroed) for target addr of group g (may be NULL) of scrape config
 * sc, through relabel_configs. VG_OK with t->dropped set when relabeling
 * drops it; VG_ECONFIG for a target that cannot be scraped (no address,
 * bad host:port, bad interval). Destroy t with vg_scrape_target_destroy
 * in every case. */
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

/* ---- the scraper (loop.c, sync.c) ---- */

typedef struct vg_scrape_job {
    const vg_scrape_config_t *sc;
    struct vg_file_sd *sd;   /* NULL without file_sd_configs */
    int64_t next_refresh_ms; /* monotonic */
} vg_scrape_job;

/* Body write callback of every easy handle (loop.c). */
size_t vg_scrape_on_body(char *data, size_t size, size_t nmemb, void *ud);

/* Rebuild job j's targets from its static and file_sd groups: targets
 * whose identity is unchanged keep running (and their series cache), new
 * ones get an easy handle, vanished ones get staleness markers and are
 * freed. strict: a bad static target fails with VG_ECONFIG (start-up);
 * otherwise bad targets are logged, counted and skipped. */
vg_err_t vg_scrape_sync_job(struct vg_scraper *s, size_t j, int strict, vg_error *err);
/* Free a target and its request state (removing it from the multi handle). */
void vg_scrape_target_release(struct vg_scraper *s, vg_scrape_target_t *t);
/* Re-check every file_sd now and sync the jobs whose groups changed
 * (tests; the thread does this by itself). VG_EINVAL while the thread runs. */
vg_err_t vg_scraper_refresh(struct vg_scraper *s, vg_error *err);

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
    VG_SCRAPE_ERR_RELABEL,   /* metric relabeling failed or removed __name__ */
    VG_SCRAPE_ERR_NOMEM,     /* out of memory */
    VG_SCRAPE_REASON__COUNT
} vg_scrape_reason;

/* Reason label value for vigil_scrape_failures_total, e.g. "timeout". */
const char *vg_scrape_reason_name(vg_scrape_reason r);

typedef struct vg_scrape_result {
    vg_scrape_reason reason;
    char msg[320];
    size_t scraped;         /* samples in the body (before limits) */
    size_t post_relabel;    /* samples after metric relabeling */
    size_t added;           /* series not in the last good scrape */
    size_t dropped_dup;     /* duplicate series in one body, dropped */
    size_t dropped_relabel; /* samples metric_relabel_configs dropped */
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
/* A target went away: staleness markers at now_ms for every series of its
 * last scrape and for its report series, then commit. Nothing for a target
 * that was never scraped. */
void vg_scrape_retire(vg_scrape_target_t *t, vg_scrape_sink *k, int64_t now_ms);

/* ---- curl easy handle (http.c) ---- */

/* Create t->easy with every option that stays fixed: URL, headers, auth,
 * TLS, timeouts, callbacks (write_cb with t as its data). */
vg_err_t vg_scrape_http_setup(vg_scrape_target_t *t, curl_write_callback write_cb);
/* Before each scrape: re-read password_file / credentials_file when the job
 * uses them. VG_EIO with a message (no secret in it) when unreadable. */
vg_err_t vg_scrape_http_refresh(vg_scrape_target_t *t, char *msg, size_t msgn);
/* Free the easy handle and header lists (not the target). */
void vg_scrape_http_cleanup(vg_scrape_target_t *t);

/* The scraper object, shared by loop.c and sync.c. The scrape thread is the
 * only writer of targets; mu guards the array against the introspection
 * calls from other threads (held only while swapping, never across I/O). */
struct vg_scraper {
    const vg_agent_config_t *cfg;
    vg_scrape_job *jobs;
    size_t njobs;
    vg_scrape_target_t **targets;
    size_t ntargets;
    pthread_mutex_t mu;
    CURLM *multi;
    int inotify_fd; /* -1 without file_sd or inotify */
    vg_scrape_sink sink;
    pthread_t thread;
    int started;
    atomic_int stop;
    vg_metric_t *m_scrapes, *m_samples, *m_emit_errors, *m_dups, *m_relabel_dropped;
    vg_metric_t *m_failures[VG_SCRAPE_REASON__COUNT];
    vg_metric_t *m_sd_errors, *m_target_errors, *m_targets;
};

#endif
