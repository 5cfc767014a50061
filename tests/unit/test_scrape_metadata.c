/*
 * test_scrape_metadata.c - a target's TYPE/HELP/UNIT as MetricBatch.metadata
 * (agent/scrape/metadata.c): the bytes decode with protobuf-c to one entry
 * per family name with Prometheus's rules (later lines win, HELP alone is
 * "unknown", HELP unescaped, UNIT from OpenMetrics), the hash the scrape
 * path folds changes with any HELP/TYPE/UNIT change and not otherwise, and
 * the entries are sent when they change and again after the resend period.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "scrape/metadata.h"
#include "vigil/v1/envelope.pb-c.h"

static const char TEXT[] = "# HELP a_total Requests \\\\ served.\\nBy code.\n"
                           "# TYPE a_total counter\n"
                           "a_total{code=\"200\"} 1\n"
                           "# HELP only_help Has no TYPE.\n"
                           "only_help 2\n"
                           "# TYPE g gauge\n"
                           "g 3\n"
                           "# TYPE u untyped\n"
                           "u 4\n"
                           "# TYPE g counter\n"
                           "no_meta 5\n";

static const char OM[] = "# TYPE d_seconds histogram\n"
                         "# UNIT d_seconds seconds\n"
                         "# HELP d_seconds Latency.\n"
                         "d_seconds_bucket{le=\"+Inf\"} 1\n"
                         "d_seconds_count 1\n"
                         "d_seconds_sum 0.5\n"
                         "# EOF\n";

/* The hash the scrape path computes (skip_text on, as append.c parses). */
static uint64_t fold_all(const char *body, vg_expfmt_format fmt)
{
    vg_expfmt_parser_t *p = vg_expfmt_new(body, strlen(body), fmt);
    vg_expfmt_set_skip_text(p, 1);
    vg_expfmt_entry e;
    uint64_t h = 0;
    while (vg_expfmt_next(p, &e, NULL) == VG_OK && e.kind != VG_EXPFMT_EOF)
        if (e.kind != VG_EXPFMT_SAMPLE) vg_scrape_meta_fold(&h, &e);
    vg_expfmt_free(p);
    return h;
}

static Vigil__V1__MetricBatch *emitted(vg_scrape_target_t *t, vg_scrape_sink *k, int64_t now)
{
    vg_buf_reset(&k->enc);
    vg_scrape_meta_emit(t, k, now);
    if (!k->enc.len) return NULL;
    return vigil__v1__metric_batch__unpack(NULL, k->enc.len, (const uint8_t *)k->enc.data);
}

static const Prometheus__MetricMetadata *find(const Vigil__V1__MetricBatch *mb, const char *name)
{
    for (size_t i = 0; i < mb->n_metadata; i++)
        if (strcmp(mb->metadata[i]->metric_family_name, name) == 0) return mb->metadata[i];
    return NULL;
}

static vg_err_t no_emit(void *ud, const void *ts, size_t len, size_t n)
{
    (void)ud, (void)ts, (void)len, (void)n;
    return VG_OK;
}

static void test_text_entries(void **state)
{
    (void)state;
    vg_scrape_target_t t = {.url = "http://x/metrics"};
    vg_scrape_sink k = {.emit_enc = no_emit};
    vg_buf_init(&k.enc, 0);
    vg_scrape_meta_update(&t, TEXT, strlen(TEXT), VG_EXPFMT_TEXT, fold_all(TEXT, VG_EXPFMT_TEXT));
    Vigil__V1__MetricBatch *mb = emitted(&t, &k, 1000);
    assert_non_null(mb);
    assert_int_equal(mb->n_timeseries, 0);
    assert_int_equal(mb->n_metadata, 4);
    const Prometheus__MetricMetadata *m = find(mb, "a_total");
    assert_non_null(m);
    assert_int_equal(m->type, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER);
    assert_string_equal(m->help, "Requests \\ served.\nBy code.");
    assert_string_equal(m->unit, "");
    m = find(mb, "only_help");
    assert_int_equal(m->type, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__UNKNOWN);
    assert_string_equal(m->help, "Has no TYPE.");
    m = find(mb, "g"); /* the later TYPE line wins */
    assert_int_equal(m->type, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER);
    assert_int_equal(find(mb, "u")->type, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__UNKNOWN);
    assert_null(find(mb, "no_meta"));
    vigil__v1__metric_batch__free_unpacked(mb, NULL);
    /* Sent: nothing more until the resend period has passed. */
    assert_null(emitted(&t, &k, 2000));
    assert_null(emitted(&t, &k, 1000 + VG_SCRAPE_META_RESEND_MS - 1));
    mb = emitted(&t, &k, 1000 + VG_SCRAPE_META_RESEND_MS);
    assert_non_null(mb);
    assert_int_equal(mb->n_metadata, 4);
    vigil__v1__metric_batch__free_unpacked(mb, NULL);
    vg_buf_free(&k.enc);
    vg_scrape_target_destroy(&t);
}

