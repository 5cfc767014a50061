/*
 * audit.h - one audit log line in, one normalised AuditRecord (or a
 * dead-letter reason) out.
 *
 * The checks run cheapest first and each failure has its own reason, so the
 * dead-letter counters tell an operator what is wrong with a source: length
 * (max_line_bytes), UTF-8, JSON syntax (an object is required), then each
 * required field's presence and type, then the timestamp. Redaction runs on
 * the parsed tree before the fields are read out and the line re-serialised,
 * so nothing unredacted reaches the record. Field names can be mapped
 * (canonical name -> name in the source), for sources that say "uid" or "ts".
 */
#ifndef VIGIL_AGENT_AUDIT_H
#define VIGIL_AGENT_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "redact.h"
#include "vigil/config.h" /* vg_kv_t */
#include "vigil/error.h"

#define VG_AUDIT_DEFAULT_MAX_LINE (64u << 10)

/* The normalised fields, in AuditRecord order. */
enum {
    VG_AF_TIMESTAMP,
    VG_AF_USER_ID,
    VG_AF_SESSION_ID,
    VG_AF_ACTION,
    VG_AF_RESOURCE,
    VG_AF_RESULT,
    VG_AF_IP_ADDRESS,
    VG_AF__COUNT
};

typedef enum vg_audit_reason {
    VG_AUDIT_OK = 0,
    VG_AUDIT_TOO_LONG,      /* "too_long": over max_line_bytes */
    VG_AUDIT_BAD_UTF8,      /* "invalid_utf8" */
    VG_AUDIT_BAD_JSON,      /* "invalid_json": syntax, or not an object */
    VG_AUDIT_MISSING_FIELD, /* "missing_field" */
    VG_AUDIT_BAD_TYPE,      /* "wrong_type" */
    VG_AUDIT_BAD_TIMESTAMP, /* "invalid_timestamp" */
    VG_AUDIT_REASON__COUNT
} vg_audit_reason;

typedef struct vg_audit_schema {
    const char *const *required; /* NULL = the seven canonical fields */
    size_t nrequired;
    const vg_kv_t *mapping; /* key: canonical name, value: the source's field name */
    size_t nmapping;
    size_t max_line_bytes; /* 0 = 64 KiB */
    vg_redactor_t *redact; /* may be NULL (nothing redacted) */
} vg_audit_schema;

typedef struct vg_audit_rec {
    int64_t ts_ms;
    char *field[VG_AF__COUNT]; /* [VG_AF_USER_ID..] strings ("" when absent); [0] unused */
    char *json;                /* the redacted line, compact */
    size_t json_len;
} vg_audit_rec;

/* Stable snake_case name of a reason (the dlq counter's label). */
const char *vg_audit_reason_name(vg_audit_reason r);
/* Canonical name of field i ("timestamp", "user_id", ...). */
const char *vg_audit_field_name(int i);
/* Parse and check line (len bytes, no newline). VG_OK with *reason set: OK and
 * *out filled (free with vg_audit_rec_clear), or the dead-letter reason with a
 * detail text in detail (dn bytes; may be NULL). Only VG_ENOMEM is an error. */
vg_err_t vg_audit_parse(const vg_audit_schema *s, const char *line, size_t len, int64_t now_ms,
                        vg_audit_rec *out, vg_audit_reason *reason, char *detail, size_t dn);
/* The same through the jansson path only (the reference the fast path is
 * compared with in tests). */
vg_err_t vg_audit_parse_ref(const vg_audit_schema *s, const char *line, size_t len, int64_t now_ms,
                            vg_audit_rec *out, vg_audit_reason *reason, char *detail, size_t dn);
/* Free the strings of r and zero it. */
void vg_audit_rec_clear(vg_audit_rec *r);
/* Epoch number to ms: |v| >= 1e11 is milliseconds, else seconds (fractions kept). */
int64_t vg_audit_epoch_ms(double v);
/* 1 when s is well-formed UTF-8 (no overlongs, surrogates, or > U+10FFFF). */
int vg_audit_utf8_valid(const char *s, size_t len);

#endif
