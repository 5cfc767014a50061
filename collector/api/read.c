/*
 * read.c - Prometheus remote read (POST /api/v1/read), so a Prometheus
 * server with `remote_read` pointing here can query Vigil's data.
 *
 * The request is a snappy-block-compressed ReadRequest (prompb). Each query
 * is a set of label matchers and a time range, answered from the store's
 * snapshot querier. Two answer forms, chosen as Prometheus's
 * NegotiateResponseType chooses (the first of the client's accepted types
 * that we support; SAMPLES when it lists none):
 *
 *   SAMPLES              one snappy-compressed ReadResponse holding every
 *                        series with its raw samples;
 *   STREAMED_XOR_CHUNKS  a stream of frames, each `uvarint length, CRC32-C
 *                        of the message (big-endian), ChunkedReadResponse`,
 *                        one series per frame (split past 1 MiB), samples in
 *                        XOR chunks of up to 120 samples.
 *
 * The chunk bytes must be exactly Prometheus's chunkenc XOR format, because
 * the client decodes them with its own chunk reader. Our Gorilla chunk
 * (tsdb/chunk.c) uses the same layout bit for bit (2-byte big-endian count;
 * first timestamp as a zigzag varint and value as 64 raw bits; second as a
 * uvarint delta; then delta-of-delta buckets 0/10+14/110+17/1110+20/1111+64
 * and the XOR value window with leading zeros clamped to 31 and 64
 * significant bits written as 0), so the chunks are built with vg_chunk and
 * sent as they are; test_api checks the bytes against a hand-made stream.
 *
 * Everything is capped: the compressed and decompressed request size, the
 * number of queries, and the samples of one request (the engine's
 * max_samples), so one request cannot exhaust memory.
 */
#include <pthread.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "prometheus/remote.pb-c.h"
#include "tsdb/chunk.h"
#include "vigil/alloc.h"
#include "vigil/arena.h"

#define READ_MAX_DECODED     (32u << 20) /* Prometheus's decodeReadLimit */
#define READ_MAX_QUERIES     64
#define READ_MAX_FRAME       (1u << 20)
#define READ_DEFAULT_SAMPLES UINT64_C(50000000)

static const char ct_samples[] = "application/x-protobuf";
static const char ct_stream[] =
    "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse";
static const char ct_text[] = "text/plain; charset=utf-8";

typedef struct read_ctx {
    vg_api_t *api;
    const char *tenant;
    vg_arena_t *arena;
    uint64_t samples, max_samples;
    vg_buf *out;
    vg_error err;
} read_ctx;

static int text_error(read_ctx *c, int status, const char *msg)
{
    vg_buf_reset(c->out);
    vg_buf_printf(c->out, "%s\n", msg);
    return status;
}

/* ---- CRC32-C (Castagnoli), bitwise table built once ---- */

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32c(const uint8_t *p, size_t n)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, crc_init);
    uint32_t c = 0xffffffffu;
    while (n--) c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* ---- request ---- */

static vg_err_t decode_request(const uint8_t *body, size_t len, Prometheus__ReadRequest **req,
                               vg_error *err)
{
    size_t n = 0;
    if (snappy_uncompressed_length((const char *)body, len, &n) != SNAPPY_OK)
        return vg_error_set(err, VG_EPARSE, "snappy: corrupt input");
    if (n > READ_MAX_DECODED)
        return vg_error_set(err, VG_ETOOLARGE, "decoded request larger than %u bytes",
                            READ_MAX_DECODED);
    char *raw = vg_malloc(n ? n : 1);
    if (!raw) return VG_ENOMEM;
    vg_err_t rc = VG_OK;
    if (snappy_uncompress((const char *)body, len, raw, &n) != SNAPPY_OK)
        rc = vg_error_set(err, VG_EPARSE, "snappy: corrupt input");
    else if (!(*req = prometheus__read_request__unpack(NULL, n, (const uint8_t *)raw)))
        rc = vg_error_set(err, VG_EPARSE, "cannot decode the ReadRequest protobuf");
    vg_free(raw);
    return rc;
}

static vg_err_t to_matchers(const Prometheus__Query *q, vg_matcher_t **m, vg_error *err)
{
    static const vg_match_op ops[] = {VG_MATCH_EQ, VG_MATCH_NEQ, VG_MATCH_RE, VG_MATCH_NRE};
    for (size_t i = 0; i < q->n_matchers; i++) {
        const Prometheus__LabelMatcher *lm = q->matchers[i];
        if ((unsigned)lm->type > 3) {
            for (size_t j = 0; j < i; j++) vg_matcher_free(m[j]);
            return vg_error_set(err, VG_EINVAL, "invalid matcher type %d", (int)lm->type);
        }
        vg_err_t rc = vg_matcher_new(ops[lm->type], lm->name, lm->value, &m[i], err);
        if (rc) {
            for (size_t j = 0; j < i; j++) vg_matcher_free(m[j]);
            return rc;
        }
    }
    return VG_OK;
}