static void test_openmetrics_unit(void **state)
{
    (void)state;
    vg_scrape_target_t t = {.url = "http://x/metrics"};
    vg_scrape_sink k = {.emit_enc = no_emit};
    vg_buf_init(&k.enc, 0);
    vg_scrape_meta_update(&t, OM, strlen(OM), VG_EXPFMT_OPENMETRICS,
                          fold_all(OM, VG_EXPFMT_OPENMETRICS));
    Vigil__V1__MetricBatch *mb = emitted(&t, &k, 5);
    assert_non_null(mb);
    assert_int_equal(mb->n_metadata, 1);
    assert_string_equal(mb->metadata[0]->metric_family_name, "d_seconds");
    assert_int_equal(mb->metadata[0]->type, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM);
    assert_string_equal(mb->metadata[0]->unit, "seconds");
    assert_string_equal(mb->metadata[0]->help, "Latency.");
    vigil__v1__metric_batch__free_unpacked(mb, NULL);
    vg_buf_free(&k.enc);
    vg_scrape_target_destroy(&t);
}

static void test_hash_tracks_changes(void **state)
{
    (void)state;
    uint64_t h = fold_all(TEXT, VG_EXPFMT_TEXT);
    assert_int_equal(h, fold_all(TEXT, VG_EXPFMT_TEXT));
    const char *samples_only = "# HELP a_total Requests \\\\ served.\\nBy code.\n"
                               "# TYPE a_total counter\na_total 9\n";
    const char *help_changed = "# HELP a_total Requests \\\\ served!\\nBy code.\n"
                               "# TYPE a_total counter\na_total 9\n";
    const char *type_changed = "# HELP a_total Requests \\\\ served.\\nBy code.\n"
                               "# TYPE a_total gauge\na_total 9\n";
    const char *other_values = "# HELP a_total Requests \\\\ served.\\nBy code.\n"
                               "# TYPE a_total counter\na_total{x=\"y\"} 10\n";
    uint64_t base = fold_all(samples_only, VG_EXPFMT_TEXT);
    assert_int_equal(base, fold_all(other_values, VG_EXPFMT_TEXT));
    assert_int_not_equal(base, fold_all(help_changed, VG_EXPFMT_TEXT));
    assert_int_not_equal(base, fold_all(type_changed, VG_EXPFMT_TEXT));
    /* A changed set is sent at once, even inside the resend period. */
    vg_scrape_target_t t = {.url = "http://x/metrics"};
    vg_scrape_sink k = {.emit_enc = no_emit};
    vg_buf_init(&k.enc, 0);
    vg_scrape_meta_update(&t, samples_only, strlen(samples_only), VG_EXPFMT_TEXT, base);
    Vigil__V1__MetricBatch *mb = emitted(&t, &k, 10);
    vigil__v1__metric_batch__free_unpacked(mb, NULL);
    vg_scrape_meta_update(&t, other_values, strlen(other_values), VG_EXPFMT_TEXT, base);
    assert_null(emitted(&t, &k, 20));
    vg_scrape_meta_update(&t, help_changed, strlen(help_changed), VG_EXPFMT_TEXT,
                          fold_all(help_changed, VG_EXPFMT_TEXT));
    mb = emitted(&t, &k, 30);
    assert_non_null(mb);
    assert_string_equal(mb->metadata[0]->help, "Requests \\ served!\nBy code.");
    vigil__v1__metric_batch__free_unpacked(mb, NULL);
    vg_buf_free(&k.enc);
    vg_scrape_target_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_entries),
        cmocka_unit_test(test_openmetrics_unit),
        cmocka_unit_test(test_hash_tracks_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
