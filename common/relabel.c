/*
 * relabel.c - Prometheus relabeling on PCRE2, compiled once, applied per sample.
 *
 * Shape: vg_relabel_new does all the work that can be done once. It checks
 * each rule exactly as Prometheus's model/relabel Validate does (same
 * messages, so users can search for them), compiles the regex with PCRE2
 * (PCRE2_ANCHORED|PCRE2_ENDANCHORED rather than wrapping the text in
 * ^(?:...)$, so an invalid pattern such as "a)(b" stays invalid; DOTALL
 * because Prometheus 3 compiles "^(?s:...)$"; DOLLAR_ENDONLY because Go's $
 * never matches before a final newline), JIT-compiles it, and splits
 * target_label and replacement into literal and capture-group parts,
 * resolving ${name} to a group number, so expansion at apply time is a copy
 * loop. Two regex shapes skip PCRE2 at apply time: the default "(.*)" (always
 * matches, $1 is the whole value) and a pattern without metacharacters
 * (plain string equality).
 *
 * vg_relabel_apply edits a sorted label array in place (binary search,
 * memmove on insert/delete: label sets are small) and takes new strings from
 * the caller's scratch arena, so the per-sample path never calls malloc.
 * The PCRE2 match data and the MD5 context used by hashmod are per thread
 * (pthread key), grown or created on first use, because a compiled list is
 * shared read-only by whoever applies it.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "vigil/relabel.h"

#include <ctype.h>
#include <locale.h>
#include <openssl/evp.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <wctype.h>

#include "vigil/alloc.h"

typedef enum action {
    A_REPLACE,
    A_KEEP,
    A_DROP,
    A_KEEPEQUAL,
    A_DROPEQUAL,
    A_HASHMOD,
    A_LABELMAP,
    A_LABELDROP,
    A_LABELKEEP,
    A_LOWERCASE,
    A_UPPERCASE,
    A__COUNT
} action;

static const char *const action_names[A__COUNT] = {
    "replace",  "keep",      "drop",      "keepequal", "dropequal", "hashmod",
    "labelmap", "labeldrop", "labelkeep", "lowercase", "uppercase",
};

typedef enum re_kind {
    RE_PCRE,    /* run PCRE2 */
    RE_ALL,     /* the default "(.*)": matches everything, $1 = $0 = the value */
    RE_LITERAL, /* no metacharacters: string equality, no groups */
} re_kind;

#define PART_LITERAL (-1)
#define PART_EMPTY   (-2) /* a group that does not exist: expands to "" */

typedef struct part {
    const char *lit; /* PART_LITERAL */
    size_t len;
    int group; /* capture group index, or PART_* */
} part;

typedef struct tmpl {
    const char *raw;
    part *parts;
    size_t nparts;
    int has_var; /* contains '$' */
} tmpl;

typedef struct rule {
    action act;
    const char **src;
    size_t nsrc;
    const char *sep;
    size_t seplen;
    re_kind kind;
    pcre2_code *re;
    const char *regex; /* the pattern text */
    uint32_t ncap;     /* capture groups */
    int regex_set;     /* regex given explicitly */
    tmpl target, repl;
    uint64_t modulus;
} rule;

struct vg_relabel {
    vg_arena_t *arena; /* rules, strings, template parts */
    rule *rules;
    size_t n;
    EVP_MD *md5; /* fetched once when a rule uses hashmod */
};

/* ------------------------------------------------------------ per thread */

typedef struct tls {
    pcre2_match_data *md;
    uint32_t pairs;
    EVP_MD_CTX *mdctx;
} tls;

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static pthread_key_t tls_key;
static int tls_key_ok;

static void tls_destroy(void *p)
{
    tls *t = p;
    pcre2_match_data_free(t->md);
    EVP_MD_CTX_free(t->mdctx);
    free(t); /* allocated with calloc: outlives any vg_alloc test hook */
}

static void tls_init(void)
{
    tls_key_ok = pthread_key_create(&tls_key, tls_destroy) == 0;
}

