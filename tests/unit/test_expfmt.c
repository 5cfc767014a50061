/*
 * test_expfmt.c - exposition parser: real scrapes, data-driven edge cases,
 * number syntax and the failure paths.
 *
 * The edge cases live in tests/data/expfmt/ as pairs, curl tests/data style:
 * NAME.prom (text 0.0.4) or NAME.om (OpenMetrics) is the input, byte for
 * byte, and NAME.expected is the hand-written dump of every entry the
 * parser must return (see dump_entry for the line format), ending either in
 * "EOF" or in "ERROR <code> <message>". Adding a case means adding two files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/alloc.h"
#include "vigil/buf.h"
#include "vigil/expfmt.h"

#define DATA_DIR    VIGIL_SOURCE_DIR "/tests/data/expfmt"
#define ALLTYPES    VIGIL_SHARED_DIR "/testdata/exposition/alltypes.237mfs.prom.txt"
#define ALLTYPES_OM VIGIL_SHARED_DIR "/testdata/exposition/alltypes.5mfs.om.txt"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    b[*len] = '\0';
    fclose(f);
    return b;
}

static void dump_str(vg_buf *o, const char *s, size_t n)
{
    vg_buf_putc(o, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            vg_buf_puts(o, "\\\\");
        else if (s[i] == '"')
            vg_buf_puts(o, "\\\"");
        else if (s[i] == '\n')
            vg_buf_puts(o, "\\n");
        else
            vg_buf_putc(o, s[i]);
    }
    vg_buf_putc(o, '"');
}

static void dump_value(vg_buf *o, double v)
{
    if (isnan(v))
        vg_buf_puts(o, "NaN");
    else if (isinf(v))
        vg_buf_puts(o, v > 0 ? "+Inf" : "-Inf");
    else
        vg_buf_printf(o, "%.17g", v);
}

/* One line per entry:
 *   SAMPLE name{a="b",c="d"} value [ts=N] [created] [exemplar]
 *   HELP name "text"   TYPE name type   UNIT name "unit"   COMMENT "text"   EOF */
static void dump_entry(vg_buf *o, const vg_expfmt_entry *e)
{
    switch (e->kind) {
    case VG_EXPFMT_SAMPLE:
        vg_buf_printf(o, "SAMPLE %s{", e->name);
        for (size_t i = 0; i < e->nlabels; i++) {
            vg_buf_printf(o, "%s%s=", i ? "," : "", e->labels[i].name);
            dump_str(o, e->labels[i].value, strlen(e->labels[i].value));
        }
        vg_buf_puts(o, "} ");
        dump_value(o, e->value);
        if (e->has_ts) vg_buf_printf(o, " ts=%lld", (long long)e->ts_ms);
        if (e->created) vg_buf_puts(o, " created");
        if (e->has_exemplar) vg_buf_puts(o, " exemplar");
        break;
    case VG_EXPFMT_HELP:
        vg_buf_printf(o, "HELP %s ", e->name);
        dump_str(o, e->text, e->text_len);
        break;
    case VG_EXPFMT_TYPE:
        vg_buf_printf(o, "TYPE %s %s", e->name, vg_expfmt_mtype_name(e->type));
        break;
    case VG_EXPFMT_UNIT:
        vg_buf_printf(o, "UNIT %s ", e->name);
        dump_str(o, e->text, e->text_len);
        break;
    case VG_EXPFMT_COMMENT:
        vg_buf_puts(o, "COMMENT ");
        dump_str(o, e->text, e->text_len);
        break;
    case VG_EXPFMT_EOF: vg_buf_puts(o, "EOF"); break;
    }
    vg_buf_putc(o, '\n');
}

static const char *code_name(vg_err_t rc)
{
    switch (rc) {
    case VG_EPARSE: return "EPARSE";
    case VG_ETOOLARGE: return "ETOOLARGE";
    case VG_ENOMEM: return "ENOMEM";
    default: return "OTHER";
    }
}

