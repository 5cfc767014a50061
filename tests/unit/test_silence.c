/*
 * test_silence.c - silences: states from the clock, Alertmanager's update
 * rules (in place vs expire-and-replace), expiry, validation, the list
 * filter and order, muting, and the file: round trip, atomic rewrite and a
 * corrupt file refused at open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "alerting/amconfig.h"
#include "alerting/silence.h"
#include "vigil/alloc.h"

#define T0  1767225600000LL /* 2026-01-01T00:00:00Z */
#define MIN 60000LL

static char dir[64];

static int setup(void **state)
{
    strcpy(dir, "/tmp/vg_silence_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

/* A PostableSilence for alertname=name from start to end (minutes after T0). */
static const char *post(char *buf, const char *id, const char *name, int start, int end)
{
    char idpart[64] = "";
    if (id) snprintf(idpart, sizeof idpart, "\"id\":\"%s\",", id);
    snprintf(buf, 1024,
             "{%s\"matchers\":[{\"name\":\"alertname\",\"value\":\"%s\",\"isRegex\":false}],"
             "\"startsAt\":\"2026-01-01T00:%02d:00Z\",\"endsAt\":\"2026-01-01T00:%02d:00.000Z\","
             "\"createdBy\":\"me\",\"comment\":\"c\"}",
             idpart, name, start, end);
    return buf;
}

static vg_err_t set(vg_silences_t *s, const char *json, int64_t now, char id[37])
{
    vg_error err = {0};
    return vg_silences_set_json(s, json, strlen(json), now, id, &err);
}

static char *get(vg_silences_t *s, const char *id, int64_t now)
{
    static char out[4096];
    vg_buf b;
    vg_buf_init(&b, 0);
    if (vg_silences_get_json(s, id, now, &b)) {
        vg_buf_free(&b);
        return NULL;
    }
    snprintf(out, sizeof out, "%s", b.data);
    vg_buf_free(&b);
    return out;
}

static void test_states_and_json(void **state)
{
    vg_silences_t *s = NULL;
    char buf[1024], id[37];
    assert_int_equal(vg_silences_open(NULL, NULL, &s, NULL), VG_OK);
    assert_int_equal(set(s, post(buf, NULL, "A", 10, 20), T0, id), VG_OK);
    assert_int_equal(strlen(id), 36);
    assert_int_equal(id[14], '4'); /* UUID version 4 */
    assert_non_null(strstr(get(s, id, T0), "\"status\":{\"state\":\"pending\"}"));
    assert_non_null(strstr(get(s, id, T0 + 10 * MIN), "\"state\":\"active\""));
    assert_non_null(strstr(get(s, id, T0 + 20 * MIN), "\"state\":\"expired\""));
    const char *j = get(s, id, T0);
    assert_non_null(strstr(j, "\"startsAt\":\"2026-01-01T00:10:00.000Z\""));
    assert_non_null(strstr(j, "\"updatedAt\":\"2026-01-01T00:00:00.000Z\""));
    assert_non_null(strstr(j, "\"createdBy\":\"me\""));
    assert_non_null(strstr(j, "\"isEqual\":true"));
    assert_null(get(s, "nope", T0));
    /* startsAt in the past is moved to now on create */
    assert_int_equal(set(s, post(buf, NULL, "B", 0, 30), T0 + 5 * MIN, id), VG_OK);
    assert_non_null(strstr(get(s, id, T0 + 5 * MIN), "\"startsAt\":\"2026-01-01T00:05:00.000Z\""));
    vg_silences_free(s);
}

static void test_validation(void **state)
{
    vg_silences_t *s = NULL;
    char buf[1024], id[37];
    vg_error err = {0};
    assert_int_equal(vg_silences_open(NULL, NULL, &s, NULL), VG_OK);
    assert_int_equal(set(s, post(buf, NULL, "A", 20, 10), T0, id), VG_EINVAL);
    assert_int_equal(set(s, post(buf, NULL, "A", 1, 2), T0 + 5 * MIN, id), VG_EINVAL); /* past */
    assert_int_equal(set(s, post(buf, NULL, "", 1, 2), T0, id), VG_EINVAL); /* matches "" */
    assert_int_equal(set(s, "{}", T0, id), VG_EINVAL);
    assert_int_equal(set(s, "nope", T0, id), VG_EINVAL);
    const char *nomatch =
        "{\"matchers\":[],\"startsAt\":\"2026-01-01T00:00:00Z\","
        "\"endsAt\":\"2026-01-01T01:00:00Z\",\"createdBy\":\"a\",\"comment\":\"b\"}";
    assert_int_equal(vg_silences_set_json(s, nomatch, strlen(nomatch), T0, id, &err), VG_EINVAL);
    assert_string_equal(err.msg, "at least one matcher required");
    assert_int_equal(set(s, post(buf, "00000000-0000-4000-8000-000000000000", "A", 1, 2), T0, id),
                     VG_ENOTFOUND);
    vg_silences_free(s);
}

static void test_update_rules(void **state)
{
    vg_silences_t *s = NULL;
    char buf[1024], id[37], id2[37];
    assert_int_equal(vg_silences_open(NULL, NULL, &s, NULL), VG_OK);
    assert_int_equal(set(s, post(buf, NULL, "A", 0, 30), T0, id), VG_OK);
    /* active, same matchers and start, later end: updated in place */
    assert_int_equal(set(s, post(buf, id, "A", 0, 40), T0 + MIN, id2), VG_OK);
    assert_string_equal(id, id2);
    assert_non_null(strstr(get(s, id, T0 + MIN), "\"endsAt\":\"2026-01-01T00:40:00.000Z\""));
    /* active, matchers changed: the old one expires, a new one is made */
    assert_int_equal(set(s, post(buf, id, "B", 0, 40), T0 + 2 * MIN, id2), VG_OK);
    assert_string_not_equal(id, id2);
    assert_non_null(strstr(get(s, id, T0 + 2 * MIN), "\"state\":\"expired\""));
    assert_non_null(strstr(get(s, id, T0 + 2 * MIN), "\"endsAt\":\"2026-01-01T00:02:00.000Z\""));
    assert_non_null(strstr(get(s, id2, T0 + 2 * MIN), "\"state\":\"active\""));
    /* active, start changed: replaced too */
    char id3[37];
    assert_int_equal(set(s, post(buf, id2, "B", 1, 40), T0 + 3 * MIN, id3), VG_OK);
    assert_string_not_equal(id2, id3);
    /* pending, new start still in the future: in place */
    char p[37], p2[37];
    assert_int_equal(set(s, post(buf, NULL, "P", 30, 40), T0 + 3 * MIN, p), VG_OK);
    assert_int_equal(set(s, post(buf, p, "P", 35, 50), T0 + 4 * MIN, p2), VG_OK);
    assert_string_equal(p, p2);
    /* expired: an update makes a new silence */
    assert_int_equal(set(s, post(buf, id, "A", 10, 50), T0 + 5 * MIN, id2), VG_OK);
    assert_string_not_equal(id, id2);
    vg_silences_free(s);
}

static void test_expire_and_mutes(void **state)
{
    vg_silences_t *s = NULL;
    char buf[1024], a[37], p[37], ids[2][37];
    vg_error err = {0};
    assert_int_equal(vg_silences_open(NULL, NULL, &s, NULL), VG_OK);
    assert_int_equal(set(s, post(buf, NULL, "A", 0, 30), T0, a), VG_OK);
    assert_int_equal(set(s, post(buf, NULL, "A", 20, 30), T0, p), VG_OK);
    vg_label_t l[] = {{"alertname", "A"}, {"x", "y"}}, other[] = {{"alertname", "B"}};
    assert_int_equal(vg_silences_mutes(s, l, 2, T0 + MIN, ids, 2), 1);
    assert_string_equal(ids[0], a);
    assert_int_equal(vg_silences_mutes(s, l, 2, T0 + 25 * MIN, ids, 2), 2);
    assert_int_equal(vg_silences_mutes(s, other, 1, T0 + MIN, NULL, 0), 0);
    assert_int_equal(vg_silences_expire(s, a, T0 + 2 * MIN, &err), VG_OK);
    assert_int_equal(vg_silences_mutes(s, l, 2, T0 + 2 * MIN, NULL, 0), 0);
    assert_int_equal(vg_silences_expire(s, a, T0 + 3 * MIN, &err), VG_EINVAL); /* already */
    /* a pending silence expires with startsAt = endsAt = now */
    assert_int_equal(vg_silences_expire(s, p, T0 + 3 * MIN, &err), VG_OK);
    assert_non_null(strstr(get(s, p, T0 + 3 * MIN), "\"startsAt\":\"2026-01-01T00:03:00.000Z\""));
    assert_int_equal(vg_silences_expire(s, "nope", T0, &err), VG_ENOTFOUND);
    vg_silences_free(s);
}

static char *list(vg_silences_t *s, const char *filter, int64_t now)
{
    static char out[8192];
    vg_matcher_t *m = NULL;
    vg_buf b;
    vg_buf_init(&b, 0);
    if (filter) assert_int_equal(vg_am_matcher_parse(filter, &m, NULL), VG_OK);
    assert_int_equal(vg_silences_list_json(s, filter ? &m : NULL, filter ? 1 : 0, now, &b), VG_OK);
    snprintf(out, sizeof out, "%s", b.data);
    vg_buf_free(&b);
    vg_matcher_free(m);
    return out;
}

static void test_list_filter_and_order(void **state)
{
    vg_silences_t *s = NULL;
    char buf[1024], a[37], b[37], c[37];
    assert_int_equal(vg_silences_open(NULL, NULL, &s, NULL), VG_OK);
    assert_string_equal(list(s, NULL, T0), "[]");
    assert_int_equal(set(s, post(buf, NULL, "Pend", 30, 40), T0, a), VG_OK);
    assert_int_equal(set(s, post(buf, NULL, "Long", 0, 50), T0, b), VG_OK);
    assert_int_equal(set(s, post(buf, NULL, "Short", 0, 20), T0, c), VG_OK);
    const char *all = list(s, NULL, T0 + MIN);
    /* active by endsAt (Short, Long), then pending */
    char *ps = strstr(all, c), *pl = strstr(all, b), *pp = strstr(all, a);
    assert_true(ps && pl && pp && ps < pl && pl < pp);
    assert_non_null(strstr(list(s, "alertname=\"Long\"", T0), b));
    assert_null(strstr(list(s, "alertname=\"Long\"", T0), c));
    assert_non_null(strstr(list(s, "alertname=~\"S.*\"", T0), c));
    assert_string_equal(list(s, "other=\"x\"", T0), "[]");
    assert_non_null(strstr(list(s, "other=\"\"", T0), c)); /* absent label, empty filter */
    vg_silences_free(s);
}

static void test_persistence(void **state)
{
    vg_silences_t *s = NULL;
    char buf[1024], a[37], path[128];
    vg_error err = {0};
    assert_int_equal(vg_silences_open(dir, NULL, &s, &err), VG_OK);
    assert_int_equal(set(s, post(buf, NULL, "A", 0, 30), T0, a), VG_OK);
    char before[4096];
    snprintf(before, sizeof before, "%s", get(s, a, T0));
    vg_silences_free(s);
    snprintf(path, sizeof path, "%s/silences.tmp", dir);
    assert_int_equal(access(path, F_OK), -1); /* renamed into place */
    assert_int_equal(vg_silences_open(dir, NULL, &s, &err), VG_OK);
    assert_string_equal(get(s, a, T0), before);
    vg_label_t l[] = {{"alertname", "A"}};
    assert_int_equal(vg_silences_mutes(s, l, 1, T0 + MIN, NULL, 0), 1);
    assert_int_equal(vg_silences_expire(s, a, T0 + MIN, &err), VG_OK);
    vg_silences_free(s);
    assert_int_equal(vg_silences_open(dir, NULL, &s, &err), VG_OK);
    assert_non_null(strstr(get(s, a, T0 + MIN), "\"state\":\"expired\""));
    vg_silences_free(s);
    /* a corrupt file stops the start with a clear message */
    snprintf(path, sizeof path, "%s/silences", dir);
    FILE *f = fopen(path, "w");
    fputs("[{\"id\":", f);
    fclose(f);
    assert_int_equal(vg_silences_open(dir, NULL, &s, &err), VG_ECORRUPT);
    assert_null(s);
    assert_non_null(strstr(err.msg, "is corrupt"));
    f = fopen(path, "w");
    fputs("[{\"id\":\"x\"}]", f);
    fclose(f);
    assert_int_equal(vg_silences_open(dir, NULL, &s, &err), VG_ECORRUPT);
    assert_non_null(strstr(err.msg, "entry 0"));
}

/* Allocation failures while creating, listing and loading are errors, not crashes or leaks. */
static void test_alloc_failures(void **state)
{
    char buf[1024], id[37], d2[64];
    vg_silences_t *s = NULL;
    strcpy(d2, dir);
    strcat(d2, "/alloc");
    assert_int_equal(vg_silences_open(d2, NULL, &s, NULL), VG_OK);
    assert_int_equal(set(s, post(buf, NULL, "A", 0, 30), T0, id), VG_OK);
    vg_silences_free(s);
    for (long n = 1; n < 200; n++) {
        vg_alloc_fail_after(n);
        vg_err_t rc = vg_silences_open(d2, NULL, &s, NULL);
        if (!rc) {
            (void)set(s, post(buf, NULL, "B", 0, 30), T0, id);
            vg_buf b;
            vg_buf_init(&b, 0);
            (void)vg_silences_list_json(s, NULL, 0, T0, &b);
            vg_buf_free(&b);
        }
        vg_alloc_fail_after(0);
        if (rc) assert_null(s);
        vg_silences_free(s);
        s = NULL;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_states_and_json),       cmocka_unit_test(test_validation),
        cmocka_unit_test(test_update_rules),          cmocka_unit_test(test_expire_and_mutes),
        cmocka_unit_test(test_list_filter_and_order), cmocka_unit_test(test_persistence),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
