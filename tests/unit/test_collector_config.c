/*
 * test_collector_config.c - the collector's config: defaults, DESIGN.md's
 * example, tenant overrides, and the sections that must stay empty.
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

#include "agent/config.h"
#include "collector/config.h"
#include "vigil/alloc.h"
#include "vigil/duration.h"

static vg_collector_config_t *parse_ok(const char *yaml)
{
    vg_collector_config_t *c = NULL;
    vg_error err = {0};
    if (vg_collector_config_parse("collector.yml", yaml, strlen(yaml), &c, &err))
        fail_msg("rejected: %s\n%s", err.msg, yaml);
    return c;
}

static void check_defaults(const vg_collector_config_t *c)
{
    assert_string_equal(c->listen, "127.0.0.1:9400");
    assert_string_equal(c->data_dir, "/var/lib/vigil-collector");
    assert_null(c->kafka_brokers);
    assert_string_equal(c->kafka_group_id, "vigil-collector");
    assert_string_equal(c->kafka_metrics_topic, "vigil.metrics");
    assert_string_equal(c->kafka_audit_topic, "vigil.audit");
    assert_int_equal(c->retention_raw_ms, 90 * VG_MS_PER_DAY);
    assert_int_equal(c->retention_5m_ms, VG_MS_PER_YEAR);
    assert_int_equal(c->retention_1h_ms, 7 * VG_MS_PER_YEAR);
    assert_int_equal(c->storage_max_bytes, 0);
    assert_int_equal(c->audit_hot_ms, 30 * VG_MS_PER_DAY);
    assert_int_equal(c->audit_warm_ms, 90 * VG_MS_PER_DAY);
    assert_int_equal(c->audit_cold_ms, 7 * VG_MS_PER_YEAR);
    assert_null(c->default_limits.tenant);
    assert_true(c->default_limits.ingestion_rate == 100000);
    assert_true(c->default_limits.ingestion_burst == 200000);
    assert_int_equal(c->default_limits.max_series, 1000000);
    assert_int_equal(c->ntenant_limits, 0);
    assert_int_equal(c->evaluation_interval_ms, 30000);
}

static void test_embedded_default(void **state)
{
    vg_collector_config_t *c = NULL;
    vg_error err = {0};
    if (vg_collector_config_load(NULL, &c, &err)) fail_msg("%s", err.msg);
    assert_string_equal(c->source, "<embedded default>");
    check_defaults(c);
    vg_collector_config_free(c);
    vg_collector_config_free(NULL);
}

/* DESIGN.md's collector example, verbatim: it spells out every default. */
static const char design_yaml[] =
    "collector: {listen: 127.0.0.1:9400, data_dir: /var/lib/vigil-collector}\n"
    "input:     {kafka: {brokers: 127.0.0.1:9092, group_id: vigil-collector, metrics_topic: "
    "vigil.metrics, audit_topic: vigil.audit}}\n"
    "storage:   {retention: {raw: 90d, 5m: 1y, 1h: 7y}, max_bytes: 0}\n"
    "audit:     {retention: {hot: 30d, warm: 90d, cold: 7y}}\n"
    "limits:    {default: {ingestion_rate: 100000, ingestion_burst: 200000, max_series: 1000000}, "
    "tenants: {}}\n"
    "evaluation_interval: 30s\n"
    "rule_files: []                                   # Prometheus rule-file format\n"
    "alerting:  {route: {}, receivers: [], inhibit_rules: [], alertmanagers: []}   # Alertmanager\n"
    "siem:      []\n"
    "remote_write: []                                 # Prometheus format\n";

static void test_design_example(void **state)
{
    vg_collector_config_t *c = parse_ok(design_yaml);
    assert_string_equal(c->kafka_brokers, "127.0.0.1:9092");
    c->kafka_brokers = NULL; /* the only non-default */
    check_defaults(c);
    vg_collector_config_free(c);
}

