/*
 * test_envelope.c - batch envelope round trips and hostile inputs.
 *
 * The hostile cases are built here with libzstd rather than stored, so the
 * test says exactly what each one is: a 200 MiB zero bomb with and without a
 * declared size, a frame with a huge window, protobuf that expands 40x,
 * trailing bytes, a second frame, truncation. It also checks the stored fuzz
 * seeds still decode (set VIGIL_WRITE_SEEDS=1 to regenerate them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zstd.h>

#include "vigil/alloc.h"
#include "vigil/envelope.h"

#define MiB (1024u * 1024u)

/* ---- fixtures ---- */

typedef struct metrics_fix {
    Prometheus__Label l_up[3], l_cpu[4], l_ex[1];
    Prometheus__Label *pl_up[3], *pl_cpu[4], *pl_ex[1];
    Prometheus__Sample s_up[2], s_cpu[1];
    Prometheus__Sample *ps_up[2], *ps_cpu[1];
    Prometheus__Exemplar ex;
    Prometheus__Exemplar *pex[1];
    Prometheus__TimeSeries ts[2];
    Prometheus__TimeSeries *pts[2];
    Prometheus__MetricMetadata md;
    Prometheus__MetricMetadata *pmd[1];
    Vigil__V1__MetricBatch mb;
    vg_batch_t b;
} metrics_fix;

static void set_label(Prometheus__Label *l, const char *n, const char *v)
{
    prometheus__label__init(l);
    l->name = (char *)n;
    l->value = (char *)v;
}

