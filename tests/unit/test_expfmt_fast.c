/*
 * test_expfmt_fast.c - the parser's one-pass sample path against its general
 * scanner.
 *
 * Why a separate file: the fast path (common/expfmt.c, fast_sample) must be
 * invisible. Every input here is parsed twice, once with the fast path and
 * borrowed strings (what the scrape loop uses) and once with every line
 * through the general scanner and copied strings, and the two entry streams
 * must agree field by field and byte by byte, errors included: the shared
 * exposition fixtures, and a table of lines on the edge of the fast path's
 * shape (blanks inside braces, escapes, non-ASCII, trailing commas,
 * timestamps, exemplars, duplicates, __name__). Borrowing itself and the
 * decimal fast path of vg_expfmt_parse_float (against strtod, bit for bit)
 * are checked too. fuzz_expfmt runs the same comparison on random input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/alloc.h"
#include "vigil/expfmt.h"

#define FIXTURE_TEXT VIGIL_SHARED_DIR "/testdata/exposition/alltypes.237mfs.prom.txt"
#define FIXTURE_OM   VIGIL_SHARED_DIR "/testdata/exposition/alltypes.5mfs.om.txt"

static int same_bytes(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static void assert_same_entry(const vg_expfmt_entry *a, const vg_expfmt_entry *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->line, b->line);
    assert_true(same_bytes(a->name, a->name_len, b->name, b->name_len));
    assert_true(same_bytes(a->text, a->text_len, b->text, b->text_len));
    assert_int_equal(a->type, b->type);
    assert_memory_equal(&a->value, &b->value, sizeof a->value);
    assert_int_equal(a->has_ts, b->has_ts);
    assert_int_equal(a->ts_ms, b->ts_ms);
    assert_int_equal(a->created, b->created);
    assert_int_equal(a->has_exemplar, b->has_exemplar);
    assert_int_equal(a->nlabels, b->nlabels);
    for (size_t j = 0; j < a->nlabels; j++) {
        assert_true(same_bytes(a->labels[j].name, a->label_lens[j].name, b->labels[j].name,
                               b->label_lens[j].name));
        assert_true(same_bytes(a->labels[j].value, a->label_lens[j].value, b->labels[j].value,
                               b->label_lens[j].value));
    }
}

/* Parse buf both ways; returns the number of samples (entries agree). */
static size_t compare_modes(const char *buf, size_t len, vg_expfmt_format fmt)
{
    vg_expfmt_parser_t *f = vg_expfmt_new(buf, len, fmt), *g = vg_expfmt_new(buf, len, fmt);
    assert_non_null(f);
    assert_non_null(g);
    vg_expfmt_set_borrow(f, 1);
    vg_expfmt_set_fast(g, 0);
    size_t samples = 0;
    for (;;) {
        vg_expfmt_entry a, b;
        vg_error ea = {0}, eb = {0};
        vg_err_t ra = vg_expfmt_next(f, &a, &ea), rb = vg_expfmt_next(g, &b, &eb);
        assert_int_equal(ra, rb);
        if (ra) {
            assert_string_equal(vg_error_msg(&ea, ra), vg_error_msg(&eb, rb));
            break;
        }
        assert_same_entry(&a, &b);
        if (a.kind == VG_EXPFMT_EOF) break;
        samples += a.kind == VG_EXPFMT_SAMPLE;
    }
    vg_expfmt_free(f);
    vg_expfmt_free(g);
    return samples;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = vg_malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static void test_fixtures(void **state)
{
    size_t len;
    char *text = slurp(FIXTURE_TEXT, &len);
    assert_int_equal(compare_modes(text, len, VG_EXPFMT_TEXT), 1857);
    vg_free(text);
    char *om = slurp(FIXTURE_OM, &len);
    assert_true(compare_modes(om, len, VG_EXPFMT_OPENMETRICS) > 0);
    vg_free(om);
}

/* Each line alone, then all of them as one body, in both dialects. */
static void test_edge_lines(void **state)
{
    static const char *const lines[] = {
        "a 1\n",
        "a{} 2\n",
        "b{x=\"y\"} 3 123\n",
        "b{x=\"y\",} 4\n",
        "b{x=\"y\",z=\"\"} 5\n",
        "b{x=\"a long value that spans more than eight bytes\",y=\"12345678\"} 6\n",
        "c {x=\"y\"} 6\n",
        "c{ x=\"y\"} 7\n",
        "c{x = \"y\"} 8\n",
        "c{x=\"y\" ,z=\"w\"} 9\n",
        "d{x=\"a\\\\b\\\"c\\nd\"} 10\n",
        "d{x=\"caf\xc3\xa9 au lait\"} 11\n",
        "d{x=\"bad \xff utf8\"} 11\n",
        "e{x=\"y\"}12\n",
        "e{x=\"y\"}\t13\t-5\n",
        "e 1 2 3\n",
        "e +Inf\n",
        "e NaN\n",
        "e -0x1p3\n",
        "e{__name__=\"x\"} 1\n",
        "e{x=\"1\",x=\"2\"} 1\n",
        "e{x=\"1\",y=\"2\",x=\"3\"} 1\n",
        "e{1x=\"y\"} 1\n",
        "e{x:y=\"z\"} 1\n",
        "e{x=\"y\"\n",
        "e{x=\"y} 1\n",
        "e{x=\"y\"} \n",
        "f:g_h 1e-3 \n",
        "f 1 # {t=\"1\"} 2 3\n",
        "f 1 1.5 # {t=\"1\"} 2\n",
        "f 1 99999999999999999999\n",
        "f 00000000000000000000001\n",
        "g_total 1\ng_created 2\n",
        "g_bucket{le=\"1\"} 1\ng_sum 2\ng_count 3\ng_bucket{le=\"2\"} 4\ng_sum 5\n",
        "h 1",
    };
    static const char om_tail[] = "# EOF\n";
    char all[4096] = "";
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        compare_modes(lines[i], strlen(lines[i]), VG_EXPFMT_TEXT);
        char om[512];
        snprintf(om, sizeof om, "# TYPE g counter\n%s%s", lines[i], om_tail);
        compare_modes(om, strlen(om), VG_EXPFMT_OPENMETRICS);
        if (strchr(lines[i], '\n')) strcat(all, lines[i]);
    }
    compare_modes(all, strlen(all), VG_EXPFMT_TEXT);
}

