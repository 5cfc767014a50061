/*
 * promqltest.c - `vigilctl promql-test`: the upstream promqltest script
 * language, run in-process against our PromQL engine.
 *
 * Prometheus keeps its PromQL conformance suite as scripts
 * (promql/promqltest/testdata/NAME.test): `load <interval>` blocks of series
 * written in the series-description syntax (`a+bxn`, `_`, `stale`),
 * `clear`, and `eval instant at T expr` / `eval range from A to B step S
 * expr` followed by `expect ...` lines and the expected series. Running
 * those files unchanged is the cheapest way to know how close the engine
 * is to Prometheus, so this runner follows upstream's test.go rule by rule:
 * the same line grammar, the same comparison (relative tolerance 1e-6, NaN
 * equals NaN, unordered unless `expect ordered`), the same annotation
 * checks, and the same extra checks of an instant eval (the query re-run
 * as a range query around its time, and re-run with `@` pinned on every
 * selector at other evaluation times).
 *
 * Features outside our scope (native histograms, experimental functions,
 * duration expressions, fill modifiers, ...) are listed in one table
 * (skip_rules) and their evals are counted as skipped, never failed, so the
 * pass rate measures what we claim to support. Each load/clear scope gets a
 * fresh vg_tsdb_t, queried through vg_queryable_tsdb like the collector's.
 */
#include "promqltest.h"

#include "file.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "collector/promql/engine.h"
#include "collector/promql/lex.h"
#include "collector/tsdb/tsdb.h"
#include "vigil/alloc.h"
#include "vigil/arena.h"
#include "vigil/buf.h"
#include "vigil/duration.h"

#define PQT_MAX_FILE   (16u << 20)
#define PQT_MAX_LABELS 64
#define PQT_MAX_REPEAT 1000000
#define PQT_MAX_EXPECT 16
#define PQT_EPSILON    1e-6
#define PQT_STALE_BITS UINT64_C(0x7ff0000000000002)
#define PQT_MIN_NORMAL 2.2250738585072014e-308
#define PQT_TENANT     "default"

/* ---- the skip table ---------------------------------------------------
 * An eval whose query (or expected output) matches a rule is counted as
 * skipped with the rule's reason. Rules look at tokens, not bytes, so a
 * regex or label value that happens to contain "info(" does not trigger. */

typedef enum skip_kind {
    SK_FUNC,     /* a call: word followed by '(' */
    SK_WORD,     /* a word token anywhere (keyword or identifier) */
    SK_TEXT,     /* a byte substring of the query */
    SK_EXPECTED, /* a byte substring of an expected-result line */
} skip_kind;

static const struct skip_rule {
    skip_kind kind;
    const char *what;
    const char *reason;
} skip_rules[] = {
    {SK_TEXT, "{{", "native histogram literal"},
    {SK_EXPECTED, "{{", "native histogram in the expected result"},
    {SK_FUNC, "histogram_count", "native histograms"},
    {SK_FUNC, "histogram_sum", "native histograms"},
    {SK_FUNC, "histogram_avg", "native histograms"},
    {SK_FUNC, "histogram_stddev", "native histograms"},
    {SK_FUNC, "histogram_stdvar", "native histograms"},
    {SK_FUNC, "info", "info() (experimental)"},
    {SK_FUNC, "fill", "fill binop modifiers (experimental)"},
    {SK_FUNC, "fill_left", "fill binop modifiers (experimental)"},
    {SK_FUNC, "fill_right", "fill binop modifiers (experimental)"},
    {SK_WORD, "anchored", "extended range selectors (experimental)"},
    {SK_WORD, "smoothed", "extended range selectors (experimental)"},
};
/* Also skipped, by code below because they need context: start()/end() not
 * after '@' and arithmetic inside [...] or after offset (duration
 * expressions); queries naming a series that was loaded as a native
 * histogram ("series loaded as native histogram"). */

/* Functions whose value depends on the evaluation time even when their
 * arguments are pinned with '@' (upstream AtModifierUnsafeFunctions): the
 * pinned re-runs are not done for queries using them. */
static const char *const at_unsafe[] = {
    "days_in_month", "day_of_month", "day_of_week",    "day_of_year", "hour",      "minute",
    "month",         "year",         "predict_linear", "time",        "timestamp",
};

/* ---- script data ---- */

typedef struct pval {
    double v;
    int omitted;
} pval;

typedef struct vvec {
    pval *v;
    size_t n, cap;
} vvec;

typedef struct xseries { /* one expected series */
    vg_label_t *l;
    size_t nl;
    pval *v;
    size_t nv;
    int pos; /* 1-based line among the expected series, for `expect ordered` */
} xseries;

enum { X_ORDERED, X_FAIL, X_WARN, X_NOWARN, X_INFO, X_NOINFO, X__N };
static const char *const xnames[X__N] = {"ordered", "fail", "warn", "no_warn", "info", "no_info"};

typedef struct xexpect {
    const char *msg; /* exact message, or NULL */
    pcre2_code *re;  /* regex, or NULL (with msg NULL too: matches anything) */
} xexpect;

typedef struct evalcmd {
    int line;
    const char *header, *expr;
    int is_range, range_vector, exclude_range;
    int64_t start, end, step, at;
    int legacy_fail, legacy_warn, legacy_info, legacy_ordered;
    const char *fail_msg;
    pcre2_code *fail_re;
    xexpect x[X__N][PQT_MAX_EXPECT];
    size_t nx[X__N];
    int expect_scalar, has_string;
    double scalar;
    const char *string;
    xseries *exp;
    size_t nexp, capexp;
    const char *skip;
} evalcmd;

typedef struct hseries { /* labels and strings in one allocation */
    vg_label_t *l;
    size_t nl;
} hseries;

typedef struct runner {
    const char *name;
    int verbose;
    vg_tsdb_t *db;
    vg_promql_engine_t *eng;
    hseries *hist; /* series loaded as native histograms (not stored) */
    size_t nhist, caphist;
    vg_arena_t *arena;   /* per eval or load */
    vg_arena_t *scratch; /* per comparison */
    vg_pqt_counts *c;
    vg_buf why; /* the reason the current eval failed */
} runner;

/* A flat view of an instant result: one labelled value per element. */
typedef struct samp {
    const vg_label_t *l;
    size_t nl;
    double v;
} samp;

/* ---- small helpers ---- */

static int almost_equal(double a, double b)
{
    if (isnan(a) && isnan(b)) return 1;
    if (a == b) return 1;
    double sum = fabs(a) + fabs(b), diff = fabs(a - b);
    if (a == 0 || b == 0 || sum < PQT_MIN_NORMAL) return diff < PQT_EPSILON * PQT_MIN_NORMAL;
    return diff / fmin(sum, 1.7976931348623157e308) < PQT_EPSILON;
}

static double stale_nan(void)
{
    uint64_t b = PQT_STALE_BITS;
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    return s;
}

static int word_is(const char *s, const char *w)
{
    size_t n = strlen(w);
    return strncmp(s, w, n) == 0 && (s[n] == 0 || s[n] == ' ' || s[n] == '\t');
}

