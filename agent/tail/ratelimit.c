/*
 * ratelimit.c - the per-input token bucket (lines/s and burst).
 *
 * Over the limit the tailer simply stops reading that input until a token is
 * due; the lines stay in the file, so nothing is ever dropped. The clock is a
 * parameter so the tests step it by hand.
 */
#include <math.h>

#include "tail.h"

void vg_tokbucket_init(vg_tokbucket *b, double rate, double burst, int64_t now_ms)
{
    b->rate = rate > 0 ? rate : 0;
    b->burst = burst >= 1 ? burst : (rate > 1 ? rate : 1);
    b->tokens = b->burst;
    b->last_ms = now_ms;
}

static void refill(vg_tokbucket *b, int64_t now_ms)
{
    if (now_ms <= b->last_ms) return;
    b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
    if (b->tokens > b->burst) b->tokens = b->burst;
    b->last_ms = now_ms;
}

int vg_tokbucket_take(vg_tokbucket *b, int64_t now_ms)
{
    if (b->rate <= 0) return 1;
    refill(b, now_ms);
    if (b->tokens < 1.0) return 0;
    b->tokens -= 1.0;
    return 1;
}

int64_t vg_tokbucket_wait_ms(const vg_tokbucket *b, int64_t now_ms)
{
    if (b->rate <= 0) return 0;
    double t = b->tokens;
    if (now_ms > b->last_ms) t += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
    if (t >= 1.0) return 0;
    return (int64_t)ceil((1.0 - t) * 1000.0 / b->rate);
}
