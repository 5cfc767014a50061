/*
 * chunk.c - Gorilla XOR chunk: bit writer on append, bounds-checked reader.
 *
 * Stream after the 2-byte count:
 *   sample 0: timestamp as zigzag varint, value as 64 raw bits
 *   sample 1: timestamp delta as uvarint, value XOR-encoded
 *   sample n: delta-of-delta in buckets '0' | '10'+14b | '110'+17b |
 *             '1110'+20b | '1111'+64b, value XOR-encoded
 * XOR value: '0' same bits | '10' reuse the previous leading/trailing window |
 *            '11' + 5b leading + 6b significant bits (0 means 64) + bits.
 * All timestamp arithmetic is done in uint64_t so that wrap-around (a
 * pathological but legal int64 range) is defined and round-trips exactly.
 */
#include "tsdb/chunk.h"

#include <string.h>

#include "vigil/alloc.h"

/* 56 bytes (a head holds one per 120 samples of every series): 32-bit
 * sizes are enough for 65535 samples of at most 145 bits each. */
struct vg_chunk {
    uint8_t *buf;
    int64_t t0, t;
    uint64_t delta;
    uint64_t v;
    uint32_t cap;   /* bytes allocated */
    uint32_t nbits; /* bits written, header included */
    uint16_t n;
    uint8_t leading, trailing;
    uint8_t compact; /* buf holds the scaled-integer form (vg_chunk_compact) */
};

#define HDR_BITS  16
#define NO_WINDOW 0xff

vg_chunk_t *vg_chunk_new(void)
{
    return vg_chunk_new_sized(32);
}

vg_chunk_t *vg_chunk_new_sized(size_t bytes)
{
    vg_chunk_t *c = vg_calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->cap = (uint32_t)(bytes < 32 ? 32 : bytes > 4096 ? 4096 : bytes);
    c->buf = vg_calloc(1, c->cap);
    if (!c->buf) {
        vg_free(c);
        return NULL;
    }
    c->nbits = HDR_BITS;
    c->leading = NO_WINDOW;
    return c;
}

void vg_chunk_free(vg_chunk_t *c)
{
    if (!c) return;
    vg_free(c->buf);
    vg_free(c);
}

/* ---- bit writer ---- */

static vg_err_t reserve_bits(vg_chunk_t *c, size_t nbits)
{
    size_t need = (c->nbits + nbits + 7) / 8;
    if (need <= c->cap) return VG_OK;
    size_t ncap = c->cap; /* double while small, then by a quarter */
    while (ncap < need) ncap += ncap < 256 ? ncap : ncap / 4;
    uint8_t *nb = vg_realloc(c->buf, ncap);
    if (!nb) return VG_ENOMEM;
    memset(nb + c->cap, 0, ncap - c->cap);
    c->buf = nb;
    c->cap = (uint32_t)ncap;
    return VG_OK;
}

/* Write the low n (<= 64) bits of v, most significant first. Space was
 * reserved and the bytes past nbits are zero (calloc, reserve_bits), so whole
 * bytes are stored, not merged: the partial first byte, then bytes, then the
 * tail. The hot path of every append (profiled), hence not a bit loop. */
static void put_bits(vg_chunk_t *c, uint64_t v, unsigned n)
{
    if (n == 0) return;
    if (n < 64) v &= ((uint64_t)1 << n) - 1;
    uint8_t *p = c->buf + c->nbits / 8;
    unsigned used = (unsigned)(c->nbits % 8);
    c->nbits += n;
    if (used) {
        unsigned room = 8 - used;
        if (n <= room) {
            *p |= (uint8_t)(v << (room - n));
            return;
        }
        n -= room;
        *p++ |= (uint8_t)(v >> n);
    }
    while (n >= 8) {
        n -= 8;
        *p++ = (uint8_t)(v >> n);
    }
    if (n) *p = (uint8_t)(v << (8 - n));
}