/* Next whitespace-delimited word of *s into the arena; NULL at the end. */
static char *next_word(vg_arena_t *a, const char **s)
{
    const char *p = skip_space(*s), *e = p;
    while (*e && *e != ' ' && *e != '\t') e++;
    *s = e;
    return e > p ? vg_arena_strndup(a, p, (size_t)(e - p)) : NULL;
}

/* Go's strconv.ParseInt(s, 0, 64) then ParseFloat, as the script's numbers. */
static int parse_number(const char *s, size_t n, double *out)
{
    char buf[128], *end;
    if (n == 0 || n >= sizeof buf) return 0;
    memcpy(buf, s, n);
    buf[n] = 0;
    if (isspace((unsigned char)buf[0])) return 0;
    errno = 0;
    long long i = strtoll(buf, &end, 0);
    if (*end == 0 && errno == 0) return *out = (double)i, 1;
    double d = strtod(buf, &end);
    if (*end != 0 || (strncasecmp(buf, "0x", 2) == 0 && strchr(buf, 'p') == NULL)) return 0;
    return *out = d, 1;
}

static vg_err_t vvec_push(vvec *vv, double v, int omitted)
{
    if (vv->n == vv->cap) {
        size_t cap = vv->cap ? vv->cap * 2 : 16;
        pval *p = vg_realloc(vv->v, cap * sizeof(*p));
        if (!p) return VG_ENOMEM;
        vv->v = p, vv->cap = cap;
    }
    vv->v[vv->n++] = (pval){v, omitted};
    return VG_OK;
}

/* ---- series descriptions: name{a="b", ...} v1 v2 ... ---- */

/* Pointer just past the quoted literal starting at s, or NULL. */
static const char *scan_quoted(const char *s)
{
    char q = *s++;
    for (; *s && *s != q; s++)
        if (*s == '\\' && q != '`' && s[1]) s++;
    return *s == q ? s + 1 : NULL;
}

static int is_name_char(char c, int first, int metric)
{
    if (isalpha((unsigned char)c) || c == '_' || (metric && c == ':')) return 1;
    return !first && isdigit((unsigned char)c);
}

/* A label name or value token at *s: an identifier or a quoted string. */
static const char *read_name_or_string(vg_arena_t *a, const char **s, int *quoted)
{
    const char *p = skip_space(*s), *e = p;
    *quoted = *p == '"' || *p == '\'' || *p == '`';
    if (*quoted) {
        if (!(e = scan_quoted(p))) return NULL;
        char *out = vg_arena_alloc(a, (size_t)(e - p) + 1);
        size_t n;
        if (!out || vg_lex_unquote(p, (size_t)(e - p), out, &n) != VG_OK) return NULL;
        *s = e;
        return out;
    }
    while (is_name_char(*e, e == p, 0)) e++;
    *s = e;
    return e > p ? vg_arena_strndup(a, p, (size_t)(e - p)) : NULL;
}

/* The {...} part: name="value" pairs, or a lone string (the metric name). */
static vg_err_t parse_braces(vg_arena_t *a, const char **s, vg_label_t *l, size_t *nl,
                             vg_error *err)
{
    const char *p = *s + 1;
    for (;;) {
        p = skip_space(p);
        if (*p == '}') break;
        int quoted;
        const char *name = read_name_or_string(a, &p, &quoted), *value;
        if (!name) return vg_error_set(err, VG_EPARSE, "bad label name near \"%.20s\"", p);
        p = skip_space(p);
        if (quoted && (*p == ',' || *p == '}')) {
            value = name, name = VG_METRIC_NAME;
        } else {
            if (*p != '=') return vg_error_set(err, VG_EPARSE, "expected '=' near \"%.20s\"", p);
            p++;
            if (!(value = read_name_or_string(a, &p, &quoted)) || !quoted)
                return vg_error_set(err, VG_EPARSE, "expected a quoted label value");
        }
        if (*nl >= PQT_MAX_LABELS) return vg_error_set(err, VG_ETOOLARGE, "too many labels");
        if (*value) l[(*nl)++] = (vg_label_t){name, value}; /* empty value = no label */
        p = skip_space(p);
        if (*p == ',')
            p++;
        else if (*p != '}')
            return vg_error_set(err, VG_EPARSE, "expected ',' or '}'");
    }
    *s = p + 1;
    return VG_OK;
}

/* Metric name and labels at the start of s; *s moves past them. */
static vg_err_t parse_metric(vg_arena_t *a, const char **s, vg_label_t **out, size_t *nout,
                             vg_error *err)
{
    vg_label_t l[PQT_MAX_LABELS];
    size_t nl = 0;
    const char *p = skip_space(*s), *e = p;
    while (is_name_char(*e, e == p, 1)) e++;
    if (e > p) l[nl++] = (vg_label_t){VG_METRIC_NAME, vg_arena_strndup(a, p, (size_t)(e - p))};
    p = e;
    if (*p == '{') {
        vg_err_t rc = parse_braces(a, &p, l, &nl, err);
        if (rc) return rc;
    } else if (e == *s) {
        return vg_error_set(err, VG_EPARSE, "expected a metric name or '{'");
    }
    vg_labels_sort(l, nl);
    *out = vg_arena_alloc(a, (nl ? nl : 1) * sizeof(**out));
    if (!*out) return VG_ENOMEM;
    memcpy(*out, l, nl * sizeof(*l));
    *nout = nl;
    *s = p;
    return VG_OK;
}

/* Split "BODYxN" into body length and N; 0 when there is no repeat. */
static int split_repeat(const char *t, size_t n, size_t *body, unsigned long *rep)
{
    size_t i = n;
    while (i > 0 && isdigit((unsigned char)t[i - 1])) i--;
    if (i == n || i < 2 || t[i - 1] != 'x') return 0;
    char digits[24];
    if (n - i >= sizeof digits) return 0;
    memcpy(digits, t + i, n - i);
    digits[n - i] = 0;
    *rep = strtoul(digits, NULL, 10);
    *body = i - 1;
    return 1;
}

/* Where "a+b" / "a-b" splits (the sign's index), or 0 when it does not. */
static size_t split_step(const char *t, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if ((t[i] == '+' || t[i] == '-') && t[i - 1] != 'e' && t[i - 1] != 'E') return i;
    return 0;
}

/* One value item: _  _xN  stale  v  vxN  a+bxN  a-bxN. */
static vg_err_t parse_item(const char *t, size_t n, vvec *vv, vg_error *err)
{
    size_t body = n, cut;
    unsigned long rep = 0;
    int has_rep = split_repeat(t, n, &body, &rep);
    double a, b;
    vg_err_t rc = VG_OK;
    if (rep > PQT_MAX_REPEAT) return vg_error_set(err, VG_ETOOLARGE, "repeat count too large");
    if (body == 1 && t[0] == '_') {
        for (unsigned long i = 0; i < (has_rep ? rep : 1) && !rc; i++) rc = vvec_push(vv, 0, 1);
        return rc;
    }
    if (body == 5 && strncmp(t, "stale", 5) == 0) {
        for (unsigned long i = 0; i <= rep && !rc; i++) rc = vvec_push(vv, stale_nan(), 0);
        return rc;
    }
    if ((cut = split_step(t, body)) && has_rep && parse_number(t, cut, &a) &&
        parse_number(t + cut + 1, body - cut - 1, &b)) {
        if (t[cut] == '-') b = -b;
        for (unsigned long i = 0; i <= rep && !rc; i++, a += b) rc = vvec_push(vv, a, 0);
        return rc;
    }
    if (!parse_number(t, body, &a))
        return vg_error_set(err, VG_EPARSE, "bad value \"%.*s\"", (int)n, t);
    for (unsigned long i = 0; i <= (has_rep ? rep : 0) && !rc; i++) rc = vvec_push(vv, a, 0);
    return rc;
}

