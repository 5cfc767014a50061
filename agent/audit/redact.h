/*
 * redact.h - PCRE2 (JIT) redaction of audit field values before they leave the node.
 *
 * Rules are presets (email, credit_card with a Luhn check, bearer_token,
 * aws_access_key, password_field) or user patterns with a replacement. They
 * apply to string values of the parsed JSON line (and to long integers, so a
 * card number written as a number is caught too), never to the raw bytes, so a
 * replacement can never break the JSON that is re-serialised afterwards.
 * password_field is the one rule on field names: a field whose name looks
 * like password/secret/token gets its whole value replaced, whatever its type.
 * Names themselves are never rewritten: a tree with a name that a value rule
 * matches is refused (vg_redact_json: VG_EINVAL).
 * A redactor keeps one PCRE2 match block, so it serves one thread at a time.
 */
#ifndef VIGIL_AGENT_REDACT_H
#define VIGIL_AGENT_REDACT_H

#include <jansson.h>
#include <stddef.h>

#include "vigil/buf.h"
#include "vigil/error.h"

#define VG_REDACT_DEFAULT_REPLACEMENT "[REDACTED]"

typedef struct vg_redact_rule {
    const char *name;        /* a preset's name, or a label for a user pattern */
    const char *pattern;     /* NULL or "" = the preset called name */
    const char *replacement; /* NULL = "[REDACTED]" */
} vg_redact_rule;

typedef struct vg_redactor vg_redactor_t;

/* 1 when name is one of the presets. */
int vg_redact_is_preset(const char *name);
/* Compile rules (JIT when available). VG_ECONFIG names the rule and the PCRE2
 * error offset for a bad pattern or an unknown preset. */
vg_err_t vg_redactor_new(const vg_redact_rule *rules, size_t n, vg_redactor_t **out, vg_error *err);
/* NULL is a no-op. */
void vg_redactor_free(vg_redactor_t *r);
/* Apply the value rules to s (len bytes). When something matched, *changed = 1
 * and out holds the whole redacted value (out is reset first); else out is
 * untouched. VG_ENOMEM / VG_ETOOLARGE from out. */
vg_err_t vg_redact_value(vg_redactor_t *r, const char *s, size_t len, vg_buf *out, int *changed);
/* 1 when the key matches a field-name rule (password_field). */
int vg_redact_key(const vg_redactor_t *r, const char *key);
/* The same for a key of len bytes (verdicts are cached per redactor). */
int vg_redact_keyn(const vg_redactor_t *r, const char *key, size_t len);
/* 1 when a value rule matches inside the field name key (len bytes): such a
 * name would leave the node as it is, so the line must be refused (cached
 * with the vg_redact_keyn verdicts). */
int vg_redact_name_leaks(const vg_redactor_t *r, const char *key, size_t len);
/* The replacement of a secret-named field's value (the first field-name
 * rule's), or NULL when there is no such rule. */
const char *vg_redact_field_repl(const vg_redactor_t *r, size_t *len);
/* Redact every string (and long integer) value in root, in place, replacing the
 * values of secret-named fields; *count (may be NULL) gets the number changed.
 * VG_EINVAL when a field name holds text a value rule matches (the tree is
 * then partly redacted: do not ship it); VG_ETOOLARGE when nested over 64. */
vg_err_t vg_redact_json(vg_redactor_t *r, json_t *root, size_t *count);
/* Luhn checksum over the digits of s (other characters skipped): 1 when valid
 * and there are 13..19 digits. */
int vg_redact_luhn(const char *s, size_t len);

#endif
