/*
 * redact.c - compile redaction rules to PCRE2 (JIT) and apply them to the
 * values of a parsed JSON line.
 *
 * Why on values of the parsed tree and not on the raw line: a pattern run
 * over raw JSON can match across a quote or an escape and produce a line
 * that no longer parses, and escaped text ("\u0040" for '@') would slip past
 * it. On decoded values, every replacement is re-escaped by the serialiser.
 * The card preset checks the Luhn sum of each candidate digit run, so order
 * numbers and timestamps that merely look long are left alone.
 *
 * Speed (bench/audit_vs_rsyslog): most values match no rule, so each preset
 * has a prefilter that says "cannot match" from what its pattern requires
 * ('@' for email, 13 digits in one run for credit_card, "bearer" for
 * bearer_token, a key prefix for aws_access_key) before PCRE2 is asked;
 * nothing is copied until a rule hits; and field-name verdicts are cached,
 * since a source uses the same few keys on every line. All three give the
 * answers PCRE2 would give.
 *
 * Field names are never rewritten (a rewritten name could collide with
 * another, and the schema reads fields by name), so a name that a value
 * rule matches (an e-mail address used as a key) makes vg_redact_json
 * refuse the whole tree: the line is dead-lettered, and the dead-letter
 * path redacts its raw text instead, so the name never leaves the node.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "redact.h"

#include <inttypes.h>
#include <pcre2.h>
#include <stdio.h>
#include <string.h>

#include "vigil/alloc.h"

enum { K_VALUE, K_FIELD };

/* A prefilter: 0 when the preset's pattern cannot match s (what it requires is absent). */
typedef int (*prefilter_fn)(const char *s, size_t len);

#define KEY_CACHE     256 /* slots (power of two) */
#define KEY_PROBES    4   /* slots tried from a key's own */
#define KEY_CACHE_LEN 48  /* longer keys are not cached */

typedef struct key_slot {
    unsigned char len, used, hit;
    char key[KEY_CACHE_LEN];
} key_slot;

typedef struct rule {
    int kind; /* K_VALUE: replace matches in values; K_FIELD: replace the value of a matching key */
    int luhn; /* a match counts only when its digits pass the Luhn check */
    pcre2_code *re;
    char *repl;
    size_t repl_len;
    prefilter_fn may_match; /* NULL: always ask PCRE2 */
} rule_t;

struct vg_redactor {
    rule_t *rules;
    size_t n;
    pcre2_match_data *md; /* shared: one thread at a time */
    key_slot *keys;       /* vg_redact_key verdicts by field name (KEY_CACHE slots) */
};

typedef struct preset {
    const char *name, *pattern, *repl;
    int kind, luhn;
    prefilter_fn may_match;
} preset_t;

