/*
 * selector.h - parse a PromQL instant-vector selector into label matchers.
 *
 *   up    up{job="api",env!="dev"}    {__name__=~"http_.*",code=~"5.."}
 *   {"utf8.metric", 'x'=`raw`}        trailing comma allowed
 *
 * This is the first piece of the PromQL parser: it accepts exactly the
 * vector-selector subset and reports anything else that is valid PromQL as
 * VG_EUNSUPPORTED, so the API can say "not supported in this build" rather
 * than "syntax error". Errors read like Prometheus's, with a 1-based
 * line:column byte position: `1:14: parse error: unexpected "}" in label
 * matching, expected label matching operator`.
 */
#ifndef VIGIL_PROMQL_SELECTOR_H
#define VIGIL_PROMQL_SELECTOR_H

#include <stddef.h>

#include "vigil/error.h"
#include "vigil/labels.h"

/* Longest selector accepted (VG_ETOOLARGE past it). */
#define VG_SELECTOR_MAX (64 * 1024)

typedef struct vg_selector {
    vg_matcher_t **m; /* in Prometheus order: braces first, then the outer name */
    size_t n;
} vg_selector;

/* Parse s[0..len). On success fill *out (free with vg_selector_free).
 * VG_EPARSE for a syntax or semantic error, VG_EUNSUPPORTED for valid PromQL
 * that is not a plain vector selector, VG_ETOOLARGE, VG_ENOMEM; err says
 * where. *out is left empty on failure. */
vg_err_t vg_selector_parse(const char *s, size_t len, vg_selector *out, vg_error *err);
/* Free the matchers; safe on an empty or zeroed selector. */
void vg_selector_free(vg_selector *sel);

#endif
