/*
 * test_timefmt.c - dates and RFC 3339 as tables: strict (Go's RFC3339Nano,
 * the HTTP API's rules), lax (audit log lines) and each relaxation alone,
 * formatting,
 * and the day arithmetic against libc's timegm/gmtime over four centuries
 * plus far years.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "vigil/timefmt.h"

typedef struct ts_row {
    const char *in;
    int strict_ok, lax_ok;
    int64_t ms;
} ts_row;

static const ts_row ts_rows[] = {
    {"1970-01-01T00:00:00Z", 1, 1, 0},
    {"2026-11-28T04:36:11Z", 1, 1, 1795840571000LL},
    {"2026-11-28T04:36:11.123Z", 1, 1, 1795840571123LL},
    {"2026-11-28T04:36:11.123456789Z", 1, 1, 1795840571123LL},
    {"2026-11-28T04:36:11.1234567891Z", 0, 1, 1795840571123LL}, /* 10 fraction digits */
    {"2026-11-28T05:36:11.5+01:00", 1, 1, 1795840571500LL},
    {"2026-11-27T23:06:11-05:30", 1, 1, 1795840571000LL},
    {"2015-07-01T22:10:51.781123456+02:00", 1, 1, 1435781451781LL},
    {"1970-01-01T00:00:00-00:30", 1, 1, 1800000},
    {"1969-12-31T23:59:59.999Z", 1, 1, -1},
    {"2026-11-28t04:36:11z", 0, 1, 1795840571000LL},
    {"2026-11-28 04:36:11Z", 0, 1, 1795840571000LL},
    {"2016-12-31T23:59:60Z", 0, 1, 1483228800000LL}, /* leap second: the next one */
    {"2024-02-29T00:00:00Z", 1, 1, 1709164800000LL},
    {"2000-02-29T00:00:00Z", 1, 1, 951782400000LL},
    {"2100-02-29T00:00:00Z", 0, 0, 0},
    {"2023-02-29T00:00:00Z", 0, 0, 0},
    {"2026-04-31T00:00:00Z", 0, 0, 0},
    {"2026-11-28T04:36:11", 0, 0, 0}, /* no offset */
    {"2026-11-28T24:00:00Z", 0, 0, 0},
    {"2026-11-28T04:60:00Z", 0, 0, 0},
    {"2026-13-01T00:00:00Z", 0, 0, 0},
    {"2026-00-01T00:00:00Z", 0, 0, 0},
    {"2026-11-28T04:36:11.Z", 0, 0, 0}, /* empty fraction */
    {"2026-11-28T04:36:11+0100", 0, 0, 0},
    {"2026-11-28T04:36:11+24:00", 0, 0, 0},
    {"2026-11-28T04:36:11Zjunk", 0, 0, 0},
    {"2026-11-28T04:36:1Z", 0, 0, 0},
    {"2026-11-28", 0, 0, 0},
    {"", 0, 0, 0},
    {"yesterday", 0, 0, 0},
};

static void test_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ts_rows / sizeof ts_rows[0]; i++) {
        const ts_row *r = &ts_rows[i];
        for (unsigned lax = 0; lax < 2; lax++) {
            int64_t ms = -42;
            int want = lax ? r->lax_ok : r->strict_ok;
            vg_err_t rc =
                vg_timefmt_parse_rfc3339(r->in, strlen(r->in), lax ? VG_TIMEFMT_LAX : 0, &ms);
            if ((rc == VG_OK) != want) fail_msg("row %zu %s lax=%u: rc %d", i, r->in, lax, rc);
            if (want && ms != r->ms)
                fail_msg("row %zu %s: %lld want %lld", i, r->in, (long long)ms, (long long)r->ms);
            if (!want && ms != -42) fail_msg("row %zu %s: *ms written on failure", i, r->in);
        }
    }
}

