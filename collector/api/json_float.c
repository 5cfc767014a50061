/*
 * json_float.c - fast shortest-digit formatting of sample values for the
 * Prometheus JSON answers.
 *
 * Why: a matrix answer prints one float per point, and the exact shortest
 * round-trip formatter (vg_fmt_float_json, common/metrics.c) tries digit
 * counts with snprintf + strtod; on avg_over_time over 800 series x 1441
 * steps that was ~80% of the query (RESULTS.md). This file runs Loitsch's
 * Grisu3 (64-bit "diy" floats scaled by a cached power of ten, digits
 * generated inside the rounding interval, then weeded towards the exact
 * value). Grisu3 knows when its 64-bit precision cannot prove the result is
 * the shortest and closest; then, and for 0, NaN and the infinities, the
 * exact formatter answers instead, so the bytes are always the ones Go's
 * strconv.FormatFloat(v, 'f'/'e', -1, 64) and Prometheus print.
 */
#include "api/json_float.h"

#include <math.h>
#include <string.h>

#include "vigil/metrics.h"

/* 10^k for k = -348, -340, ..., 340 as f * 2^e, f normalised (top bit set)
 * and rounded to nearest; generated with exact rational arithmetic. */
static const struct cached_pow {
    uint64_t f;
    int16_t e, k;
} POWERS[] = {
    {0xfa8fd5a0081c0288ull, -1220, -348}, {0xbaaee17fa23ebf76ull, -1193, -340},
    {0x8b16fb203055ac76ull, -1166, -332}, {0xcf42894a5dce35eaull, -1140, -324},
    {0x9a6bb0aa55653b2dull, -1113, -316}, {0xe61acf033d1a45dfull, -1087, -308},
    {0xab70fe17c79ac6caull, -1060, -300}, {0xff77b1fcbebcdc4full, -1034, -292},
    {0xbe5691ef416bd60cull, -1007, -284}, {0x8dd01fad907ffc3cull, -980, -276},
    {0xd3515c2831559a83ull, -954, -268},  {0x9d71ac8fada6c9b5ull, -927, -260},
    {0xea9c227723ee8bcbull, -901, -252},  {0xaecc49914078536dull, -874, -244},
    {0x823c12795db6ce57ull, -847, -236},  {0xc21094364dfb5637ull, -821, -228},
    {0x9096ea6f3848984full, -794, -220},  {0xd77485cb25823ac7ull, -768, -212},
    {0xa086cfcd97bf97f4ull, -741, -204},  {0xef340a98172aace5ull, -715, -196},
    {0xb23867fb2a35b28eull, -688, -188},  {0x84c8d4dfd2c63f3bull, -661, -180},
    {0xc5dd44271ad3cdbaull, -635, -172},  {0x936b9fcebb25c996ull, -608, -164},
    {0xdbac6c247d62a584ull, -582, -156},  {0xa3ab66580d5fdaf6ull, -555, -148},
    {0xf3e2f893dec3f126ull, -529, -140},  {0xb5b5ada8aaff80b8ull, -502, -132},
    {0x87625f056c7c4a8bull, -475, -124},  {0xc9bcff6034c13053ull, -449, -116},
    {0x964e858c91ba2655ull, -422, -108},  {0xdff9772470297ebdull, -396, -100},
    {0xa6dfbd9fb8e5b88full, -369, -92},   {0xf8a95fcf88747d94ull, -343, -84},
    {0xb94470938fa89bcfull, -316, -76},   {0x8a08f0f8bf0f156bull, -289, -68},
    {0xcdb02555653131b6ull, -263, -60},   {0x993fe2c6d07b7facull, -236, -52},
    {0xe45c10c42a2b3b06ull, -210, -44},   {0xaa242499697392d3ull, -183, -36},
    {0xfd87b5f28300ca0eull, -157, -28},   {0xbce5086492111aebull, -130, -20},
    {0x8cbccc096f5088ccull, -103, -12},   {0xd1b71758e219652cull, -77, -4},
    {0x9c40000000000000ull, -50, 4},      {0xe8d4a51000000000ull, -24, 12},
    {0xad78ebc5ac620000ull, 3, 20},       {0x813f3978f8940984ull, 30, 28},
    {0xc097ce7bc90715b3ull, 56, 36},      {0x8f7e32ce7bea5c70ull, 83, 44},
    {0xd5d238a4abe98068ull, 109, 52},     {0x9f4f2726179a2245ull, 136, 60},
    {0xed63a231d4c4fb27ull, 162, 68},     {0xb0de65388cc8ada8ull, 189, 76},
    {0x83c7088e1aab65dbull, 216, 84},     {0xc45d1df942711d9aull, 242, 92},
    {0x924d692ca61be758ull, 269, 100},    {0xda01ee641a708deaull, 295, 108},
    {0xa26da3999aef774aull, 322, 116},    {0xf209787bb47d6b85ull, 348, 124},
    {0xb454e4a179dd1877ull, 375, 132},    {0x865b86925b9bc5c2ull, 402, 140},
    {0xc83553c5c8965d3dull, 428, 148},    {0x952ab45cfa97a0b3ull, 455, 156},
    {0xde469fbd99a05fe3ull, 481, 164},    {0xa59bc234db398c25ull, 508, 172},
    {0xf6c69a72a3989f5cull, 534, 180},    {0xb7dcbf5354e9beceull, 561, 188},
    {0x88fcf317f22241e2ull, 588, 196},    {0xcc20ce9bd35c78a5ull, 614, 204},
    {0x98165af37b2153dfull, 641, 212},    {0xe2a0b5dc971f303aull, 667, 220},
    {0xa8d9d1535ce3b396ull, 694, 228},    {0xfb9b7cd9a4a7443cull, 720, 236},
    {0xbb764c4ca7a44410ull, 747, 244},    {0x8bab8eefb6409c1aull, 774, 252},
    {0xd01fef10a657842cull, 800, 260},    {0x9b10a4e5e9913129ull, 827, 268},
    {0xe7109bfba19c0c9dull, 853, 276},    {0xac2820d9623bf429ull, 880, 284},
    {0x80444b5e7aa7cf85ull, 907, 292},    {0xbf21e44003acdd2dull, 933, 300},
    {0x8e679c2f5e44ff8full, 960, 308},    {0xd433179d9c8cb841ull, 986, 316},
    {0x9e19db92b4e31ba9ull, 1013, 324},   {0xeb96bf6ebadf77d9ull, 1039, 332},
    {0xaf87023b9bf0ee6bull, 1066, 340},
};

