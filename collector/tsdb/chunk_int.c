/*
 * chunk_int.c - scaled-integer chunks: encoder for the block writer,
 * bounds-checked decoder behind the chunk iterator (layout in chunk_int.h).
 *
 * Frame of reference on deltas rather than delta-of-delta: counters step by
 * a random amount each scrape, so the spread of the steps (bit-packed at a
 * fixed width per chunk) is what the data costs, and a fixed width lets the
 * decoder read any sample with one unaligned load and no bucket prefix. The
 * encoder never guesses: it decodes what it wrote and gives up (VG_EAGAIN,
 * the writer keeps XOR) unless every sample comes back bit for bit.
 */
#include "tsdb/chunk_int.h"

#include <string.h>

#include "vigil/alloc.h"

#define MAX_SCALE 15
#define TWO53     9007199254740992.0
#define F_SCALE   0x0f
#define F_EXC     0x10
#define F_TMUL    0x20
#define F_KMUL    0x40
#define NONE      UINT32_MAX

static const double p10[MAX_SCALE + 1] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                          1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

static uint64_t dbits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    return x;
}

static uint64_t zig(int64_t x)
{
    return ((uint64_t)x << 1) ^ (uint64_t)(x >> 63);
}

static uint64_t unzig(uint64_t u)
{
    return (u >> 1) ^ (0 - (u & 1));
}

/* ---- encoder ---- */

/* k with k / 10^s == v bit for bit, |k| < 2^53; 0 if there is none. */
static int scaled(double v, unsigned s, int64_t *k)
{
    double x = v * p10[s];
    if (!(x > -TWO53 && x < TWO53)) return 0; /* NaN and +-Inf too */
    int64_t r = (int64_t)x;                   /* then to nearest: x - r is exact below 2^53 */
    double f = x - (double)r;
    if (f >= 0.5)
        r++;
    else if (f <= -0.5)
        r--;
    if (dbits((double)r / p10[s]) != dbits(v)) return 0;
    *k = r;
    return 1;
}

/* The smallest scale at which all but a few values are integers: k[] holds
 * them (an exception repeats its predecessor, so deltas stay small), xi[]
 * the exceptions. 0 when more than 1 + n/16 values would be exceptions. */
static int choose_scale(const double *v, size_t n, int64_t *k, unsigned *sp, uint16_t *xi,
                        size_t *nx)
{
    size_t maxx = 1 + n / 16;
    unsigned s = 0;
restart:
    *nx = 0;
    for (size_t i = 0; i < n; i++) {
        if (scaled(v[i], s, &k[i])) continue;
        for (unsigned s2 = s + 1; s2 <= MAX_SCALE; s2++)
            if (scaled(v[i], s2, &k[i])) {
                s = s2; /* values that fit at s fit at s2: start over */
                goto restart;
            }
        if (*nx == maxx) return 0;
        xi[(*nx)++] = (uint16_t)i;
        k[i] = i ? k[i - 1] : 0;
    }
    *sp = s;
    return 1;
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
    if (!a) return b;
    if (!b) return a;
    unsigned sh = (unsigned)__builtin_ctzll(a | b);
    a >>= __builtin_ctzll(a);
    do {
        b >>= __builtin_ctzll(b);
        if (a > b) {
            uint64_t t = a;
            a = b;
            b = t;
        }
        b -= a;
    } while (b);
    return a << sh;
}

/* How a sequence x[0..n) (n >= 2) packs: x[i] = x[i-1] + min + mul * p. */
typedef struct plan {
    uint64_t min, mul;
    unsigned w;
} plan;

static void plan_seq(const uint64_t *x, size_t n, plan *p)
{
    int64_t mn = INT64_MAX;
    for (size_t i = 1; i < n; i++) {
        int64_t d = (int64_t)(x[i] - x[i - 1]);
        if (d < mn) mn = d;
    }
    uint64_t g = 0, mx = 0;
    for (size_t i = 1; i < n; i++) {
        uint64_t u = x[i] - x[i - 1] - (uint64_t)mn;
        if (g != 1) g = gcd(g, u);
        if (u > mx) mx = u;
    }
    if (g > 1) mx /= g;
    p->min = (uint64_t)mn;
    p->mul = g > 1 ? g : 1;
    p->w = mx ? 64u - (unsigned)__builtin_clzll(mx) : 0;
}