static int has_at(const char *s, size_t len)
{
    return memchr(s, '@', len) != NULL;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

#define ONES 0x0101010101010101ULL
#define HIGH 0x8080808080808080ULL

static uint64_t load8(const char *s)
{
    uint64_t w;
    memcpy(&w, s, 8);
    return w;
}

/* Nonzero when one of the 8 bytes of w is an ASCII digit (bytes in 0x30..0x39;
 * the "has a byte between m and n" test, exact as a yes/no). */
static uint64_t digit8(uint64_t w)
{
    uint64_t low = w & (ONES * 127);
    return (ONES * (127 + 0x3A) - low) & ~w & (low + ONES * (127 - 0x2F)) & HIGH;
}

/* Nonzero when one of the 8 bytes of w is 'b' or 'B'. */
static uint64_t b8(uint64_t w)
{
    uint64_t x = (w | (ONES * 0x20)) ^ (ONES * 'b');
    return (x - ONES) & ~x & HIGH;
}

/* 13 ASCII digits in a row, each pair separated by at most one ' ' or '-'.
 * Eight bytes without a digit end any run (a separator there is not
 * followed by a digit), so they are skipped at once. */
static int has_card_run(const char *s, size_t len)
{
    int run = 0;
    if (len < 13) return 0;
    for (size_t i = 0; i < len; i++) {
        while (i + 8 <= len && !digit8(load8(s + i))) {
            i += 8;
            run = 0;
        }
        if (i >= len) break;
        if (is_digit(s[i])) {
            if (++run >= 13) return 1;
        } else if (!(run && (s[i] == ' ' || s[i] == '-') && i + 1 < len && is_digit(s[i + 1]))) {
            run = 0;
        }
    }
    return 0;
}

/* "bearer" in any ASCII case (none of its letters has a non-ASCII case variant). */
static int has_bearer(const char *s, size_t len)
{
    for (size_t i = 0; i + 6 <= len; i++) {
        while (i + 8 <= len && !b8(load8(s + i))) i += 8; /* no match starts there */
        if (i + 6 > len) break;
        if ((s[i] | 0x20) == 'b' && (s[i + 1] | 0x20) == 'e' && (s[i + 2] | 0x20) == 'a' &&
            (s[i + 3] | 0x20) == 'r' && (s[i + 4] | 0x20) == 'e' && (s[i + 5] | 0x20) == 'r')
            return 1;
    }
    return 0;
}

/* One of the AWS key-id prefixes with room for the 16 characters after it. */
static int has_aws_prefix(const char *s, size_t len)
{
    static const char pre[][4] = {"AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA"};
    for (const char *p = s; len >= 20 && (p = memchr(p, 'A', (size_t)(s + len - 19 - p))); p++)
        for (size_t k = 0; k < sizeof pre / sizeof pre[0]; k++)
            if (!memcmp(p, pre[k], 4)) return 1;
    return 0;
}

static const preset_t presets[] = {
    {"email", "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}", NULL, K_VALUE,
     0, has_at},
    {"credit_card", "(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])", NULL, K_VALUE, 1,
     has_card_run},
    {"bearer_token", "(?i)\\bbearer\\s+[A-Za-z0-9._~+/-]+=*", "Bearer [REDACTED]", K_VALUE, 0,
     has_bearer},
    {"aws_access_key", "\\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\\b", NULL,
     K_VALUE, 0, has_aws_prefix},
    {"password_field",
     "(?i)^(?:.*[_-])?(?:pass(?:word|wd)?|secret|token|api[_-]?key|credentials?|private[_-]?key)"
     "(?:[_-].*)?$",
     NULL, K_FIELD, 0, NULL},
};

static const preset_t *find_preset(const char *name)
{
    for (size_t i = 0; name && i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(presets[i].name, name)) return &presets[i];
    return NULL;
}

int vg_redact_is_preset(const char *name)
{
    return find_preset(name) != NULL;
}

int vg_redact_luhn(const char *s, size_t len)
{
    int sum = 0, ndig = 0;
    for (size_t i = len; i-- > 0;) {
        if (s[i] < '0' || s[i] > '9') continue;
        int d = s[i] - '0';
        if (ndig++ % 2 == 1 && (d *= 2) > 9) d -= 9;
        sum += d;
    }
    return ndig >= 13 && ndig <= 19 && sum % 10 == 0;
}

static vg_err_t compile_rule(rule_t *r, const vg_redact_rule *in, vg_error *err)
{
    const preset_t *p = (in->pattern && in->pattern[0]) ? NULL : find_preset(in->name);
    if (!p && !(in->pattern && in->pattern[0]))
        return vg_error_set(err, VG_ECONFIG,
                            "redact rule \"%.64s\": no pattern and not a preset (email, "
                            "credit_card, bearer_token, aws_access_key, password_field)",
                            in->name ? in->name : "");
    const char *pat = p ? p->pattern : in->pattern;
    const char *repl = in->replacement ? in->replacement
                                       : (p && p->repl ? p->repl : VG_REDACT_DEFAULT_REPLACEMENT);
    int ec;
    PCRE2_SIZE eo;
    r->kind = p ? p->kind : K_VALUE;
    r->luhn = p ? p->luhn : 0;
    r->may_match = p ? p->may_match : NULL;
    r->re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &eo, NULL);
    if (!r->re) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return vg_error_set(err, VG_ECONFIG, "redact rule \"%.64s\": pattern at offset %zu: %s",
                            in->name ? in->name : "", (size_t)eo, (const char *)msg);
    }
    (void)pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    if (!(r->repl = vg_strdup(repl))) return vg_error_set(err, VG_ENOMEM, "out of memory");
    r->repl_len = strlen(repl);
    return VG_OK;
}

vg_err_t vg_redactor_new(const vg_redact_rule *rules, size_t n, vg_redactor_t **out, vg_error *err)
{
    vg_err_t rc = VG_OK;
    vg_redactor_t *r = vg_calloc(1, sizeof *r);
    *out = NULL;
    if (!r || (n && !(r->rules = vg_calloc(n, sizeof *r->rules))) ||
        !(r->keys = vg_calloc(KEY_CACHE, sizeof *r->keys))) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        goto fail;
    }
    for (; r->n < n; r->n++)
        if ((rc = compile_rule(&r->rules[r->n], &rules[r->n], err))) {
            r->n++; /* free the half-built rule too */
            goto fail;
        }
    if (!(r->md = pcre2_match_data_create(32, NULL))) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        goto fail;
    }
    *out = r;
    return VG_OK;
fail:
    vg_redactor_free(r);
    return rc;
}

