/*
 * audit.c - parse, check, redact and normalise one audit line (audit.h).
 *
 * jansson was measured against json-c, yajl and cJSON (bench/RESULTS.md,
 * "Audit JSON library") and kept because the build already links it and it
 * keeps integers exact. UTF-8 is checked here first, so "invalid_utf8" and
 * "invalid_json" stay distinct reasons; duplicate keys are refused, because
 * two "user_id"s in one record would make what is stored ambiguous.
 *
 * Every field, user_id included, is taken AFTER redaction: nothing that
 * matches a redaction rule leaves the node. A user_id that is itself an
 * e-mail address is therefore shipped and stored as "[REDACTED]" (or the
 * rule's replacement), and erasure cannot find it by the raw value; deploy
 * opaque user ids, or rules that leave them alone (docs/configuration.md).
 * Field names are not rewritten, so a line with a name a value rule matches
 * (an e-mail address as a key) is dead-lettered, its raw text redacted.
 *
 * vg_audit_parse first offers the line to fastpath.c, a single-pass scanner
 * that answers the common valid line the same way for a fraction of the CPU
 * (bench/audit_vs_rsyslog); everything else comes here. This jansson path
 * is the reference: a change to what it does must be mirrored there
 * (test_audit_fast.c compares the two).
 */
#include "audit.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vigil/alloc.h"
#include "vigil/timefmt.h"
#include "fastpath.h"

static const char *const field_names[VG_AF__COUNT] = {
    "timestamp", "user_id", "session_id", "action", "resource", "result", "ip_address",
};

static const char *const reason_names[VG_AUDIT_REASON__COUNT] = {
    "ok",         "too_long",          "invalid_utf8", "invalid_json", "missing_field",
    "wrong_type", "invalid_timestamp",
};

const char *vg_audit_reason_name(vg_audit_reason r)
{
    return (unsigned)r < VG_AUDIT_REASON__COUNT ? reason_names[r] : "unknown";
}

const char *vg_audit_field_name(int i)
{
    return i >= 0 && i < VG_AF__COUNT ? field_names[i] : NULL;
}

int vg_audit_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *e = s + len;
    while (s < e) {
        uint64_t w;
        if (e - s >= 8 && (memcpy(&w, s, 8), !(w & 0x8080808080808080ULL))) {
            s += 8; /* eight ASCII bytes at once */
            continue;
        }
        unsigned c = *s;
        if (c < 0x80) {
            s++;
            continue;
        }
        size_t n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;
        if (c < 0xC2 || c > 0xF4 || (size_t)(e - s) <= n) return 0;
        unsigned cp = c & (0x3F >> n);
        for (size_t i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i] & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        s += n + 1;
    }
    return 1;
}

int64_t vg_audit_epoch_ms(double v)
{
    if (!isfinite(v) || fabs(v) > 9e15) return 0;
    return fabs(v) >= 1e11 ? (int64_t)llround(v) : (int64_t)llround(v * 1000.0);
}

/* The source's name for canonical field name. */
static const char *source_name(const vg_audit_schema *s, const char *canon)
{
    for (size_t i = 0; i < s->nmapping; i++)
        if (!strcmp(s->mapping[i].key, canon)) return s->mapping[i].value;
    return canon;
}

static json_t *get_field(const vg_audit_schema *s, json_t *root, const char *canon)
{
    json_t *v = json_object_get(root, source_name(s, canon));
    return json_is_null(v) ? NULL : v;
}

static vg_audit_reason check_required(const vg_audit_schema *s, json_t *root, char *d, size_t dn)
{
    size_t n = s->required ? s->nrequired : VG_AF__COUNT;
    for (size_t i = 0; i < n; i++) {
        const char *f = s->required ? s->required[i] : field_names[i];
        if (get_field(s, root, f)) continue;
        snprintf(d, dn, "missing field \"%.64s\"", source_name(s, f));
        return VG_AUDIT_MISSING_FIELD;
    }
    for (int i = VG_AF_USER_ID; i < VG_AF__COUNT; i++) {
        json_t *v = get_field(s, root, field_names[i]);
        if (!v || json_is_string(v) || json_is_integer(v)) continue;
        snprintf(d, dn, "field \"%.64s\" must be a string", source_name(s, field_names[i]));
        return VG_AUDIT_BAD_TYPE;
    }
    return VG_AUDIT_OK;
}

static vg_audit_reason read_ts(const vg_audit_schema *s, json_t *root, int64_t now_ms, int64_t *ms,
                               char *d, size_t dn)
{
    json_t *v = get_field(s, root, field_names[VG_AF_TIMESTAMP]);
    *ms = now_ms;
    if (!v) return VG_AUDIT_OK; /* not required, or check_required had said so */
    if (json_is_string(v)) {
        if (!vg_timefmt_parse_rfc3339(json_string_value(v), json_string_length(v), VG_TIMEFMT_LAX,
                                      ms))
            return VG_AUDIT_OK;
        snprintf(d, dn, "timestamp \"%.40s\" is not RFC 3339", json_string_value(v));
        return VG_AUDIT_BAD_TIMESTAMP;
    }
    if (json_is_integer(v)) {
        json_int_t t = json_integer_value(v);
        if (t > -100000000000LL && t < 100000000000LL) t *= 1000;
        *ms = t;
        return VG_AUDIT_OK;
    }
    if (json_is_real(v) && fabs(json_real_value(v)) < 9e15) {
        *ms = vg_audit_epoch_ms(json_real_value(v));
        return VG_AUDIT_OK;
    }
    snprintf(d, dn, "timestamp must be an RFC 3339 string or epoch seconds/milliseconds");
    return json_is_real(v) ? VG_AUDIT_BAD_TIMESTAMP : VG_AUDIT_BAD_TYPE;
}