static tls *thread_state(void)
{
    pthread_once(&tls_once, tls_init);
    if (!tls_key_ok) return NULL;
    tls *t = pthread_getspecific(tls_key);
    if (t) return t;
    t = calloc(1, sizeof *t);
    if (t && pthread_setspecific(tls_key, t) != 0) {
        free(t);
        t = NULL;
    }
    return t;
}

/* Match data with room for at least pairs ovector pairs, or NULL. */
static pcre2_match_data *thread_md(uint32_t pairs)
{
    tls *t = thread_state();
    if (!t) return NULL;
    if (t->md && t->pairs >= pairs) return t->md;
    pcre2_match_data *md = pcre2_match_data_create(pairs < 16 ? 16 : pairs, NULL);
    if (!md) return NULL;
    pcre2_match_data_free(t->md);
    t->md = md;
    t->pairs = pairs < 16 ? 16 : pairs;
    return md;
}

/* ------------------------------------------------------------ compiling */

static int is_word(int c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* Prometheus's relabelTarget: ^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$ -
 * word characters and $var / ${var} references, not starting with a digit. */
static int target_template_valid(const char *s)
{
    if (!*s || isdigit((unsigned char)*s)) return 0;
    while (*s) {
        if (*s != '$') {
            if (!is_word(*s)) return 0;
            s++;
            continue;
        }
        s++;
        int brace = *s == '{';
        s += brace;
        if (!is_word(*s)) return 0;
        while (is_word(*s)) s++;
        if (brace && *s++ != '}') return 0;
    }
    return 1;
}

static int parse_action(const char *s, action *out)
{
    for (int i = 0; i < A__COUNT; i++)
        if (strcasecmp(s, action_names[i]) == 0) {
            *out = (action)i;
            return 1;
        }
    return 0;
}

/* Group number for a $name per Go's regexp.Expand: all digits (no leading
 * zero, below 1e8) is a number, anything else a group name. */
static int group_of(const rule *r, const char *name, size_t len)
{
    long num = 0;
    for (size_t i = 0; i < len && num >= 0; i++) {
        if (!isdigit((unsigned char)name[i]) || num >= 100000000L)
            num = -1;
        else
            num = num * 10 + (name[i] - '0');
    }
    if (len > 1 && name[0] == '0') num = -1;
    if (num >= 0) return (uint32_t)num <= r->ncap ? (int)num : PART_EMPTY;
    if (!r->re) return PART_EMPTY;
    char buf[256];
    if (len >= sizeof buf) return PART_EMPTY;
    memcpy(buf, name, len);
    buf[len] = '\0';
    int g = pcre2_substring_number_from_name(r->re, (PCRE2_SPTR)buf);
    return g > 0 ? g : PART_EMPTY;
}

/* One "$..." reference at s (just after the '$'): its name span and length
 * consumed, or 0 when malformed (then the '$' is literal, as in Go). */
static size_t scan_ref(const char *s, const char **name, size_t *nlen)
{
    int brace = *s == '{';
    const char *p = s + brace;
    size_t i = 0;
    while (is_word(p[i])) i++;
    if (!i || (brace && p[i] != '}')) return 0;
    *name = p;
    *nlen = i;
    return (size_t)brace * 2 + i;
}

static int tmpl_add(vg_arena_t *a, tmpl *t, size_t *cap, part p)
{
    if (p.group == PART_LITERAL && !p.len) return 1;
    if (t->nparts == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        part *np = vg_arena_alloc(a, nc * sizeof *np);
        if (!np) return 0;
        if (t->nparts) memcpy(np, t->parts, t->nparts * sizeof *np);
        t->parts = np;
        *cap = nc;
    }
    t->parts[t->nparts++] = p;
    return 1;
}

static vg_err_t tmpl_compile(vg_arena_t *a, const rule *r, const char *raw, tmpl *t)
{
    size_t cap = 0;
    memset(t, 0, sizeof *t);
    t->raw = raw;
    t->has_var = strchr(raw, '$') != NULL;
    const char *s = raw, *lit = raw;
    while ((s = strchr(s, '$'))) {
        const char *name;
        size_t nlen, used;
        if (!tmpl_add(a, t, &cap, (part){lit, (size_t)(s - lit), PART_LITERAL})) return VG_ENOMEM;
        if (s[1] == '$') { /* "$$" is a literal '$' */
            lit = s + 1;
            s += 2;
        } else if ((used = scan_ref(s + 1, &name, &nlen))) {
            if (!tmpl_add(a, t, &cap, (part){NULL, 0, group_of(r, name, nlen)})) return VG_ENOMEM;
            s += 1 + used;
            lit = s;
        } else {
            lit = s++; /* malformed: keep the '$' */
        }
    }
    if (!tmpl_add(a, t, &cap, (part){lit, strlen(lit), PART_LITERAL})) return VG_ENOMEM;
    return VG_OK;
}

static re_kind classify(const char *re)
{
    if (!strcmp(re, "(.*)")) return RE_ALL;
    return strpbrk(re, "\\^$.|?*+()[]{}") ? RE_PCRE : RE_LITERAL;
}

static vg_err_t compile_regex(rule *r, vg_error *err)
{
    const uint32_t opts = PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY |
                          PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    int code = 0;
    PCRE2_SIZE off = 0;
    r->re = pcre2_compile((PCRE2_SPTR)r->regex, strlen(r->regex), opts, &code, &off, NULL);
    if (!r->re) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(code, msg, sizeof msg) < 0) strcpy((char *)msg, "unknown");
        return vg_error_set(err, VG_ECONFIG, "error parsing regexp \"%.200s\": %s at offset %zu",
                            r->regex, (const char *)msg, (size_t)off);
    }
    if (pcre2_pattern_info(r->re, PCRE2_INFO_CAPTURECOUNT, &r->ncap) != 0) r->ncap = 0;
    r->kind = classify(r->regex);
    if (r->kind == RE_PCRE) (void)pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE);
    return VG_OK;
}

