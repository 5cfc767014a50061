/*
 * envelope.c - vigil.v1.Batch <-> one zstd frame of its protobuf encoding.
 *
 * Encoding is simple: pack with protobuf-c, compress with a per-thread
 * ZSTD_CCtx (an agent's ship thread encodes batch after batch, and a context
 * is ~1 MiB to set up), recording the content size in the frame header.
 *
 * Decoding faces the network, so it is a sequence of cheap checks before any
 * memory is committed, each with its own message:
 *   1. length: not empty, not over max_compressed;
 *   2. zstd magic, then ZSTD_findFrameCompressedSize: exactly one complete
 *      frame, no trailing bytes (that walk reads block headers only);
 *   3. declared content size: over max_decompressed is refused outright;
 *      under it, one-shot decompression into a buffer of exactly that size;
 *   4. no declared size: streaming into a buffer that doubles up to
 *      max_decompressed + 1 and fails the moment output passes the cap. The
 *      decoder's window is also capped at the next power of two above
 *      max_decompressed, so a frame cannot make zstd itself allocate more;
 *   5. protobuf-c unpack through an allocator that uses vg_malloc/vg_free and
 *      a budget of UNPACK_RATIO x the decompressed size, because protobuf
 *      expands (an empty repeated submessage is 2 bytes on the wire and ~80
 *      in memory) and the budget keeps that amplification bounded too;
 *   6. the oneof payload must be set.
 */
#include "vigil/envelope.h"

#include <pthread.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "vigil/alloc.h"

#define DEFAULT_MAX_COMPRESSED   (16u << 20)
#define DEFAULT_MAX_DECOMPRESSED (64u << 20)
#define STREAM_START             (64u << 10)
#define UNPACK_RATIO             16
#define UNPACK_MIN_BUDGET        (64u << 10)

/* ---- per-thread zstd contexts ---- */

typedef struct zctx {
    ZSTD_CCtx *c;
    ZSTD_DCtx *d;
} zctx_t;

static pthread_once_t zctx_once = PTHREAD_ONCE_INIT;
static pthread_key_t zctx_key;
static int zctx_key_ok;

static void zctx_destroy(void *p)
{
    zctx_t *z = p;
    ZSTD_freeCCtx(z->c);
    ZSTD_freeDCtx(z->d);
    vg_free(z);
}

static void zctx_key_init(void)
{
    zctx_key_ok = pthread_key_create(&zctx_key, zctx_destroy) == 0;
}

/* This thread's context holder (created empty on first use), or NULL on ENOMEM. */
static zctx_t *thread_zctx(void)
{
    pthread_once(&zctx_once, zctx_key_init);
    if (!zctx_key_ok) return NULL;
    zctx_t *z = pthread_getspecific(zctx_key);
    if (z) return z;
    z = vg_calloc(1, sizeof(*z));
    if (z && pthread_setspecific(zctx_key, z) != 0) {
        vg_free(z);
        z = NULL;
    }
    return z;
}

static ZSTD_CCtx *thread_cctx(void)
{
    zctx_t *z = thread_zctx();
    if (z && !z->c) z->c = ZSTD_createCCtx();
    return z ? z->c : NULL;
}

static ZSTD_DCtx *thread_dctx(void)
{
    zctx_t *z = thread_zctx();
    if (z && !z->d) z->d = ZSTD_createDCtx();
    return z ? z->d : NULL;
}

/* ---- protobuf-c allocator with a budget ---- */

typedef struct unpack_budget {
    size_t used, limit;
    int over;  /* the budget ran out */
    int nomem; /* vg_malloc failed */
} unpack_budget;

static void *pb_alloc(void *data, size_t size)
{
    unpack_budget *b = data;
    if (b) {
        if (size > b->limit - b->used) {
            b->over = 1;
            return NULL;
        }
        b->used += size;
    }
    void *p = vg_malloc(size);
    if (!p && b) b->nomem = 1;
    return p;
}