static void put_uvarint(vg_chunk_t *c, uint64_t x)
{
    while (x >= 0x80) {
        put_bits(c, (x & 0x7f) | 0x80, 8);
        x >>= 7;
    }
    put_bits(c, x, 8);
}

static int fits(int64_t x, unsigned nbits)
{
    return -((int64_t)1 << (nbits - 1)) + 1 <= x && x <= (int64_t)1 << (nbits - 1);
}

static void put_dod(vg_chunk_t *c, int64_t dod)
{
    if (dod == 0)
        put_bits(c, 0, 1);
    else if (fits(dod, 14))
        put_bits(c, 0x2, 2), put_bits(c, (uint64_t)dod, 14);
    else if (fits(dod, 17))
        put_bits(c, 0x6, 3), put_bits(c, (uint64_t)dod, 17);
    else if (fits(dod, 20))
        put_bits(c, 0xe, 4), put_bits(c, (uint64_t)dod, 20);
    else
        put_bits(c, 0xf, 4), put_bits(c, (uint64_t)dod, 64);
}

static void put_xor(vg_chunk_t *c, uint64_t vbits)
{
    uint64_t x = vbits ^ c->v;
    if (x == 0) {
        put_bits(c, 0, 1);
        return;
    }
    unsigned lead = (unsigned)__builtin_clzll(x), trail = (unsigned)__builtin_ctzll(x);
    if (lead >= 32) lead = 31;
    if (c->leading != NO_WINDOW && lead >= c->leading && trail >= c->trailing) {
        put_bits(c, 0x2, 2);
        put_bits(c, x >> c->trailing, 64 - c->leading - c->trailing);
        return;
    }
    c->leading = (uint8_t)lead;
    c->trailing = (uint8_t)trail;
    unsigned sig = 64 - lead - trail;
    put_bits(c, 0x3, 2);
    put_bits(c, lead, 5);
    put_bits(c, sig & 63, 6); /* 64 is stored as 0 */
    put_bits(c, x >> trail, sig);
}

vg_err_t vg_chunk_append(vg_chunk_t *c, int64_t ts, double v)
{
    if (c->n >= 0xffff) return VG_ETOOLARGE;
    if (c->compact) return VG_EINVAL;
    /* Worst case: 4+64 bits of timestamp, 2+5+6+64 bits of value, or two
     * 10-byte varints for the first sample. */
    vg_err_t rc = reserve_bits(c, 160);
    if (rc) return rc;
    uint64_t vbits;
    memcpy(&vbits, &v, sizeof(vbits));
    uint64_t uts = (uint64_t)ts;
    if (c->n == 0) {
        put_uvarint(c, (uts << 1) ^ (uint64_t)(ts >> 63)); /* zigzag */
        put_bits(c, vbits, 64);
        c->t0 = ts;
    } else if (c->n == 1) {
        c->delta = uts - (uint64_t)c->t;
        put_uvarint(c, c->delta);
        put_xor(c, vbits);
    } else {
        uint64_t delta = uts - (uint64_t)c->t;
        put_dod(c, (int64_t)(delta - c->delta));
        c->delta = delta;
        put_xor(c, vbits);
    }
    c->t = ts;
    c->v = vbits;
    c->n++;
    c->buf[0] = (uint8_t)(c->n >> 8);
    c->buf[1] = (uint8_t)(c->n & 0xff);
    return VG_OK;
}

void vg_chunk_shrink(vg_chunk_t *c)
{
    size_t used = (c->nbits + 7) / 8;
    if (used >= c->cap) return;
    uint8_t *nb = vg_realloc(c->buf, used);
    if (!nb) return; /* keep the larger buffer */
    c->buf = nb;
    c->cap = (uint32_t)used;
}

