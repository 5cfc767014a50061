/*
 * test_host.c - host metrics over the fixture tree in tests/data/host/.
 *
 * The whole-tree test runs every collector once over tests/data/host/proc
 * and /sys with a fake statvfs and a fixed clock, renders each sample as
 * `name{labels} value`, sorts, and compares with tests/data/host/expected.prom
 * line for line. That file was produced by running the real
 * prometheus-node-exporter 1.5 with --path.procfs/--path.sysfs on the same
 * tree (plus job/instance), with the filesystem, uname and clocksource lines
 * written by hand because node_exporter takes those from system calls.
 * node_scrape_collector_duration_seconds is the only series left out: it is
 * a measured time. Set VIGIL_HOST_DUMP=1 to print what was emitted.
 *
 * The other tests feed each parser malformed input and check that good
 * lines still come out and bad ones are counted, never fatal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "host/host.h"
#include "host/host_int.h"
#include "vigil/alloc.h"
#include "vigil/metrics.h"

#define DATA VIGIL_SOURCE_DIR "/tests/data/host"

/* ------------------------------------------------------------ capture */

typedef struct capture {
    char **lines;
    size_t n, cap;
    int commits;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} capture;

static vg_err_t cap_emit(void *ud, const vg_label_t *l, size_t n, int64_t ts, double v)
{
    capture *c = ud;
    vg_buf b;
    char f[32];
    vg_buf_init(&b, 0);
    if (vg_labels_format(l, n, &b) || vg_buf_printf(&b, " %s", vg_fmt_float(v, f))) {
        vg_buf_free(&b); /* allocation failure tests */
        return VG_ENOMEM;
    }
    pthread_mutex_lock(&c->mu);
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->lines = realloc(c->lines, c->cap * sizeof *c->lines);
    }
    c->lines[c->n++] = vg_buf_steal(&b, NULL);
    pthread_mutex_unlock(&c->mu);
    return VG_OK;
}

static void cap_commit(void *ud)
{
    capture *c = ud;
    pthread_mutex_lock(&c->mu);
    c->commits++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void cap_init(capture *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
}

static void cap_free(capture *c)
{
    for (size_t i = 0; i < c->n; i++) vg_free(c->lines[i]);
    free(c->lines);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted lines joined with '\n', leaving out names starting with skip. */
static char *cap_text(capture *c, const char *skip)
{
    vg_buf b;
    vg_buf_init(&b, 0);
    qsort(c->lines, c->n, sizeof *c->lines, cmp_str);
    for (size_t i = 0; i < c->n; i++) {
        if (skip && !strncmp(c->lines[i], skip, strlen(skip))) continue;
        vg_buf_printf(&b, "%s\n", c->lines[i]);
    }
    return b.data ? vg_buf_steal(&b, NULL) : vg_strdup("");
}

static int cap_has(capture *c, const char *line)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->lines[i], line)) return 1;
    return 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* ------------------------------------------------------------ hooks */

static int fake_statvfs(void *ud, const char *path, struct statvfs *st)
{
    memset(st, 0, sizeof *st);
    if (!strcmp(path, "/srv/nfs")) return -1; /* a dead mount */
    st->f_bsize = 4096;
    st->f_frsize = 4096;
    if (!strcmp(path, "/")) {
        st->f_blocks = 61035156;
        st->f_bfree = 30517578;
        st->f_bavail = 27411372;
        st->f_files = 15269888;
        st->f_ffree = 14008576;
    } else {
        st->f_bsize = 1024;
        st->f_blocks = 1000;
        st->f_bfree = 500;
        st->f_bavail = 400;
        st->f_files = 0;
        st->f_ffree = 0;
    }
    return 0;
}

static int64_t fixed_now(void *ud)
{
    return 1718700000123;
}

static vg_agent_config_t fixture_cfg(const char *proc, const char *sys)
{
    vg_agent_config_t cfg = {0};
    cfg.node = "fixture-node";
    cfg.scrape_interval_ms = 15000;
    cfg.host_metrics_enabled = 1;
    cfg.host_proc_path = proc;
    cfg.host_sys_path = sys;
    return cfg;
}

