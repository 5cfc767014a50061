/*
 * clock.h - the two clocks Vigil reads.
 *
 * Wall time (CLOCK_REALTIME) stamps samples and batches; monotonic time
 * (CLOCK_MONOTONIC) measures durations, deadlines and backoff, so a clock
 * step never stretches a timeout or reorders retries. Inline because they
 * sit on hot paths and are two instructions around a vDSO call.
 */
#ifndef VIGIL_CLOCK_H
#define VIGIL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds since the Unix epoch. */
static inline int64_t vg_clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic milliseconds (arbitrary origin), for deadlines. */
static inline int64_t vg_clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic microseconds, for measuring short durations. */
static inline int64_t vg_clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#endif