vg_err_t vg_chunk_compact(vg_chunk_t *c)
{
    int64_t ts[VG_CHUNK_MAX_SAMPLES];
    double v[VG_CHUNK_MAX_SAMPLES];
    if (c->compact || c->n == 0 || c->n > VG_CHUNK_MAX_SAMPLES) return VG_OK;
    vg_chunk_iter it;
    vg_chunk_iter_init(&it, c->buf, (c->nbits + 7) / 8);
    size_t got = 0, k;
    while (got < c->n && (k = vg_chunk_iter_read(&it, ts + got, v + got, c->n - got)) > 0)
        got += k;
    if (got != c->n || vg_chunk_iter_err(&it)) return VG_ECORRUPT;
    vg_buf out;
    vg_buf_init(&out, 0);
    vg_err_t rc = vg_chunk_int_encode(ts, v, got, &out);
    if (rc == VG_OK && out.len < (c->nbits + 7) / 8) {
        size_t len;
        uint8_t *nb = (uint8_t *)vg_buf_steal(&out, &len);
        uint8_t *fit = nb ? vg_realloc(nb, len) : NULL; /* steal hands over its capacity */
        if (fit) nb = fit;
        if (nb) {
            vg_free(c->buf);
            c->buf = nb;
            c->cap = (uint32_t)len;
            c->nbits = (uint32_t)len * 8;
            c->compact = 1;
        }
    }
    vg_buf_free(&out);
    return rc == VG_ENOMEM ? rc : VG_OK;
}

void vg_chunk_prefetch_tail(const vg_chunk_t *c)
{
    __builtin_prefetch(c->buf + c->nbits / 8, 1);
}

size_t vg_chunk_num_samples(const vg_chunk_t *c)
{
    return c->n;
}

const uint8_t *vg_chunk_bytes(const vg_chunk_t *c, size_t *len)
{
    *len = (c->nbits + 7) / 8;
    return c->buf;
}

int64_t vg_chunk_min_time(const vg_chunk_t *c)
{
    return c->t0;
}

int64_t vg_chunk_max_time(const vg_chunk_t *c)
{
    return c->t;
}

/* ---- bounds-checked reader ---- */

void vg_chunk_iter_init(vg_chunk_iter *it, const uint8_t *data, size_t len)
{
    memset(it, 0, sizeof(*it));
    it->data = data;
    it->len = len;
    it->bitpos = HDR_BITS;
    it->leading = NO_WINDOW;
    if (vg_chunk_is_compact(data, len)) {
        it->compact = 1;
        vg_chunk_int_iter_init(&it->ci, data, len);
        return;
    }
    if (len < 2 || !data) {
        it->err = VG_ECORRUPT;
        return;
    }
    it->total = ((uint32_t)data[0] << 8) | data[1];
}

/* The next 64 bits of the stream, left-aligned, zero past the end. The fast
 * path is one unaligned big-endian load (plus one byte when the position is
 * not byte-aligned); only the last 9 bytes of a chunk take the byte loop.
 * Callers check the remaining length themselves, so padding is never used
 * as data. */
static inline uint64_t peek64(const vg_chunk_iter *it)
{
    size_t byte = it->bitpos >> 3;
    unsigned sh = (unsigned)(it->bitpos & 7);
    uint64_t w = 0;
    if (byte + 9 <= it->len) {
        memcpy(&w, it->data + byte, 8);
        w = __builtin_bswap64(w);
        if (sh) w = (w << sh) | (uint64_t)(it->data[byte + 8] >> (8 - sh));
        return w;
    }
    for (unsigned i = 0; i < 9 && byte + i < it->len; i++) {
        uint64_t b = it->data[byte + i];
        int at = 56 - 8 * (int)i + (int)sh; /* where this byte's top bit lands */
        w |= at >= 0 ? b << at : b >> -at;
    }
    return w;
}

static inline size_t bits_left(const vg_chunk_iter *it)
{
    return it->len * 8 - it->bitpos;
}

