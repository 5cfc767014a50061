/*
 * scrape_int.h - internals shared by the scrape loop's files.
 *
 * The scrape module is split by concern, fluent-bit in_tail style:
 *   target.c  what a target is: URL, target labels, phase, label merging
 *   stage.c   one scrape's samples staged compactly in a buffer shared by
 *             all targets (all-or-nothing: staged, then emitted)
 *   series.c  per target, the series hashes of the last scrape and a
 *             compressed body to recover vanished series for staleness
 *   append.c  one finished scrape: parse, limits, emit, report series
 *   encode.c  encoded emission: each scrape as protobuf TimeSeries bytes
 *   metadata.c per target, TYPE/HELP/UNIT sent as MetricBatch.metadata
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
#include <string.h>

#include "scrape/scrape.h"
#include "vigil/arena.h"
#include "vigil/buf.h"
#include "vigil/expfmt.h"

/* Hard cap on a scrape body when the job sets no body_size_limit. */
#define VG_SCRAPE_DEFAULT_BODY_CAP ((size_t)128 << 20)
/* Body buffers kept for reuse between scrapes, and the largest one kept. */
#define VG_SCRAPE_POOL         4
#define VG_SCRAPE_POOL_BUF_MAX ((size_t)4 << 20)

/* ---- one scrape, staged (stage.c) ---- */

/* A label with its lengths, so the hot path never calls strlen. */
typedef struct vg_scrape_label {
    const char *name, *value;
    size_t nlen, vlen;
} vg_scrape_label;

/* Record flags. */
#define VG_STAGE_TRACK 1u /* takes part in staleness (no explicit timestamp) */
#define VG_STAGE_DUP   2u /* same series earlier in the body: not emitted */

/* One staged sample, followed in the stage buffer by its series key: the
 * sorted labels as protobuf prometheus.TimeSeries field 1 entries (tag 0x0a,
 * varint length, a Label with name as field 1 and value as field 2, an
 * empty string left out as proto3 does), so the hash, the duplicate check
 * and the encoded emission all use the same bytes. */
typedef struct vg_stage_rec {
    uint64_t hash; /* series hash of the key */
    int64_t ts_ms;
    double v;
    uint32_t size; /* whole record in bytes, a multiple of 8 */
    uint32_t n;    /* labels */
    uint32_t keylen;
    uint32_t flags;
} vg_stage_rec;

/* Sort entry: a record's hash and where it is. */
typedef struct vg_stage_ref {
    uint64_t hash;
    uint32_t rec; /* offset of the record in the stage buffer */
    uint32_t flags;
} vg_stage_ref;

/* The samples of the scrape being processed, back to back in one buffer
 * shared by every target (one scrape is processed at a time), so nothing
 * per target grows with the body. */
typedef struct vg_scrape_stage {
    vg_buf buf;        /* records, in body order */
    vg_stage_ref *ref; /* one per record */
    size_t n, cap;
    vg_stage_ref *tmp; /* sort scratch, cap entries */
    uint32_t *count;   /* sort buckets */
    size_t ncount;
    uint64_t seed; /* per-process hash seed: a body cannot aim for one bucket */
} vg_scrape_stage;

vg_err_t vg_scrape_stage_init(vg_scrape_stage *st);
void vg_scrape_stage_destroy(vg_scrape_stage *st);
/* Forget the staged records (memory kept; very large buffers released). */
void vg_scrape_stage_reset(vg_scrape_stage *st);
/* Append a record for the sorted labels l[0..n): returns its offset, or
 * UINT32_MAX on ENOMEM / a stage over 4 GiB. */
uint32_t vg_scrape_stage_add(vg_scrape_stage *st, const vg_scrape_label *l, size_t n, int64_t ts_ms,
                             double v, uint32_t flags);
/* Drop the last record again (it was at offset rec). */
void vg_scrape_stage_undo(vg_scrape_stage *st, uint32_t rec);
static inline vg_stage_rec *vg_scrape_stage_rec(const vg_scrape_stage *st, uint32_t off)
{
    return (vg_stage_rec *)(void *)(st->buf.data + off);
}
/* Labels of a record into out (room for rec->n), as C strings kept in strs
 * (valid until strs changes). VG_ENOMEM. */