static double stale_nan(void)
{
    uint64_t bits = 0x7ff0000000000002ull; /* Prometheus staleness marker */
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

static void fill_header(vg_batch_t *b)
{
    vigil__v1__batch__init(b);
    b->agent_id = "agent-7f3a";
    b->node = "node-1.example";
    b->tenant = "team-a";
    b->seq = 184467440737095ull;
    b->created_ms = 1764288000123;
}

static void build_metrics(metrics_fix *f)
{
    memset(f, 0, sizeof(*f));
    set_label(&f->l_up[0], "__name__", "up");
    set_label(&f->l_up[1], "instance", "10.0.0.1:9100");
    set_label(&f->l_up[2], "job", "node");
    set_label(&f->l_cpu[0], "__name__", "node_cpu_seconds_total");
    set_label(&f->l_cpu[1], "cpu", "0");
    set_label(&f->l_cpu[2], "mode", "idle");
    set_label(&f->l_cpu[3], "path", "C:\\ \"quoted\"\nnewline \xc3\xa9");
    set_label(&f->l_ex[0], "trace_id", "4bf92f3577b34da6a3ce929d0e0e4736");
    for (int i = 0; i < 3; i++) f->pl_up[i] = &f->l_up[i];
    for (int i = 0; i < 4; i++) f->pl_cpu[i] = &f->l_cpu[i];
    f->pl_ex[0] = &f->l_ex[0];
    for (int i = 0; i < 2; i++) {
        prometheus__sample__init(&f->s_up[i]);
        f->ps_up[i] = &f->s_up[i];
    }
    f->s_up[0] = (Prometheus__Sample){f->s_up[0].base, 1.0, 1764288000000};
    f->s_up[1] = (Prometheus__Sample){f->s_up[1].base, stale_nan(), 1764288030000};
    prometheus__sample__init(&f->s_cpu[0]);
    f->s_cpu[0].value = 123456.789;
    f->s_cpu[0].timestamp = 1764288000000;
    f->ps_cpu[0] = &f->s_cpu[0];
    prometheus__exemplar__init(&f->ex);
    f->ex.n_labels = 1;
    f->ex.labels = f->pl_ex;
    f->ex.value = 0.25;
    f->ex.timestamp = 1764288000001;
    f->pex[0] = &f->ex;
    for (int i = 0; i < 2; i++) {
        prometheus__time_series__init(&f->ts[i]);
        f->pts[i] = &f->ts[i];
    }
    f->ts[0].n_labels = 3, f->ts[0].labels = f->pl_up;
    f->ts[0].n_samples = 2, f->ts[0].samples = f->ps_up;
    f->ts[1].n_labels = 4, f->ts[1].labels = f->pl_cpu;
    f->ts[1].n_samples = 1, f->ts[1].samples = f->ps_cpu;
    f->ts[1].n_exemplars = 1, f->ts[1].exemplars = f->pex;
    prometheus__metric_metadata__init(&f->md);
    f->md.type = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER;
    f->md.metric_family_name = "node_cpu_seconds_total";
    f->md.help = "Seconds the CPUs spent in each mode.";
    f->md.unit = "seconds";
    f->pmd[0] = &f->md;
    vigil__v1__metric_batch__init(&f->mb);
    f->mb.n_timeseries = 2, f->mb.timeseries = f->pts;
    f->mb.n_metadata = 1, f->mb.metadata = f->pmd;
    fill_header(&f->b);
    f->b.payload_case = VIGIL__V1__BATCH__PAYLOAD_METRICS;
    f->b.metrics = &f->mb;
}

typedef struct audit_fix {
    Vigil__V1__AuditRecord r[2];
    Vigil__V1__AuditRecord *pr[2];
    Vigil__V1__AuditBatch ab;
    vg_batch_t b;
} audit_fix;

static void build_audit(audit_fix *f)
{
    memset(f, 0, sizeof(*f));
    for (int i = 0; i < 2; i++) {
        Vigil__V1__AuditRecord *r = &f->r[i];
        vigil__v1__audit_record__init(r);
        r->ts_ms = 1764288000000 + i;
        r->user_id = i ? "u-2" : "u-1";
        r->session_id = "s-9c1";
        r->action = i ? "delete" : "login";
        r->resource = "/accounts/42";
        r->result = i ? "denied" : "success";
        r->ip_address = i ? "2001:db8::1" : "192.0.2.10";
        r->original_json = "{\"user\":\"u-1\",\"email\":\"[REDACTED]\",\"note\":\"caf\xc3\xa9\"}";
        r->file_id = "803:1234567:9f86d081";
        r->offset = 4096u * (unsigned)i;
        f->pr[i] = r;
    }
    vigil__v1__audit_batch__init(&f->ab);
    f->ab.n_records = 2;
    f->ab.records = f->pr;
    fill_header(&f->b);
    f->b.payload_case = VIGIL__V1__BATCH__PAYLOAD_AUDIT;
    f->b.audit = &f->ab;
}

static void check_header(const vg_batch_t *b)
{
    assert_string_equal(b->agent_id, "agent-7f3a");
    assert_string_equal(b->node, "node-1.example");
    assert_string_equal(b->tenant, "team-a");
    assert_int_equal(b->seq, 184467440737095ull);
    assert_int_equal(b->created_ms, 1764288000123);
}

static void check_metrics(const vg_batch_t *b)
{
    check_header(b);
    assert_int_equal(b->payload_case, VIGIL__V1__BATCH__PAYLOAD_METRICS);
    const Vigil__V1__MetricBatch *m = b->metrics;
    assert_int_equal(m->n_timeseries, 2);
    assert_int_equal(m->timeseries[0]->n_labels, 3);
    assert_string_equal(m->timeseries[0]->labels[1]->value, "10.0.0.1:9100");
    assert_int_equal(m->timeseries[0]->n_samples, 2);
    assert_true(m->timeseries[0]->samples[0]->value == 1.0);
    double got = m->timeseries[0]->samples[1]->value, want = stale_nan();
    assert_memory_equal(&got, &want, sizeof(got)); /* NaN payload preserved bit for bit */
    assert_int_equal(m->timeseries[0]->samples[1]->timestamp, 1764288030000);
    const Prometheus__TimeSeries *cpu = m->timeseries[1];
    assert_string_equal(cpu->labels[3]->value, "C:\\ \"quoted\"\nnewline \xc3\xa9");
    assert_true(cpu->samples[0]->value == 123456.789);
    assert_int_equal(cpu->n_exemplars, 1);
    assert_string_equal(cpu->exemplars[0]->labels[0]->name, "trace_id");
    assert_true(cpu->exemplars[0]->value == 0.25);
    assert_int_equal(m->n_metadata, 1);
    assert_int_equal(m->metadata[0]->type, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER);
    assert_string_equal(m->metadata[0]->unit, "seconds");
}

static void check_audit(const vg_batch_t *b)
{
    check_header(b);
    assert_int_equal(b->payload_case, VIGIL__V1__BATCH__PAYLOAD_AUDIT);
    assert_int_equal(b->audit->n_records, 2);
    const Vigil__V1__AuditRecord *r = b->audit->records[1];
    assert_int_equal(r->ts_ms, 1764288000001);
    assert_string_equal(r->user_id, "u-2");
    assert_string_equal(r->action, "delete");
    assert_string_equal(r->result, "denied");
    assert_string_equal(r->ip_address, "2001:db8::1");
    assert_string_equal(r->file_id, "803:1234567:9f86d081");
    assert_int_equal(r->offset, 4096);
    assert_non_null(strstr(b->audit->records[0]->original_json, "caf\xc3\xa9"));
}

/* ---- helpers ---- */

static void encode_ok(const vg_batch_t *b, int level, uint8_t **out, size_t *len)
{
    vg_error err = {0};
    if (vg_envelope_encode(b, level, out, len, &err) != VG_OK) fail_msg("encode: %s", err.msg);
}

static void expect_fail(const uint8_t *in, size_t len, const vg_envelope_limits *lim, vg_err_t code,
                        const char *needle)
{
    vg_error err = {0};
    vg_batch_t *b = (vg_batch_t *)1;
    vg_err_t rc = vg_envelope_decode(in, len, lim, &b, &err);
    if (rc != code) fail_msg("want %s, got %s: %s", vg_strerror(code), vg_strerror(rc), err.msg);
    assert_null(b);
    if (!strstr(err.msg, needle)) fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
}

/* Compress src as one frame; with_size=0 leaves the content size out, wlog
 * sets the window a decoder must provide (0 = zstd's default for the level). */
static uint8_t *zframe_w(const void *src, size_t n, int with_size, int wlog, size_t *out_len)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    if (wlog) ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, wlog);
    size_t cap = ZSTD_compressBound(n) + 64;
    uint8_t *dst = malloc(cap);
    ZSTD_outBuffer ob = {dst, cap, 0};
    ZSTD_inBuffer ib = {src, n, 0};
    if (with_size) ZSTD_CCtx_setPledgedSrcSize(c, n);
    while (ib.pos < ib.size)
        assert_false(ZSTD_isError(ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_continue)));
    ZSTD_inBuffer empty = {NULL, 0, 0};
    size_t left;
    do {
        left = ZSTD_compressStream2(c, &ob, &empty, ZSTD_e_end);
        assert_false(ZSTD_isError(left));
    } while (left != 0);
    ZSTD_freeCCtx(c);
    *out_len = ob.pos;
    return dst;
}

