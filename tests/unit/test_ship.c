/*
 * test_ship.c - the shipping pipeline built from a config: the stable agent
 * id, the spool directory and seq file under data_dir, and start-up without
 * a usable data_dir (ships without a spool instead of refusing to run).
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../agent/config.h"
#include "ship/ship.h"
#include "vigil/log.h"

static void test_agent_id_is_stable(void **state)
{
    char a[300], b[300], c[300], cwd[256];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    vg_ship_agent_id("node-1", ".", a, sizeof(a));
    vg_ship_agent_id("node-1", cwd, b, sizeof(b));
    assert_string_equal(a, b); /* relative and absolute spellings are one agent */
    assert_int_equal(strncmp(a, "node-1/", 7), 0);
    assert_int_equal(strlen(a), 7 + 8);
    vg_ship_agent_id("node-1", "/var/lib/other-agent", c, sizeof(c));
    assert_string_not_equal(a, c);
    vg_ship_agent_id("node-1", "/var/lib/other-agent", b, sizeof(b));
    assert_string_equal(b, c); /* no pid, no time: the same every start */
}

static vg_agent_config_t *config(const char *data_dir)
{
    static char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "agent: {node: n1, data_dir: '%s'}\n"
             "output: {http: {url: 'http://127.0.0.1:9'}}\n",
             data_dir);
    vg_agent_config_t *c = NULL;
    vg_error e = {0};
    assert_int_equal(vg_agent_config_parse("t.yml", yaml, strlen(yaml), &c, &e), VG_OK);
    return c;
}

static void test_spool_under_data_dir(void **state)
{
    char dir[] = "/tmp/vigil-ship-XXXXXX", p[300];
    assert_non_null(mkdtemp(dir));
    vg_agent_config_t *c = config(dir);
    vg_metrics_t *m = vg_metrics_new();
    vg_ship_t *s = NULL;
    assert_int_equal(vg_ship_new(c, m, &s, NULL), VG_OK);
    assert_non_null(vg_ship_batcher(s));
    assert_true(vg_metric_value(
                    vg_metrics_gauge(m, "vigil_agent_spool_enabled", "", "kind=\"metrics\"")) == 1);
    vg_label_t l[] = {{"__name__", "up"}, {"job", "x"}};
    assert_int_equal(vg_batcher_add(vg_ship_batcher(s), l, 2, 1000, 1), VG_OK);
    vg_ship_free(s); /* nobody listens on port 9: the batch is spooled, not lost */
    snprintf(p, sizeof(p), "%s/spool/metrics", dir);
    vg_spool_opts so = {.dir = p, .sync_interval_ms = -1};
    vg_spool_t *sp = NULL;
    assert_int_equal(vg_spool_open(&so, NULL, &sp, NULL), VG_OK);
    assert_int_equal(vg_spool_records(sp), 1);
    vg_spool_rec r;
    assert_int_equal(vg_spool_peek(sp, &r, NULL), VG_OK);
    assert_int_equal(r.seq, 1);
    vg_spool_free(sp);
    snprintf(p, sizeof(p), "rm -rf '%s'", dir);
    assert_int_equal(system(p), 0);
    vg_metrics_free(m);
    vg_agent_config_free(c);
}

static void test_no_spool_still_ships(void **state)
{
    vg_agent_config_t *c = config("/proc/vigil-no-such-dir");
    vg_metrics_t *m = vg_metrics_new();
    vg_ship_t *s = NULL;
    assert_int_equal(vg_ship_new(c, m, &s, NULL), VG_OK);
    assert_non_null(vg_ship_batcher(s));
    assert_true(vg_metric_value(
                    vg_metrics_gauge(m, "vigil_agent_spool_enabled", "", "kind=\"metrics\"")) == 0);
    vg_ship_free(s);
    vg_ship_free(NULL);
    vg_metrics_free(m);
    vg_agent_config_free(c);
}

int main(void)
{
    vg_log_set_level(VG_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_id_is_stable),
        cmocka_unit_test(test_spool_under_data_dir),
        cmocka_unit_test(test_no_spool_still_ships),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