static vg_err_t select_query(read_ctx *c, const Prometheus__Query *q, vg_seriesset_t **ss)
{
    if (q->n_matchers > 64) return vg_error_set(&c->err, VG_ETOOLARGE, "too many matchers");
    vg_matcher_t *m[64];
    vg_err_t rc = to_matchers(q, m, &c->err);
    if (rc) return rc;
    rc = vg_tsdb_select(c->api->db, c->tenant, m, q->n_matchers, q->start_timestamp_ms,
                        q->end_timestamp_ms, ss, &c->err);
    for (size_t i = 0; i < q->n_matchers; i++) vg_matcher_free(m[i]);
    return rc;
}

/* Labels into the arena (the series set is freed before the answer is packed). */
static Prometheus__Label **copy_labels(read_ctx *c, const vg_label_t *l, size_t n)
{
    Prometheus__Label **out = vg_arena_alloc(c->arena, (n ? n : 1) * sizeof(*out));
    Prometheus__Label *ls = vg_arena_alloc(c->arena, (n ? n : 1) * sizeof(*ls));
    if (!out || !ls) return NULL;
    for (size_t i = 0; i < n; i++) {
        prometheus__label__init(&ls[i]);
        ls[i].name = vg_arena_strdup(c->arena, l[i].name);
        ls[i].value = vg_arena_strdup(c->arena, l[i].value);
        if (!ls[i].name || !ls[i].value) return NULL;
        out[i] = &ls[i];
    }
    return out;
}

static vg_err_t count_sample(read_ctx *c)
{
    if (++c->samples <= c->max_samples) return VG_OK;
    return vg_error_set(&c->err, VG_ELIMIT, "exceeded sample limit (%llu)",
                        (unsigned long long)c->max_samples);
}

/* ---- SAMPLES ---- */

static vg_err_t series_samples(read_ctx *c, vg_seriesset_t *ss, Prometheus__TimeSeries *ts)
{
    size_t cap = 64, n = 0;
    Prometheus__Sample *s = vg_malloc(cap * sizeof(*s));
    int64_t t;
    double v;
    vg_err_t rc = s ? VG_OK : VG_ENOMEM;
    while (!rc && vg_seriesset_sample_next(ss, &t, &v)) {
        if ((rc = count_sample(c))) break;
        if (n == cap) {
            Prometheus__Sample *g = vg_realloc(s, (cap *= 2) * sizeof(*s));
            if (!g)
                rc = VG_ENOMEM;
            else
                s = g;
        }
        if (!rc) prometheus__sample__init(&s[n]), s[n].timestamp = t, s[n++].value = v;
    }
    Prometheus__Sample **ps = rc ? NULL : vg_arena_alloc(c->arena, (n ? n : 1) * sizeof(*ps));
    Prometheus__Sample *as = rc ? NULL : vg_arena_alloc(c->arena, (n ? n : 1) * sizeof(*as));
    if (!rc && (!ps || !as)) rc = VG_ENOMEM;
    for (size_t i = 0; !rc && i < n; i++) as[i] = s[i], ps[i] = &as[i];
    vg_free(s);
    if (!rc) ts->samples = ps, ts->n_samples = n;
    return rc;
}

static vg_err_t query_result(read_ctx *c, const Prometheus__Query *q, Prometheus__QueryResult *qr)
{
    vg_seriesset_t *ss = NULL;
    vg_err_t rc = select_query(c, q, &ss);
    size_t n = rc ? 0 : vg_seriesset_len(ss), i = 0;
    Prometheus__TimeSeries **tsp = rc ? NULL : vg_arena_alloc(c->arena, (n ? n : 1) * sizeof(*tsp));
    Prometheus__TimeSeries *ts = rc ? NULL : vg_arena_alloc(c->arena, (n ? n : 1) * sizeof(*ts));
    if (!rc && (!tsp || !ts)) rc = VG_ENOMEM;
    while (!rc && vg_seriesset_next(ss)) {
        size_t nl;
        const vg_label_t *l = vg_seriesset_labels(ss, &nl);
        prometheus__time_series__init(&ts[i]);
        if (!(ts[i].labels = copy_labels(c, l, nl))) rc = VG_ENOMEM;
        ts[i].n_labels = nl;
        if (!rc) rc = series_samples(c, ss, &ts[i]);
        tsp[i] = &ts[i];
        i++;
    }
    if (!rc) rc = vg_seriesset_err(ss);
    if (!rc) qr->timeseries = tsp, qr->n_timeseries = i;
    vg_seriesset_free(ss);
    return rc;
}

