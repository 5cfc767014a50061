/*
 * timefmt.h - calendar dates and RFC 3339 timestamps, without libc's
 * time zone machinery.
 *
 * The HTTP API parses Prometheus' start/end/time parameters (Go's
 * time.RFC3339Nano), the agent parses the timestamps of audit log lines
 * (RFC 3339 as log producers write it), and several outputs print UTC
 * timestamps. All of them need the same day arithmetic (proleptic
 * Gregorian, any year, so no timegm/gmtime range or TZ surprises), so it
 * lives here once. Pure functions, no allocation.
 */
#ifndef VIGIL_TIMEFMT_H
#define VIGIL_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/error.h"

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d (m 1..12). */
int64_t vg_timefmt_days_from_civil(int64_t y, int m, int d);
/* The inverse: the date of a day count (negative = before 1970). */
void vg_timefmt_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/* Days in month m (1..12) of year y. */
int vg_timefmt_days_in_month(int64_t y, int m);

/* vg_timefmt_parse_rfc3339 flags; 0 = Go's time.RFC3339Nano */
#define VG_TIMEFMT_ANYCASE  1u  /* 't' and 'z' too (RFC 3339 5.6 allows them) */
#define VG_TIMEFMT_SPACE    2u  /* ' ' between date and time (RFC 3339's note) */
#define VG_TIMEFMT_LEAP     4u  /* second 60, read as the next second */
#define VG_TIMEFMT_LONGFRAC 8u  /* over 9 fraction digits */
#define VG_TIMEFMT_LAX      15u /* all of them: timestamps as log producers write them */

/* YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm), exactly len bytes of s, to Unix
 * milliseconds (the fraction truncated), relaxed by flags. VG_EPARSE
 * otherwise (also for dates that do not exist), *ms untouched. */
vg_err_t vg_timefmt_parse_rfc3339(const char *s, size_t len, unsigned flags, int64_t *ms);

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC, milliseconds) into out; years outside
 * 0..9999 get more digits or a sign. Returns out. */
#define VG_TIMEFMT_RFC3339_MAX 32
char *vg_timefmt_format_rfc3339(int64_t ms, char out[VG_TIMEFMT_RFC3339_MAX]);

#endif