/* Read n (<= 64) bits into *out; 0 when the stream is too short. */
static inline int get_bits(vg_chunk_iter *it, unsigned n, uint64_t *out)
{
    if (n > bits_left(it)) return 0;
    *out = n ? peek64(it) >> (64 - n) : 0;
    it->bitpos += n;
    return 1;
}

static int get_uvarint(vg_chunk_iter *it, uint64_t *out)
{
    /* The first two samples' varints start on a byte: read the bytes
     * directly when all ten a varint may take are there. */
    if (!(it->bitpos & 7) && (it->bitpos >> 3) + 10 <= it->len) {
        const uint8_t *p = it->data + (it->bitpos >> 3);
        uint64_t x = 0;
        for (unsigned i = 0; i < 10; i++) {
            if (i == 9 && p[i] > 1) return 0; /* overflows 64 bits */
            x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
            if (!(p[i] & 0x80)) {
                it->bitpos += 8 * (i + 1);
                *out = x;
                return 1;
            }
        }
        return 0;
    }
    uint64_t x = 0, b;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (!get_bits(it, 8, &b)) return 0;
        if (shift == 63 && b > 1) return 0; /* overflows 64 bits */
        x |= (b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = x;
            return 1;
        }
    }
    return 0;
}

/* Count the leading '1' bits of a bucket prefix, at most max, and consume
 * them with the terminating '0' (none after max ones). */
static inline int get_prefix(vg_chunk_iter *it, unsigned max, unsigned *ones)
{
    uint64_t w = peek64(it);
    unsigned n = ~w ? (unsigned)__builtin_clzll(~w) : 64;
    if (n > max) n = max;
    unsigned used = n < max ? n + 1 : n;
    if (used > bits_left(it)) return 0;
    it->bitpos += used;
    *ones = n;
    return 1;
}

static inline int get_dod(vg_chunk_iter *it, int64_t *dod)
{
    static const unsigned widths[] = {0, 14, 17, 20, 64};
    unsigned ones;
    uint64_t bits;
    if (!get_prefix(it, 4, &ones)) return 0;
    unsigned sz = widths[ones];
    if (sz == 0) {
        *dod = 0;
        return 1;
    }
    if (!get_bits(it, sz, &bits)) return 0;
    if (sz < 64 && bits > ((uint64_t)1 << (sz - 1))) bits -= (uint64_t)1 << sz;
    *dod = (int64_t)bits;
    return 1;
}

static inline int get_xor(vg_chunk_iter *it)
{
    unsigned ones;
    uint64_t lead, sig, bits;
    if (!get_prefix(it, 2, &ones)) return 0;
    if (ones == 0) return 1; /* same value */
    if (ones == 2) {
        if (!get_bits(it, 5, &lead) || !get_bits(it, 6, &sig)) return 0;
        if (sig == 0) sig = 64;
        if (lead + sig > 64) return 0;
        it->leading = (uint8_t)lead;
        it->trailing = (uint8_t)(64 - lead - sig);
    } else if (it->leading == NO_WINDOW) {
        return 0; /* '10' needs a window from an earlier sample */
    }
    sig = 64u - it->leading - it->trailing;
    if (!get_bits(it, (unsigned)sig, &bits)) return 0;
    it->vbits ^= bits << it->trailing;
    return 1;
}

static inline int decode_one(vg_chunk_iter *it)
{
    uint64_t u;
    int64_t dod;
    if (it->read == 0) {
        if (!get_uvarint(it, &u) || !get_bits(it, 64, &it->vbits)) return 0;
        it->ts = (int64_t)((u >> 1) ^ (0 - (u & 1)));
        return 1;
    }
    if (it->read == 1) {
        if (!get_uvarint(it, &u)) return 0;
        it->delta = (int64_t)u;
    } else {
        if (!get_dod(it, &dod)) return 0;
        it->delta = (int64_t)((uint64_t)it->delta + (uint64_t)dod);
    }
    it->ts = (int64_t)((uint64_t)it->ts + (uint64_t)it->delta);
    return get_xor(it);
}