static vg_host_t *fixture_host(const vg_agent_config_t *cfg, capture *cap, vg_metrics_t *m)
{
    vg_host_t *h = NULL;
    vg_error err = {0};
    assert_int_equal(vg_host_new(cfg, cap_emit, cap_commit, cap, m, &h, &err), VG_OK);
    vg_host_hooks hk = {
        .statvfs = fake_statvfs, .now_ms = fixed_now, .page_size = 4096, .clk_tck = 100};
    vg_host_set_hooks(h, &hk);
    return h;
}

/* ------------------------------------------------------------ whole tree */

static void test_fixture_tree(void **state)
{
    capture cap;
    cap_init(&cap);
    vg_agent_config_t cfg = fixture_cfg(DATA "/proc", DATA "/sys");
    vg_metrics_t *m = vg_metrics_new();
    vg_host_t *h = fixture_host(&cfg, &cap, m);
    assert_int_equal(vg_host_collect_once(h, NULL), VG_OK);
    assert_int_equal(cap.commits, 1);
    char *got = cap_text(&cap, "node_scrape_collector_duration_seconds{");
    if (getenv("VIGIL_HOST_DUMP")) fputs(got, stdout);
    char *want = slurp(DATA "/expected.prom");
    if (strcmp(got, want)) { /* show the first differing line */
        size_t i = 0, start = 0, line = 1;
        for (; got[i] && got[i] == want[i]; i++)
            if (got[i] == '\n') start = i + 1, line++;
        fprintf(stderr, "line %zu differs:\n got: %.*s\nwant: %.*s\n", line,
                (int)strcspn(got + start, "\n"), got + start, (int)strcspn(want + start, "\n"),
                want + start);
    }
    assert_string_equal(got, want);
    /* every collector ran, none failed on the fixture tree */
    assert_false(cap_has(&cap, "node_scrape_collector_success{collector=\"cpu\",instance=\"fixture-"
                               "node\",job=\"node\"} 0"));
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_metrics_render(m, &b), VG_OK);
    assert_non_null(strstr(b.data, "vigil_host_metrics_collections_total 1"));
    assert_non_null(strstr(b.data, "vigil_host_metrics_errors_total{collector=\"meminfo\"} 0"));
    vg_buf_free(&b);
    vg_free(got);
    vg_host_free(h);
    vg_metrics_free(m);
    cap_free(&cap);
}

/* A missing tree: every collector fails cleanly, up is still 1. */
static void test_missing_tree(void **state)
{
    capture cap;
    cap_init(&cap);
    vg_agent_config_t cfg = fixture_cfg("/nonexistent/proc", "/nonexistent/sys");
    cfg.host_metrics_job = "host";
    cfg.host_metrics_instance = "i-1";
    vg_host_t *h = fixture_host(&cfg, &cap, NULL);
    assert_int_equal(vg_host_collect_once(h, NULL), VG_OK);
    assert_true(cap_has(&cap, "up{instance=\"i-1\",job=\"host\"} 1"));
    assert_true(cap_has(&cap, "node_scrape_collector_success{collector=\"cpu\",instance=\"i-1\","
                              "job=\"host\"} 0"));
    assert_true(cap_has(&cap, "node_scrape_collector_success{collector=\"meminfo\",instance=\"i-"
                              "1\",job=\"host\"} 0"));
    for (size_t i = 0; i < cap.n; i++) assert_null(strstr(cap.lines[i], "node_cpu_seconds"));
    vg_host_free(h);
    cap_free(&cap);
}

/* ------------------------------------------------------------ parsers */

typedef void (*parse_fn)(vg_host_ctx *c, const char *buf, size_t len);

/* Run one parser over text; returns the error count, samples in cap. */
static uint64_t run_parser(parse_fn fn, const char *text, capture *cap)
{
    vg_host_ctx c;
    assert_int_equal(vg_host_ctx_init(&c, NULL), VG_OK);
    c.emit = cap_emit;
    c.ud = cap;
    c.job = "node";
    c.instance = "x";
    c.page_size = 4096;
    c.clk_tck = 100;
    c.statvfs = fake_statvfs;
    fn(&c, text, strlen(text));
    uint64_t e = c.errors;
    vg_host_ctx_fini(&c);
    return e;
}

