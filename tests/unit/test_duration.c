/*
 * test_duration.c - Prometheus durations and byte sizes, as tables of cases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vigil/duration.h"

static void test_duration_good(void **state)
{
    static const struct {
        const char *in;
        int64_t ms;
    } cases[] = {
        {"0", 0},
        {"0s", 0},
        {"1ms", 1},
        {"30s", 30000},
        {"5m", 300000},
        {"1h30m", 5400000},
        {"1d12h", 129600000},
        {"90d", INT64_C(7776000000)},
        {"1w", INT64_C(604800000)},
        {"1y", INT64_C(31536000000)},
        {"7y", INT64_C(220752000000)},
        {"1y2w3d4h5m6s7ms", INT64_C(31536000000) + 2 * INT64_C(604800000) + 3 * 86400000 +
                                4 * 3600000 + 5 * 60000 + 6000 + 7},
        {"1m500ms", 60500},
        {"0h1s", 1000},
        {"9223372036854775807ms", INT64_MAX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t ms = -1;
        vg_error err = {0};
        vg_err_t rc = vg_duration_parse(cases[i].in, &ms, &err);
        if (rc) fail_msg("%s: %s", cases[i].in, err.msg);
        assert_int_equal(ms, cases[i].ms);
    }
}

static void test_duration_bad(void **state)
{
    static const struct {
        const char *in;
        const char *msg; /* substring of the message */
    } cases[] = {
        {"", "empty"},
        {"-1s", "negative"},
        {"30", "missing unit"},
        {"1x", "unknown unit"},
        {"1h1h", "largest first"},
        {"1m1h", "largest first"},
        {"1ms1s", "largest first"},
        {"1.5h", "fractions"},
        {"h", "expected a number"},
        {"1h ", "unexpected text"},
        {" 1h", "expected a number"},
        {"1s2", "missing unit"},
        {"abc", "expected a number"},
        {"9223372036854775808ms", "too large"},
        {"300000000y", "too large"},
        {"99999999999999999999999s", "number too large"},
        {"106751991167d1d", "largest first"},
        {"292471208y1y", "largest first"},
        {"292471208y52w", "too large"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t ms = 42;
        vg_error err = {0};
        vg_err_t rc = vg_duration_parse(cases[i].in, &ms, &err);
        if (rc != VG_EINVAL) fail_msg("%s: accepted as %lld", cases[i].in, (long long)ms);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("%s: message \"%s\" lacks \"%s\"", cases[i].in, err.msg, cases[i].msg);
        assert_int_equal(ms, 42); /* untouched on failure */
    }
    int64_t ms;
    assert_int_equal(vg_duration_parse(NULL, &ms, NULL), VG_EINVAL);
}

static void test_duration_format(void **state)
{
    static const struct {
        int64_t ms;
        const char *out;
    } cases[] = {
        {0, "0s"},
        {1, "1ms"},
        {1500, "1s500ms"},
        {5400000, "1h30m"},
        {30000, "30s"},
        {INT64_C(7776000000), "90d"},
        {INT64_C(604800000), "1w"},
        {INT64_C(1209600000), "2w"},
        {INT64_C(691200000), "8d"},
        {INT64_C(31536000000), "1y"},
        {INT64_C(220752000000), "7y"},
        {INT64_C(31536000000) + 86400000, "366d"},
        {-30000, "-30s"},
    };
    char buf[VG_DURATION_STRMAX];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        assert_string_equal(vg_duration_format(cases[i].ms, buf, sizeof buf), cases[i].out);
    /* round trip over a spread of values */
    for (int64_t ms = 0; ms < INT64_C(400) * 86400000; ms = ms * 3 + 7) {
        int64_t back = -1;
        assert_int_equal(vg_duration_parse(vg_duration_format(ms, buf, sizeof buf), &back, NULL),
                         VG_OK);
        assert_int_equal(back, ms);
    }
    vg_duration_format(INT64_MIN, buf, sizeof buf); /* must not overflow */
    assert_true(buf[0] == '-');
    char tiny[4];
    assert_string_equal(vg_duration_format(5400000, tiny, sizeof tiny), "1h3");
}

static void test_size_good(void **state)
{
    static const struct {
        const char *in;
        uint64_t bytes;
    } cases[] = {
        {"0", 0},
        {"1048576", 1048576},
        {"1B", 1},
        {"1KB", 1000},
        {"1kb", 1000},
        {"1KiB", 1024},
        {"512MiB", UINT64_C(512) << 20},
        {"512mib", UINT64_C(512) << 20},
        {"512 MiB", UINT64_C(512) << 20},
        {"1GiB", UINT64_C(1) << 30},
        {"1.5GiB", UINT64_C(3) << 29},
        {"2GB", UINT64_C(2000000000)},
        {"1TB", UINT64_C(1000000000000)},
        {"1TiB", UINT64_C(1) << 40},
        {"0.5KiB", 512},
        {"1.1KiB", 1126}, /* 1126.4 rounds down */
        {"16777215TiB", UINT64_C(16777215) << 40},
        {"18446744073709551615", UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint64_t b = 7;
        vg_error err = {0};
        if (vg_size_parse(cases[i].in, &b, &err)) fail_msg("%s: %s", cases[i].in, err.msg);
        if (b != cases[i].bytes)
            fail_msg("%s: got %llu want %llu", cases[i].in, (unsigned long long)b,
                     (unsigned long long)cases[i].bytes);
    }
}

static void test_size_bad(void **state)
{
    static const struct {
        const char *in;
        const char *msg;
    } cases[] = {
        {"", "empty"},
        {"-1", "negative"},
        {"MiB", "expected a number"},
        {"1XB", "unknown unit"},
        {"1 G", "unknown unit"},
        {"1.", "digits after"},
        {"1.1234567GiB", "at most 6"},
        {"16777216TiB", "too large"},
        {"18446744073709551616", "number too large"},
        {"18446744073709551615.9KB", "too large"},
        {"1e3", "unknown unit"},
        {"1,5GiB", "unknown unit"},
        {"abc", "expected a number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint64_t b = 7;
        vg_error err = {0};
        if (vg_size_parse(cases[i].in, &b, &err) != VG_EINVAL)
            fail_msg("%s: accepted as %llu", cases[i].in, (unsigned long long)b);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("%s: message \"%s\" lacks \"%s\"", cases[i].in, err.msg, cases[i].msg);
        assert_int_equal(b, 7);
    }
}

static void test_size_format(void **state)
{
    static const struct {
        uint64_t b;
        const char *out;
    } cases[] = {
        {0, "0B"},
        {7, "7B"},
        {1000, "1KB"},
        {1024, "1KiB"},
        {1 << 30, "1GiB"},
        {5000000, "5MB"},
        {UINT64_C(3) << 29, "1536MiB"},
    };
    char buf[VG_DURATION_STRMAX];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        assert_string_equal(vg_size_format(cases[i].b, buf, sizeof buf), cases[i].out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_good),   cmocka_unit_test(test_duration_bad),
        cmocka_unit_test(test_duration_format), cmocka_unit_test(test_size_good),
        cmocka_unit_test(test_size_bad),        cmocka_unit_test(test_size_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