static void test_overrides_and_tenants(void **state)
{
    vg_collector_config_t *c = parse_ok("collector:\n  listen: 0.0.0.0:19400\n"
                                        "storage:\n  retention: {raw: 15d}\n  max_bytes: 500GB\n"
                                        "limits:\n"
                                        "  default: {ingestion_rate: 5000}\n"
                                        "  tenants:\n"
                                        "    team-a: {max_series: 20}\n"
                                        "    team-b:\n"
                                        "    team-c: {ingestion_rate: 1.5, ingestion_burst: 3}\n"
                                        "evaluation_interval: 1m\n"
                                        "alerting:\n"
                                        "siem: ~\n"
                                        "remote_write: []\n");
    assert_string_equal(c->listen, "0.0.0.0:19400");
    assert_int_equal(c->retention_raw_ms, 15 * VG_MS_PER_DAY);
    assert_int_equal(c->retention_5m_ms, VG_MS_PER_YEAR);
    assert_int_equal(c->storage_max_bytes, UINT64_C(500000000000));
    assert_true(c->default_limits.ingestion_rate == 5000);
    assert_true(c->default_limits.ingestion_burst == 200000);
    assert_int_equal(c->ntenant_limits, 3);
    const vg_tenant_limits_t *a = &c->tenant_limits[0], *b = &c->tenant_limits[1],
                             *t3 = &c->tenant_limits[2];
    assert_string_equal(a->tenant, "team-a");
    assert_int_equal(a->max_series, 20);
    assert_true(a->ingestion_rate == 5000); /* inherited from default, not the built-in */
    assert_string_equal(b->tenant, "team-b");
    assert_true(b->ingestion_rate == 5000);
    assert_int_equal(b->max_series, 1000000);
    assert_true(t3->ingestion_rate == 1.5);
    assert_true(t3->ingestion_burst == 3);
    assert_int_equal(c->evaluation_interval_ms, 60000);
    vg_collector_config_free(c);
}

static void test_errors(void **state)
{
    static const struct {
        const char *yaml;
        const char *msg;
    } cases[] = {
        {"collector: {listne: x}\n", "collector.yml:1:13: unknown key \"listne\" in collector"},
        {"input: {kafka: {topic: x}}\n", "unknown key \"topic\" in input.kafka"},
        {"storage: {retention: {raw: 90d, 10m: 1y}}\n", "unknown key \"10m\" in storage.retention"},
        {"storage: {retention: {raw: 90}}\n",
         "storage.retention.raw: expected a duration like 30s, got \"90\""},
        {"storage: {retention: {raw: 30m}}\n", "storage.retention.raw: must be at least 1h"},
        {"storage: {max_bytes: lots}\n", "storage.max_bytes: expected a size"},
        {"audit: {retention: {hot: -1d}}\n", "negative durations are not allowed"},
        {"limits: {default: {ingestion_rate: -5}}\n",
         "limits.default.ingestion_rate: must be at least 0"},
        {"limits: {default: {max_series: many}}\n", "limits.default.max_series: expected a non"},
        {"limits:\n  tenants:\n    a: {max_seriess: 1}\n",
         "collector.yml:3:9: unknown key \"max_seriess\" in limits.tenants.a"},
        {"limits: {tenants: {a: {ingestion_rate: x}}}\n",
         "limits.tenants.a.ingestion_rate: expected a number"},
        {"limits: {tenants: [a]}\n", "limits.tenants: expected a map of tenant names"},
        {"limits: {tenants: {'': {}}}\n", "limits.tenants: empty tenant name"},
        {"limits: {tenants: {a: {}, a: {}}}\n", "duplicate key \"a\""},
        {"evaluation_interval: 0\n", "evaluation_interval: must be at least 1s"},
        {"rule_files: {a: b}\n", "collector.yml:1:13: rule_files: expected a list of strings"},
        {"global: {external_labels: {'a b': x}}\n", "collector.yml:1:"},
        {"siem:\n  - type: syslog\n", "collector.yml:2:5: siem[0]: a syslog output needs address"},
        {"siem: [{type: splunk_hec, url: http://x, token: t, nope: 1}]\n",
         "collector.yml:1:52: unknown key \"nope\""},
        {"siem: [{type: kafka}]\n", "collector.yml:1:15:"},
        {"audit: {siem_buffer_bytes: 1KiB}\n", "collector.yml:1:"},
        {"remote_write: [{name: x}]\n", "collector.yml:1:"},
        {"remote_write: [{url: http://x, queue_config: {max_samples: 1}}]\n",
         "collector.yml:1:47: unknown key \"max_samples\""},
        {"remote_write: [{url: http://x, write_relabel_configs: [{action: nope}]}]\n",
         "collector.yml:1:"},
        {"remote_write: [{url: http://x, name: ../x}]\n", "collector.yml:1:38: remote_write[0].name: use letters"},
        {"alerting: {route: {receiver: pager}}\n",
         "collector.yml:1:30: undefined receiver \"pager\" used in route"},
        {"alerting: {receivers: [{name: x}]}\n", "root route must specify a default receiver"},
        {"alerting: {inhibit_rules: [{equal: ['a b']}]}\n", "invalid label name"},
        {"alerting: {alertmanagers: [x]}\n", "alerting.alertmanagers"},
        {"alerting: {templates: []}\n", "unknown key \"templates\" in alerting"},
        {"alerting: [x]\n", "collector.yml:1:11: alerting"},
        {"alerting: x\n", "collector.yml:1:11: alerting"},
        {"scrape_configs: []\n", "unknown key \"scrape_configs\" at the top level"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        vg_collector_config_t *c = NULL;
        vg_error err = {0};
        vg_err_t rc = vg_collector_config_parse("collector.yml", cases[i].yaml,
                                                strlen(cases[i].yaml), &c, &err);
        if (rc == VG_OK) fail_msg("case %zu accepted:\n%s", i, cases[i].yaml);
        assert_null(c);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, err.msg, cases[i].msg);
    }
}