static void test_meminfo_malformed(void **state)
{
    capture cap;
    cap_init(&cap);
    uint64_t e = run_parser(vg_host_parse_meminfo,
                            "MemTotal: 100 kB\n"
                            "\n"
                            "Broken line\n"
                            "NoColon 5\n"
                            "MemFree: x kB\n"
                            "Too: 1 kB many\n"
                            "Weird(chars: 1\n"
                            "Inactive(file): 3 kB\n"
                            "HugePages_Free: 7",
                            &cap);
    assert_int_equal(e, 5); /* Broken, NoColon, x, Too, Weird( (bad name) */
    assert_true(cap_has(&cap, "node_memory_MemTotal_bytes{instance=\"x\",job=\"node\"} 102400"));
    assert_true(cap_has(&cap, "node_memory_Inactive_file_bytes{instance=\"x\",job=\"node\"} 3072"));
    assert_true(cap_has(&cap, "node_memory_HugePages_Free{instance=\"x\",job=\"node\"} 7"));
    assert_int_equal(cap.n, 3);
    cap_free(&cap);
}

static void test_cpu_malformed(void **state)
{
    capture cap;
    cap_init(&cap);
    uint64_t e = run_parser(vg_host_parse_cpu,
                            "cpu  1 2 3 4 5 6 7 8 9 10\n"
                            "cpu0 100 200 300 400\n" /* old kernel: 4 columns */
                            "cpu1 1 2 3\n"           /* too few */
                            "cpuX 1 2 3 4 5\n"       /* not a number */
                            "cpu2 1 2 -3 4 5\n",     /* negative */
                            &cap);
    assert_int_equal(e, 3);
    assert_int_equal(cap.n, 10); /* cpu0: 8 modes + 2 guest */
    assert_true(cap_has(&cap, "node_cpu_seconds_total{cpu=\"0\",instance=\"x\",job=\"node\","
                              "mode=\"idle\"} 4"));
    assert_true(cap_has(&cap, "node_cpu_seconds_total{cpu=\"0\",instance=\"x\",job=\"node\","
                              "mode=\"steal\"} 0"));
    cap_free(&cap);
}

static void test_netdev_malformed(void **state)
{
    capture cap;
    cap_init(&cap);
    uint64_t e = run_parser(vg_host_parse_netdev, "garbage header\nno pipes here\n", &cap);
    assert_int_equal(e, 1);
    assert_int_equal(cap.n, 0);
    e = run_parser(vg_host_parse_netdev,
                   "Inter-|   Receive |  Transmit\n"
                   " face |bytes packets|bytes packets\n"
                   "  eth0: 1 2 3 4\n"
                   "  eth1: 1 2 3\n"   /* short */
                   "  eth2 1 2 3 4\n"  /* no colon */
                   "  eth3: 1 2 x 4\n" /* bad number */
                   "wlan0:5 6 7 8",    /* no space after the colon, no newline */
                   &cap);
    assert_int_equal(e, 3);
    assert_true(cap_has(&cap, "node_network_receive_packets_total{device=\"eth0\",instance=\"x\","
                              "job=\"node\"} 2"));
    assert_true(cap_has(&cap, "node_network_transmit_bytes_total{device=\"wlan0\",instance=\"x\","
                              "job=\"node\"} 7"));
    assert_int_equal(cap.n, 8);
    cap_free(&cap);
}

static void test_diskstats_filter_and_columns(void **state)
{
    capture cap;
    cap_init(&cap);
    uint64_t e = run_parser(vg_host_parse_diskstats,
                            "8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n"                   /* 11 columns */
                            "8 1 sda1 1 2 3 4 5 6 7 8 9 10 11\n"                  /* partition */
                            "7 0 loop0 1 2 3 4 5 6 7 8 9 10 11\n"                 /* loop */
                            "259 0 nvme0n1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n" /* 15 */
                            "259 1 nvme0n1p1 1 2 3 4 5 6 7 8 9 10 11\n"
                            "8 16 sdb 1 2 3\n"                   /* short */
                            "8 32 sdc 1 2 3 4 5 6 7 8 9 10 z\n", /* bad */
                            &cap);
    assert_int_equal(e, 2);
    assert_int_equal(cap.n, 11 + 15 + 2); /* + node_disk_info */
    assert_true(cap_has(&cap, "node_disk_read_bytes_total{device=\"sda\",instance=\"x\","
                              "job=\"node\"} 1536"));
    assert_true(cap_has(&cap, "node_disk_io_time_weighted_seconds_total{device=\"sda\","
                              "instance=\"x\",job=\"node\"} 0.011"));
    assert_true(cap_has(&cap, "node_disk_discard_time_seconds_total{device=\"nvme0n1\","
                              "instance=\"x\",job=\"node\"} 0.015"));
    cap_free(&cap);
}