/* Parse a whole series line. *hist is set when its values hold a native
 * histogram ({{...}}); the values are then not parsed. */
static vg_err_t parse_series(vg_arena_t *a, const char *line, vg_label_t **l, size_t *nl, vvec *vv,
                             int *hist, vg_error *err)
{
    const char *p = line;
    vg_err_t rc = parse_metric(a, &p, l, nl, err);
    *hist = 0;
    if (rc) return rc;
    if (strstr(p, "{{")) return *hist = 1, VG_OK;
    while (!rc) {
        p = skip_space(p);
        if (!*p) break;
        const char *e = p;
        while (*e && *e != ' ' && *e != '\t') e++;
        rc = parse_item(p, (size_t)(e - p), vv, err);
        p = e;
    }
    return rc;
}

/* ---- storage scope ---- */

static void hist_clear(runner *r)
{
    for (size_t i = 0; i < r->nhist; i++) vg_free(r->hist[i].l);
    r->nhist = 0;
}

/* Remember a label set (deep copy) as a native-histogram series. */
static vg_err_t hist_add(runner *r, const vg_label_t *l, size_t nl)
{
    size_t bytes = nl * sizeof(*l);
    for (size_t i = 0; i < nl; i++) bytes += strlen(l[i].name) + strlen(l[i].value) + 2;
    if (r->nhist == r->caphist) {
        size_t cap = r->caphist ? r->caphist * 2 : 16;
        hseries *p = vg_realloc(r->hist, cap * sizeof(*p));
        if (!p) return VG_ENOMEM;
        r->hist = p, r->caphist = cap;
    }
    vg_label_t *c = vg_malloc(bytes ? bytes : 1);
    if (!c) return VG_ENOMEM;
    char *str = (char *)(c + nl);
    for (size_t i = 0; i < nl; i++) {
        c[i].name = strcpy(str, l[i].name), str += strlen(str) + 1;
        c[i].value = strcpy(str, l[i].value), str += strlen(str) + 1;
    }
    r->hist[r->nhist++] = (hseries){c, nl};
    return VG_OK;
}

static int hist_has_name(const runner *r, const char *name, size_t n)
{
    for (size_t i = 0; i < r->nhist; i++) {
        const char *h = vg_labels_get(r->hist[i].l, r->hist[i].nl, VG_METRIC_NAME);
        if (h && strlen(h) == n && strncmp(h, name, n) == 0) return 1;
    }
    return 0;
}

static vg_err_t reset_storage(runner *r)
{
    vg_tsdb_free(r->db);
    hist_clear(r);
    r->db = vg_tsdb_new(NULL);
    return r->db ? VG_OK : VG_ENOMEM;
}

/* ---- reporting ---- */

static void fmt_labels(vg_buf *b, const vg_label_t *l, size_t n)
{
    if (n == 0)
        vg_buf_puts(b, "{}");
    else
        vg_labels_format(l, n, b);
}

static void report(runner *r, const evalcmd *ev, const char *verdict)
{
    if (!r->verbose) return;
    printf("%s:%d: %s: %s\n", r->name, ev->line, verdict, ev->header);
    if (r->why.len) printf("    %s\n", r->why.data);
}

static void fail_load(runner *r, int line, const char *msg)
{
    r->c->failed++;
    if (r->verbose) printf("%s:%d: FAIL: %s\n", r->name, line, msg);
}

/* ---- load ---- */

/* Classic histogram series of a load_with_nhcb also exist as a native
 * histogram under the base name without `le`: record it so evals on it skip. */
static vg_err_t note_nhcb(runner *r, vg_arena_t *a, const vg_label_t *l, size_t nl)
{
    static const char *const suf[] = {"_bucket", "_count", "_sum"};
    vg_label_t c[PQT_MAX_LABELS];
    size_t nc = 0;
    const char *name = vg_labels_get(l, nl, VG_METRIC_NAME);
    size_t n = name ? strlen(name) : 0, k = 0, i = 0;
    for (; i < 3 && !k; i++)
        if (n > strlen(suf[i]) && strcmp(name + n - strlen(suf[i]), suf[i]) == 0)
            k = strlen(suf[i]);
    if (!k) return VG_OK;
    for (i = 0; i < nl; i++)
        if (strcmp(l[i].name, "le") != 0) c[nc++] = l[i];
    for (i = 0; i < nc; i++)
        if (strcmp(c[i].name, VG_METRIC_NAME) == 0) c[i].value = vg_arena_strndup(a, name, n - k);
    return hist_add(r, c, nc);
}

static vg_err_t load_line(runner *r, const char *line, int64_t gap, int nhcb, vg_error *err)
{
    vg_label_t *l;
    size_t nl;
    vvec vv = {0};
    int hist;
    vg_err_t rc = parse_series(r->arena, line, &l, &nl, &vv, &hist, err);
    if (!rc && hist)
        rc = hist_add(r, l, nl);
    else if (!rc && nhcb)
        rc = note_nhcb(r, r->arena, l, nl);
    for (size_t i = 0; !rc && !hist && i < vv.n; i++)
        if (!vv.v[i].omitted)
            rc = vg_tsdb_append(r->db, PQT_TENANT, l, nl, (int64_t)i * gap, vv.v[i].v, NULL, err);
    vg_free(vv.v);
    return rc;
}

/* Upstream keeps a load's series in a map, so a label set defined again
 * later in the same block replaces the earlier line: is line i redefined? */
static int redefined_later(runner *r, char **lines, size_t i, size_t end)
{
    vg_label_t *a, *b;
    size_t na, nb;
    const char *p = lines[i];
    int found = 0;
    vg_arena_reset(r->scratch);
    if (parse_metric(r->scratch, &p, &a, &na, NULL)) return 0;
    for (size_t j = i + 1; j < end && !found; j++) {
        p = lines[j];
        found = parse_metric(r->scratch, &p, &b, &nb, NULL) == VG_OK &&
                vg_labels_cmp(a, na, b, nb) == 0;
    }
    return found;
}

static size_t do_load(runner *r, char **lines, size_t n, size_t i)
{
    const char *p = lines[i] + 4;
    int nhcb = strncmp(p, "_with_nhcb", 10) == 0;
    int64_t gap = 0;
    vg_error err = {0};
    vg_arena_reset(r->arena);
    char *d = next_word(r->arena, &(const char *){p + (nhcb ? 10 : 0)});
    if (!d || vg_duration_parse(d, &gap, &err) != VG_OK) {
        fail_load(r, (int)i + 1, "invalid load command. (load[_with_nhcb] <step:duration>)");
        d = NULL;
    }
    size_t end = i + 1;
    while (end < n && lines[end][0]) end++;
    for (i++; d && i < end; i++) {
        if (redefined_later(r, lines, i, end)) continue;
        vg_err_t rc = load_line(r, lines[i], gap, nhcb, &err);
        if (rc) fail_load(r, (int)i + 1, vg_error_msg(&err, rc));
    }
    return end;
}