/* Borrowed strings point into the input; decoded ones do not. */
static void test_borrow(void **state)
{
    static const char in[] = "m{a=\"plain\",b=\"esc\\\"aped\"} 1\n";
    vg_expfmt_parser_t *p = vg_expfmt_new(in, sizeof in - 1, VG_EXPFMT_TEXT);
    vg_expfmt_set_borrow(p, 1);
    vg_expfmt_entry e;
    vg_error err;
    assert_int_equal(vg_expfmt_next(p, &e, &err), VG_OK);
    assert_int_equal(e.kind, VG_EXPFMT_SAMPLE);
    assert_int_equal(e.nlabels, 2);
    /* an escape sends the line to the general scanner: all copied, terminated */
    assert_string_equal(e.labels[1].value, "esc\"aped");
    vg_expfmt_free(p);

    static const char in2[] = "m{a=\"plain\"} 1\n";
    p = vg_expfmt_new(in2, sizeof in2 - 1, VG_EXPFMT_TEXT);
    vg_expfmt_set_borrow(p, 1);
    assert_int_equal(vg_expfmt_next(p, &e, &err), VG_OK);
    assert_ptr_equal(e.name, in2);
    assert_int_equal(e.name_len, 1);
    assert_ptr_equal(e.labels[0].name, in2 + 2);
    assert_ptr_equal(e.labels[0].value, in2 + 5);
    assert_int_equal(e.label_lens[0].value, 5);
    vg_expfmt_free(p);
}

static void test_decimal_fast_path(void **state)
{
    static const char *const nums[] = {
        "0",
        "-0",
        "1.",
        ".5",
        "27",
        "0.001724389",
        "7.6238e-05",
        "9.03676723e+08",
        "1.7e9",
        "44.985611511",
        "1234567890123456789",
        "12345678901234567890",
        "0.0000000000000000001",
        "9007199254740993",
        "9007199254740992",
        "1e22",
        "1e23",
        "1e-22",
        "123456.789e-20",
        "+3.25E+2",
        "00000000000000000000001",
    };
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
        double v = 0, w = strtod(nums[i], NULL);
        assert_int_equal(vg_expfmt_parse_float(nums[i], strlen(nums[i]), &v), VG_OK);
        assert_memory_equal(&v, &w, sizeof v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_edge_lines),
        cmocka_unit_test(test_borrow),
        cmocka_unit_test(test_decimal_fast_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
