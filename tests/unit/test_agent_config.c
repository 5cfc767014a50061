/*
 * test_agent_config.c - the agent's config: embedded default, DESIGN.md's
 * example with a full Prometheus scrape config, and every refusal.
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
#include "vigil/alloc.h"

static vg_agent_config_t *parse_ok(const char *yaml)
{
    vg_agent_config_t *c = NULL;
    vg_error err = {0};
    if (vg_agent_config_parse("agent.yml", yaml, strlen(yaml), &c, &err))
        fail_msg("rejected: %s\n%s", err.msg, yaml);
    return c;
}

static void test_embedded_default(void **state)
{
    vg_agent_config_t *c = NULL;
    vg_error err = {0};
    if (vg_agent_config_load(NULL, &c, &err)) fail_msg("%s", err.msg);
    assert_string_equal(c->source, "<embedded default>");
    assert_string_equal(c->listen, "127.0.0.1:9401");
    char host[256] = "";
    gethostname(host, sizeof host);
    host[255] = '\0';
    assert_string_equal(c->node, host[0] ? host : "localhost");
    assert_string_equal(c->tenant, "default");
    assert_string_equal(c->data_dir, "/var/lib/vigil-agent");
    assert_int_equal(c->scrape_interval_ms, 30000);
    assert_int_equal(c->scrape_timeout_ms, 10000);
    assert_int_equal(c->nexternal_labels, 0);
    assert_int_equal(c->nscrape_configs, 1);
    const vg_scrape_config_t *sc = &c->scrape_configs[0];
    assert_string_equal(sc->job_name, "vigil-agent");
    assert_int_equal(sc->interval_ms, 30000);
    assert_int_equal(sc->timeout_ms, 10000);
    assert_string_equal(sc->metrics_path, "/metrics");
    assert_string_equal(sc->scheme, "http");
    assert_int_equal(sc->honor_labels, 0);
    assert_int_equal(sc->honor_timestamps, 1);
    assert_int_equal(sc->nstatic, 1);
    assert_int_equal(sc->static_configs[0].ntargets, 1);
    assert_string_equal(sc->static_configs[0].targets[0], c->listen);
    assert_int_equal(c->host_metrics_enabled, 1);
    assert_string_equal(c->http_url, "http://127.0.0.1:9400");
    assert_null(c->kafka_brokers);
    assert_string_equal(c->kafka_metrics_topic, "vigil.metrics");
    assert_string_equal(c->kafka_audit_topic, "vigil.audit");
    assert_int_equal(c->nkafka_properties, 0);
    assert_int_equal(c->spool_max_bytes, UINT64_C(1) << 30);
    assert_int_equal(c->spool_sync_ms, 0); /* "always" */
    assert_string_equal(c->spool_replay, "interleave");
    assert_int_equal(c->batch_max_bytes, 1 << 20);
    assert_int_equal(c->batch_max_delay_ms, 1000);
    assert_int_equal(c->zstd_level, 1);
    vg_agent_config_free(c);
    vg_agent_config_free(NULL);
}

static void test_empty_file_has_no_jobs(void **state)
{
    vg_agent_config_t *c = parse_ok("");
    assert_string_equal(c->source, "agent.yml");
    assert_int_equal(c->nscrape_configs, 0);
    assert_string_equal(c->listen, "127.0.0.1:9401");
    vg_agent_config_free(c);
}

