/*
 * rw_decode.c - the remote-write WriteRequest decoder (see rw_decode.h).
 *
 * Each message is read twice: a scan that checks every field's framing and
 * wire type and counts the repeated fields, then the pass that fills structs
 * allocated at their final size (one array of structs and one of pointers per
 * repeated field, one block for a series' label strings). A reader never
 * moves past the end of the message it is in: every length is checked
 * against what is left before it is used.
 *
 * Wire format (protobuf): a tag is a varint (field << 3 | wire type); wire
 * type 0 is a varint, 1 eight bytes, 2 a varint length then that many bytes,
 * 5 four bytes; 3 and 4 (groups) are refused as protobuf-c refuses them.
 */
#include "remotewrite/rw_decode.h"

#include <string.h>

#define WT_VARINT 0
#define WT_64BIT  1
#define WT_LEN    2
#define WT_32BIT  5
#define WT_ANY    8 /* scan(): a field this decoder does not read */

typedef struct dec {
    vg_arena_t *a;
    size_t left; /* budget */
    int over;
    ProtobufCAllocator pa; /* for the metadata entries protobuf-c unpacks */
} dec;

static void *take(dec *d, size_t n)
{
    if (n > d->left) {
        d->over = 1;
        return NULL;
    }
    d->left -= n;
    return vg_arena_alloc(d->a, n ? n : 1);
}

static void *pa_alloc(void *data, size_t n)
{
    return take(data, n);
}

static void pa_free(void *data, void *p)
{
    (void)data;
    (void)p; /* the arena owns everything */
}

/* ---- wire primitives ---- */

#define HOT static inline __attribute__((always_inline))

static int get_varint_slow(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pp;
    uint64_t x = 0;
    for (unsigned i = 0; i < 10 && p < end; i++, p++) {
        x |= (uint64_t)(*p & 0x7f) << (7 * i);
        if (*p < 0x80) {
            *v = x;
            *pp = p + 1;
            return 1;
        }
    }
    return 0; /* ran past the end, or more than 10 bytes */
}

/* Tags and lengths are almost always one byte: that case inline. */
HOT int get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pp;
    if (p < end && *p < 0x80) {
        *v = *p;
        *pp = p + 1;
        return 1;
    }
    return get_varint_slow(pp, end, v);
}

/* A tag read as protobuf-c reads one, so that both accept the same bytes:
 * at most 5 bytes, the field number kept to 32 bits; a first byte with field
 * bits 0 is refused. A field number of 0 (reachable only through a longer
 * encoding) is an unknown field. */
static int get_tag_slow(const uint8_t **pp, const uint8_t *end, uint32_t *field)
{
    const uint8_t *p = *pp;
    uint32_t f = (uint32_t)(p[0] & 0x7f) >> 3;
    unsigned shift = 4;
    for (size_t i = 1; i < 5 && p + i < end; i++, shift += 7) {
        f |= (uint32_t)(p[i] & 0x7f) << shift;
        if (p[i] < 0x80) {
            *field = f;
            *pp = p + i + 1;
            return 1;
        }
    }
    return 0;
}

HOT int get_tag(const uint8_t **pp, const uint8_t *end, uint32_t *field, unsigned *wt)
{
    const uint8_t *p = *pp;
    if (p >= end || (p[0] & 0xf8) == 0) return 0;
    *wt = p[0] & 7;
    if (p[0] < 0x80) {
        *field = p[0] >> 3;
        *pp = p + 1;
        return 1;
    }
    return get_tag_slow(pp, end, field);
}

HOT int get_bytes(const uint8_t **p, const uint8_t *end, const uint8_t **b, size_t *n)
{
    uint64_t len;
    if (!get_varint(p, end, &len) || len > (uint64_t)(end - *p)) return 0;
    *b = *p;
    *n = (size_t)len;
    *p += len;
    return 1;
}

HOT int skip(const uint8_t **p, const uint8_t *end, unsigned wt)
{
    uint64_t v;
    const uint8_t *b;
    size_t n;
    switch (wt) {
    case WT_VARINT: return get_varint(p, end, &v);
    case WT_64BIT:
        if (end - *p < 8) return 0;
        *p += 8;
        return 1;
    case WT_LEN: return get_bytes(p, end, &b, &n);
    case WT_32BIT:
        if (end - *p < 4) return 0;
        *p += 4;
        return 1;
    default: return 0;
    }
}