/* Parse everything, dumping entries; stops at EOF or the first error. */
static void dump_all(const char *in, size_t len, vg_expfmt_format fmt, vg_buf *o)
{
    vg_expfmt_parser_t *p = vg_expfmt_new(in, len, fmt);
    assert_non_null(p);
    vg_expfmt_entry e;
    vg_error err = {0};
    for (int guard = 0; guard < 100000; guard++) {
        vg_err_t rc = vg_expfmt_next(p, &e, &err);
        if (rc) {
            vg_buf_printf(o, "ERROR %s %s\n", code_name(rc), err.msg);
            /* errors are sticky */
            vg_error again = {0};
            assert_int_equal(vg_expfmt_next(p, &e, &again), rc);
            assert_string_equal(again.msg, err.msg);
            break;
        }
        dump_entry(o, &e);
        if (e.kind == VG_EXPFMT_EOF) {
            assert_int_equal(vg_expfmt_next(p, &e, &err), VG_OK); /* EOF repeats */
            assert_int_equal(e.kind, VG_EXPFMT_EOF);
            break;
        }
    }
    vg_expfmt_free(p);
}

static int run_case(const char *dir, const char *file)
{
    char path[1024], exp_path[1024];
    size_t n = strlen(file), ilen, elen;
    const char *dot = strrchr(file, '.');
    vg_expfmt_format fmt = strcmp(dot, ".om") == 0 ? VG_EXPFMT_OPENMETRICS : VG_EXPFMT_TEXT;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    snprintf(exp_path, sizeof exp_path, "%s/%.*s.expected", dir, (int)(dot - file), file);
    char *in = slurp(path, &ilen), *want = slurp(exp_path, &elen);
    assert_non_null(in);
    if (!want) fail_msg("missing %s", exp_path);
    vg_buf got;
    vg_buf_init(&got, 0);
    dump_all(in, ilen, fmt, &got);
    int ok = strcmp(got.data ? got.data : "", want) == 0;
    if (!ok) fprintf(stderr, "case %s\n--- expected\n%s--- got\n%s", file, want, got.data);
    (void)n;
    vg_buf_free(&got);
    free(in);
    free(want);
    return ok;
}

static void test_data_cases(void **state)
{
    DIR *d = opendir(DATA_DIR);
    assert_non_null(d);
    struct dirent *de;
    int cases = 0, failed = 0;
    while ((de = readdir(d))) {
        const char *dot = strrchr(de->d_name, '.');
        if (!dot || (strcmp(dot, ".prom") != 0 && strcmp(dot, ".om") != 0)) continue;
        cases++;
        if (!run_case(DATA_DIR, de->d_name)) failed++;
    }
    closedir(d);
    assert_true(cases >= 15);
    assert_int_equal(failed, 0);
}

/* ------------------------------------------------------------ real scrapes */

typedef struct counts {
    size_t sample, help, type, unit, comment, created, exemplar, labelled, eof;
} counts_t;

static void count_all(const char *in, size_t len, vg_expfmt_format fmt, counts_t *c,
                      vg_expfmt_entry *first, vg_buf *last)
{
    vg_expfmt_parser_t *p = vg_expfmt_new(in, len, fmt);
    vg_expfmt_entry e;
    vg_error err = {0};
    memset(c, 0, sizeof *c);
    for (;;) {
        vg_err_t rc = vg_expfmt_next(p, &e, &err);
        if (rc) fail_msg("unexpected error: %s", err.msg);
        if (e.kind == VG_EXPFMT_EOF) break;
        switch (e.kind) {
        case VG_EXPFMT_SAMPLE:
            if (c->sample == 0 && first) *first = e;
            c->sample++;
            c->created += e.created;
            c->exemplar += e.has_exemplar;
            c->labelled += e.nlabels > 0;
            vg_buf_reset(last);
            dump_entry(last, &e);
            break;
        case VG_EXPFMT_HELP: c->help++; break;
        case VG_EXPFMT_TYPE: c->type++; break;
        case VG_EXPFMT_UNIT: c->unit++; break;
        case VG_EXPFMT_COMMENT: c->comment++; break;
        default: break;
        }
    }
    vg_expfmt_free(p);
}

/* Expected numbers from grep: `grep -v '^#' F | grep -vc '^$'` = 1857 samples,
 * `grep -c '^# HELP'` = `grep -c '^# TYPE'` = 237, the only other comment is
 * the trailing "# EOF", and 1648 sample lines carry a '{'. */