/* ------------------------------------------------------------ validation */

#define BAD(fld, ...) (w->field = (fld), vg_error_set(err, VG_ECONFIG, __VA_ARGS__))

static int acts_on_target(action a)
{
    return a == A_REPLACE || a == A_HASHMOD || a == A_LOWERCASE || a == A_UPPERCASE ||
           a == A_KEEPEQUAL || a == A_DROPEQUAL;
}

static vg_err_t validate_target(const vg_relabel_rule_t *in, action a, vg_relabel_where_t *w,
                                vg_error *err)
{
    const char *tl = in->target_label ? in->target_label : "", *an = action_names[a];
    if (acts_on_target(a) && !*tl)
        return BAD("target_label",
                   "relabel configuration for %s action requires 'target_label' value", an);
    int has_var = strchr(tl, '$') != NULL;
    int name_ok = vg_label_name_valid(tl, strlen(tl));
    if ((a == A_REPLACE && !has_var && !name_ok) ||
        (a == A_REPLACE && has_var && !target_template_valid(tl)) ||
        (a != A_REPLACE && acts_on_target(a) && !name_ok))
        return BAD("target_label", "\"%.200s\" is invalid 'target_label' for %s action", tl, an);
    return VG_OK;
}

static vg_err_t validate(const vg_relabel_rule_t *in, action a, vg_relabel_where_t *w,
                         vg_error *err)
{
    const char *an = action_names[a];
    int sep_default = !in->separator || !strcmp(in->separator, ";");
    int repl_default = !in->replacement || !strcmp(in->replacement, "$1");
    int no_target = !in->target_label || !*in->target_label;
    if (a == A_HASHMOD && !in->modulus)
        return BAD("modulus", "relabel configuration for hashmod requires non-zero modulus");
    vg_err_t rc = validate_target(in, a, w, err);
    if (rc) return rc;
    int eq = a == A_KEEPEQUAL || a == A_DROPEQUAL;
    if ((eq || a == A_LOWERCASE || a == A_UPPERCASE) && !repl_default)
        return BAD("replacement", "'replacement' can not be set for %s action", an);
    if (a == A_LABELMAP && !target_template_valid(in->replacement ? in->replacement : "$1"))
        return BAD("replacement", "\"%.200s\" is invalid 'replacement' for %s action",
                   in->replacement, an);
    if (eq && (in->regex || in->modulus || !sep_default || !repl_default))
        return BAD("action",
                   "%s action requires only 'source_labels' and `target_label`, and no other "
                   "fields",
                   an);
    if ((a == A_LABELDROP || a == A_LABELKEEP) &&
        (in->nsource_labels || !no_target || in->modulus || !sep_default || !repl_default))
        return BAD("action", "%s action requires only 'regex', and no other fields", an);
    return VG_OK;
}