/* DESIGN.md's example, with audit_logs emptied, plus a Prometheus-style job. */
static const char full_yaml[] =
    "agent:   {listen: 0.0.0.0:9401, node: node-a, tenant: team-a, data_dir: /tmp/vigil}\n"
    "global:\n"
    "  scrape_interval: 15s\n"
    "  scrape_timeout: 10s\n"
    "  external_labels:\n"
    "    region: eu-west-1\n"
    "    cluster: prod\n"
    "scrape_configs:\n"
    "  - job_name: node\n"
    "    static_configs:\n"
    "      - targets: ['localhost:9100', '10.0.0.2:9100']\n"
    "        labels:\n"
    "          rack: r1\n"
    "      - targets: [10.0.0.3:9100]\n"
    "  - job_name: 'federate'\n"
    "    scrape_interval: 1m\n"
    "    scrape_timeout: 50s\n"
    "    metrics_path: /federate\n"
    "    scheme: https\n"
    "    honor_labels: true\n"
    "    honor_timestamps: false\n"
    "    params:\n"
    "      'match[]':\n"
    "        - '{job=\"prometheus\"}'\n"
    "        - '{__name__=~\"job:.*\"}'\n"
    "      format: [prometheus]\n"
    "    sample_limit: 50000\n"
    "    label_limit: 64\n"
    "    body_size_limit: 10MB\n"
    "    relabel_configs: []\n"
    "    metric_relabel_configs:\n"
    "    tls_config: {}\n"
    "    static_configs:\n"
    "      - targets: ['source-prometheus:9090']\n"
    "  - job_name: fast\n"
    "    scrape_interval: 5s\n"
    "host_metrics: {enabled: false}\n"
    "audit_logs: []\n"
    "output:\n"
    "  http:  {url: http://collector:9400}\n"
    "  kafka:\n"
    "    brokers: k1:9092,k2:9092\n"
    "    metrics_topic: m\n"
    "    audit_topic: a\n"
    "    properties:\n"
    "      security.protocol: SASL_SSL\n"
    "      sasl.mechanisms: PLAIN\n"
    "  batch_max_bytes: 256KiB\n"
    "  batch_max_delay: 250ms\n"
    "  zstd_level: 6\n"
    "spool:   {max_bytes: 2GiB, sync: 500ms, replay: ordered}\n";

static void test_full(void **state)
{
    vg_agent_config_t *c = parse_ok(full_yaml);
    assert_string_equal(c->listen, "0.0.0.0:9401");
    assert_string_equal(c->node, "node-a");
    assert_string_equal(c->tenant, "team-a");
    assert_string_equal(c->data_dir, "/tmp/vigil");
    assert_int_equal(c->scrape_interval_ms, 15000);
    assert_int_equal(c->nexternal_labels, 2);
    assert_string_equal(c->external_labels[0].name, "cluster");
    assert_string_equal(c->external_labels[1].value, "eu-west-1");
    assert_int_equal(c->nscrape_configs, 3);

    const vg_scrape_config_t *n = &c->scrape_configs[0];
    assert_string_equal(n->job_name, "node");
    assert_int_equal(n->interval_ms, 15000);
    assert_int_equal(n->timeout_ms, 10000);
    assert_int_equal(n->nstatic, 2);
    assert_int_equal(n->static_configs[0].ntargets, 2);
    assert_string_equal(n->static_configs[0].targets[1], "10.0.0.2:9100");
    assert_int_equal(n->static_configs[0].nlabels, 1);
    assert_string_equal(n->static_configs[0].labels[0].name, "rack");
    assert_int_equal(n->static_configs[1].nlabels, 0);
    assert_int_equal(n->nparams, 0);

    const vg_scrape_config_t *f = &c->scrape_configs[1];
    assert_string_equal(f->job_name, "federate");
    assert_int_equal(f->interval_ms, 60000);
    assert_int_equal(f->timeout_ms, 50000);
    assert_string_equal(f->metrics_path, "/federate");
    assert_string_equal(f->scheme, "https");
    assert_int_equal(f->honor_labels, 1);
    assert_int_equal(f->honor_timestamps, 0);
    assert_int_equal(f->nparams, 3);
    assert_string_equal(f->params[0].key, "match[]");
    assert_string_equal(f->params[0].value, "{job=\"prometheus\"}");
    assert_string_equal(f->params[1].key, "match[]");
    assert_string_equal(f->params[2].key, "format");
    assert_string_equal(f->params[2].value, "prometheus");
    assert_int_equal(f->sample_limit, 50000);
    assert_int_equal(f->label_limit, 64);
    assert_int_equal(f->body_size_limit, 10000000);

    /* inherited timeout is capped at the job's shorter interval */
    const vg_scrape_config_t *q = &c->scrape_configs[2];
    assert_int_equal(q->interval_ms, 5000);
    assert_int_equal(q->timeout_ms, 5000);

    assert_int_equal(c->host_metrics_enabled, 0);
    assert_string_equal(c->http_url, "http://collector:9400");
    assert_string_equal(c->kafka_brokers, "k1:9092,k2:9092");
    assert_string_equal(c->kafka_metrics_topic, "m");
    assert_string_equal(c->kafka_audit_topic, "a");
    assert_int_equal(c->nkafka_properties, 2);
    assert_string_equal(c->kafka_properties[0].key, "security.protocol");
    assert_string_equal(c->kafka_properties[1].value, "PLAIN");
    assert_int_equal(c->spool_max_bytes, UINT64_C(2) << 30);
    assert_int_equal(c->spool_sync_ms, 500);
    assert_string_equal(c->spool_replay, "ordered");
    assert_int_equal(c->batch_max_bytes, 256 << 10);
    assert_int_equal(c->batch_max_delay_ms, 250);
    assert_int_equal(c->zstd_level, 6);
    vg_agent_config_free(c);
}