static void pb_free(void *data, void *p)
{
    (void)data;
    vg_free(p);
}

/* For freeing: no budget. */
static ProtobufCAllocator free_allocator = {.alloc = pb_alloc, .free = pb_free};

/* ---- encode ---- */

vg_envelope_limits vg_envelope_default_limits(void)
{
    return (vg_envelope_limits){.max_compressed = DEFAULT_MAX_COMPRESSED,
                                .max_decompressed = DEFAULT_MAX_DECOMPRESSED};
}

static vg_err_t check_payload(const vg_batch_t *b, vg_err_t code, vg_error *err)
{
    if ((b->payload_case == VIGIL__V1__BATCH__PAYLOAD_METRICS && b->metrics) ||
        (b->payload_case == VIGIL__V1__BATCH__PAYLOAD_AUDIT && b->audit))
        return VG_OK;
    return vg_error_set(err, code, "batch has no payload (neither metrics nor audit)");
}

static vg_err_t compress(const uint8_t *src, size_t n, int level, uint8_t **out, size_t *out_len,
                         vg_error *err)
{
    ZSTD_CCtx *cctx = thread_cctx();
    if (!cctx) return vg_error_set(err, VG_ENOMEM, "out of memory creating a zstd context");
    size_t bound = ZSTD_compressBound(n);
    uint8_t *dst = vg_malloc(bound);
    if (!dst) return vg_error_set(err, VG_ENOMEM, "out of memory for a %zu byte batch", bound);
    size_t r = ZSTD_compressCCtx(cctx, dst, bound, src, n, level);
    if (ZSTD_isError(r)) {
        vg_free(dst);
        return vg_error_set(err, VG_EINTERNAL, "zstd compression failed: %s", ZSTD_getErrorName(r));
    }
    uint8_t *shrunk = vg_realloc(dst, r); /* the bound can be far above the result */
    *out = shrunk ? shrunk : dst;
    *out_len = r;
    return VG_OK;
}

vg_err_t vg_envelope_encode(const vg_batch_t *b, int level, uint8_t **out, size_t *out_len,
                            vg_error *err)
{
    vg_err_t rc = VG_OK;
    uint8_t *packed = NULL;
    *out = NULL;
    *out_len = 0;
    if (!b) return vg_error_set(err, VG_EINVAL, "no batch to encode");
    if (level == 0) level = 3;
    if (level < 1 || level > 19)
        return vg_error_set(err, VG_EINVAL, "zstd level %d is out of range 1..19", level);
    rc = check_payload(b, VG_EINVAL, err);
    if (rc) return rc;
    size_t n = vigil__v1__batch__get_packed_size(b);
    packed = vg_malloc(n);
    if (!packed) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory packing a %zu byte batch", n);
        goto out;
    }
    vigil__v1__batch__pack(b, packed);
    rc = compress(packed, n, level, out, out_len, err);
out:
    vg_free(packed);
    return rc;
}

/* ---- decode ---- */

static vg_err_t check_frame(const uint8_t *in, size_t len, const vg_envelope_limits *lim,
                            vg_error *err)
{
    if (len == 0) return vg_error_set(err, VG_EPARSE, "batch is empty");
    if (len > lim->max_compressed)
        return vg_error_set(err, VG_ETOOLARGE,
                            "batch is %zu bytes compressed, more than %zu (limit max_compressed)",
                            len, lim->max_compressed);
    if (len < 4 || (in[0] | in[1] << 8 | in[2] << 16 | (uint32_t)in[3] << 24) != ZSTD_MAGICNUMBER)
        return vg_error_set(err, VG_EPARSE, "batch is not a zstd frame (bad magic number)");
    size_t fsz = ZSTD_findFrameCompressedSize(in, len);
    if (ZSTD_isError(fsz))
        return vg_error_set(err, VG_EPARSE, "batch is a truncated or corrupt zstd frame: %s",
                            ZSTD_getErrorName(fsz));
    if (fsz != len)
        return vg_error_set(err, VG_EPARSE,
                            "batch has %zu bytes after its zstd frame (trailing data or a second "
                            "frame); send exactly one frame",
                            len - fsz);
    return VG_OK;
}