/* Check the framing of p[0..n) and the wire type of fields 1..nf (wt[f-1]);
 * count[f-1] gets how often field f appears. 0 if malformed. */
static int scan(const uint8_t *p, size_t n, const unsigned *wt, size_t nf, size_t *count)
{
    const uint8_t *end = p + n;
    memset(count, 0, nf * sizeof(*count));
    while (p < end) {
        uint32_t f;
        unsigned w;
        if (!get_tag(&p, end, &f, &w) || !skip(&p, end, w)) return 0;
        if (f == 0 || f > nf || wt[f - 1] == WT_ANY) continue;
        if (w != wt[f - 1]) return 0;
        count[f - 1]++;
    }
    return 1;
}

/* ---- messages ---- */

/* A string field's copy in the series' string block s (advanced past it). */
static char *put_str(char **s, const uint8_t *b, size_t n)
{
    char *out = *s;
    memcpy(out, b, n);
    out[n] = '\0';
    *s += n + 1;
    return out;
}

/* Label: name = 1, value = 2 (last one wins, as protobuf does). The
 * series' scan checked only the label's length: its fields are checked here. */
static int label(const uint8_t *p, size_t n, char **strs, Prometheus__Label *l)
{
    static const Prometheus__Label init = PROMETHEUS__LABEL__INIT;
    const uint8_t *end = p + n;
    *l = init;
    while (p < end) {
        uint32_t f;
        unsigned w;
        const uint8_t *b;
        size_t len;
        if (!get_tag(&p, end, &f, &w)) return 0;
        if (f == 1 || f == 2) {
            if (w != WT_LEN || !get_bytes(&p, end, &b, &len)) return 0;
            char *s = put_str(strs, b, len);
            if (f == 1)
                l->name = s;
            else
                l->value = s;
        } else if (!skip(&p, end, w)) {
            return 0;
        }
    }
    return 1;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0; /* little-endian on the wire; compilers make this one load */
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Sample: value = 1 (double), timestamp = 2 (int64). Senders write the
 * value then the timestamp: that layout is read straight through. */
static int sample(const uint8_t *p, size_t n, Prometheus__Sample *s)
{
    static const Prometheus__Sample init = PROMETHEUS__SAMPLE__INIT;
    const uint8_t *end = p + n;
    *s = init;
    if (n > 10 && p[0] == 0x09 && p[9] == 0x10) {
        const uint8_t *q = p + 10;
        uint64_t v = le64(p + 1), ts;
        if (get_varint(&q, end, &ts) && q == end) {
            memcpy(&s->value, &v, sizeof(v));
            s->timestamp = (int64_t)ts;
            return 1;
        }
    }
    while (p < end) {
        uint32_t f;
        unsigned w;
        uint64_t v;
        if (!get_tag(&p, end, &f, &w)) return 0;
        if (f == 1) {
            if (w != WT_64BIT || end - p < 8) return 0;
            v = le64(p);
            memcpy(&s->value, &v, sizeof(v));
            p += 8;
        } else if (f == 2) {
            if (w != WT_VARINT || !get_varint(&p, end, &v)) return 0;
            s->timestamp = (int64_t)v;
        } else if (!skip(&p, end, w)) {
            return 0;
        }
    }
    return 1;
}

/* Room for every string of a series: each is at most its bytes plus a NUL,
 * and the label messages' bytes (which hold them) are at most n. */
static vg_err_t series(dec *d, const uint8_t *p, size_t n, Prometheus__TimeSeries *ts)
{
    static const Prometheus__TimeSeries init = PROMETHEUS__TIME_SERIES__INIT;
    static const unsigned wt[] = {WT_LEN, WT_LEN, WT_LEN}; /* labels, samples, exemplars */
    size_t cnt[3];
    *ts = init;
    if (!scan(p, n, wt, 3, cnt)) return VG_EPARSE;
    size_t nl = cnt[0], ns = cnt[1];
    ts->labels = take(d, nl * (sizeof(*ts->labels) + sizeof(**ts->labels)));
    ts->samples = take(d, ns * (sizeof(*ts->samples) + sizeof(**ts->samples)));
    char *strs = take(d, n + 2 * nl);
    if (!ts->labels || !ts->samples || !strs) return d->over ? VG_ETOOLARGE : VG_ENOMEM;
    Prometheus__Label *lv = (Prometheus__Label *)(ts->labels + nl);
    Prometheus__Sample *sv = (Prometheus__Sample *)(ts->samples + ns);
    const uint8_t *end = p + n;
    while (p < end) {
        uint32_t f;
        unsigned w;
        const uint8_t *b;
        size_t len;
        if (!get_tag(&p, end, &f, &w)) return VG_EPARSE;
        if (f == 1 || f == 2) {
            if (!get_bytes(&p, end, &b, &len)) return VG_EPARSE;
            if (f == 1) {
                if (!label(b, len, &strs, &lv[ts->n_labels])) return VG_EPARSE;
                ts->labels[ts->n_labels] = &lv[ts->n_labels];
                ts->n_labels++;
            } else {
                if (!sample(b, len, &sv[ts->n_samples])) return VG_EPARSE;
                ts->samples[ts->n_samples] = &sv[ts->n_samples];
                ts->n_samples++;
            }
        } else if (!skip(&p, end, w)) {
            return VG_EPARSE;
        }
    }
    return VG_OK;
}

static vg_err_t metadata(dec *d, const uint8_t *b, size_t len, Prometheus__MetricMetadata **out)
{
    *out = prometheus__metric_metadata__unpack(&d->pa, len, b);
    if (*out) return VG_OK;
    return d->over ? VG_ETOOLARGE : VG_EPARSE;
}

/* The request's repeated fields, in order: timeseries = 1, metadata = 3. */
static vg_err_t request(dec *d, const uint8_t *p, size_t n, Prometheus__WriteRequest *wr)
{
    static const unsigned wt[] = {WT_LEN, WT_ANY, WT_LEN};
    size_t cnt[3];
    const uint8_t *end = p + n;
    vg_err_t rc = VG_OK;
    if (!scan(p, n, wt, 3, cnt)) return VG_EPARSE;
    Prometheus__TimeSeries *tv = take(d, cnt[0] * sizeof(*tv));
    wr->timeseries = take(d, cnt[0] * sizeof(*wr->timeseries));
    wr->metadata = take(d, cnt[2] * sizeof(*wr->metadata));
    if (!tv || !wr->timeseries || !wr->metadata) return d->over ? VG_ETOOLARGE : VG_ENOMEM;
    while (p < end && !rc) {
        uint32_t f;
        unsigned w;
        const uint8_t *b;
        size_t len;
        if (!get_tag(&p, end, &f, &w)) return VG_EPARSE;
        if (f != 1 && f != 3) {
            if (!skip(&p, end, w)) return VG_EPARSE;
            continue;
        }
        if (!get_bytes(&p, end, &b, &len)) return VG_EPARSE;
        if (f == 1) {
            rc = series(d, b, len, &tv[wr->n_timeseries]);
            wr->timeseries[wr->n_timeseries] = &tv[wr->n_timeseries];
            wr->n_timeseries++;
        } else {
            rc = metadata(d, b, len, &wr->metadata[wr->n_metadata]);
            if (!rc) wr->n_metadata++;
        }
    }
    return rc;
}

vg_err_t vg_rw_unpack(const uint8_t *p, size_t n, vg_arena_t *a, size_t budget,
                      Prometheus__WriteRequest **out)
{
    static const Prometheus__WriteRequest init = PROMETHEUS__WRITE_REQUEST__INIT;
    dec d = {.a = a, .left = budget};
    d.pa = (ProtobufCAllocator){.alloc = pa_alloc, .free = pa_free, .allocator_data = &d};
    *out = NULL;
    Prometheus__WriteRequest *wr = take(&d, sizeof(*wr));
    if (!wr) return d.over ? VG_ETOOLARGE : VG_ENOMEM;
    *wr = init;
    vg_err_t rc = request(&d, p, n, wr);
    if (rc) return rc;
    *out = wr;
    return VG_OK;
}
