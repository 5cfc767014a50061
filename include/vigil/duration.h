/*
 * duration.h - Prometheus durations and human byte sizes, both ways.
 *
 * Config files are written by people who also write Prometheus configs, so a
 * duration is spelled the Prometheus way ("1h30m", "90d", "1y", units in
 * descending order, no fractions) and printed back the same way, which lets a
 * loaded config be echoed to the user in the form they typed. Sizes accept
 * both SI (KB = 1000) and IEC (KiB = 1024) units because operators mix them;
 * being explicit beats guessing what "1G" means. Both parsers are pure
 * functions over a NUL-terminated string with no allocation.
 */
#ifndef VIGIL_DURATION_H
#define VIGIL_DURATION_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/error.h"

#define VG_MS_PER_SECOND INT64_C(1000)
#define VG_MS_PER_MINUTE INT64_C(60000)
#define VG_MS_PER_HOUR   INT64_C(3600000)
#define VG_MS_PER_DAY    INT64_C(86400000)
#define VG_MS_PER_WEEK   (7 * VG_MS_PER_DAY)
#define VG_MS_PER_YEAR   (365 * VG_MS_PER_DAY)

/* Buffer size that always holds vg_duration_format / vg_size_format output. */
#define VG_DURATION_STRMAX 64

/* Parse a Prometheus duration ("0", "30s", "1h30m", "1y", units y w d h m s ms in
 * strictly descending order) into milliseconds. VG_EINVAL + message on empty,
 * negative, fractional, out-of-order or repeated units, overflow or garbage. */
vg_err_t vg_duration_parse(const char *s, int64_t *ms, vg_error *err);

/* Write the canonical Prometheus form of ms into buf (e.g. 5400000 -> "1h30m",
 * 0 -> "0s"; years and weeks only when exact, so 90d stays "90d"). Negative
 * values get a leading '-'. Truncates safely; returns buf. */
char *vg_duration_format(int64_t ms, char *buf, size_t n);

/* Parse a byte size: a plain integer ("1048576") or a number with an optional
 * fraction, optional spaces and a case-insensitive unit B, KB, MB, GB, TB
 * (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024): "1.5GiB", "512 mib".
 * Fractions round down to whole bytes. VG_EINVAL + message on garbage/overflow. */
vg_err_t vg_size_parse(const char *s, uint64_t *bytes, vg_error *err);

/* Write bytes with the largest unit that divides it exactly, IEC first
 * (1073741824 -> "1GiB", 5000000 -> "5MB", 1000 -> "1KB", 7 -> "7B"). Returns buf. */
char *vg_size_format(uint64_t bytes, char *buf, size_t n);

#endif