/* ------------------------------------------------------------ construction */

static vg_err_t copy_sources(vg_arena_t *a, rule *r, const vg_relabel_rule_t *in)
{
    r->nsrc = in->nsource_labels;
    if (!r->nsrc) return VG_OK;
    r->src = vg_arena_alloc(a, r->nsrc * sizeof *r->src);
    if (!r->src) return VG_ENOMEM;
    for (size_t i = 0; i < r->nsrc; i++)
        if (!(r->src[i] = vg_arena_strdup(a, in->source_labels[i] ? in->source_labels[i] : "")))
            return VG_ENOMEM;
    return VG_OK;
}

static vg_err_t build_rule(vg_relabel_t *h, rule *r, const vg_relabel_rule_t *in,
                           vg_relabel_where_t *w, vg_error *err)
{
    vg_arena_t *a = h->arena;
    const char *act = in->action ? in->action : "replace";
    if (!parse_action(act, &r->act)) return BAD("action", "unknown relabel action \"%.100s\"", act);
    vg_err_t rc = validate(in, r->act, w, err);
    if (rc) return rc;
    r->sep = vg_arena_strdup(a, in->separator ? in->separator : ";");
    r->regex = vg_arena_strdup(a, in->regex ? in->regex : "(.*)");
    if (!r->sep || !r->regex || copy_sources(a, r, in))
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    r->seplen = strlen(r->sep);
    r->regex_set = in->regex != NULL;
    r->modulus = in->modulus;
    if ((rc = compile_regex(r, err))) {
        w->field = "regex";
        return rc;
    }
    const char *tl = vg_arena_strdup(a, in->target_label ? in->target_label : "");
    const char *rp = vg_arena_strdup(a, in->replacement ? in->replacement : "$1");
    if (!tl || !rp || tmpl_compile(a, r, tl, &r->target) || tmpl_compile(a, r, rp, &r->repl))
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    return VG_OK;
}

static vg_err_t fetch_md5(vg_relabel_t *h, vg_relabel_where_t *w, vg_error *err)
{
    for (size_t i = 0; i < h->n; i++) {
        if (h->rules[i].act != A_HASHMOD) continue;
        if ((h->md5 = EVP_MD_fetch(NULL, "MD5", NULL))) return VG_OK;
        w->index = i;
        return BAD("action", "hashmod needs MD5, which this OpenSSL does not provide");
    }
    return VG_OK;
}

vg_err_t vg_relabel_new(const vg_relabel_rule_t *rules, size_t n, vg_relabel_t **out,
                        vg_relabel_where_t *where, vg_error *err)
{
    vg_relabel_where_t dummy, *w = where ? where : &dummy;
    *out = NULL;
    *w = (vg_relabel_where_t){0, NULL};
    vg_relabel_t *h = vg_calloc(1, sizeof *h);
    vg_err_t rc = VG_OK;
    if (!h || !(h->arena = vg_arena_new(4096)) ||
        (n && !(h->rules = vg_arena_calloc(h->arena, n * sizeof *h->rules)))) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++, h->n++) {
        w->index = i;
        if ((rc = build_rule(h, &h->rules[i], &rules[i], w, err))) {
            h->n++; /* free this rule's regex too */
            goto fail;
        }
    }
    if ((rc = fetch_md5(h, w, err))) goto fail;
    *out = h;
    return VG_OK;
fail:
    vg_relabel_free(h);
    return rc;
}

void vg_relabel_free(vg_relabel_t *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) pcre2_code_free(r->rules[i].re);
    EVP_MD_free(r->md5);
    vg_arena_free(r->arena);
    vg_free(r);
}

size_t vg_relabel_count(const vg_relabel_t *r)
{
    return r ? r->n : 0;
}