static void test_alltypes_text(void **state)
{
    size_t len;
    char *in = slurp(ALLTYPES, &len);
    assert_non_null(in);
    counts_t c;
    vg_buf last;
    vg_buf_init(&last, 0);
    count_all(in, len, VG_EXPFMT_TEXT, &c, NULL, &last);
    assert_int_equal(c.sample, 1857);
    assert_int_equal(c.help, 237);
    assert_int_equal(c.type, 237);
    assert_int_equal(c.comment, 1);
    assert_int_equal(c.labelled, 1648);
    assert_int_equal(c.created, 0);
    assert_string_equal(last.data,
                        "SAMPLE promhttp_metric_handler_requests_total{code=\"503\"} 0\n");
    vg_buf_free(&last);
    free(in);
}

/* OpenMetrics file: 53 sample lines (grep -v '^#' | grep -vc '^$'), 9 of
 * them _created, 6 with exemplars (grep -c ' # {'), 5 HELP and 5 TYPE. */
static void test_alltypes_om(void **state)
{
    size_t len;
    char *in = slurp(ALLTYPES_OM, &len);
    assert_non_null(in);
    counts_t c;
    vg_buf last;
    vg_buf_init(&last, 0);
    count_all(in, len, VG_EXPFMT_OPENMETRICS, &c, NULL, &last);
    assert_int_equal(c.sample, 53);
    assert_int_equal(c.created, 9);
    assert_int_equal(c.exemplar, 6);
    assert_int_equal(c.help, 5);
    assert_int_equal(c.type, 5);
    assert_string_equal(
        last.data, "SAMPLE rpc_requests_created{service=\"uniform\"} 1726839813.0168471 created\n");
    /* the same file is not valid text 0.0.4 (exemplars), and must fail cleanly */
    vg_expfmt_parser_t *p = vg_expfmt_new(in, len, VG_EXPFMT_TEXT);
    vg_expfmt_entry e;
    vg_error err = {0};
    vg_err_t rc;
    while ((rc = vg_expfmt_next(p, &e, &err)) == VG_OK && e.kind != VG_EXPFMT_EOF) {
    }
    assert_int_equal(rc, VG_EPARSE);
    assert_non_null(strstr(err.msg, "line 19 col "));
    vg_expfmt_free(p);
    vg_buf_free(&last);
    free(in);
}

/* ------------------------------------------------------------ numbers */

