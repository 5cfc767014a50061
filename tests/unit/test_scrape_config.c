/*
 * test_scrape_config.c - the Prometheus scrape_config parts of the agent
 * config: relabel_configs and metric_relabel_configs (compiled at load,
 * errors with file:line:col of the offending key), file_sd_configs, the
 * HTTP client settings, global limits and the global keys accepted for a
 * pasted prometheus.yml.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "agent/config.h"
#include "vigil/alloc.h"

static vg_agent_config_t *parse_ok(const char *name, const char *yaml)
{
    vg_agent_config_t *c = NULL;
    vg_error err = {0};
    if (vg_agent_config_parse(name, yaml, strlen(yaml), &c, &err))
        fail_msg("rejected: %s\n%s", err.msg, yaml);
    return c;
}

/* A prometheus.yml as people write it. */
static const char prom_yaml[] =
    "global:\n"
    "  scrape_interval: 15s\n"
    "  evaluation_interval: 15s\n"
    "  scrape_protocols: [OpenMetricsText1.0.0, PrometheusText0.0.4]\n"
    "  query_log_file: /tmp/q.log\n"
    "  sample_limit: 1000\n"
    "  body_size_limit: 10MB\n"
    "  external_labels: {monitor: codelab}\n"
    "scrape_configs:\n"
    "  - job_name: node\n"
    "    label_limit: 30\n"
    "    relabel_configs:\n"
    "      - source_labels: [__address__]\n"
    "        regex: '([^:]+):\\d+'\n"
    "        target_label: host\n"
    "      - source_labels: [__meta_filepath]\n"
    "        regex: .*/skip\\.json\n"
    "        action: drop\n"
    "      - {action: labelmap, regex: '__meta_(.+)'}\n"
    "      - {source_labels: [a, b], separator: '', modulus: 4, target_label: shard, action: "
    "HashMod}\n"
    "    metric_relabel_configs:\n"
    "      - source_labels: [__name__]\n"
    "        regex: 'go_.*'\n"
    "        action: drop\n"
    "    file_sd_configs:\n"
    "      - files: ['targets/*.json', /etc/t/x.yml]\n"
    "      - files: [a.yaml]\n"
    "        refresh_interval: 30s\n"
    "    basic_auth: {username: u, password_file: /run/secrets/p}\n"
    "    tls_config: {ca_file: ca.pem, cert_file: c.pem, key_file: k.pem, server_name: node-a, "
    "insecure_skip_verify: true}\n"
    "    static_configs: [{targets: ['127.0.0.1:9100']}]\n"
    "  - job_name: api\n"
    "    sample_limit: 5\n"
    "    authorization: {credentials: s3cret}\n"
    "  - job_name: legacy\n"
    "    bearer_token_file: /run/token\n";