/* ---- eval: parsing ---- */

static vg_err_t parse_time(const char *s, int64_t *ms, vg_error *err)
{
    if (!s) return vg_error_set(err, VG_EPARSE, "missing time");
    return vg_duration_parse(s, ms, err);
}

/* "eval[_mod] instant [at T] EXPR" or "eval[_mod] range from A to B step S EXPR". */
static vg_err_t parse_eval_header(vg_arena_t *a, const char *line, evalcmd *ev, vg_error *err)
{
    const char *p = line + 4;
    if (*p == '_') {
        const char *m = next_word(a, &(const char *){p + 1});
        ev->legacy_fail = m && strncmp(m, "fail", 4) == 0;
        ev->legacy_warn = m && strncmp(m, "warn", 4) == 0;
        ev->legacy_info = m && strncmp(m, "info", 4) == 0;
        ev->legacy_ordered = m && strncmp(m, "ordered", 7) == 0;
        while (*p && *p != ' ' && *p != '\t') p++;
    }
    char *kind = next_word(a, &p);
    vg_err_t rc = VG_OK;
    if (kind && strcmp(kind, "instant") == 0) {
        p = skip_space(p);
        if (word_is(p, "at")) {
            p += 2;
            rc = parse_time(next_word(a, &p), &ev->at, err);
        }
        ev->start = ev->end = ev->at;
    } else if (kind && strcmp(kind, "range") == 0) {
        ev->is_range = 1;
        char *w1 = next_word(a, &p), *from = next_word(a, &p), *w2 = next_word(a, &p),
             *to = next_word(a, &p), *w3 = next_word(a, &p), *step = next_word(a, &p);
        if (!w3 || strcmp(w1, "from") || strcmp(w2, "to") || strcmp(w3, "step"))
            return vg_error_set(err, VG_EPARSE, "invalid evaluation command");
        rc = parse_time(from, &ev->start, err);
        if (!rc) rc = parse_time(to, &ev->end, err);
        if (!rc) rc = parse_time(step, &ev->step, err);
        if (!rc && ev->end < ev->start)
            rc = vg_error_set(err, VG_EPARSE, "end timestamp is before start timestamp");
    } else {
        return vg_error_set(err, VG_EPARSE, "invalid evaluation command");
    }
    ev->expr = skip_space(p);
    if (!rc && !*ev->expr) rc = vg_error_set(err, VG_EPARSE, "missing query");
    return rc;
}

static vg_err_t compile_re(const char *pat, pcre2_code **out, vg_error *err)
{
    int ec;
    PCRE2_SIZE off;
    *out = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &off, NULL);
    return *out ? VG_OK : vg_error_set(err, VG_EPARSE, "invalid regex %s", pat);
}

static int re_match(pcre2_code *re, const char *s)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) return 0;
    int rc = pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

static void eval_free(evalcmd *ev)
{
    pcre2_code_free(ev->fail_re);
    for (int t = 0; t < X__N; t++)
        for (size_t i = 0; i < ev->nx[t]; i++) pcre2_code_free(ev->x[t][i].re);
}

/* expect <type> [msg|regex: text] */
static vg_err_t parse_expect(vg_arena_t *a, const char *line, evalcmd *ev, vg_error *err)
{
    const char *p = line + 6;
    char *type = next_word(a, &p);
    int t = 0;
    while (t < X__N && (!type || strcmp(type, xnames[t]) != 0)) t++;
    if (t == X__N) return vg_error_set(err, VG_EPARSE, "invalid expect statement");
    if (ev->nx[t] >= PQT_MAX_EXPECT) return vg_error_set(err, VG_ETOOLARGE, "too many expects");
    xexpect *x = &ev->x[t][ev->nx[t]];
    *x = (xexpect){0};
    p = skip_space(p);
    vg_err_t rc = VG_OK;
    if (strncmp(p, "msg:", 4) == 0 && p[4]) {
        x->msg = vg_arena_strdup(a, skip_space(p + 4));
    } else if (strncmp(p, "regex:", 6) == 0 && p[6]) {
        rc = compile_re(skip_space(p + 6), &x->re, err);
    } else if (*p) {
        return vg_error_set(err, VG_EPARSE, "invalid expect statement");
    }
    if (!rc) ev->nx[t]++;
    if (!rc && ev->nx[X_FAIL] > 1) rc = vg_error_set(err, VG_EPARSE, "multiple expect fail lines");
    return rc;
}

static vg_err_t parse_range_vector(vg_arena_t *a, const char *line, evalcmd *ev, vg_error *err)
{
    const char *p = line + strlen("expect range vector");
    char *w1 = next_word(a, &p), *from = next_word(a, &p), *w2 = next_word(a, &p),
         *to = next_word(a, &p), *w3 = next_word(a, &p), *step = next_word(a, &p);
    if (!step || strcmp(w1, "from") || strcmp(w2, "to") || strcmp(w3, "step"))
        return vg_error_set(err, VG_EPARSE, "invalid range vector definition");
    vg_err_t rc = parse_time(from, &ev->start, err);
    if (!rc) rc = parse_time(to, &ev->end, err);
    if (!rc) rc = parse_time(step, &ev->step, err);
    ev->at = ev->end;
    ev->range_vector = ev->exclude_range = 1;
    return rc;
}

static vg_err_t parse_expect_string(vg_arena_t *a, const char *line, evalcmd *ev, vg_error *err)
{
    const char *p = skip_space(line + strlen("expect string"));
    size_t n = strlen(p), outn;
    char *out = vg_arena_alloc(a, n + 1);
    if (!out) return VG_ENOMEM;
    if (!n || vg_lex_unquote(p, n, out, &outn) != VG_OK)
        return vg_error_set(err, VG_EPARSE, "expected string literal not valid");
    ev->string = out;
    ev->has_string = ev->exclude_range = 1;
    return VG_OK;
}

static vg_err_t add_expected(vg_arena_t *a, evalcmd *ev, const char *line, int pos, vg_error *err)
{
    vg_label_t *l;
    size_t nl;
    vvec vv = {0};
    int hist;
    vg_err_t rc = parse_series(a, line, &l, &nl, &vv, &hist, err);
    if (!rc && !hist && vv.n > 1 && !ev->is_range && !ev->range_vector)
        rc = vg_error_set(err, VG_EPARSE, "expecting multiple values in instant evaluation");
    if (!rc && !hist && vv.n == 0) rc = vg_error_set(err, VG_EPARSE, "expected values");
    if (!rc && ev->nexp == ev->capexp) {
        size_t cap = ev->capexp ? ev->capexp * 2 : 16;
        xseries *x = vg_arena_alloc(a, cap * sizeof(*x));
        if (!x)
            rc = VG_ENOMEM;
        else if (ev->nexp)
            memcpy(x, ev->exp, ev->nexp * sizeof(*x));
        if (x) ev->exp = x, ev->capexp = cap;
    }
    pval *v = rc || hist ? NULL : vg_arena_alloc(a, vv.n * sizeof(*v));
    if (!rc && !hist && !v) rc = VG_ENOMEM;
    if (!rc && !hist) {
        memcpy(v, vv.v, vv.n * sizeof(*v));
        size_t k = 0; /* a repeated label set replaces the earlier line, as a map would */
        while (k < ev->nexp && vg_labels_cmp(ev->exp[k].l, ev->exp[k].nl, l, nl) != 0) k++;
        ev->exp[k] = (xseries){l, nl, v, vv.n, pos};
        if (k == ev->nexp) ev->nexp++;
    }
    ev->expect_scalar = 0;
    vg_free(vv.v);
    return rc;
}