static void test_mounts_filter_dedup_escape(void **state)
{
    capture cap;
    cap_init(&cap);
    uint64_t e = run_parser(vg_host_parse_mounts,
                            "/dev/a / ext4 rw 0 0\n"
                            "/dev/a / ext4 rw 0 0\n"    /* listed twice */
                            "proc /proc proc rw 0 0\n"  /* excluded mount point */
                            "x /mnt/x overlay rw 0 0\n" /* excluded type */
                            "/dev/b /mnt/with\\040space xfs ro,noatime 0 0\n"
                            "short line\n",
                            &cap);
    assert_int_equal(e, 1);
    assert_int_equal(cap.n, 14);
    assert_true(cap_has(&cap, "node_filesystem_readonly{device=\"/dev/b\",fstype=\"xfs\","
                              "instance=\"x\",job=\"node\",mountpoint=\"/mnt/with space\"} 1"));
    assert_true(cap_has(&cap, "node_filesystem_avail_bytes{device=\"/dev/a\",fstype=\"ext4\","
                              "instance=\"x\",job=\"node\",mountpoint=\"/\"} 1.12276979712e+11"));
    cap_free(&cap);
}

static void test_small_parsers_malformed(void **state)
{
    capture cap;
    cap_init(&cap);
    assert_int_equal(run_parser(vg_host_parse_loadavg, "1.0 nan 3\n", &cap), 1);
    assert_int_equal(run_parser(vg_host_parse_loadavg, "", &cap), 1);
    assert_int_equal(run_parser(vg_host_parse_filefd, "12 0\n", &cap), 1);
    assert_int_equal(
        run_parser(vg_host_parse_vmstat, "pgfault\npgmajfault 1 2\noom_kill 3\n", &cap), 2);
    assert_int_equal(run_parser(vg_host_parse_sockstat, "TCP: inuse\nbad\nUDP: inuse 4\n", &cap),
                     2);
    assert_int_equal(run_parser(vg_host_parse_netstat, "Tcp: A B\nTcp: 1\nIp: X\n", &cap), 2);
    assert_int_equal(run_parser(vg_host_parse_snmp6, "NoSix 1\nUdp6InErrors 2\n", &cap), 1);
    assert_int_equal(run_parser(vg_host_parse_stat, "ctxt x\nbtime 5\nintr\n", &cap), 2);
    assert_true(cap_has(&cap, "node_vmstat_oom_kill{instance=\"x\",job=\"node\"} 3"));
    assert_true(cap_has(&cap, "node_sockstat_UDP_inuse{instance=\"x\",job=\"node\"} 4"));
    assert_true(cap_has(&cap, "node_netstat_Udp6_InErrors{instance=\"x\",job=\"node\"} 2"));
    assert_true(cap_has(&cap, "node_boot_time_seconds{instance=\"x\",job=\"node\"} 5"));
    assert_int_equal(cap.n, 4);
    double v;
    assert_true(vg_host_parse_netclass_value("0x1003", &v) && v == 4099);
    assert_true(vg_host_parse_netclass_value("-1", &v) && v == -1);
    assert_false(vg_host_parse_netclass_value("", &v));
    assert_false(vg_host_parse_netclass_value("12 3", &v));
    assert_false(vg_host_parse_netclass_value("up", &v));
    assert_false(vg_host_parse_netclass_value("99999999999999999999", &v));
    cap_free(&cap);
}