static void test_prometheus_yml(void **state)
{
    vg_agent_config_t *c = parse_ok("/etc/vigil/agent.yml", prom_yaml);
    assert_int_equal(c->nscrape_configs, 3);
    const vg_scrape_config_t *sc = &c->scrape_configs[0];
    assert_int_equal(sc->nrelabel_rules, 4);
    assert_string_equal(sc->relabel_rules[0].regex, "([^:]+):\\d+");
    assert_null(sc->relabel_rules[0].action);
    assert_null(sc->relabel_rules[0].separator);
    assert_string_equal(sc->relabel_rules[3].separator, "");
    assert_int_equal(sc->relabel_rules[3].modulus, 4);
    assert_non_null(sc->relabel);
    assert_int_equal(vg_relabel_count(sc->relabel), 4);
    assert_int_equal(vg_relabel_count(sc->metric_relabel), 1);
    assert_int_equal(c->ncompiled, 2);
    /* limits: own, else global */
    assert_int_equal(sc->sample_limit, 1000);
    assert_int_equal(sc->label_limit, 30);
    assert_int_equal(sc->body_size_limit, 10000000);
    assert_int_equal(c->scrape_configs[1].sample_limit, 5);
    /* file_sd: relative paths resolved against the config's folder */
    assert_int_equal(sc->nfile_sd, 2);
    assert_int_equal(sc->file_sd[0].nfiles, 2);
    assert_string_equal(sc->file_sd[0].files[0], "/etc/vigil/targets/*.json");
    assert_string_equal(sc->file_sd[0].files[1], "/etc/t/x.yml");
    assert_int_equal(sc->file_sd[0].refresh_interval_ms, 300000);
    assert_string_equal(sc->file_sd[1].files[0], "/etc/vigil/a.yaml");
    assert_int_equal(sc->file_sd[1].refresh_interval_ms, 30000);
    /* HTTP client */
    assert_true(sc->auth.basic);
    assert_string_equal(sc->auth.username, "u");
    assert_string_equal(sc->auth.password_file, "/run/secrets/p");
    assert_string_equal(sc->auth.ca_file, "ca.pem");
    assert_string_equal(sc->auth.server_name, "node-a");
    assert_true(sc->auth.insecure_skip_verify);
    assert_false(c->scrape_configs[1].auth.basic);
    assert_string_equal(c->scrape_configs[1].auth.auth_type, "Bearer");
    assert_string_equal(c->scrape_configs[1].auth.credentials, "s3cret");
    assert_string_equal(c->scrape_configs[2].auth.credentials_file, "/run/token");
    vg_agent_config_free(c);
}