/* One line of an eval's body; *stop when upstream stops reading the body. */
static vg_err_t parse_eval_line(vg_arena_t *a, const char *line, evalcmd *ev, int *pos, int *stop,
                                vg_error *err)
{
    double v;
    if (ev->legacy_fail && strncmp(line, "expected_fail_message", 21) == 0) {
        ev->fail_msg = vg_arena_strdup(a, skip_space(line + 21));
        return *stop = 1, VG_OK;
    }
    if (ev->legacy_fail && strncmp(line, "expected_fail_regexp", 20) == 0) {
        *stop = 1;
        return compile_re(skip_space(line + 20), &ev->fail_re, err);
    }
    if (strncmp(line, "expect range vector", 19) == 0) return parse_range_vector(a, line, ev, err);
    if (strncmp(line, "expect string", 13) == 0) return parse_expect_string(a, line, ev, err);
    if (word_is(line, "expect")) return parse_expect(a, line, ev, err);
    if (parse_number(line, strlen(line), &v)) {
        ev->expect_scalar = 1, ev->scalar = v;
        return *stop = 1, VG_OK;
    }
    return add_expected(a, ev, line, (*pos)++, err);
}

/* ---- walking the syntax tree ---- */

typedef int (*visit_fn)(vg_pq_node *n, void *ud);

/* Call fn on each direct child of n; stops at and returns the first non-zero. */
static int each_child(vg_pq_node *n, visit_fn fn, void *ud)
{
    int rc = 0;
    switch (n->kind) {
    case VG_PQ_PAREN:
    case VG_PQ_UNARY:
    case VG_PQ_STEP_INVARIANT: return n->u.unary.expr ? fn(n->u.unary.expr, ud) : 0;
    case VG_PQ_SUBQUERY: return n->u.sub.expr ? fn(n->u.sub.expr, ud) : 0;
    case VG_PQ_BINARY:
        if (n->u.bin.lhs) rc = fn(n->u.bin.lhs, ud);
        return rc || !n->u.bin.rhs ? rc : fn(n->u.bin.rhs, ud);
    case VG_PQ_AGGREGATE:
        if (n->u.agg.param) rc = fn(n->u.agg.param, ud);
        return rc || !n->u.agg.expr ? rc : fn(n->u.agg.expr, ud);
    case VG_PQ_CALL:
        for (size_t i = 0; i < n->u.call.nargs && !rc; i++) rc = fn(n->u.call.args[i], ud);
        return rc;
    default: return 0;
    }
}

/* Does any selector under n select a series loaded as a native histogram? */
static int touches_hist(vg_pq_node *n, void *ud)
{
    const runner *r = ud;
    if (n->kind != VG_PQ_VECTOR_SEL && n->kind != VG_PQ_MATRIX_SEL)
        return each_child(n, touches_hist, ud);
    for (size_t h = 0; h < r->nhist; h++) {
        size_t i = 0;
        for (; i < n->u.sel.nmatchers; i++) {
            const vg_matcher_t *m = n->u.sel.matchers[i];
            if (!vg_matcher_matches(m,
                                    vg_labels_get(r->hist[h].l, r->hist[h].nl, vg_matcher_name(m))))
                break;
        }
        if (i == n->u.sel.nmatchers) return 1;
    }
    return 0;
}

/* 1 when the query selects a histogram series, 0 when not, -1 when our
 * parser cannot tell (the caller then goes by metric names). */
static int selects_hist(runner *r, const char *q)
{
    vg_promql_expr_t *e = NULL;
    if (!r->nhist) return 0;
    if (vg_promql_parse(q, strlen(q), &e, NULL) != VG_OK || !e || !e->root) {
        vg_promql_expr_free(e);
        return -1;
    }
    int hit = touches_hist(e->root, r);
    vg_promql_expr_free(e);
    return hit;
}

/* ---- eval: skip rules ---- */

static int tok_is(const char *q, const vg_tok *t, const char *w)
{
    return t->len == strlen(w) && strncmp(q + t->pos, w, t->len) == 0;
}

static int is_word(const vg_tok *t)
{
    return t->type == VG_TOK_IDENT || t->type == VG_TOK_METRIC_IDENT || t->type == VG_TOK_KEYWORD ||
           t->type == VG_TOK_AGGR || t->type == VG_TOK_OP_WORD;
}

/* The reason of the first rule of this kind whose text occurs in s, or NULL. */
static const char *skip_text(skip_kind kind, const char *s)
{
    for (size_t i = 0; i < sizeof(skip_rules) / sizeof(*skip_rules); i++)
        if (skip_rules[i].kind == kind && strstr(s, skip_rules[i].what))
            return skip_rules[i].reason;
    return NULL;
}

/* The reason to skip for the token pair (prev, t, next), or NULL. */
static const char *skip_token(const runner *r, const char *q, const vg_tok *prev, const vg_tok *t,
                              const vg_tok *next, int in_brackets, int by_name)
{
    for (size_t i = 0; i < sizeof(skip_rules) / sizeof(*skip_rules); i++) {
        const struct skip_rule *s = &skip_rules[i];
        if ((s->kind == SK_FUNC && is_word(t) && next->type == VG_TOK_LPAREN &&
             tok_is(q, t, s->what)) ||
            (s->kind == SK_WORD && is_word(t) && tok_is(q, t, s->what)))
            return s->reason;
    }
    if (is_word(t) && next->type == VG_TOK_LPAREN && prev->type != VG_TOK_AT &&
        (tok_is(q, t, "start") || tok_is(q, t, "end")))
        return "duration expressions (experimental)";
    if (in_brackets && t->type != VG_TOK_DURATION && t->type != VG_TOK_NUMBER &&
        t->type != VG_TOK_COLON && t->type != VG_TOK_RBRACKET)
        return "duration arithmetic (experimental)";
    if (prev->type == VG_TOK_KEYWORD && tok_is(q, prev, "offset") && t->type == VG_TOK_LPAREN)
        return "duration arithmetic (experimental)";
    if (by_name && (t->type == VG_TOK_IDENT || t->type == VG_TOK_METRIC_IDENT))
        if (hist_has_name(r, q + t->pos, t->len)) return "series loaded as native histogram";
    return NULL;
}

/* Names in {"name"} / {__name__="name"} refer to histogram series too. */
static const char *skip_string(const runner *r, const char *q, const vg_tok *t)
{
    char buf[256];
    size_t n;
    if (t->len >= sizeof buf || vg_lex_unquote(q + t->pos, t->len, buf, &n) != VG_OK) return NULL;
    return hist_has_name(r, buf, n) ? "series loaded as native histogram" : NULL;
}