static void test_load_file(void **state)
{
    char path[] = "/tmp/vigil-collector-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, design_yaml, strlen(design_yaml)), (ssize_t)strlen(design_yaml));
    close(fd);
    vg_collector_config_t *c = NULL;
    vg_error err = {0};
    if (vg_collector_config_load(path, &c, &err)) fail_msg("%s", err.msg);
    assert_string_equal(c->source, path);
    vg_collector_config_free(c);
    unlink(path);
    assert_int_equal(vg_collector_config_load(path, &c, &err), VG_EIO);
}

static void test_alloc_failures(void **state)
{
    const char *yaml = "limits: {tenants: {a: {max_series: 1}, b: {}}}\n";
    for (long n = 1; n < 200; n++) {
        vg_collector_config_t *c = NULL;
        vg_alloc_fail_after(n);
        vg_err_t rc = vg_collector_config_parse("c.yml", yaml, strlen(yaml), &c, NULL);
        vg_alloc_fail_after(0);
        if (rc) assert_null(c);
        vg_collector_config_free(c);
    }
}

/* docs/configuration.md is generated from the schema tables; keep it current.
 * Regenerate with VIGIL_WRITE_DOCS=1 ./test_collector_config. */
static void test_docs_current(void **state)
{
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(
        vg_buf_puts(&b,
                    "# Configuration reference\n\n"
                    "Generated from the schema tables in `agent/config.c` and "
                    "`collector/config.c` by `tests/unit/test_collector_config.c` "
                    "(`VIGIL_WRITE_DOCS=1 build/tests/test_collector_config`); do not edit.\n\n"
                    "Durations use the Prometheus syntax: a number and a unit among `ms`, `s`, "
                    "`m`, `h`, `d`, `w`, `y` (365 days), units largest first, e.g. `30s`, "
                    "`1h30m`, `90d`. Sizes are a number, optionally with a fraction, and a unit "
                    "among `B`, `KB`, `MB`, `GB`, `TB` (powers of 1000) or `KiB`, `MiB`, `GiB`, "
                    "`TiB` (powers of 1024), case-insensitive, e.g. `512MiB`, `1.5GB`. A key "
                    "that is absent, empty or `null` takes its default. Unknown or repeated "
                    "keys are errors that name `file:line:col`.\n\n"
                    "## Agent (`vigil-agent --config FILE`)\n\n"),
        VG_OK);
    assert_int_equal(vg_agent_config_doc(&b), VG_OK);
    assert_int_equal(vg_buf_puts(&b, "## Collector (`vigil-collector --config FILE`)\n\n"), VG_OK);
    assert_int_equal(vg_collector_config_doc(&b), VG_OK);
    while (b.len > 1 && b.data[b.len - 1] == '\n' && b.data[b.len - 2] == '\n')
        b.data[--b.len] = '\0';

    const char *path = VIGIL_SOURCE_DIR "/docs/configuration.md";
    if (getenv("VIGIL_WRITE_DOCS")) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(b.data, 1, b.len, f), b.len);
        fclose(f);
    }
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("%s missing; run with VIGIL_WRITE_DOCS=1", path);
    char *have = vg_malloc(b.len + 2);
    size_t n = fread(have, 1, b.len + 1, f);
    fclose(f);
    if (n != b.len || memcmp(have, b.data, b.len) != 0)
        fail_msg("%s is stale; run with VIGIL_WRITE_DOCS=1 and commit it", path);
    vg_free(have);
    vg_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedded_default),
        cmocka_unit_test(test_design_example),
        cmocka_unit_test(test_overrides_and_tenants),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_docs_current),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