vg_err_t vg_scrape_stage_labels(const vg_stage_rec *r, vg_label_t *out, vg_buf *strs);

/* ---- the key encoding (stage.c writes it, encode.c copies it) ---- */

/* Varints: label lengths are nearly always under 128, one byte. */
static inline size_t vg_scrape_varint_size(uint64_t v)
{
    if (v < 0x80) return 1;
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

static inline char *vg_scrape_put_varint(char *p, uint64_t v)
{
    if (v < 0x80) {
        *p = (char)(uint8_t)v;
        return p + 1;
    }
    while (v >= 0x80) *p++ = (char)(uint8_t)(v | 0x80), v >>= 7;
    *p++ = (char)(uint8_t)v;
    return p;
}

/* Most bytes one label's TimeSeries field 1 entry can take (three tags and
 * three varints of at most 10 bytes each around the name and value). */
static inline size_t vg_scrape_key_label_max(size_t nlen, size_t vlen)
{
    return 33 + nlen + vlen;
}

/* Bytes of a string field (none when empty, as proto3 writes it). */
static inline size_t vg_scrape_str_field_size(size_t n)
{
    return n ? 1 + vg_scrape_varint_size(n) + n : 0;
}

/* Bytes of one label as a TimeSeries field 1 entry. */
static inline size_t vg_scrape_key_label_size(size_t nlen, size_t vlen)
{
    size_t lab = vg_scrape_str_field_size(nlen) + vg_scrape_str_field_size(vlen);
    return 1 + vg_scrape_varint_size(lab) + lab;
}

/* Copy n bytes, inline for the short strings most labels are (a call to
 * memcpy per name and value was ~2.5% of the scrape path's instructions):
 * two overlapping word copies cover 4..16 bytes exactly. */
static inline void vg_scrape_copy(char *d, const char *s, size_t n)
{
    if (n > 16) {
        memcpy(d, s, n);
    } else if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else {
        for (size_t i = 0; i < n; i++) d[i] = s[i];
    }
}

/* Write one label as a TimeSeries field 1 entry; returns the end. */
static inline char *vg_scrape_key_put_label(char *p, const vg_scrape_label *l)
{
    *p++ = 0x0a;
    p = vg_scrape_put_varint(p,
                             vg_scrape_str_field_size(l->nlen) + vg_scrape_str_field_size(l->vlen));
    if (l->nlen) {
        *p++ = 0x0a;
        p = vg_scrape_put_varint(p, l->nlen);
        vg_scrape_copy(p, l->name, l->nlen);
        p += l->nlen;
    }
    if (l->vlen) {
        *p++ = 0x12;
        p = vg_scrape_put_varint(p, l->vlen);
        vg_scrape_copy(p, l->value, l->vlen);
        p += l->vlen;
    }
    return p;
}

static inline const char *vg_scrape_get_varint(const char *p, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned s = 0; s < 64; s += 7) {
        uint8_t c = (uint8_t)*p++;
        x |= (uint64_t)(c & 0x7f) << s;
        if (c < 0x80) break;
    }
    *v = x;
    return p;
}

/* The label entry at p of a key this process wrote (never peer input):
 * name and value with their lengths (not NUL-terminated); returns the end. */
static inline const char *vg_scrape_key_label(const char *p, vg_scrape_label *out)
{
    uint64_t len, n;
    p = vg_scrape_get_varint(p + 1, &len);
    const char *end = p + len;
    *out = (vg_scrape_label){"", "", 0, 0};
    while (p < end) {
        char tag = *p;
        p = vg_scrape_get_varint(p + 1, &n);
        if (tag == 0x0a)
            out->name = p, out->nlen = (size_t)n;
        else
            out->value = p, out->vlen = (size_t)n;
        p += n;
    }
    return end;
}

static inline const char *vg_scrape_rec_key(const vg_stage_rec *r)
{
    return (const char *)(r + 1);
}
/* Sort v[0..n) by hash, stably (equal hashes keep their order): buckets by
 * the top bits, then insertion sort inside each (qsort for a crowded one). */