int vg_chunk_iter_next(vg_chunk_iter *it, int64_t *ts, double *v)
{
    if (it->compact) return vg_chunk_int_iter_next(&it->ci, ts, v);
    if (it->err || it->read >= it->total) return 0;
    if (!decode_one(it)) {
        it->err = VG_ECORRUPT;
        return 0;
    }
    it->read++;
    *ts = it->ts;
    memcpy(v, &it->vbits, sizeof(*v));
    return 1;
}

/* ---- unchecked fast path of read() ----
 *
 * Away from the end of the chunk no read can run past the data, so the
 * samples after the second decode without length checks: one branchless
 * 64-bit peek per field, the bucket prefix counted with clz, the common
 * "dod 0" and "same value" cases one bit each. Decoding was ~40% of a range
 * query over many series (RESULTS.md). The semantics are those of
 * decode_one(): the same corrupt cases ('10' without a window, lead + sig >
 * 64) stop the batch, and the tail of the chunk goes through the checked
 * path. */

/* Where the last peek of a sample can start: '1111' + 64 bits of dod, then
 * '11' + 5 + 6 bits of value header ('10' peeks earlier). */
#define LAST_PEEK_BITS (4 + 64 + 13)

/* The 64 bits at pos; the caller guarantees pos / 8 + 9 <= len. For a
 * byte-aligned pos the ninth byte shifts out (a byte >> 8 is 0). */
static inline uint64_t peek_fast(const uint8_t *d, size_t pos)
{
    uint64_t w;
    memcpy(&w, d + (pos >> 3), 8);
    unsigned sh = (unsigned)(pos & 7);
    return (__builtin_bswap64(w) << sh) | (uint64_t)(d[(pos >> 3) + 8] >> (8 - sh));
}

static inline int64_t fast_dod(const uint8_t *d, size_t *pos)
{
    uint64_t w = peek_fast(d, *pos);
    if (!(w >> 63)) {
        *pos += 1;
        return 0;
    }
    static const unsigned widths[] = {0, 14, 17, 20, 64};
    unsigned ones = (unsigned)__builtin_clzll(~w | 1); /* w has a leading 1 here */
    if (ones > 4) ones = 4;
    unsigned used = ones < 4 ? ones + 1 : 4, sz = widths[ones];
    *pos += used;
    uint64_t bits = sz == 64 ? peek_fast(d, *pos) : (w << used) >> (64 - sz);
    *pos += sz;
    if (sz < 64 && bits > ((uint64_t)1 << (sz - 1))) bits -= (uint64_t)1 << sz;
    return (int64_t)bits;
}

/* 0 on a corrupt value field. */
static inline int fast_xor(const uint8_t *d, size_t *pos, vg_chunk_iter *l)
{
    uint64_t w = peek_fast(d, *pos);
    if (!(w >> 63)) {
        *pos += 1;
        return 1;
    }
    if (w >> 62 == 3) {
        unsigned lead = (unsigned)(w >> 57) & 31, sig = (unsigned)(w >> 51) & 63;
        if (sig == 0) sig = 64;
        if (lead + sig > 64) return 0;
        l->leading = (uint8_t)lead;
        l->trailing = (uint8_t)(64 - lead - sig);
        *pos += 13;
    } else {
        if (l->leading == NO_WINDOW) return 0;
        *pos += 2;
    }
    unsigned sig = 64u - l->leading - l->trailing;
    l->vbits ^= (peek_fast(d, *pos) >> (64 - sig)) << l->trailing;
    *pos += sig;
    return 1;
}

/* Decode into ts/v while every peek of the next sample stays clear of the end;
 * the number decoded (l->err set on corrupt data). */