static void test_empty_brokers_means_http(void **state)
{
    vg_agent_config_t *c = parse_ok("output: {kafka: {brokers: ''}}\n");
    assert_null(c->kafka_brokers);
    vg_agent_config_free(c);
}

static void test_errors(void **state)
{
    static const struct {
        const char *yaml;
        const char *msg;
    } cases[] = {
        {"global:\n  scrape_interval: 30s\n  scrape_intervall: 1m\n",
         "agent.yml:3:3: unknown key \"scrape_intervall\" in global"},
        {"agnet: {}\n", "agent.yml:1:1: unknown key \"agnet\" at the top level"},
        {"global: {scrape_interval: abc}\n",
         "agent.yml:1:27: global.scrape_interval: expected a duration like 30s, got \"abc\""},
        {"global: {scrape_interval: 10s, scrape_timeout: 20s}\n",
         "agent.yml:1:48: global: scrape_timeout is greater than scrape_interval"},
        {"global: {external_labels: {0x: y}}\n", "invalid label name \"0x\""},
        {"scrape_configs:\n  - static_configs: []\n",
         "agent.yml:2:5: missing required key \"job_name\" in scrape_configs[0]"},
        {"scrape_configs:\n  - job_name: ''\n",
         "agent.yml:2:15: scrape_configs[0]: job_name is empty"},
        {"scrape_configs:\n  - job_name: a\n  - job_name: b\n  - job_name: a\n",
         "agent.yml:4:15: scrape_configs[2]: duplicate job_name \"a\""},
        {"scrape_configs:\n  - job_name: a\n    scrape_interval: 10s\n    scrape_timeout: 11s\n",
         "agent.yml:4:21: scrape_configs[0]: scrape_timeout 11s is greater than scrape_interval "
         "10s for job \"a\""},
        {"global: {scrape_interval: 5s, scrape_timeout: 5s}\n"
         "scrape_configs: [{job_name: a, scrape_timeout: 6s}]\n",
         "scrape_timeout 6s is greater than scrape_interval 5s"},
        {"scrape_configs: [{job_name: a, scrape_interval: 0}]\n",
         "scrape_configs[0].scrape_interval: must be at least 1ms"},
        {"scrape_configs: [{job_name: a, scheme: ftp}]\n",
         "scrape_configs[0].scheme: must be one of http|https, got \"ftp\""},
        {"scrape_configs: [{job_name: a, sample_limit: -1}]\n",
         "scrape_configs[0].sample_limit: expected a non-negative integer"},
        {"scrape_configs: [{job_name: a, body_size_limit: 10 gigs}]\n",
         "scrape_configs[0].body_size_limit: expected a size"},
        {"scrape_configs: [{job_name: a, params: {x: y}}]\n",
         "scrape_configs[0].params.x: expected a list of values"},
        {"scrape_configs: [{job_name: a, params: [x]}]\n",
         "scrape_configs[0].params: expected a map"},
        {"scrape_configs: [{job_name: a, params: {x: [[y]]}}]\n", "expected a string, got a list"},
        /* relabel_configs, file_sd_configs, auth and TLS: see test_scrape_config.c */
        {"scrape_configs: [{job_name: a, kubernetes_sd_configs: []}]\n",
         "unknown key \"kubernetes_sd_configs\" in scrape_configs[0]"},
        {"scrape_configs: [{job_name: a, static_configs: [{targets: ['http://x:1']}]}]\n",
         "scrape_configs[0].static_configs[0].targets[0]: \"http://x:1\" is not a valid target"},
        {"scrape_configs: [{job_name: a, static_configs: [{targets: [x:1], labels: {a-b: c}}]}]\n",
         "scrape_configs[0].static_configs[0].labels: invalid label name \"a-b\""},
        {"scrape_configs: [{job_name: a, static_configs: [{target: [x:1]}]}]\n",
         "unknown key \"target\" in scrape_configs[0].static_configs[0]"},
        {"scrape_configs: {job_name: a}\n", "scrape_configs: expected a list, got a map"},
        {"audit_logs:\n  - paths: [/var/log/app/*.jsonl]\n    redact: [{name: phone}]\n",
         "audit_logs[0].redact[0]: redact rule \"phone\": no pattern and not a preset"},
        {"audit_logs:\n  - tenant: a\n", "audit_logs[0]"},
        {"host_metrics: {enabled: sometimes}\n", "host_metrics.enabled: expected true or false"},
        {"output: {http: {url: collector:9400}}\n",
         "output.http.url: \"collector:9400\" must start with http:// or https://"},
        {"output: {kafka: {properties: {a: [b]}}}\n",
         "output.kafka.properties.a: expected a string, got a list"},
        {"output: {stdout: {}}\n", "unknown key \"stdout\" in output"},
        {"spool: {max_bytes: 1KiB}\n", "spool.max_bytes: must be at least 1MiB"},
        {"spool: {sync: sometimes}\n", "spool.sync: \"sometimes\" must be \"always\""},
        {"spool: {replay: random}\n", "spool.replay"},
        {"output: {zstd_level: 22}\n", "output.zstd_level"},
        {"output: {batch_max_bytes: 100}\n", "output.batch_max_bytes"},
        {"agent: {listen: [a]}\n", "agent.listen: expected a string, got a list"},
        {"- a\n", "agent.yml:1:1: the top level: expected a map"},
        {"agent: {listen: x}\nagent: {listen: y}\n", "agent.yml:2:1: duplicate key \"agent\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        vg_agent_config_t *c = NULL;
        vg_error err = {0};
        vg_err_t rc =
            vg_agent_config_parse("agent.yml", cases[i].yaml, strlen(cases[i].yaml), &c, &err);
        if (rc == VG_OK) fail_msg("case %zu accepted:\n%s", i, cases[i].yaml);
        assert_null(c);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, err.msg, cases[i].msg);
    }
}