static void test_float_syntax(void **state)
{
    static const struct {
        const char *s;
        int ok;
        double v;
    } cases[] = {
        {"1", 1, 1},       {"-1.5e3", 1, -1500}, {"+2", 1, 2},      {".5", 1, 0.5},
        {"5.", 1, 5},      {"007", 1, 7},        {"1E-2", 1, 0.01}, {"0x1p-2", 1, 0.25},
        {"0X1.8P1", 1, 3}, {"-0x10p0", 1, -16},  {"1e-400", 1, 0},  {"1e400", 0, 0},
        {"0x1", 0, 0},     {"0x1.8", 0, 0},      {"1_000", 0, 0},   {"1e", 0, 0},
        {"1e+", 0, 0},     {".", 0, 0},          {"--1", 0, 0},     {"1.2.3", 0, 0},
        {"abc", 0, 0},     {"infinit", 0, 0},    {"+nan", 0, 0},    {"0x", 0, 0},
        {" 1", 0, 0},      {"1 ", 0, 0},         {"", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double v = -12345;
        vg_err_t rc = vg_expfmt_parse_float(cases[i].s, strlen(cases[i].s), &v);
        if (cases[i].ok != (rc == VG_OK)) fail_msg("'%s': rc=%d", cases[i].s, rc);
        if (cases[i].ok && v != cases[i].v) fail_msg("'%s': got %g", cases[i].s, v);
    }
    static const char *const inf[] = {"Inf", "+inf", "INF", "infinity", "+Infinity"};
    for (size_t i = 0; i < 5; i++) {
        double v = 0;
        assert_int_equal(vg_expfmt_parse_float(inf[i], strlen(inf[i]), &v), VG_OK);
        assert_true(isinf(v) && v > 0);
    }
    double v = 0;
    assert_int_equal(vg_expfmt_parse_float("-Infinity", 9, &v), VG_OK);
    assert_true(isinf(v) && v < 0);
    assert_int_equal(vg_expfmt_parse_float("nAn", 3, &v), VG_OK);
    assert_true(isnan(v));
    assert_false(vg_is_stale_nan(v));
    assert_true(vg_is_stale_nan(vg_stale_nan()));
    assert_true(isnan(vg_stale_nan()));
    /* a long but valid number goes through the heap copy */
    char big[300];
    memset(big, '0', sizeof big);
    big[1] = '.';
    big[299] = '5';
    assert_int_equal(vg_expfmt_parse_float(big, sizeof big, &v), VG_OK);
    assert_true(v > 0 && v < 1e-290);
}

static vg_err_t one(const char *line, vg_expfmt_format fmt, vg_expfmt_entry *e, vg_error *err);

/* The exact fast path must give strtod's double, bit for bit, on every
 * plain decimal; odd ones fall back to strtod. */
static void test_float_fast_path(void **state)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    char s[64];
    for (int iter = 0; iter < 200000; iter++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n = 0, digits = 1 + x % 20, dot = (x >> 8) % (digits + 2);
        if ((x >> 16) & 1) s[n++] = (x >> 17) & 1 ? '-' : '+';
        for (size_t i = 0; i < digits; i++) {
            if (i == dot) s[n++] = '.';
            s[n++] = (char)('0' + (x >> (20 + 2 * (i % 20))) % 10);
        }
        if ((x >> 60) & 1) n += (size_t)snprintf(s + n, 16, "e%d", (int)((x >> 24) % 61) - 30);
        s[n] = '\0';
        double got = -1, want = strtod(s, NULL);
        if (vg_expfmt_parse_float(s, n, &got) != VG_OK) fail_msg("'%s' did not parse", s);
        if (memcmp(&got, &want, sizeof got) != 0)
            fail_msg("'%s': got %.17g want %.17g", s, got, want);
    }
    double v;
    assert_int_equal(vg_expfmt_parse_float("-0", 2, &v), VG_OK);
    assert_true(v == 0 && signbit(v));
    assert_int_equal(vg_expfmt_parse_float("9007199254740993", 16, &v), VG_OK);
    assert_true(v == 9007199254740992.0); /* past 2^53: strtod rounds */
    assert_int_equal(vg_expfmt_parse_float("1e22", 4, &v), VG_OK);
    assert_true(v == 1e22);
    assert_int_equal(vg_expfmt_parse_float("1e23", 4, &v), VG_OK);
    assert_true(v == 1e23);
    assert_int_equal(vg_expfmt_parse_float("1.e5", 4, &v), VG_OK);
    assert_true(v == 1e5);
    assert_int_equal(vg_expfmt_parse_float("1e+05", 5, &v), VG_OK);
    assert_true(v == 1e5);
    assert_int_equal(vg_expfmt_parse_float(".e5", 3, &v), VG_EPARSE);
    assert_int_equal(vg_expfmt_parse_float("1e5.", 4, &v), VG_EPARSE);
}

/* Label lengths match the decoded strings; skip_text leaves comment text
 * empty and HELP text raw (escapes kept, text_len bytes) but still returns
 * those entries. */
static void test_lengths_skip_text(void **state)
{
    const char in[] = "# HELP m Some \\\\ help.\n# free comment\n"
                      "m{a=\"x\\\\y\\n\",b=\"\xc3\xa9\",c=\"\",dd=\"plain\"} 1\n";
    vg_expfmt_parser_t *p = vg_expfmt_new(in, sizeof in - 1, VG_EXPFMT_TEXT);
    vg_expfmt_set_skip_text(p, 1);
    vg_expfmt_entry e;
    vg_error err = {0};
    assert_int_equal(vg_expfmt_next(p, &e, &err), VG_OK);
    assert_int_equal(e.kind, VG_EXPFMT_HELP);
    assert_string_equal(e.name, "m");
    assert_int_equal(e.text_len, strlen("Some \\\\ help."));
    assert_memory_equal(e.text, "Some \\\\ help.", e.text_len);
    assert_int_equal(vg_expfmt_next(p, &e, &err), VG_OK);
    assert_int_equal(e.kind, VG_EXPFMT_COMMENT);
    assert_string_equal(e.text, "");
    assert_int_equal(vg_expfmt_next(p, &e, &err), VG_OK);
    assert_int_equal(e.kind, VG_EXPFMT_SAMPLE);
    assert_int_equal(e.nlabels, 4);
    assert_string_equal(e.labels[0].value, "x\\y\n");
    for (size_t i = 0; i < e.nlabels; i++) {
        assert_int_equal(e.label_lens[i].name, strlen(e.labels[i].name));
        assert_int_equal(e.label_lens[i].value, strlen(e.labels[i].value));
    }
    vg_expfmt_free(p);
}