/* A 64-bit "do it yourself" float: f * 2^e. */
typedef struct diyfp {
    uint64_t f;
    int e;
} diyfp;

/* Target exponent range of a scaled value: its integral part fits in 32
 * bits and one digit of fraction times 10 still fits in 64. */
#define ALPHA (-60)
#define GAMMA (-32)

static diyfp diy_mul(diyfp a, diyfp b)
{
    unsigned __int128 p = (unsigned __int128)a.f * b.f;
    uint64_t hi = (uint64_t)(p >> 64), lo = (uint64_t)p;
    return (diyfp){hi + (lo >> 63), a.e + b.e + 64}; /* rounded */
}

static diyfp diy_norm(diyfp a)
{
    int s = __builtin_clzll(a.f);
    return (diyfp){a.f << s, a.e - s};
}

/* v (positive, finite, non-zero) normalised, and the normalised bounds of
 * its rounding interval (the midpoints to its neighbours), sharing w's
 * exponent. */
static void boundaries(double v, diyfp *w, diyfp *lo, diyfp *hi)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    uint64_t frac = bits & (((uint64_t)1 << 52) - 1);
    int bexp = (int)(bits >> 52) & 0x7ff;
    diyfp x = bexp ? (diyfp){frac | ((uint64_t)1 << 52), bexp - 1075} : (diyfp){frac, -1074};
    *hi = diy_norm((diyfp){(x.f << 1) + 1, x.e - 1});
    /* The gap below a power of two is half the gap above. */
    diyfp m =
        frac == 0 && bexp > 1 ? (diyfp){(x.f << 2) - 1, x.e - 2} : (diyfp){(x.f << 1) - 1, x.e - 1};
    m.f <<= m.e - hi->e;
    m.e = hi->e;
    *lo = m;
    *w = diy_norm(x);
}

/* The cached power c with ALPHA <= e + c.e + 64 <= GAMMA. */
static const struct cached_pow *cached_power(int e)
{
    int min_e = ALPHA - (e + 64), max_e = GAMMA - (e + 64);
    int n = (int)(sizeof(POWERS) / sizeof(POWERS[0]));
    /* 10^(8i) is about 2^(26.6 i): start from the estimate, then walk. */
    int k = (int)ceil((min_e + 63) * 0.30102999566398114);
    int i = (k + 348 - 1) / 8 + 1;
    if (i < 0) i = 0;
    if (i >= n) i = n - 1;
    while (i + 1 < n && POWERS[i].e < min_e) i++;
    while (i > 0 && POWERS[i].e > max_e) i--;
    return &POWERS[i];
}

/* Move the last digit towards w while that stays inside the safe interval,
 * then report whether the result is provably the closest shortest one. */