static vg_err_t too_large(size_t max, vg_error *err)
{
    return vg_error_set(err, VG_ETOOLARGE,
                        "batch decompresses to more than %zu bytes (limit max_decompressed)", max);
}

static vg_err_t zstd_fail(size_t r, size_t max, vg_error *err)
{
    if (ZSTD_getErrorCode(r) == ZSTD_error_frameParameter_windowTooLarge)
        return vg_error_set(err, VG_ETOOLARGE,
                            "batch zstd frame needs a window larger than max_decompressed (%zu "
                            "bytes); compress with a smaller window",
                            max);
    return vg_error_set(err, VG_EPARSE, "batch zstd frame is corrupt: %s", ZSTD_getErrorName(r));
}

/* Smallest log2 window covering max, within what the library accepts. */
static int window_log_for(size_t max)
{
    ZSTD_bounds b = ZSTD_dParam_getBounds(ZSTD_d_windowLogMax);
    int lg = 10;
    while (lg < 62 && ((size_t)1 << lg) < max) lg++;
    if (lg < b.lowerBound) lg = b.lowerBound;
    if (lg > b.upperBound) lg = b.upperBound;
    return lg;
}

/* Double *buf up to max + 1 bytes; VG_ETOOLARGE when it already is that big. */
static vg_err_t grow(uint8_t **buf, size_t *cap, size_t max, vg_error *err)
{
    if (*cap > max) return too_large(max, err);
    size_t ncap = *cap > (max + 1) / 2 ? max + 1 : *cap * 2;
    uint8_t *p = vg_realloc(*buf, ncap);
    if (!p) return vg_error_set(err, VG_ENOMEM, "out of memory decompressing a batch");
    *buf = p;
    *cap = ncap;
    return VG_OK;
}

/* Frame without a declared size: stream, never holding more than max + 1 bytes. */
static vg_err_t stream_decompress(ZSTD_DCtx *d, const uint8_t *in, size_t len, size_t max,
                                  uint8_t **out, size_t *out_len, vg_error *err)
{
    vg_err_t rc = VG_OK;
    size_t cap = STREAM_START < max + 1 ? STREAM_START : max + 1;
    uint8_t *buf = vg_malloc(cap);
    if (!buf) return vg_error_set(err, VG_ENOMEM, "out of memory decompressing a batch");
    size_t wl = ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, window_log_for(max));
    if (ZSTD_isError(wl)) {
        rc = vg_error_set(err, VG_EINTERNAL, "zstd: %s", ZSTD_getErrorName(wl));
        goto out;
    }
    ZSTD_inBuffer ib = {in, len, 0};
    ZSTD_outBuffer ob = {buf, cap, 0};
    for (;;) {
        size_t before_in = ib.pos, before_out = ob.pos;
        size_t r = ZSTD_decompressStream(d, &ob, &ib);
        if (ZSTD_isError(r))
            rc = zstd_fail(r, max, err);
        else if (ob.pos > max)
            rc = too_large(max, err);
        else if (r == 0)
            break; /* frame complete */
        else if (ob.pos == ob.size)
            rc = grow(&buf, &cap, max, err);
        else if (ib.pos == before_in && ob.pos == before_out)
            rc = vg_error_set(err, VG_EPARSE, "batch zstd frame is truncated");
        if (rc) goto out;
        ob.dst = buf;
        ob.size = cap;
    }
    *out = buf;
    *out_len = ob.pos;
    buf = NULL;
out:
    vg_free(buf);
    return rc;
}

