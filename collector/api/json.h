/*
 * json.h - the exact JSON shapes of the Prometheus HTTP API.
 *
 * Grafana, promtool and client libraries parse these bytes, and our tests
 * compare them with what Prometheus prints, so every helper reproduces
 * Prometheus's encoder (util/jsonutil): a sample timestamp is a JSON number
 * of seconds with the milliseconds written as 3 digits when non-zero
 * (1435781451.781, 1435781451.780, 1435781451); a sample value is a string
 * in Go's strconv 'f' shortest form, switching to 'e' below 1e-6 and from
 * 1e21 on, with "NaN", "+Inf", "-Inf".
 */
#ifndef VIGIL_API_JSON_H
#define VIGIL_API_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/buf.h"
#include "vigil/labels.h"

/* Append a millisecond timestamp as Prometheus writes it (a bare number). */
vg_err_t vg_api_json_time(vg_buf *b, int64_t ms);
/* Append a sample value as a quoted string. */
vg_err_t vg_api_json_value(vg_buf *b, double v);
/* Append [time,"value"] (one point of a matrix or vector). */
vg_err_t vg_api_json_point(vg_buf *b, int64_t ms, double v);
/* Append {"name":"value",...} for a label set, in the given order. */
vg_err_t vg_api_json_labels(vg_buf *b, const vg_label_t *l, size_t n);
/* Append ["a","b",...]. */
vg_err_t vg_api_json_strings(vg_buf *b, char *const *v, size_t n);
/* Replace b's contents by {"status":"error","errorType":type,"error":msg}. */
vg_err_t vg_api_json_error(vg_buf *b, const char *type, const char *msg);

#endif