static uint8_t *zframe(const void *src, size_t n, int with_size, size_t *out_len)
{
    return zframe_w(src, n, with_size, 0, out_len);
}

/* total bytes of zeros, fed 1 MiB at a time: a bomb of a few KiB. */
static uint8_t *zero_bomb(size_t total, int with_size, size_t *out_len)
{
    static uint8_t zeros[MiB];
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 1);
    if (with_size) ZSTD_CCtx_setPledgedSrcSize(c, total);
    size_t cap = 1 * MiB;
    uint8_t *dst = malloc(cap);
    ZSTD_outBuffer ob = {dst, cap, 0};
    for (size_t done = 0; done < total; done += sizeof(zeros)) {
        ZSTD_inBuffer ib = {zeros, sizeof(zeros), 0};
        ZSTD_EndDirective e = done + sizeof(zeros) >= total ? ZSTD_e_end : ZSTD_e_continue;
        size_t r;
        do {
            r = ZSTD_compressStream2(c, &ob, &ib, e);
            assert_false(ZSTD_isError(r));
        } while (ib.pos < ib.size || (e == ZSTD_e_end && r != 0));
    }
    ZSTD_freeCCtx(c);
    *out_len = ob.pos;
    return dst;
}

/* ---- tests ---- */

static void test_roundtrip_metrics(void **state)
{
    (void)state;
    metrics_fix f;
    build_metrics(&f);
    uint8_t *enc = NULL;
    size_t len = 0;
    encode_ok(&f.b, 0, &enc, &len);
    assert_true(len > 4);
    assert_int_equal(ZSTD_getFrameContentSize(enc, len), vigil__v1__batch__get_packed_size(&f.b));
    vg_batch_t *b = NULL;
    vg_error err = {0};
    assert_int_equal(vg_envelope_decode(enc, len, NULL, &b, &err), VG_OK);
    check_metrics(b);
    vg_envelope_batch_free(b);
    vg_free(enc);
    encode_ok(&f.b, 19, &enc, &len);
    assert_int_equal(vg_envelope_decode(enc, len, NULL, &b, &err), VG_OK);
    check_metrics(b);
    vg_envelope_batch_free(b);
    vg_free(enc);
    vg_envelope_batch_free(NULL);
}