static void test_errors(void **state)
{
    static const struct {
        const char *yaml;
        const char *msg;
    } cases[] = {
        {"scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: drop\n"
         "      - action: dance\n",
         "agent.yml:5:17: scrape_configs[0].relabel_configs[1]: unknown relabel action "
         "\"dance\""},
        {"scrape_configs:\n  - job_name: a\n    relabel_configs:\n"
         "      - {source_labels: [x], regex: 'a)(b', action: keep}\n",
         "agent.yml:4:37: scrape_configs[0].relabel_configs[0]: error parsing regexp \"a)(b\""},
        {"scrape_configs:\n  - job_name: a\n    metric_relabel_configs:\n"
         "      - source_labels: [x]\n",
         "agent.yml:4:9: scrape_configs[0].metric_relabel_configs[0]: relabel configuration for "
         "replace action requires 'target_label' value"},
        {"scrape_configs:\n  - job_name: a\n    relabel_configs:\n"
         "      - {target_label: x, action: hashmod}\n",
         "agent.yml:4:9: scrape_configs[0].relabel_configs[0]: relabel configuration for hashmod "
         "requires non-zero modulus"},
        {"scrape_configs:\n  - job_name: a\n    relabel_configs:\n"
         "      - {target_label: 1x}\n",
         "agent.yml:4:24: scrape_configs[0].relabel_configs[0]: \"1x\" is invalid 'target_label' "
         "for replace action"},
        {"scrape_configs: [{job_name: a, relabel_configs: [{action: labeldrop, regex: x, "
         "separator: ','}]}]\n",
         "labeldrop action requires only 'regex', and no other fields"},
        {"scrape_configs: [{job_name: a, relabel_configs: [{sorce_labels: [a]}]}]\n",
         "unknown key \"sorce_labels\" in scrape_configs[0].relabel_configs[0]"},
        {"scrape_configs: [{job_name: a, relabel_configs: [{modulus: -3}]}]\n",
         "scrape_configs[0].relabel_configs[0].modulus: expected a non-negative integer"},
        {"scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: [x]\n",
         "agent.yml:4:17: scrape_configs[0].file_sd_configs[0].files[0]: path name \"x\" is not "
         "valid for file discovery"},
        {"scrape_configs: [{job_name: a, file_sd_configs: [{files: ['a/*/b.json']}]}]\n",
         "path name \"a/*/b.json\" is not valid for file discovery"},
        {"scrape_configs: [{job_name: a, file_sd_configs: [{files: []}]}]\n",
         "file service discovery config must contain at least one path name"},
        {"scrape_configs: [{job_name: a, file_sd_configs: [{refresh_interval: 1m}]}]\n",
         "missing required key \"files\" in scrape_configs[0].file_sd_configs[0]"},
        {"scrape_configs: [{job_name: a, file_sd_configs: [{files: [a.json], refresh: 1m}]}]\n",
         "unknown key \"refresh\""},
        {"scrape_configs:\n  - job_name: a\n    basic_auth: {username: u, password: p, "
         "password_file: f}\n",
         "agent.yml:3:17: scrape_configs[0]: at most one of basic_auth password, password_file & "
         "password_ref must be configured"},
        {"scrape_configs: [{job_name: a, basic_auth: {username: u}, authorization: "
         "{credentials: c}}]\n",
         "at most one of basic_auth, oauth2 & authorization must be configured"},
        {"scrape_configs: [{job_name: a, authorization: {type: Basic, credentials: c}}]\n",
         "authorization type cannot be set to \"basic\", use \"basic_auth\" instead"},
        {"scrape_configs: [{job_name: a, authorization: {credentials: c, credentials_file: f}}]\n",
         "at most one of authorization credentials & credentials_file must be configured"},
        {"scrape_configs: [{job_name: a, bearer_token: t, bearer_token_file: f}]\n",
         "at most one of bearer_token & bearer_token_file must be configured"},
        {"scrape_configs: [{job_name: a, bearer_token: t, basic_auth: {username: u}}]\n",
         "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"},
        {"scrape_configs: [{job_name: a, tls_config: {cert_file: c}}]\n",
         "exactly one of key or key_file must be configured when a client certificate is "
         "configured"},
        {"scrape_configs: [{job_name: a, tls_config: {key_file: k}}]\n",
         "exactly one of cert or cert_file must be configured when a client key is configured"},
        {"scrape_configs: [{job_name: a, tls_config: {insecure: true}}]\n",
         "unknown key \"insecure\" in scrape_configs[0].tls_config"},
        {"scrape_configs: [{job_name: a, basic_auth: {user: u}}]\n",
         "unknown key \"user\" in scrape_configs[0].basic_auth"},
        {"global: {evaluation_intervall: 1m}\n", "unknown key \"evaluation_intervall\" in global"},
        {"global: {sample_limit: many}\n", "global.sample_limit: expected a non-negative integer"},
        /* without relabel_configs a URL as a target is refused, with them it may be rewritten */
        {"scrape_configs: [{job_name: a, static_configs: [{targets: ['http://x:1']}]}]\n",
         "scrape_configs[0].static_configs[0].targets[0]: \"http://x:1\" is not a valid target"},
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

static void test_url_target_with_relabeling(void **state)
{
    vg_agent_config_t *c = parse_ok(
        "agent.yml", "scrape_configs:\n  - job_name: blackbox\n"
                     "    static_configs: [{targets: ['http://example.com/x']}]\n"
                     "    relabel_configs:\n"
                     "      - {source_labels: [__address__], target_label: "
                     "__param_target}\n"
                     "      - {target_label: __address__, replacement: '127.0.0.1:9115'}\n");
    assert_int_equal(c->scrape_configs[0].nrelabel_rules, 2);
    /* relative file_sd paths stay relative when the config has no folder */
    vg_agent_config_free(c);
    c = parse_ok("agent.yml",
                 "scrape_configs: [{job_name: a, file_sd_configs: [{files: [t.json]}]}]\n");
    assert_string_equal(c->scrape_configs[0].file_sd[0].files[0], "t.json");
    vg_agent_config_free(c);
}

static void test_alloc_failures(void **state)
{
    int ok = 0;
    for (long n = 1; n < 2000 && !ok; n++) {
        vg_agent_config_t *c = NULL;
        vg_alloc_fail_after(n);
        vg_err_t rc =
            vg_agent_config_parse("/etc/agent.yml", prom_yaml, strlen(prom_yaml), &c, NULL);
        vg_alloc_fail_after(0);
        if (rc == VG_OK)
            ok = 1;
        else
            assert_null(c);
        vg_agent_config_free(c);
    }
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prometheus_yml),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_url_target_with_relabeling),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