static vg_err_t decompress(const uint8_t *in, size_t len, size_t max, uint8_t **out,
                           size_t *out_len, vg_error *err)
{
    ZSTD_DCtx *d = thread_dctx();
    if (!d) return vg_error_set(err, VG_ENOMEM, "out of memory creating a zstd context");
    ZSTD_DCtx_reset(d, ZSTD_reset_session_and_parameters);
    unsigned long long declared = ZSTD_getFrameContentSize(in, len);
    if (declared == ZSTD_CONTENTSIZE_ERROR)
        return vg_error_set(err, VG_EPARSE, "batch has a corrupt zstd frame header");
    if (declared == ZSTD_CONTENTSIZE_UNKNOWN)
        return stream_decompress(d, in, len, max, out, out_len, err);
    if (declared > max)
        return vg_error_set(err, VG_ETOOLARGE,
                            "batch declares %llu bytes decompressed, more than %zu (limit "
                            "max_decompressed)",
                            declared, max);
    uint8_t *buf = vg_malloc((size_t)declared);
    if (!buf) return vg_error_set(err, VG_ENOMEM, "out of memory for a %llu byte batch", declared);
    size_t r = ZSTD_decompressDCtx(d, buf, (size_t)declared, in, len);
    if (ZSTD_isError(r) || r != declared) {
        vg_free(buf);
        return ZSTD_isError(r)
                   ? zstd_fail(r, max, err)
                   : vg_error_set(err, VG_EPARSE, "batch zstd frame is shorter than it declares");
    }
    *out = buf;
    *out_len = r;
    return VG_OK;
}

static vg_err_t unpack(const uint8_t *raw, size_t n, vg_batch_t **out, vg_error *err)
{
    size_t limit = n > SIZE_MAX / UNPACK_RATIO ? SIZE_MAX : n * UNPACK_RATIO;
    unpack_budget budget = {.limit = limit < UNPACK_MIN_BUDGET ? UNPACK_MIN_BUDGET : limit};
    ProtobufCAllocator a = {.alloc = pb_alloc, .free = pb_free, .allocator_data = &budget};
    vg_batch_t *b = vigil__v1__batch__unpack(&a, n, raw);
    if (b) {
        *out = b;
        return VG_OK;
    }
    if (budget.nomem) return vg_error_set(err, VG_ENOMEM, "out of memory unpacking a batch");
    if (budget.over)
        return vg_error_set(err, VG_ETOOLARGE,
                            "batch needs more than %zu bytes of memory to unpack (%dx its %zu "
                            "decompressed bytes)",
                            budget.limit, UNPACK_RATIO, n);
    return vg_error_set(err, VG_EPARSE, "batch is not a valid vigil.v1.Batch protobuf");
}

vg_err_t vg_envelope_decode(const uint8_t *in, size_t len, const vg_envelope_limits *lim,
                            vg_batch_t **out, vg_error *err)
{
    vg_envelope_limits l = lim ? *lim : vg_envelope_default_limits();
    if (!l.max_compressed) l.max_compressed = DEFAULT_MAX_COMPRESSED;
    if (!l.max_decompressed) l.max_decompressed = DEFAULT_MAX_DECOMPRESSED;
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    *out = NULL;
    if (!in && len) return vg_error_set(err, VG_EINVAL, "batch pointer is NULL");
    vg_err_t rc = check_frame(in, len, &l, err);
    if (!rc) rc = decompress(in, len, l.max_decompressed, &raw, &raw_len, err);
    if (!rc) rc = unpack(raw, raw_len, out, err);
    vg_free(raw);
    if (!rc && (rc = check_payload(*out, VG_EPARSE, err)) != VG_OK) {
        vg_envelope_batch_free(*out);
        *out = NULL;
    }
    return rc;
}

void vg_envelope_batch_free(vg_batch_t *b)
{
    if (b) vigil__v1__batch__free_unpacked(b, &free_allocator);
}