/* The byte after a backslash is checked like any other. */
static void test_escaped_bytes(void **state)
{
    vg_expfmt_entry e;
    vg_error err = {0};
    static const char nul[] = "m{a=\"\\\0\"} 1\n";
    vg_expfmt_parser_t *p = vg_expfmt_new(nul, sizeof nul - 1, VG_EXPFMT_TEXT);
    assert_int_equal(vg_expfmt_next(p, &e, &err), VG_EPARSE);
    assert_non_null(strstr(err.msg, "NUL byte in label value"));
    vg_expfmt_free(p);
    assert_int_equal(one("m{a=\"\\\xff\"} 1\n", VG_EXPFMT_TEXT, &e, &err), VG_EPARSE);
    assert_non_null(strstr(err.msg, "invalid UTF-8 label value"));
    assert_int_equal(one("m{a=\"\\\"\\\\\"} 1\n", VG_EXPFMT_TEXT, &e, &err), VG_OK);
    assert_string_equal(e.labels[0].value, "\"\\");
    one(NULL, VG_EXPFMT_TEXT, &e, &err);
}

/* Metric names that extend or shorten the previous line's name. */
static void test_repeated_names(void **state)
{
    const char *in = "abc 1\nabcd 2\nabc{x=\"1\"} 3\nab 4\nabc:x 5\nabc 6\nabc9 7\nabc-d 8\n";
    static const char *const want[] = {"abc", "abcd", "abc", "ab", "abc:x", "abc", "abc9"};
    vg_expfmt_parser_t *p = vg_expfmt_new(in, strlen(in), VG_EXPFMT_TEXT);
    vg_expfmt_entry e;
    vg_error err = {0};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        assert_int_equal(vg_expfmt_next(p, &e, &err), VG_OK);
        assert_string_equal(e.name, want[i]);
        assert_int_equal(e.name_len, strlen(want[i]));
        assert_true(e.value == (double)(i + 1));
    }
    assert_int_equal(vg_expfmt_next(p, &e, &err), VG_EPARSE);
    assert_string_equal(err.msg, "line 8 col 4: invalid character in metric name");
    vg_expfmt_free(p);
}

/* Parse the first entry of line and return rc; fills *e. line NULL frees. */
static vg_err_t one(const char *line, vg_expfmt_format fmt, vg_expfmt_entry *e, vg_error *err)
{
    static vg_expfmt_parser_t *p;
    vg_expfmt_free(p);
    p = NULL;
    if (!line) return VG_OK;
    p = vg_expfmt_new(line, strlen(line), fmt);
    assert_non_null(p);
    return vg_expfmt_next(p, e, err);
}

static void test_timestamps(void **state)
{
    vg_expfmt_entry e;
    vg_error err = {0};
    assert_int_equal(one("a 1 9223372036854775807\n", VG_EXPFMT_TEXT, &e, &err), VG_OK);
    assert_int_equal(e.ts_ms, INT64_MAX);
    assert_int_equal(one("a 1 -9223372036854775808\n", VG_EXPFMT_TEXT, &e, &err), VG_OK);
    assert_int_equal(e.ts_ms, INT64_MIN);
    assert_int_equal(one("a 1 +5\n", VG_EXPFMT_TEXT, &e, &err), VG_OK);
    assert_int_equal(e.ts_ms, 5);
    assert_int_equal(one("a 1 9223372036854775808\n", VG_EXPFMT_TEXT, &e, &err), VG_EPARSE);
    assert_string_equal(err.msg, "line 1 col 5: invalid timestamp \"9223372036854775808\"");
    assert_int_equal(one("a 1 1.5\n", VG_EXPFMT_TEXT, &e, &err), VG_EPARSE);
    assert_int_equal(one("a 1 1.5\n# EOF\n", VG_EXPFMT_OPENMETRICS, &e, &err), VG_OK);
    assert_int_equal(e.ts_ms, 1500);
    assert_int_equal(one("a 1 -0.0019\n# EOF\n", VG_EXPFMT_OPENMETRICS, &e, &err), VG_OK);
    assert_int_equal(e.ts_ms, -1);
    assert_int_equal(one("a 1 NaN\n# EOF\n", VG_EXPFMT_OPENMETRICS, &e, &err), VG_EPARSE);
    assert_int_equal(one("a 1 1e300\n# EOF\n", VG_EXPFMT_OPENMETRICS, &e, &err), VG_EPARSE);
    one(NULL, VG_EXPFMT_TEXT, &e, &err);
}