static vg_err_t answer_samples(read_ctx *c, const Prometheus__ReadRequest *req)
{
    Prometheus__ReadResponse resp = PROMETHEUS__READ_RESPONSE__INIT;
    Prometheus__QueryResult *qr = vg_arena_alloc(c->arena, (req->n_queries + 1) * sizeof(*qr));
    Prometheus__QueryResult **qrp = vg_arena_alloc(c->arena, (req->n_queries + 1) * sizeof(*qrp));
    vg_err_t rc = qr && qrp ? VG_OK : VG_ENOMEM;
    for (size_t i = 0; !rc && i < req->n_queries; i++) {
        prometheus__query_result__init(&qr[i]);
        qrp[i] = &qr[i];
        rc = query_result(c, req->queries[i], &qr[i]);
    }
    if (rc) return rc;
    resp.results = qrp;
    resp.n_results = req->n_queries;
    size_t n = prometheus__read_response__get_packed_size(&resp);
    size_t zmax = snappy_max_compressed_length(n);
    uint8_t *raw = vg_malloc(n ? n : 1);
    if (!raw) return VG_ENOMEM;
    prometheus__read_response__pack(&resp, raw);
    vg_buf_reset(c->out);
    rc = vg_buf_reserve(c->out, zmax + 1);
    if (!rc && snappy_compress((const char *)raw, n, c->out->data, &zmax) != SNAPPY_OK)
        rc = vg_error_set(&c->err, VG_EINTERNAL, "snappy compression failed");
    if (!rc) c->out->len = zmax, c->out->data[zmax] = 0;
    vg_free(raw);
    return rc;
}

/* ---- STREAMED_XOR_CHUNKS ---- */

static vg_err_t put_uvarint(vg_buf *b, uint64_t x)
{
    uint8_t v[10];
    size_t n = 0;
    for (; x >= 0x80; x >>= 7) v[n++] = (uint8_t)(x | 0x80);
    v[n++] = (uint8_t)x;
    return vg_buf_append(b, v, n);
}

