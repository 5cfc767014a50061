/*
 * eval_hist.c - quantiles and fractions over classic histogram buckets
 * (series with an "le" label), as Prometheus's quantile.go computes them.
 *
 * The buckets of one histogram at one step are sorted by upper bound,
 * buckets with equal bounds merged, float noise below 1e-12 relative
 * ironed out and any remaining decrease in the cumulative counts forced
 * away (reported, so the caller can emit Prometheus's info annotation).
 * Values are interpolated linearly inside a bucket; the lowest bucket
 * starts at 0 when its upper bound is positive, and a bucket of infinite
 * width contributes nothing to an interpolation.
 */
#include <math.h>
#include <stdlib.h>

#include "promql/eval.h"

static int bucket_cmp(const void *a, const void *b)
{
    double x = ((const pq_bucket *)a)->le, y = ((const pq_bucket *)b)->le;
    return x < y ? -1 : x > y;
}

/* Sort, merge equal bounds, fix precision noise and monotonicity; returns
 * the new count, 0 when the top bucket is not +Inf. */
static size_t prepare(pq_bucket *b, size_t n, int *forced)
{
    *forced = 0;
    if (n == 0) return 0;
    qsort(b, n, sizeof(*b), bucket_cmp);
    if (!isinf(b[n - 1].le) || b[n - 1].le < 0) return 0;
    size_t k = 0;
    for (size_t i = 1; i < n; i++) {
        if (b[i].le == b[k].le)
            b[k].count += b[i].count;
        else
            b[++k] = b[i];
    }
    n = k + 1;
    double prev = b[0].count;
    for (size_t i = 1; i < n; i++) {
        double d = fabs(b[i].count - prev);
        if (d == 0) continue;
        if (d / b[i].count <= 1e-12)
            b[i].count = prev;
        else
            prev = b[i].count;
    }
    double mx = b[0].count;
    for (size_t i = 1; i < n; i++) {
        if (b[i].count > mx)
            mx = b[i].count;
        else if (b[i].count < mx) {
            b[i].count = mx;
            *forced = 1;
        }
    }
    return n;
}

double pq_bucket_quantile(double q, pq_bucket *b, size_t n, int *forced)
{
    *forced = 0;
    if (isnan(q)) return NAN;
    if (q < 0) return -INFINITY;
    if (q > 1) return INFINITY;
    n = prepare(b, n, forced);
    if (n < 2) {
        *forced = 0;
        return NAN;
    }
    double obs = b[n - 1].count;
    if (obs == 0) return NAN;
    double rank = q * obs;
    size_t i = 0;
    while (i < n - 1 && !(b[i].count >= rank)) i++;
    if (i == n - 1) return b[n - 2].le;
    if (i == 0 && b[0].le <= 0) return b[0].le;
    double start = 0, end = b[i].le, count = b[i].count;
    if (i > 0) {
        start = b[i - 1].le;
        count -= b[i - 1].count;
        rank -= b[i - 1].count;
    }
    return start + (end - start) * (rank / count);
}

/* The cumulative rank at x inside bucket [lo, hi] holding c observations
 * that starts at rank r. */
static double rank_in(double x, double lo, double hi, double r, double c)
{
    if (isinf(lo)) return r + c; /* the open lowest bucket: nothing below x */
    if (isinf(hi)) return r;     /* the +Inf bucket: nothing up to x */
    return r + c * (x - lo) / (hi - lo);
}

double pq_bucket_fraction(double lower, double upper, pq_bucket *b, size_t n)
{
    int forced;
    n = prepare(b, n, &forced);
    if (n == 0) return NAN;
    double total = b[n - 1].count;
    if (total == 0 || isnan(lower) || isnan(upper)) return NAN;
    if (lower >= upper) return 0;
    double rank = 0, lr = 0, ur = 0;
    int lset = 0, uset = 0;
    for (size_t i = 0; i < n && !(lset && uset); i++) {
        double lo = i ? b[i - 1].le : (b[0].le > 0 ? 0 : -INFINITY), hi = b[i].le;
        double c = b[i].count - (i ? b[i - 1].count : 0);
        if (!lset && lo >= lower) lr = rank, lset = 1;
        if (!uset && lo >= upper) ur = rank, uset = 1;
        if (!lset && lo < lower && hi > lower) lr = rank_in(lower, lo, hi, rank, c), lset = 1;
        if (!uset && lo < upper && hi > upper) ur = rank_in(upper, lo, hi, rank, c), uset = 1;
        rank += c;
    }
    if (!lset || lr > total) lr = total;
    if (!uset || ur > total) ur = total;
    return (ur - lr) / total;
}