/* Bytes that are not text: NULs and invalid UTF-8 in names are counted, not emitted. */
static void test_binary_input(void **state)
{
    capture cap;
    cap_init(&cap);
    static const char bin[] =
        "8 0 s\0a 1 2 3 4 5 6 7 8 9 10 11\n8 0 \xff\xfe 1 2 3 4 5 6 7 8 9 10 11\n";
    vg_host_ctx c;
    assert_int_equal(vg_host_ctx_init(&c, NULL), VG_OK);
    c.emit = cap_emit;
    c.ud = &cap;
    vg_host_parse_diskstats(&c, bin, sizeof bin - 1);
    assert_int_equal(c.errors, 1 + 12); /* the NUL name; each invalid-UTF-8 sample + info */
    vg_host_ctx_fini(&c);
    assert_int_equal(cap.n, 0);
    cap_free(&cap);
}

/* A file over the cap fails its collector with an error, nothing else. */
static void test_file_too_large(void **state)
{
    char dir[] = "/tmp/vigil-host-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/loadavg", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < VG_HOST_MAX_FILE / 4 + 10; i++) fputs("1.0 ", f);
    fclose(f);
    capture cap;
    cap_init(&cap);
    vg_agent_config_t cfg = fixture_cfg(dir, dir);
    vg_metrics_t *m = vg_metrics_new();
    vg_host_t *h = fixture_host(&cfg, &cap, m);
    assert_int_equal(vg_host_collect_once(h, NULL), VG_OK);
    assert_true(cap_has(&cap, "node_scrape_collector_success{collector=\"loadavg\",instance="
                              "\"fixture-node\",job=\"node\"} 0"));
    vg_buf b;
    vg_buf_init(&b, 0);
    vg_metrics_render(m, &b);
    assert_non_null(strstr(b.data, "vigil_host_metrics_errors_total{collector=\"loadavg\"} 1"));
    vg_buf_free(&b);
    vg_host_free(h);
    vg_metrics_free(m);
    cap_free(&cap);
    unlink(path);
    rmdir(dir);
}

/* The thread collects right away; free stops it promptly. */
static void test_thread(void **state)
{
    capture cap;
    cap_init(&cap);
    vg_agent_config_t cfg = fixture_cfg(DATA "/proc", DATA "/sys");
    cfg.host_metrics_interval_ms = 3600 * 1000;
    vg_host_t *h = fixture_host(&cfg, &cap, NULL);
    assert_int_equal(vg_host_start(h, NULL), VG_OK);
    assert_int_equal(vg_host_collect_once(h, NULL), VG_EINVAL);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 30;
    pthread_mutex_lock(&cap.mu);
    while (cap.commits == 0 && pthread_cond_timedwait(&cap.cv, &cap.mu, &dl) == 0) {
    }
    int commits = cap.commits;
    pthread_mutex_unlock(&cap.mu);
    assert_int_equal(commits, 1);
    vg_host_free(h); /* must not wait out the hour */
    cap_free(&cap);
}

static void test_alloc_failures(void **state)
{
    vg_agent_config_t cfg = fixture_cfg(DATA "/proc", DATA "/sys");
    vg_metrics_t *m = vg_metrics_new();
    for (long n = 1; n < 200; n++) {
        capture cap;
        cap_init(&cap);
        vg_host_t *h = NULL;
        vg_alloc_fail_after(n);
        vg_err_t rc = vg_host_new(&cfg, cap_emit, cap_commit, &cap, m, &h, NULL);
        if (!rc) vg_host_collect_once(h, NULL);
        long failed = vg_alloc_failures();
        vg_alloc_fail_after(0);
        vg_host_free(h);
        cap_free(&cap);
        if (!rc && failed == 0) break;
    }
    vg_metrics_free(m);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_tree),
        cmocka_unit_test(test_missing_tree),
        cmocka_unit_test(test_meminfo_malformed),
        cmocka_unit_test(test_cpu_malformed),
        cmocka_unit_test(test_netdev_malformed),
        cmocka_unit_test(test_diskstats_filter_and_columns),
        cmocka_unit_test(test_mounts_filter_dedup_escape),
        cmocka_unit_test(test_small_parsers_malformed),
        cmocka_unit_test(test_binary_input),
        cmocka_unit_test(test_file_too_large),
        cmocka_unit_test(test_thread),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
