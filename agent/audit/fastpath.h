/*
 * fastpath.h - the single-pass parser for the common audit line (fastpath.c).
 *
 * Why: building a jansson tree, walking it to redact and dumping it again
 * was most of the agent's CPU per audit line (bench/audit_vs_rsyslog). Most
 * lines are plain: a flat-ish object, valid, few escapes. This path checks
 * and re-serialises such a line in one pass, with the same answers as the
 * jansson path in audit.c, and hands every other line (anything invalid,
 * unusual or deep) to that path, which stays the reference.
 */
#ifndef VIGIL_AGENT_AUDIT_FASTPATH_H
#define VIGIL_AGENT_AUDIT_FASTPATH_H

#include "audit.h"

/* Try line on the fast path. *done = 1: a valid line, *out filled exactly as
 * vg_audit_parse would (reason OK). *done = 0: not decided here, out is
 * zeroed, and the caller takes the reference path. VG_ENOMEM only. */
vg_err_t vg_audit_fast_parse(const vg_audit_schema *s, const char *line, size_t len, int64_t now_ms,
                             vg_audit_rec *out, int *done);

#endif