typedef struct wr {
    uint8_t *p;
} wr;

static void put_byte(wr *w, uint8_t b)
{
    *w->p++ = b;
}

static void put_uvarint(wr *w, uint64_t x)
{
    for (; x >= 0x80; x >>= 7) put_byte(w, (uint8_t)(x | 0x80));
    put_byte(w, (uint8_t)x);
}

static void put_plan(wr *w, const plan *p)
{
    put_uvarint(w, zig((int64_t)p->min));
    if (p->mul > 1) put_uvarint(w, p->mul);
    put_byte(w, (uint8_t)p->w);
}

/* The packed deltas of x (plan p) at w->p, zeroed first. */
static void put_packed(wr *w, const uint64_t *x, size_t n, const plan *p)
{
    size_t bytes = ((n - 1) * p->w + 7) / 8;
    memset(w->p, 0, bytes);
    uint64_t bit = 0;
    for (size_t i = 1; i < n && p->w; i++) {
        uint64_t q = (x[i] - x[i - 1] - p->min) / p->mul;
        for (unsigned left = p->w; left;) {
            unsigned sh = (unsigned)(bit & 7), take = 8 - sh < left ? 8 - sh : left;
            w->p[bit >> 3] |= (uint8_t)((q & ((1u << take) - 1)) << sh);
            q >>= take;
            bit += take;
            left -= take;
        }
    }
    w->p += bytes;
}

static void put_exceptions(wr *w, const double *v, const uint16_t *xi, size_t nx)
{
    put_uvarint(w, nx);
    for (size_t i = 0; i < nx; i++) {
        put_uvarint(w, i ? (uint64_t)(xi[i] - xi[i - 1]) : xi[0]);
        uint64_t b = dbits(v[xi[i]]);
        for (int j = 0; j < 8; j++) put_byte(w, (uint8_t)(b >> (8 * j)));
    }
}

/* Header, sections and exceptions into out (room reserved by the caller). */
static size_t write_chunk(uint8_t *out, const uint64_t *t, const uint64_t *k, size_t n, unsigned s,
                          const double *v, const uint16_t *xi, size_t nx)
{
    plan pt = {0, 1, 0}, pk = {0, 1, 0};
    if (n > 1) plan_seq(t, n, &pt), plan_seq(k, n, &pk);
    wr w = {out};
    put_byte(&w, 0);
    put_byte(&w, 0);
    put_byte(&w, VG_CHUNK_ENC_INT);
    put_uvarint(&w, n);
    put_byte(&w, (uint8_t)(s | (nx ? F_EXC : 0) | (pt.mul > 1 ? F_TMUL : 0) |
                           (pk.mul > 1 ? F_KMUL : 0)));
    put_uvarint(&w, zig((int64_t)t[0]));
    if (n > 1) put_plan(&w, &pt);
    put_uvarint(&w, zig((int64_t)k[0]));
    if (n > 1) put_plan(&w, &pk);
    if (n > 1) put_packed(&w, t, n, &pt), put_packed(&w, k, n, &pk);
    if (nx) put_exceptions(&w, v, xi, nx);
    return (size_t)(w.p - out);
}

/* 1 when data decodes to exactly ts[], v[]. */
static int verify(const uint8_t *data, size_t len, const int64_t *ts, const double *v, size_t n)
{
    vg_chunk_int_iter it;
    int64_t t;
    double x;
    size_t i = 0;
    vg_chunk_int_iter_init(&it, data, len);
    for (; vg_chunk_int_iter_next(&it, &t, &x); i++)
        if (i >= n || t != ts[i] || dbits(x) != dbits(v[i])) return 0;
    return i == n && !it.err;
}