size_t vg_relabel_cap(const vg_relabel_t *r, size_t n)
{
    size_t m = n;
    for (size_t i = 0; r && i < r->n && m < VG_RELABEL_MAX_LABELS; i++) {
        action a = r->rules[i].act;
        if (a == A_LABELMAP)
            m *= 2;
        else if (a == A_REPLACE || a == A_HASHMOD || a == A_LOWERCASE || a == A_UPPERCASE)
            m += 1;
    }
    return m < VG_RELABEL_MAX_LABELS ? m : VG_RELABEL_MAX_LABELS;
}

/* ------------------------------------------------------------ label sets */

typedef struct lset {
    vg_label_t *l;
    size_t n, cap;
    vg_arena_t *a;
    int failed; /* cap or arena exhausted */
} lset;

/* Index of name, or -(insertion point) - 1. */
static long ls_find(const lset *s, const char *name)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->l[mid].name, name);
        if (!c) return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

static const char *ls_get(const lset *s, const char *name)
{
    long i = ls_find(s, name);
    return i >= 0 ? s->l[i].value : "";
}

static void ls_del(lset *s, const char *name)
{
    long i = ls_find(s, name);
    if (i < 0) return;
    memmove(&s->l[i], &s->l[i + 1], (s->n - (size_t)i - 1) * sizeof *s->l);
    s->n--;
}

/* Set name=value; "" deletes, as Prometheus's labels.Builder does. */
static void ls_set(lset *s, const char *name, const char *value)
{
    if (!value[0]) {
        ls_del(s, name);
        return;
    }
    long i = ls_find(s, name);
    if (i >= 0) {
        s->l[i].value = value;
        return;
    }
    if (s->n >= s->cap) {
        s->failed = 1;
        return;
    }
    size_t at = (size_t)(-i - 1);
    memmove(&s->l[at + 1], &s->l[at], (s->n - at) * sizeof *s->l);
    s->l[at] = (vg_label_t){name, value};
    s->n++;
}

/* ------------------------------------------------------------ matching */

typedef struct match {
    const PCRE2_SIZE *ov;
    uint32_t pairs;
    PCRE2_SIZE local[4];
} match;

static int re_match(const rule *r, const char *s, size_t len, match *m)
{
    if (r->kind == RE_ALL) {
        m->local[0] = m->local[2] = 0;
        m->local[1] = m->local[3] = len;
        m->ov = m->local;
        m->pairs = 2;
        return 1;
    }
    if (r->kind == RE_LITERAL) {
        m->local[0] = 0;
        m->local[1] = len;
        m->ov = m->local;
        m->pairs = 1;
        return strlen(r->regex) == len && !memcmp(r->regex, s, len);
    }
    pcre2_match_data *md = thread_md(r->ncap + 1);
    if (!md) return 0;
    int rc = pcre2_match(r->re, (PCRE2_SPTR)s, len, 0, 0, md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) /* deep backtracking: the interpreter uses the heap */
        rc = pcre2_match(r->re, (PCRE2_SPTR)s, len, 0, PCRE2_NO_JIT, md, NULL);
    if (rc < 0) return 0;
    m->ov = pcre2_get_ovector_pointer(md);
    m->pairs = rc ? (uint32_t)rc : pcre2_get_ovector_count(md);
    return 1;
}

/* Span of group g, or 0 when it did not take part in the match. */
static int group_span(const match *m, int g, size_t *from, size_t *len)
{
    if (g < 0 || (uint32_t)g >= m->pairs || m->ov[2 * g] == PCRE2_UNSET) return 0;
    *from = m->ov[2 * g];
    *len = m->ov[2 * g + 1] - *from;
    return 1;
}