void vg_redactor_free(vg_redactor_t *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        pcre2_code_free(r->rules[i].re);
        vg_free(r->rules[i].repl);
    }
    vg_free(r->rules);
    pcre2_match_data_free(r->md);
    vg_free(r->keys);
    vg_free(r);
}

static int key_match(const vg_redactor_t *r, const char *key, size_t len)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->rules[i].kind == K_FIELD &&
            pcre2_match(r->rules[i].re, (PCRE2_SPTR)key, len, 0, 0, r->md, NULL) >= 0)
            return 1;
    return 0;
}

/* FNV-1a of the key: the cache slot. */
static size_t key_slot_of(const char *key, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)key[i]) * 16777619u;
    return h & (KEY_CACHE - 1);
}

/* 1 when a value rule matches inside s: what vg_redact_value would change
 * (each rule runs on the previous one's output, but when none matches s
 * the text never changes, and the first that matches changes it). */
static int value_rule_hits(const vg_redactor_t *r, const char *s, size_t len)
{
    for (size_t i = 0; i < r->n; i++) {
        const rule_t *ru = &r->rules[i];
        if (ru->kind != K_VALUE || (ru->may_match && !ru->may_match(s, len))) continue;
        for (size_t pos = 0; pos <= len;) {
            if (pcre2_match(ru->re, (PCRE2_SPTR)s, len, pos, 0, r->md, NULL) < 0) break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
            if (ov[1] > ov[0] && (!ru->luhn || vg_redact_luhn(s + ov[0], ov[1] - ov[0]))) return 1;
            pos = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
        }
    }
    return 0;
}

/* Bit 0: a field-name rule matches the key; bit 1: a value rule matches in it. */
static unsigned key_verdict(const vg_redactor_t *r, const char *key, size_t len)
{
    return (unsigned)key_match(r, key, len) | (unsigned)value_rule_hits(r, key, len) << 1;
}

static unsigned key_cached(const vg_redactor_t *r, const char *key, size_t len)
{
    if (!r || !key || !r->n) return 0;
    if (len >= KEY_CACHE_LEN) return key_verdict(r, key, len);
    size_t h = key_slot_of(key, len);
    key_slot *k = NULL;
    for (size_t i = 0; i < KEY_PROBES; i++) {
        key_slot *c = &r->keys[(h + i) & (KEY_CACHE - 1)];
        if (c->used && c->len == len && !memcmp(c->key, key, len)) return c->hit;
        if (!c->used && !k) k = c;
    }
    if (!k) k = &r->keys[h]; /* all taken: replace the key's own slot */
    k->hit = (unsigned char)key_verdict(r, key, len);
    k->len = (unsigned char)len;
    k->used = 1;
    memcpy(k->key, key, len);
    return k->hit;
}

int vg_redact_keyn(const vg_redactor_t *r, const char *key, size_t len)
{
    return (int)(key_cached(r, key, len) & 1);
}

int vg_redact_name_leaks(const vg_redactor_t *r, const char *key, size_t len)
{
    return (int)(key_cached(r, key, len) >> 1 & 1);
}

int vg_redact_key(const vg_redactor_t *r, const char *key)
{
    return key ? vg_redact_keyn(r, key, strlen(key)) : 0;
}

const char *vg_redact_field_repl(const vg_redactor_t *r, size_t *len)
{
    for (size_t i = 0; r && i < r->n; i++)
        if (r->rules[i].kind == K_FIELD) {
            *len = r->rules[i].repl_len;
            return r->rules[i].repl;
        }
    *len = 0;
    return NULL;
}

/* One value rule over s into out; *hits counts replacements, and out is
 * written only when there is at least one. A match that fails its Luhn check
 * (or is empty) is copied as is. */
