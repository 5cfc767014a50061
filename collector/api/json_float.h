/*
 * json_float.h - sample values in Prometheus's JSON float form, fast.
 *
 * The same bytes as vg_fmt_float_json (Go's shortest 'f', 'e' outside
 * [1e-6, 1e21), "NaN", "+Inf", "-Inf") at a fraction of the cost, because a
 * matrix answer formats one value per point (see json_float.c).
 */
#ifndef VIGIL_API_JSON_FLOAT_H
#define VIGIL_API_JSON_FLOAT_H

#include <stddef.h>

/* Format v into buf (at least VG_FMT_FLOAT_JSON_SIZE bytes, vigil/metrics.h),
 * NUL-terminated; the length. */
size_t vg_api_float_json(double v, char *buf);

#endif
