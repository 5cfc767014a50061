/*
 * main.c (vigilctl) - the operator's command-line tool.
 *
 * Subcommands are a table of {name, summary, function} so adding one is one
 * function and one line. This build has: version, check config, query and
 * series (over the collector's Prometheus HTTP API).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config.h"
#include "collector/config.h"
#include "audit.h"
#include "backfill.h"
#include "check_rules.h"
#include "promqltest.h"
#include "vigil/buf.h"
#include "vigil/httpc.h"

typedef int (*cmd_fn)(int argc, char **argv);

static int cmd_version(int argc, char **argv)
{
    (void)argc, (void)argv;
    printf("vigilctl %s\n", VIGIL_VERSION);
    return 0;
}

static int check_collector(const char *path)
{
    vg_collector_config_t *c = NULL;
    vg_error err = {0};
    vg_err_t rc = vg_collector_config_load(path, &c, &err);
    if (rc) {
        fprintf(stderr, "%s\n", vg_error_msg(&err, rc));
        return 1;
    }
    vg_collector_config_free(c);
    printf("%s: OK (collector config)\n", path);
    return 0;
}

static int check_agent(const char *path)
{
    vg_agent_config_t *c = NULL;
    vg_error err = {0};
    vg_err_t rc = vg_agent_config_load(path, &c, &err);
    if (rc) {
        fprintf(stderr, "%s\n", vg_error_msg(&err, rc));
        return 1;
    }
    vg_agent_config_free(c);
    printf("%s: OK (agent config)\n", path);
    return 0;
}

/* vigilctl check config agent|collector FILE... */
static int cmd_check(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "rules") == 0) return vg_ctl_check_rules(argc - 2, argv + 2);
    if (argc < 4 || strcmp(argv[1], "config") != 0) {
        fprintf(stderr, "usage: vigilctl check config agent|collector FILE...\n");
        return 2;
    }
    int collector = strcmp(argv[2], "collector") == 0;
    if (!collector && strcmp(argv[2], "agent") != 0) {
        fprintf(stderr, "vigilctl: check config: say 'agent' or 'collector', not '%s'\n", argv[2]);
        return 2;
    }
    int bad = 0;
    for (int i = 3; i < argc; i++)
        bad |= collector ? check_collector(argv[i]) : check_agent(argv[i]);
    return bad;
}

static int http_get(const char *url)
{
    vg_httpc_t *c = vg_httpc_new();
    if (!c) return 1;
    vg_buf out;
    vg_buf_init(&out, 0);
    vg_httpc_req req = {.url = url, .timeout_ms = 30000};
    int status = 0;
    vg_error err = {0};
    vg_err_t rc = vg_httpc_do(c, &req, &status, &out, &err);
    vg_httpc_free(c);
    if (rc) {
        fprintf(stderr, "vigilctl: %s\n", vg_error_msg(&err, rc));
        vg_buf_free(&out);
        return 1;
    }
    printf("%s\n", out.data ? out.data : "");
    vg_buf_free(&out);
    return status / 100 == 2 ? 0 : 1;
}

static const char *server_url(void)
{
    const char *u = getenv("VIGIL_URL");
    return u && *u ? u : "http://127.0.0.1:9400";
}

static int url_api(const char *endpoint, const char *param, const char *value)
{
    vg_buf url;
    vg_buf_init(&url, 0);
    vg_buf_printf(&url, "%s%s?%s=", server_url(), endpoint, param);
    for (const char *p = value; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-_.~", ch))
            vg_buf_putc(&url, (char)ch);
        else
            vg_buf_printf(&url, "%%%02X", ch);
    }
    int rc = url.data ? http_get(url.data) : 1;
    vg_buf_free(&url);
    return rc;
}

/* vigilctl query EXPR: instant query against $VIGIL_URL (default the local collector). */
static int cmd_query(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: vigilctl query EXPR   (server from $VIGIL_URL)\n");
        return 2;
    }
    return url_api("/api/v1/query", "query", argv[1]);
}

static int cmd_series(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: vigilctl series SELECTOR   (server from $VIGIL_URL)\n");
        return 2;
    }
    return url_api("/api/v1/series", "match[]", argv[1]);
}

static const struct {
    const char *name;
    const char *summary;
    cmd_fn fn;
} commands[] = {
    {"version", "print the version", cmd_version},
    {"check", "check config agent|collector FILE... | check rules FILE...: validate files",
     cmd_check},
    {"query", "query EXPR: run an instant query on the collector", cmd_query},
    {"series", "series SELECTOR: list matching series", cmd_series},
    {"promql-test", "promql-test [-v] FILE...: run promqltest scripts in-process",
     vg_promqltest_main},
    {"backfill", "backfill [--tenant T] FILE: import timestamped samples (text/OpenMetrics)",
     vg_backfill_main},
    {"audit",
     "audit verify --data-dir DIR [--tenant T] [--key-file F] [--require-signatures] | "
     "audit erase --subject ID --tenant T --data-dir DIR [--key-file F]",
     vg_ctl_audit_main},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: vigilctl COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nVIGIL_URL selects the collector (default http://127.0.0.1:9400).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) return cmd_version(0, NULL);
    for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "vigilctl: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