/* Each relaxation on its own. */
static void test_parse_flags(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        unsigned needs;
    } rows[] = {
        {"2026-11-28t04:36:11Z", VG_TIMEFMT_ANYCASE},
        {"2026-11-28T04:36:11z", VG_TIMEFMT_ANYCASE},
        {"2026-11-28 04:36:11Z", VG_TIMEFMT_SPACE},
        {"2016-12-31T23:59:60Z", VG_TIMEFMT_LEAP},
        {"2026-11-28T04:36:11.1234567891Z", VG_TIMEFMT_LONGFRAC},
    };
    static const unsigned flags[] = {VG_TIMEFMT_ANYCASE, VG_TIMEFMT_SPACE, VG_TIMEFMT_LEAP,
                                     VG_TIMEFMT_LONGFRAC};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        for (size_t k = 0; k < 4; k++) {
            int64_t ms;
            int ok =
                vg_timefmt_parse_rfc3339(rows[i].in, strlen(rows[i].in), flags[k], &ms) == VG_OK;
            if (ok != (flags[k] == rows[i].needs))
                fail_msg("%s with flags %u: ok=%d", rows[i].in, flags[k], ok);
        }
}

static void test_parse_bounded(void **state)
{
    (void)state;
    const char *s = "2026-11-28T04:36:11Z\",\"next\":1"; /* inside a JSON document */
    int64_t ms = 0;
    assert_int_equal(vg_timefmt_parse_rfc3339(s, 20, 0, &ms), VG_OK);
    assert_int_equal(ms, 1795840571000LL);
    assert_int_equal(vg_timefmt_parse_rfc3339(s, 19, 0, &ms), VG_EPARSE); /* cut before the Z */
    assert_int_equal(vg_timefmt_parse_rfc3339(s, 21, 0, &ms), VG_EPARSE);
}

static void test_format(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *out;
    } rows[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {1795840571123LL, "2026-11-28T04:36:11.123Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {-62135596800000LL, "0001-01-01T00:00:00.000Z"},
        {253402300799999LL, "9999-12-31T23:59:59.999Z"},
        {INT64_MAX, "292278994-08-17T07:12:55.807Z"},
        {INT64_MIN, "-292275055-05-16T16:47:04.192Z"},
    };
    char out[VG_TIMEFMT_RFC3339_MAX];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_string_equal(vg_timefmt_format_rfc3339(rows[i].ms, out), rows[i].out);
    int64_t back = 0;
    vg_timefmt_format_rfc3339(1795840571123LL, out);
    assert_int_equal(vg_timefmt_parse_rfc3339(out, strlen(out), 0, &back), VG_OK);
    assert_int_equal(back, 1795840571123LL);
}

static void test_days_vs_libc(void **state)
{
    (void)state;
    /* every day from 1800 to 2200 against timegm/gmtime */
    for (int64_t days = -62091; days < 84006; days++) {
        time_t t = (time_t)(days * 86400);
        struct tm tm;
        assert_non_null(gmtime_r(&t, &tm));
        int64_t y;
        int m, d;
        vg_timefmt_civil_from_days(days, &y, &m, &d);
        if (y != tm.tm_year + 1900 || m != tm.tm_mon + 1 || d != tm.tm_mday)
            fail_msg("day %lld: %lld-%d-%d", (long long)days, (long long)y, m, d);
        if (vg_timefmt_days_from_civil(y, m, d) != days)
            fail_msg("day %lld round trip", (long long)days);
        int64_t next = m == 12 ? vg_timefmt_days_from_civil(y + 1, 1, 1)
                               : vg_timefmt_days_from_civil(y, m + 1, 1);
        if (d == 1 && days + vg_timefmt_days_in_month(y, m) != next)
            fail_msg("%lld-%d: days in month", (long long)y, m);
    }
    /* far years round-trip too */
    static const int64_t far[] = {-1000000, -4713, -1, 0, 1, 9999, 10000, 1000000};
    for (size_t i = 0; i < sizeof far / sizeof far[0]; i++) {
        int64_t y;
        int m, d;
        vg_timefmt_civil_from_days(vg_timefmt_days_from_civil(far[i], 2, 29 - (far[i] % 4 != 0)),
                                   &y, &m, &d);
        assert_int_equal(y, far[i]);
        assert_int_equal(m, 2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),         cmocka_unit_test(test_parse_flags),
        cmocka_unit_test(test_parse_bounded), cmocka_unit_test(test_format),
        cmocka_unit_test(test_days_vs_libc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