static void test_roundtrip_audit(void **state)
{
    (void)state;
    audit_fix f;
    build_audit(&f);
    uint8_t *enc = NULL;
    size_t len = 0;
    encode_ok(&f.b, 1, &enc, &len);
    vg_batch_t *b = NULL;
    assert_int_equal(vg_envelope_decode(enc, len, NULL, &b, NULL), VG_OK);
    check_audit(b);
    vg_envelope_batch_free(b);
    vg_free(enc);
}

/* A frame without a content size (as a streaming encoder writes) decodes too. */
static void test_roundtrip_unknown_size(void **state)
{
    (void)state;
    audit_fix f;
    build_audit(&f);
    size_t n = vigil__v1__batch__get_packed_size(&f.b), len;
    uint8_t *raw = malloc(n);
    vigil__v1__batch__pack(&f.b, raw);
    uint8_t *z = zframe(raw, n, 0, &len);
    assert_int_equal(ZSTD_getFrameContentSize(z, len), ZSTD_CONTENTSIZE_UNKNOWN);
    vg_batch_t *b = NULL;
    assert_int_equal(vg_envelope_decode(z, len, NULL, &b, NULL), VG_OK);
    check_audit(b);
    vg_envelope_batch_free(b);
    free(z);
    /* Exactly at the limit is fine; one byte under is not. The window must
     * fit the limit too, so this frame is made with the smallest window. */
    z = zframe_w(raw, n, 0, 10, &len);
    vg_envelope_limits lim = {.max_compressed = 1 * MiB, .max_decompressed = n};
    assert_int_equal(vg_envelope_decode(z, len, &lim, &b, NULL), VG_OK);
    vg_envelope_batch_free(b);
    lim.max_decompressed = n - 1;
    char want[128];
    snprintf(want, sizeof(want),
             "batch decompresses to more than %zu bytes (limit max_decompressed)", n - 1);
    expect_fail(z, len, &lim, VG_ETOOLARGE, want);
    free(z);
    free(raw);
}

static void test_encode_rejects(void **state)
{
    (void)state;
    vg_batch_t b;
    fill_header(&b);
    uint8_t *out = (uint8_t *)1;
    size_t len = 1;
    vg_error err = {0};
    assert_int_equal(vg_envelope_encode(&b, 3, &out, &len, &err), VG_EINVAL);
    assert_non_null(strstr(err.msg, "no payload"));
    assert_null(out);
    metrics_fix f;
    build_metrics(&f);
    assert_int_equal(vg_envelope_encode(&f.b, 20, &out, &len, &err), VG_EINVAL);
    assert_non_null(strstr(err.msg, "level 20"));
    assert_int_equal(vg_envelope_encode(&f.b, -1, &out, &len, NULL), VG_EINVAL);
}