/* Expand t against src and m into the arena; NULL on ENOMEM. */
static const char *expand(const tmpl *t, const char *src, size_t srclen, const match *m,
                          vg_arena_t *a)
{
    size_t total = 0, from, len;
    if (t->nparts == 1 && t->parts[0].group >= 0 && group_span(m, t->parts[0].group, &from, &len) &&
        from == 0 && len == srclen)
        return src; /* "$1" over the whole value: no copy */
    for (size_t i = 0; i < t->nparts; i++) {
        const part *p = &t->parts[i];
        if (p->group == PART_LITERAL)
            total += p->len;
        else if (group_span(m, p->group, &from, &len))
            total += len;
    }
    char *out = vg_arena_alloc(a, total + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < t->nparts; i++) {
        const part *p = &t->parts[i];
        if (p->group == PART_LITERAL) {
            memcpy(o, p->lit, p->len);
            o += p->len;
        } else if (group_span(m, p->group, &from, &len)) {
            memcpy(o, src + from, len);
            o += len;
        }
    }
    *o = '\0';
    return out;
}

/* ------------------------------------------------------------ case mapping */

static pthread_once_t loc_once = PTHREAD_ONCE_INIT;
static locale_t utf8_loc;

static void loc_init(void)
{
    utf8_loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* Decode one UTF-8 sequence; returns its length, or 0 for an invalid byte. */
static size_t utf8_dec(const unsigned char *s, size_t n, unsigned *cp)
{
    static const unsigned minv[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t len = s[0] < 0x80         ? 1
                 : (s[0] >> 5) == 6  ? 2
                 : (s[0] >> 4) == 14 ? 3
                 : (s[0] >> 3) == 30 ? 4
                                     : 0;
    if (!len || len > n) return 0;
    unsigned c = len == 1 ? s[0] : s[0] & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < minv[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
    *cp = c;
    return len;
}

static size_t utf8_enc(unsigned c, char *o)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xc0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xe0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        o[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (c >> 18));
    o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3f));
    o[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

/* Go's strings.ToLower/ToUpper: simple Unicode case mapping, an invalid
 * byte becomes U+FFFD. Non-ASCII needs the C.UTF-8 locale; without it only
 * ASCII letters change. */
static const char *change_case(const char *v, int upper, vg_arena_t *a)
{
    size_t n = strlen(v);
    char *out = vg_arena_alloc(a, 3 * n + 1), *o = out;
    if (!out) return NULL;
    pthread_once(&loc_once, loc_init);
    const unsigned char *s = (const unsigned char *)v;
    for (size_t i = 0; i < n;) {
        unsigned c;
        size_t k = utf8_dec(s + i, n - i, &c);
        if (!k) {
            c = 0xfffd;
            k = 1;
        } else if (c < 0x80) {
            c = (unsigned)(upper ? toupper((int)c) : tolower((int)c));
        } else if (utf8_loc) {
            c = (unsigned)(upper ? towupper_l((wint_t)c, utf8_loc)
                                 : towlower_l((wint_t)c, utf8_loc));
        }
        i += k;
        o += utf8_enc(c, o);
    }
    *o = '\0';
    return out;
}

/* ------------------------------------------------------------ actions */

static const char *hashmod(const vg_relabel_t *h, const rule *r, const char *v, vg_arena_t *a)
{
    tls *t = thread_state();
    if (!t || (!t->mdctx && !(t->mdctx = EVP_MD_CTX_new()))) return NULL;
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dn = 0;
    if (!EVP_DigestInit_ex2(t->mdctx, h->md5, NULL) || !EVP_DigestUpdate(t->mdctx, v, strlen(v)) ||
        !EVP_DigestFinal_ex(t->mdctx, d, &dn) || dn != 16)
        return NULL;
    uint64_t x = 0;
    for (int i = 8; i < 16; i++) x = (x << 8) | d[i]; /* bytes 8..15, big-endian */
    return vg_arena_sprintf(a, "%llu", (unsigned long long)(x % r->modulus));
}

/* Source label values joined by the separator; NULL on ENOMEM. */
static const char *join_sources(const rule *r, const lset *s, size_t *len)
{
    if (r->nsrc <= 1) {
        const char *v = r->nsrc ? ls_get(s, r->src[0]) : "";
        *len = strlen(v);
        return v;
    }
    size_t total = r->seplen * (r->nsrc - 1);
    for (size_t i = 0; i < r->nsrc; i++) total += strlen(ls_get(s, r->src[i]));
    char *out = vg_arena_alloc(s->a, total + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < r->nsrc; i++) {
        const char *v = ls_get(s, r->src[i]);
        size_t vl = strlen(v);
        if (i) {
            memcpy(o, r->sep, r->seplen);
            o += r->seplen;
        }
        memcpy(o, v, vl);
        o += vl;
    }
    *o = '\0';
    *len = total;
    return out;
}

static void do_replace(const rule *r, lset *s, const char *val, size_t len)
{
    if (!len && !r->regex_set && !r->target.has_var && !r->repl.has_var) {
        ls_set(s, r->target.raw, r->repl.raw); /* Prometheus's fast path */
        return;
    }
    match m;
    if (!re_match(r, val, len, &m)) return;
    const char *target = r->target.has_var ? expand(&r->target, val, len, &m, s->a) : r->target.raw;
    if (!target) goto nomem;
    if (!vg_label_name_valid(target, strlen(target))) return;
    const char *res = expand(&r->repl, val, len, &m, s->a);
    if (!res) goto nomem;
    ls_set(s, target, res);
    return;
nomem:
    s->failed = 1;
}

static void do_labelmap(const rule *r, lset *s)
{
    size_t n0 = s->n;
    vg_label_t *snap = vg_arena_alloc(s->a, (n0 ? n0 : 1) * sizeof *snap);
    if (!snap) {
        s->failed = 1;
        return;
    }
    memcpy(snap, s->l, n0 * sizeof *snap); /* iterate what was there before this rule */
    for (size_t i = 0; i < n0 && !s->failed; i++) {
        size_t nl = strlen(snap[i].name);
        match m;
        if (!re_match(r, snap[i].name, nl, &m)) continue;
        const char *name = expand(&r->repl, snap[i].name, nl, &m, s->a);
        if (!name)
            s->failed = 1;
        else if (vg_label_name_valid(name, strlen(name)))
            ls_set(s, name, snap[i].value);
    }
}

static void do_labelfilter(const rule *r, lset *s, int keep)
{
    size_t o = 0;
    for (size_t i = 0; i < s->n; i++) {
        match m;
        int hit = re_match(r, s->l[i].name, strlen(s->l[i].name), &m);
        if (hit == keep) s->l[o++] = s->l[i];
    }
    s->n = o;
}

/* One rule; returns 0 when the set is dropped. */
static int apply_rule(const vg_relabel_t *h, const rule *r, lset *s)
{
    size_t len = 0;
    const char *val = join_sources(r, s, &len), *v;
    match m;
    if (!val) {
        s->failed = 1;
        return 1;
    }
    switch (r->act) {
    case A_DROP: return !re_match(r, val, len, &m);
    case A_KEEP: return re_match(r, val, len, &m);
    case A_DROPEQUAL: return strcmp(ls_get(s, r->target.raw), val) != 0;
    case A_KEEPEQUAL: return strcmp(ls_get(s, r->target.raw), val) == 0;
    case A_REPLACE: do_replace(r, s, val, len); break;
    case A_LOWERCASE:
    case A_UPPERCASE:
    case A_HASHMOD:
        v = r->act == A_HASHMOD ? hashmod(h, r, val, s->a)
                                : change_case(val, r->act == A_UPPERCASE, s->a);
        if (v)
            ls_set(s, r->target.raw, v);
        else
            s->failed = 1;
        break;
    case A_LABELMAP: do_labelmap(r, s); break;
    case A_LABELDROP: do_labelfilter(r, s, 0); break;
    case A_LABELKEEP: do_labelfilter(r, s, 1); break;
    default: break;
    }
    return 1;
}

vg_relabel_result vg_relabel_apply(const vg_relabel_t *r, vg_label_t *labels, size_t *n, size_t cap,
                                   vg_arena_t *scratch)
{
    if (!r || !r->n) return VG_RELABEL_KEEP;
    lset s = {labels, *n, cap, scratch, 0};
    for (size_t i = 0; i < r->n; i++) {
        int keep = apply_rule(r, &r->rules[i], &s);
        if (s.failed) return VG_RELABEL_ERROR;
        if (!keep) return VG_RELABEL_DROP;
    }
    *n = s.n;
    return VG_RELABEL_KEEP;
}
