/*
 * log.h - one logfmt line per event on stderr.
 *
 *   ts=2026-11-28T10:00:00.123Z level=warn component=scrape msg="scrape failed" job=node
 *
 * The macros test the level before evaluating any argument (redis's
 * serverLog), so debug logging on a hot path costs one compare. Each line is
 * built in a stack buffer and written with one write(2) so lines from
 * different threads never interleave. Warnings and errors carry src=file:line.
 *
 * Usage: vg_log_warn("scrape", "scrape failed", "job=%s err=%s", job, vg_logq(q, sizeof q, msg));
 * Pass NULL as the key/value format when there is nothing to add.
 */
#ifndef VIGIL_LOG_H
#define VIGIL_LOG_H

#include <stddef.h>

#include "vigil/error.h"

typedef enum vg_log_level {
    VG_LOG_ERROR = 0,
    VG_LOG_WARN = 1,
    VG_LOG_INFO = 2,
    VG_LOG_DEBUG = 3,
} vg_log_level;

extern int vg_log_threshold; /* lines above this level are skipped */

/* Set the threshold; returns VG_EINVAL for a name other than error/warn/info/debug. */
vg_err_t vg_log_set_level_name(const char *name);
void vg_log_set_level(vg_log_level lvl);

/* Write one line. msg is quoted; kvfmt (may be NULL) is appended as is. */
void vg_log_write(vg_log_level lvl, const char *component, const char *file, int line,
                  const char *msg, const char *kvfmt, ...) __attribute__((format(printf, 6, 7)));

/* Quote and escape s for a logfmt value into buf; returns buf. Truncates safely. */
const char *vg_logq(char *buf, size_t n, const char *s);

#define VG_LOG_AT(lvl, comp, ...)                                                                  \
    do {                                                                                           \
        if ((int)(lvl) <= vg_log_threshold)                                                        \
            vg_log_write((lvl), (comp), __FILE__, __LINE__, __VA_ARGS__);                          \
    } while (0)

#define vg_log_error(comp, ...) VG_LOG_AT(VG_LOG_ERROR, comp, __VA_ARGS__)
#define vg_log_warn(comp, ...)  VG_LOG_AT(VG_LOG_WARN, comp, __VA_ARGS__)
#define vg_log_info(comp, ...)  VG_LOG_AT(VG_LOG_INFO, comp, __VA_ARGS__)
#define vg_log_debug(comp, ...) VG_LOG_AT(VG_LOG_DEBUG, comp, __VA_ARGS__)

#endif