static void test_truncated_and_garbage(void **state)
{
    (void)state;
    metrics_fix f;
    build_metrics(&f);
    uint8_t *enc;
    size_t len;
    encode_ok(&f.b, 3, &enc, &len);
    expect_fail(enc, 0, NULL, VG_EPARSE, "batch is empty");
    expect_fail(NULL, 0, NULL, VG_EPARSE, "batch is empty");
    for (size_t cut = 1; cut < len; cut += (cut < 16 ? 1 : 7)) {
        vg_error err = {0};
        vg_batch_t *b = (vg_batch_t *)1;
        vg_err_t rc = vg_envelope_decode(enc, cut, NULL, &b, &err);
        if (rc != VG_EPARSE) fail_msg("cut at %zu: %s", cut, err.msg);
        assert_null(b);
    }
    expect_fail(enc, len - 1, NULL, VG_EPARSE, "truncated or corrupt zstd frame");
    static const uint8_t garbage[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    expect_fail(garbage, sizeof(garbage) - 1, NULL, VG_EPARSE, "not a zstd frame");
    /* A skippable frame has a different magic and is refused as well. */
    static const uint8_t skippable[] = {0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0};
    expect_fail(skippable, sizeof(skippable), NULL, VG_EPARSE, "not a zstd frame");
    /* Flip a byte in the middle of the compressed data: corrupt, not a crash. */
    uint8_t *bad = malloc(len);
    for (size_t i = 4; i < len; i++) {
        memcpy(bad, enc, len);
        bad[i] ^= 0x5a;
        vg_batch_t *b = NULL;
        vg_err_t rc = vg_envelope_decode(bad, len, NULL, &b, NULL);
        if (rc == VG_OK)
            vg_envelope_batch_free(b); /* a flip in a string may still parse */
        else
            assert_true(rc == VG_EPARSE || rc == VG_ETOOLARGE);
    }
    free(bad);
    vg_free(enc);
}

static void test_trailing_and_two_frames(void **state)
{
    (void)state;
    metrics_fix f;
    build_metrics(&f);
    uint8_t *enc;
    size_t len;
    encode_ok(&f.b, 3, &enc, &len);
    uint8_t *two = malloc(2 * len + 3);
    memcpy(two, enc, len);
    memcpy(two + len, "xyz", 3);
    expect_fail(two, len + 3, NULL, VG_EPARSE, "3 bytes after its zstd frame");
    memcpy(two + len, enc, len);
    expect_fail(two, 2 * len, NULL, VG_EPARSE, "after its zstd frame");
    free(two);
    vg_free(enc);
}

static void test_protobuf_garbage(void **state)
{
    (void)state;
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x08, 0x80};
    size_t len;
    uint8_t *z = zframe(junk, sizeof(junk), 1, &len);
    expect_fail(z, len, NULL, VG_EPARSE, "batch is not a valid vigil.v1.Batch protobuf");
    free(z);
    /* Field 10 claims 100 bytes but the message ends. */
    static const uint8_t short_len[] = {0x52, 100, 0x0a, 0x00};
    z = zframe(short_len, sizeof(short_len), 0, &len);
    expect_fail(z, len, NULL, VG_EPARSE, "not a valid vigil.v1.Batch");
    free(z);
    /* Valid protobuf, but neither metrics nor audit. */
    static const uint8_t header_only[] = {0x0a, 0x01, 'a', 0x20, 0x07};
    z = zframe(header_only, sizeof(header_only), 1, &len);
    expect_fail(z, len, NULL, VG_EPARSE, "batch has no payload");
    free(z);
    /* An empty frame is an empty Batch: no payload either. */
    z = zframe("", 0, 1, &len);
    expect_fail(z, len, NULL, VG_EPARSE, "batch has no payload");
    free(z);
}

static void test_bomb_no_size(void **state)
{
    (void)state;
    size_t len;
    uint8_t *z = zero_bomb(200 * MiB, 0, &len);
    assert_true(len < 64 * 1024);
    assert_int_equal(ZSTD_getFrameContentSize(z, len), ZSTD_CONTENTSIZE_UNKNOWN);
    expect_fail(z, len, NULL, VG_ETOOLARGE,
                "batch decompresses to more than 67108864 bytes (limit max_decompressed)");
    vg_envelope_limits lim = {.max_compressed = 1 * MiB, .max_decompressed = 1 * MiB};
    expect_fail(z, len, &lim, VG_ETOOLARGE, "more than 1048576 bytes (limit max_decompressed)");
    free(z);
}