/* One frame: uvarint size, CRC32-C big-endian, ChunkedReadResponse. */
static vg_err_t emit_frame(read_ctx *c, Prometheus__ChunkedSeries *cs, size_t qi)
{
    Prometheus__ChunkedReadResponse r = PROMETHEUS__CHUNKED_READ_RESPONSE__INIT;
    Prometheus__ChunkedSeries *one[1] = {cs};
    r.chunked_series = one;
    r.n_chunked_series = 1;
    r.query_index = (int64_t)qi;
    size_t n = prometheus__chunked_read_response__get_packed_size(&r);
    uint8_t *msg = vg_malloc(n ? n : 1);
    if (!msg) return VG_ENOMEM;
    prometheus__chunked_read_response__pack(&r, msg);
    uint32_t crc = crc32c(msg, n);
    uint8_t be[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
    vg_err_t rc = put_uvarint(c->out, n);
    if (!rc) rc = vg_buf_append(c->out, be, 4);
    if (!rc) rc = vg_buf_append(c->out, msg, n);
    vg_free(msg);
    return rc;
}

/* Close the chunk being built into cs's list (data copied to the arena). */
static vg_err_t seal_chunk(read_ctx *c, vg_chunk_t *ch, Prometheus__ChunkedSeries *cs,
                           size_t *bytes)
{
    size_t len;
    const uint8_t *data = vg_chunk_bytes(ch, &len);
    Prometheus__Chunk *k = vg_arena_alloc(c->arena, sizeof(*k));
    uint8_t *copy = vg_arena_alloc(c->arena, len ? len : 1);
    if (!k || !copy) return VG_ENOMEM;
    memcpy(copy, data, len);
    prometheus__chunk__init(k);
    k->min_time_ms = vg_chunk_min_time(ch);
    k->max_time_ms = vg_chunk_max_time(ch);
    k->type = PROMETHEUS__CHUNK__ENCODING__XOR;
    k->data.data = copy;
    k->data.len = len;
    cs->chunks[cs->n_chunks++] = k;
    *bytes += len;
    return VG_OK;
}

/* Frames for the current series of ss: chunks of 120 samples, a frame
 * whenever the chunks gathered pass 1 MiB, and one at the end. */
static vg_err_t stream_series(read_ctx *c, vg_seriesset_t *ss, size_t qi)
{
    size_t nl, bytes = 0, cap = 64;
    const vg_label_t *l = vg_seriesset_labels(ss, &nl);
    Prometheus__ChunkedSeries cs = PROMETHEUS__CHUNKED_SERIES__INIT;
    cs.labels = copy_labels(c, l, nl);
    cs.n_labels = nl;
    cs.chunks = vg_malloc(cap * sizeof(*cs.chunks));
    vg_chunk_t *ch = vg_chunk_new();
    vg_err_t rc = cs.labels && cs.chunks && ch ? VG_OK : VG_ENOMEM;
    int64_t t;
    double v;
    while (!rc && vg_seriesset_sample_next(ss, &t, &v)) {
        if (!(rc = count_sample(c))) rc = vg_chunk_append(ch, t, v);
        if (rc || vg_chunk_num_samples(ch) < VG_CHUNK_MAX_SAMPLES) continue;
        rc = seal_chunk(c, ch, &cs, &bytes);
        vg_chunk_free(ch);
        if (!(ch = vg_chunk_new())) rc = VG_ENOMEM;
        if (!rc && bytes >= READ_MAX_FRAME) rc = emit_frame(c, &cs, qi), cs.n_chunks = 0, bytes = 0;
        if (!rc && cs.n_chunks + 1 >= cap) {
            Prometheus__Chunk **g = vg_realloc(cs.chunks, (cap *= 2) * sizeof(*g));
            if (!g)
                rc = VG_ENOMEM;
            else
                cs.chunks = g;
        }
    }
    if (!rc && vg_chunk_num_samples(ch)) rc = seal_chunk(c, ch, &cs, &bytes);
    if (!rc && cs.n_chunks) rc = emit_frame(c, &cs, qi);
    vg_chunk_free(ch);
    vg_free(cs.chunks);
    return rc;
}

static vg_err_t answer_stream(read_ctx *c, const Prometheus__ReadRequest *req)
{
    vg_err_t rc = VG_OK;
    vg_buf_reset(c->out);
    for (size_t i = 0; !rc && i < req->n_queries; i++) {
        vg_seriesset_t *ss = NULL;
        rc = select_query(c, req->queries[i], &ss);
        while (!rc && vg_seriesset_next(ss)) {
            rc = stream_series(c, ss, i);
            vg_arena_reset(c->arena); /* the frame is written: its parts can go */
        }
        if (!rc) rc = vg_seriesset_err(ss);
        vg_seriesset_free(ss);
    }
    return rc;
}

/* ---- entry ---- */

/* NegotiateResponseType: the first accepted type we support. */
static int wants_stream(const Prometheus__ReadRequest *req)
{
    for (size_t i = 0; i < req->n_accepted_response_types; i++) {
        int t = (int)req->accepted_response_types[i];
        if (t == PROMETHEUS__READ_REQUEST__RESPONSE_TYPE__SAMPLES) return 0;
        if (t == PROMETHEUS__READ_REQUEST__RESPONSE_TYPE__STREAMED_XOR_CHUNKS) return 1;
    }
    return 0;
}

static int read_status(vg_err_t rc)
{
    switch (rc) {
    case VG_EPARSE:
    case VG_EINVAL:
    case VG_ETOOLARGE:
    case VG_ELIMIT: return 400;
    default: return 500;
    }
}

int vg_api_remote_read(vg_api_t *api, const char *tenant, const uint8_t *body, size_t len,
                       vg_buf *out, const char **content_type, const char **encoding)
{
    read_ctx c = {
        .api = api, .tenant = tenant && tenant[0] ? tenant : VG_TENANT_DEFAULT, .out = out};
    Prometheus__ReadRequest *req = NULL;
    c.max_samples = api->opts.max_samples ? api->opts.max_samples : READ_DEFAULT_SAMPLES;
    *content_type = ct_text;
    *encoding = NULL;
    if (!vg_tsdb_tenant_valid(c.tenant))
        return text_error(&c, 400, "invalid tenant in X-Scope-OrgID");
    vg_err_t rc = decode_request(body ? body : (const uint8_t *)"", len, &req, &c.err);
    if (!rc && req->n_queries > READ_MAX_QUERIES)
        rc = vg_error_set(&c.err, VG_ETOOLARGE, "too many queries in one request");
    if (!rc && !(c.arena = vg_arena_new(0))) rc = VG_ENOMEM;
    int stream = !rc && wants_stream(req);
    if (!rc) rc = stream ? answer_stream(&c, req) : answer_samples(&c, req);
    vg_arena_free(c.arena);
    if (req) prometheus__read_request__free_unpacked(req, NULL);
    if (rc) return text_error(&c, read_status(rc), vg_error_msg(&c.err, rc));
    *content_type = stream ? ct_stream : ct_samples;
    *encoding = stream ? NULL : "snappy";
    return 200;
}