static const char *skip_reason(runner *r, const char *q)
{
    vg_lexer lx;
    vg_tok prev = {VG_TOK_EOF, 0, 0}, t, next;
    const char *why = NULL;
    int in_brackets = 0;
    if ((why = skip_text(SK_TEXT, q))) return why;
    int by_name = selects_hist(r, q);
    if (by_name == 1) return "selects a series loaded as native histogram";
    vg_lex_init(&lx, q, strlen(q));
    vg_lex_next(&lx, &t);
    while (!why && t.type != VG_TOK_EOF && t.type != VG_TOK_ERROR) {
        vg_lex_next(&lx, &next);
        why = skip_token(r, q, &prev, &t, &next, in_brackets, by_name);
        if (!why && by_name && t.type == VG_TOK_STRING) why = skip_string(r, q, &t);
        if (t.type == VG_TOK_LBRACKET) in_brackets = 1;
        if (t.type == VG_TOK_RBRACKET) in_brackets = 0;
        prev = t, t = next;
    }
    return why;
}

static int has_context_func(const char *q)
{
    static const char *const f[] = {"start()", "end()", "range()", "step()"};
    for (size_t i = 0; i < 4; i++)
        if (strstr(q, f[i])) return 1;
    return 0;
}

/* ---- eval: checking ---- */

static int xmatch(const xexpect *x, const char *s)
{
    if (x->msg) return strcmp(x->msg, s) == 0;
    return x->re ? re_match(x->re, s) : 1;
}

static int is_fail(const evalcmd *ev)
{
    return ev->legacy_fail || ev->nx[X_FAIL] > 0;
}

static int is_ordered(const evalcmd *ev)
{
    return ev->legacy_ordered || ev->nx[X_ORDERED] > 0;
}

/* The query failed with msg: 1 when that was expected (and matches). */
static int check_failure(runner *r, const evalcmd *ev, const char *msg)
{
    if (!is_fail(ev)) {
        vg_buf_printf(&r->why, "error evaluating query: %s", msg);
        return 0;
    }
    if ((ev->fail_msg && strcmp(ev->fail_msg, msg) != 0) ||
        (ev->fail_re && !re_match(ev->fail_re, msg)) ||
        (ev->nx[X_FAIL] && !xmatch(&ev->x[X_FAIL][0], msg))) {
        vg_buf_printf(&r->why, "expected a different error, got: %s", msg);
        return 0;
    }
    return 1;
}

static int check_anno_type(runner *r, const evalcmd *ev, int t, const char *const *got, size_t n)
{
    for (size_t i = 0; i < ev->nx[t]; i++) {
        size_t j = 0;
        while (j < n && !xmatch(&ev->x[t][i], got[j])) j++;
        if (j == n) {
            vg_buf_printf(&r->why, "expected a %s annotation matching %s, got %zu", xnames[t],
                          ev->x[t][i].msg ? ev->x[t][i].msg : "(pattern)", n);
            return 0;
        }
    }
    for (size_t j = 0; ev->nx[t] && j < n; j++) {
        size_t i = 0;
        while (i < ev->nx[t] && !xmatch(&ev->x[t][i], got[j])) i++;
        if (i == ev->nx[t]) {
            vg_buf_printf(&r->why, "unexpected %s annotation: %s", xnames[t], got[j]);
            return 0;
        }
    }
    return 1;
}

static int check_annotations(runner *r, const evalcmd *ev, const vg_promql_result *res)
{
    if ((ev->legacy_warn && !res->nwarnings) || (ev->legacy_info && !res->ninfos)) {
        vg_buf_printf(&r->why, "expected %s annotations but got none",
                      ev->legacy_warn ? "warning" : "info");
        return 0;
    }
    if (!check_anno_type(r, ev, X_WARN, res->warnings, res->nwarnings) ||
        !check_anno_type(r, ev, X_INFO, res->infos, res->ninfos))
        return 0;
    if ((ev->nx[X_NOWARN] && res->nwarnings) || (ev->nx[X_NOINFO] && res->ninfos)) {
        vg_buf_printf(&r->why, "unexpected %s annotation: %s",
                      ev->nx[X_NOWARN] && res->nwarnings ? "warning" : "info",
                      ev->nx[X_NOWARN] && res->nwarnings ? res->warnings[0] : res->infos[0]);
        return 0;
    }
    return 1;
}

static const xseries *find_expected(const evalcmd *ev, const vg_label_t *l, size_t nl)
{
    for (size_t i = 0; i < ev->nexp; i++)
        if (vg_labels_cmp(ev->exp[i].l, ev->exp[i].nl, l, nl) == 0) return &ev->exp[i];
    return NULL;
}

static int unexpected(runner *r, const vg_label_t *l, size_t nl, const char *what)
{
    vg_buf_puts(&r->why, what);
    fmt_labels(&r->why, l, nl);
    return 0;
}

/* Every expected series was seen (seen[] is indexed like ev->exp). */
static int all_seen(runner *r, const evalcmd *ev, const char *seen)
{
    for (size_t i = 0; i < ev->nexp; i++)
        if (!seen[i])
            return unexpected(r, ev->exp[i].l, ev->exp[i].nl, "expected series missing: ");
    return 1;
}

static int compare_vector(runner *r, const evalcmd *ev, const samp *s, size_t n, int ordered)
{
    char *seen = vg_arena_calloc(r->arena, ev->nexp + 1);
    if (!seen) return 0;
    if (ev->expect_scalar) return vg_buf_puts(&r->why, "expected a scalar, got a vector"), 0;
    for (size_t i = 0; i < n; i++) {
        const xseries *x = find_expected(ev, s[i].l, s[i].nl);
        if (!x) return unexpected(r, s[i].l, s[i].nl, "unexpected series in result: ");
        if (ordered && x->pos != (int)i + 1) {
            vg_buf_printf(&r->why, "series at position %zu, expected at %d: ", i + 1, x->pos);
            return unexpected(r, s[i].l, s[i].nl, "");
        }
        if (!almost_equal(x->v[0].v, s[i].v)) {
            vg_buf_printf(&r->why, "expected %.17g, got %.17g for ", x->v[0].v, s[i].v);
            return unexpected(r, s[i].l, s[i].nl, "");
        }
        seen[x - ev->exp] = 1;
    }
    return all_seen(r, ev, seen);
}

static int compare_points(runner *r, const evalcmd *ev, const xseries *x, const vg_promql_series *s)
{
    size_t k = 0;
    for (size_t i = 0; i < x->nv; i++) {
        int64_t t = ev->start + (int64_t)i * ev->step;
        if (t > ev->end) return vg_buf_puts(&r->why, "more expected points than steps"), 0;
        if (x->v[i].omitted) continue;
        if (k >= s->n || s->ts[k] != t || !almost_equal(x->v[i].v, s->v[k])) {
            vg_buf_printf(&r->why, "point at t=%lld: expected %.17g, got %s for ", (long long)t,
                          x->v[i].v, k < s->n && s->ts[k] == t ? "another value" : "no point");
            return unexpected(r, s->labels, s->nlabels, "");
        }
        k++;
    }
    if (k != s->n) return unexpected(r, s->labels, s->nlabels, "more points than expected for ");
    return 1;
}