static char *field_text(const vg_audit_schema *s, json_t *root, int i)
{
    char num[32];
    json_t *v = get_field(s, root, field_names[i]);
    if (json_is_string(v)) return vg_strdup(json_string_value(v));
    if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return vg_strdup(num);
    }
    return vg_strdup("");
}

static int dump_cb(const char *buf, size_t size, void *data)
{
    return vg_buf_append(data, buf, size) ? -1 : 0;
}

/* Fields and the compact line out of the (redacted) tree. */
static vg_err_t fill_rec(const vg_audit_schema *s, json_t *root, vg_audit_rec *out)
{
    vg_buf b;
    for (int i = VG_AF_USER_ID; i < VG_AF__COUNT; i++)
        if (!(out->field[i] = field_text(s, root, i))) return VG_ENOMEM;
    vg_buf_init(&b, 0);
    if (json_dump_callback(root, dump_cb, &b, JSON_COMPACT | JSON_PRESERVE_ORDER) ||
        vg_buf_putc(&b, '\0')) {
        vg_buf_free(&b);
        return VG_ENOMEM;
    }
    out->json_len = b.len - 1;
    out->json = vg_buf_steal(&b, NULL);
    return out->json ? VG_OK : VG_ENOMEM;
}

static vg_audit_reason check_line(const vg_audit_schema *s, const char *line, size_t len,
                                  json_t **root, char *d, size_t dn)
{
    json_error_t je;
    size_t max = s->max_line_bytes ? s->max_line_bytes : VG_AUDIT_DEFAULT_MAX_LINE;
    *root = NULL;
    if (len > max) {
        snprintf(d, dn, "line of %zu bytes is over max_line_bytes %zu", len, max);
        return VG_AUDIT_TOO_LONG;
    }
    if (!vg_audit_utf8_valid(line, len)) {
        snprintf(d, dn, "line is not valid UTF-8");
        return VG_AUDIT_BAD_UTF8;
    }
    if (!(*root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je))) {
        snprintf(d, dn, "invalid JSON at column %d: %s", je.column, je.text);
        return VG_AUDIT_BAD_JSON;
    }
    if (!json_is_object(*root)) {
        snprintf(d, dn, "a line must be a JSON object");
        return VG_AUDIT_BAD_JSON;
    }
    return check_required(s, *root, d, dn);
}

vg_err_t vg_audit_parse(const vg_audit_schema *s, const char *line, size_t len, int64_t now_ms,
                        vg_audit_rec *out, vg_audit_reason *reason, char *detail, size_t dn)
{
    int done = 0;
    vg_err_t rc = vg_audit_fast_parse(s, line, len, now_ms, out, &done);
    if (!rc && !done) return vg_audit_parse_ref(s, line, len, now_ms, out, reason, detail, dn);
    *reason = VG_AUDIT_OK;
    if (detail && dn) detail[0] = '\0';
    return rc;
}

vg_err_t vg_audit_parse_ref(const vg_audit_schema *s, const char *line, size_t len, int64_t now_ms,
                            vg_audit_rec *out, vg_audit_reason *reason, char *detail, size_t dn)
{
    char scratch[8];
    json_t *root = NULL;
    vg_err_t rc = VG_OK;
    if (!detail) detail = scratch, dn = sizeof scratch;
    detail[0] = '\0';
    memset(out, 0, sizeof *out);
    *reason = check_line(s, line, len, &root, detail, dn);
    if (*reason == VG_AUDIT_OK) *reason = read_ts(s, root, now_ms, &out->ts_ms, detail, dn);
    if (*reason != VG_AUDIT_OK) goto out;
    rc = vg_redact_json(s->redact, root, NULL);
    if (rc == VG_ETOOLARGE || rc == VG_EINVAL) { /* never ship it half-redacted */
        snprintf(detail, dn, "%s",
                 rc == VG_EINVAL ? "a field name holds text a redaction rule matches (names are "
                                   "not rewritten)"
                                 : "nested deeper than redaction walks (64 levels)");
        *reason = VG_AUDIT_BAD_JSON;
        rc = VG_OK;
        goto out;
    }
    if (rc || (rc = fill_rec(s, root, out))) {
        rc = VG_ENOMEM;
        vg_audit_rec_clear(out);
    }
out:
    json_decref(root);
    return rc;
}

void vg_audit_rec_clear(vg_audit_rec *r)
{
    if (!r) return;
    for (int i = 0; i < VG_AF__COUNT; i++) vg_free(r->field[i]);
    vg_free(r->json);
    memset(r, 0, sizeof *r);
}