vg_err_t vg_scrape_sort_refs(vg_scrape_stage *st, vg_stage_ref *v, size_t n);
/* Sort the staged refs and flag repeats of a series (same key bytes) DUP,
 * on the ref and its record; returns how many. */
size_t vg_scrape_stage_dedup(vg_scrape_stage *st, vg_err_t *rc);

/* ---- per-target series state (series.c) ---- */

/* Series flags. */
#define VG_SERIES_LAST  1u  /* in the last good scrape */
#define VG_SERIES_TRACK 2u  /* ... and tracked for staleness there */
#define VG_SERIES_STALE 4u  /* vanished now: needs a staleness marker */
#define VG_SERIES_NEXT  16u /* shift of the pending LAST|TRACK of this scrape */

/* What a target remembers between scrapes: the sorted hashes of the series
 * a kept body yields (with flags saying which were in the last good scrape)
 * and that body, zstd-compressed, to recover the labels of vanished series.
 * The body is replaced only when a scrape brings a series it does not
 * cover, so a target with a stable series set compresses once. */
typedef struct vg_scrape_series {
    uint64_t *hash;
    uint8_t *flags;
    size_t n;
    void *body; /* zstd frame; NULL when no tracked series needs it */
    size_t body_len, raw_len;
    int fmt; /* vg_expfmt_format of the body */
} vg_scrape_series;

/* Release everything; the state is empty (no last scrape) afterwards. */
void vg_scrape_series_reset(vg_scrape_series *s);
/* Index of h, or -1. */
long vg_scrape_series_find(const vg_scrape_series *s, uint64_t h);
/* Compare the sorted, deduplicated staged refs with the last scrape: flag
 * vanished tracked series STALE (*nstale of them) and record this scrape's
 * flags as pending. Returns the series not in the last scrape; *covered = 0
 * when a series is missing from s (the body must be stored again). */
size_t vg_scrape_series_diff(vg_scrape_series *s, const vg_stage_ref *cur, size_t n, int *covered,
                             size_t *nstale);
/* Flag every tracked series of the last scrape STALE (failed scrape, retire);
 * returns how many. */
size_t vg_scrape_series_stale_all(vg_scrape_series *s);
/* Make the pending flags current (the body covers this scrape). */
void vg_scrape_series_apply(vg_scrape_series *s);
/* Replace the state with this scrape: hashes from cur (sorted, DUP refs
 * skipped), body compressed with zc when a series is tracked. */
vg_err_t vg_scrape_series_store(vg_scrape_series *s, const vg_stage_ref *cur, size_t n,
                                const char *body, size_t len, int fmt, void *zc);

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
    CURLSH *share; /* the handle's own connection and DNS caches (http.c) */
    struct curl_slist *headers;
    struct curl_slist *connect_to; /* tls_config.server_name routing */
    char errbuf[CURL_ERROR_SIZE];
    vg_buf body;      /* lent from the scraper's pool while a request runs */
    size_t body_hint; /* room to reserve up front: the last body plus a margin */
    int too_large, busy, nomem;
    int64_t next_ms;       /* monotonic time of the next scrape */
    int64_t start_ms;      /* wall-clock start of the scrape in flight, ms */
    int64_t start_mono_us; /* monotonic start, for scrape_duration_seconds */

    vg_scrape_label *slabels; /* labels with lengths, same order (arena) */
    vg_scrape_series series;
    struct vg_scrape_meta *meta; /* metric metadata of the last good scrape (metadata.c) */
    atomic_int health;           /* 1 up, 0 down, -1 never scraped */
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
/* The same for the scrape path: sample labels (with lengths) merged with the
 * target's, sorted, into out (room for 1 + ns + 2 * t->nlabels); tmp has
 * room for 1 + ns. Returns the count, 0 on ENOMEM. */
size_t vg_scrape_merge(const vg_scrape_target_t *t, int honor, const vg_expfmt_entry *e,
                       vg_arena_t *a, vg_scrape_label *tmp, vg_scrape_label *out);
/* Sort l[0..n) by name (insertion sort: sets are small and mostly sorted). */
void vg_scrape_labels_sort(vg_scrape_label *l, size_t n);
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

/* What append.c needs from the scraper: callbacks and scratch, shared by
 * every target because one scrape is processed at a time. */