static int compare_matrix(runner *r, const evalcmd *ev, const vg_promql_result *res)
{
    if (is_ordered(ev)) return vg_buf_puts(&r->why, "expected ordered result, got a matrix"), 0;
    if (ev->expect_scalar) return vg_buf_puts(&r->why, "expected a scalar, got a matrix"), 0;
    char *seen = vg_arena_calloc(r->arena, ev->nexp + 1);
    if (!seen) return 0;
    for (size_t i = 0; i < res->nseries; i++) {
        const vg_promql_series *s = &res->series[i];
        if (i && vg_labels_cmp(res->series[i - 1].labels, res->series[i - 1].nlabels, s->labels,
                               s->nlabels) > 0)
            return unexpected(r, s->labels, s->nlabels, "matrix not sorted by labels at ");
        const xseries *x = find_expected(ev, s->labels, s->nlabels);
        if (!x) return unexpected(r, s->labels, s->nlabels, "unexpected series in result: ");
        if (!compare_points(r, ev, x, s)) return 0;
        seen[x - ev->exp] = 1;
    }
    return all_seen(r, ev, seen);
}

static int compare_scalar(runner *r, const evalcmd *ev, double v)
{
    if (!ev->expect_scalar)
        return vg_buf_puts(&r->why, "expected a vector or matrix, got a scalar"), 0;
    if (almost_equal(ev->scalar, v)) return 1;
    vg_buf_printf(&r->why, "expected scalar %.17g, got %.17g", ev->scalar, v);
    return 0;
}

static int compare_result(runner *r, const evalcmd *ev, const vg_promql_result *res)
{
    switch (res->type) {
    case VG_PROMQL_RES_MATRIX: return compare_matrix(r, ev, res);
    case VG_PROMQL_RES_SCALAR: return compare_scalar(r, ev, res->scalar);
    case VG_PROMQL_RES_STRING:
        if (ev->has_string && res->string && strcmp(ev->string, res->string) == 0) return 1;
        vg_buf_printf(&r->why, "expected string \"%s\", got \"%s\"", ev->string ? ev->string : "",
                      res->string ? res->string : "");
        return 0;
    case VG_PROMQL_RES_VECTOR: break;
    }
    samp *s = vg_arena_alloc(r->arena, (res->nseries + 1) * sizeof(*s));
    if (!s) return 0;
    for (size_t i = 0; i < res->nseries; i++)
        s[i] = (samp){res->series[i].labels, res->series[i].nlabels,
                      res->series[i].n ? res->series[i].v[0] : NAN};
    return compare_vector(r, ev, s, res->nseries, is_ordered(ev));
}

/* ---- eval: running ---- */

static vg_queryable queryable(runner *r, vg_tsdb_queryable *tq)
{
    *tq = (vg_tsdb_queryable){r->db, PQT_TENANT};
    return vg_queryable_tsdb(tq);
}

/* Run the query once (instant at t, or the eval's range) and check it. */
static int run_checked(runner *r, const evalcmd *ev, const char *q, int64_t t,
                       vg_promql_result **out)
{
    vg_tsdb_queryable tq;
    vg_error err = {0};
    vg_err_t rc = ev->is_range ? vg_promql_range(r->eng, queryable(r, &tq), q, ev->start, ev->end,
                                                 ev->step, out, &err)
                               : vg_promql_instant(r->eng, queryable(r, &tq), q, t, out, &err);
    if (rc) return check_failure(r, ev, vg_error_msg(&err, rc)) ? 2 : 0;
    if (is_fail(ev)) return vg_buf_puts(&r->why, "expected an error, got none"), 0;
    if (!check_annotations(r, ev, *out) || !compare_result(r, ev, *out)) return 0;
    return 1;
}

/* Upstream re-runs an instant query as a range query from t-1m to t+1m and
 * compares the step at t with the expectation. */
static int range_mode(runner *r, const evalcmd *ev, const char *q, int64_t t, int scalar)
{
    vg_tsdb_queryable tq;
    vg_error err = {0};
    vg_promql_result *res = NULL;
    vg_err_t rc =
        vg_promql_range(r->eng, queryable(r, &tq), q, t - 60000, t + 60000, 60000, &res, &err);
    int ok = 0;
    samp *s = rc ? NULL : vg_arena_alloc(r->arena, (res->nseries + 1) * sizeof(*s));
    size_t n = 0;
    if (rc) vg_buf_printf(&r->why, "range mode: %s", vg_error_msg(&err, rc));
    for (size_t i = 0; s && i < res->nseries; i++)
        for (size_t k = 0; k < res->series[i].n; k++)
            if (res->series[i].ts[k] == t) {
                s[n++] = (samp){res->series[i].labels, res->series[i].nlabels, res->series[i].v[k]};
                break;
            }
    if (s && scalar)
        ok = n ? compare_scalar(r, ev, s[0].v) : 0;
    else if (s)
        ok = compare_vector(r, ev, s, n, 0);
    if (!ok && !rc) vg_buf_puts(&r->why, " (range mode)");
    vg_promql_result_free(res);
    return ok;
}

/* One instant query with its range-mode check; 1 pass, 0 fail. */
static int run_instant(runner *r, const evalcmd *ev, const char *q, int64_t t)
{
    vg_promql_result *res = NULL;
    int ok = run_checked(r, ev, q, t, &res);
    int scalar = res && res->type == VG_PROMQL_RES_SCALAR;
    vg_promql_result_free(res);
    if (ok != 1 || ev->exclude_range || has_context_func(q) || is_ordered(ev)) return ok != 0;
    return range_mode(r, ev, q, t, scalar);
}

/* ---- the '@' re-runs (upstream atModifierTestCases) ---- */

typedef struct pin_ctx {
    int64_t t;
    int unsafe;
} pin_ctx;

/* Set '@ t' on every selector and subquery without one. As upstream walks
 * parents first, every subquery has '@' by the time its children are seen,
 * so nothing inside a subquery is pinned or checked. */
static int pin_at(vg_pq_node *n, void *ud)
{
    pin_ctx *c = ud;
    if (n->kind == VG_PQ_VECTOR_SEL || n->kind == VG_PQ_MATRIX_SEL) {
        if (n->u.sel.at == VG_PQ_AT_NONE) n->u.sel.at = VG_PQ_AT_TS, n->u.sel.at_ms = c->t;
        return 0;
    }
    if (n->kind == VG_PQ_SUBQUERY) {
        if (n->u.sub.at == VG_PQ_AT_NONE) n->u.sub.at = VG_PQ_AT_TS, n->u.sub.at_ms = c->t;
        return 0;
    }
    if (n->kind == VG_PQ_CALL)
        for (size_t i = 0; i < sizeof(at_unsafe) / sizeof(*at_unsafe); i++)
            if (strcmp(n->u.call.name, at_unsafe[i]) == 0) c->unsafe = 1;
    return each_child(n, pin_at, ud);
}

/* The query with '@ t' pinned, printed; NULL when not applicable. */
static char *pinned_query(runner *r, const char *q, int64_t t)
{
    vg_promql_expr_t *e = NULL;
    vg_buf b;
    pin_ctx c = {t, 0};
    char *out = NULL;
    vg_buf_init(&b, 1 << 20);
    if (vg_promql_parse(q, strlen(q), &e, NULL) == VG_OK && e->root && !pin_at(e->root, &c) &&
        !c.unsafe && vg_promql_format(e, &b) == VG_OK && b.data)
        out = vg_arena_strdup(r->arena, b.data);
    vg_promql_expr_free(e);
    vg_buf_free(&b);
    return out;
}