static void test_bomb_with_size(void **state)
{
    (void)state;
    size_t len;
    uint8_t *z = zero_bomb(200 * MiB, 1, &len);
    assert_int_equal(ZSTD_getFrameContentSize(z, len), 200ull * MiB);
    expect_fail(z, len, NULL, VG_ETOOLARGE,
                "batch declares 209715200 bytes decompressed, more than 67108864 (limit "
                "max_decompressed)");
    free(z);
}

/* A frame asking for a 128 MiB window could make zstd allocate it even when
 * the content is tiny; the decoder caps the window at max_decompressed. */
static void test_huge_window(void **state)
{
    (void)state;
    static uint8_t data[4096];
    for (size_t i = 0; i < sizeof(data); i++) data[i] = (uint8_t)(i * 2654435761u >> 13);
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 27);
    uint8_t dst[8192];
    ZSTD_outBuffer ob = {dst, sizeof(dst), 0};
    ZSTD_inBuffer ib = {data, sizeof(data), 0};
    ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_continue);
    ZSTD_inBuffer none = {NULL, 0, 0};
    while (ZSTD_compressStream2(c, &ob, &none, ZSTD_e_end) != 0) continue;
    ZSTD_freeCCtx(c);
    assert_int_equal(ZSTD_getFrameContentSize(dst, ob.pos), ZSTD_CONTENTSIZE_UNKNOWN);
    vg_envelope_limits lim = {.max_compressed = 1 * MiB, .max_decompressed = 1 * MiB};
    expect_fail(dst, ob.pos, &lim, VG_ETOOLARGE, "window");
}

static void test_max_compressed(void **state)
{
    (void)state;
    metrics_fix f;
    build_metrics(&f);
    uint8_t *enc;
    size_t len;
    encode_ok(&f.b, 3, &enc, &len);
    vg_envelope_limits lim = vg_envelope_default_limits();
    assert_int_equal(lim.max_compressed, 16 * MiB);
    assert_int_equal(lim.max_decompressed, 64 * MiB);
    lim.max_compressed = len;
    vg_batch_t *b = NULL;
    assert_int_equal(vg_envelope_decode(enc, len, &lim, &b, NULL), VG_OK);
    vg_envelope_batch_free(b);
    lim.max_compressed = len - 1;
    char want[128];
    snprintf(want, sizeof(want),
             "batch is %zu bytes compressed, more than %zu (limit max_compressed)", len, len - 1);
    expect_fail(enc, len, &lim, VG_ETOOLARGE, want);
    /* Declared size over max_decompressed. */
    size_t raw = vigil__v1__batch__get_packed_size(&f.b);
    lim = (vg_envelope_limits){.max_compressed = len, .max_decompressed = raw - 1};
    expect_fail(enc, len, &lim, VG_ETOOLARGE, "(limit max_decompressed)");
    lim.max_decompressed = raw;
    assert_int_equal(vg_envelope_decode(enc, len, &lim, &b, NULL), VG_OK);
    vg_envelope_batch_free(b);
    vg_free(enc);
}