vg_err_t vg_chunk_int_encode(const int64_t *ts, const double *v, size_t n, vg_buf *out)
{
    int64_t k[VG_CHUNK_INT_MAX_ENCODE];
    uint16_t xi[1 + VG_CHUNK_INT_MAX_ENCODE / 16];
    size_t nx;
    unsigned s;
    vg_buf_reset(out);
    if (n == 0 || n > VG_CHUNK_INT_MAX_ENCODE) return VG_EAGAIN;
    if (!choose_scale(v, n, k, &s, xi, &nx)) return VG_EAGAIN;
    /* header <= 80, two packed sections, exceptions <= 18 bytes each */
    size_t bound = 96 + 2 * (n * 8 + 8) + 18 * nx;
    vg_err_t rc = vg_buf_reserve(out, bound);
    if (rc) return rc;
    size_t len = write_chunk((uint8_t *)out->data, (const uint64_t *)ts, (const uint64_t *)k, n, s,
                             v, xi, nx);
    out->len = len;
    if (!verify((const uint8_t *)out->data, len, ts, v, n)) {
        vg_buf_reset(out);
        return VG_EAGAIN;
    }
    return VG_OK;
}

/* ---- decoder ---- */

typedef struct rd {
    const uint8_t *p, *end;
    int ok;
} rd;

static uint8_t get_byte(rd *r)
{
    if (r->p >= r->end) return r->ok = 0, 0;
    return *r->p++;
}

static uint64_t get_uvarint(rd *r)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        uint8_t b = get_byte(r);
        if (!r->ok || (shift == 63 && b > 1)) return r->ok = 0, 0;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return x;
    }
    return r->ok = 0, 0;
}

/* min, [mul], width of one packed sequence. */
static void get_plan(rd *r, int has_mul, uint64_t *min, uint64_t *mul, uint8_t *w)
{
    *min = unzig(get_uvarint(r));
    *mul = has_mul ? get_uvarint(r) : 1;
    if (has_mul && *mul < 2) r->ok = 0;
    *w = get_byte(r);
    if (*w > 64) r->ok = 0;
}

/* Check the exception list at r->p (count, strictly increasing indexes
 * below n, 8 bytes each) and point the iterator at the first one. */
static void get_exceptions(rd *r, vg_chunk_int_iter *it)
{
    uint64_t count = get_uvarint(r), idx = 0;
    if (count == 0 || count > it->total) r->ok = 0;
    const uint8_t *first = r->p;
    for (uint64_t i = 0; i < count && r->ok; i++) {
        uint64_t g = get_uvarint(r);
        if (g >= it->total || (i && g == 0)) r->ok = 0;
        idx = i ? idx + g : g;
        if (idx >= it->total || (size_t)(r->end - r->p) < 8) r->ok = 0;
        r->p += r->ok ? 8 : 0;
    }
    if (!r->ok) return;
    rd f = {first, r->end, 1};
    it->xnext = (uint32_t)get_uvarint(&f);
    it->xp = f.p;
    it->xleft = (uint32_t)count;
}

static void parse(vg_chunk_int_iter *it, const uint8_t *data, size_t len)
{
    rd r = {data + 3, data + len, 1};
    uint64_t n = get_uvarint(&r);
    uint8_t flags = get_byte(&r);
    if (n == 0 || n > 0xffff || (flags & 0x80) || (flags & F_SCALE) > MAX_SCALE) return;
    if (n == 1 && (flags & (F_TMUL | F_KMUL))) return;
    it->total = (uint32_t)n;
    it->ts = (int64_t)unzig(get_uvarint(&r));
    if (n > 1) get_plan(&r, flags & F_TMUL, &it->tmin, &it->tmul, &it->tw);
    it->k = unzig(get_uvarint(&r));
    if (n > 1) get_plan(&r, flags & F_KMUL, &it->kmin, &it->kmul, &it->kw);
    if (!r.ok) return;
    it->tlen = (size_t)(((n - 1) * it->tw + 7) / 8);
    it->klen = (size_t)(((n - 1) * it->kw + 7) / 8);
    if ((size_t)(r.end - r.p) < it->tlen + it->klen) return;
    it->tp = r.p;
    it->kp = r.p + it->tlen;
    r.p += it->tlen + it->klen;
    it->div = p10[flags & F_SCALE];
    it->xnext = NONE;
    it->xend = r.end;
    if (flags & F_EXC) get_exceptions(&r, it);
    if (!r.ok || r.p != r.end) return;
    it->err = VG_OK;
}

