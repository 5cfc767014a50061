/*
 * matcher.c - PromQL label matchers (=, !=, =~, !~).
 *
 * Semantics follow Prometheus: a regex must match the whole value (it is
 * anchored at both ends, via PCRE2_ANCHORED|PCRE2_ENDANCHORED rather than by
 * wrapping the text, so "a)(b" stays an error instead of becoming a valid
 * pattern), '.' matches newlines (DOTALL), and an absent label has the value
 * "" for matching. Patterns are compiled once with PCRE2 (UTF, JIT when the
 * library has it) and then only read, so one matcher can be used from many
 * threads; the per-match scratch (pcre2_match_data) lives in a thread-local
 * slot created on first use and freed when the thread exits. Selectors in
 * real queries are mostly literals or ".*"/".+", so those skip PCRE2 at match
 * time: a literal compares strings, ".*" always matches, ".+" tests for a
 * non-empty value. Every pattern is still compiled once at construction so
 * that what is rejected never depends on which path it would take.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "vigil/labels.h"

#include <pcre2.h>
#include <pthread.h>
#include <string.h>

#include "vigil/alloc.h"

typedef enum re_kind {
    RE_PCRE,     /* general regex: run PCRE2 */
    RE_LITERAL,  /* no metacharacters: plain string equality */
    RE_ANY,      /* ".*": everything matches */
    RE_NONEMPTY, /* ".+": anything but "" */
} re_kind;

struct vg_matcher {
    vg_match_op op;
    re_kind kind;
    char *name;
    char *value;
    pcre2_code *re; /* only for RE_PCRE */
    int matches_empty;
};

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static pthread_key_t md_key;
static int md_key_ok;

static void md_destroy(void *p)
{
    pcre2_match_data_free(p);
}

static void md_key_init(void)
{
    md_key_ok = pthread_key_create(&md_key, md_destroy) == 0;
}

/* This thread's match data (one ovector pair suffices: we only ask whether
 * there is a match, and a short ovector is allowed), or NULL on ENOMEM. */
static pcre2_match_data *thread_match_data(void)
{
    pthread_once(&md_once, md_key_init);
    if (!md_key_ok) return NULL;
    pcre2_match_data *md = pthread_getspecific(md_key);
    if (md) return md;
    md = pcre2_match_data_create(1, NULL);
    if (md && pthread_setspecific(md_key, md) != 0) {
        pcre2_match_data_free(md);
        md = NULL;
    }
    return md;
}

static int has_meta(const char *s)
{
    return strpbrk(s, "\\^$.|?*+()[]{}") != NULL;
}

static re_kind classify(const char *re)
{
    if (strcmp(re, ".*") == 0) return RE_ANY;
    if (strcmp(re, ".+") == 0) return RE_NONEMPTY;
    return has_meta(re) ? RE_PCRE : RE_LITERAL;
}

static vg_err_t compile_regex(vg_matcher_t *m, vg_error *err)
{
    const uint32_t opts =
        PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOTALL | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    int code = 0;
    PCRE2_SIZE off = 0;
    m->re = pcre2_compile((PCRE2_SPTR)m->value, strlen(m->value), opts, &code, &off, NULL);
    if (!m->re) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0) strcpy((char *)msg, "unknown");
        return vg_error_set(err, VG_EINVAL,
                            "invalid regex \"%.200s\" in matcher for label \"%.100s\": %s at "
                            "offset %zu",
                            m->value, m->name, (const char *)msg, (size_t)off);
    }
    m->kind = classify(m->value);
    if (m->kind != RE_PCRE) {
        pcre2_code_free(m->re);
        m->re = NULL;
    } else {
        (void)pcre2_jit_compile(m->re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    }
    return VG_OK;
}

static int pcre_matches(const vg_matcher_t *m, const char *v)
{
    pcre2_match_data *md = thread_match_data();
    if (!md) return 0;
    size_t len = strlen(v);
    int rc = pcre2_match(m->re, (PCRE2_SPTR)v, len, 0, 0, md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) /* deep backtracking: the interpreter uses the heap */
        rc = pcre2_match(m->re, (PCRE2_SPTR)v, len, 0, PCRE2_NO_JIT, md, NULL);
    return rc >= 0;
}

static int regex_matches(const vg_matcher_t *m, const char *v)
{
    switch (m->kind) {
    case RE_ANY: return 1;
    case RE_NONEMPTY: return v[0] != '\0';
    case RE_LITERAL: return strcmp(m->value, v) == 0;
    case RE_PCRE: return pcre_matches(m, v);
    }
    return 0;
}

int vg_matcher_matches(const vg_matcher_t *m, const char *value)
{
    if (!m) return 0;
    const char *v = value ? value : "";
    switch (m->op) {
    case VG_MATCH_EQ: return strcmp(m->value, v) == 0;
    case VG_MATCH_NEQ: return strcmp(m->value, v) != 0;
    case VG_MATCH_RE: return regex_matches(m, v);
    case VG_MATCH_NRE: return !regex_matches(m, v);
    }
    return 0;
}

vg_err_t vg_matcher_new(vg_match_op op, const char *name, const char *value, vg_matcher_t **out,
                        vg_error *err)
{
    vg_err_t rc = VG_OK;
    *out = NULL;
    if (!name || !value || (int)op < (int)VG_MATCH_EQ || (int)op > (int)VG_MATCH_NRE)
        return vg_error_set(err, VG_EINVAL, "matcher needs a name, a value and a valid operator");
    vg_matcher_t *m = vg_calloc(1, sizeof(*m));
    if (!m) return vg_error_set(err, VG_ENOMEM, "out of memory creating a matcher");
    m->op = op;
    m->name = vg_strdup(name);
    m->value = vg_strdup(value);
    if (!m->name || !m->value) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory creating a matcher");
        goto fail;
    }
    if (op == VG_MATCH_RE || op == VG_MATCH_NRE) {
        rc = compile_regex(m, err);
        if (rc) goto fail;
    }
    m->matches_empty = vg_matcher_matches(m, "");
    *out = m;
    return VG_OK;
fail:
    vg_matcher_free(m);
    return rc;
}

void vg_matcher_free(vg_matcher_t *m)
{
    if (!m) return;
    pcre2_code_free(m->re);
    vg_free(m->name);
    vg_free(m->value);
    vg_free(m);
}

const char *vg_matcher_name(const vg_matcher_t *m)
{
    return m->name;
}

const char *vg_matcher_value(const vg_matcher_t *m)
{
    return m->value;
}

vg_match_op vg_matcher_op(const vg_matcher_t *m)
{
    return m->op;
}

int vg_matcher_matches_empty(const vg_matcher_t *m)
{
    return m->matches_empty;
}