/* 100k empty TimeSeries: 200 KB on the wire, ~7 MB once unpacked. */
static void test_unpack_amplification(void **state)
{
    (void)state;
    size_t count = 100000, inner = 2 * count;
    uint8_t *raw = malloc(inner + 8);
    size_t n = 0;
    raw[n++] = 0x52; /* field 10 (metrics), length-delimited */
    for (size_t v = inner;; v >>= 7) {
        raw[n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        if (v < 0x80) break;
    }
    for (size_t i = 0; i < count; i++) raw[n++] = 0x0a, raw[n++] = 0x00;
    size_t len;
    uint8_t *z = zframe(raw, n, 1, &len);
    expect_fail(z, len, NULL, VG_ETOOLARGE, "bytes of memory to unpack");
    free(z);
    /* A few of them are fine. */
    z = zframe((uint8_t[]){0x52, 0x04, 0x0a, 0x00, 0x0a, 0x00}, 6, 1, &len);
    vg_batch_t *b = NULL;
    assert_int_equal(vg_envelope_decode(z, len, NULL, &b, NULL), VG_OK);
    assert_int_equal(b->metrics->n_timeseries, 2);
    vg_envelope_batch_free(b);
    free(z);
    free(raw);
}

/* Every allocation failure is reported as VG_ENOMEM and leaks nothing. */
static void test_alloc_failures(void **state)
{
    (void)state;
    audit_fix f;
    build_audit(&f);
    uint8_t *enc;
    size_t len;
    encode_ok(&f.b, 3, &enc, &len);
    int ok = 0;
    for (long n = 1; n < 200 && !ok; n++) {
        vg_batch_t *b = NULL;
        vg_alloc_fail_after(n);
        vg_err_t rc = vg_envelope_decode(enc, len, NULL, &b, NULL);
        vg_alloc_fail_after(0);
        if (rc == VG_OK) {
            check_audit(b);
            ok = 1;
        } else {
            assert_int_equal(rc, VG_ENOMEM);
        }
        vg_envelope_batch_free(b);
    }
    assert_true(ok);
    for (long n = 1; n < 10; n++) {
        uint8_t *out = NULL;
        size_t olen = 0;
        vg_alloc_fail_after(n);
        vg_err_t rc = vg_envelope_encode(&f.b, 3, &out, &olen, NULL);
        vg_alloc_fail_after(0);
        assert_true(rc == VG_OK || rc == VG_ENOMEM);
        vg_free(out);
    }
    vg_free(enc);
}

/* ---- fuzz seeds ---- */

#define SEED_DIR VIGIL_SOURCE_DIR "/tests/data/fuzz/envelope/"

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, n, fp), n);
    fclose(fp);
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) fail_msg("cannot read %s (regenerate with VIGIL_WRITE_SEEDS=1)", path);
    static uint8_t buf[65536];
    *n = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    return buf;
}

static void test_fuzz_seeds(void **state)
{
    (void)state;
    metrics_fix mf;
    audit_fix af;
    build_metrics(&mf);
    build_audit(&af);
    if (getenv("VIGIL_WRITE_SEEDS")) {
        uint8_t *e;
        size_t n;
        encode_ok(&mf.b, 3, &e, &n);
        write_file(SEED_DIR "metrics.zst", e, n);
        vg_free(e);
        encode_ok(&af.b, 3, &e, &n);
        write_file(SEED_DIR "audit.zst", e, n);
        vg_free(e);
        size_t rn = vigil__v1__batch__get_packed_size(&af.b);
        uint8_t *raw = malloc(rn);
        vigil__v1__batch__pack(&af.b, raw);
        e = zframe(raw, rn, 0, &n);
        write_file(SEED_DIR "audit-nosize.zst", e, n);
        free(e);
        free(raw);
    }
    size_t n;
    vg_batch_t *b = NULL;
    uint8_t *p = read_file(SEED_DIR "metrics.zst", &n);
    assert_int_equal(vg_envelope_decode(p, n, NULL, &b, NULL), VG_OK);
    check_metrics(b);
    vg_envelope_batch_free(b);
    static const char *const audits[] = {SEED_DIR "audit.zst", SEED_DIR "audit-nosize.zst"};
    for (int i = 0; i < 2; i++) {
        p = read_file(audits[i], &n);
        assert_int_equal(vg_envelope_decode(p, n, NULL, &b, NULL), VG_OK);
        check_audit(b);
        vg_envelope_batch_free(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_metrics),
        cmocka_unit_test(test_roundtrip_audit),
        cmocka_unit_test(test_roundtrip_unknown_size),
        cmocka_unit_test(test_encode_rejects),
        cmocka_unit_test(test_truncated_and_garbage),
        cmocka_unit_test(test_trailing_and_two_frames),
        cmocka_unit_test(test_protobuf_garbage),
        cmocka_unit_test(test_bomb_no_size),
        cmocka_unit_test(test_bomb_with_size),
        cmocka_unit_test(test_huge_window),
        cmocka_unit_test(test_max_compressed),
        cmocka_unit_test(test_unpack_amplification),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_fuzz_seeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