void vg_chunk_int_iter_init(vg_chunk_int_iter *it, const uint8_t *data, size_t len)
{
    memset(it, 0, sizeof(*it));
    it->err = VG_ECORRUPT;
    if (!vg_chunk_is_compact(data, len) || len < 5 || data[2] != VG_CHUNK_ENC_INT) return;
    parse(it, data, len);
    if (it->err) it->total = 0;
}

/* The w (<= 64) bits at bit of p[0..len); bits past len read as 0 (the
 * init check guarantees the real ones are inside). One load when the 8
 * bytes are there and the bits fit; else byte by byte. */
static inline uint64_t unpack(const uint8_t *p, size_t len, uint64_t bit, unsigned w)
{
    size_t byte = (size_t)(bit >> 3);
    unsigned sh = (unsigned)(bit & 7);
    uint64_t x = 0;
    if (w == 0) return 0;
    if (byte + 8 <= len && sh + w <= 64) {
        x = load_le64(p + byte) >> sh;
    } else {
        for (unsigned i = 0; 8 * i < sh + w && byte + i < len; i++) {
            int at = 8 * (int)i - (int)sh;
            uint64_t b = p[byte + i];
            if (at < 64) x |= at >= 0 ? b << at : b >> -at;
        }
    }
    return w < 64 ? x & (((uint64_t)1 << w) - 1) : x;
}

/* The current exception's raw value; moves to the next one. */
static double take_exception(vg_chunk_int_iter *it)
{
    double v;
    uint64_t b = load_le64(it->xp);
    memcpy(&v, &b, sizeof(v));
    rd r = {it->xp + 8, it->xend, 1};
    if (--it->xleft) {
        it->xnext += (uint32_t)get_uvarint(&r); /* checked at init */
        it->xp = r.p;
    } else {
        it->xnext = NONE;
    }
    return v;
}

int vg_chunk_int_iter_next(vg_chunk_int_iter *it, int64_t *ts, double *v)
{
    return vg_chunk_int_iter_read(it, ts, v, 1) == 1;
}

/* Samples after the first: the deltas unpacked at the running bit offsets,
 * the state in locals for the batch (the outputs could alias it otherwise)
 * and stored back once. */
size_t vg_chunk_int_iter_read(vg_chunk_int_iter *it, int64_t *ts, double *v, size_t max)
{
    if (it->err || it->read >= it->total || max == 0) return 0;
    size_t want = it->total - it->read, n = 0;
    if (want > max) want = max;
    uint64_t t = (uint64_t)it->ts, k = it->k, tbit = it->tbit, kbit = it->kbit;
    const uint64_t tmin = it->tmin, tmul = it->tmul, kmin = it->kmin, kmul = it->kmul;
    const uint8_t *tp = it->tp, *kp = it->kp;
    const size_t tlen = it->tlen, klen = it->klen, base = it->read;
    const unsigned tw = it->tw, kw = it->kw;
    const double div = it->div;
    size_t xnext = it->xnext;
    if (base == 0) {
        ts[0] = (int64_t)t;
        v[0] = (double)(int64_t)k / div;
        if (xnext == 0) v[0] = take_exception(it), xnext = it->xnext;
        n = 1;
    }
    for (; n < want; n++) {
        t += tmin + tmul * unpack(tp, tlen, tbit, tw);
        k += kmin + kmul * unpack(kp, klen, kbit, kw);
        tbit += tw;
        kbit += kw;
        ts[n] = (int64_t)t;
        v[n] = (double)(int64_t)k / div;
        if (base + n == xnext) v[n] = take_exception(it), xnext = it->xnext;
    }
    it->ts = (int64_t)t;
    it->k = k;
    it->tbit = tbit;
    it->kbit = kbit;
    it->read += (uint32_t)n;
    return n;
}

size_t vg_chunk_data_samples(const uint8_t *data, size_t len)
{
    if (!vg_chunk_is_compact(data, len)) return len >= 2 ? (size_t)data[0] << 8 | data[1] : 0;
    vg_chunk_int_iter it;
    vg_chunk_int_iter_init(&it, data, len);
    return it.err ? 0 : it.total;
}