typedef struct vg_scrape_sink {
    vg_scrape_emit_fn emit;
    vg_scrape_commit_fn commit;
    void *ud;
    vg_arena_t *scratch; /* per-sample merge scratch, reset per sample */
    vg_label_t *lbuf;    /* label array scratch */
    size_t lcap;
    vg_scrape_label *mbuf, *mtmp; /* merge scratch, mcap each */
    size_t mcap;
    vg_scrape_stage stage; /* the scrape being processed */
    vg_buf raw;            /* a kept body, decompressed to recover stale series */
    vg_buf strs;           /* a staged record's labels as C strings (sample by sample) */
    void *zc, *zd;         /* ZSTD_CCtx, ZSTD_DCtx */
    size_t emitted;        /* samples emitted (for vigil_scrape_samples_total) */
    size_t emit_errors;
    /* encoded emission (encode.c); emit_enc NULL = sample by sample */
    vg_scrape_emit_encoded_fn emit_enc;
    vg_buf enc;                         /* this scrape's TimeSeries fields */
    size_t enc_n;                       /* samples in enc */
    vg_scrape_into_begin_fn into_begin; /* optional: encode into the consumer's buffer */
    vg_scrape_into_end_fn into_end;
    vg_buf *into;         /* the consumer's buffer while held (its struct is in enc) */
    vg_buf own;           /* our own enc while the consumer's is in its place */
    size_t into_base;     /* its length at begin */
    vg_scrape_label *ext; /* external labels, sorted (strings borrowed from the config) */
    size_t next;
    vg_scrape_label *ebuf; /* merged labels of one sample */
    size_t ecap;
} vg_scrape_sink;

/* ---- encoded emission (encode.c) ---- */

/* Set up k->enc, and copy and sort the external labels merged into every
 * encoded sample. Call before vg_scrape_encode. */
vg_err_t vg_scrape_encode_set_external(vg_scrape_sink *k, const vg_label_t *l, size_t n);
/* Append one sample (sorted labels, external labels merged) to k->enc. */
vg_err_t vg_scrape_encode(vg_scrape_sink *k, const vg_label_t *l, size_t n, int64_t ts, double v);
/* The same for one staged record, with the lengths its offsets give (no strlen). */
vg_err_t vg_scrape_encode_rec(vg_scrape_sink *k, const vg_stage_rec *r);
/* Start a scrape's encoded emission: with into_begin set, k->enc becomes the
 * consumer's buffer until the flush (refused: our own, as without). */
void vg_scrape_encode_begin(vg_scrape_sink *k);
/* Hand k->enc to emit_enc in one call (nothing when empty), or give the
 * consumer's buffer back through into_end, and count it. */
void vg_scrape_encode_flush(vg_scrape_sink *k);
/* Release the encoding buffers. */
void vg_scrape_encode_destroy(vg_scrape_sink *k);

vg_err_t vg_scrape_sink_init(vg_scrape_sink *k);
void vg_scrape_sink_destroy(vg_scrape_sink *k);

/* Parse body (Content-Type ctype) into k's stage, compare its series with
 * the target's last scrape (stale markers are staged after the samples) and
 * remember this scrape's series; on any failure r->reason says why and the
 * target's state is untouched. Does not emit. */
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
/* Free the easy handle, its share and header lists (not the target). */
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
    vg_buf pool[VG_SCRAPE_POOL]; /* idle body buffers (loop.c) */
    size_t npool;
    size_t maxconn;   /* CURLMOPT_MAXCONNECTS as last set */
    int64_t next_due; /* monotonic ms of the earliest next_ms; 0 = unknown */
    int64_t *due;     /* targets[i]->next_ms, due_n of them (loop.c); stale when next_due is 0 */
    size_t due_n, due_cap;
    pthread_t thread;
    int started;
    atomic_int stop;
    vg_metric_t *m_scrapes, *m_samples, *m_emit_errors, *m_dups, *m_relabel_dropped;
    vg_metric_t *m_failures[VG_SCRAPE_REASON__COUNT];
    vg_metric_t *m_sd_errors, *m_target_errors, *m_targets;
};

#endif