static int round_weed(char *buf, int len, uint64_t dist_hi_w, uint64_t unsafe, uint64_t rest,
                      uint64_t ten_kappa, uint64_t unit)
{
    uint64_t small = dist_hi_w - unit, big = dist_hi_w + unit;
    while (rest < small && unsafe - rest >= ten_kappa &&
           (rest + ten_kappa < small || small - rest >= rest + ten_kappa - small)) {
        buf[len - 1]--;
        rest += ten_kappa;
    }
    if (rest < big && unsafe - rest >= ten_kappa &&
        (rest + ten_kappa < big || big - rest > rest + ten_kappa - big))
        return 0;
    return 2 * unit <= rest && rest <= unsafe - 4 * unit;
}

/* Digits of the scaled value inside (lo, hi), the fewest possible, into
 * buf; *kappa: their decimal exponent. 0 when not provably right. */
static int digit_gen(diyfp lo, diyfp w, diyfp hi, char *buf, int *len, int *kappa)
{
    uint64_t unit = 1;
    uint64_t too_lo = lo.f - unit, too_hi = hi.f + unit;
    uint64_t unsafe = too_hi - too_lo;
    int sh = -w.e;
    uint64_t one = (uint64_t)1 << sh;
    uint32_t integrals = (uint32_t)(too_hi >> sh);
    uint64_t fractionals = too_hi & (one - 1);
    uint32_t divisor = 1;
    int k = 0;
    for (uint32_t x = integrals; x; x /= 10) k++;
    for (int i = 1; i < k; i++) divisor *= 10;
    *len = 0;
    while (k > 0) {
        buf[(*len)++] = (char)('0' + integrals / divisor);
        integrals %= divisor;
        k--;
        uint64_t rest = ((uint64_t)integrals << sh) + fractionals;
        if (rest < unsafe) {
            *kappa = k;
            return round_weed(buf, *len, too_hi - w.f, unsafe, rest, (uint64_t)divisor << sh, unit);
        }
        divisor /= 10;
    }
    for (;;) {
        if (*len >= 24) return 0;
        fractionals *= 10;
        unit *= 10;
        unsafe *= 10;
        buf[(*len)++] = (char)('0' + (fractionals >> sh));
        fractionals &= one - 1;
        k--;
        if (fractionals < unsafe) {
            *kappa = k;
            return round_weed(buf, *len, (too_hi - w.f) * unit, unsafe, fractionals, one, unit);
        }
    }
}

/* Shortest digits of a (positive, finite, non-zero): a = 0.digits x 10^*dp.
 * 0 when Grisu3 cannot decide. */
static int grisu3(double a, char *digits, int *n, int *dp)
{
    diyfp w, lo, hi;
    boundaries(a, &w, &lo, &hi);
    const struct cached_pow *c = cached_power(w.e);
    diyfp p = {c->f, c->e};
    int kappa;
    if (!digit_gen(diy_mul(lo, p), diy_mul(w, p), diy_mul(hi, p), digits, n, &kappa)) return 0;
    *dp = *n + kappa - c->k;
    while (*n > 1 && digits[*n - 1] == '0') (*n)--;
    return 1;
}

/* Go's 'f' layout of 0.digits x 10^dp. */
static char *layout_f(char *o, const char *d, int n, int dp)
{
    if (dp <= 0) {
        *o++ = '0';
    } else {
        for (int i = 0; i < dp; i++) *o++ = i < n ? d[i] : '0';
    }
    if (n > dp) {
        *o++ = '.';
        for (int i = dp; i < n; i++) *o++ = i < 0 ? '0' : d[i];
    }
    return o;
}

/* Go's 'e' layout: d.ddd e±XX (at least two exponent digits). */
static char *layout_e(char *o, const char *d, int n, int dp)
{
    *o++ = d[0];
    if (n > 1) {
        *o++ = '.';
        memcpy(o, d + 1, (size_t)n - 1);
        o += n - 1;
    }
    int x = dp - 1;
    *o++ = 'e';
    *o++ = x < 0 ? '-' : '+';
    if (x < 0) x = -x;
    if (x >= 100) *o++ = (char)('0' + x / 100);
    *o++ = (char)('0' + x / 10 % 10);
    *o++ = (char)('0' + x % 10);
    return o;
}

size_t vg_api_float_json(double v, char *buf)
{
    double a = fabs(v);
    char d[32];
    int n, dp;
    if (!(a > 0) || isinf(a) || !grisu3(a, d, &n, &dp)) {
        vg_fmt_float_json(v, buf);
        return strlen(buf);
    }
    char *o = buf;
    if (signbit(v)) *o++ = '-';
    /* Prometheus's jsonutil.MarshalFloat switches to 'e' outside [1e-6, 1e21). */
    o = a < 1e-6 || a >= 1e21 ? layout_e(o, d, n, dp) : layout_f(o, d, n, dp);
    *o = '\0';
    return (size_t)(o - buf);
}