static void test_load_file(void **state)
{
    char path[] = "/tmp/vigil-agent-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, full_yaml, strlen(full_yaml)), (ssize_t)strlen(full_yaml));
    close(fd);
    vg_agent_config_t *c = NULL;
    vg_error err = {0};
    if (vg_agent_config_load(path, &c, &err)) fail_msg("%s", err.msg);
    assert_string_equal(c->source, path);
    assert_int_equal(c->nscrape_configs, 3);
    vg_agent_config_free(c);
    unlink(path);
    assert_int_equal(vg_agent_config_load(path, &c, &err), VG_EIO);
    assert_null(c);
}

static void test_alloc_failures(void **state)
{
    for (long n = 1; n < 300; n++) {
        vg_agent_config_t *c = NULL;
        vg_alloc_fail_after(n);
        vg_err_t rc = vg_agent_config_parse("a.yml", full_yaml, strlen(full_yaml), &c, NULL);
        vg_alloc_fail_after(0);
        if (rc) assert_null(c);
        vg_agent_config_free(c);
    }
}

static void test_doc(void **state)
{
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_agent_config_doc(&b), VG_OK);
    assert_non_null(strstr(b.data, "### `scrape_configs[]`"));
    assert_non_null(strstr(b.data, "| `job_name` | string | required |"));
    assert_non_null(strstr(b.data, "### `output.kafka`"));
    vg_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedded_default),
        cmocka_unit_test(test_empty_file_has_no_jobs),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_empty_brokers_means_http),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_doc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