static size_t read_fast(vg_chunk_iter *l, int64_t *ts, double *v, size_t want)
{
    if (l->read < 2 || l->len < 32) return 0;
    /* A peek at p is safe while p / 8 + 9 <= len. */
    size_t limit = (l->len - 9) * 8 + 7 - LAST_PEEK_BITS, pos = l->bitpos, n = 0;
    const uint8_t *d = l->data;
    int64_t t = l->ts, delta = l->delta;
    while (n < want && pos <= limit) {
        delta = (int64_t)((uint64_t)delta + (uint64_t)fast_dod(d, &pos));
        t = (int64_t)((uint64_t)t + (uint64_t)delta);
        if (!fast_xor(d, &pos, l)) {
            l->err = VG_ECORRUPT;
            break;
        }
        ts[n] = t;
        memcpy(&v[n], &l->vbits, sizeof(v[n]));
        n++;
    }
    l->bitpos = pos;
    l->ts = t;
    l->delta = delta;
    l->read += (uint32_t)n;
    return n;
}

/* The last bytes of a chunk (read_fast stops LAST_PEEK_BITS + 72 bits
 * short of the end) through the same unchecked decoders, on a zero-padded
 * copy: a sample that ends past the data is corrupt, as the checked path
 * would have found on one of its fields. 0 when more than the tail is
 * left (the checked path takes it). */
static size_t read_tail(vg_chunk_iter *l, int64_t *ts, double *v, size_t want)
{
    size_t byte = l->bitpos >> 3, rem = l->len - byte;
    if (l->read < 2 || rem > 24) return 0;
    uint8_t buf[64] = {0}; /* rem + 81 bits of the next sample's peeks + 9 */
    memcpy(buf, l->data + byte, rem);
    size_t pos = l->bitpos - byte * 8, end = rem * 8, n = 0;
    int64_t t = l->ts, delta = l->delta;
    while (n < want) {
        delta = (int64_t)((uint64_t)delta + (uint64_t)fast_dod(buf, &pos));
        t = (int64_t)((uint64_t)t + (uint64_t)delta);
        if (!fast_xor(buf, &pos, l) || pos > end) {
            l->err = VG_ECORRUPT;
            break;
        }
        ts[n] = t;
        memcpy(&v[n], &l->vbits, sizeof(v[n]));
        n++;
    }
    l->bitpos = byte * 8 + pos;
    l->ts = t;
    l->delta = delta;
    l->read += (uint32_t)n;
    return n;
}

/* One checked sample into ts/v; 0 (and l->err) on corrupt data. */
static inline int read_checked(vg_chunk_iter *l, int64_t *ts, double *v)
{
    if (!decode_one(l)) {
        l->err = VG_ECORRUPT;
        return 0;
    }
    l->read++;
    *ts = l->ts;
    memcpy(v, &l->vbits, sizeof(*v));
    return 1;
}

/* The same decode as next(), run on a local copy of the state so that the
 * compiler keeps it in registers for the whole batch (the output arrays
 * cannot alias it), written back once: the first two samples checked, the
 * middle through read_fast(), the last bytes through read_tail(). */
size_t vg_chunk_iter_read(vg_chunk_iter *it, int64_t *ts, double *v, size_t max)
{
    if (it->compact) return vg_chunk_int_iter_read(&it->ci, ts, v, max);
    if (it->err || it->read >= it->total) return 0;
    vg_chunk_iter l = *it;
    size_t n = 0, want = l.total - l.read;
    if (want > max) want = max;
    while (n < want && l.read < 2 && read_checked(&l, &ts[n], &v[n])) n++;
    if (!l.err) n += read_fast(&l, ts + n, v + n, want - n);
    if (!l.err && n < want) n += read_tail(&l, ts + n, v + n, want - n);
    while (n < want && !l.err && read_checked(&l, &ts[n], &v[n])) n++;
    *it = l;
    return n;
}

vg_err_t vg_chunk_iter_err(const vg_chunk_iter *it)
{
    if (it->compact) return it->ci.err;
    return it->err;
}