static vg_err_t apply_rule(vg_redactor_t *r, const rule_t *ru, const char *s, size_t len,
                           vg_buf *out, int *hits)
{
    size_t pos = 0, copied = 0;
    vg_err_t rc = VG_OK;
    while (pos <= len) {
        int m = pcre2_match(ru->re, (PCRE2_SPTR)s, len, pos, 0, r->md, NULL);
        if (m < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
        size_t a = ov[0], b = ov[1];
        if (b <= a || (ru->luhn && !vg_redact_luhn(s + a, b - a))) {
            pos = (b > a ? b : a + 1);
            continue;
        }
        if ((rc = vg_buf_append(out, s + copied, a - copied)) ||
            (rc = vg_buf_append(out, ru->repl, ru->repl_len)))
            return rc;
        copied = pos = b;
        (*hits)++;
    }
    return *hits ? vg_buf_append(out, s + copied, len - copied) : VG_OK;
}

vg_err_t vg_redact_value(vg_redactor_t *r, const char *s, size_t len, vg_buf *out, int *changed)
{
    vg_buf a, b;
    vg_err_t rc = VG_OK;
    int hits = 0;
    *changed = 0;
    vg_buf_init(&a, 0);
    vg_buf_init(&b, 0);
    const char *cur = s;
    size_t cur_len = len;
    for (size_t i = 0; r && i < r->n && !rc; i++) {
        if (r->rules[i].kind != K_VALUE ||
            (r->rules[i].may_match && !r->rules[i].may_match(cur, cur_len)))
            continue;
        vg_buf *dst = (cur == a.data && a.data) ? &b : &a;
        int h = 0;
        vg_buf_reset(dst);
        if ((rc = apply_rule(r, &r->rules[i], cur, cur_len, dst, &h)) || !h) continue;
        hits += h;
        cur = dst->data ? dst->data : "";
        cur_len = dst->len;
    }
    if (!rc && hits) {
        vg_buf_reset(out);
        rc = vg_buf_append(out, cur, cur_len);
        *changed = 1;
    }
    vg_buf_free(&a);
    vg_buf_free(&b);
    return rc;
}

/* The replacement for one value, or NULL to keep it. Integers are checked as
 * their decimal text so a card number written as a number is caught. */
static vg_err_t redact_scalar(vg_redactor_t *r, json_t *v, json_t **repl, size_t *count)
{
    char num[32];
    const char *s = NULL;
    size_t len = 0;
    int changed = 0;
    vg_buf out;
    *repl = NULL;
    if (json_is_string(v)) {
        s = json_string_value(v);
        len = json_string_length(v);
    } else if (json_is_integer(v)) {
        len = (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        if (len < 13) return VG_OK;
        s = num;
    } else {
        return VG_OK;
    }
    vg_buf_init(&out, 0);
    vg_err_t rc = vg_redact_value(r, s, len, &out, &changed);
    if (!rc && changed) {
        if (!(*repl = json_stringn(out.data ? out.data : "", out.len))) rc = VG_ENOMEM;
        (*count)++;
    }
    vg_buf_free(&out);
    return rc;
}

static vg_err_t walk(vg_redactor_t *r, json_t *v, size_t *count, int depth);

/* vg_redact_key matched, so a field rule exists: its replacement text. */
static vg_err_t field_repl(vg_redactor_t *r, json_t **repl)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->rules[i].kind == K_FIELD) {
            *repl = json_stringn(r->rules[i].repl, r->rules[i].repl_len);
            return *repl ? VG_OK : VG_ENOMEM;
        }
    return VG_EINTERNAL;
}

/* The replacement of one member or item: a secret-named field's whole value,
 * a redacted scalar, or (for containers) nothing after walking inside. */
static vg_err_t member(vg_redactor_t *r, const char *key, json_t *v, json_t **repl, size_t *count,
                       int depth)
{
    *repl = NULL;
    if (key && vg_redact_name_leaks(r, key, strlen(key))) return VG_EINVAL;
    if (key && vg_redact_key(r, key)) {
        (*count)++;
        return field_repl(r, repl);
    }
    if (json_is_object(v) || json_is_array(v)) return walk(r, v, count, depth + 1);
    return redact_scalar(r, v, repl, count);
}

static vg_err_t walk(vg_redactor_t *r, json_t *v, size_t *count, int depth)
{
    const char *key;
    json_t *item, *repl;
    size_t i;
    vg_err_t rc = VG_OK;
    if (depth > 64) return VG_ETOOLARGE; /* jansson caps parse depth lower (2048 is its max) */
    if (json_is_object(v)) {
        json_object_foreach(v, key, item)
        {
            if ((rc = member(r, key, item, &repl, count, depth))) return rc;
            if (repl && json_object_set_new(v, key, repl)) return VG_ENOMEM;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item)
        {
            if ((rc = member(r, NULL, item, &repl, count, depth))) return rc;
            if (repl && json_array_set_new(v, i, repl)) return VG_ENOMEM;
        }
    }
    return rc;
}

vg_err_t vg_redact_json(vg_redactor_t *r, json_t *root, size_t *count)
{
    size_t c = 0;
    json_t *repl = NULL;
    vg_err_t rc = VG_OK;
    if (r && r->n) {
        if (json_is_object(root) || json_is_array(root))
            rc = walk(r, root, &c, 0);
        else if (!(rc = redact_scalar(r, root, &repl, &c)) && repl) {
            rc = json_is_string(root)
                     ? (json_string_setn(root, json_string_value(repl), json_string_length(repl))
                            ? VG_ENOMEM
                            : VG_OK)
                     : VG_OK; /* a bare number cannot be replaced in place */
            json_decref(repl);
        }
    }
    if (count) *count = c;
    return rc;
}