static int run_pinned(runner *r, const evalcmd *ev)
{
    int64_t t = ev->at;
    char *q = pinned_query(r, ev->expr, t);
    if (!q) return 1;
    int64_t times[5] = {-10 * t, 0, t / 5, t, 10 * t};
    size_t nt = 5;
    if (t == 0) times[0] = -1000, times[1] = 0, times[2] = 1000, nt = 3;
    for (size_t i = 0; i < nt; i++)
        if (!run_instant(r, ev, q, times[i])) {
            vg_buf_printf(&r->why, " (with @ pinned: %s at %lld ms)", q, (long long)times[i]);
            return 0;
        }
    return 1;
}

static int run_eval(runner *r, const evalcmd *ev)
{
    if (ev->is_range) {
        vg_promql_result *res = NULL;
        int ok = run_checked(r, ev, ev->expr, 0, &res);
        vg_promql_result_free(res);
        return ok != 0;
    }
    return run_instant(r, ev, ev->expr, ev->at) && run_pinned(r, ev);
}

static size_t do_eval(runner *r, char **lines, size_t n, size_t i)
{
    evalcmd ev = {0};
    vg_error err = {0};
    vg_arena_reset(r->arena);
    vg_buf_reset(&r->why);
    ev.line = (int)i + 1;
    ev.header = lines[i];
    vg_err_t rc = parse_eval_header(r->arena, lines[i], &ev, &err);
    int pos = 1, stop = 0;
    for (i++; i < n && lines[i][0]; i++) {
        if (stop || rc) continue;
        if (!ev.skip) ev.skip = skip_text(SK_EXPECTED, lines[i]);
        rc = parse_eval_line(r->arena, lines[i], &ev, &pos, &stop, &err);
    }
    if (!rc && !ev.skip) ev.skip = skip_reason(r, ev.expr);
    if (rc) {
        vg_buf_printf(&r->why, "bad eval command: %s", vg_error_msg(&err, rc));
        r->c->failed++;
        report(r, &ev, "FAIL");
    } else if (ev.skip) {
        r->c->skipped++;
        vg_buf_puts(&r->why, ev.skip);
        report(r, &ev, "SKIP");
    } else if (run_eval(r, &ev)) {
        r->c->passed++;
    } else {
        r->c->failed++;
        report(r, &ev, "FAIL");
    }
    eval_free(&ev);
    return i;
}

/* ---- scripts ---- */

/* Split text into trimmed lines with comments blanked (upstream getLines). */
static char **split_lines(char *text, size_t *n)
{
    size_t cap = 1;
    for (char *p = text; *p; p++) cap += *p == '\n';
    char **lines = vg_malloc(cap * sizeof(*lines));
    if (!lines) return NULL;
    *n = 0;
    for (char *p = text; p;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        while (isspace((unsigned char)*p)) p++;
        char *e = p + strlen(p);
        while (e > p && isspace((unsigned char)e[-1])) *--e = 0;
        lines[(*n)++] = *p == '#' ? e : p;
        p = nl ? nl + 1 : NULL;
    }
    return lines;
}

static void run_lines(runner *r, char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *l = lines[i];
        if (!l[0]) continue;
        if (word_is(l, "clear")) {
            if (reset_storage(r)) fail_load(r, (int)i + 1, "out of memory");
        } else if (strncasecmp(l, "load", 4) == 0) {
            i = do_load(r, lines, n, i) - 1;
        } else if (strncasecmp(l, "eval", 4) == 0) {
            i = do_eval(r, lines, n, i) - 1;
        } else {
            fail_load(r, (int)i + 1, "invalid command");
        }
    }
}

int vg_promqltest_run(const char *name, const char *text, size_t len, int verbose, vg_pqt_counts *c)
{
    runner r = {.name = name, .verbose = verbose, .c = c};
    size_t n = 0;
    char **lines = NULL;
    int ret = -1;
    char *copy = vg_malloc(len + 1);
    vg_buf_init(&r.why, 64 * 1024);
    if (!copy) goto out;
    memcpy(copy, text, len);
    copy[len] = 0;
    r.arena = vg_arena_new(0);
    r.scratch = vg_arena_new(0);
    r.eng = vg_promql_engine_new(NULL);
    lines = split_lines(copy, &n);
    if (!r.arena || !r.scratch || !r.eng || !lines || reset_storage(&r)) goto out;
    run_lines(&r, lines, n);
    ret = 0;
out:
    hist_clear(&r);
    vg_free(r.hist);
    vg_tsdb_free(r.db);
    vg_promql_engine_free(r.eng);
    vg_arena_free(r.arena);
    vg_arena_free(r.scratch);
    vg_buf_free(&r.why);
    vg_free(lines);
    vg_free(copy);
    return ret;
}

/* ---- the command ---- */

/* Recorded pass rate (percent) of a file's basename; 100 when not listed. */
static double threshold_for(const char *thresholds, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    FILE *f = thresholds ? fopen(thresholds, "r") : NULL;
    char line[512], name[256];
    double v, found = 100;
    while (f && fgets(line, sizeof line, f))
        if (line[0] != '#' && sscanf(line, "%255s %lf", name, &v) == 2 && !strcmp(name, base))
            found = v;
    if (f) fclose(f);
    return found;
}

static double pass_rate(const vg_pqt_counts *c)
{
    size_t ran = c->passed + c->failed;
    return ran ? 100.0 * (double)c->passed / (double)ran : 100.0;
}

static int run_file(const char *path, int verbose, const char *thresholds, vg_pqt_counts *total)
{
    vg_pqt_counts c = {0};
    size_t len;
    char *text = vg_ctl_read_file(path, PQT_MAX_FILE, &len);
    if (!text) {
        fprintf(stderr, "vigilctl: promql-test: cannot read %s\n", path);
        return 1;
    }
    int rc = vg_promqltest_run(path, text, len, verbose, &c);
    vg_free(text);
    if (rc) fprintf(stderr, "vigilctl: promql-test: %s: out of memory\n", path);
    printf("%s: %zu passed, %zu failed, %zu skipped\n", path, c.passed, c.failed, c.skipped);
    total->passed += c.passed, total->failed += c.failed, total->skipped += c.skipped;
    if (!thresholds) return rc || c.failed;
    double want = threshold_for(thresholds, path), got = pass_rate(&c);
    printf("%s: pass rate %.1f%% of non-skipped evals (recorded threshold %.1f%%)\n", path, got,
           want);
    return rc || got + 1e-9 < want;
}

int vg_promqltest_main(int argc, char **argv)
{
    int verbose = 0, bad = 0, nfiles = 0;
    const char *thresholds = NULL;
    vg_pqt_counts total = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else if (!strcmp(argv[i], "--thresholds") && i + 1 < argc)
            thresholds = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1])
            nfiles = -1000;
        else
            nfiles++;
    }
    if (nfiles <= 0) {
        fprintf(stderr, "usage: vigilctl promql-test [-v] [--thresholds FILE] FILE...\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--thresholds"))
            i++;
        else if (strcmp(argv[i], "-v"))
            bad |= run_file(argv[i], verbose, thresholds, &total);
    }
    printf("%zu passed, %zu failed, %zu skipped\n", total.passed, total.failed, total.skipped);
    return bad ? 1 : 0;
}