static void test_max_line(void **state)
{
    const char *in = "short 1\nthis_line_is_long 1\n";
    vg_expfmt_parser_t *p = vg_expfmt_new(in, strlen(in), VG_EXPFMT_TEXT);
    vg_expfmt_set_max_line(p, 10);
    vg_expfmt_entry e;
    vg_error err = {0};
    assert_int_equal(vg_expfmt_next(p, &e, &err), VG_OK);
    assert_string_equal(e.name, "short");
    assert_int_equal(vg_expfmt_next(p, &e, &err), VG_ETOOLARGE);
    assert_string_equal(err.msg, "line 2 col 11: line longer than 10 bytes");
    assert_int_equal(vg_expfmt_line(p), 2);
    vg_expfmt_free(p);
}

/* Many labels use the sort-based duplicate check; one duplicate must be found. */
static void test_many_labels(void **state)
{
    vg_buf b;
    vg_buf_init(&b, 0);
    vg_buf_puts(&b, "m{");
    for (int i = 0; i < 500; i++) vg_buf_printf(&b, "l%d=\"v%d\",", i, i);
    vg_buf_puts(&b, "} 1\n");
    vg_expfmt_entry e;
    vg_error err = {0};
    assert_int_equal(one(b.data, VG_EXPFMT_TEXT, &e, &err), VG_OK);
    assert_int_equal(e.nlabels, 500);
    assert_string_equal(e.labels[499].name, "l499");
    assert_string_equal(e.labels[499].value, "v499");
    vg_buf_reset(&b);
    vg_buf_puts(&b, "m{");
    for (int i = 0; i < 500; i++) vg_buf_printf(&b, "l%d=\"v\",", i == 321 ? 7 : i);
    vg_buf_puts(&b, "} 1\n");
    assert_int_equal(one(b.data, VG_EXPFMT_TEXT, &e, &err), VG_EPARSE);
    assert_string_equal(err.msg, "line 1 col 2: label name \"l7\" is not unique");
    one(NULL, VG_EXPFMT_TEXT, &e, &err);
    vg_buf_free(&b);
}

/* Allocation failure anywhere must surface as an error, never a crash. */
static void test_alloc_failure(void **state)
{
    const char *in = "# HELP a x\n# TYPE a counter\na{b=\"c\"} 1\n";
    for (long n = 1; n < 10; n++) {
        vg_alloc_fail_after(n);
        vg_expfmt_parser_t *p = vg_expfmt_new(in, strlen(in), VG_EXPFMT_TEXT);
        if (p) {
            vg_expfmt_entry e;
            vg_error err = {0};
            while (vg_expfmt_next(p, &e, &err) == VG_OK && e.kind != VG_EXPFMT_EOF) {
            }
        }
        vg_alloc_fail_after(0);
        vg_expfmt_free(p);
    }
}

static void test_content_type(void **state)
{
    assert_int_equal(vg_expfmt_format_from_content_type(NULL), VG_EXPFMT_TEXT);
    assert_int_equal(vg_expfmt_format_from_content_type("text/plain; version=0.0.4"),
                     VG_EXPFMT_TEXT);
    assert_int_equal(vg_expfmt_format_from_content_type(
                         "application/openmetrics-text; version=1.0.0; charset=utf-8"),
                     VG_EXPFMT_OPENMETRICS);
    assert_int_equal(vg_expfmt_format_from_content_type("Application/OpenMetrics-Text"),
                     VG_EXPFMT_OPENMETRICS);
    assert_int_equal(vg_expfmt_format_from_content_type("application/openmetrics-textual"),
                     VG_EXPFMT_TEXT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_cases),        cmocka_unit_test(test_alltypes_text),
        cmocka_unit_test(test_alltypes_om),       cmocka_unit_test(test_float_syntax),
        cmocka_unit_test(test_timestamps),        cmocka_unit_test(test_max_line),
        cmocka_unit_test(test_many_labels),       cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_content_type),      cmocka_unit_test(test_float_fast_path),
        cmocka_unit_test(test_lengths_skip_text), cmocka_unit_test(test_escaped_bytes),
        cmocka_unit_test(test_repeated_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
